//! Per-request DataLoaders (async-graphql's), one per kind of provider data: within a request a key is fetched once,
//! and independent keys are fetched concurrently. Each loader is a thin batch over the providers' facade, which
//! decides the upstream calls and the cache (`providers/hub.rs`).
//!
//! The batching window is configurable (`KYC_GATEWAY_LOADER_DELAY_US`, see [`crate::config::DEFAULT_LOADER_DELAY`]);
//! 500 keys per batch matches the `users(ids:)` bound, so one list is one batch.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use futures_util::future::join_all;

use super::Services;
use crate::domain::application::KycApplication;
use crate::domain::{ProviderProfile, ReasonsRef, VerificationCase};
use crate::providers::cache::{Kind, ProviderCache};
use crate::providers::hub::per_key;
use crate::providers::{BulkMemo, Outcome, Providers};
use crate::telemetry::metrics::batch;

/// The most keys in one batch: the `users(ids:)` bound.
pub const MAX_BATCH: usize = 500;

/// A loader per user for one of the facade's per-user answers.
macro_rules! per_user_loader {
    ($name:ident, $value:ty, $method:ident) => {
        pub struct $name(Providers);

        impl Loader<String> for $name {
            type Value = Outcome<$value>;
            type Error = Infallible;

            async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Infallible> {
                let work = per_key(keys, |user| async move { self.0.$method(&user).await });
                Ok(batch(stringify!($method), keys.len(), work).await)
            }
        }
    };
}

per_user_loader!(FractalProfiles, Option<Arc<ProviderProfile>>, fractal_profile);
per_user_loader!(SumsubCases, Arc<Vec<VerificationCase>>, sumsub_cases);
per_user_loader!(SilaCases, Arc<Vec<VerificationCase>>, sila_cases);

/// Every batch of a request shares one bulk answer (see [`BulkMemo`]).
pub struct FractalStates(Providers, BulkMemo<VerificationCase>);

impl Loader<String> for FractalStates {
    type Value = Outcome<Arc<Vec<VerificationCase>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Infallible> {
        Ok(batch("fractal_states", keys.len(), self.0.fractal_states(&self.1, keys)).await)
    }
}

pub struct IdentApplications(Providers, BulkMemo<KycApplication>);

impl Loader<String> for IdentApplications {
    type Value = Outcome<Arc<Vec<KycApplication>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Infallible> {
        Ok(batch("ident_applications", keys.len(), self.0.applications(&self.1, keys)).await)
    }
}

/// The key of a Sila verification's reasons: the gateway user and the case's reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReasonsKey {
    pub user: String,
    pub case: ReasonsRef,
}

pub struct SilaReasons(Providers);

impl Loader<ReasonsKey> for SilaReasons {
    type Value = Outcome<Option<Arc<Vec<String>>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[ReasonsKey]) -> Result<HashMap<ReasonsKey, Self::Value>, Infallible> {
        let answers =
            join_all(keys.iter().map(|k| async move { (k.clone(), self.0.sila_reasons(&k.user, &k.case).await) }));
        Ok(batch("sila_reasons", keys.len(), answers).await.into_iter().collect())
    }
}

type Dl<T> = DataLoader<T, HashMapCache>;

/// The loaders of one request.
pub struct Loaders {
    pub fractal: Dl<FractalProfiles>,
    pub fractal_states: Dl<FractalStates>,
    pub sumsub: Dl<SumsubCases>,
    pub sila: Dl<SilaCases>,
    pub sila_reasons: Dl<SilaReasons>,
    pub ident: Dl<IdentApplications>,
}

fn dl<K, T>(loader: T, delay: Duration) -> Dl<T>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    T: Loader<K>,
{
    // A batch runs on a task of its own, in the span of the request whose load started it.
    let spawn =
        |work| tokio::spawn(crate::telemetry::otel::carry_request_trace(tracing::Instrument::in_current_span(work)));
    DataLoader::with_cache(loader, spawn, HashMapCache::default()).delay(delay).max_batch_size(MAX_BATCH)
}

impl Loaders {
    pub fn new(services: &Services) -> Self {
        let (d, p) = (services.loader_delay, &services.providers);
        Loaders {
            fractal: dl(FractalProfiles(p.clone()), d),
            fractal_states: dl(FractalStates(p.clone(), BulkMemo::new()), d),
            sumsub: dl(SumsubCases(p.clone()), d),
            sila: dl(SilaCases(p.clone()), d),
            sila_reasons: dl(SilaReasons(p.clone()), d),
            ident: dl(IdentApplications(p.clone(), BulkMemo::new()), d),
        }
    }
}

/// A user's answer the cache across requests already holds, else the loader's. A hit needs no batching window and no
/// batch task: going through the loader, it cost a timer, a spawned task and their wake-ups, about a sixth of a warm
/// `me` query's CPU (BENCHMARKS.md, "Performance against the peers"). A miss is batched with the request's others.
///
/// Within a request, a key the loader answered is not looked up again in the cache; a key found in the cache may be
/// looked up once per field that asks, so two fields of one request could see two answers only if the user's
/// entry was invalidated between them (a change arriving in those microseconds; the later answer is the newer).
pub async fn cached_or_one<K, T>(cache: &ProviderCache, loader: &Dl<T>, user: &str) -> Outcome<K::Value>
where
    K: Kind,
    T: Loader<String, Value = Outcome<K::Value>, Error = Infallible>,
{
    if let Some(value) = cache.peek::<K>(user, "").await {
        return Ok(value);
    }
    one(loader, user.to_owned()).await
}

/// Loads one key through its loader (every loader answers every key).
pub async fn one<K, T>(loader: &Dl<T>, key: K) -> T::Value
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    T: Loader<K, Error = Infallible>,
{
    match loader.load_one(key).await {
        Ok(value) => value.expect("every loader answers every key"),
        Err(never) => match never {},
    }
}
