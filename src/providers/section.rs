//! A provider's configuration section: `KYC_GATEWAY_<PROVIDER>_<SETTING>`. Each provider's folder reads its own
//! settings through this; the settings every provider has (the upstream policy, webhook secrets, a level map) are
//! read here once for all of them. A policy setting falls back to `KYC_GATEWAY_UPSTREAM_<SETTING>`, then the default.

use std::time::Duration;

use anyhow::{bail, Context as _};

use super::UpstreamPolicy;
use crate::domain::levels::LevelMap;
use crate::domain::Provider;
use crate::env::Env;
use crate::secret::Secret;

/// One provider's section of the environment.
pub struct Section<'a> {
    env: &'a Env<'a>,
    provider: Provider,
}

/// The upstream policy's settings, each `KYC_GATEWAY_<PROVIDER>_<SETTING>` or `KYC_GATEWAY_UPSTREAM_<SETTING>`.
pub const POLICY_SETTINGS: [&str; 9] = [
    "CONNECT_TIMEOUT_MS",
    "TIMEOUT_MS",
    "DEADLINE_MS",
    "MAX_CONCURRENCY",
    "RATE_LIMIT",
    "RETRIES",
    "BACKOFF_MS",
    "BREAKER_THRESHOLD",
    "BREAKER_COOLDOWN_MS",
];

/// The shortest webhook secret taken: providers generate long ones.
const MIN_WEBHOOK_SECRET: usize = 16;

impl<'a> Section<'a> {
    pub fn new(env: &'a Env<'a>, provider: Provider) -> Self {
        Section { env, provider }
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The full name of one of its settings: `KYC_GATEWAY_SILA_APP_HANDLE`.
    pub fn name(&self, setting: &str) -> String {
        format!("{}{setting}", self.provider.env_prefix())
    }

    /// A setting's value, if set.
    pub fn get(&self, setting: &str) -> Option<String> {
        self.env.get(&self.name(setting))
    }

    /// A setting's value, or `default`.
    pub fn or(&self, setting: &str, default: &str) -> String {
        self.get(setting).unwrap_or_else(|| default.to_owned())
    }

    /// A setting the provider cannot do without, once configured.
    pub fn required(&self, setting: &str) -> anyhow::Result<String> {
        let name = self.name(setting);
        self.env.get(&name).with_context(|| format!("{name} is required for that provider"))
    }

    /// A secret the provider cannot do without.
    pub fn secret(&self, setting: &str) -> anyhow::Result<Secret> {
        self.required(setting).map(Secret::new)
    }

    /// Whether any of these settings is set: a provider is configured by any of its identifying variables.
    pub fn any(&self, settings: &[&str]) -> bool {
        settings.iter().any(|s| self.get(s).is_some())
    }

    /// `on` or `off`, or `default`.
    pub fn switch(&self, setting: &str, default: bool) -> anyhow::Result<bool> {
        self.env.switch(&self.name(setting), default)
    }

    /// The value parsed, or `default`.
    pub fn parse<T: std::str::FromStr>(&self, setting: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.env.parse(&self.name(setting), default)
    }

    /// Whole seconds, or `default`.
    pub fn secs(&self, setting: &str, default: Duration) -> anyhow::Result<Duration> {
        self.env.secs(&self.name(setting), default)
    }

    /// A level map (`level=item+item; level=item`), or `default`'s.
    pub fn levels(&self, setting: &str, default: &str) -> anyhow::Result<LevelMap> {
        let name = self.name(setting);
        let spec = self.env.get(&name).unwrap_or_else(|| default.to_owned());
        LevelMap::parse(&spec).map_err(|e| anyhow::anyhow!("{name} is not valid: {e}"))
    }

    /// `KYC_GATEWAY_<PROVIDER>_WEBHOOK_SECRETS`: the secrets its webhooks may be signed with (comma separated,
    /// several while one is rotated); none, no webhook endpoint.
    pub fn webhook_secrets(&self) -> anyhow::Result<Vec<Secret>> {
        let name = self.name("WEBHOOK_SECRETS");
        let secrets: Vec<Secret> = self
            .env
            .get(&name)
            .map(|list| list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Secret::new).collect())
            .unwrap_or_default();
        if secrets.iter().any(|s| s.expose().len() < MIN_WEBHOOK_SECRET) {
            bail!(
                "a {name} entry is shorter than {MIN_WEBHOOK_SECRET} characters: use the provider's generated secret"
            );
        }
        Ok(secrets)
    }

    /// The upstream policy: each setting the provider's own, else the common one, else `base`'s.
    pub fn policy(&self, base: &UpstreamPolicy) -> anyhow::Result<UpstreamPolicy> {
        policy(self.env, &self.provider.env_prefix(), base)
    }
}

/// `300/5s`, `50/500ms`, or `off`.
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

/// One provider's policy (`prefix`: `KYC_GATEWAY_SILA_`).
fn policy(env: &Env<'_>, prefix: &str, base: &UpstreamPolicy) -> anyhow::Result<UpstreamPolicy> {
    // The variable that decides a setting: the provider's own if set, else the global one.
    let name = |setting: &str| {
        let own = format!("{prefix}{setting}");
        match env.get(&own) {
            Some(_) => own,
            None => format!("KYC_GATEWAY_UPSTREAM_{setting}"),
        }
    };
    let ms = |setting: &str, default: Duration| env.millis(&name(setting), default);
    let num = |setting: &str, default: u32| env.parse(&name(setting), default);
    let rate_name = name("RATE_LIMIT");
    let rate_limit = match env.get(&rate_name) {
        Some(text) => parse_rate(&rate_name, &text)?,
        None => base.rate_limit,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_seconds_or_milliseconds_or_off() {
        assert_eq!(parse_rate("X", "300/5s").expect("valid"), Some((300, Duration::from_secs(5))));
        assert_eq!(parse_rate("X", "50/500ms").expect("valid"), Some((50, Duration::from_millis(500))));
        assert_eq!(parse_rate("X", "off").expect("valid"), None);
        assert!(parse_rate("X", "0/1s").is_err() && parse_rate("X", "many").is_err());
    }
}
