//! `GET /healthz` (the process answers) and `GET /readyz` (it should be sent traffic: the database answers with
//! every migration applied, every token issuer's keys are at hand, and it is not shutting down). A probe gets the
//! state of each check; a failed check is named, with no detail (an error message could carry a host or a user).

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

/// Completes when the gateway should stop taking connections: at SIGTERM (or SIGINT, Ctrl-C), it answers `/readyz`
/// with 503 at once and keeps serving for `drain_delay`, so that load balancers and the mesh, which poll readiness,
/// stop sending it traffic before its listener closes (Kubernetes removes a terminating pod's endpoints
/// asynchronously: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination).
pub async fn on_shutdown_signal(readiness: Readiness, drain_delay: Duration) {
    signal().await;
    readiness.drain();
    tracing::info!(
        drain_delay_secs = drain_delay.as_secs(),
        "shutting down: not ready; still serving for the drain delay"
    );
    tokio::time::sleep(drain_delay).await;
    tracing::info!("closing the listener; requests in flight finish");
}

#[cfg(unix)]
async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn signal() {
    let _ = tokio::signal::ctrl_c().await;
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
