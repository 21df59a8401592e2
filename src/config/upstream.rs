//! The upstream policy of each provider: `KYC_GATEWAY_<PROVIDER>_<SETTING>`, else `KYC_GATEWAY_UPSTREAM_<SETTING>`,
//! else the default.

use std::time::Duration;

use anyhow::bail;

use super::env::Env;
use crate::providers::UpstreamPolicy;

/// The upstream policy of each provider.
#[derive(Debug, Clone)]
pub struct Policies {
    pub fractal: UpstreamPolicy,
    pub sumsub: UpstreamPolicy,
    pub sila: UpstreamPolicy,
    pub ident: UpstreamPolicy,
}

impl Default for Policies {
    /// Sumsub documents 300 GET requests per 5 seconds (its API reference, "Rate limits"); staying under it avoids
    /// its 429s.
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

impl Policies {
    pub(super) fn from_env(env: &Env<'_>) -> anyhow::Result<Self> {
        let d = Policies::default();
        Ok(Policies {
            fractal: policy(env, "FRACTAL", &d.fractal)?,
            sumsub: policy(env, "SUMSUB", &d.sumsub)?,
            sila: policy(env, "SILA", &d.sila)?,
            ident: policy(env, "IDENT", &d.ident)?,
        })
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

/// One provider's policy.
fn policy(env: &Env<'_>, provider: &str, base: &UpstreamPolicy) -> anyhow::Result<UpstreamPolicy> {
    // The variable that decides a setting: the provider's own if set, else the global one.
    let name = |setting: &str| {
        let own = format!("KYC_GATEWAY_{provider}_{setting}");
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
