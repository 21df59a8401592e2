//! Fault injection for every sandbox provider: latency (fixed plus jitter), shares of 503s and of hanging requests, and
//! one-shot 503s or 429s. Set from configuration, changed at run time by `PUT /_sandbox/faults` (the fields of
//! [`Faults`]) or [`FaultInjector::set`]; `GET /_sandbox/faults` shows them with the request count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub use crate::settings::Faults;

use super::rng::Rng;

/// One sandbox's faults and its request count.
pub struct FaultInjector {
    faults: Mutex<Faults>,
    requests: AtomicU64,
    /// Requests being served now: one whose client went away and whose handler was dropped counts out at once.
    in_progress: Arc<AtomicU64>,
    rng: Mutex<Rng>,
    /// The `traceparent` headers of the last requests (W3C Trace Context: the gateway propagates its trace), newest
    /// last, at most [`TRACEPARENTS`].
    traceparents: Mutex<std::collections::VecDeque<String>>,
}

/// How many `traceparent` headers a sandbox remembers.
const TRACEPARENTS: usize = 64;

enum Decision {
    Pass(Duration),
    Fail(Duration, StatusCode),
    Limit(Duration, u64),
    Hang,
}

impl FaultInjector {
    pub fn new(faults: Faults, seed: u64) -> Arc<Self> {
        Arc::new(FaultInjector {
            faults: Mutex::new(faults),
            requests: AtomicU64::new(0),
            in_progress: Arc::default(),
            rng: Mutex::new(Rng::new(seed)),
            traceparents: Mutex::default(),
        })
    }

    pub fn set(&self, faults: Faults) {
        *self.faults.lock().expect("faults lock") = faults;
    }

    pub fn get(&self) -> Faults {
        self.faults.lock().expect("faults lock").clone()
    }

    /// Every request this sandbox received (its admin endpoint excepted).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The `traceparent` headers the last requests carried, oldest first.
    pub fn traceparents(&self) -> Vec<String> {
        self.traceparents.lock().expect("traceparents lock").iter().cloned().collect()
    }

    /// Requests being served now (a client that goes away ends its request: the count drops then, not when its
    /// injected latency would have ended).
    pub fn in_progress(&self) -> u64 {
        self.in_progress.load(Ordering::Relaxed)
    }

    fn decide(&self, method: &axum::http::Method) -> Decision {
        let mut faults = self.faults.lock().expect("faults lock");
        let mut rng = self.rng.lock().expect("rng lock");
        let jitter = if faults.jitter_ms > 0 { rng.below(faults.jitter_ms as usize + 1) as u64 } else { 0 };
        let delay = Duration::from_millis(faults.latency_ms + jitter);
        let roll = |rng: &mut Rng, rate: f64| rate > 0.0 && (rng.next_u64() as f64 / u64::MAX as f64) < rate;
        let targeted = faults.only_method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()));
        if targeted && faults.fail_next > 0 {
            faults.fail_next -= 1;
            return Decision::Fail(delay, StatusCode::SERVICE_UNAVAILABLE);
        }
        if targeted && faults.rate_limit_next > 0 {
            faults.rate_limit_next -= 1;
            return Decision::Limit(delay, faults.retry_after_secs.max(1));
        }
        if roll(&mut rng, faults.timeout_rate) {
            return Decision::Hang;
        }
        if roll(&mut rng, faults.error_rate) {
            return Decision::Fail(delay, StatusCode::SERVICE_UNAVAILABLE);
        }
        Decision::Pass(delay)
    }
}

/// Counts a request in progress until dropped (served, or abandoned by its client).
struct InProgress(Arc<AtomicU64>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn inject(State(injector): State<Arc<FaultInjector>>, request: Request, next: Next) -> Response {
    injector.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(traceparent) = request.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
        let mut seen = injector.traceparents.lock().expect("traceparents lock");
        if seen.len() == TRACEPARENTS {
            seen.pop_front();
        }
        seen.push_back(traceparent.chars().take(64).collect());
    }
    injector.in_progress.fetch_add(1, Ordering::Relaxed);
    let _in_progress = InProgress(injector.in_progress.clone());
    let decision = injector.decide(request.method());
    match decision {
        Decision::Pass(delay) => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            next.run(request).await
        }
        Decision::Fail(delay, status) => {
            tokio::time::sleep(delay).await;
            (status, Json(serde_json::json!({ "error": "injected failure" }))).into_response()
        }
        Decision::Limit(delay, retry_after) => {
            tokio::time::sleep(delay).await;
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, Json(serde_json::json!({ "error": "injected rate limit" })))
                    .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
            response
        }
        Decision::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

#[derive(Serialize)]
struct Status {
    faults: Faults,
    requests: u64,
    traceparents: Vec<String>,
}

async fn show(State(injector): State<Arc<FaultInjector>>) -> Json<Status> {
    Json(Status { faults: injector.get(), requests: injector.requests(), traceparents: injector.traceparents() })
}

async fn change(State(injector): State<Arc<FaultInjector>>, Json(faults): Json<Faults>) -> Json<Status> {
    injector.set(faults);
    show(State(injector)).await
}

/// `router` with faults injected into its routes, plus the admin endpoint (which no fault touches).
pub fn wrap(router: Router, injector: Arc<FaultInjector>) -> Router {
    let admin = Router::new().route("/_sandbox/faults", get(show).put(change)).with_state(injector.clone());
    router.layer(axum::middleware::from_fn_with_state(injector, inject)).merge(admin)
}
