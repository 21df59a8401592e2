//! The HTTP surface: `POST|GET /graphql`, subscriptions at `/graphql/ws`, providers' webhooks at
//! `POST /webhooks/<provider>`, GraphiQL at `/` and `/graphiql`, `GET /healthz`.

pub mod connections;
mod graphql;
mod pages;
mod webhooks;
mod ws;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use tokio::sync::watch;

use crate::auth::token::TokenVerifier;
use crate::config::SubscriptionSettings;
use crate::graphql::errors::ErrorCode;
use crate::graphql::{GatewaySchema, Services};
use connections::Connections;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: GatewaySchema,
    pub verifier: TokenVerifier,
    /// For the per-request loaders.
    pub services: Services,
    pub webhooks: crate::webhooks::Webhooks,
    pub subscriptions: Arc<SubscriptionSettings>,
    /// Open WebSocket connections, per caller.
    pub connections: Arc<Connections>,
    /// Turns true when the server is shutting down: WebSocket connections close with 1001.
    pub shutdown: watch::Receiver<bool>,
}

pub fn router(state: AppState) -> Router {
    let webhook_limit = DefaultBodyLimit::max(state.webhooks.max_body_bytes());
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", any(ws::upgrade))
        .route("/webhooks/{provider}", post(webhooks::receive).layer(webhook_limit))
        .route("/", get(pages::graphiql))
        .route("/graphiql", get(pages::graphiql))
        .route("/healthz", get(pages::healthz))
        .fallback(pages::not_found)
        .with_state(state)
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
