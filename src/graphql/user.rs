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
    /// Its `kycState` answers when its list computed them for every user at once ([`resolve_states`]), and its
    /// position there.
    states: Option<(Arc<ListStates>, usize)>,
}

/// One user's `kycState` at one level, ready: the state, and the provider failures its field reports.
struct StateAnswer {
    state: Option<KycState>,
    failures: Vec<(Provider, ProviderError)>,
}

/// The `kycState` answers of a list's users, per level asked, each level's in the list's order.
pub struct ListStates {
    levels: Vec<(String, Vec<StateAnswer>)>,
}

/// The items of a `kycState` level, once the level is valid and the caller may read each item.
fn state_items(ctx: &Context<'_>, level: &str) -> Result<Vec<String>> {
    let items = level_items(level);
    if items.is_empty() {
        return Err(bad_input("level must name at least one level or add-on, e.g. \"plus\" or \"basic+liveness\""));
    }
    let mapped: Vec<String> = services(ctx).providers.set.iter().flat_map(|c| c.mapped_items()).collect();
    let unknown = crate::domain::levels::unknown_items(&items, &mapped);
    if !unknown.is_empty() {
        return Err(bad_input(crate::domain::levels::unknown_items_message(&unknown, &mapped)));
    }
    rules::kyc_state(principal(ctx).scopes(), &items).map_err(unauthorized)?;
    Ok(items)
}

/// The state at `items` from what arrived; without a provider's part the aggregate is unknown, not what the others
/// say (a provider that failed may hold the approval): only an approval by one provider of every item is decided.
fn decide<'a>(
    ctx: &Context<'_>,
    items: &[String],
    cases: impl Iterator<Item = &'a domain::VerificationCase>,
    incomplete: bool,
) -> Option<KycState> {
    // Applications are seen like cases: every item their type maps to must be readable.
    let state = aggregate_state(items, cases.filter(|c| User::visible(ctx, c)));
    (!incomplete || state == KycState::Approved).then_some(state)
}

/// The levels the list's `kycState` fields ask (aliases included) that are valid and readable; a level that is not
/// is left to each user's field, which reports it.
fn asked_levels(ctx: &Context<'_>) -> Vec<(String, Vec<String>)> {
    let mut levels: Vec<(String, Vec<String>)> = Vec::new();
    for field in ctx.field().selection_set().filter(|f| f.name() == "kycState") {
        let Ok(arguments) = field.arguments() else { continue };
        let level = arguments.into_iter().find_map(|(name, value)| match value {
            async_graphql::Value::String(level) if name.as_str() == "level" => Some(level),
            _ => None,
        });
        let Some(level) = level else { continue };
        if levels.iter().any(|(known, _)| *known == level) {
            continue;
        }
        if let Ok(items) = state_items(ctx, &level) {
            levels.push((level, items));
        }
    }
    levels
}

/// Computes the `kycState` of every user of a list at once (distinct users, for each level the list asks): one batch
/// per provider, then every user's state aggregated in one loop. Each user's field then answers a ready value; in the
/// naive mode nothing is computed ahead.
pub async fn resolve_states(ctx: &Context<'_>, users: &mut [User]) {
    let levels = asked_levels(ctx);
    if levels.is_empty() || users.is_empty() {
        return;
    }
    let ids: Vec<UserId> = users.iter().map(|u| u.id.clone()).collect();
    let p = principal(ctx);
    let with_applications = rules::applications_count_in_state(p);
    let Some(inputs) = user_data::list_state_inputs(ctx, &ids, with_applications).await else { return };
    let set = &services(ctx).providers.set;
    let applications_at = set
        .applications()
        .ok()
        .map(|(provider, _)| (provider, set.get(provider).expect("the applications provider is configured")));
    let mut answers: Vec<Vec<StateAnswer>> = levels.iter().map(|_| Vec::with_capacity(ids.len())).collect();
    for at in 0..ids.len() {
        let mut failures = Vec::new();
        let mut lists = Vec::with_capacity(inputs.states.len());
        for (provider, outcomes) in &inputs.states {
            match &outcomes[at] {
                Ok(cases) => lists.push(cases),
                Err(e) => failures.push((*provider, e.clone())),
            }
        }
        let mut applications = Vec::new();
        if let (Some(apps), Some((provider, connector))) = (&inputs.applications, applications_at) {
            match &apps[at] {
                Ok(apps) => {
                    applications.extend(apps.iter().map(|a| a.as_case(provider, connector.items(a.kind.as_str()))))
                }
                Err(e) => failures.push((provider, e.clone())),
            }
        }
        let incomplete = !failures.is_empty();
        for ((_, items), answers) in levels.iter().zip(answers.iter_mut()) {
            let cases = lists.iter().flat_map(|l| l.iter()).chain(applications.iter());
            let state = decide(ctx, items, cases, incomplete);
            answers.push(StateAnswer { state, failures: failures.clone() });
        }
    }
    let shared = Arc::new(ListStates { levels: levels.into_iter().map(|(level, _)| level).zip(answers).collect() });
    for (at, user) in users.iter_mut().enumerate() {
        user.states = Some((shared.clone(), at));
    }
}

impl User {
    pub fn new(id: UserId) -> Self {
        User { id, states: None }
    }

    /// This user's `kycState` at `level` if its list computed it.
    fn ready_state(&self, level: &str) -> Option<&StateAnswer> {
        let (list, at) = self.states.as_ref()?;
        list.levels.iter().find(|(asked, _)| asked == level).map(|(_, answers)| &answers[*at])
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
        if let Some(ready) = self.ready_state(&level) {
            Self::report(ctx, ready.failures.clone());
            return Ok(ready.state);
        }
        let items = state_items(ctx, &level)?;
        // Every provider at once, applications included: the loaders then see every user of a list in one pass.
        let with_applications = rules::applications_count_in_state(principal(ctx));
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
        let cases = lists.iter().flat_map(|l| l.iter()).chain(applications.iter());
        let state = decide(ctx, &items, cases, !failures.is_empty());
        Self::report(ctx, failures);
        Ok(state)
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
