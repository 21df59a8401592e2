//! Settings of how the gateway is run: its logs, its metrics listener and how it shuts down.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;

use super::Mode;
use crate::env::Env;

pub use crate::telemetry::LogFormat;

/// `KYC_GATEWAY_LOG_FORMAT` (`json` or `pretty`); JSON unless stderr is a terminal. The CLI reads it before the rest
/// of the configuration, so that a configuration error is logged in the right format.
pub fn log_format_from_env() -> anyhow::Result<LogFormat> {
    log_format(&Env::new(&|name| std::env::var(name).ok()))
}

fn log_format(env: &Env<'_>) -> anyhow::Result<LogFormat> {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let default = if terminal { LogFormat::Pretty } else { LogFormat::Json };
    env.choice("KYC_GATEWAY_LOG_FORMAT", &[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)], default)
}

/// The process's operations settings.
#[derive(Debug, Clone)]
pub struct OperationsSettings {
    pub log_format: LogFormat,
    /// Serve `/metrics` on this address only, not beside the API (`None`: the mode's default, see
    /// [`OperationsSettings::metrics_address`]).
    pub metrics_listen: Option<SocketAddr>,
    /// After SIGTERM, how long the gateway keeps serving while answering `/readyz` with 503, so load balancers stop
    /// sending before the listener closes.
    pub drain_delay: Duration,
    /// Then how long requests in flight have to finish before they are cut.
    pub shutdown_deadline: Duration,
}

/// Where production mode serves `/metrics` when `KYC_GATEWAY_METRICS_LISTEN` is unset: loopback, apart from the API.
pub const PRODUCTION_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);

impl OperationsSettings {
    /// The metrics listener's address in `mode` (`None`: `/metrics` beside the API, sandbox mode's default). Production
    /// mode never serves it on the API's listener, where anyone who reaches the API would read it.
    pub fn metrics_address(&self, mode: Mode) -> Option<SocketAddr> {
        match mode {
            Mode::Sandbox => self.metrics_listen,
            Mode::Production => Some(self.metrics_listen.unwrap_or(PRODUCTION_METRICS_LISTEN)),
        }
    }
}

impl Default for OperationsSettings {
    fn default() -> Self {
        OperationsSettings {
            log_format: LogFormat::Json,
            metrics_listen: None,
            drain_delay: Duration::from_secs(5),
            shutdown_deadline: Duration::from_secs(25),
        }
    }
}

pub(super) fn operations(env: &Env<'_>) -> anyhow::Result<OperationsSettings> {
    let d = OperationsSettings::default();
    let metrics_listen = match env.get("KYC_GATEWAY_METRICS_LISTEN") {
        None => None,
        Some(addr) => Some(
            crate::env::socket_addr(&addr)
                .map_err(|e| anyhow::anyhow!("KYC_GATEWAY_METRICS_LISTEN={addr:?} is not an address: {e}"))?,
        ),
    };
    let drain_delay = env.secs("KYC_GATEWAY_SHUTDOWN_DRAIN_SECS", d.drain_delay)?;
    let shutdown_deadline = env.secs("KYC_GATEWAY_SHUTDOWN_DEADLINE_SECS", d.shutdown_deadline)?;
    if drain_delay > Duration::from_secs(600) || shutdown_deadline > Duration::from_secs(3600) {
        bail!("KYC_GATEWAY_SHUTDOWN_DRAIN_SECS is at most 600 and KYC_GATEWAY_SHUTDOWN_DEADLINE_SECS at most 3600");
    }
    Ok(OperationsSettings { log_format: log_format(env)?, metrics_listen, drain_delay, shutdown_deadline })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operations_settings_are_read_and_checked() {
        let vars = |name: &str| match name {
            "KYC_GATEWAY_METRICS_LISTEN" => Some("0.0.0.0:9090".to_owned()),
            "KYC_GATEWAY_SHUTDOWN_DRAIN_SECS" => Some("0".to_owned()),
            "KYC_GATEWAY_LOG_FORMAT" => Some("pretty".to_owned()),
            _ => None,
        };
        let settings = operations(&Env::new(&vars)).expect("valid");
        assert_eq!(settings.metrics_listen, Some("0.0.0.0:9090".parse().expect("addr")));
        assert_eq!(settings.drain_delay, Duration::ZERO);
        assert_eq!(settings.shutdown_deadline, Duration::from_secs(25));
        assert_eq!(settings.log_format, LogFormat::Pretty);
        assert_eq!(settings.metrics_address(Mode::Sandbox), settings.metrics_listen);
        let unset = OperationsSettings::default();
        assert_eq!(unset.metrics_address(Mode::Sandbox), None, "sandbox mode: beside the API");
        assert_eq!(unset.metrics_address(Mode::Production), Some(PRODUCTION_METRICS_LISTEN), "never beside the API");
        let bad = |name: &str| (name == "KYC_GATEWAY_LOG_FORMAT").then(|| "xml".to_owned());
        assert!(operations(&Env::new(&bad)).is_err());
        let bad = |name: &str| (name == "KYC_GATEWAY_METRICS_LISTEN").then(|| "9090".to_owned());
        assert!(operations(&Env::new(&bad)).is_err());
    }
}
