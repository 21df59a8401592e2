//! Typed configuration from the environment. Everything is checked at start-up, never on the first request.
//!
//! With no provider configured the gateway runs in sandbox mode: it starts the embedded sandbox providers and accepts
//! dev tokens. Configuring a real provider switches to production mode, which refuses dev tokens and refuses to start
//! without a token issuer of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::auth::token::{DEFAULT_DEV_SECRET, DEV_ISSUER};
use crate::domain::levels::LevelMap;
use crate::graphql::FanOut;
use crate::providers::cache::CacheConfig;
use crate::providers::UpstreamPolicy;
use crate::sandbox::faults::Faults;
use crate::sandbox::SandboxConfig;
use crate::secret::Secret;

/// A real Fractal.
#[derive(Debug, Clone)]
pub struct FractalSettings {
    pub auth_url: String,
    pub resource_url: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// A real Sumsub.
#[derive(Debug, Clone)]
pub struct SumsubSettings {
    pub base_url: String,
    pub app_token: Secret,
    pub secret_key: Secret,
}

/// A real Sila.
#[derive(Debug, Clone)]
pub struct SilaSettings {
    pub base_url: String,
    pub app_handle: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// A real ident.
#[derive(Debug, Clone)]
pub struct IdentSettings {
    /// The API root, ending in `/api/v1`.
    pub base_url: String,
    pub token: Secret,
}

/// How provider levels map to Fractal-style items, so one scope model covers every provider.
#[derive(Debug, Clone)]
pub struct LevelSettings {
    /// Sumsub level names.
    pub sumsub: LevelMap,
    /// Sila KYC flow ids.
    pub sila: LevelMap,
    /// ident application types (`kyc`, `kyb`): the details scope that guards an application's `params`, and the
    /// level its decision counts toward in `kycState`.
    pub ident: LevelMap,
}

impl Default for LevelSettings {
    fn default() -> Self {
        LevelSettings {
            sumsub: LevelMap::parse(DEFAULT_SUMSUB_LEVELS).expect("valid default"),
            sila: LevelMap::parse(&default_sila_flows()).expect("valid default"),
            ident: LevelMap::parse(DEFAULT_IDENT_TYPES).expect("valid default"),
        }
    }
}

/// Defaults for the sandbox levels.
pub const DEFAULT_SUMSUB_LEVELS: &str =
    "basic-kyc-level=basic+selfie+liveness; id-and-liveness=basic+liveness; plus-kyc-level=plus+selfie+liveness";
pub const DEFAULT_IDENT_TYPES: &str = "kyc=basic; kyb=plus";
fn default_sila_flows() -> String {
    use crate::sandbox::sila::population::{FLOW_DOCUMENTS, FLOW_STANDARD};
    format!("{FLOW_STANDARD}=basic+ssn; {FLOW_DOCUMENTS}=plus+selfie")
}

/// The upstream policy of each provider.
#[derive(Debug, Clone)]
pub struct Policies {
    pub fractal: UpstreamPolicy,
    pub sumsub: UpstreamPolicy,
    pub sila: UpstreamPolicy,
    pub ident: UpstreamPolicy,
}

impl Default for Policies {
    /// Sumsub documents 300 GET requests per 5 seconds; staying under it avoids its 429s.
    fn default() -> Self {
        let base = UpstreamPolicy::default();
        Policies {
            fractal: base.clone(),
            sumsub: UpstreamPolicy { rate_limit: Some((300, Duration::from_secs(5))), ..base.clone() },
            sila: base.clone(),
            ident: base,
        }
    }
}

/// `300/5s`, `50/1s`, or `off`.
fn parse_rate(name: &str, text: &str) -> anyhow::Result<Option<(u32, Duration)>> {
    if text.trim() == "off" {
        return Ok(None);
    }
    let parsed = text.trim().split_once('/').and_then(|(n, w)| {
        let window = w
            .strip_suffix("ms")
            .map(|ms| ms.parse().map(Duration::from_millis))
            .or_else(|| w.strip_suffix('s').map(|s| s.parse().map(Duration::from_secs)))?;
        Some((n.parse::<u32>().ok()?, window.ok()?))
    });
    match parsed {
        Some((n, w)) if n > 0 && !w.is_zero() => Ok(Some((n, w))),
        _ => bail!("{name}={text:?} is not a rate like 300/5s, 50/500ms or off"),
    }
}

/// A provider's policy: `KYC_GATEWAY_<PROVIDER>_<SETTING>`, else `KYC_GATEWAY_UPSTREAM_<SETTING>`, else `base`.
fn policy(
    var: &dyn Fn(&str) -> Option<String>,
    provider: &str,
    base: &UpstreamPolicy,
) -> anyhow::Result<UpstreamPolicy> {
    let get = |setting: &str| -> (String, Option<String>) {
        let own = format!("KYC_GATEWAY_{provider}_{setting}");
        match var(&own) {
            Some(v) => (own, Some(v)),
            None => {
                let global = format!("KYC_GATEWAY_UPSTREAM_{setting}");
                let v = var(&global);
                (global, v)
            }
        }
    };
    let ms = |setting: &str, default: Duration| -> anyhow::Result<Duration> {
        let (name, value) = get(setting);
        Ok(Duration::from_millis(parse(&name, value, default.as_millis() as u64)?))
    };
    let num = |setting: &str, default: u32| -> anyhow::Result<u32> {
        let (name, value) = get(setting);
        parse(&name, value, default)
    };
    let rate_limit = match get("RATE_LIMIT") {
        (name, Some(text)) => parse_rate(&name, &text)?,
        (_, None) => base.rate_limit,
    };
    Ok(UpstreamPolicy {
        connect_timeout: ms("CONNECT_TIMEOUT_MS", base.connect_timeout)?,
        timeout: ms("TIMEOUT_MS", base.timeout)?,
        deadline: ms("DEADLINE_MS", base.deadline)?,
        max_concurrency: num("MAX_CONCURRENCY", base.max_concurrency as u32)?.max(1) as usize,
        rate_limit,
        retries: num("RETRIES", base.retries)?,
        backoff_base: ms("BACKOFF_MS", base.backoff_base)?,
        backoff_max: base.backoff_max,
        breaker_threshold: num("BREAKER_THRESHOLD", base.breaker_threshold)?.max(1),
        breaker_cooldown: ms("BREAKER_COOLDOWN_MS", base.breaker_cooldown)?,
    })
}

/// The issuer of callers' tokens in production mode (HS256 shared secret).
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub secret: Secret,
    pub issuer: String,
    pub audience: Option<String>,
}

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
    pub jwt: Option<JwtSettings>,
    /// Provider links to load at start (production mode).
    pub directory_file: Option<PathBuf>,
    pub sandbox: SandboxConfig,
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
            jwt: None,
            directory_file: None,
            sandbox: SandboxConfig::default(),
            policies: Policies::default(),
            cache: CacheConfig::default(),
            fan_out: FanOut::Batched,
            loader_delay: crate::graphql::LOADER_DELAY,
            max_user_ids: 500,
        }
    }
}

fn parse<T: std::str::FromStr>(name: &str, value: Option<String>, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match value {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e| anyhow::anyhow!("{name}={v:?} is not valid: {e}")),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads configuration through `var` (the environment, or a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let d = Config::default();
        // Any variable of a provider means that provider for real: a half-configured one must fail, not fall back to
        // the sandbox.
        let section = |prefix: &str, names: &[&str]| names.iter().any(|n| var(&format!("{prefix}{n}")).is_some());
        let required = |name: &str| var(name).with_context(|| format!("{name} is required for that provider"));
        let fractal = if section("KYC_GATEWAY_FRACTAL_", &["CLIENT_ID", "CLIENT_SECRET", "AUTH_URL", "RESOURCE_URL"]) {
            Some(FractalSettings {
                auth_url: var("KYC_GATEWAY_FRACTAL_AUTH_URL").unwrap_or_else(|| "https://auth.fractal.id".into()),
                resource_url: var("KYC_GATEWAY_FRACTAL_RESOURCE_URL")
                    .unwrap_or_else(|| "https://resource.fractal.id".into()),
                client_id: required("KYC_GATEWAY_FRACTAL_CLIENT_ID")?,
                client_secret: Secret::new(required("KYC_GATEWAY_FRACTAL_CLIENT_SECRET")?),
            })
        } else {
            None
        };
        let sumsub = if section("KYC_GATEWAY_SUMSUB_", &["BASE_URL", "APP_TOKEN", "SECRET_KEY"]) {
            Some(SumsubSettings {
                base_url: var("KYC_GATEWAY_SUMSUB_BASE_URL").unwrap_or_else(|| "https://api.sumsub.com".into()),
                app_token: Secret::new(required("KYC_GATEWAY_SUMSUB_APP_TOKEN")?),
                secret_key: Secret::new(required("KYC_GATEWAY_SUMSUB_SECRET_KEY")?),
            })
        } else {
            None
        };
        let sila = if section("KYC_GATEWAY_SILA_", &["BASE_URL", "APP_HANDLE", "CLIENT_ID", "CLIENT_SECRET"]) {
            Some(SilaSettings {
                base_url: var("KYC_GATEWAY_SILA_BASE_URL").unwrap_or_else(|| "https://api.silamoney.com".into()),
                app_handle: required("KYC_GATEWAY_SILA_APP_HANDLE")?,
                client_id: required("KYC_GATEWAY_SILA_CLIENT_ID")?,
                client_secret: Secret::new(required("KYC_GATEWAY_SILA_CLIENT_SECRET")?),
            })
        } else {
            None
        };
        let ident = if section("KYC_GATEWAY_IDENT_", &["BASE_URL", "TOKEN"]) {
            Some(IdentSettings {
                base_url: var("KYC_GATEWAY_IDENT_BASE_URL")
                    .unwrap_or_else(|| "https://ident.provide.services/api/v1".into()),
                token: Secret::new(required("KYC_GATEWAY_IDENT_TOKEN")?),
            })
        } else {
            None
        };
        let level_map = |name: &str, default: LevelMap| -> anyhow::Result<LevelMap> {
            match var(name) {
                None => Ok(default),
                Some(spec) => LevelMap::parse(&spec).map_err(|e| anyhow::anyhow!("{name} is not valid: {e}")),
            }
        };
        let levels = LevelSettings {
            sumsub: level_map("KYC_GATEWAY_SUMSUB_LEVELS", d.levels.sumsub.clone())?,
            sila: level_map("KYC_GATEWAY_SILA_FLOWS", d.levels.sila.clone())?,
            ident: level_map("KYC_GATEWAY_IDENT_TYPES", d.levels.ident.clone())?,
        };
        let sila_user_handle_template =
            var("KYC_GATEWAY_SILA_USER_HANDLE_TEMPLATE").unwrap_or_else(|| d.sila_user_handle_template.clone());
        if !sila_user_handle_template.contains("{user_id}") {
            bail!("KYC_GATEWAY_SILA_USER_HANDLE_TEMPLATE must contain {{user_id}}");
        }
        let jwt = match (var("KYC_GATEWAY_JWT_SECRET"), var("KYC_GATEWAY_JWT_ISSUER")) {
            (None, None) => None,
            (Some(secret), Some(issuer)) => {
                Some(JwtSettings { secret: Secret::new(secret), issuer, audience: var("KYC_GATEWAY_JWT_AUDIENCE") })
            }
            _ => bail!("KYC_GATEWAY_JWT_SECRET and KYC_GATEWAY_JWT_ISSUER go together"),
        };
        let policies = Policies {
            fractal: policy(&var, "FRACTAL", &d.policies.fractal)?,
            sumsub: policy(&var, "SUMSUB", &d.policies.sumsub)?,
            sila: policy(&var, "SILA", &d.policies.sila)?,
            ident: policy(&var, "IDENT", &d.policies.ident)?,
        };
        let mut sandbox = d.sandbox.clone();
        let faults = |name: &str, default: &Faults| -> anyhow::Result<Faults> {
            match var(name) {
                None => Ok(default.clone()),
                Some(json) => serde_json::from_str(&json).map_err(|e| anyhow::anyhow!("{name} is not valid: {e}")),
            }
        };
        let all = faults("KYC_GATEWAY_SANDBOX_FAULTS", &Faults::default())?;
        sandbox.fractal.faults = faults("KYC_GATEWAY_SANDBOX_FRACTAL_FAULTS", &all)?;
        sandbox.sumsub.faults = faults("KYC_GATEWAY_SANDBOX_SUMSUB_FAULTS", &all)?;
        sandbox.sila.faults = faults("KYC_GATEWAY_SANDBOX_SILA_FAULTS", &all)?;
        sandbox.ident.faults = faults("KYC_GATEWAY_SANDBOX_IDENT_FAULTS", &all)?;
        sandbox.fractal.users =
            parse("KYC_GATEWAY_SANDBOX_USERS", var("KYC_GATEWAY_SANDBOX_USERS"), sandbox.fractal.users)?;
        sandbox.fractal.seed =
            parse("KYC_GATEWAY_SANDBOX_SEED", var("KYC_GATEWAY_SANDBOX_SEED"), sandbox.fractal.seed)?;
        sandbox.fractal.access_token_ttl = Duration::from_secs(parse(
            "KYC_GATEWAY_SANDBOX_TOKEN_TTL_SECS",
            var("KYC_GATEWAY_SANDBOX_TOKEN_TTL_SECS"),
            sandbox.fractal.access_token_ttl.as_secs(),
        )?);
        let secs = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            Ok(Duration::from_secs(parse(name, var(name), default.as_secs())?))
        };
        let cache = CacheConfig {
            enabled: match var("KYC_GATEWAY_CACHE").as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => bail!("KYC_GATEWAY_CACHE={other:?} must be on or off"),
            },
            status_ttl: secs("KYC_GATEWAY_CACHE_TTL_SECS", d.cache.status_ttl)?,
            negative_ttl: secs("KYC_GATEWAY_CACHE_NEGATIVE_TTL_SECS", d.cache.negative_ttl)?,
            bulk_ttl: secs("KYC_GATEWAY_CACHE_BULK_TTL_SECS", d.cache.bulk_ttl)?,
            max_bytes: parse("KYC_GATEWAY_CACHE_MAX_MB", var("KYC_GATEWAY_CACHE_MAX_MB"), d.cache.max_bytes >> 20)?
                << 20,
        };
        let fan_out = match var("KYC_GATEWAY_FANOUT").as_deref() {
            None | Some("batched") => FanOut::Batched,
            Some("naive") => FanOut::Naive,
            Some(other) => bail!("KYC_GATEWAY_FANOUT={other:?} must be batched or naive"),
        };
        let config = Config {
            listen: parse("KYC_GATEWAY_LISTEN", var("KYC_GATEWAY_LISTEN"), d.listen)?,
            dev_secret: var("KYC_GATEWAY_DEV_SECRET").map(Secret::new).unwrap_or(d.dev_secret),
            fractal,
            sumsub,
            sila,
            ident,
            levels,
            sila_user_handle_template,
            jwt,
            directory_file: var("KYC_GATEWAY_DIRECTORY_FILE").map(PathBuf::from),
            sandbox,
            policies,
            cache,
            fan_out,
            loader_delay: Duration::from_micros(parse(
                "KYC_GATEWAY_LOADER_DELAY_US",
                var("KYC_GATEWAY_LOADER_DELAY_US"),
                d.loader_delay.as_micros() as u64,
            )?),
            max_user_ids: parse("KYC_GATEWAY_MAX_USER_IDS", var("KYC_GATEWAY_MAX_USER_IDS"), d.max_user_ids)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Sandbox mode: no real provider configured.
    pub fn is_sandbox(&self) -> bool {
        self.fractal.is_none() && self.sumsub.is_none() && self.sila.is_none() && self.ident.is_none()
    }

    /// The start-up checks of production mode: a token issuer of its own, whose secret is not a dev secret.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_user_ids == 0 {
            bail!("KYC_GATEWAY_MAX_USER_IDS must be at least 1");
        }
        if self.is_sandbox() {
            if self.jwt.is_some() {
                bail!(
                    "KYC_GATEWAY_JWT_SECRET and KYC_GATEWAY_JWT_ISSUER configure production mode, but no real provider \
                     is configured; configure one, or unset them to run the sandbox"
                );
            }
            return Ok(());
        }
        let Some(jwt) = &self.jwt else {
            bail!(
                "refusing to start: a real provider is configured but no token issuer; dev tokens are accepted only \
                 in sandbox mode. Set KYC_GATEWAY_JWT_SECRET and KYC_GATEWAY_JWT_ISSUER."
            );
        };
        if jwt.secret.expose() == DEFAULT_DEV_SECRET || jwt.secret == self.dev_secret {
            bail!(
                "refusing to start: KYC_GATEWAY_JWT_SECRET is the dev secret (the documented default or \
                 KYC_GATEWAY_DEV_SECRET), so anyone could mint tokens"
            );
        }
        if jwt.issuer == DEV_ISSUER {
            bail!("refusing to start: KYC_GATEWAY_JWT_ISSUER is the dev token issuer {DEV_ISSUER:?}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

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
        good.extend([("KYC_GATEWAY_JWT_SECRET", "a-real-secret"), ("KYC_GATEWAY_JWT_ISSUER", "https://id")]);
        assert!(!from(&good).expect("valid").is_sandbox());
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
        let c = from(&[
            ("KYC_GATEWAY_IDENT_TOKEN", "t"),
            ("KYC_GATEWAY_JWT_SECRET", "a-real-secret"),
            ("KYC_GATEWAY_JWT_ISSUER", "https://id"),
            ("KYC_GATEWAY_SUMSUB_LEVELS", "kyc-1=basic"),
        ])
        .expect("valid");
        assert!(!c.is_sandbox() && c.fractal.is_none() && c.ident.is_some());
        assert_eq!(c.levels.sumsub.items("kyc-1"), ["basic"]);
        assert!(from(&[("KYC_GATEWAY_SILA_FLOWS", "nonsense")]).is_err());
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
    fn a_malformed_value_names_the_variable() {
        let err = from(&[("KYC_GATEWAY_LISTEN", "nope")]).expect_err("bad address").to_string();
        assert!(err.contains("KYC_GATEWAY_LISTEN"), "{err}");
    }
}
