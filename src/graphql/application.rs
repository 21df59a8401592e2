//! `KycApplication` and the queries that page through applications, answered by the provider of applications.

use std::sync::Arc;

use async_graphql::{Context, Json, Object, Result, SimpleObject, ID};
use time::OffsetDateTime;

use super::connection::{Cursors, PageInfo, Window};
use super::errors::{self, unauthorized};
use super::user::User;
use super::{principal, services};
use crate::authz::rules;
use crate::domain::application::{KycApplication, KycApplicationStatus, KycApplicationType};
use crate::domain::{KycState, Provider, UserId};
use crate::providers::connector::ApplicationSource;

/// Application pages: 25 by default (the provider's own default), at most 100.
pub const CURSORS: Cursors = Cursors { kind: "app", default_page: 25, max_page: 100 };

/// A KYC (or KYB) application a provider dispatched to a third-party verifier. Needs `kyc_application:read`; a user
/// token sees only its own. It points into its shared list rather than holding a copy: `params` and the provider's
/// representation are JSON trees, too large to copy per application.
#[derive(Clone)]
pub struct KycApplicationObject {
    list: Arc<Vec<KycApplication>>,
    index: usize,
}

impl KycApplicationObject {
    /// One application on its own.
    pub fn new(application: KycApplication) -> Self {
        KycApplicationObject { list: Arc::new(vec![application]), index: 0 }
    }

    /// The application at `index` of a shared list.
    pub fn in_list(list: Arc<Vec<KycApplication>>, index: usize) -> Self {
        assert!(index < list.len(), "an application of the list");
        KycApplicationObject { list, index }
    }

    fn app(&self) -> &KycApplication {
        &self.list[self.index]
    }

    /// Whose personal data this application holds, for the audit record (the applicant: the gateway user by default).
    fn note_subject(&self, ctx: &Context<'_>) {
        if let Some(user) = &self.app().user_id {
            super::access::note_subject(ctx, user);
        }
    }

    /// `params` and `name` are personal data: they need a details scope of an item the application's type maps to
    /// (`kyc` -> `basic` by default), as a verification's details would.
    fn require_details(&self, ctx: &Context<'_>) -> Result<()> {
        self.note_subject(ctx);
        let set = &services(ctx).providers.set;
        let items = match set.applications() {
            Ok((provider, _)) => set.get(provider).map(|c| c.items(self.app().kind.as_str())).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        rules::application_personal_data(principal(ctx).scopes(), &items).map_err(unauthorized)
    }
}

#[Object(name = "KycApplication")]
impl KycApplicationObject {
    async fn id(&self) -> ID {
        ID(self.app().id.clone())
    }

    async fn created_at(&self) -> Option<OffsetDateTime> {
        self.app().created_at
    }

    /// The third-party provider: `vouched` or `identitymind`.
    async fn provider(&self) -> &str {
        &self.app().provider
    }

    /// The third party's reference.
    async fn identifier(&self) -> Option<&str> {
        self.app().identifier.as_deref()
    }

    #[graphql(name = "type")]
    async fn kind(&self) -> KycApplicationType {
        self.app().kind
    }

    /// Null for a status word the provider added after this gateway was built; `providerStatus` has it.
    async fn status(&self) -> Option<KycApplicationStatus> {
        self.app().status
    }

    /// The provider's own status word.
    async fn provider_status(&self) -> &str {
        &self.app().status_word
    }

    async fn state(&self) -> KycState {
        self.app().state
    }

    /// The applicant's name. Personal data: needs the details scope of the application's type.
    async fn name(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.require_details(ctx)?;
        Ok(self.app().name.as_deref())
    }

    /// The provider's explanation of the outcome (e.g. why a submission failed). Needs `review.internal:read`.
    #[graphql(requires_scopes = "review.internal:read")]
    async fn description(&self) -> Option<&str> {
        self.app().description.as_deref()
    }

    /// What was sent to the provider (names, date of birth, document photos). Needs the details scope of the
    /// application's type.
    async fn params(&self, ctx: &Context<'_>) -> Result<Option<Json<serde_json::Value>>> {
        self.require_details(ctx)?;
        Ok(self.app().params.clone().map(Json))
    }

    /// The provider's own view of the application, internals included. Needs `review.internal:read`.
    #[graphql(requires_scopes = "review.internal:read")]
    async fn provider_representation(&self, ctx: &Context<'_>) -> Result<Option<Json<serde_json::Value>>> {
        self.note_subject(ctx);
        if let Some(value) = &self.app().provider_representation {
            return Ok(Some(Json(value.clone())));
        }
        // Lists carry no representation; the provider re-reads its third party on a single read.
        let (provider, source) = services(ctx).providers.set.applications().map_err(errors::missing)?;
        let fresh = source.get(&self.app().id).await.map_err(|e| errors::provider(provider, &e))?;
        Ok(fresh.and_then(|a| a.provider_representation).map(Json))
    }

    /// The user the application is about (the applicant mapped back through the directory), under the usual
    /// row-level rule; null when no gateway user is that applicant.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(user_id) = gateway_user(ctx, self.app()).await? else { return Ok(None) };
        rules::read_user(principal(ctx), &user_id).map_err(unauthorized)?;
        Ok(Some(User::new(user_id)))
    }
}

/// The gateway user an application is about.
pub async fn gateway_user(ctx: &Context<'_>, app: &KycApplication) -> Result<Option<UserId>> {
    let Some(applicant) = &app.user_id else { return Ok(None) };
    let (_, source) = services(ctx).providers.set.applications().map_err(errors::missing)?;
    source.user_of_applicant(applicant).await.map_err(|e| errors::internal("directory", &e))
}

#[derive(SimpleObject)]
pub struct KycApplicationEdge {
    cursor: String,
    node: KycApplicationObject,
}

#[derive(SimpleObject)]
pub struct KycApplicationConnection {
    edges: Vec<KycApplicationEdge>,
    page_info: PageInfo,
    total_count: u64,
}

fn connection(window: Window, apps: Vec<KycApplication>, total: usize) -> KycApplicationConnection {
    let (cursors, page_info) = CURSORS.page(window, apps.len(), total);
    let edges = apps
        .into_iter()
        .zip(cursors)
        .map(|(a, cursor)| KycApplicationEdge { cursor, node: KycApplicationObject::new(a) })
        .collect();
    KycApplicationConnection { edges, page_info, total_count: total as u64 }
}

/// Every application, newest first, a window at a time.
pub async fn all(
    (provider, source): (Provider, &dyn ApplicationSource),
    status: Option<KycApplicationStatus>,
    window: Window,
) -> Result<KycApplicationConnection> {
    let (apps, total) =
        source.window(status, window.offset, window.limit).await.map_err(|e| errors::provider(provider, &e))?;
    Ok(connection(window, apps, total as usize))
}

/// One user's applications as a connection (a user token's view of `kycApplications`).
pub fn of_user(
    apps: Vec<KycApplication>,
    status: Option<KycApplicationStatus>,
    window: Window,
) -> KycApplicationConnection {
    let matching: Vec<KycApplication> =
        apps.into_iter().filter(|a| status.is_none_or(|s| a.status == Some(s))).collect();
    let total = matching.len();
    let page = matching.into_iter().skip(window.offset).take(window.limit).collect();
    connection(window, page, total)
}
