//! Per-request DataLoaders (async-graphql's), one per kind of provider data: a key fetched once per request,
//! independent keys concurrently, each loader a thin batch over `providers/hub.rs`. The window is configurable
//! ([`crate::config::DEFAULT_LOADER_DELAY`]); 500 keys per batch is the `users(ids:)` bound, so one list is one batch.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use futures_util::future::join_all;

use super::Services;
use crate::domain::application::KycApplication;
use crate::domain::{Provider, ProviderProfile, ReasonsRef, UserId, VerificationCase};
use crate::providers::cache::Kind;
use crate::providers::hub::{per_key, Profiles as ProfileKind};
use crate::providers::{BulkMemo, Outcome, Providers};
use crate::telemetry::metrics::batch;

/// The most keys in one batch: the `users(ids:)` bound.
pub const MAX_BATCH: usize = 500;

/// A user at one provider.
pub type AtProvider = (Provider, UserId);

/// Groups keys by provider, in the keys' order.
fn by_provider(keys: &[AtProvider]) -> HashMap<Provider, Vec<UserId>> {
    let mut grouped: HashMap<Provider, Vec<UserId>> = HashMap::new();
    for (provider, user) in keys {
        grouped.entry(*provider).or_default().push(user.clone());
    }
    grouped
}

/// What each provider knows about each user.
pub struct Profiles(Providers);

impl Loader<AtProvider> for Profiles {
    type Value = Outcome<Option<Arc<ProviderProfile>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[AtProvider]) -> Result<HashMap<AtProvider, Self::Value>, Infallible> {
        let work = join_all(by_provider(keys).into_iter().map(|(provider, users)| async move {
            let answers = per_key(&users, |user| async move { self.0.profile(provider, &user).await }).await;
            answers.into_iter().map(move |(user, answer)| ((provider, user), answer))
        }));
        Ok(batch("profiles", keys.len(), work).await.into_iter().flatten().collect())
    }
}

/// Every user's verification states per provider; every batch of a request shares each provider's bulk answer.
pub struct States(Providers, HashMap<Provider, BulkMemo<VerificationCase>>);

impl Loader<AtProvider> for States {
    type Value = Outcome<Arc<Vec<VerificationCase>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[AtProvider]) -> Result<HashMap<AtProvider, Self::Value>, Infallible> {
        let work = join_all(by_provider(keys).into_iter().map(|(provider, users)| async move {
            let memo = self.1.get(&provider).expect("a memo for every provider");
            let answers = self.0.states(provider, memo, &users).await;
            answers.into_iter().map(move |(user, answer)| ((provider, user), answer))
        }));
        Ok(batch("states", keys.len(), work).await.into_iter().flatten().collect())
    }
}

/// Every user's KYC applications; every batch of a request shares one bulk answer.
pub struct Applications(Providers, BulkMemo<KycApplication>);

impl Loader<UserId> for Applications {
    type Value = Outcome<Arc<Vec<KycApplication>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, Self::Value>, Infallible> {
        Ok(batch("applications", keys.len(), self.0.applications(&self.1, keys)).await)
    }
}

/// The key of a case's reasons: the gateway user and the case's reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReasonsKey {
    pub user: UserId,
    pub case: ReasonsRef,
}

pub struct Reasons(Providers);

impl Loader<ReasonsKey> for Reasons {
    type Value = Outcome<Option<Arc<Vec<String>>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[ReasonsKey]) -> Result<HashMap<ReasonsKey, Self::Value>, Infallible> {
        let answers = join_all(keys.iter().map(|k| async move { (k.clone(), self.0.reasons(&k.user, &k.case).await) }));
        Ok(batch("reasons", keys.len(), answers).await.into_iter().collect())
    }
}

type Dl<T> = DataLoader<T, HashMapCache>;

/// The loaders of one request.
pub struct Loaders {
    pub profiles: Dl<Profiles>,
    pub states: Dl<States>,
    pub applications: Dl<Applications>,
    pub reasons: Dl<Reasons>,
    /// When they were made: an answer built with them may hold what they read from then on (the response cache
    /// drops it on any change marked since).
    pub made: tokio::time::Instant,
    /// What the request's operations read from the providers' cache, together: the operations of a batch share these
    /// loaders, and so what each other loaded.
    pub reads: Arc<crate::providers::cache::Reads>,
}

fn dl<K, T>(loader: T, delay: Duration) -> Dl<T>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    T: Loader<K>,
{
    // A batch runs on a task of its own, in the span of the request whose load started it, noting what it reads there.
    let spawn = |work| {
        let work = crate::telemetry::otel::carry_request_trace(tracing::Instrument::in_current_span(work));
        tokio::spawn(crate::providers::cache::Reads::carry(work))
    };
    DataLoader::with_cache(loader, spawn, HashMapCache::default()).delay(delay).max_batch_size(MAX_BATCH)
}

impl Loaders {
    pub fn new(services: &Services) -> Self {
        let (d, p) = (services.loader_delay, &services.providers);
        let memos = p.set.iter().map(|c| (c.provider(), BulkMemo::new())).collect();
        Loaders {
            profiles: dl(Profiles(p.clone()), d),
            states: dl(States(p.clone(), memos), d),
            applications: dl(Applications(p.clone(), BulkMemo::new()), d),
            reasons: dl(Reasons(p.clone()), d),
            made: tokio::time::Instant::now(),
            reads: Arc::default(),
        }
    }
}

/// A user's profile at `provider` from the cache across requests, else from the loader: a hit needs no batching window
/// nor batch task; a miss is batched with the request's others. Two fields of one request see two answers only if the
/// user's entry was invalidated between their look-ups (the later answer is the newer).
pub async fn cached_profile(
    providers: &Providers,
    loader: &Dl<Profiles>,
    provider: Provider,
    user: &UserId,
) -> Outcome<<ProfileKind as Kind>::Value> {
    if let Some(value) = providers.cache.peek::<ProfileKind>(provider, user, "").await {
        return Ok(value);
    }
    one(loader, (provider, user.clone())).await
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
