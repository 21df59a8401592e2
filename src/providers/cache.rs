//! The cache across requests: what providers answered, per provider and kind of data, keyed by gateway user.
//!
//! Everything cached was fetched with the gateway's own credentials and is the same for every caller; the scope rules
//! run after the cache, per request. Concurrent misses for one key become one upstream call (`try_get_with`);
//! "nothing there" answers (no applicant, no Sila entity, no Fractal link) are kept only briefly; the size is
//! bounded by an estimate of bytes; and [`ProviderCache::invalidate_user`] drops everything about one user (webhooks
//! will call it).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::application::KycApplication;
use crate::domain::{ProviderProfile, VerificationCase};
use crate::providers::ProviderError;

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
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            status_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            bulk_ttl: Duration::from_secs(60),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What is cached, per provider and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    FractalProfile,
    /// Fractal's per-user verification statistics (one bulk answer, key "").
    FractalStates,
    SumsubCases,
    SilaCases,
    /// Sila reason tags of one verification (key: `handle` NUL `uuid`; the handle is the user id by default, so
    /// invalidating a user also drops these).
    SilaReasons,
    IdentApplications,
    /// ident's whole application list (one bulk answer, key "").
    IdentAll,
}

impl Kind {
    /// Kinds answered in bulk for every user at once.
    fn is_bulk(self) -> bool {
        matches!(self, Kind::FractalStates | Kind::IdentAll)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub kind: Kind,
    pub id: String,
}

impl Key {
    pub fn new(kind: Kind, id: impl Into<String>) -> Self {
        Key { kind, id: id.into() }
    }
}

/// A cached answer.
#[derive(Debug, Clone)]
pub enum Value {
    Profile(Option<Arc<ProviderProfile>>),
    Cases(Arc<Vec<VerificationCase>>),
    /// Cases per user (Fractal uid or ident user id).
    CasesByUser(Arc<HashMap<String, Arc<Vec<VerificationCase>>>>),
    Applications(Arc<Vec<KycApplication>>),
    ApplicationsByUser(Arc<HashMap<String, Arc<Vec<KycApplication>>>>),
    Reasons(Option<Arc<Vec<String>>>),
}

impl Value {
    /// "Nothing there": kept for the negative TTL only.
    fn is_negative(&self) -> bool {
        match self {
            Value::Profile(p) => p.is_none(),
            Value::Cases(c) => c.is_empty(),
            Value::Applications(a) => a.is_empty(),
            Value::Reasons(r) => r.is_none(),
            Value::CasesByUser(_) | Value::ApplicationsByUser(_) => false,
        }
    }

    /// A rough size in bytes, for the cache's bound.
    fn weight(&self) -> u32 {
        const CASE: usize = 600;
        const APPLICATION: usize = 800;
        let bytes = match self {
            Value::Profile(p) => p.as_ref().map_or(64, |p| 256 + p.cases.len() * CASE + p.wallets.len() * 128),
            Value::Cases(c) => 64 + c.len() * CASE,
            Value::CasesByUser(m) => m.values().map(|c| 96 + c.len() * 160).sum(),
            Value::Applications(a) => 64 + a.len() * APPLICATION,
            Value::ApplicationsByUser(m) => m.values().map(|a| 96 + a.len() * APPLICATION).sum(),
            Value::Reasons(r) => r.as_ref().map_or(64, |r| 64 + r.len() * 32),
        };
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

struct Ttls(CacheConfig);

impl moka::Expiry<Key, Value> for Ttls {
    fn expire_after_create(&self, key: &Key, value: &Value, _created_at: Instant) -> Option<Duration> {
        Some(if key.kind.is_bulk() {
            self.0.bulk_ttl
        } else if value.is_negative() {
            self.0.negative_ttl
        } else {
            self.0.status_ttl
        })
    }
}

/// The cache; a no-op when disabled.
#[derive(Clone)]
pub struct ProviderCache {
    inner: Option<moka::future::Cache<Key, Value>>,
}

impl ProviderCache {
    pub fn new(config: &CacheConfig) -> Self {
        let inner = config.enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(config.max_bytes)
                .weigher(|_key: &Key, value: &Value| value.weight())
                .expire_after(Ttls(config.clone()))
                .support_invalidation_closures()
                .build()
        });
        ProviderCache { inner }
    }

    /// The cached answer for `key`, or `fetch`'s; concurrent misses for one key wait for one fetch. Errors are not
    /// cached.
    pub async fn get_or_fetch<F, Fut>(&self, key: Key, fetch: F) -> Result<Value, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, ProviderError>>,
    {
        match &self.inner {
            None => fetch().await,
            Some(cache) => cache.try_get_with(key, fetch()).await.map_err(|e: Arc<ProviderError>| (*e).clone()),
        }
    }

    /// Forgets everything cached about `user_id` (and the bulk answers, which include every user).
    pub fn invalidate_user(&self, user_id: &str) {
        if let Some(cache) = &self.inner {
            let user = user_id.to_owned();
            let prefix = format!("{user_id}\0");
            let _ = cache.invalidate_entries_if(move |key, _| {
                key.kind.is_bulk() || key.id == user || key.id.starts_with(&prefix)
            });
        }
    }

    /// Forgets everything.
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.inner {
            cache.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn cache(status: u64, negative: u64) -> ProviderCache {
        ProviderCache::new(&CacheConfig {
            status_ttl: Duration::from_millis(status),
            negative_ttl: Duration::from_millis(negative),
            ..CacheConfig::default()
        })
    }

    async fn fetch(calls: &AtomicU32, value: Value) -> Result<Value, ProviderError> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(value)
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch_and_entries_expire() {
        let cache = cache(200, 50);
        let calls = AtomicU32::new(0);
        let value = Value::Reasons(Some(Arc::new(vec!["tag".into()])));
        let gets =
            (0..20).map(|_| cache.get_or_fetch(Key::new(Kind::SilaReasons, "u"), || fetch(&calls, value.clone())));
        futures_util::future::join_all(gets).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        cache.get_or_fetch(Key::new(Kind::SilaReasons, "u"), || fetch(&calls, value.clone())).await.expect("value");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "expired after the status TTL");
    }

    #[tokio::test]
    async fn nothing_there_is_kept_only_for_the_negative_ttl_and_users_can_be_forgotten() {
        let cache = cache(10_000, 50);
        let calls = AtomicU32::new(0);
        let none = || fetch(&calls, Value::Reasons(None));
        cache.get_or_fetch(Key::new(Kind::SilaReasons, "a"), none).await.expect("value");
        cache.get_or_fetch(Key::new(Kind::SilaReasons, "a"), none).await.expect("value");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        cache.get_or_fetch(Key::new(Kind::SilaReasons, "a"), none).await.expect("value");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let some = || fetch(&calls, Value::Reasons(Some(Arc::new(Vec::new()))));
        cache.get_or_fetch(Key::new(Kind::SilaReasons, "b"), some).await.expect("value");
        cache.invalidate_user("b");
        cache.get_or_fetch(Key::new(Kind::SilaReasons, "b"), some).await.expect("value");
        assert_eq!(calls.load(Ordering::SeqCst), 4, "invalidated");
    }
}
