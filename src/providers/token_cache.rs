//! A bearer token the gateway obtains with its own credentials (an OAuth client-credentials grant, say), cached until
//! shortly before it expires and fetched once however many requests need it. A failed fetch is remembered for a second,
//! so the requests queued behind it fail at once instead of each waiting out a hanging provider.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Mutex;

use super::ProviderError;
use crate::secret::Secret;

struct Cached {
    token: Secret,
    renew_at: Instant,
}

#[derive(Default)]
pub struct TokenCache {
    cached: Mutex<Option<Cached>>,
    failed: Mutex<Option<(Instant, ProviderError)>>,
}

/// How long a failed fetch answers for the requests behind it.
const FAILURE_MEMORY: Duration = Duration::from_secs(1);

/// A token's lifetime from an `expires_in`, bounded so that no answer can overflow the clock arithmetic.
pub fn lifetime(expires_in_secs: u64) -> Duration {
    Duration::from_secs(expires_in_secs.clamp(1, 30 * 24 * 3600))
}

/// Renew a token this long before it expires, but never more than half its lifetime early.
pub fn renew_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(60).min(lifetime / 2)
}

impl TokenCache {
    /// The cached token, or a new one from `fetch` (token and lifetime). Callers that arrive while a fetch is under
    /// way wait for it and share its token.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Secret, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), ProviderError>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.renew_at > Instant::now()) {
            return Ok(c.token.clone());
        }
        if let Some((at, error)) = self.failed.lock().await.as_ref() {
            if at.elapsed() < FAILURE_MEMORY {
                return Err(error.clone());
            }
        }
        let (token, lifetime) = match fetch().await {
            Ok(fetched) => fetched,
            Err(error) => {
                *self.failed.lock().await = Some((Instant::now(), error.clone()));
                return Err(error);
            }
        };
        *self.failed.lock().await = None;
        *cached = Some(Cached { token: token.clone(), renew_at: Instant::now() + lifetime - renew_margin(lifetime) });
        Ok(token)
    }

    /// Forgets `token` (the provider refused it early); a newer token fetched meanwhile stays.
    pub async fn forget(&self, token: &Secret) {
        self.cached.lock().await.take_if(|c| &c.token == token);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_and_a_forgotten_token_is_fetched_again() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let fetch = |fetches: Arc<AtomicU32>| async move {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok((Secret::new(format!("t{n}")), Duration::from_secs(3600)))
        };
        let calls = (0..10).map(|_| {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tokio::spawn(async move { cache.get(|| fetch(fetches)).await.expect("token") })
        });
        for call in calls {
            assert_eq!(call.await.expect("joined").expose(), "t0");
        }
        cache.forget(&Secret::new("t0")).await;
        assert_eq!(cache.get(|| fetch(fetches.clone())).await.expect("token").expose(), "t1");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_fetch_answers_the_requests_behind_it() {
        let cache = TokenCache::default();
        let fetches = AtomicU32::new(0);
        let failing = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Err::<(Secret, Duration), _>(ProviderError::Timeout)
        };
        assert!(matches!(cache.get(failing).await, Err(ProviderError::Timeout)));
        assert!(matches!(cache.get(failing).await, Err(ProviderError::Timeout)));
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "the second caller got the remembered failure");
    }

    #[test]
    fn margins_stay_inside_short_lifetimes() {
        assert_eq!(renew_margin(Duration::from_secs(7200)), Duration::from_secs(60));
        assert_eq!(renew_margin(Duration::from_secs(8)), Duration::from_secs(4));
        assert_eq!(lifetime(u64::MAX), Duration::from_secs(30 * 24 * 3600));
    }
}
