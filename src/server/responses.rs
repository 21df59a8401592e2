//! The response cache: a query's whole answer, kept for the same caller asking the same document and variables with
//! the same scopes (of those that can change its answer), with what its audit record needs; a hit writes the same
//! record. Dropped when a user it is about changes, on every replica, at the providers' shortest cache lifetime, or
//! when the first provider cache entry it was built from expires.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Request;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::audit::FieldAccess;
use crate::auth::Principal;
use crate::authz::{rules, Declared};
use crate::graphql::access::{Noted, Operation};
use crate::providers::cache::{CacheConfig, ProviderCache};
use crate::telemetry::metrics as m;

/// What a kept answer is found by: a SHA-256 over everything that can change it (see [`Responses::key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

/// An answer as it was executed (its `data`, serialized once), and what its audit record took from the execution.
pub struct Kept {
    pub data: Box<RawValue>,
    /// The record's fields, and the personal values' places in the answer (to withhold them).
    pub fields: Vec<FieldAccess>,
    pub noted: Vec<Noted>,
    pub subjects: Vec<String>,
    pub operation: Operation,
    /// The users it is about: a change to any of them after `built` drops it.
    users: Vec<String>,
    /// When its execution started: a change marked since then may not be in it.
    built: Instant,
    expires: Instant,
    weight: u32,
}

/// The cache; `None` inside when it is off.
pub struct Responses {
    inner: Option<Inner>,
    /// Answers served from the cache so far (the metric's count, readable in-process).
    served: AtomicU64,
}

struct Inner {
    kept: moka::future::Cache<Key, Arc<Kept>>,
    /// Whose invalidation marks (kept on every replica from the change channel) say when a user last changed.
    providers: ProviderCache,
    declared: Arc<Declared>,
    lifetime: Duration,
    hits: metrics::Counter,
    misses: metrics::Counter,
}

/// Feeds one part of a key, its length first, so no two sequences of parts hash alike.
fn part(context: &mut ring::digest::Context, bytes: &[u8]) {
    context.update(&(bytes.len() as u64).to_le_bytes());
    context.update(bytes);
}

impl Responses {
    /// Off when the provider cache is off (nothing is cached then) or its byte bound is 0; entries live as long as
    /// the shortest-lived provider cache entry.
    pub fn new(config: &CacheConfig, providers: ProviderCache, declared: Arc<Declared>) -> Self {
        let lifetime = config.status_ttl.min(config.negative_ttl).min(config.bulk_ttl);
        if !config.enabled || config.responses_max_bytes == 0 || lifetime.is_zero() {
            return Responses { inner: None, served: AtomicU64::new(0) };
        }
        m::handle();
        let kept = moka::future::Cache::builder()
            .max_capacity(config.responses_max_bytes)
            .weigher(|_: &Key, kept: &Arc<Kept>| {
                m::cache_stored("response", "", kept.weight);
                kept.weight
            })
            .eviction_listener(|_, kept: Arc<Kept>, cause| m::cache_removed("response", "", kept.weight, cause))
            .time_to_live(lifetime)
            .build();
        let counter = |result: &'static str| metrics::counter!(m::CACHE_LOOKUPS, "kind" => "response", "provider" => "", "result" => result);
        let (hits, misses) = (counter("hit"), counter("miss"));
        Responses {
            inner: Some(Inner { kept, providers, declared, lifetime, hits, misses }),
            served: AtomicU64::new(0),
        }
    }

    /// The key of `request` from `caller`: its document, operation name and variables, the caller's `(issuer, kind,
    /// subject)`, whether it stated a purpose, and the caller's scopes that can change this document's answer
    /// ([`rules::scope_can_matter`]). `None` when the cache is off or the document is not in the request.
    pub fn key(&self, request: &Request, caller: &Principal, purpose_stated: bool) -> Option<Key> {
        let inner = self.inner.as_ref()?;
        if request.query.is_empty() {
            return None;
        }
        let mut scopes: Vec<&str> = caller
            .scopes()
            .iter()
            .filter(|scope| rules::scope_can_matter(&inner.declared, scope, &request.query))
            .collect();
        scopes.sort_unstable();
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        part(&mut context, b"kyc-gateway response 1");
        part(&mut context, caller.key().as_bytes());
        part(&mut context, request.query.as_bytes());
        part(&mut context, request.operation_name.as_deref().unwrap_or("\0").as_bytes());
        part(&mut context, &serde_json::to_vec(&request.variables).ok()?);
        // A persisted query's hash is checked against its text on execution: a wrong one must not find the answer.
        part(&mut context, &serde_json::to_vec(&request.extensions.get("persistedQuery")).ok()?);
        part(&mut context, &[u8::from(purpose_stated)]);
        for scope in scopes {
            part(&mut context, scope.as_bytes());
        }
        let digest = context.finish();
        Some(Key(digest.as_ref().try_into().expect("SHA-256 is 32 bytes")))
    }

    /// The answer kept under `key`, if it is still fresh: not expired, and no user it is about changed since it was
    /// built (on this replica or, through the change channel, another).
    pub async fn get(&self, key: &Key) -> Option<Arc<Kept>> {
        let inner = self.inner.as_ref()?;
        let found = inner.kept.get(key).await.filter(|kept| Instant::now() < kept.expires);
        let fresh = match found {
            Some(kept) if !inner.providers.changed_since(&kept.users, kept.built).await => Some(kept),
            Some(_) => {
                inner.kept.invalidate(key).await;
                None
            }
            None => None,
        };
        match fresh {
            Some(_) => {
                inner.hits.increment(1);
                self.served.fetch_add(1, Ordering::Relaxed);
            }
            None => inner.misses.increment(1),
        }
        fresh
    }

    /// How many answers this cache has served.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Keeps an executed answer whose execution started at `built.0`, about `users`, until the shortest provider
    /// cache lifetime has passed or the first provider entry it read (`built.1`) expired, whichever comes first. Only a
    /// complete answer of a cacheable query (no error of any kind, no read of the trail) is kept.
    #[allow(clippy::too_many_arguments)]
    pub async fn keep(
        &self,
        key: Key,
        (built, first_expiry): (Instant, Option<Instant>),
        response: &async_graphql::Response,
        noted: &[Noted],
        subjects: &[String],
        operation: &Operation,
        users: Vec<String>,
    ) {
        let Some(inner) = &self.inner else { return };
        if !operation.cacheable
            || !operation.trail_reads.is_empty()
            || !response.errors.is_empty()
            || !response.extensions.is_empty()
        {
            return;
        }
        let Ok(data) = serde_json::value::to_raw_value(&response.data) else { return };
        let size = data.get().len()
            + noted.iter().map(|n| 2 * n.field.len() + 16 * n.at.len() + 64).sum::<usize>()
            + users.iter().chain(subjects).map(|u| u.len() + 24).sum::<usize>()
            + 256;
        let kept = Kept {
            data,
            fields: crate::graphql::access::field_paths(noted),
            noted: noted.to_vec(),
            subjects: subjects.to_vec(),
            operation: operation.clone(),
            users,
            built,
            expires: first_expiry.map_or(built + inner.lifetime, |first| first.min(built + inner.lifetime)),
            weight: u32::try_from(size).unwrap_or(u32::MAX),
        };
        inner.kept.insert(key, Arc::new(kept)).await;
    }
}
