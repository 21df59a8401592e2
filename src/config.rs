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
use crate::providers::HttpPolicy;
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
    /// A real Fractal; `None` runs the sandbox.
    pub fractal: Option<FractalSettings>,
    pub jwt: Option<JwtSettings>,
    /// Provider links to load at start (production mode).
    pub directory_file: Option<PathBuf>,
    pub sandbox: SandboxConfig,
    pub http: HttpPolicy,
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
            jwt: None,
            directory_file: None,
            sandbox: SandboxConfig::default(),
            http: HttpPolicy::default(),
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
        // Any Fractal variable means a real Fractal: a half-configured one must fail, not fall back to the sandbox.
        let fractal_vars = [
            "KYC_GATEWAY_FRACTAL_CLIENT_ID",
            "KYC_GATEWAY_FRACTAL_CLIENT_SECRET",
            "KYC_GATEWAY_FRACTAL_AUTH_URL",
            "KYC_GATEWAY_FRACTAL_RESOURCE_URL",
        ];
        let fractal = if fractal_vars.iter().any(|v| var(v).is_some()) {
            let required = |name: &str| var(name).with_context(|| format!("{name} is required with a real Fractal"));
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
        let jwt = match (var("KYC_GATEWAY_JWT_SECRET"), var("KYC_GATEWAY_JWT_ISSUER")) {
            (None, None) => None,
            (Some(secret), Some(issuer)) => {
                Some(JwtSettings { secret: Secret::new(secret), issuer, audience: var("KYC_GATEWAY_JWT_AUDIENCE") })
            }
            _ => bail!("KYC_GATEWAY_JWT_SECRET and KYC_GATEWAY_JWT_ISSUER go together"),
        };
        let ms = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(parse(name, var(name), default.as_millis() as u64)?))
        };
        let mut sandbox = d.sandbox.clone();
        sandbox.fractal.users =
            parse("KYC_GATEWAY_SANDBOX_USERS", var("KYC_GATEWAY_SANDBOX_USERS"), sandbox.fractal.users)?;
        sandbox.fractal.seed =
            parse("KYC_GATEWAY_SANDBOX_SEED", var("KYC_GATEWAY_SANDBOX_SEED"), sandbox.fractal.seed)?;
        sandbox.fractal.access_token_ttl = Duration::from_secs(parse(
            "KYC_GATEWAY_SANDBOX_TOKEN_TTL_SECS",
            var("KYC_GATEWAY_SANDBOX_TOKEN_TTL_SECS"),
            sandbox.fractal.access_token_ttl.as_secs(),
        )?);
        let config = Config {
            listen: parse("KYC_GATEWAY_LISTEN", var("KYC_GATEWAY_LISTEN"), d.listen)?,
            dev_secret: var("KYC_GATEWAY_DEV_SECRET").map(Secret::new).unwrap_or(d.dev_secret),
            fractal,
            jwt,
            directory_file: var("KYC_GATEWAY_DIRECTORY_FILE").map(PathBuf::from),
            sandbox,
            http: HttpPolicy {
                connect_timeout: ms("KYC_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS", d.http.connect_timeout)?,
                timeout: ms("KYC_GATEWAY_UPSTREAM_TIMEOUT_MS", d.http.timeout)?,
            },
            max_user_ids: parse("KYC_GATEWAY_MAX_USER_IDS", var("KYC_GATEWAY_MAX_USER_IDS"), d.max_user_ids)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Sandbox mode: no real provider configured.
    pub fn is_sandbox(&self) -> bool {
        self.fractal.is_none()
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
