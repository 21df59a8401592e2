//! `POST /webhooks/<provider>`: providers' signed events. 200 once stored (or a redelivery, or an unused type); 401 a
//! bad signature and 400 a bad body, both storing nothing; 413 too large; 404 no webhook secrets; 503 when the store
//! cannot take it, so the provider retries. Logs name the provider and the event type, never the body.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::AppState;
use crate::domain::Provider;
use crate::webhooks::{Receipt, Refusal};

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

pub async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(provider) = Provider::from_label(&provider) else {
        return answer(StatusCode::NOT_FOUND, serde_json::json!({ "error": "no such webhook endpoint" }));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let name = provider.label();
    let (result, response) = match state.webhooks.receive(provider, header, &body).await {
        Ok(Receipt::Accepted) => ("accepted", answer(StatusCode::OK, serde_json::json!({ "status": "accepted" }))),
        Ok(Receipt::Duplicate) => {
            tracing::info!(provider = name, "webhook redelivered; acknowledged again");
            ("duplicate", answer(StatusCode::OK, serde_json::json!({ "status": "duplicate" })))
        }
        Ok(Receipt::Ignored { event_type }) => {
            // The type only: the rest of the body may be personal.
            let event_type: String = event_type.chars().take(64).collect();
            tracing::info!(provider = name, %event_type, "webhook of a type the gateway does not use; ignored");
            ("ignored", answer(StatusCode::OK, serde_json::json!({ "status": "ignored" })))
        }
        Err(Refusal::NotConfigured) => (
            "not_configured",
            answer(
                StatusCode::NOT_FOUND,
                serde_json::json!({ "error": "webhooks of this provider are not configured" }),
            ),
        ),
        Err(Refusal::Signature(error)) => {
            tracing::warn!(provider = name, %error, "webhook refused");
            ("bad_signature", answer(StatusCode::UNAUTHORIZED, serde_json::json!({ "error": "invalid signature" })))
        }
        Err(Refusal::Malformed(error)) => {
            tracing::warn!(provider = name, %error, "webhook refused");
            ("malformed", answer(StatusCode::BAD_REQUEST, serde_json::json!({ "error": error.to_string() })))
        }
        Err(Refusal::Unavailable(error)) => {
            tracing::error!(provider = name, %error, "webhook not stored; the provider will retry");
            ("unavailable", answer(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "error": "try again later" })))
        }
    };
    metrics::counter!(crate::telemetry::metrics::WEBHOOKS, "provider" => name, "result" => result).increment(1);
    response
}
