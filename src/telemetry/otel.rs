//! Traces exported over OTLP/HTTP (protobuf), and W3C Trace Context in and out. `ReqwestOtlp` sends each export with
//! the gateway's reqwest 0.12 on its runtime: the exporter's own clients bring a second TLS stack (reqwest 0.13) or
//! need a tokio reactor the SDK's batch thread lacks (opentelemetry-rust issues #2673 and #3125).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HeaderExtractor, HeaderInjector, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `opentelemetry_http::HttpClient` over the gateway's reqwest, on the gateway's runtime.
#[derive(Debug, Clone)]
struct ReqwestOtlp {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for ReqwestOtlp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        self.runtime
            .spawn(async move {
                let answer = client.execute(request).await?;
                let (status, headers) = (answer.status(), answer.headers().clone());
                let mut response = Response::builder().status(status).body(answer.bytes().await?)?;
                *response.headers_mut() = headers;
                Ok::<_, HttpError>(response)
            })
            .await?
    }
}

/// The tracer provider exporting to `endpoint` (the full `/v1/traces` URL), from inside the tokio runtime. The
/// standard `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)` and `OTEL_BSP_*` apply.
pub fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(ReqwestOtlp { client: http, runtime: tokio::runtime::Handle::current() })
        .with_endpoint(endpoint)
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("kyc-gateway");
    }
    Ok(SdkTracerProvider::builder().with_resource(resource.build()).with_batch_exporter(exporter).build())
}

pub fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("kyc-gateway")
}

/// Makes the caller's `traceparent` (W3C Trace Context) the parent of `span`.
pub fn adopt_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

tokio::task_local! {
    /// The request's trace as it came in (or as it began here), for provider calls when traces are not exported.
    static REQUEST_TRACE: Option<Arc<str>>;
}

/// Runs `work` (a request) with `traceparent` as its trace for provider calls.
pub async fn with_request_trace<T>(traceparent: Option<Arc<str>>, work: impl Future<Output = T>) -> T {
    REQUEST_TRACE.scope(traceparent, work).await
}

/// `work`, to be spawned, with the current request's trace (the task-local does not follow a spawn by itself).
pub fn carry_request_trace<T>(work: impl Future<Output = T>) -> impl Future<Output = T> {
    let traceparent = REQUEST_TRACE.try_with(Clone::clone).ok().flatten();
    REQUEST_TRACE.scope(traceparent, work)
}

/// Adds the current trace's `traceparent` to an outgoing request's headers: the current span's when traces are
/// exported, else the request's own (as the caller sent it, or begun here), so a mesh's trace still reaches the
/// provider.
pub fn inject(headers: &mut reqwest::header::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
    if headers.contains_key("traceparent") {
        return;
    }
    let request = REQUEST_TRACE.try_with(Clone::clone).ok().flatten();
    if let Some(value) = request.and_then(|t| reqwest::header::HeaderValue::from_str(&t).ok()) {
        headers.insert("traceparent", value);
    }
}

/// The trace id of a valid W3C `traceparent` (version 00 layout: `00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero).
pub fn traceparent_trace_id(value: &str) -> Option<&str> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    (parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && nonzero(parts[1])
        && nonzero(parts[2]))
    .then(|| parts[1])
}

/// A new trace for a request that came without one: a random trace id and parent id, not sampled.
pub fn new_traceparent() -> String {
    // 48 hex digits: 32 for the trace id, 16 for the parent id.
    let hex = crate::secret::random_token();
    format!("00-{}-{}-00", &hex[..32], &hex[32..48])
}

/// Names `span` once what it is about is known (a GraphQL operation's type and name come with its parsed document), and
/// sets its exported attributes; both on the exported span only, through its trace context.
pub fn rename(span: &tracing::Span, name: &str, attributes: &[(&'static str, &str)]) {
    use opentelemetry::trace::TraceContextExt as _;
    // Not `Span::record`: `otel.name` renames a span only until its trace context exists (tracing-opentelemetry's
    // `on_record`), and every record makes the JSON log layer re-serialise the span's fields, for lines no log writes
    // after an operation ends (BENCHMARKS.md, "What changed, measured step by step", step 3).
    let context = span.context();
    let exported = context.span();
    exported.update_name(name.to_owned());
    for (key, value) in attributes {
        exported.set_attribute(opentelemetry::KeyValue::new(*key, value.to_string()));
    }
}

/// The current span's trace id, when it is part of an exported trace.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    let context = tracing::Span::current().context();
    let span = context.span();
    let id = span.span_context().trace_id();
    (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_string())
}
