//! A per-replica read cache in front of the directory: every request asks who its users are at each provider, and
//! those answers change only when a user is registered, linked or unlinked.
//!
//! Writes through this cache forget what they change at once; what another replica changes arrives on the change
//! channel (`store/changes.rs`), whose subscriber calls [`CachedDirectory::forget`]. Entries also expire, so a lost
//! notification costs at most a minute of staleness. Fractal links, with their rotating tokens, and link states are
//! never cached.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::freshness::Invalidations;

use super::{
    Consumed, Directory, DirectoryError, FractalLink, FractalRefresh, LinkState, Linked, ProviderRefs, Reference,
};

/// How long a cached lookup lives without a change notification.
const TTL: Duration = Duration::from_secs(60);
/// Bound on the users and reverse lookups held.
const CAPACITY: u64 = 200_000;

/// What one user is, as the hot path asks.
#[derive(Debug, Clone)]
struct Entry {
    known: bool,
    refs: ProviderRefs,
    fractal_uid: Option<String>,
}

/// A lookup from a provider's id back to the gateway user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Reverse {
    Ident(String),
    FractalUid(String),
}

pub struct CachedDirectory {
    inner: Arc<dyn Directory>,
    users: Cache<String, Entry>,
    reverse: Cache<Reverse, Option<String>>,
    /// When each user (and the reverse lookups, as one group) was last forgotten: a lookup read before is not kept.
    invalidations: Invalidations,
}

/// The group of every reverse lookup (any user's change may change where one points).
const REVERSE: &str = "\0reverse";

/// A cache of `kind` with its entries and evictions counted (`telemetry/metrics.rs`); every entry weighs one.
fn metered<K, V>(kind: &'static str) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    use crate::telemetry::metrics;
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(TTL)
        .weigher(move |_: &K, _: &V| {
            metrics::cache_stored(kind, 1);
            1
        })
        .eviction_listener(move |_, _, cause| metrics::cache_removed(kind, 1, cause))
        .build()
}

impl CachedDirectory {
    pub fn new(inner: Arc<dyn Directory>) -> Self {
        CachedDirectory {
            inner,
            users: metered("directory"),
            reverse: metered("directory_reverse"),
            invalidations: Invalidations::new(TTL + TTL, CAPACITY),
        }
    }

    async fn entry(&self, user_id: &str) -> Result<Entry, DirectoryError> {
        let load = || async {
            Ok(Entry {
                known: self.inner.knows(user_id).await?,
                refs: self.inner.references(user_id).await?,
                fractal_uid: self.inner.fractal_uid(user_id).await?,
            })
        };
        self.invalidations.fetch_fresh("directory", &self.users, user_id.to_owned(), user_id, load).await
    }

    async fn reverse(&self, key: Reverse) -> Result<Option<String>, DirectoryError> {
        let load = || async {
            match &key {
                Reverse::Ident(id) => self.inner.user_for_ident(id).await,
                Reverse::FractalUid(uid) => self.inner.user_for_fractal_uid(uid).await,
            }
        };
        self.invalidations.fetch_fresh("directory_reverse", &self.reverse, key.clone(), REVERSE, load).await
    }
}

#[async_trait::async_trait]
impl Directory for CachedDirectory {
    async fn knows(&self, user_id: &str) -> Result<bool, DirectoryError> {
        Ok(self.entry(user_id).await?.known)
    }

    async fn references(&self, user_id: &str) -> Result<ProviderRefs, DirectoryError> {
        Ok(self.entry(user_id).await?.refs)
    }

    async fn fractal_link(&self, user_id: &str) -> Result<Option<FractalLink>, DirectoryError> {
        self.inner.fractal_link(user_id).await
    }

    async fn fractal_uid(&self, user_id: &str) -> Result<Option<String>, DirectoryError> {
        Ok(self.entry(user_id).await?.fractal_uid)
    }

    async fn begin_fractal_refresh(&self, user_id: &str) -> Result<Option<Box<dyn FractalRefresh>>, DirectoryError> {
        self.inner.begin_fractal_refresh(user_id).await
    }

    async fn user_for_ident(&self, ident_user_id: &str) -> Result<Option<String>, DirectoryError> {
        self.reverse(Reverse::Ident(ident_user_id.to_owned())).await
    }

    async fn user_for_fractal_uid(&self, uid: &str) -> Result<Option<String>, DirectoryError> {
        self.reverse(Reverse::FractalUid(uid.to_owned())).await
    }

    /// Not cached: webhooks ask it, one event at a time, off the request path.
    async fn user_for_reference(&self, reference: Reference<'_>) -> Result<Option<String>, DirectoryError> {
        self.inner.user_for_reference(reference).await
    }

    async fn register(&self, user_id: &str, refs: &ProviderRefs) -> Result<(), DirectoryError> {
        let result = self.inner.register(user_id, refs).await;
        self.forget(user_id).await;
        result
    }

    async fn link_fractal(&self, user_id: &str, link: &FractalLink) -> Result<Linked, DirectoryError> {
        let result = self.inner.link_fractal(user_id, link).await;
        self.forget(user_id).await;
        result
    }

    async fn unlink_fractal(&self, user_id: &str) -> Result<bool, DirectoryError> {
        let result = self.inner.unlink_fractal(user_id).await;
        self.forget(user_id).await;
        result
    }

    async fn save_link_state(&self, state: &LinkState) -> Result<(), DirectoryError> {
        self.inner.save_link_state(state).await
    }

    async fn consume_link_state(&self, nonce: &str) -> Result<Consumed, DirectoryError> {
        self.inner.consume_link_state(nonce).await
    }

    /// Forgets what is cached about `user_id` (and every reverse lookup, which may point at it).
    async fn forget(&self, user_id: &str) {
        self.invalidations.mark(user_id).await;
        self.invalidations.mark(REVERSE).await;
        self.users.invalidate(user_id).await;
        self.reverse.invalidate_all();
    }

    fn forget_all(&self) {
        self.invalidations.mark_all();
        self.users.invalidate_all();
        self.reverse.invalidate_all();
    }
}
