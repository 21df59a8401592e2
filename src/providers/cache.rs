//! The cache across requests: what providers answered, one typed key per kind ([`Kind`]), in one moka cache under one
//! byte bound. All of it was fetched with the gateway's own credentials, the same for every caller (scope rules run
//! after it). A user's invalidation only marks them stale in the bulk answers ([`BulkSnapshot`]), which stay cached.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::Provider;
use crate::freshness::Invalidations;
use crate::providers::ProviderError;
use crate::telemetry::metrics;

/// Settings of the cache.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Off: every request goes upstream (benchmarks' `no-cache` mode).
    pub enabled: bool,
    /// How long statuses and profiles live.
    pub status_ttl: Duration,
    /// How long "nothing there" answers live.
    pub negative_ttl: Duration,
    /// How long statistics and bulk lists live.
    pub bulk_ttl: Duration,
    /// Upper bound of the cache's estimated size.
    pub max_bytes: u64,
    /// Upper bound of the response cache's estimated size (`src/server/responses.rs`); 0 turns it off.
    pub responses_max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            status_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            bulk_ttl: Duration::from_secs(60),
            max_bytes: 64 * 1024 * 1024,
            responses_max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// How long a kind's entries live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// A status or profile: the status TTL, or the negative TTL for "nothing there".
    Status,
    /// A bulk answer about every user: the bulk TTL.
    Bulk,
}

/// One kind of cached data and its value type; each provider's entries of a kind are apart.
pub trait Kind: 'static {
    type Value: Clone + Send + Sync + 'static;
    /// For logs and metrics (beside the provider's label).
    const NAME: &'static str;
    const LIFETIME: Lifetime;
    /// A rough size in bytes, for the cache's bound.
    fn weight(value: &Self::Value) -> usize;
    /// "Nothing there": kept for the negative TTL only.
    fn is_negative(_value: &Self::Value) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: TypeId,
    provider: Provider,
    /// The gateway user the entry is about (`""` for bulk answers).
    user: Arc<str>,
    /// A further key under the user (a case's id), else `""`.
    sub: Arc<str>,
}

#[derive(Clone)]
struct Entry {
    /// Its kind's name ([`Kind::NAME`]) and its provider's label, for the metrics of entries, bytes and evictions.
    kind: &'static str,
    provider: &'static str,
    value: Arc<dyn Any + Send + Sync>,
    weight: u32,
    ttl: Duration,
    /// When it stops being served, by tokio's clock (the clock seam: tests pause and advance it); moka evicts it
    /// after `ttl` by its own.
    expires_at: Instant,
}

impl Entry {
    fn fresh(&self) -> bool {
        Instant::now() < self.expires_at
    }

    /// Notes this entry among what the current operation read ([`Reads`]).
    fn read(self) -> Self {
        let _ = READS.try_with(|reads| reads.as_ref().map(|reads| reads.note(self.expires_at)));
        self
    }
}

tokio::task_local! {
    static READS: Option<Arc<Reads>>;
}

/// What one request's operations read from this cache: when the first entry read stops being served, and so when an
/// answer built from them must be dropped (the response cache, `src/server/responses.rs`). Task-local; a spawned
/// loader batch carries it ([`Reads::carry`]).
#[derive(Debug, Default)]
pub struct Reads(std::sync::Mutex<Option<Instant>>);

impl Reads {
    /// `work`, noting in `self` every entry it reads.
    pub async fn scope<T>(self: Arc<Self>, work: impl Future<Output = T>) -> T {
        READS.scope(Some(self), work).await
    }

    /// `work`, to be spawned, noting what it reads where the current task does.
    pub fn carry<T>(work: impl Future<Output = T>) -> impl Future<Output = T> {
        READS.scope(READS.try_with(Clone::clone).ok().flatten(), work)
    }

    /// When the first entry read stops being served (`None`: nothing was read from the cache).
    pub fn earliest_expiry(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn note(&self, expires_at: Instant) {
        let mut earliest = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *earliest = Some(earliest.map_or(expires_at, |e| e.min(expires_at)));
    }
}

struct Ttls;

impl moka::Expiry<Key, Entry> for Ttls {
    fn expire_after_create(&self, _key: &Key, entry: &Entry, _created_at: std::time::Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// The cache; a no-op when disabled.
#[derive(Clone)]
pub struct ProviderCache {
    inner: Option<moka::future::Cache<Key, Entry>>,
    /// When each user was last invalidated: no answer fetched before is kept, and bulk answers fetched before treat
    /// the user as stale.
    invalidations: Invalidations,
    config: Arc<CacheConfig>,
}

/// How long invalidation marks are remembered beyond the longest entry TTL: longer than any fetch takes.
const MARK_MARGIN: Duration = Duration::from_secs(60);

impl ProviderCache {
    pub fn new(config: &CacheConfig) -> Self {
        let inner = config.enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(config.max_bytes)
                // moka weighs each entry once, as it is stored: the place to count it in.
                .weigher(|_key: &Key, entry: &Entry| {
                    metrics::cache_stored(entry.kind, entry.provider, entry.weight);
                    entry.weight
                })
                .eviction_listener(|_key, entry: Entry, cause| {
                    metrics::cache_removed(entry.kind, entry.provider, entry.weight, cause)
                })
                .expire_after(Ttls)
                .support_invalidation_closures()
                .build()
        });
        let ttl = config.bulk_ttl.max(config.status_ttl) + MARK_MARGIN;
        ProviderCache { inner, invalidations: Invalidations::new(ttl, 1_000_000), config: Arc::new(config.clone()) }
    }

    fn entry<K: Kind>(&self, provider: Provider, value: K::Value) -> Entry {
        let ttl = match K::LIFETIME {
            Lifetime::Bulk => self.config.bulk_ttl,
            Lifetime::Status if K::is_negative(&value) => self.config.negative_ttl,
            Lifetime::Status => self.config.status_ttl,
        };
        let weight = u32::try_from(K::weight(&value)).unwrap_or(u32::MAX);
        Entry {
            kind: K::NAME,
            provider: provider.label(),
            value: Arc::new(value),
            weight,
            ttl,
            expires_at: Instant::now() + ttl,
        }
    }

    fn key<K: Kind>(provider: Provider, user: &str, sub: &str) -> Key {
        Key { kind: TypeId::of::<K>(), provider, user: user.into(), sub: sub.into() }
    }

    /// How long an answer of kind `K` lives at most (the shortest lifetime a response built from it may have).
    pub fn lifetime<K: Kind>(&self) -> Duration {
        match K::LIFETIME {
            Lifetime::Bulk => self.config.bulk_ttl,
            Lifetime::Status => self.config.status_ttl,
        }
    }

    /// The value of a key of kind `K` (a key's `TypeId` is its kind's, so its entry holds `K::Value`).
    fn value<K: Kind>(entry: &Entry) -> K::Value {
        entry.value.downcast_ref::<K::Value>().expect("a key of kind K holds a K::Value").clone()
    }

    /// `provider`'s cached answer of kind `K` about `user` (and `sub`), or `fetch`'s; concurrent misses for one key
    /// wait for one fetch. Errors are not cached, nor an answer whose fetch started before `user` was invalidated.
    pub async fn get_or_fetch<K, F, Fut>(
        &self,
        provider: Provider,
        user: &str,
        sub: &str,
        fetch: F,
    ) -> Result<K::Value, ProviderError>
    where
        K: Kind,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<K::Value, ProviderError>>,
    {
        let Some(cache) = &self.inner else { return fetch().await };
        let key = Self::key::<K>(provider, user, sub);
        if cache.get(&key).await.is_some_and(|entry| !entry.fresh()) {
            cache.invalidate(&key).await;
        }
        let entry = self
            .invalidations
            .fetch_fresh((K::NAME, provider.label()), cache, key, user, || async {
                fetch().await.map(|v| self.entry::<K>(provider, v))
            })
            .await?;
        Ok(Self::value::<K>(&entry.read()))
    }

    /// `provider`'s cached answer of kind `K`, if any.
    pub async fn get<K: Kind>(&self, provider: Provider, user: &str, sub: &str) -> Option<K::Value> {
        let entry = self.inner.as_ref()?.get(&Self::key::<K>(provider, user, sub)).await.filter(Entry::fresh);
        metrics::cache_lookup(K::NAME, provider.label(), entry.is_some());
        Some(Self::value::<K>(&entry?.read()))
    }

    /// `provider`'s cached answer of kind `K`, counting only a hit: for a caller that goes on to
    /// [`Self::get_or_fetch`] on a miss, which counts the lookup itself (a hit there skips the request's DataLoader).
    pub async fn peek<K: Kind>(&self, provider: Provider, user: &str, sub: &str) -> Option<K::Value> {
        let entry = self.inner.as_ref()?.get(&Self::key::<K>(provider, user, sub)).await.filter(Entry::fresh)?;
        metrics::cache_lookup(K::NAME, provider.label(), true);
        Some(Self::value::<K>(&entry.read()))
    }

    /// Whether any of `users` was invalidated (on its own or with everything) at or after `at`: what an answer built
    /// from this cache since `at` may not hold. Always true when the cache is off (nothing marks then).
    pub async fn changed_since(&self, users: &[String], at: Instant) -> bool {
        if self.inner.is_none() {
            return true;
        }
        for user in users {
            if self.invalidations.since(user).await.is_some_and(|marked| marked >= at) {
                return true;
            }
        }
        users.is_empty() && self.invalidations.since("").await.is_some_and(|marked| marked >= at)
    }

    /// Forgets everything cached about `user_id`, and marks the user stale in the bulk answers (which stay).
    pub async fn invalidate_user(&self, user_id: &str) {
        let Some(cache) = &self.inner else { return };
        // The mark first: an answer fetched from now on is newer than it; one fetched before is not kept.
        self.invalidations.mark(user_id).await;
        let user: Arc<str> = user_id.into();
        let _ = cache.invalidate_entries_if(move |key, _| key.user == user);
        // And again once the entries are gone: an answer begun between the two marks may have read them.
        self.invalidations.mark(user_id).await;
    }

    /// Forgets everything (changes may have been missed).
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.inner {
            self.invalidations.mark_all();
            cache.invalidate_all();
        }
    }
}

/// A bulk answer: every user's rows, and when it was asked for.
#[derive(Debug)]
pub struct BulkSnapshot<T> {
    /// When the fetch started: a change marked before it is in the answer, a change marked after it is not.
    pub fetched_at: Instant,
    pub by_user: HashMap<String, Arc<Vec<T>>>,
}

impl<T> BulkSnapshot<T> {
    pub fn new(fetched_at: Instant, by_user: HashMap<String, Vec<T>>) -> Self {
        BulkSnapshot { fetched_at, by_user: by_user.into_iter().map(|(k, v)| (k, Arc::new(v))).collect() }
    }
}

/// What a bulk answer says about one gateway user.
#[derive(Debug, Clone)]
pub enum BulkView<T> {
    /// The user's rows (none when the answer holds none).
    Rows(Arc<Vec<T>>),
    /// The user changed after the answer was fetched: read the user on their own.
    Stale,
}

impl ProviderCache {
    /// What `snapshot` says about `user_id`, whose rows in it are under `provider_user`.
    pub async fn bulk_view<T>(&self, snapshot: &BulkSnapshot<T>, user_id: &str, provider_user: &str) -> BulkView<T> {
        if self.invalidations.since(user_id).await.is_some_and(|at| at >= snapshot.fetched_at) {
            return BulkView::Stale;
        }
        BulkView::Rows(snapshot.by_user.get(provider_user).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    struct Reasons;
    impl Kind for Reasons {
        type Value = Option<Arc<Vec<String>>>;
        const NAME: &'static str = "reasons";
        const LIFETIME: Lifetime = Lifetime::Status;
        fn weight(_: &Self::Value) -> usize {
            64
        }
        fn is_negative(value: &Self::Value) -> bool {
            value.is_none()
        }
    }

    fn cache(status: u64, negative: u64) -> ProviderCache {
        ProviderCache::new(&CacheConfig {
            status_ttl: Duration::from_millis(status),
            negative_ttl: Duration::from_millis(negative),
            ..CacheConfig::default()
        })
    }

    async fn fetch(
        calls: &AtomicU32,
        value: Option<Arc<Vec<String>>>,
    ) -> Result<Option<Arc<Vec<String>>>, ProviderError> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(value)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_fetch_and_entries_expire() {
        let cache = cache(100, 50);
        let calls = AtomicU32::new(0);
        let value = Some(Arc::new(vec!["tag".to_owned()]));
        let gets = (0..20)
            .map(|_| cache.get_or_fetch::<Reasons, _, _>(Provider::Sila, "u", "", || fetch(&calls, value.clone())));
        futures_util::future::join_all(gets).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(150)).await;
        cache
            .get_or_fetch::<Reasons, _, _>(Provider::Sila, "u", "", || fetch(&calls, value.clone()))
            .await
            .expect("value");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "expired after the status TTL");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_there_is_kept_only_for_the_negative_ttl_and_users_can_be_forgotten() {
        let cache = cache(10_000, 50);
        let calls = AtomicU32::new(0);
        let none = || fetch(&calls, None);
        cache.get_or_fetch::<Reasons, _, _>(Provider::Sila, "a", "", none).await.expect("value");
        cache.get_or_fetch::<Reasons, _, _>(Provider::Sila, "a", "", none).await.expect("value");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(80)).await;
        cache.get_or_fetch::<Reasons, _, _>(Provider::Sila, "a", "", none).await.expect("value");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let some = || fetch(&calls, Some(Arc::new(Vec::new())));
        cache.get_or_fetch::<Reasons, _, _>(Provider::Sila, "b", "x", some).await.expect("value");
        cache.invalidate_user("b").await;
        tokio::time::advance(Duration::from_millis(1)).await;
        cache.get_or_fetch::<Reasons, _, _>(Provider::Sila, "b", "x", some).await.expect("value");
        assert_eq!(calls.load(Ordering::SeqCst), 4, "invalidated");
    }

    #[tokio::test(start_paused = true)]
    async fn invalidating_a_user_marks_it_stale_in_older_bulk_answers_only() {
        let cache = cache(10_000, 10_000);
        let rows = HashMap::from([("p1".to_owned(), vec![1u8]), ("p2".to_owned(), vec![2u8])]);
        let older = BulkSnapshot::new(Instant::now(), rows.clone());
        cache.invalidate_user("u1").await;
        tokio::time::advance(Duration::from_millis(1)).await;
        let newer = BulkSnapshot::new(Instant::now(), rows);
        assert!(matches!(cache.bulk_view(&older, "u1", "p1").await, BulkView::Stale));
        assert!(matches!(cache.bulk_view(&older, "u2", "p2").await, BulkView::Rows(r) if *r == [2]));
        assert!(matches!(cache.bulk_view(&newer, "u1", "p1").await, BulkView::Rows(r) if *r == [1]));
    }
}
