//! Accepting connections, with bounds `axum::serve` does not offer: header, idle and body timeouts, and at most
//! `max_connections` open (WebSockets included), the longest-idle one evicted for a newcomer, so half-sent requests can
//! neither lock real clients out nor exhaust file descriptors. Then a graceful drain at shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

use super::arriving::{Arriving, BodyDeadline};
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
    /// Requests in flight, and a caller's WebSocket once it has identified itself.
    in_flight: AtomicUsize,
    /// Requests in flight whose body is still arriving.
    receiving: AtomicUsize,
    /// Milliseconds since the registry started, at the last request start or end (or the accept).
    last: AtomicU64,
    /// Set when the registry closes the connection to make room.
    closing: AtomicBool,
    close: Notify,
}

impl Activity {
    /// Whether closing the connection would cut no work: nothing in flight but bodies still arriving.
    fn evictable(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) <= self.receiving.load(Ordering::Relaxed)
    }

    fn evict(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.close.notify_waiters();
    }

    /// Resolves once the registry has closed the connection to make room.
    async fn evicted(&self) {
        loop {
            let notified = self.close.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closing.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
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

    /// Room for a new connection: evicts the longest-idle evictable one when full; `None` when every connection is
    /// busy. The slot is freed when the last holder of the `Admitted` lets go of it.
    fn admit(self: &Arc<Self>) -> Option<(Arc<Admitted>, Arc<Activity>)> {
        let mut open = self.open.lock().expect("connections lock");
        if open.len() >= self.max {
            let idle = open
                .iter()
                .filter(|(_, a)| a.evictable())
                .min_by_key(|(_, a)| a.last.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(evicted) = open.remove(&idle) {
                evicted.evict();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::default());
        activity.last.store(self.now(), Ordering::Relaxed);
        open.insert(id, activity.clone());
        Some((Arc::new(Admitted { registry: self.clone(), id }), activity))
    }

    fn remove(&self, id: u64) {
        self.open.lock().expect("connections lock").remove(&id);
    }
}

/// A connection's place in the registry, held by its connection task, its requests and its upgraded socket.
struct Admitted {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// Counts a request in flight on its connection until dropped.
struct Busy {
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Busy {
    fn new(activity: &Arc<Activity>, registry: &Arc<Registry>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.last.store(registry.now(), Ordering::Relaxed);
        Busy { activity: activity.clone(), registry: registry.clone() }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity.last.store(self.registry.now(), Ordering::Relaxed);
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a request's body as arriving until dropped.
struct Receiving(Arc<Activity>);

impl Receiving {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.receiving.fetch_add(1, Ordering::Relaxed);
        Receiving(activity.clone())
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        self.0.receiving.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection a request came on, in the request's extensions: a WebSocket upgrade keeps it
/// ([`ConnectionSlot::upgraded`]) so the socket stays counted against the bound on open connections.
#[derive(Clone)]
pub struct ConnectionSlot {
    activity: Arc<Activity>,
    registry: Arc<Registry>,
    _admitted: Arc<Admitted>,
}

impl ConnectionSlot {
    /// The slot, held by an upgraded socket until it closes. Until [`Upgraded::identified`] the socket may be closed
    /// to make room (see [`Upgraded::evicted`]), like a connection between requests.
    pub fn upgraded(self) -> Upgraded {
        Upgraded { slot: self, busy: None }
    }
}

/// An upgraded socket's slot.
pub struct Upgraded {
    slot: ConnectionSlot,
    busy: Option<Busy>,
}

impl Upgraded {
    /// The socket now serves an identified caller: it is never closed to make room. `false` when the registry
    /// closed it to make room first (the socket must then close): decided under the registry's lock, so a connection
    /// is either evicted or identified, never both.
    #[must_use]
    pub fn identified(&mut self) -> bool {
        if self.busy.is_some() {
            return true;
        }
        let _open = self.slot.registry.open.lock().expect("connections lock");
        if self.slot.activity.closing.load(Ordering::Relaxed) {
            return false;
        }
        self.busy = Some(Busy::new(&self.slot.activity, &self.slot.registry));
        true
    }

    /// Resolves once the registry has closed this connection to make room for a new one.
    pub async fn evicted(&self) {
        self.slot.activity.evicted().await
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
    let (idle, body_timeout) = (settings.idle_timeout, settings.body_timeout);
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
        let Some((admitted, activity)) = registry.admit() else {
            // Every connection is busy with a request: refuse this one rather than run out of descriptors.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let slot = ConnectionSlot { activity: activity.clone(), registry: registry.clone(), _admitted: admitted };
        let service = {
            let (router, slot) = (router.clone(), slot.clone());
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                let busy = Busy::new(&slot.activity, &slot.registry);
                let deadline = BodyDeadline::new(body_timeout);
                let receiving = Box::new(Receiving::new(&slot.activity));
                request.extensions_mut().insert(slot.clone());
                request.extensions_mut().insert(deadline.clone());
                let request = request.map(|body| Body::new(Arriving::new(body, deadline, receiving)));
                let router = router.clone();
                async move {
                    let response = router.oneshot(request).await;
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
                _ = activity.evicted() => {}
                _ = idle_for(&activity, &registry, idle) => {}
            }
            // The slot is freed once the requests and an upgraded socket let go of it too.
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after the drain period; closing them");
    }
    Ok(())
}
