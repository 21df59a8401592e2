//! What the providers know about a user, as resolvers ask for it: through the request's DataLoaders, or in the naive
//! baseline mode one direct call per field and provider. The naive calls are boxed: a future is as large as its largest
//! state, and unboxed they would swell every user's futures in batched mode too.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use async_graphql::Context;
use futures_util::future::join_all;

use super::loaders::{cached_profile, one, Loaders, ReasonsKey};
use super::services;
use crate::config::FanOut;
use crate::domain::application::KycApplication;
use crate::domain::{Provider, ProviderProfile, ReasonsRef, UserId, VerificationCase};
use crate::providers::hub::Profiles as ProfileKind;
use crate::providers::{BulkMemo, Outcome, ProviderError};

/// The request's loaders when batching (the HTTP layer adds them to every request).
fn batched<'a>(ctx: &Context<'a>) -> Option<&'a Loaders> {
    match services(ctx).fan_out {
        // Shared by the operations of one batched POST: they may share fetches too.
        FanOut::Batched => ctx.data_opt::<Arc<Loaders>>().map(|l| l.as_ref()),
        FanOut::Naive => None,
    }
}

/// The configured providers of verification cases, in the registry's order.
pub fn case_providers(ctx: &Context<'_>) -> Vec<Provider> {
    services(ctx).providers.set.case_sources().map(|(p, _)| p).collect()
}

/// The configured providers whose profiles hold contacts (emails, phones, wallets).
pub fn contact_providers(ctx: &Context<'_>) -> Vec<Provider> {
    services(ctx).providers.set.case_sources().filter(|(_, s)| s.has_contacts()).map(|(p, _)| p).collect()
}

/// The one user's answer of a bulk call made for that user alone (the naive mode).
fn single<T>(mut answers: std::collections::HashMap<UserId, Outcome<T>>, key: &UserId) -> Outcome<T> {
    answers.remove(key).expect("the facade answers every user it was asked about")
}

/// What `provider` knows about the user; `None` when it does not know them.
pub async fn profile(ctx: &Context<'_>, provider: Provider, id: &UserId) -> Outcome<Option<Arc<ProviderProfile>>> {
    let providers = &services(ctx).providers;
    match batched(ctx) {
        Some(l) => cached_profile(providers, &l.profiles, provider, id).await,
        None => Box::pin(providers.profile(provider, id)).await,
    }
}

async fn cases_of(ctx: &Context<'_>, id: &UserId, provider: Provider) -> Outcome<Arc<Vec<VerificationCase>>> {
    Ok(Arc::new(profile(ctx, provider, id).await?.map(|p| p.cases.clone()).unwrap_or_default()))
}

/// A user's verification states at `provider` (for `kycState`): from its bulk call where it has one (one call for any
/// number of users), else its cases, through the loader that `verificationCases` shares.
async fn states_of(ctx: &Context<'_>, id: &UserId, provider: Provider) -> Outcome<Arc<Vec<VerificationCase>>> {
    let set = &services(ctx).providers.set;
    if set.get(provider).and_then(|c| c.cases()).and_then(|s| s.bulk_states()).is_none() {
        return cases_of(ctx, id, provider).await;
    }
    match batched(ctx) {
        Some(l) => one(&l.states, (provider, id.clone())).await,
        None => {
            let providers = &services(ctx).providers;
            single(Box::pin(providers.states(provider, &BulkMemo::new(), std::slice::from_ref(id))).await, id)
        }
    }
}

/// Cases of the providers that answered (shared, not copied), and errors of those that failed.
pub type Gathered = (Vec<Arc<Vec<VerificationCase>>>, Vec<(Provider, ProviderError)>);

/// Joins provider answers: concurrently when batching, one after the other in the naive mode.
async fn gather<'a, F>(ctx: &Context<'_>, providers: &[Provider], fetch: impl Fn(Provider) -> F) -> Gathered
where
    F: std::future::Future<Output = Outcome<Arc<Vec<VerificationCase>>>> + 'a,
{
    let answers: Vec<(Provider, Outcome<Arc<Vec<VerificationCase>>>)> = match batched(ctx) {
        Some(_) => {
            join_all(providers.iter().map(|&p| {
                let fut = fetch(p);
                async move { (p, fut.await) }
            }))
            .await
        }
        None => {
            let mut answers = Vec::new();
            for &p in providers {
                answers.push((p, fetch(p).await));
            }
            answers
        }
    };
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    for (provider, answer) in answers {
        match answer {
            Ok(found) => cases.push(found),
            Err(e) => failures.push((provider, e)),
        }
    }
    (cases, failures)
}

/// The cases of `providers`; a provider that fails is reported beside the others' cases.
pub async fn cases(ctx: &Context<'_>, id: &UserId, providers: &[Provider]) -> Gathered {
    gather(ctx, providers, |p| cases_of(ctx, id, p)).await
}

/// What `kycState` aggregates: every case provider's verification states.
pub async fn state_cases(ctx: &Context<'_>, id: &UserId) -> Gathered {
    gather(ctx, &case_providers(ctx), |p| states_of(ctx, id, p)).await
}

/// The user's KYC applications; none when no provider has applications.
pub async fn applications(ctx: &Context<'_>, id: &UserId) -> Outcome<Arc<Vec<KycApplication>>> {
    match batched(ctx) {
        Some(l) => one(&l.applications, id.clone()).await,
        None => {
            let providers = &services(ctx).providers;
            single(Box::pin(providers.applications(&BulkMemo::new(), std::slice::from_ref(id))).await, id)
        }
    }
}

/// What `kycState` aggregates for every user of a list, in the list's order.
pub struct ListInputs {
    /// Each case provider's states of each user (providers in [`case_providers`] order).
    pub states: Vec<(Provider, Vec<StatesOutcome>)>,
    /// Each user's applications, when they count.
    pub applications: Option<Vec<Outcome<Arc<Vec<KycApplication>>>>>,
}

/// The loader's answers for `keys`, in their order (every loader answers every key).
fn in_order<K, V>(keys: impl Iterator<Item = K>, loaded: Result<HashMap<K, V>, Infallible>) -> Vec<V>
where
    K: std::hash::Hash + Eq,
{
    let mut loaded = match loaded {
        Ok(loaded) => loaded,
        Err(never) => match never {},
    };
    keys.map(|k| loaded.remove(&k).expect("every loader answers every key")).collect()
}

/// Every listed user's states at `provider`, as [`states_of`] reads one user's: from the bulk loader as one batch, or
/// each profile from the cache and the misses as one batch.
async fn list_states_at(ctx: &Context<'_>, l: &Loaders, provider: Provider, users: &[UserId]) -> Vec<StatesOutcome> {
    let providers = &services(ctx).providers;
    if providers.set.get(provider).and_then(|c| c.cases()).and_then(|s| s.bulk_states()).is_some() {
        let keys = || users.iter().map(|u| (provider, u.clone()));
        return in_order(keys(), l.states.load_many(keys()).await);
    }
    let cases = |profile: Option<Arc<ProviderProfile>>| Arc::new(profile.map(|p| p.cases.clone()).unwrap_or_default());
    let mut answers: Vec<Option<StatesOutcome>> = Vec::with_capacity(users.len());
    let mut missing = Vec::new();
    for (at, user) in users.iter().enumerate() {
        let cached = providers.cache.peek::<ProfileKind>(provider, user, "").await;
        if cached.is_none() {
            missing.push(at);
        }
        answers.push(cached.map(|profile| Ok(cases(profile))));
    }
    if !missing.is_empty() {
        let keys = || missing.iter().map(|&at| (provider, users[at].clone()));
        let loaded = in_order(keys(), l.profiles.load_many(keys()).await);
        for (at, answer) in missing.iter().zip(loaded) {
            answers[*at] = Some(answer.map(cases));
        }
    }
    answers.into_iter().map(|answer| answer.expect("every user was answered")).collect()
}

type StatesOutcome = Outcome<Arc<Vec<VerificationCase>>>;

/// What `kycState` needs of every user of a list (distinct users): one batch per provider through the same cache and
/// loaders as [`state_cases`] and [`applications`]. `None` in the naive mode, where each user asks on their own.
pub async fn list_state_inputs(ctx: &Context<'_>, users: &[UserId], with_applications: bool) -> Option<ListInputs> {
    let l = batched(ctx)?;
    let states =
        join_all(case_providers(ctx).into_iter().map(|p| async move { (p, list_states_at(ctx, l, p, users).await) }));
    let applications = async {
        match with_applications {
            true => {
                let keys = || users.iter().cloned();
                Some(in_order(keys(), l.applications.load_many(keys()).await))
            }
            false => None,
        }
    };
    let (states, applications) = futures_util::future::join(states, applications).await;
    Some(ListInputs { states, applications })
}

/// Loads the applications of a whole list of users as one batch (`users(ids:)` asking `kycApplications`), so that the
/// list's size, not how concurrent requests interleave, decides the provider's bulk path; the users' fields then find
/// their answers in the loader.
pub async fn prefetch_applications(ctx: &Context<'_>, users: Vec<UserId>) {
    if let (Some(l), false) = (batched(ctx), users.is_empty()) {
        match l.applications.load_many(users).await {
            Ok(_) => {}
            Err(never) => match never {},
        }
    }
}

/// The reason tags of one of a user's cases.
pub async fn reasons(ctx: &Context<'_>, user: &UserId, case: &ReasonsRef) -> Outcome<Option<Arc<Vec<String>>>> {
    match batched(ctx) {
        Some(l) => one(&l.reasons, ReasonsKey { user: user.clone(), case: case.clone() }).await,
        None => Box::pin(services(ctx).providers.reasons(user, case)).await,
    }
}
