//! Every request observed, in one middleware: its id, its span (the parent of everything it does, adopting the caller's
//! W3C `traceparent`) and its metrics. The span says method, route template, status, request id and trace id: never a
//! path with ids in it, a header value or a body.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::telemetry::{metrics as m, otel};

/// A request's id and trace, for its audit record and its log lines.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The trace this request belongs to: the caller's (`traceparent`), or a new one when traces are exported.
    pub trace_id: Option<String>,
}

/// The route template of a path: a bounded label (ids and file names never become labels).
pub fn route(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/graphql/ws" => "/graphql/ws",
        "/" | "/graphiql" => "/graphiql",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        p if p.starts_with("/webhooks/") => "/webhooks/{provider}",
        p if p.starts_with("/graphiql/assets/") => "/graphiql/assets/{name}",
        _ => "other",
    }
}

/// A method as a bounded label: the standard ones, else `other` (a method is any token a caller likes).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The request's id: the one the mesh or a proxy in front gave it (`X-Request-Id`, so their logs and ours meet) when
/// it is a short plain token, else a new one.
fn request_id(request: &Request) -> String {
    let given = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|id| {
        (1..=MAX_REQUEST_ID).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    match given {
        Some(id) => id.to_owned(),
        None => crate::secret::random_token()[..32].to_owned(),
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest request id taken from a caller (a UUID is 36).
const MAX_REQUEST_ID: usize = 64;

pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route(request.uri().path());
    let method = method_label(request.method());
    let request_id = request_id(&request);
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    otel::adopt_parent(&span, request.headers());
    // The caller's trace, or one begun here: every request has a trace id for its logs and audit record, and
    // provider calls carry it on even when traces are not exported.
    let given = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
    let traceparent: Arc<str> = match given.filter(|t| otel::traceparent_trace_id(t).is_some()) {
        Some(given) => given.trim().into(),
        None => otel::new_traceparent().into(),
    };
    let trace_id = span
        .in_scope(otel::current_trace_id)
        .unwrap_or_else(|| otel::traceparent_trace_id(&traceparent).unwrap_or_default().to_owned());
    span.record("trace_id", trace_id.as_str());
    request.extensions_mut().insert(RequestContext { request_id: request_id.clone(), trace_id: Some(trace_id) });
    let in_flight = m::Gauged::new(m::HTTP_IN_FLIGHT);
    let work = next.run(request).instrument(span.clone());
    let mut response = otel::with_request_trace(Some(traceparent), work).await;
    drop(in_flight);
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let labels = [("route", route), ("method", method), ("status", status_label(status))];
    metrics::counter!(m::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(m::HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

/// A status as a label without an allocation per request.
fn status_label(status: u16) -> &'static str {
    const KNOWN: [(u16, &str); 22] = [
        (200, "200"),
        (101, "101"),
        (204, "204"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (406, "406"),
        (408, "408"),
        (413, "413"),
        (415, "415"),
        (429, "429"),
        (431, "431"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
        (206, "206"),
        (302, "302"),
        (422, "422"),
    ];
    KNOWN.iter().find(|(code, _)| *code == status).map_or(
        match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
        |(_, label)| label,
    )
}

/// `GET /metrics`: the process's metrics in Prometheus' text format.
pub async fn metrics() -> Response {
    let body = m::handle().render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// The router of the metrics listener (`KYC_GATEWAY_METRICS_LISTEN`): `/metrics` and nothing of the API.
pub fn metrics_router() -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(metrics))
}
