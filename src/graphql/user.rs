//! `User`: one person or institution of the company, with what each provider knows about them.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};

use super::access::note_subject;
use super::application::KycApplicationObject;
use super::case::VerificationCase;
use super::errors::{self, bad_input, unauthorized};
use super::user_data;
use super::{principal, services};
use crate::authz::rules;
use crate::domain::application::KycApplicationStatus;
use crate::domain::{
    self, aggregate_state, level_items, Email, KycState, Phone, Provider, ProviderProfile, UserId, Wallet,
};
use crate::providers::ProviderError;

/// A user the caller may read (row-level checks happen before one is built). Provider data comes through the
/// request's loaders, so however many fields and aliases ask, each provider is asked once per user.
#[derive(Clone)]
pub struct User {
    id: UserId,
}

impl User {
    pub fn new(id: UserId) -> Self {
        User { id }
    }

    pub fn user_id(&self) -> &UserId {
        &self.id
    }

    /// The profiles that hold the user's contacts, or the first provider error as a GraphQL error.
    async fn contacts(&self, ctx: &Context<'_>) -> Result<Vec<Arc<ProviderProfile>>> {
        let providers = user_data::contact_providers(ctx);
        let answers =
            futures_util::future::join_all(providers.iter().map(|&p| user_data::profile(ctx, p, &self.id))).await;
        let mut profiles = Vec::new();
        for (provider, answer) in providers.into_iter().zip(answers) {
            profiles.extend(answer.map_err(|e| errors::provider(provider, &e))?);
        }
        Ok(profiles)
    }

    /// Reports provider failures as errors at this field; the other providers' data still arrives.
    fn report(ctx: &Context<'_>, failures: Vec<(Provider, ProviderError)>) {
        for (provider, error) in failures {
            ctx.add_error(ctx.set_error_path(errors::provider(provider, &error).into_server_error(ctx.item.pos)));
        }
    }

    fn visible(ctx: &Context<'_>, case: &domain::VerificationCase) -> bool {
        rules::case_visible(principal(ctx).scopes(), &case.items)
    }
}

#[Object]
impl User {
    /// The company's own id of this user (the `sub` of the user's token).
    #[graphql(requires_scopes = "uid:read")]
    async fn id(&self) -> Option<ID> {
        Some(ID(self.id.to_string()))
    }

    #[graphql(requires_scopes = "contact:read")]
    async fn emails(&self, ctx: &Context<'_>) -> Result<Option<Vec<Email>>> {
        note_subject(ctx, &self.id);
        Ok(Some(self.contacts(ctx).await?.iter().flat_map(|p| p.emails.iter().cloned()).collect()))
    }

    #[graphql(requires_scopes = "contact:read")]
    async fn phones(&self, ctx: &Context<'_>) -> Result<Option<Vec<Phone>>> {
        note_subject(ctx, &self.id);
        Ok(Some(self.contacts(ctx).await?.iter().flat_map(|p| p.phones.iter().cloned()).collect()))
    }

    /// Wallets: all of them with `verification.wallet:read`, those of one currency with
    /// `verification.wallet-<currency>:read`.
    #[graphql(
        requires_scopes = "verification.wallet:read",
        requires_scopes = "verification.wallet-ada:read",
        requires_scopes = "verification.wallet-algo:read",
        requires_scopes = "verification.wallet-btc:read",
        requires_scopes = "verification.wallet-eth:read",
        requires_scopes = "verification.wallet-kar:read",
        requires_scopes = "verification.wallet-sol:read",
        requires_scopes = "verification.wallet-substrate:read",
        requires_scopes = "verification.wallet-sui:read",
        requires_scopes = "verification.wallet-xrp:read"
    )]
    async fn wallets(&self, ctx: &Context<'_>) -> Result<Option<Vec<Wallet>>> {
        note_subject(ctx, &self.id);
        let filter = rules::wallets(principal(ctx));
        let contacts = self.contacts(ctx).await?;
        let wallets = contacts.iter().flat_map(|p| p.wallets.iter());
        Ok(Some(wallets.filter(|w| filter.allows(w.currency)).cloned().collect()))
    }

    /// The verification cases the caller may see, from every provider: a case needs `verification.X:read` for every
    /// item X of its level; others are left out, not reported as errors. `level` keeps the cases that include every
    /// item of that level. A provider that fails adds an error naming it; the other providers' cases still arrive.
    async fn verification_cases(
        &self,
        ctx: &Context<'_>,
        provider: Option<Provider>,
        level: Option<String>,
    ) -> Vec<VerificationCase> {
        let wanted = level.as_deref().map(level_items).unwrap_or_default();
        let providers: Vec<Provider> =
            user_data::case_providers(ctx).into_iter().filter(|p| provider.is_none_or(|f| f == *p)).collect();
        let (lists, failures) = user_data::cases(ctx, &self.id, &providers).await;
        Self::report(ctx, failures);
        lists
            .iter()
            .flat_map(|list| list.iter())
            .filter(|c| Self::visible(ctx, c) && wanted.iter().all(|w| c.items.contains(w)))
            .map(|c| VerificationCase::new(self.id.clone(), c.clone()))
            .collect()
    }

    /// The user's state at `level` across providers: APPROVED when one provider approved every item of the level,
    /// otherwise the most advanced state of the visible cases covering it. Needs `verification.X:read` for every item;
    /// KYC applications count too when the caller holds `kyc_application:read`.
    async fn kyc_state(&self, ctx: &Context<'_>, level: String) -> Result<Option<KycState>> {
        let items = level_items(&level);
        if items.is_empty() {
            return Err(bad_input("level must name at least one level or add-on, e.g. \"plus\" or \"basic+liveness\""));
        }
        let mapped: Vec<String> = services(ctx).providers.set.iter().flat_map(|c| c.mapped_items()).collect();
        let unknown = crate::domain::levels::unknown_items(&items, &mapped);
        if !unknown.is_empty() {
            return Err(bad_input(crate::domain::levels::unknown_items_message(&unknown, &mapped)));
        }
        let p = principal(ctx);
        rules::kyc_state(p.scopes(), &items).map_err(unauthorized)?;
        // Every provider at once, applications included: the loaders then see every user of a list in one pass.
        let with_applications = rules::applications_count_in_state(p);
        let ((lists, failures), apps) = futures_util::future::join(user_data::state_cases(ctx, &self.id), async {
            match with_applications {
                true => Some(user_data::applications(ctx, &self.id).await),
                false => None,
            }
        })
        .await;
        let mut failures = failures;
        let mut applications = Vec::new();
        if let (Some(apps), Ok((provider, _))) = (apps, services(ctx).providers.set.applications()) {
            let connector = services(ctx).providers.set.get(provider).expect("the applications provider is configured");
            match apps {
                Ok(apps) => {
                    applications.extend(apps.iter().map(|a| a.as_case(provider, connector.items(a.kind.as_str()))))
                }
                Err(e) => failures.push((provider, e)),
            }
        }
        // Applications are seen like cases: every item their type maps to must be readable.
        let cases = lists.iter().flat_map(|l| l.iter()).chain(applications.iter()).filter(|c| Self::visible(ctx, c));
        let state = aggregate_state(&items, cases);
        let incomplete = !failures.is_empty();
        Self::report(ctx, failures);
        // Without a provider's part the aggregate is unknown, not what the others say: a provider that failed may
        // hold the approval. Only an approval by one provider of every item is decided by what arrived.
        Ok((!incomplete || state == KycState::Approved).then_some(state))
    }

    /// The user's KYC applications, newest first, optionally of one status. Needs `kyc_application:read`.
    #[graphql(requires_scopes = "kyc_application:read")]
    async fn kyc_applications(
        &self,
        ctx: &Context<'_>,
        status: Option<KycApplicationStatus>,
    ) -> Result<Option<Vec<KycApplicationObject>>> {
        let (provider, _) = services(ctx).providers.set.applications().map_err(errors::missing)?;
        let apps = user_data::applications(ctx, &self.id).await.map_err(|e| errors::provider(provider, &e))?;
        let matching = apps.iter().enumerate().filter(|(_, a)| status.is_none_or(|s| a.status == Some(s)));
        Ok(Some(matching.map(|(i, _)| KycApplicationObject::in_list(apps.clone(), i)).collect()))
    }

    /// Who else read this user's personal data, when, why and which fields, newest first. A user sees only their
    /// own access log.
    async fn access_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<super::audit::AccessLogConnection>> {
        let p = principal(ctx);
        rules::access_log(p, &self.id).map_err(unauthorized)?;
        super::audit::access_log(ctx, p.issuer(), &self.id, first, after).await.map(Some)
    }
}
