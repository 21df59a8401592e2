//! Typed configuration from the environment, checked at start-up, never on the first request. The [`Mode`] is decided
//! here, once (production refuses dev tokens and needs token issuers, a database and a key); each provider's section is
//! read by its folder from [`Vars`]. See ARCHITECTURE.md, `src/config/`.

mod audit;
mod graphiql;
mod hardening;
mod mode;
mod operations;
mod realtime;
mod state;
mod tokens;
pub mod variables;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

pub use crate::env::{socket_addr, Env};
pub use graphiql::GraphiqlSignIn;
pub use hardening::{ConnectionSettings, CorsSettings, DocumentSettings, QueryLimits, TrustedMode};
pub use mode::{Mode, ModeSetting};
pub use operations::{log_format_from_env, LogFormat, OperationsSettings, PRODUCTION_METRICS_LISTEN};
pub use realtime::{SubscriptionSettings, WebhookSettings};
pub use state::EncryptionSettings;

pub use crate::auth::claims::{ClaimRules, ClientRule};
pub use crate::auth::token::{IssuerSettings, SecretIssuer, TokenSettings};

use crate::auth::token::DEFAULT_DEV_SECRET;
use crate::providers::cache::CacheConfig;
use crate::providers::registry::{self, ProviderSettings};
use crate::providers::section::Section;
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

/// The DataLoaders' default batching window: async-graphql resolves the fields of a list concurrently, so every key
/// of one list is queued within the same scheduler pass; 100 µs catches them (BENCHMARKS.md, "DataLoader batching
/// window").
pub const DEFAULT_LOADER_DELAY: Duration = Duration::from_micros(100);

/// The `KYC_GATEWAY_*` variables the configuration was read from: the providers' sections are read from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(Arc<BTreeMap<String, String>>);

impl Vars {
    /// The variables of `pairs` whose names start with `KYC_GATEWAY_`.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let map = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| k.starts_with(variables::PREFIX))
            .collect();
        Vars(Arc::new(map))
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// Sets one variable (tests set what an operator would export).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        Arc::make_mut(&mut self.0).insert(name.to_owned(), value.into());
    }

    /// Removes one variable.
    pub fn remove(&mut self, name: &str) {
        Arc::make_mut(&mut self.0).remove(name);
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Signs and verifies sandbox dev tokens.
    pub dev_secret: Secret,
    /// `KYC_GATEWAY_MODE`: sandbox, production, or decided by whether a provider is configured.
    pub mode: ModeSetting,
    /// The variables each provider reads its section from (in sandbox mode, under the sandbox's own).
    pub vars: Vars,
    /// Production mode: the issuers of callers' tokens and what their tokens must say (sandbox mode accepts dev
    /// tokens only).
    pub tokens: TokenSettings,
    /// The database (required in production mode; sandbox mode defaults to SQLite in memory, its audit trail kept to
    /// the last records: `app/mod.rs`).
    pub database: Option<StoreSettings>,
    /// The keys of secrets at rest (required in production mode; sandbox mode derives one from the dev secret).
    pub encryption: Option<EncryptionSettings>,
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
    /// Production mode: GraphiQL's sign-in (sandbox mode signs in at the gateway's own sandbox issuer).
    pub graphiql_sign_in: Option<GraphiqlSignIn>,
    /// The audit trail.
    pub audit: crate::audit::AuditSettings,
    /// Logs, the metrics listener, shutdown.
    pub operations: OperationsSettings,
    /// How the sandbox providers behave (sandbox mode).
    #[cfg(feature = "sandbox")]
    pub sandbox: kyc_sandbox::SandboxSettings,
    pub cache: CacheConfig,
    /// Batched (the gateway) or naive (the benchmark's baseline).
    pub fan_out: FanOut,
    /// The DataLoaders' batching window.
    pub loader_delay: Duration,
    /// The most ids `users(ids:)` takes.
    pub max_user_ids: usize,
}

impl Default for Config {
    /// Sandbox mode (in a build with the sandbox) on `127.0.0.1:8080` with the documented defaults.
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dev_secret: Secret::new(DEFAULT_DEV_SECRET),
            mode: ModeSetting::Auto,
            vars: Vars::default(),
            tokens: TokenSettings::default(),
            database: None,
            encryption: None,
            webhooks: WebhookSettings::default(),
            subscriptions: SubscriptionSettings::default(),
            limits: QueryLimits::default(),
            documents: DocumentSettings::default(),
            connections: ConnectionSettings::default(),
            cors: CorsSettings::default(),
            graphiql_sign_in: None,
            audit: crate::audit::AuditSettings::default(),
            operations: OperationsSettings::default(),
            #[cfg(feature = "sandbox")]
            sandbox: kyc_sandbox::SandboxSettings::default(),
            cache: CacheConfig::default(),
            fan_out: FanOut::Batched,
            loader_delay: DEFAULT_LOADER_DELAY,
            max_user_ids: 500,
        }
    }
}

/// Reads every configured provider's section from `vars`.
pub fn provider_settings(vars: &Vars) -> anyhow::Result<Vec<Arc<dyn ProviderSettings>>> {
    let var = |name: &str| vars.get(name);
    let env = Env::new(&var);
    let mut configured = Vec::new();
    for module in registry::MODULES {
        configured.extend(module.configure(&Section::new(&env, module.provider()))?);
    }
    Ok(configured)
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_pairs(std::env::vars())
    }

    /// Reads configuration from `pairs` of variable names and values (the environment, or a list in tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> anyhow::Result<Self> {
        let vars = Vars::new(pairs);
        let var = |name: &str| vars.get(name);
        let env = Env::new(&var);
        let d = Config::default();
        let config = Config {
            listen: env.addr("KYC_GATEWAY_LISTEN", d.listen)?,
            dev_secret: env.get("KYC_GATEWAY_DEV_SECRET").map(Secret::new).unwrap_or(d.dev_secret),
            mode: env.choice(
                "KYC_GATEWAY_MODE",
                &[
                    ("auto", ModeSetting::Auto),
                    ("sandbox", ModeSetting::Sandbox),
                    ("production", ModeSetting::Production),
                ],
                d.mode,
            )?,
            tokens: tokens::tokens(&env)?,
            database: state::database(&env)?,
            encryption: state::encryption(&env)?,
            webhooks: realtime::webhooks(&env)?,
            subscriptions: realtime::subscriptions(&env)?,
            limits: hardening::query_limits(&env)?,
            documents: hardening::documents(&env)?,
            connections: hardening::connections(&env)?,
            cors: hardening::cors(&env)?,
            graphiql_sign_in: graphiql::sign_in(&env)?,
            audit: audit::audit(&env)?,
            operations: operations::operations(&env)?,
            #[cfg(feature = "sandbox")]
            sandbox: kyc_sandbox::SandboxSettings::from_vars(var, &sandbox_providers())?,
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
            vars: vars.clone(),
        };
        config.validate()?;
        Ok(config)
    }

    /// The providers the variables configure (in sandbox mode, before the sandbox's own are added).
    pub fn providers(&self) -> anyhow::Result<Vec<Arc<dyn ProviderSettings>>> {
        provider_settings(&self.vars)
    }

    /// Sandbox or production: `KYC_GATEWAY_MODE` when set, else sandbox exactly when no provider is configured and
    /// this build has the sandbox.
    pub fn mode(&self) -> Mode {
        mode::decide(self.mode, self.providers().map(|p| !p.is_empty()).unwrap_or(true))
    }

    /// The checks at start-up: valid provider sections, and in production mode token issuers of its own (no dev
    /// secret, no short shared secret), a database and a key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_user_ids == 0 {
            bail!("KYC_GATEWAY_MAX_USER_IDS must be at least 1");
        }
        if self.mode == ModeSetting::Sandbox && !cfg!(feature = "sandbox") {
            bail!(
                "KYC_GATEWAY_MODE=sandbox, but this build has no sandbox (it was built without the `sandbox` feature)"
            );
        }
        let providers = self.providers()?;
        match self.mode() {
            Mode::Sandbox => {
                if !providers.is_empty() {
                    let named: Vec<&str> = providers.iter().map(|p| p.provider().label()).collect();
                    bail!(
                        "KYC_GATEWAY_MODE=sandbox, but real providers are configured ({}): sandbox mode accepts dev \
                         tokens anyone can mint, so it never calls a real provider; unset their variables, or choose \
                         KYC_GATEWAY_MODE=production",
                        named.join(", ")
                    );
                }
                if self.graphiql_sign_in.is_some() {
                    bail!(
                        "KYC_GATEWAY_GRAPHIQL_ISSUER configures production mode's GraphiQL sign-in; sandbox mode signs \
                         in at its own sandbox issuer: unset it, or choose KYC_GATEWAY_MODE=production"
                    );
                }
                if tokens::any_issuer(&self.tokens) {
                    bail!(
                        "KYC_GATEWAY_JWT_ISSUERS, KYC_GATEWAY_JWT_SECRET and KYC_GATEWAY_JWT_ISSUER configure production \
                         mode, but no real provider is configured; configure one, or unset them to run the sandbox"
                    );
                }
                Ok(())
            }
            Mode::Production => {
                if providers.is_empty() {
                    bail!("{}", mode::NO_PROVIDER);
                }
                // A provider's webhook secrets alone configure nothing: its events could name no user.
                for module in
                    registry::MODULES.iter().filter(|m| !providers.iter().any(|p| p.provider() == m.provider()))
                {
                    let name = format!("{}WEBHOOK_SECRETS", module.provider().env_prefix());
                    if self.vars.get(&name).is_some() {
                        bail!(
                            "{name} is set, but {} is not configured: set its other variables too, or unset it",
                            module.provider().display_name()
                        );
                    }
                }
                tokens::check_production(&self.tokens, &self.dev_secret)?;
                if let Some(sign_in) = &self.graphiql_sign_in {
                    graphiql::check_production(sign_in, &self.tokens)?;
                }
                if self.database.is_none() {
                    bail!(
                        "refusing to start: production mode keeps users' links in a database; set \
                         KYC_GATEWAY_DATABASE_URL (postgres://... for several replicas, sqlite://PATH for one)"
                    );
                }
                if self.encryption.is_none() {
                    bail!(
                        "refusing to start: production mode seals tokens at rest; set KYC_GATEWAY_ENCRYPTION_KEY (32 \
                         random bytes in base64, e.g. `openssl rand -base64 32`)"
                    );
                }
                Ok(())
            }
        }
    }
}

/// The sandbox providers' names, for their `KYC_GATEWAY_SANDBOX_<NAME>_FAULTS`.
#[cfg(feature = "sandbox")]
pub fn sandbox_providers() -> Vec<&'static str> {
    registry::MODULES.iter().map(|m| m.provider().label()).collect()
}

fn cache_config(env: &Env<'_>, d: CacheConfig) -> anyhow::Result<CacheConfig> {
    Ok(CacheConfig {
        enabled: env.switch("KYC_GATEWAY_CACHE", d.enabled)?,
        status_ttl: env.secs("KYC_GATEWAY_CACHE_TTL_SECS", d.status_ttl)?,
        negative_ttl: env.secs("KYC_GATEWAY_CACHE_NEGATIVE_TTL_SECS", d.negative_ttl)?,
        bulk_ttl: env.secs("KYC_GATEWAY_CACHE_BULK_TTL_SECS", d.bulk_ttl)?,
        max_bytes: env.parse("KYC_GATEWAY_CACHE_MAX_MB", d.max_bytes >> 20)? << 20,
        responses_max_bytes: env.parse("KYC_GATEWAY_RESPONSE_CACHE_MAX_MB", d.responses_max_bytes >> 20)? << 20,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Provider;

    /// A database and a key, which production mode needs.
    const STATE: [(&str, &str); 2] = [
        ("KYC_GATEWAY_DATABASE_URL", "postgres://u:p@db/kyc"),
        ("KYC_GATEWAY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    ];

    /// A production issuer's shared secret: 32 bytes or more.
    const REAL_SECRET: &str = "a-real-secret-of-at-least-32-bytes";

    fn from(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        Config::from_pairs(pairs.iter().copied())
    }

    fn providers(c: &Config) -> Vec<Provider> {
        c.providers().expect("valid sections").iter().map(|p| p.provider()).collect()
    }

    #[test]
    fn no_configuration_is_sandbox_mode_on_port_8080() {
        let c = from(&[]).expect("defaults are valid");
        assert_eq!(c.mode(), if cfg!(feature = "sandbox") { Mode::Sandbox } else { Mode::Production });
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
        assert_eq!(from(&good).expect("valid").mode(), Mode::Production);
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
        assert!(err.contains("production mode") || err.contains("no provider is configured"), "{err}");
    }

    #[test]
    fn a_half_configured_provider_names_the_missing_variable() {
        let err = from(&[("KYC_GATEWAY_FRACTAL_CLIENT_ID", "id")]).expect_err("secret missing").to_string();
        assert!(err.contains("KYC_GATEWAY_FRACTAL_CLIENT_SECRET"), "{err}");
        let err = from(&[("KYC_GATEWAY_SUMSUB_APP_TOKEN", "prd:x")]).expect_err("secret key missing").to_string();
        assert!(err.contains("KYC_GATEWAY_SUMSUB_SECRET_KEY"), "{err}");
    }

    #[test]
    fn any_real_provider_leaves_sandbox_mode_and_the_others_stay_off() {
        let mut vars = vec![
            ("KYC_GATEWAY_IDENT_TOKEN", "t"),
            ("KYC_GATEWAY_JWT_SECRET", REAL_SECRET),
            ("KYC_GATEWAY_JWT_ISSUER", "https://id"),
            ("KYC_GATEWAY_SUMSUB_LEVELS", "kyc-1=basic"),
        ];
        vars.extend(STATE);
        let c = from(&vars).expect("valid");
        assert_eq!(c.mode(), Mode::Production);
        assert_eq!(providers(&c), [Provider::Ident]);
        assert!(from(&[("KYC_GATEWAY_SILA_APP_HANDLE", "h"), ("KYC_GATEWAY_SILA_FLOWS", "nonsense")]).is_err());
    }

    #[test]
    fn production_settings_without_a_real_provider_do_not_fall_back_to_the_sandbox() {
        let err =
            from(&[("KYC_GATEWAY_FRACTAL_AUTH_URL", "https://auth.fractal.id")]).expect_err("no client").to_string();
        assert!(err.contains("KYC_GATEWAY_FRACTAL_CLIENT_ID"), "{err}");
        let jwt = [("KYC_GATEWAY_JWT_SECRET", "s"), ("KYC_GATEWAY_JWT_ISSUER", "https://id")];
        let err = from(&jwt).expect_err("no provider").to_string();
        assert!(err.contains("production mode") || err.contains("no provider is configured"), "{err}");
    }

    #[test]
    fn production_mode_refuses_to_start_without_a_provider_a_database_or_a_key() {
        let err = from(&[("KYC_GATEWAY_MODE", "production")]).expect_err("no provider").to_string();
        assert!(err.contains("no provider is configured") && err.contains("kyc-gateway sandbox"), "{err}");
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
        let err = from(&[("KYC_GATEWAY_MODE", "staging")]).expect_err("bad mode").to_string();
        assert!(err.contains("KYC_GATEWAY_MODE") && err.contains("production"), "{err}");
    }

    #[test]
    fn webhook_secrets_of_a_provider_that_is_not_configured_are_refused_in_production() {
        let mut vars = vec![
            ("KYC_GATEWAY_IDENT_TOKEN", "t"),
            ("KYC_GATEWAY_JWT_SECRET", REAL_SECRET),
            ("KYC_GATEWAY_JWT_ISSUER", "https://id"),
            ("KYC_GATEWAY_SUMSUB_WEBHOOK_SECRETS", "a-secret-of-sixteen-or-more"),
        ];
        vars.extend(STATE);
        let err = from(&vars).expect_err("refused").to_string();
        assert!(err.contains("KYC_GATEWAY_SUMSUB_WEBHOOK_SECRETS is set, but Sumsub is not configured"), "{err}");
    }

    #[test]
    fn sandbox_mode_forced_beside_a_real_provider_is_refused() {
        let fractal = [
            ("KYC_GATEWAY_MODE", "sandbox"),
            ("KYC_GATEWAY_FRACTAL_CLIENT_ID", "id"),
            ("KYC_GATEWAY_FRACTAL_CLIENT_SECRET", "secret"),
        ];
        let err = from(&fractal).expect_err("refused").to_string();
        assert!(err.contains("KYC_GATEWAY_MODE=sandbox") && err.contains("fractal"), "{err}");
    }

    #[test]
    fn a_host_name_as_the_listen_address_gets_a_hint_to_use_an_ip_address() {
        for name in ["KYC_GATEWAY_LISTEN", "KYC_GATEWAY_METRICS_LISTEN"] {
            let err = from(&[(name, "localhost:8081")]).expect_err("a host name").to_string();
            assert!(err.contains(name) && err.contains("localhost:8081"), "{err}");
            assert!(err.contains("use an IP address such as 127.0.0.1:8081 or 0.0.0.0:8081"), "{err}");
        }
    }
}
