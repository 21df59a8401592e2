//! The HTTP surface: `POST|GET /graphql`, GraphiQL at `/` and `/graphiql`, `GET /healthz`.

mod graphql;
mod pages;

use axum::routing::get;
use axum::Router;

use crate::auth::token::TokenVerifier;
use crate::graphql::{GatewaySchema, Services};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: GatewaySchema,
    pub verifier: TokenVerifier,
    /// For the per-request loaders.
    pub services: Services,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/", get(pages::graphiql))
        .route("/graphiql", get(pages::graphiql))
        .route("/healthz", get(pages::healthz))
        .fallback(pages::not_found)
        .with_state(state)
}
