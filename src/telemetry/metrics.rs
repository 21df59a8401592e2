//! Prometheus metrics, rendered at `/metrics`. One recorder per process (the `metrics` facade is global), shared by
//! every app a test process builds; fixed latency buckets. Operation names are callers' words, so only the first
//! [`MAX_OPERATION_NAMES`] get a label of their own and the rest are `other`: label values stay bounded.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests by route, method and status; their latency.
pub const HTTP_REQUESTS: &str = "kyc_gateway_http_requests_total";
pub const HTTP_DURATION: &str = "kyc_gateway_http_request_duration_seconds";
/// Requests being answered now (the autoscaler's signal).
pub const HTTP_IN_FLIGHT: &str = "kyc_gateway_http_requests_in_flight";
/// GraphQL operations by name, type and outcome; their latency.
pub const OPERATIONS: &str = "kyc_gateway_graphql_operations_total";
pub const OPERATION_DURATION: &str = "kyc_gateway_graphql_operation_duration_seconds";
/// Provider calls by provider, route and outcome; their latency.
pub const PROVIDER_CALLS: &str = "kyc_gateway_provider_requests_total";
pub const PROVIDER_DURATION: &str = "kyc_gateway_provider_request_duration_seconds";
/// Whether a provider's circuit breaker is open (1) or not (0).
pub const BREAKER_OPEN: &str = "kyc_gateway_provider_breaker_open";
/// Cache lookups by kind and result; evictions by kind; entries and estimated bytes.
pub const CACHE_LOOKUPS: &str = "kyc_gateway_cache_lookups_total";
pub const CACHE_EVICTIONS: &str = "kyc_gateway_cache_evictions_total";
pub const CACHE_ENTRIES: &str = "kyc_gateway_cache_entries";
pub const CACHE_BYTES: &str = "kyc_gateway_cache_weighted_bytes";
/// WebSocket connections open, and subscriptions running.
pub const WS_CONNECTIONS: &str = "kyc_gateway_websocket_connections";
pub const SUBSCRIPTIONS: &str = "kyc_gateway_subscriptions";
/// Webhook deliveries by provider and result (accepted, duplicate, ignored, refused...), and applied events.
pub const WEBHOOKS: &str = "kyc_gateway_webhook_deliveries_total";
pub const WEBHOOK_EVENTS: &str = "kyc_gateway_webhook_events_total";
/// Audit records by result, and how long a strict request waited for its record.
pub const AUDIT_RECORDS: &str = "kyc_gateway_audit_records_total";
pub const AUDIT_WAIT: &str = "kyc_gateway_audit_commit_wait_seconds";
/// Checkpoints the signer refused because the records no longer follow its last one.
pub const AUDIT_CHECKPOINTS_REFUSED: &str = "kyc_gateway_audit_checkpoints_refused_total";

/// Distinct operation names with a label of their own.
pub const MAX_OPERATION_NAMES: usize = 200;

const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The process's recorder, installed on first use. Building an app calls this, so nothing it records is lost to
/// the `metrics` facade's no-op default.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for name in [HTTP_DURATION, OPERATION_DURATION, PROVIDER_DURATION, AUDIT_WAIT] {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.into()), &LATENCY_BUCKETS)
                .expect("buckets are not empty");
        }
        builder.install_recorder().expect("the only metrics recorder of the process")
    })
}

/// Drains the histograms' samples into their buckets every few seconds (a render does it too; between scrapes,
/// samples would pile up). Runs until aborted: an app's background task.
pub fn spawn_upkeep() -> tokio::task::AbortHandle {
    let handle = handle().clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            handle.run_upkeep();
        }
    })
    .abort_handle()
}

/// The label of an operation name: itself (bounded and cleaned) while few names have been seen, else `other`.
pub fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name else { return "anonymous".into() };
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
    if clean.is_empty() {
        return "anonymous".into();
    }
    let mut seen = SEEN.get_or_init(Mutex::default).lock().expect("operation names lock");
    if seen.contains(&clean) {
        return clean;
    }
    if seen.len() < MAX_OPERATION_NAMES {
        seen.insert(clean.clone());
        return clean;
    }
    "other".into()
}

/// One more of `name` (a gauge) while it lives: a request in flight, an open WebSocket, a running subscription.
/// Counted out however it ends, a dropped future included.
pub struct Gauged(&'static str);

impl Gauged {
    pub fn new(name: &'static str) -> Self {
        metrics::gauge!(name).increment(1.0);
        Gauged(name)
    }
}

impl Drop for Gauged {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

tokio::task_local! {
    /// The cache lookups of the loader batch running on this task (see [`batch`]).
    static BATCH: Tally;
}

/// A loader batch's cache hits and misses, for its span.
#[derive(Default)]
struct Tally {
    hits: std::cell::Cell<u64>,
    misses: std::cell::Cell<u64>,
}

thread_local! {
    /// Each (kind, provider)'s lookup counters (miss, hit), resolved once per thread: labels built and found in the
    /// registry per lookup cost more than the increment. Few pairs exist, so a scan by address finds them.
    static LOOKUP_COUNTERS: std::cell::RefCell<Vec<(&'static str, &'static str, [metrics::Counter; 2])>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn same(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b)
}

/// Counts one lookup of `kind` at `provider` with this result, through this thread's table.
fn count_lookup(kind: &'static str, provider: &'static str, hit: bool) {
    LOOKUP_COUNTERS.with_borrow_mut(|table| {
        if let Some((_, _, counters)) = table.iter().find(|(k, p, _)| same(k, kind) && same(p, provider)) {
            return counters[usize::from(hit)].increment(1);
        }
        // The recorder first: a handle taken before it is installed would count nowhere, for good.
        handle();
        let counter = |result: &'static str| {
            metrics::counter!(CACHE_LOOKUPS, "kind" => kind, "provider" => provider, "result" => result)
        };
        let counters = [counter("miss"), counter("hit")];
        counters[usize::from(hit)].increment(1);
        table.push((kind, provider, counters));
    })
}

/// Counts a lookup of a cache of `kind` (for the batch running on this task too, if any).
pub fn cache_lookup(kind: &'static str, provider: &'static str, hit: bool) {
    count_lookup(kind, provider, hit);
    let _ = BATCH.try_with(|tally| {
        let counter = if hit { &tally.hits } else { &tally.misses };
        counter.set(counter.get() + 1);
    });
}

/// An entry of `kind` weighing `weight` was stored (moka calls the weigher once per insert).
pub fn cache_stored(kind: &'static str, provider: &'static str, weight: u32) {
    metrics::gauge!(CACHE_ENTRIES, "kind" => kind, "provider" => provider).increment(1.0);
    metrics::gauge!(CACHE_BYTES, "kind" => kind, "provider" => provider).increment(f64::from(weight));
}

/// An entry of `kind` left the cache; anything but a replacement counts as an eviction, by cause.
pub fn cache_removed(kind: &'static str, provider: &'static str, weight: u32, cause: moka::notification::RemovalCause) {
    use moka::notification::RemovalCause;
    metrics::gauge!(CACHE_ENTRIES, "kind" => kind, "provider" => provider).decrement(1.0);
    metrics::gauge!(CACHE_BYTES, "kind" => kind, "provider" => provider).decrement(f64::from(weight));
    let cause = match cause {
        RemovalCause::Replaced => return,
        RemovalCause::Expired => "expired",
        RemovalCause::Size => "size",
        RemovalCause::Explicit => "invalidated",
    };
    metrics::counter!(CACHE_EVICTIONS, "kind" => kind, "provider" => provider, "cause" => cause).increment(1);
}

/// Runs one loader batch in a `loader.batch` span (loader, keys, cache hits and misses: counts only).
pub async fn batch<T>(loader: &'static str, keys: usize, work: impl std::future::Future<Output = T>) -> T {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "loader.batch",
        otel.name = %format_args!("loader {loader}"),
        loader,
        keys,
        cache.hits = tracing::field::Empty,
        cache.misses = tracing::field::Empty,
    );
    BATCH
        .scope(Tally::default(), async {
            let answer = work.instrument(span.clone()).await;
            let _ = BATCH.try_with(|tally| {
                span.record("cache.hits", tally.hits.get());
                span.record("cache.misses", tally.misses.get());
            });
            answer
        })
        .await
}
