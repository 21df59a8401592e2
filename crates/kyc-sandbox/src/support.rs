//! What every sandbox server shares: request counters, serving a router on a loopback port, reading admin request
//! bodies, and the small encodings the providers' webhooks need.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests served per endpoint. The names are fixed when the server starts; asking for another is a test bug.
#[derive(Debug)]
pub struct Counters(BTreeMap<&'static str, AtomicU64>);

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Counts(BTreeMap<&'static str, u64>);

impl Counters {
    pub fn new(names: &[&'static str]) -> Self {
        Counters(names.iter().map(|n| (*n, AtomicU64::new(0))).collect())
    }

    pub fn bump(&self, name: &str) {
        self.0.get(name).unwrap_or_else(|| panic!("no counter {name:?}")).fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Counts {
        Counts(self.0.iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect())
    }
}

impl Counts {
    /// The count of `name`; panics on a name the server does not count.
    pub fn get(&self, name: &str) -> u64 {
        *self.0.get(name).unwrap_or_else(|| panic!("no counter {name:?}; counters are {:?}", self.0.keys()))
    }
}

/// Serves `router`, with `faults` injected, plus `admin` (the sandbox's own `/_sandbox/...` routes, which no fault
/// touches and the fault injector does not count) on the provider's configured address until the runtime stops;
/// answers the base URL.
pub async fn serve(
    name: &'static str,
    settings: &crate::SandboxSettings,
    router: axum::Router,
    admin: axum::Router,
    faults: std::sync::Arc<super::faults::FaultInjector>,
) -> std::io::Result<String> {
    let router = super::faults::wrap(router, faults).merge(admin);
    let wanted = settings.address_for(name);
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("the sandbox {name} cannot listen on {wanted}: {e}")))?;
    let addr = listener.local_addr()?;
    let base_url = settings.base_url(addr);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(sandbox = name, error = %e, "sandbox server stopped");
        }
    });
    Ok(base_url)
}

/// A provider's rate limit of `limit` requests per `window`, as a GCRA (`governor`): up to `limit` at once, then one
/// more every `window / limit`.
pub struct RateLimit(governor::DefaultDirectRateLimiter);

impl RateLimit {
    pub fn new(limit: u32, window: std::time::Duration) -> Self {
        let limit = std::num::NonZeroU32::new(limit.max(1)).expect("at least 1");
        let period = (window / limit.get()).max(std::time::Duration::from_nanos(1));
        let quota = governor::Quota::with_period(period).expect("a non-zero period").allow_burst(limit);
        RateLimit(governor::RateLimiter::direct(quota))
    }

    /// Counts a request; `Err(seconds until the next one may go)` when over the limit.
    pub fn admit(&self) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        self.0.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

/// Compares a presented credential with the expected one in time that does not depend on where they differ.
pub fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    let mut diff = presented.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        diff |= usize::from(presented.get(i).copied().unwrap_or(0) ^ e);
    }
    diff == 0
}

/// The largest body an admin route (`/_sandbox/...`, Sumsub's `testCompleted`) reads: its JSON is a handful of short
/// fields, and a sandbox on loopback is no reason to buffer whatever a script sends.
pub const ADMIN_BODY_LIMIT: usize = 16 * 1024;

/// An admin route's body limit, as a layer for its method router.
pub fn admin_body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(ADMIN_BODY_LIMIT)
}

/// Parses an admin request's JSON body; on failure the status and a message for the provider's own error shape (413
/// for a body over [`ADMIN_BODY_LIMIT`], 400 for anything that is not the expected JSON).
pub fn admin_json<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, (axum::http::StatusCode, String)> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            format!("the request body is larger than {ADMIN_BODY_LIMIT} bytes")
        } else {
            rejection.body_text()
        };
        (status, message)
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| (axum::http::StatusCode::BAD_REQUEST, format!("the request body is not the expected JSON: {e}")))
}

/// Lowercase hex, as the providers write their HMAC digests.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Seconds since the unix epoch (0 for a clock set before it): the providers' tokens, headers and signatures.
pub fn unix_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A random token (48 hex characters, 192 bits) from the operating system's generator: credentials the sandbox
/// draws at start, tokens it issues, references.
pub fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the OS random generator works");
    hex::encode(bytes)
}

/// A fresh random version-4 UUID (RFC 9562 text form) from the operating system's generator: webhook event ids and
/// correlation ids, which must differ between runs (unlike the population's, from [`super::rng::Rng`]).
pub fn random_uuid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut b).expect("the OS random generator works");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_uuid_is_version_4_text() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
        assert!(["8", "9", "a", "b"].contains(&&a[19..20]), "{a}");
    }
}
