//! Settings of the embedded sandbox providers. Plain data: the sandbox reads them, configuration never reads the
//! sandbox, and no production default comes from here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a sandbox provider does wrong, on purpose (`KYC_GATEWAY_SANDBOX_FAULTS`, or at run time through its admin
/// endpoint `PUT /_sandbox/faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every answer.
    pub latency_ms: u64,
    /// Up to this much more, at random.
    pub jitter_ms: u64,
    /// Share of requests answered 503 (0 to 1).
    pub error_rate: f64,
    /// Share of requests that hang for a minute, past any client timeout (0 to 1).
    pub timeout_rate: f64,
    /// The next this-many requests answer 503.
    pub fail_next: u32,
    /// The next this-many requests answer 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_next: u32,
    pub retry_after_secs: u64,
    /// When set, `fail_next` and `rate_limit_next` count only requests of this method (`PUT`, say).
    pub only_method: Option<String>,
}

/// One value per sandbox provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerProvider<T> {
    pub fractal: T,
    pub sumsub: T,
    pub sila: T,
    pub ident: T,
}

/// How the sandbox providers behave.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Generated users besides the people of the providers' documentation.
    pub users: usize,
    /// Seed of the generated population: the same seed gives the same people everywhere.
    pub seed: u64,
    /// Lifetime of the sandbox Fractal's access tokens (Fractal: 2 hours).
    pub fractal_token_ttl: Duration,
    /// Lifetime of the sandbox Sila's bearer tokens (Sila: 8 hours).
    pub sila_token_ttl: Duration,
    /// Requests the sandbox Sumsub allows per window: GET and POST (Sumsub: 300 and 50 per 5 s).
    pub sumsub_get_limit: u32,
    pub sumsub_post_limit: u32,
    pub sumsub_window: Duration,
    pub faults: PerProvider<Faults>,
    /// How the sandbox providers deliver their webhooks.
    pub webhooks: SandboxWebhookSettings,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            users: 1000,
            seed: 42,
            fractal_token_ttl: Duration::from_secs(7200),
            sila_token_ttl: Duration::from_secs(8 * 3600),
            sumsub_get_limit: 300,
            sumsub_post_limit: 50,
            sumsub_window: Duration::from_secs(5),
            faults: PerProvider::default(),
            webhooks: SandboxWebhookSettings::default(),
        }
    }
}

/// The digest algorithms a Sumsub webhook may be signed with (`X-Payload-Digest-Alg`; Sumsub's webhook
/// documentation: `HMAC_SHA256_HEX` is the dashboard's default).
pub const SUMSUB_DIGEST_ALGS: [&str; 3] = ["HMAC_SHA1_HEX", "HMAC_SHA256_HEX", "HMAC_SHA512_HEX"];

/// How the sandbox providers deliver webhooks to the gateway. The real providers retry over minutes to a day
/// (Fractal 20 s to a day, Sumsub 5 min to 18 h); the sandbox keeps their behaviour (at least once, retried, possibly
/// duplicated, unordered) on a schedule short enough for tests and scripts.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxWebhookSettings {
    /// The waits before the second, third, ... attempt of a delivery that failed; after the last, it is given up.
    pub retry_schedule: Vec<Duration>,
    /// Deliver every event twice, as an at-least-once provider may.
    pub duplicate: bool,
    /// When not zero, events sent within this window are held and delivered newest first when it closes.
    pub reorder_window: Duration,
    /// Sumsub's `X-Payload-Digest-Alg`: one of [`SUMSUB_DIGEST_ALGS`].
    pub sumsub_digest_alg: String,
}

impl Default for SandboxWebhookSettings {
    fn default() -> Self {
        SandboxWebhookSettings {
            retry_schedule: [100, 500, 2_000, 10_000].into_iter().map(Duration::from_millis).collect(),
            duplicate: false,
            reorder_window: Duration::ZERO,
            sumsub_digest_alg: "HMAC_SHA256_HEX".into(),
        }
    }
}
