//! Keeping a cache from storing what was fetched before an invalidation: moka's invalidation misses a fetch already
//! under way, whose older answer would then be served for a whole TTL. [`Invalidations::fetch_fresh`] fetches again
//! instead; the provider and directory caches use it (ARCHITECTURE.md, "Foundation").

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use moka::future::Cache;

/// How many times a fetch is repeated while its key keeps being invalidated before it is answered uncached.
const ATTEMPTS: usize = 3;

/// When each group was last invalidated, remembered for `ttl`.
#[derive(Clone)]
pub struct Invalidations {
    marks: Cache<Arc<str>, Instant>,
    /// When everything was last invalidated.
    everything: Arc<std::sync::Mutex<Option<Instant>>>,
}

/// Why a cached fetch did not produce a value to keep.
enum Fetch<E> {
    Failed(E),
    Superseded,
}

impl Invalidations {
    /// Marks are kept for `ttl`: at least as long as any answer that could predate them (a cached entry's TTL plus the
    /// longest fetch).
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Invalidations {
            marks: Cache::builder().time_to_live(ttl).max_capacity(capacity).build(),
            everything: Arc::default(),
        }
    }

    /// `group` changed now.
    pub async fn mark(&self, group: &str) {
        self.marks.insert(Arc::from(group), Instant::now()).await;
    }

    /// Every group changed now.
    pub fn mark_all(&self) {
        *self.everything.lock().expect("invalidations lock") = Some(Instant::now());
    }

    /// When `group` last changed (on its own or with everything), if that is still remembered.
    pub async fn since(&self, group: &str) -> Option<Instant> {
        let all = *self.everything.lock().expect("invalidations lock");
        self.marks.get(group).await.max(all)
    }

    /// `cache`'s entry for `key`, or `fetch`'s answer, kept only if `group` was not invalidated while it was fetched;
    /// concurrent misses share one fetch (a hit for the callers that waited for it). Errors are not kept. Counted
    /// as a lookup of `kind` (a metric label: the kind of entry, and its provider's label or `""`).
    pub async fn fetch_fresh<K, V, E, F, Fut>(
        &self,
        kind: (&'static str, &'static str),
        cache: &Cache<K, V>,
        key: K,
        group: &str,
        fetch: F,
    ) -> Result<V, E>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        E: Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let fetched = std::sync::atomic::AtomicBool::new(false);
        let counted = |outcome| {
            let hit = !fetched.load(std::sync::atomic::Ordering::Relaxed);
            crate::telemetry::metrics::cache_lookup(kind.0, kind.1, hit);
            outcome
        };
        for _ in 0..ATTEMPTS {
            let started = Instant::now();
            let outcome = cache
                .try_get_with(key.clone(), async {
                    fetched.store(true, std::sync::atomic::Ordering::Relaxed);
                    let value = fetch().await.map_err(Fetch::Failed)?;
                    if self.since(group).await.is_some_and(|at| at >= started) {
                        return Err(Fetch::Superseded);
                    }
                    Ok(value)
                })
                .await;
            match outcome {
                Ok(value) => return counted(Ok(value)),
                Err(error) => match &*error {
                    Fetch::Failed(e) => return counted(Err(e.clone())),
                    Fetch::Superseded => continue,
                },
            }
        }
        counted(fetch().await)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn an_answer_fetched_across_an_invalidation_is_not_kept() {
        let marks = Invalidations::new(Duration::from_secs(60), 100);
        let cache: Cache<&'static str, &'static str> = Cache::new(100);
        let calls = AtomicU32::new(0);
        let (release, released) = tokio::sync::watch::channel(false);
        let slow = async {
            marks
                .fetch_fresh(("test", ""), &cache, "k", "u", || {
                    let mut released = released.clone();
                    let call = calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if call == 0 {
                            let _ = released.wait_for(|r| *r).await;
                            return Ok::<_, ()>("old");
                        }
                        Ok("new")
                    }
                })
                .await
        };
        let change = async {
            tokio::task::yield_now().await;
            marks.mark("u").await;
            cache.invalidate(&"k").await;
            let _ = release.send(true);
        };
        let (answer, ()) = tokio::join!(slow, change);
        assert_eq!(answer, Ok("new"), "the answer read before the change is fetched again");
        assert_eq!(cache.get(&"k").await, Some("new"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
