//! `GET /healthz` (the process answers) and `GET /readyz` (it should be sent traffic: the database answers with
//! every migration applied, every token issuer's keys are at hand, and it is not shutting down). A probe gets the
//! state of each check; a failed check is named, with no detail (an error message could carry a host or a user).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::AppState;

/// How long the database may take to answer a readiness probe (probes time out at a second or so themselves).
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the store's check stands for the probes that follow it: `/readyz` needs no token, so a flood of probes
/// must not take the pool's connections from callers (one query a second at most, whatever the probe rate).
const STORE_CHECK_TTL: Duration = Duration::from_secs(1);

/// The store's state and its migrations', as the last check found them.
type StoreCheck = (&'static str, &'static str);

/// Whether this replica is shutting down: from the signal on, `/readyz` answers 503 while requests are still served.
/// Also the store's last check, which concurrent probes wait for rather than each asking the database.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
    store: Arc<tokio::sync::Mutex<Option<(tokio::time::Instant, StoreCheck)>>>,
}

impl Readiness {
    /// Takes the replica out of rotation (for good: a replica that started shutting down never comes back).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// A signal that stops the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM: what an orchestrator sends.
    Terminate,
    /// SIGINT: Ctrl-C at a terminal.
    Interrupt,
}

/// How far the shutdown has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Serving,
    Closing,
    AtOnce,
}

/// The shutdown that the process's SIGTERM and SIGINT (Ctrl-C) drive: see [`shutdown_sequence`].
pub fn on_shutdown_signal(
    readiness: Readiness,
    drain_delay: Duration,
    sandbox: bool,
) -> (impl Future<Output = ()> + Send + 'static, impl Future<Output = ()> + Send + 'static) {
    let (signals, received) = tokio::sync::mpsc::channel(4);
    tokio::spawn(forward_signals(signals));
    shutdown_sequence(received, readiness, drain_delay, sandbox)
}

/// What the stop signals mean: `(graceful, at_once)`. The first answers `/readyz` with 503 at once and serves on for
/// `drain_delay`, so that load balancers stop sending before the listener closes, then completes `graceful`; a second
/// signal, at any point, completes `at_once`.
pub fn shutdown_sequence(
    mut signals: tokio::sync::mpsc::Receiver<StopSignal>,
    readiness: Readiness,
    drain_delay: Duration,
    sandbox: bool,
) -> (impl Future<Output = ()> + Send + 'static, impl Future<Output = ()> + Send + 'static) {
    let (stage, watched) = tokio::sync::watch::channel(Stage::Serving);
    tokio::spawn(async move {
        let Some(first) = signals.recv().await else { return };
        readiness.drain();
        // Kubernetes removes a terminating pod's endpoints asynchronously
        // (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination). No load balancer polls a
        // developer's terminal: Ctrl-C in sandbox mode skips the delay.
        let delay = if sandbox && first == StopSignal::Interrupt { Duration::ZERO } else { drain_delay };
        tracing::info!(
            drain_delay_secs = delay.as_secs(),
            "shutting down: not ready; still serving for the drain delay"
        );
        let second = tokio::select! {
            () = tokio::time::sleep(delay) => {
                tracing::info!("closing the listener; requests in flight finish");
                stage.send_replace(Stage::Closing);
                signals.recv().await
            }
            second = signals.recv() => second,
        };
        if second.is_some() {
            tracing::warn!("a second stop signal: stopping at once");
            stage.send_replace(Stage::AtOnce);
        }
    });
    let reached = |wanted: Stage| {
        let mut watched = watched.clone();
        async move {
            if watched.wait_for(|stage| *stage >= wanted).await.is_err() {
                // No signal will come any more.
                std::future::pending::<()>().await;
            }
        }
    };
    (reached(Stage::Closing), reached(Stage::AtOnce))
}

/// Hands the process's SIGTERM and SIGINT to `signals`, as they come.
#[cfg(unix)]
async fn forward_signals(signals: tokio::sync::mpsc::Sender<StopSignal>) {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => loop {
            let got = tokio::select! {
                _ = term.recv() => StopSignal::Terminate,
                _ = int.recv() => StopSignal::Interrupt,
            };
            if signals.send(got).await.is_err() {
                return;
            }
        },
        _ => forward_ctrl_c(signals).await,
    }
}

#[cfg(not(unix))]
async fn forward_signals(signals: tokio::sync::mpsc::Sender<StopSignal>) {
    forward_ctrl_c(signals).await
}

async fn forward_ctrl_c(signals: tokio::sync::mpsc::Sender<StopSignal>) {
    while tokio::signal::ctrl_c().await.is_ok() {
        if signals.send(StopSignal::Interrupt).await.is_err() {
            return;
        }
    }
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The store's check: the last one if it is under [`STORE_CHECK_TTL`] old, else a new one (one at a time).
async fn store_check(state: &AppState) -> StoreCheck {
    let mut last = state.readiness.store.lock().await;
    if let Some((at, check)) = *last {
        if at.elapsed() < STORE_CHECK_TTL {
            return check;
        }
    }
    let check = match tokio::time::timeout(STORE_TIMEOUT, state.services.store.pending_migrations()).await {
        Ok(Ok(0)) => ("ok", "ok"),
        Ok(Ok(_)) => ("ok", "pending"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: the database did not answer");
            ("unreachable", "unknown")
        }
        Err(_) => ("timeout", "unknown"),
    };
    *last = Some((tokio::time::Instant::now(), check));
    check
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = store_check(&state).await;
    let keys = if state.verifier.ready().await { "ok" } else { "not_fetched" };
    let lifecycle = if state.readiness.is_draining() { "shutting_down" } else { "ok" };
    let checks =
        serde_json::json!({ "store": store.0, "migrations": store.1, "token_keys": keys, "lifecycle": lifecycle });
    let ready = [store.0, store.1, keys, lifecycle].iter().all(|check| *check == "ok");
    let (status, word) = if ready { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready") };
    let body = serde_json::json!({ "status": word, "mode": state.mode.as_str(), "checks": checks });
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough that a test passing through it would time out.
    const HOUR: Duration = Duration::from_secs(3600);
    /// How long a test waits for a stage that should come at once.
    const SOON: Duration = Duration::from_secs(10);

    fn sequence(
        delay: Duration,
        sandbox: bool,
    ) -> (tokio::sync::mpsc::Sender<StopSignal>, Readiness, impl Future<Output = ()>, impl Future<Output = ()>) {
        let (signals, received) = tokio::sync::mpsc::channel(4);
        let readiness = Readiness::default();
        let (graceful, at_once) = shutdown_sequence(received, readiness.clone(), delay, sandbox);
        (signals, readiness, graceful, at_once)
    }

    #[tokio::test]
    async fn ctrl_c_in_sandbox_mode_closes_the_listener_without_the_drain_delay() {
        let (signals, readiness, graceful, _) = sequence(HOUR, true);
        signals.send(StopSignal::Interrupt).await.expect("sent");
        tokio::time::timeout(SOON, graceful).await.expect("no drain delay");
        assert!(readiness.is_draining());
    }

    #[tokio::test]
    async fn sigterm_drains_in_sandbox_mode_too_and_any_signal_drains_in_production() {
        for (sandbox, signal) in [(true, StopSignal::Terminate), (false, StopSignal::Interrupt)] {
            let (signals, readiness, graceful, _) = sequence(HOUR, sandbox);
            signals.send(signal).await.expect("sent");
            // Not ready at once, while the listener stays open for the hour.
            let started = std::time::Instant::now();
            while !readiness.is_draining() {
                assert!(started.elapsed() < SOON, "not ready at once");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(tokio::time::timeout(Duration::from_millis(100), graceful).await.is_err(), "{signal:?}");
        }
    }

    #[tokio::test]
    async fn a_second_signal_stops_at_once_during_the_drain_or_after_it() {
        let (signals, readiness, _, at_once) = sequence(HOUR, false);
        signals.send(StopSignal::Terminate).await.expect("sent");
        signals.send(StopSignal::Interrupt).await.expect("sent");
        tokio::time::timeout(SOON, at_once).await.expect("stopped at once during the drain");
        assert!(readiness.is_draining());

        let (signals, _, graceful, at_once) = sequence(Duration::ZERO, false);
        signals.send(StopSignal::Terminate).await.expect("sent");
        tokio::time::timeout(SOON, graceful).await.expect("the listener closes");
        signals.send(StopSignal::Terminate).await.expect("sent");
        tokio::time::timeout(SOON, at_once).await.expect("stopped at once while requests finish");
    }
}
