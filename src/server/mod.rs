//! The HTTP surface: `/graphql` (and `/graphql/ws`), `/webhooks/<provider>`, GraphiQL, `/healthz`, `/readyz` and
//! `/metrics`; security headers (`headers.rs`), CORS and the accept loop (`serve.rs`). See ARCHITECTURE.md,
//! `src/server/`.

mod arriving;
mod audited;
pub mod connections;
mod graphql;
mod headers;
pub mod health;
mod memory;
pub mod observe;
mod pages;
pub mod responses;
pub mod serve;
#[cfg(feature = "sandbox")]
mod signin;
mod webhooks;
mod ws;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::token::TokenVerifier;
use crate::config::{ConnectionSettings, CorsSettings, SubscriptionSettings};
use crate::graphql::errors::ErrorCode;
use crate::graphql::{GatewaySchema, Services};
use connections::{Connections, PerCaller};

/// What the handlers share, behind one `Arc`: axum's `State` clones it for every request, and its members (the
/// schema, the providers' hub with its caches, the verifier, ...) are `Arc`s themselves, which cost each request
/// their clones one by one (BENCHMARKS.md, "What changed, measured step by step", step 5).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The members of [`AppState`].
pub struct Shared {
    pub schema: GatewaySchema,
    /// Introspection for tokens holding its scope, where it is off for everyone else.
    pub introspection: Arc<crate::graphql::Introspection>,
    pub verifier: TokenVerifier,
    /// For the per-request loaders.
    pub services: Services,
    pub webhooks: crate::webhooks::Webhooks,
    pub subscriptions: Arc<SubscriptionSettings>,
    /// Open WebSocket connections, per caller.
    pub connections: Arc<Connections>,
    /// GraphQL requests in flight, per caller.
    pub in_flight: Arc<PerCaller>,
    /// The bounds of operations (the GET handler pre-scans documents with them).
    pub bounds: Arc<crate::graphql::Bounds>,
    /// The audit trail: operations that return personal data are recorded before they answer.
    pub audit: crate::audit::Audit,
    /// Answers kept for the same caller's same query (`responses.rs`).
    pub responses: Arc<responses::Responses>,
    /// Turns true when the server is shutting down: WebSocket connections close with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// Turns not ready at the shutdown signal, before the listener closes.
    pub readiness: health::Readiness,
    /// Sandbox or production, shown on `/readyz`.
    pub mode: crate::config::Mode,
}

/// What the router is built with, beside the handlers' state.
pub struct RouterSettings<'a> {
    pub connections: &'a ConnectionSettings,
    pub cors: &'a CorsSettings,
    /// Sandbox mode: browsers on `http://localhost:*` may call.
    pub sandbox: bool,
    /// `/metrics` beside the API (else it has a listener of its own).
    pub metrics: bool,
    /// Production mode: where GraphiQL signs in.
    pub graphiql_sign_in: Option<&'a crate::config::GraphiqlSignIn>,
    /// Sandbox mode: the dev secret the sandbox sign-in (`/_sandbox/signin/`) mints tokens with.
    #[cfg(feature = "sandbox")]
    pub sandbox_sign_in: Option<crate::secret::Secret>,
}

/// Whether a browser origin may call: an exact configured origin, or in sandbox mode any port of localhost.
fn origin_allowed(origin: &HeaderValue, allowed: &[String], sandbox: bool) -> bool {
    let Ok(origin) = origin.to_str() else { return false };
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    sandbox
        && ["http://localhost", "http://127.0.0.1"].iter().any(|host| {
            origin.strip_prefix(host).is_some_and(|rest| {
                rest.is_empty()
                    || rest
                        .strip_prefix(':')
                        .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
            })
        })
}

/// CORS: preflight answered and cached; `Authorization` and `content-type` allowed; no credentials (tokens are
/// bearer tokens, never cookies). An origin off the list gets no CORS headers, so the browser refuses.
fn cors(settings: &CorsSettings, sandbox: bool) -> CorsLayer {
    let allowed = settings.origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| origin_allowed(origin, &allowed, sandbox)))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("x-access-purpose")])
        .expose_headers([header::RETRY_AFTER])
        .max_age(settings.max_age)
}

pub fn router(state: AppState, settings: RouterSettings<'_>) -> Router {
    let webhook_limit = DefaultBodyLimit::max(state.webhooks.max_body_bytes());
    let body_limit = DefaultBodyLimit::max(settings.connections.max_body_bytes);
    let mut router = Router::new();
    if settings.metrics {
        router = router.route("/metrics", get(observe::metrics));
    }
    let page = Arc::new(pages::GraphiqlPage::new(settings.graphiql_sign_in, settings.sandbox));
    router = router.merge(
        Router::new()
            .route("/", get(pages::graphiql))
            .route("/graphiql", get(pages::graphiql))
            .route("/graphiql/config", get(pages::config))
            .with_state(page),
    );
    #[cfg(feature = "sandbox")]
    if let Some(secret) = settings.sandbox_sign_in {
        router = router.merge(signin::routes(secret));
    }
    router
        .route("/graphql", get(graphql::get).post(graphql::post).fallback(graphql::other_method).layer(body_limit))
        .route("/graphql/ws", any(ws::upgrade))
        .route("/webhooks/{provider}", post(webhooks::receive).layer(webhook_limit))
        .route("/graphiql/assets/{name}", get(pages::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(pages::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(arriving::answer_too_slow))
        .layer(cors(settings.cors, settings.sandbox))
        // Outermost: every answer carries them, the preflight and timeout answers too.
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(axum::middleware::from_fn(observe::observe))
}

/// A JSON error body with one coded error, as GraphQL answers carry them.
pub(crate) fn error_body(message: &str, code: ErrorCode) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] }))
}

/// More than one `Authorization` header: 400. Which one counts would differ between this gateway, the proxies before
/// it and the logs, so a request could be judged by one token and served as another.
pub(crate) struct SeveralAuthorizations;

impl IntoResponse for SeveralAuthorizations {
    fn into_response(self) -> Response {
        let message = "send one Authorization header, not several";
        (StatusCode::BAD_REQUEST, error_body(message, ErrorCode::BadRequest)).into_response()
    }
}

/// The request's `Authorization` header, if any (a value that is not visible ASCII reads as empty, which no
/// verifier accepts); several are refused.
pub(crate) fn authorization(headers: &HeaderMap) -> Result<Option<&str>, SeveralAuthorizations> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (first, None) => Ok(first.map(|v| v.to_str().unwrap_or(""))),
        (_, Some(_)) => Err(SeveralAuthorizations),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_and_in_sandbox_mode_localhost_may_call() {
        let listed = vec!["https://app.example.com".to_owned()];
        let origin = |o: &str| HeaderValue::from_str(o).expect("header");
        assert!(origin_allowed(&origin("https://app.example.com"), &listed, false));
        assert!(!origin_allowed(&origin("https://app.example.com.evil.test"), &listed, false));
        assert!(!origin_allowed(&origin("http://localhost:3000"), &listed, false));
        assert!(origin_allowed(&origin("http://localhost:3000"), &[], true));
        assert!(origin_allowed(&origin("http://127.0.0.1:5173"), &[], true));
        assert!(!origin_allowed(&origin("http://localhost.evil.test"), &[], true));
        assert!(!origin_allowed(&origin("http://localhost:3000@evil.test"), &[], true));
    }
}
