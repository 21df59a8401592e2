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

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A fixed-window rate limit: at most `limit` requests per `window`.
pub struct RateLimit {
    limit: u32,
    window: std::time::Duration,
    state: std::sync::Mutex<(std::time::Instant, u32)>,
}

impl RateLimit {
    pub fn new(limit: u32, window: std::time::Duration) -> Self {
        RateLimit { limit, window, state: std::sync::Mutex::new((std::time::Instant::now(), 0)) }
    }

    /// Counts a request; `Err(seconds until the window resets)` when over the limit.
    pub fn admit(&self) -> Result<(), u64> {
        let mut state = self.state.lock().expect("rate limit lock");
        let now = std::time::Instant::now();
        if now.duration_since(state.0) >= self.window {
            *state = (now, 0);
        }
        if state.1 >= self.limit {
            let left = self.window.saturating_sub(now.duration_since(state.0));
            return Err(left.as_secs().max(1));
        }
        state.1 += 1;
        Ok(())
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
