//! Typed configuration from the environment. Everything is checked at start-up, never on the first request.
//!
//! With no provider configured the gateway runs in sandbox mode: it starts the embedded sandbox providers and accepts
//! dev tokens. Configuring a real provider switches to production mode, which refuses dev tokens and refuses to start
//! without a token issuer of its own.
//!
//! Configuration types live here or with the layer they configure (`providers` for the upstream policy and the
//! cache); configuration never reads the GraphQL layer or the sandbox.

mod audit;
mod env;
mod hardening;
mod operations;
mod providers;
mod realtime;
mod sandbox;
mod state;
mod tokens;
mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;

pub use env::{socket_addr, Env};
pub use hardening::{ConnectionSettings, CorsSettings, DocumentSettings, QueryLimits, TrustedMode};
pub use operations::{LogFormat, OperationsSettings};
pub use providers::{
    FractalSettings, IdentSettings, LevelSettings, SilaSettings, SumsubSettings, DEFAULT_IDENT_TYPES,
    DEFAULT_SUMSUB_LEVELS,
};
pub use realtime::{SubscriptionSettings, WebhookSettings};
pub use sandbox::{Faults, PerProvider, SandboxSettings, SandboxWebhookSettings, SUMSUB_DIGEST_ALGS};
pub use state::{EncryptionSettings, LinkSettings};
pub use upstream::Policies;

pub use crate::auth::claims::{ClaimRules, ClientRule};
pub use crate::auth::token::{IssuerSettings, SecretIssuer, TokenSettings};

use crate::auth::token::DEFAULT_DEV_SECRET;
use crate::providers::cache::CacheConfig;
use crate::secret::Secret;
use crate::store::StoreSettings;

/// How resolvers reach the providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FanOut {
    /// DataLoaders, providers in parallel: the gateway as it ships.
    #[default]
    Batched,
    /// The naive baseline the benchmark compares against: every field calls every provider it needs directly, one
    /// after the other.
    Naive,
}

/// The DataLoaders' default batching window. async-graphql resolves the fields of a list concurrently, so every key
/// of one list is queued within the same scheduler pass; 100 µs catches them without adding the loaders' default
/// 1 ms to every request (measured in `kyc-bench`, see BENCHMARKS.md).
pub const DEFAULT_LOADER_DELAY: Duration = Duration::from_micros(100);

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Signs and verifies sandbox dev tokens.
    pub dev_secret: Secret,
    /// Real providers. With none configured the gateway runs the sandbox; with some, the others stay off.
    pub fractal: Option<FractalSettings>,
    pub sumsub: Option<SumsubSettings>,
    pub sila: Option<SilaSettings>,
    pub ident: Option<IdentSettings>,
    pub levels: LevelSettings,
    /// How a user id becomes a Sila user handle (`{user_id}` is replaced).
    pub sila_user_handle_template: String,
    /// Production mode: the issuers of callers' tokens and what their tokens must say (sandbox mode accepts dev
    /// tokens only).
    pub tokens: TokenSettings,
    /// The database (required in production mode; sandbox mode defaults to an in-memory SQLite database).
    pub database: Option<StoreSettings>,
    /// The keys of secrets at rest (required in production mode; sandbox mode derives one from the dev secret).
    pub encryption: Option<EncryptionSettings>,
    /// How users link Fractal.
    pub linking: LinkSettings,
    /// Providers' webhooks.
    pub webhooks: WebhookSettings,
    /// GraphQL subscriptions over WebSocket.
    pub subscriptions: SubscriptionSettings,
    /// Bounds on operations and answers.
    pub limits: QueryLimits,
    /// Which documents may run; introspection and suggestions.
    pub documents: DocumentSettings,
    /// Timeouts and bounds of connections and requests.
    pub connections: ConnectionSettings,
    /// Browser origins allowed to call.
    pub cors: CorsSettings,
    /// The audit trail.
    pub audit: crate::audit::AuditSettings,
    /// Logs, the metrics listener, shutdown.
    pub operations: OperationsSettings,
    pub sandbox: SandboxSettings,
    /// How each provider is called (timeouts, concurrency, rate limit, retries, breaker).
    pub policies: Policies,
    pub cache: CacheConfig,
    /// Batched (the gateway) or naive (the benchmark's baseline).
    pub fan_out: FanOut,
    /// The DataLoaders' batching window.
    pub loader_delay: Duration,
    /// The most ids `users(ids:)` takes.
    pub max_user_ids: usize,
}

impl Default for Config {
    /// Sandbox mode on `127.0.0.1:8080` with the documented defaults.
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dev_secret: Secret::new(DEFAULT_DEV_SECRET),
            fractal: None,
            sumsub: None,
            sila: None,
            ident: None,
            levels: LevelSettings::default(),
            sila_user_handle_template: "{user_id}".into(),
            tokens: TokenSettings::default(),
            database: None,
            encryption: None,
            linking: LinkSettings::default(),
            webhooks: WebhookSettings::default(),
            subscriptions: SubscriptionSettings::default(),
            limits: QueryLimits::default(),
            documents: DocumentSettings::default(),
            connections: ConnectionSettings::default(),
            cors: CorsSettings::default(),
            audit: crate::audit::AuditSettings::default(),
            operations: OperationsSettings::default(),
            sandbox: SandboxSettings::default(),
            policies: Policies::default(),
            cache: CacheConfig::default(),
            fan_out: FanOut::Batched,
            loader_delay: DEFAULT_LOADER_DELAY,
            max_user_ids: 500,
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `var` (the environment, or a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let env = Env::new(&var);
        let d = Config::default();
        let providers = providers::Providers::from_env(&env)?;
        let config = Config {
            listen: env.addr("KYC_GATEWAY_LISTEN", d.listen)?,
            dev_secret: env.get("KYC_GATEWAY_DEV_SECRET").map(Secret::new).unwrap_or(d.dev_secret),
            fractal: providers.fractal,
            sumsub: providers.sumsub,
            sila: providers.sila,
            ident: providers.ident,
            levels: LevelSettings::from_env(&env)?,
            sila_user_handle_template: providers::sila_user_handle_template(&env)?,
            tokens: tokens::tokens(&env)?,
            database: state::database(&env)?,
            encryption: state::encryption(&env)?,
            linking: state::linking(&env)?,
            webhooks: realtime::webhooks(&env)?,
            subscriptions: realtime::subscriptions(&env)?,
            limits: hardening::query_limits(&env)?,
            documents: hardening::documents(&env)?,
            connections: hardening::connections(&env)?,
            cors: hardening::cors(&env)?,
            audit: audit::audit(&env)?,
            operations: operations::operations(&env)?,
            sandbox: sandbox_settings(&env, d.sandbox)?,
            policies: Policies::from_env(&env)?,
            cache: cache_config(&env, d.cache)?,
            fan_out: env.choice(
                "KYC_GATEWAY_FANOUT",
                &[("batched", FanOut::Batched), ("naive", FanOut::Naive)],
                d.fan_out,
            )?,
            loader_delay: Duration::from_micros(
                env.parse("KYC_GATEWAY_LOADER_DELAY_US", d.loader_delay.as_micros() as u64)?,
            ),
            max_user_ids: env.parse("KYC_GATEWAY_MAX_USER_IDS", d.max_user_ids)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Sandbox mode: no real provider configured.
    pub fn is_sandbox(&self) -> bool {
        self.fractal.is_none() && self.sumsub.is_none() && self.sila.is_none() && self.ident.is_none()
    }

    /// The start-up checks of production mode: token issuers of its own (no dev secret, no short shared secret), a
    /// database and a key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_user_ids == 0 {
            bail!("KYC_GATEWAY_MAX_USER_IDS must be at least 1");
        }
        if self.is_sandbox() {
            if tokens::any_issuer(&self.tokens) {
                bail!(
                    "KYC_GATEWAY_JWT_ISSUERS, KYC_GATEWAY_JWT_SECRET and KYC_GATEWAY_JWT_ISSUER configure production \
                     mode, but no real provider is configured; configure one, or unset them to run the sandbox"
                );
            }
            return Ok(());
        }
        tokens::check_production(&self.tokens, &self.dev_secret)?;
        if self.database.is_none() {
            bail!(
                "refusing to start: production mode keeps users' Fractal links in a database; set \
                 KYC_GATEWAY_DATABASE_URL (postgres://... for several replicas, sqlite://PATH for one)"
            );
        }
        if self.encryption.is_none() {
            bail!(
                "refusing to start: production mode seals tokens at rest; set KYC_GATEWAY_ENCRYPTION_KEY (32 random \
                 bytes in base64, e.g. `openssl rand -base64 32`)"
            );
        }
        Ok(())
    }
}

fn sandbox_settings(env: &Env<'_>, d: SandboxSettings) -> anyhow::Result<SandboxSettings> {
    let all = env.json("KYC_GATEWAY_SANDBOX_FAULTS", Faults::default())?;
    let own = |provider: &str| env.json(&format!("KYC_GATEWAY_SANDBOX_{provider}_FAULTS"), all.clone());
    Ok(SandboxSettings {
        users: env.parse("KYC_GATEWAY_SANDBOX_USERS", d.users)?,
        seed: env.parse("KYC_GATEWAY_SANDBOX_SEED", d.seed)?,
        fractal_token_ttl: env.secs("KYC_GATEWAY_SANDBOX_TOKEN_TTL_SECS", d.fractal_token_ttl)?,
        faults: PerProvider {
            fractal: own("FRACTAL")?,
            sumsub: own("SUMSUB")?,
            sila: own("SILA")?,
            ident: own("IDENT")?,
        },
        webhooks: sandbox_webhooks(env, d.webhooks)?,
        ..d
    })
}

/// The most retries a sandbox webhook delivery may be given, and the longest wait before one or for reordering:
/// the sandbox imitates the providers' delivery on a short clock, and a day (the providers' longest wait) is plenty.
const MAX_WEBHOOK_RETRIES: usize = 16;
const MAX_WEBHOOK_WAIT: Duration = Duration::from_secs(24 * 3600);

fn sandbox_webhooks(env: &Env<'_>, d: SandboxWebhookSettings) -> anyhow::Result<SandboxWebhookSettings> {
    const RETRY: &str = "KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS";
    let retry_schedule = match env.get(RETRY) {
        None => d.retry_schedule,
        Some(value) if value.trim() == "off" => Vec::new(),
        Some(value) => {
            let waits = value
                .split(',')
                .map(|ms| ms.trim().parse::<u64>().map(Duration::from_millis))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    anyhow::anyhow!("{RETRY}={value:?} is not valid: {e} (comma-separated milliseconds, or off)")
                })?;
            if waits.len() > MAX_WEBHOOK_RETRIES || waits.iter().any(|w| *w > MAX_WEBHOOK_WAIT) {
                bail!("{RETRY}={value:?}: at most {MAX_WEBHOOK_RETRIES} waits of at most a day each");
            }
            waits
        }
    };
    const REORDER: &str = "KYC_GATEWAY_SANDBOX_WEBHOOK_REORDER_MS";
    let reorder_window = env.millis(REORDER, d.reorder_window)?;
    if reorder_window > MAX_WEBHOOK_WAIT {
        bail!("{REORDER} must be at most a day ({} ms)", MAX_WEBHOOK_WAIT.as_millis());
    }
    let algs = SUMSUB_DIGEST_ALGS.map(|alg| (alg, Some(alg)));
    let sumsub_digest_alg = env.choice("KYC_GATEWAY_SANDBOX_SUMSUB_DIGEST_ALG", &algs, None)?;
    Ok(SandboxWebhookSettings {
        retry_schedule,
        duplicate: env.switch("KYC_GATEWAY_SANDBOX_WEBHOOK_DUPLICATE", d.duplicate)?,
        reorder_window,
        sumsub_digest_alg: sumsub_digest_alg.map(str::to_owned).unwrap_or(d.sumsub_digest_alg),
    })
}

fn cache_config(env: &Env<'_>, d: CacheConfig) -> anyhow::Result<CacheConfig> {
    Ok(CacheConfig {
        enabled: env.switch("KYC_GATEWAY_CACHE", d.enabled)?,
        status_ttl: env.secs("KYC_GATEWAY_CACHE_TTL_SECS", d.status_ttl)?,
        negative_ttl: env.secs("KYC_GATEWAY_CACHE_NEGATIVE_TTL_SECS", d.negative_ttl)?,
        bulk_ttl: env.secs("KYC_GATEWAY_CACHE_BULK_TTL_SECS", d.bulk_ttl)?,
        max_bytes: env.parse("KYC_GATEWAY_CACHE_MAX_MB", d.max_bytes >> 20)? << 20,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A database and a key, which production mode needs.
    const STATE: [(&str, &str); 2] = [
        ("KYC_GATEWAY_DATABASE_URL", "postgres://u:p@db/kyc"),
        ("KYC_GATEWAY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    ];

    /// A production issuer's shared secret: 32 bytes or more.
    const REAL_SECRET: &str = "a-real-secret-of-at-least-32-bytes";

    fn from(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn no_configuration_is_sandbox_mode_on_port_8080() {
        let c = from(&[]).expect("defaults are valid");
        assert!(c.is_sandbox());
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.dev_secret.expose(), DEFAULT_DEV_SECRET);
    }

    #[test]
    fn a_real_fractal_without_a_token_issuer_refuses_to_start() {
        let fractal = [("KYC_GATEWAY_FRACTAL_CLIENT_ID", "id"), ("KYC_GATEWAY_FRACTAL_CLIENT_SECRET", "secret")];
        let err = from(&fractal).expect_err("must refuse").to_string();
        assert!(err.contains("refusing to start"), "{err}");
        let mut with_default = fractal.to_vec();
        with_default.extend([("KYC_GATEWAY_JWT_SECRET", DEFAULT_DEV_SECRET), ("KYC_GATEWAY_JWT_ISSUER", "https://id")]);
        assert!(from(&with_default).expect_err("default secret").to_string().contains("dev secret"));
        let mut good = fractal.to_vec();
        good.extend([("KYC_GATEWAY_JWT_SECRET", REAL_SECRET), ("KYC_GATEWAY_JWT_ISSUER", "https://id")]);
        good.extend(STATE);
        assert!(!from(&good).expect("valid").is_sandbox());
    }

    #[test]
    fn production_refuses_to_start_with_a_shared_secret_shorter_than_32_bytes() {
        let mut vars = vec![
            ("KYC_GATEWAY_IDENT_TOKEN", "t"),
            ("KYC_GATEWAY_JWT_SECRET", "x"),
            ("KYC_GATEWAY_JWT_ISSUER", "https://id.example.com/"),
        ];
        vars.extend(STATE);
        let err = from(&vars).expect_err("a 1-byte secret").to_string();
        assert!(err.contains("refusing to start") && err.contains("KYC_GATEWAY_JWT_SECRET holds 1 bytes"), "{err}");
        vars[1].1 = REAL_SECRET;
        assert!(from(&vars).is_ok());
    }

    #[test]
    fn issuers_that_publish_their_keys_are_enough_for_production_and_refused_by_the_sandbox() {
        let issuers = ("KYC_GATEWAY_JWT_ISSUERS", "https://id.example.com/");
        let mut vars = vec![("KYC_GATEWAY_IDENT_TOKEN", "t"), issuers, ("KYC_GATEWAY_JWT_AUDIENCE", "kyc-gateway")];
        vars.extend(STATE);
        let c = from(&vars).expect("valid");
        assert_eq!(c.tokens.issuers.len(), 1);
        assert!(c.tokens.secret_issuer.is_none());
        let err = from(&[issuers]).expect_err("sandbox").to_string();
        assert!(err.contains("production mode"), "{err}");
    }

    #[test]
    fn a_half_configured_fractal_names_the_missing_variable() {
        let err = from(&[("KYC_GATEWAY_FRACTAL_CLIENT_ID", "id")]).expect_err("secret missing").to_string();
        assert!(err.contains("KYC_GATEWAY_FRACTAL_CLIENT_SECRET"), "{err}");
        let err = from(&[("KYC_GATEWAY_SUMSUB_APP_TOKEN", "prd:x")]).expect_err("secret key missing").to_string();
        assert!(err.contains("KYC_GATEWAY_SUMSUB_SECRET_KEY"), "{err}");
    }

    #[test]
    fn any_real_provider_leaves_sandbox_mode_and_level_maps_are_configurable() {
        let mut vars = vec![
            ("KYC_GATEWAY_IDENT_TOKEN", "t"),
            ("KYC_GATEWAY_JWT_SECRET", REAL_SECRET),
            ("KYC_GATEWAY_JWT_ISSUER", "https://id"),
            ("KYC_GATEWAY_SUMSUB_LEVELS", "kyc-1=basic"),
        ];
        vars.extend(STATE);
        let c = from(&vars).expect("valid");
        assert!(!c.is_sandbox() && c.fractal.is_none() && c.ident.is_some());
        assert_eq!(c.levels.sumsub.items("kyc-1"), ["basic"]);
        assert!(from(&[("KYC_GATEWAY_SILA_FLOWS", "nonsense")]).is_err());
    }

    #[test]
    fn production_defaults_map_no_sila_flow() {
        let c = from(&[]).expect("valid");
        assert_eq!(c.levels.sila, crate::domain::levels::LevelMap::default(), "Sila flows are the company's own");
    }

    #[test]
    fn production_settings_without_a_real_provider_do_not_fall_back_to_the_sandbox() {
        let err =
            from(&[("KYC_GATEWAY_FRACTAL_AUTH_URL", "https://auth.fractal.id")]).expect_err("no client").to_string();
        assert!(err.contains("KYC_GATEWAY_FRACTAL_CLIENT_ID"), "{err}");
        let jwt = [("KYC_GATEWAY_JWT_SECRET", "s"), ("KYC_GATEWAY_JWT_ISSUER", "https://id")];
        assert!(from(&jwt).expect_err("no provider").to_string().contains("production mode"));
    }

    #[test]
    fn production_mode_refuses_to_start_without_a_database_or_a_key() {
        let base = [
            ("KYC_GATEWAY_IDENT_TOKEN", "t"),
            ("KYC_GATEWAY_JWT_SECRET", REAL_SECRET),
            ("KYC_GATEWAY_JWT_ISSUER", "https://id"),
        ];
        let err = from(&base).expect_err("no database").to_string();
        assert!(err.contains("KYC_GATEWAY_DATABASE_URL"), "{err}");
        let mut with_db = base.to_vec();
        with_db.push(STATE[0]);
        let err = from(&with_db).expect_err("no key").to_string();
        assert!(err.contains("KYC_GATEWAY_ENCRYPTION_KEY"), "{err}");
        with_db.push(("KYC_GATEWAY_ENCRYPTION_KEY", "c2hvcnQ="));
        let err = from(&with_db).expect_err("short key").to_string();
        assert!(err.contains("holds 5 bytes") && !err.contains("c2hvcnQ"), "the key is not echoed: {err}");
    }

    #[test]
    fn a_malformed_value_names_the_variable() {
        let err = from(&[("KYC_GATEWAY_LISTEN", "nope")]).expect_err("bad address").to_string();
        assert!(err.contains("KYC_GATEWAY_LISTEN"), "{err}");
        let err = from(&[("KYC_GATEWAY_FANOUT", "sideways")]).expect_err("bad choice").to_string();
        assert!(err.contains("KYC_GATEWAY_FANOUT") && err.contains("batched"), "{err}");
        let err = from(&[("KYC_GATEWAY_SANDBOX_SILA_FAULTS", "{\"latency\": 1}")]).expect_err("bad json").to_string();
        assert!(err.contains("KYC_GATEWAY_SANDBOX_SILA_FAULTS"), "{err}");
    }

    #[test]
    fn a_host_name_as_the_listen_address_gets_a_hint_to_use_an_ip_address() {
        for name in ["KYC_GATEWAY_LISTEN", "KYC_GATEWAY_METRICS_LISTEN"] {
            let err = from(&[(name, "localhost:8081")]).expect_err("a host name").to_string();
            assert!(err.contains(name) && err.contains("localhost:8081"), "{err}");
            assert!(err.contains("use an IP address such as 127.0.0.1:8081 or 0.0.0.0:8081"), "{err}");
        }
    }

    #[test]
    fn sandbox_webhook_settings_default_to_a_short_schedule_and_read_their_variables() {
        let d = from(&[]).expect("defaults").sandbox.webhooks;
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
        let w = c.sandbox.webhooks;
        assert_eq!(w.retry_schedule, [5, 10, 20].map(Duration::from_millis));
        assert!(w.duplicate);
        assert_eq!(w.reorder_window, Duration::from_millis(50));
        assert_eq!(w.sumsub_digest_alg, "HMAC_SHA512_HEX");
        let off = from(&[("KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS", "off")]).expect("valid");
        assert!(off.sandbox.webhooks.retry_schedule.is_empty());
    }

    #[test]
    fn a_bad_sandbox_webhook_setting_names_its_variable() {
        for (name, value) in [
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS", "100,soon"),
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_RETRY_MS", "999999999999"),
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_DUPLICATE", "yes"),
            ("KYC_GATEWAY_SANDBOX_WEBHOOK_REORDER_MS", "-1"),
            ("KYC_GATEWAY_SANDBOX_SUMSUB_DIGEST_ALG", "HMAC_MD5_HEX"),
        ] {
            let err = from(&[(name, value)]).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
