//! A per-replica read cache in front of the directory, whose answers change only when a user is registered, linked or
//! unlinked: local writes forget at once, other replicas' arrive on the change channel ([`CachedDirectory::forget`]),
//! and entries expire. Links (with their rotating tokens) and link states are never cached.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use super::{Consumed, Directory, DirectoryError, Link, LinkRefresh, LinkState, Linked, References, UserEntry};
use crate::domain::{Provider, UserId};
use crate::freshness::Invalidations;
use crate::telemetry::metrics;

/// How long a cached lookup lives without a change notification.
const TTL: Duration = Duration::from_secs(60);
/// Bound on the lookups held.
const CAPACITY: u64 = 200_000;

/// A lookup from a provider's id back to the gateway user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Reverse {
    Reference(Provider, String),
    Link(Provider, String),
}

pub struct CachedDirectory {
    inner: Arc<dyn Directory>,
    users: Cache<UserId, Arc<UserEntry>>,
    reverse: Cache<Reverse, Option<UserId>>,
    /// When each user (and the reverse lookups, as one group) was last forgotten: a lookup read before is not kept.
    invalidations: Invalidations,
}

/// The group of every reverse lookup, marked on any user's change: a lookup in flight then is fetched again.
const REVERSE: &str = "\0reverse";

/// A cache of `kind` with its entries and evictions counted (`telemetry/metrics.rs`); every entry weighs one.
fn metered<K, V>(kind: &'static str) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(TTL)
        .weigher(move |_: &K, _: &V| {
            metrics::cache_stored(kind, "", 1);
            1
        })
        .eviction_listener(move |_, _, cause| metrics::cache_removed(kind, "", 1, cause))
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

    async fn cached_entry(&self, user: &UserId) -> Result<Arc<UserEntry>, DirectoryError> {
        let load = || async { Ok(Arc::new(self.inner.entry(user).await?)) };
        self.invalidations.fetch_fresh(("directory", ""), &self.users, user.clone(), user, load).await
    }

    /// The users' entries in their order: hits from the cache, the misses from the store in one pass. A miss whose user
    /// was forgotten while the pass ran is fetched again on its own, as [`Self::cached_entry`] does.
    async fn cached_entries(&self, users: &[UserId]) -> Result<Vec<Arc<UserEntry>>, DirectoryError> {
        let mut found: Vec<Option<Arc<UserEntry>>> = Vec::with_capacity(users.len());
        let mut missing = Vec::new();
        for (at, user) in users.iter().enumerate() {
            let hit = self.users.get(user).await;
            if hit.is_none() {
                missing.push(at);
            } else {
                metrics::cache_lookup("directory", "", true);
            }
            found.push(hit);
        }
        if !missing.is_empty() {
            let started = tokio::time::Instant::now();
            let wanted: Vec<UserId> = missing.iter().map(|&at| users[at].clone()).collect();
            let fetched = self.inner.entries(&wanted).await?;
            for (at, entry) in missing.into_iter().zip(fetched) {
                let user = &users[at];
                let entry = match self.invalidations.since(user).await {
                    Some(changed) if changed >= started => self.cached_entry(user).await?,
                    _ => {
                        metrics::cache_lookup("directory", "", false);
                        let entry = Arc::new(entry);
                        self.users.insert(user.clone(), entry.clone()).await;
                        entry
                    }
                };
                found[at] = Some(entry);
            }
        }
        Ok(found.into_iter().map(|entry| entry.expect("every user was found or fetched")).collect())
    }

    async fn reverse(&self, key: Reverse) -> Result<Option<UserId>, DirectoryError> {
        let load = || async {
            match &key {
                Reverse::Reference(provider, reference) => self.inner.user_for_reference(*provider, reference).await,
                Reverse::Link(provider, subject) => self.inner.user_for_link(*provider, subject).await,
            }
        };
        self.invalidations.fetch_fresh(("directory_reverse", ""), &self.reverse, key.clone(), REVERSE, load).await
    }
}

#[async_trait::async_trait]
impl Directory for CachedDirectory {
    async fn entry(&self, user: &UserId) -> Result<UserEntry, DirectoryError> {
        Ok(self.cached_entry(user).await?.as_ref().clone())
    }

    async fn knows(&self, user: &UserId) -> Result<bool, DirectoryError> {
        Ok(self.cached_entry(user).await?.known)
    }

    async fn entries(&self, users: &[UserId]) -> Result<Vec<UserEntry>, DirectoryError> {
        Ok(self.cached_entries(users).await?.iter().map(|entry| entry.as_ref().clone()).collect())
    }

    async fn knows_all(&self, users: &[UserId]) -> Result<Vec<bool>, DirectoryError> {
        Ok(self.cached_entries(users).await?.iter().map(|entry| entry.known).collect())
    }

    async fn references(&self, user: &UserId, provider: Provider) -> Result<Vec<String>, DirectoryError> {
        Ok(self.cached_entry(user).await?.references.get(&provider).cloned().unwrap_or_default())
    }

    async fn user_for_reference(&self, provider: Provider, reference: &str) -> Result<Option<UserId>, DirectoryError> {
        self.reverse(Reverse::Reference(provider, reference.to_owned())).await
    }

    async fn register(&self, user: &UserId, refs: &References) -> Result<(), DirectoryError> {
        let result = self.inner.register(user, refs).await;
        self.forget(user).await;
        result
    }

    async fn add_reference(&self, user: &UserId, provider: Provider, reference: &str) -> Result<bool, DirectoryError> {
        let result = self.inner.add_reference(user, provider, reference).await;
        self.forget(user).await;
        result
    }

    async fn link(&self, user: &UserId, provider: Provider) -> Result<Option<Link>, DirectoryError> {
        self.inner.link(user, provider).await
    }

    async fn link_subject(&self, user: &UserId, provider: Provider) -> Result<Option<String>, DirectoryError> {
        Ok(self.cached_entry(user).await?.links.get(&provider).cloned())
    }

    async fn user_for_link(&self, provider: Provider, subject: &str) -> Result<Option<UserId>, DirectoryError> {
        self.reverse(Reverse::Link(provider, subject.to_owned())).await
    }

    /// Hits from the cache, the misses from the store in one pass; when any user changed while the pass ran, the
    /// misses are looked up again one by one, as [`Self::reverse`] does.
    async fn users_for_links(
        &self,
        provider: Provider,
        subjects: &[String],
    ) -> Result<Vec<Option<UserId>>, DirectoryError> {
        let mut found: Vec<Option<Option<UserId>>> = Vec::with_capacity(subjects.len());
        let mut missing = Vec::new();
        for (at, subject) in subjects.iter().enumerate() {
            let hit = self.reverse.get(&Reverse::Link(provider, subject.clone())).await;
            if hit.is_none() {
                missing.push(at);
            } else {
                metrics::cache_lookup("directory_reverse", "", true);
            }
            found.push(hit);
        }
        if !missing.is_empty() {
            let started = tokio::time::Instant::now();
            let wanted: Vec<String> = missing.iter().map(|&at| subjects[at].clone()).collect();
            let fetched = self.inner.users_for_links(provider, &wanted).await?;
            let changed = self.invalidations.since(REVERSE).await.is_some_and(|at| at >= started);
            for ((at, subject), user) in missing.into_iter().zip(wanted).zip(fetched) {
                let key = Reverse::Link(provider, subject);
                let user = match changed {
                    true => self.reverse(key).await?,
                    false => {
                        metrics::cache_lookup("directory_reverse", "", false);
                        self.reverse.insert(key, user.clone()).await;
                        user
                    }
                };
                found[at] = Some(user);
            }
        }
        Ok(found.into_iter().map(|user| user.expect("every subject was found or fetched")).collect())
    }

    async fn begin_refresh(
        &self,
        user: &UserId,
        provider: Provider,
    ) -> Result<Option<Box<dyn LinkRefresh>>, DirectoryError> {
        self.inner.begin_refresh(user, provider).await
    }

    async fn store_link(&self, user: &UserId, provider: Provider, link: &Link) -> Result<Linked, DirectoryError> {
        let result = self.inner.store_link(user, provider, link).await;
        self.forget(user).await;
        result
    }

    async fn remove_link(&self, user: &UserId, provider: Provider) -> Result<bool, DirectoryError> {
        let result = self.inner.remove_link(user, provider).await;
        self.forget(user).await;
        result
    }

    async fn save_link_state(&self, state: &LinkState, open_per_user: usize) -> Result<(), DirectoryError> {
        self.inner.save_link_state(state, open_per_user).await
    }

    async fn purge_link_states(&self, expired_before: i64) -> Result<u64, DirectoryError> {
        self.inner.purge_link_states(expired_before).await
    }

    async fn consume_link_state(&self, nonce: &str) -> Result<Consumed, DirectoryError> {
        self.inner.consume_link_state(nonce).await
    }

    /// Forgets what is cached about `user`, and the reverse lookups a change of theirs can move: those that pointed at
    /// them, and those of the references and accounts they hold now. Other users' lookups stay.
    async fn forget(&self, user: &UserId) {
        self.invalidations.mark(user).await;
        // A reverse lookup fetched meanwhile may have read the user's old rows: it is fetched again.
        self.invalidations.mark(REVERSE).await;
        self.users.invalidate(user).await;
        let pointing: Vec<Reverse> =
            self.reverse.iter().filter(|(_, to)| to.as_ref() == Some(user)).map(|(key, _)| (*key).clone()).collect();
        for key in pointing {
            self.reverse.invalidate(&key).await;
        }
        match self.inner.entry(user).await {
            Ok(entry) => {
                let mut held: Vec<Reverse> = Vec::new();
                for (provider, references) in &entry.references {
                    held.extend(references.iter().map(|reference| Reverse::Reference(*provider, reference.clone())));
                }
                held.extend(entry.links.iter().map(|(provider, subject)| Reverse::Link(*provider, subject.clone())));
                for key in held {
                    self.reverse.invalidate(&key).await;
                }
            }
            // Unknown what the user holds now: any lookup may have moved to them.
            Err(_) => self.reverse.invalidate_all(),
        }
    }

    fn forget_all(&self) {
        self.invalidations.mark_all();
        self.users.invalidate_all();
        self.reverse.invalidate_all();
    }
}
