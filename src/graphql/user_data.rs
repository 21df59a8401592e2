//! What the providers know about a user, as resolvers ask for it: through the request's DataLoaders (batched,
//! deduplicated, cached across requests, providers in parallel), or in the naive baseline mode the benchmark
//! compares against, one direct call per field and provider, one provider after the other.
//!
//! The naive mode's provider calls are boxed: a future is as large as its largest state, and these resolvers' futures
//! live by the thousand in a list (every user's fields at once). Unboxed, the direct calls' HTTP futures made each
//! user's `verificationCases` about 16 KB in batched mode too, which never runs them (heaptrack, `kyc-bench
//! --scenario burst`; BENCHMARKS.md).

use std::sync::Arc;

use async_graphql::Context;
use futures_util::future::join_all;

use super::loaders::{cached_or_one, one, Loaders, ReasonsKey};
use super::services;
use crate::config::FanOut;
use crate::domain::application::KycApplication;
use crate::domain::{Provider, ProviderProfile, ReasonsRef, VerificationCase};
use crate::providers::{hub, BulkMemo, Outcome, ProviderError};

/// The providers that have verification cases.
pub const CASE_PROVIDERS: [Provider; 3] = [Provider::Fractal, Provider::Sumsub, Provider::Sila];

/// The request's loaders when batching (the HTTP layer adds them to every request).
fn batched<'a>(ctx: &Context<'a>) -> Option<&'a Loaders> {
    match services(ctx).fan_out {
        // Shared by the operations of one batched POST: they may share fetches too.
        FanOut::Batched => ctx.data_opt::<Arc<Loaders>>().map(|l| l.as_ref()),
        FanOut::Naive => None,
    }
}

/// The one user's answer of a bulk call made for that user alone (the naive mode).
fn single<T>(mut answers: std::collections::HashMap<String, Outcome<T>>, key: &str) -> Outcome<T> {
    answers.remove(key).expect("the facade answers every user it was asked about")
}

/// The user's Fractal profile (emails, phones, wallets, cases); `None` when not linked or Fractal is off.
pub async fn fractal(ctx: &Context<'_>, id: &str) -> Outcome<Option<Arc<ProviderProfile>>> {
    match batched(ctx) {
        Some(l) => cached_or_one::<hub::FractalProfiles, _>(&services(ctx).providers.cache, &l.fractal, id).await,
        None => Box::pin(services(ctx).providers.fractal_profile(id)).await,
    }
}

async fn cases_of(ctx: &Context<'_>, id: &str, provider: Provider) -> Outcome<Arc<Vec<VerificationCase>>> {
    let p = &services(ctx).providers;
    match (provider, batched(ctx)) {
        (Provider::Fractal, _) => Ok(Arc::new(fractal(ctx, id).await?.map(|p| p.cases.clone()).unwrap_or_default())),
        (Provider::Sumsub, Some(l)) => cached_or_one::<hub::SumsubCases, _>(&p.cache, &l.sumsub, id).await,
        (Provider::Sumsub, None) => Box::pin(p.sumsub_cases(id)).await,
        (Provider::Sila, Some(l)) => cached_or_one::<hub::SilaCases, _>(&p.cache, &l.sila, id).await,
        (Provider::Sila, None) => Box::pin(p.sila_cases(id)).await,
        (Provider::Ident, _) => Ok(Arc::default()),
    }
}

/// The Fractal verifications of a user from the bulk statistics (for `kycState`: one call for any number of users).
async fn fractal_states(ctx: &Context<'_>, id: &str) -> Outcome<Arc<Vec<VerificationCase>>> {
    match batched(ctx) {
        Some(l) => one(&l.fractal_states, id.to_owned()).await,
        None => single(Box::pin(services(ctx).providers.fractal_states(&BulkMemo::new(), &[id.to_owned()])).await, id),
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
pub async fn cases(ctx: &Context<'_>, id: &str, providers: &[Provider]) -> Gathered {
    gather(ctx, providers, |p| cases_of(ctx, id, p)).await
}

/// What `kycState` aggregates: Fractal's from the bulk statistics, the other providers' cases as they are.
pub async fn state_cases(ctx: &Context<'_>, id: &str) -> Gathered {
    gather(ctx, &CASE_PROVIDERS, |p| async move {
        match p {
            Provider::Fractal => fractal_states(ctx, id).await,
            other => cases_of(ctx, id, other).await,
        }
    })
    .await
}

/// The user's KYC applications at ident; none when ident is off.
pub async fn applications(ctx: &Context<'_>, id: &str) -> Outcome<Arc<Vec<KycApplication>>> {
    match batched(ctx) {
        Some(l) => one(&l.ident, id.to_owned()).await,
        None => single(Box::pin(services(ctx).providers.applications(&BulkMemo::new(), &[id.to_owned()])).await, id),
    }
}

/// Loads the applications of a whole list of users as one batch (`users(ids:)` asking `kycApplications`): one
/// authorization pass and one batch for the list, whose size then decides ident's bulk path. Left to each user's
/// field, the batches depended on how concurrent requests interleaved and mostly stayed below the bulk threshold
/// (BENCHMARKS.md, "Performance against the peers"). The users' fields then find their answers in the loader.
pub async fn prefetch_applications(ctx: &Context<'_>, users: Vec<String>) {
    if let (Some(l), false) = (batched(ctx), users.is_empty()) {
        match l.ident.load_many(users).await {
            Ok(_) => {}
            Err(never) => match never {},
        }
    }
}

/// The reason tags of one of a user's Sila cases.
pub async fn sila_reasons(ctx: &Context<'_>, user: &str, case: &ReasonsRef) -> Outcome<Option<Arc<Vec<String>>>> {
    match batched(ctx) {
        Some(l) => one(&l.sila_reasons, ReasonsKey { user: user.to_owned(), case: case.clone() }).await,
        None => Box::pin(services(ctx).providers.sila_reasons(user, case)).await,
    }
}
