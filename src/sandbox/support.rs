//! What every sandbox server shares: request counters and serving a router on a loopback port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests served per endpoint. The names are fixed when the server starts; asking for another is a test bug.
#[derive(Debug)]
pub struct Counters(BTreeMap<&'static str, AtomicU64>);

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Counts(BTreeMap<&'static str, u64>);

impl Counters {
    pub fn new(names: &[&'static str]) -> Self {
        Counters(names.iter().map(|n| (*n, AtomicU64::new(0))).collect())
    }

    pub fn bump(&self, name: &str) {
        self.0.get(name).unwrap_or_else(|| panic!("no counter {name:?}")).fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Counts {
        Counts(self.0.iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect())
    }
}

impl Counts {
    /// The count of `name`; panics on a name the server does not count.
    pub fn get(&self, name: &str) -> u64 {
        *self.0.get(name).unwrap_or_else(|| panic!("no counter {name:?}; counters are {:?}", self.0.keys()))
    }
}

/// Serves `router`, with `faults` injected, on `127.0.0.1:0` until the runtime stops; answers the base URL.
pub async fn serve(
    name: &'static str,
    router: axum::Router,
    faults: std::sync::Arc<super::faults::FaultInjector>,
) -> std::io::Result<String> {
    let router = super::faults::wrap(router, faults);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(sandbox = name, error = %e, "sandbox server stopped");
        }
    });
    Ok(format!("http://{addr}"))
}

/// The sandboxes' rate limits: the gateway's own GCRA, answering with the seconds to wait.
pub struct RateLimit(crate::rate_limit::RateLimit);

impl RateLimit {
    pub fn new(limit: u32, window: std::time::Duration) -> Self {
        RateLimit(crate::rate_limit::RateLimit::new(limit, window))
    }

    /// Counts a request; `Err(seconds until the next one may go)` when over the limit.
    pub fn admit(&self) -> Result<(), u64> {
        match self.0.reserve() {
            wait if wait.is_zero() => Ok(()),
            wait => Err(wait.as_secs_f64().ceil().max(1.0) as u64),
        }
    }
}

/// Compares a presented credential with the expected one in time that does not depend on where they differ.
pub fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    let mut diff = presented.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        diff |= usize::from(presented.get(i).copied().unwrap_or(0) ^ e);
    }
    diff == 0
}
