//! Accepting connections, with bounds `axum::serve` does not offer.
//!
//! - Request headers must arrive within `header_timeout` (hyper's header read timer), and a connection with no
//!   request in flight for `idle_timeout` is closed: half-sent requests and idle keep-alive connections cannot pile up.
//! - At most `max_connections` are open (by default what the open-files limit leaves after a reserve for the
//!   database, the providers and the sandbox). When a new connection arrives and the bound is reached, the connection
//!   that has been idle the longest (no request in flight: a slow client still sending its headers, or a keep-alive
//!   connection between requests) is closed to make room; only when every connection is busy is the new one
//!   refused. So a flood of half-open connections cannot lock real clients out, and the process never runs out of
//!   file descriptors (`accept` failing with EMFILE).
//! - A request whose client goes away is dropped with everything it started: hyper drops the handler's future when
//!   the connection closes, and with it the provider calls in flight.
//! - Shutdown: stop accepting, let the requests in flight finish (hyper-util's graceful shutdown).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::ConnectionSettings;

/// File descriptors kept for everything but callers' connections (database pool, provider and sandbox sockets,
/// listeners, logs).
const RESERVED_FDS: usize = 256;

/// The soft open-files limit of this process, from `/proc/self/limits` (Linux); `None` elsewhere.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The bound on open connections: the configured one, else what the open-files limit allows.
pub fn max_connections(settings: &ConnectionSettings) -> usize {
    settings.max_connections.unwrap_or_else(|| match open_files_limit() {
        Some(limit) => limit.saturating_sub(RESERVED_FDS).clamp(16, 100_000),
        None => 10_000,
    })
}

/// One connection's activity.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since the registry started, at the last request start or end (or the accept).
    last: AtomicU64,
    close: Notify,
}

/// The open connections.
struct Registry {
    max: usize,
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Room for a new connection: evicts the longest-idle one when full; `None` when every connection is busy.
    fn admit(self: &Arc<Self>) -> Option<(u64, Arc<Activity>)> {
        let mut open = self.open.lock().expect("connections lock");
        if open.len() >= self.max {
            let idle = open
                .iter()
                .filter(|(_, a)| a.in_flight.load(Ordering::Relaxed) == 0)
                .min_by_key(|(_, a)| a.last.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(evicted) = open.remove(&idle) {
                evicted.close.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::default());
        activity.last.store(self.now(), Ordering::Relaxed);
        open.insert(id, activity.clone());
        Some((id, activity))
    }

    fn remove(&self, id: u64) {
        self.open.lock().expect("connections lock").remove(&id);
    }
}

/// Counts a request in flight on its connection until dropped.
struct Busy {
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity.last.store(self.registry.now(), Ordering::Relaxed);
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves once the connection has had no request in flight for `idle` (checked at least every `idle`).
async fn idle_for(activity: &Activity, registry: &Registry, idle: Duration) {
    let idle_ms = idle.as_millis() as u64;
    loop {
        let quiet = registry.now().saturating_sub(activity.last.load(Ordering::Relaxed));
        if activity.in_flight.load(Ordering::Relaxed) == 0 && quiet >= idle_ms {
            return;
        }
        tokio::time::sleep(Duration::from_millis(idle_ms.saturating_sub(quiet).max(50))).await;
    }
}

/// Whether an accept error is about the one connection (retry at once) rather than the listener.
fn connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` until `shutdown` completes, then waits (up to `drain`) for requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send,
    drain: Duration,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry {
        max: max_connections(settings),
        started: Instant::now(),
        next_id: AtomicU64::new(0),
        open: Mutex::default(),
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_timeout).keep_alive(true);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    let idle = settings.idle_timeout;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) if connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors, most likely: wait for some to close rather than spin.
                    tracing::warn!(%error, "accept failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some((id, activity)) = registry.admit() else {
            // Every connection is busy with a request: refuse this one rather than run out of descriptors.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = {
            let (router, activity, registry) = (router.clone(), activity.clone(), registry.clone());
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                activity.in_flight.fetch_add(1, Ordering::Relaxed);
                let busy = Busy { activity: activity.clone(), registry: registry.clone() };
                let router = router.clone();
                async move {
                    let response = router.oneshot(request.map(Body::new)).await;
                    drop(busy);
                    Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
                }
            })
        };
        let connection =
            graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned());
        let registry = registry.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                _ = activity.close.notified() => {}
                _ = idle_for(&activity, &registry, idle) => {}
            }
            registry.remove(id);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after the drain period; closing them");
    }
    Ok(())
}
