//! Reading typed values from the environment (or from a map, in tests), each failure naming its variable.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::bail;

/// `text` as an address to listen on. The gateway resolves no host name there: `localhost:8081` is refused with a
/// hint to give an IP address.
pub fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|e| {
        let port = text.trim().rsplit_once(':').map(|(_, port)| port).filter(|port| port.parse::<u16>().is_ok());
        let port = port.unwrap_or("8080");
        format!("{e}; use an IP address such as 127.0.0.1:{port} or 0.0.0.0:{port}")
    })
}

/// The environment as configuration sees it: a lookup that answers `None` for unset and empty variables.
pub struct Env<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub fn new(var: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env { var }
    }

    /// The raw value, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|v| !v.is_empty())
    }

    /// The value parsed, or `default` when unset.
    pub fn parse<T: FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e| anyhow::anyhow!("{name}={v:?} is not valid: {e}")),
        }
    }

    /// An address to listen on (see [`socket_addr`]), or `default` when unset.
    pub fn addr(&self, name: &str, default: SocketAddr) -> anyhow::Result<SocketAddr> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => socket_addr(&v).map_err(|e| anyhow::anyhow!("{name}={v:?} is not valid: {e}")),
        }
    }

    /// Whole seconds.
    pub fn secs(&self, name: &str, default: Duration) -> anyhow::Result<Duration> {
        Ok(Duration::from_secs(self.parse(name, default.as_secs())?))
    }

    /// Whole milliseconds.
    pub fn millis(&self, name: &str, default: Duration) -> anyhow::Result<Duration> {
        Ok(Duration::from_millis(self.parse(name, default.as_millis() as u64)?))
    }

    /// `on` or `off`.
    pub fn switch(&self, name: &str, default: bool) -> anyhow::Result<bool> {
        match self.get(name).as_deref().map(str::trim) {
            None => Ok(default),
            Some("on") => Ok(true),
            Some("off") => Ok(false),
            Some(other) => bail!("{name}={other:?} must be on or off"),
        }
    }

    /// One of `choices` (by name), or `default` when unset.
    pub fn choice<T: Copy>(&self, name: &str, choices: &[(&str, T)], default: T) -> anyhow::Result<T> {
        let Some(value) = self.get(name) else { return Ok(default) };
        match choices.iter().find(|(word, _)| *word == value.trim()) {
            Some((_, choice)) => Ok(*choice),
            None => {
                let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
                bail!("{name}={value:?} must be one of {}", words.join(", "))
            }
        }
    }

    /// JSON, or `default` when unset.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str, default: T) -> anyhow::Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(json) => serde_json::from_str(&json).map_err(|e| anyhow::anyhow!("{name} is not valid: {e}")),
        }
    }
}
