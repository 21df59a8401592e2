//! Logs (`tracing` to stderr: JSON lines in production, text in a terminal), traces (`otel.rs`, over OTLP/HTTP when
//! configured) and metrics (`metrics.rs`). Spans carry names, route templates, counts and statuses: never personal data
//! or secrets (a user id, a token, a document, variables). See docs/operations.md, "Observability".

pub mod metrics;
pub mod otel;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, with the request's id and trace id (for a log pipeline).
    Json,
    /// Readable text (for a terminal).
    Pretty,
}

/// The OTLP traces endpoint the standard variables name, if any (`…_TRACES_ENDPOINT` as it is; `…_ENDPOINT` is a
/// base URL under which traces go to `/v1/traces`).
pub fn otlp_endpoint() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}/v1/traces", base.trim_end_matches('/'))))
}

/// What must be flushed before the process exits.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is left (blocking: run it off the async workers, before the runtime ends).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the global subscriber: logs, and traces to `otlp` when given. Call once, inside the tokio runtime.
pub fn init(format: LogFormat, otlp: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            // Every span from the request's down: its `request_id` and `trace_id` are on every line, whatever span
            // (a loader batch, a provider call) the line comes from.
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter())
            .boxed(),
    };
    let provider = otlp.map(otel::provider).transpose()?;
    // The gateway's own spans at info and above; the HTTP stacks (the exporter's too) stay out.
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer().with_tracer(otel::tracer(p)).with_filter(EnvFilter::new("off,kyc_gateway=info"))
    });
    tracing_subscriber::registry().with(logs).with(traces).try_init()?;
    Ok(Telemetry { provider })
}
