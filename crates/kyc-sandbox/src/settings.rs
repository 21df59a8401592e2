//! Settings of the sandbox providers, read from the `KYC_GATEWAY_SANDBOX_*` variables ([`SandboxSettings::from_vars`]).
//! No production default comes from here.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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
    /// Faults of every provider, unless it has its own in `faults_of`.
    pub faults: Faults,
    /// Faults of one provider, by its name (`sumsub`).
    pub faults_of: BTreeMap<String, Faults>,
    /// How the sandbox providers deliver their webhooks.
    pub webhooks: SandboxWebhookSettings,
    /// The address the providers listen on.
    pub host: IpAddr,
    /// The host name in the base URLs the providers announce, when not `host` (a name other machines resolve).
    pub advertise: Option<String>,
    /// A provider's port, by its name; a free one for the others.
    pub ports: BTreeMap<String, u16>,
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
            faults: Faults::default(),
            faults_of: BTreeMap::new(),
            webhooks: SandboxWebhookSettings::default(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertise: None,
            ports: BTreeMap::new(),
        }
    }
}

impl SandboxSettings {
    /// The faults `provider` starts with.
    pub fn faults_for(&self, provider: &str) -> Faults {
        self.faults_of.get(provider).unwrap_or(&self.faults).clone()
    }

    /// Where `provider` listens.
    pub fn address_for(&self, provider: &str) -> SocketAddr {
        SocketAddr::new(self.host, self.ports.get(provider).copied().unwrap_or(0))
    }

    /// The base URL of a provider listening on `bound`.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        match &self.advertise {
            Some(host) => format!("http://{host}:{}", bound.port()),
            None if bound.ip().is_unspecified() => format!("http://127.0.0.1:{}", bound.port()),
            None => format!("http://{bound}"),
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

/// The variables the sandbox reads, besides `KYC_GATEWAY_SANDBOX_<PROVIDER>_FAULTS` (one per provider).
pub const VARIABLES: [&str; 8] = [
    "KYC_GATEWAY_SANDBOX_USERS",
    "KYC_GATEWAY_SANDBOX_SEED",
    "KYC_GATEWAY_SANDBOX_TOKEN_TTL_SECS",
    "KYC_GATEWAY_SANDBOX_FAULTS",
    "KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS",
    "KYC_GATEWAY_SANDBOX_WEBHOOK_DUPLICATE",
    "KYC_GATEWAY_SANDBOX_WEBHOOK_REORDER_MS",
    "KYC_GATEWAY_SANDBOX_SUMSUB_DIGEST_ALG",
];

/// A sandbox setting that is not valid; names its variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

/// The most retries a sandbox webhook delivery may be given, and the longest wait before one or for reordering:
/// the sandbox imitates the providers' delivery on a short clock, and a day (the providers' longest wait) is plenty.
const MAX_WEBHOOK_RETRIES: usize = 16;
const MAX_WEBHOOK_WAIT: Duration = Duration::from_secs(24 * 3600);

impl SandboxSettings {
    /// Reads the `KYC_GATEWAY_SANDBOX_*` variables through `var` (unset and empty are the same), for `providers`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, providers: &[&str]) -> Result<Self, SettingsError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let fail = |name: &str, value: &str, why: &str| SettingsError(format!("{name}={value:?} {why}"));
        let number = |name: &str, default: u64| -> Result<u64, SettingsError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| fail(name, &v, "is not a whole number")),
            }
        };
        let faults = |name: &str, default: &Faults| -> Result<Faults, SettingsError> {
            match get(name) {
                None => Ok(default.clone()),
                Some(v) => serde_json::from_str(&v).map_err(|e| SettingsError(format!("{name} is not valid: {e}"))),
            }
        };
        let d = SandboxSettings::default();
        let all = faults("KYC_GATEWAY_SANDBOX_FAULTS", &d.faults)?;
        let mut faults_of = BTreeMap::new();
        for provider in providers {
            let name = format!("KYC_GATEWAY_SANDBOX_{}_FAULTS", provider.to_ascii_uppercase());
            if get(&name).is_some() {
                faults_of.insert(provider.to_string(), faults(&name, &all)?);
            }
        }
        Ok(SandboxSettings {
            users: number("KYC_GATEWAY_SANDBOX_USERS", d.users as u64)? as usize,
            seed: number("KYC_GATEWAY_SANDBOX_SEED", d.seed)?,
            fractal_token_ttl: Duration::from_secs(number(
                "KYC_GATEWAY_SANDBOX_TOKEN_TTL_SECS",
                d.fractal_token_ttl.as_secs(),
            )?),
            faults: all,
            faults_of,
            webhooks: webhooks(&get, d.webhooks)?,
            ..d
        })
    }
}

fn webhooks(
    get: &dyn Fn(&str) -> Option<String>,
    d: SandboxWebhookSettings,
) -> Result<SandboxWebhookSettings, SettingsError> {
    const RETRY: &str = "KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS";
    let retry_schedule = match get(RETRY) {
        None => d.retry_schedule,
        Some(value) if value.trim() == "off" => Vec::new(),
        Some(value) => {
            let waits = value
                .split(',')
                .map(|ms| ms.trim().parse::<u64>().map(Duration::from_millis))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    SettingsError(format!("{RETRY}={value:?} is not valid: {e} (comma-separated milliseconds, or off)"))
                })?;
            if waits.len() > MAX_WEBHOOK_RETRIES || waits.iter().any(|w| *w > MAX_WEBHOOK_WAIT) {
                return Err(SettingsError(format!(
                    "{RETRY}={value:?}: at most {MAX_WEBHOOK_RETRIES} waits of at most a day each"
                )));
            }
            waits
        }
    };
    const DUPLICATE: &str = "KYC_GATEWAY_SANDBOX_WEBHOOK_DUPLICATE";
    let duplicate = match get(DUPLICATE).as_deref().map(str::trim) {
        None => d.duplicate,
        Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(SettingsError(format!("{DUPLICATE}={other:?} must be on or off"))),
    };
    const REORDER: &str = "KYC_GATEWAY_SANDBOX_WEBHOOK_REORDER_MS";
    let reorder_window = match get(REORDER) {
        None => d.reorder_window,
        Some(v) => Duration::from_millis(
            v.trim().parse().map_err(|_| SettingsError(format!("{REORDER}={v:?} is not a whole number")))?,
        ),
    };
    if reorder_window > MAX_WEBHOOK_WAIT {
        return Err(SettingsError(format!("{REORDER} must be at most a day ({} ms)", MAX_WEBHOOK_WAIT.as_millis())));
    }
    const ALG: &str = "KYC_GATEWAY_SANDBOX_SUMSUB_DIGEST_ALG";
    let sumsub_digest_alg = match get(ALG) {
        None => d.sumsub_digest_alg,
        Some(v) if SUMSUB_DIGEST_ALGS.contains(&v.trim()) => v.trim().to_owned(),
        Some(v) => return Err(SettingsError(format!("{ALG}={v:?} must be one of {}", SUMSUB_DIGEST_ALGS.join(", ")))),
    };
    Ok(SandboxWebhookSettings { retry_schedule, duplicate, reorder_window, sumsub_digest_alg })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<SandboxSettings, SettingsError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SandboxSettings::from_vars(|k| map.get(k).cloned(), &["fractal", "sila"])
    }

    #[test]
    fn webhook_settings_default_to_a_short_schedule_and_read_their_variables() {
        let d = from(&[]).expect("defaults").webhooks;
        assert_eq!(d.retry_schedule, [100, 500, 2_000, 10_000].map(Duration::from_millis));
        assert!(!d.duplicate && d.reorder_window.is_zero());
        assert_eq!(d.sumsub_digest_alg, "HMAC_SHA256_HEX");
        let c = from(&[
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS", "5, 10,20"),
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_DUPLICATE", "on"),
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_REORDER_MS", "50"),
            ("KYC_GATEWAY_SANDBOX_SUMSUB_DIGEST_ALG", "HMAC_SHA512_HEX"),
        ])
        .expect("valid");
        let w = c.webhooks;
        assert_eq!(w.retry_schedule, [5, 10, 20].map(Duration::from_millis));
        assert!(w.duplicate);
        assert_eq!(w.reorder_window, Duration::from_millis(50));
        assert_eq!(w.sumsub_digest_alg, "HMAC_SHA512_HEX");
        let off = from(&[("KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS", "off")]).expect("valid");
        assert!(off.webhooks.retry_schedule.is_empty());
    }

    #[test]
    fn a_bad_setting_names_its_variable() {
        for (name, value) in [
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS", "100,soon"),
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS", "999999999999"),
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_DUPLICATE", "yes"),
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_REORDER_MS", "-1"),
            ("KYC_GATEWAY_SANDBOX_SUMSUB_DIGEST_ALG", "HMAC_MD5_HEX"),
            ("KYC_GATEWAY_SANDBOX_SILA_FAULTS", "{\"latency\": 1}"),
            ("KYC_GATEWAY_SANDBOX_USERS", "many"),
        ] {
            let err = from(&[(name, value)]).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn a_provider_s_own_faults_replace_the_common_ones() {
        let c = from(&[
            ("KYC_GATEWAY_SANDBOX_FAULTS", r#"{"latency_ms": 5}"#),
            ("KYC_GATEWAY_SANDBOX_SILA_FAULTS", r#"{"error_rate": 1.0}"#),
        ])
        .expect("valid");
        assert_eq!(c.faults_for("fractal").latency_ms, 5);
        assert_eq!(c.faults_for("sila"), Faults { error_rate: 1.0, ..Faults::default() });
    }
}
