//! The HTTP surface: `POST|GET /graphql`, subscriptions at `/graphql/ws`, providers' webhooks at
//! `POST /webhooks/<provider>`, GraphiQL at `/` and `/graphiql` (its embedded assets under `/graphiql/assets/`),
//! `GET /healthz`; security headers on every answer (`headers.rs`).

pub mod connections;
mod graphql;
mod headers;
mod pages;
mod webhooks;
mod ws;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;
use tokio::sync::watch;

use crate::auth::token::TokenVerifier;
use crate::config::SubscriptionSettings;
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
        .route("/graphiql/assets/{name}", get(pages::asset))
        .route("/healthz", get(pages::healthz))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}
