//! What the providers know about a user, as resolvers ask for it: through the request's DataLoaders, or in the naive
//! baseline mode one direct call per field and provider. The naive calls are boxed: a future is as large as its largest
//! state, and unboxed they would swell every user's futures in batched mode too.

use std::sync::Arc;

use async_graphql::Context;
use futures_util::future::join_all;

use super::loaders::{cached_profile, one, Loaders, ReasonsKey};
use super::services;
use crate::config::FanOut;
use crate::domain::application::KycApplication;
use crate::domain::{Provider, ProviderProfile, ReasonsRef, UserId, VerificationCase};
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
