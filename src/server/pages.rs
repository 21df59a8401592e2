//! GraphiQL, health and the JSON 404.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

/// GraphiQL, with a fetcher that sends subscriptions over `/graphql/ws` and the Headers pane's token in
/// `connection_init` (`assets/graphiql.html`).
pub async fn graphiql() -> Html<&'static str> {
    Html(include_str!("assets/graphiql.html"))
}

/// Liveness: the process serves HTTP. It does not call providers, so a provider outage never restarts the gateway.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": "not found" }))).into_response()
}
