//! Traces over OTLP/HTTP from the real binary to a real receiver, W3C `traceparent` in and out, JSON logs with the
//! request's ids, and nothing personal in any of it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};

use crate::helpers::{client_token, eventually, mentions, user_token, without_timestamps, Process, ALL_ITEMS, SEED};
use crate::logs::{personal_values, USERS};

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) on port 0: every export's raw body.
async fn otlp_receiver() -> (std::net::SocketAddr, Arc<Mutex<Vec<Bytes>>>) {
    let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().expect("bodies").push(body);
                // An empty ExportTraceServiceResponse.
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, bodies)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The spans of every export so far.
fn spans(bodies: &Mutex<Vec<Bytes>>) -> Vec<Span> {
    let bodies = bodies.lock().expect("bodies");
    let mut out = Vec::new();
    for body in bodies.iter() {
        let export = ExportTraceServiceRequest::decode(body.as_ref()).expect("an OTLP protobuf export");
        for resource in export.resource_spans {
            for scope in resource.scope_spans {
                out.extend(scope.spans);
            }
        }
    }
    out
}

/// A span's attribute as text.
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|a| a.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// The sandbox providers' origins (`http://127.0.0.1:PORT`), from the start-up log line naming their APIs.
fn sandbox_urls(log: &str) -> HashMap<String, String> {
    let line = log.lines().find(|l| l.contains("sandbox providers (admin endpoints")).expect("the sandbox line");
    let mut urls = HashMap::new();
    for provider in ["fractal", "sumsub", "sila", "ident"] {
        let start = line.find(&format!("{provider} http://")).expect("the provider's URL") + provider.len() + 1;
        let url: String = line[start..].chars().take_while(|c| !matches!(c, ',' | ';' | ' ' | '"')).collect();
        let origin = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        urls.insert(provider.to_lowercase(), origin);
    }
    urls
}

#[tokio::test]
async fn a_query_over_two_providers_is_traced_to_an_otlp_receiver_with_the_callers_trace_and_nothing_personal() {
    let (receiver, bodies) = otlp_receiver().await;
    let endpoint = format!("http://{receiver}");
    let users = USERS.to_string();
    let gateway = Process::start(
        4096,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "kyc-gateway-under-test"),
            ("KYC_GATEWAY_LOG_FORMAT", "json"),
            ("KYC_GATEWAY_SANDBOX_USERS", users.as_str()),
            ("RUST_LOG", "info"),
        ],
    );
    let http = reqwest::Client::new();

    // The caller's trace: the gateway's request span is its child, sampled.
    let (trace_id, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let details = "details { fullName dateOfBirth identificationDocumentNumber residentialAddress }";
    let token = user_token(
        SEED,
        &format!("uid:read contact:read {ALL_ITEMS} verification.plus.details:read verification.basic.details:read"),
    );
    let me =
        format!("query MyKyc {{ me {{ id emails {{ address }} verificationCases {{ provider level {details} }} }} }}");
    let answer: Value = http
        .post(gateway.url("/graphql"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({ "query": me }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let cases = answer["data"]["me"]["verificationCases"].as_array().expect("cases").clone();
    let providers: BTreeSet<&str> = cases.iter().filter_map(|c| c["provider"].as_str()).collect();
    assert!(providers.len() >= 2, "the query touched two providers or more: {answer}");

    // A staff query about other users, its ids in variables (they must not be recorded either).
    let others: Vec<String> = kyc_gateway::sandbox::fractal::Population::generate(
        USERS,
        kyc_gateway::sandbox::SandboxSettings::default().seed,
    )
    .users
    .iter()
    .skip(1)
    .take(2)
    .map(|u| u.uid.clone())
    .collect();
    let staff =
        client_token(&format!("client.users:read uid:read contact:read {ALL_ITEMS} verification.plus.details:read"));
    let staff_query = format!(
        "query Staff($ids: [ID!]!) {{ users(ids: $ids) {{ id emails {{ address }} verificationCases {{ {details} }} }} }}"
    );
    let staff_answer: Value = http
        .post(gateway.url("/graphql"))
        .bearer_auth(&staff)
        .json(&json!({ "query": staff_query, "variables": { "ids": others } }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert!(staff_answer["data"]["users"][0]["emails"].is_array(), "{staff_answer}");

    // A webhook with a bad signature: a warning logged inside a request.
    let refused = http
        .post(gateway.url("/webhooks/sumsub"))
        .header("x-payload-digest", "00")
        .header("x-payload-digest-alg", "HMAC_SHA256_HEX")
        .body(r#"{"type":"applicantReviewed"}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);

    let trace = hex(&u128::from_str_radix(trace_id, 16).expect("hex").to_be_bytes());
    let in_trace =
        |spans: &[Span]| -> Vec<Span> { spans.iter().filter(|s| hex(&s.trace_id) == trace).cloned().collect() };
    eventually("the request's spans, its provider calls included, are exported", || {
        let spans = in_trace(&spans(&bodies));
        async move {
            spans.iter().any(|s| s.name == "POST /graphql")
                && spans.iter().filter(|s| attribute(s, "provider").is_some() && s.name.contains(' ')).count() >= 2
        }
    })
    .await;
    let spans_of_trace = in_trace(&spans(&bodies));
    let by_id: HashMap<String, &Span> = spans_of_trace.iter().map(|s| (hex(&s.span_id), s)).collect();
    let parent_of = |span: &Span| by_id.get(&hex(&span.parent_span_id)).copied();

    // The request: a server span whose parent is the caller's.
    let request = spans_of_trace.iter().find(|s| s.name == "POST /graphql").expect("the request span");
    assert_eq!(hex(&request.parent_span_id), caller_span, "the caller's span is the parent");
    assert_eq!(attribute(request, "http.route").as_deref(), Some("/graphql"));
    assert_eq!(attribute(request, "http.response.status_code").as_deref(), Some("200"));
    // The operation, under the request: its name and type, never its document or variables.
    let names: Vec<&str> = spans_of_trace.iter().map(|s| s.name.as_str()).collect();
    let operation = spans_of_trace
        .iter()
        .find(|s| s.name == "query MyKyc")
        .unwrap_or_else(|| panic!("the operation span: {names:?}"));
    assert_eq!(parent_of(operation).map(|p| p.name.as_str()), Some("POST /graphql"));
    assert_eq!(attribute(operation, "graphql.operation.type").as_deref(), Some("query"));
    // Loader batches under the operation, provider calls under the batches: at least two providers.
    let batches: Vec<&Span> = spans_of_trace.iter().filter(|s| s.name.starts_with("loader ")).collect();
    assert!(!batches.is_empty(), "loader batches: {spans_of_trace:#?}");
    for batch in &batches {
        assert_eq!(parent_of(batch).map(|p| p.name.as_str()), Some("query MyKyc"), "{batch:#?}");
        assert!(attribute(batch, "keys").is_some() && attribute(batch, "cache.misses").is_some(), "{batch:#?}");
    }
    // Provider calls: named after their provider and route template, never a path with ids.
    let calls: Vec<&Span> = spans_of_trace
        .iter()
        .filter(|s| attribute(s, "http.route").is_some() && attribute(s, "provider").is_some())
        .collect();
    let called: BTreeSet<String> = calls.iter().filter_map(|s| attribute(s, "provider")).collect();
    assert!(called.len() >= 2, "provider calls of two providers: {called:?}");
    for call in &calls {
        let mut ancestor = parent_of(call);
        while let Some(span) = ancestor.filter(|s| !s.name.starts_with("loader ")) {
            ancestor = parent_of(span);
        }
        assert!(ancestor.is_some(), "a provider call under a loader batch: {call:#?}");
        assert!(attribute(call, "http.response.status_code").is_some(), "{call:#?}");
        assert!(attribute(call, "retries").is_some(), "{call:#?}");
    }

    // The sandbox providers saw the trace: each call's `traceparent` names the trace and the call's own span.
    let urls = sandbox_urls(&gateway.logs());
    let call_ids: BTreeSet<String> = calls.iter().map(|s| hex(&s.span_id)).collect();
    let mut propagated = 0;
    for url in urls.values() {
        let status: Value =
            http.get(format!("{url}/_sandbox/faults")).send().await.expect("admin").json().await.expect("JSON");
        for traceparent in status["traceparents"].as_array().expect("traceparents") {
            let parts: Vec<&str> = traceparent.as_str().expect("text").split('-').collect();
            if parts[1] == trace_id {
                assert!(call_ids.contains(parts[2]), "the parent is a provider call span: {traceparent}");
                propagated += 1;
            }
        }
    }
    assert!(propagated >= 2, "the providers saw the propagated traceparent");

    // Nothing personal, no token, no id of a user anywhere in what was exported (names, attributes, events).
    let mut queried = others.clone();
    queried.push(SEED.to_owned());
    let personal = personal_values(&queried);
    assert!(personal.len() > 20);
    let exported: String =
        bodies.lock().expect("bodies").iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    for value in personal.iter().chain(&queried).map(String::as_str).chain([token.as_str(), staff.as_str()]) {
        assert!(!mentions(&exported, value), "the export holds {value:?}");
    }
    assert!(!exported.contains("identificationDocumentNumber"), "the document is not exported");

    // JSON logs: the refused webhook's warning carries the request's id and trace id.
    let logs = gateway.logs();
    let warning: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "webhook refused")
        .expect("the warning, as a JSON line");
    let root = &warning["spans"][0];
    assert_eq!(root["name"], "http.request", "{warning}");
    assert_eq!(root["request_id"].as_str().map(str::len), Some(32), "{warning}");
    assert_eq!(root["trace_id"].as_str().map(str::len), Some(32), "{warning}");
    let logs = without_timestamps(&logs);
    for value in personal.iter().map(String::as_str).chain([token.as_str(), staff.as_str()]) {
        assert!(!mentions(&logs, value), "the log holds {value:?}");
    }
}
