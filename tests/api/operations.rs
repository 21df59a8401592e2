//! Running the gateway: `/metrics` after a workload, its own metrics listener, `/readyz`, request ids, and a
//! SIGTERM that lets a slow query finish, closes subscribers properly and exits 0.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn, spawn_with, user_token, Process, ALL_ITEMS, SEED};
use crate::ws::{Ws, TRANSPORT_WS};

/// The sum of the samples of `name` whose labels include every one of `labels` (Prometheus text format).
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let matches = metric == name
                && labels.iter().all(|(k, v)| label_text.split(',').any(|l| l == format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

pub(crate) async fn scrape(http: &reqwest::Client, url: String) -> String {
    let response = http.get(url).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().expect("text").starts_with("text/plain; version=0.0.4"));
    response.text().await.expect("text")
}

#[tokio::test]
async fn metrics_scraped_after_a_workload_show_its_requests_operations_provider_calls_cache_audit_and_connections() {
    let app = spawn().await;
    let before = scrape(&app.http, app.url("/metrics")).await;
    // The recorder is the process's, shared with the tests running beside this one: operation counts are exact (a
    // name only this test uses), the others grow by at least this workload.
    let token = user_token(SEED, &format!("uid:read contact:read {ALL_ITEMS}"));
    for _ in 0..3 {
        let answer = app
            .query(&token, "query MetricsWorkload { me { id emails { address } verificationCases { provider } } }")
            .await;
        assert!(answer.body["errors"].is_null(), "{:?}", answer.body);
    }
    let refused = app.http.post(app.url("/graphql")).json(&json!({ "query": "{ me { id } }" })).send().await;
    assert_eq!(refused.expect("answer").status(), StatusCode::UNAUTHORIZED);
    let bad_webhook = app.http.post(app.url("/webhooks/sila")).body("{}").send().await.expect("answer");
    assert_eq!(bad_webhook.status(), StatusCode::UNAUTHORIZED);
    let mut ws = Ws::ready(&app, &token).await;
    ws.subscribe("1", "subscription { verificationChanged { provider } }").await;
    eventually("the subscription runs", || async { app.events.receiver_count() >= 1 }).await;

    let after = scrape(&app.http, app.url("/metrics")).await;
    let grew = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels) - sample(&before, name, labels);
    let ok = [("operation", "MetricsWorkload"), ("type", "query"), ("outcome", "ok")];
    assert_eq!(grew("kyc_gateway_graphql_operations_total", &ok), 3.0, "{after}");
    assert!(grew("kyc_gateway_graphql_operation_duration_seconds_count", &[("type", "query")]) >= 3.0);
    let answered = [("route", "/graphql"), ("method", "POST"), ("status", "200")];
    assert!(grew("kyc_gateway_http_requests_total", &answered) >= 3.0, "{after}");
    assert!(grew("kyc_gateway_http_requests_total", &[("route", "/graphql"), ("status", "401")]) >= 1.0);
    assert!(grew("kyc_gateway_http_request_duration_seconds_count", &[("route", "/graphql")]) >= 4.0);
    // The first query asked the providers, the next two were answered from the cache.
    let fractal = [("provider", "fractal"), ("outcome", "2xx")];
    assert!(grew("kyc_gateway_provider_requests_total", &fractal) >= 1.0, "{after}");
    assert!(grew("kyc_gateway_provider_request_duration_seconds_count", &[("provider", "fractal")]) >= 1.0);
    assert!(grew("kyc_gateway_cache_lookups_total", &[("result", "miss")]) >= 1.0, "{after}");
    assert!(grew("kyc_gateway_cache_lookups_total", &[("result", "hit")]) >= 2.0, "{after}");
    assert!(sample(&after, "kyc_gateway_cache_entries", &[]) >= 1.0, "{after}");
    assert!(sample(&after, "kyc_gateway_cache_weighted_bytes", &[]) > 0.0, "{after}");
    assert!(after.contains("kyc_gateway_provider_breaker_open{provider=\"fractal\"} 0"), "{after}");
    // Each query read personal data: a record each, committed before the answer (strict mode).
    assert!(grew("kyc_gateway_audit_records_total", &[("result", "committed")]) >= 3.0, "{after}");
    assert!(grew("kyc_gateway_audit_commit_wait_seconds_count", &[]) >= 3.0, "{after}");
    let refused_webhook = [("provider", "sila"), ("result", "bad_signature")];
    assert!(grew("kyc_gateway_webhook_deliveries_total", &refused_webhook) >= 1.0, "{after}");
    // Open now: this test's socket and subscription at least.
    assert!(sample(&after, "kyc_gateway_websocket_connections", &[]) >= 1.0, "{after}");
    assert!(sample(&after, "kyc_gateway_subscriptions", &[]) >= 1.0, "{after}");
    // The scrape itself is a request in flight.
    assert!(sample(&after, "kyc_gateway_http_requests_in_flight", &[]) >= 1.0, "{after}");
    drop(ws);
}

#[tokio::test]
async fn production_mode_serves_metrics_on_a_loopback_listener_of_their_own_by_default_never_beside_the_api() {
    let sandbox = spawn().await;
    let mut config = kyc_gateway::Config { listen: "127.0.0.1:0".parse().expect("addr"), ..Default::default() };
    crate::helpers::point_at(&mut config, sandbox.sandbox(), &["SUMSUB"]);
    config.tokens.secret_issuer = Some(crate::helpers::secret_issuer());
    crate::helpers::production_state(&mut config);
    // The default: `KYC_GATEWAY_METRICS_LISTEN` unset.
    config.operations.metrics_listen = None;
    let app = match kyc_gateway::App::build(config).await {
        Ok(app) => app,
        Err(error) => {
            // Something else holds the default port here: the gateway still tried its own listener, not the API's.
            let error = error.to_string();
            assert!(error.contains("127.0.0.1:9090") && error.contains("KYC_GATEWAY_METRICS_LISTEN"), "{error}");
            return;
        }
    };
    let own: std::net::SocketAddr = "127.0.0.1:9090".parse().expect("addr");
    assert_eq!(app.metrics_addr(), Some(own), "its own listener, on loopback");
    let api = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let beside = http.get(format!("http://{api}/metrics")).send().await.expect("answer");
    assert_eq!(beside.status(), StatusCode::NOT_FOUND, "production mode does not expose /metrics with the API");
    let text = scrape(&http, format!("http://{own}/metrics")).await;
    assert!(text.contains("# TYPE kyc_gateway_http_requests_total counter"), "{text}");
    let _ = stop.send(());
    let _ = served.await;
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_when_one_is_configured_and_not_beside_the_api() {
    let app = spawn_with(|c| c.operations.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let beside = app.http.get(app.url("/metrics")).send().await.expect("answer");
    assert_eq!(beside.status(), StatusCode::NOT_FOUND, "not exposed with the API");
    let own = app.metrics.expect("a metrics listener");
    let text = scrape(&app.http, format!("http://{own}/metrics")).await;
    assert!(text.contains("# TYPE kyc_gateway_http_requests_total counter"), "{text}");
    let api = app.http.get(format!("http://{own}/graphql")).send().await.expect("answer");
    assert_eq!(api.status(), StatusCode::NOT_FOUND, "the metrics listener serves nothing of the API");
}

#[tokio::test]
async fn readiness_names_the_mode_and_the_failed_check_while_liveness_stays_up() {
    let app = spawn().await;
    let readyz = app.http.get(app.url("/readyz")).send().await.expect("answer");
    assert_eq!(readyz.status(), StatusCode::OK);
    let body: Value = readyz.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({
            "status": "ready",
            "mode": "sandbox",
            "checks": { "store": "ok", "migrations": "ok", "token_keys": "ok", "lifecycle": "ok" }
        })
    );

    app.readiness.drain();
    let readyz = app.http.get(app.url("/readyz")).send().await.expect("answer");
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    assert_eq!(readyz.json::<Value>().await.expect("JSON")["checks"]["lifecycle"], "shutting_down");

    let app = spawn().await;
    app.store.close().await;
    let readyz = app.http.get(app.url("/readyz")).send().await.expect("answer");
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE, "the database is gone");
    let body: Value = readyz.json().await.expect("JSON");
    assert_eq!(body["checks"]["store"], "unreachable", "{body}");
    let healthz = app.http.get(app.url("/healthz")).send().await.expect("answer");
    assert_eq!(healthz.status(), StatusCode::OK, "alive: a restart would not bring the database back");
}

#[tokio::test]
async fn a_flood_of_readiness_probes_asks_the_store_at_most_once_a_second() {
    let app = spawn().await;
    let probe = || async { app.http.get(app.url("/readyz")).send().await.expect("answer").status() };
    let statuses = futures_util::future::join_all((0..50).map(|_| probe())).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    // The database goes away: the probes that follow within the second are answered from the last check, without a
    // query; after it, a probe asks again and finds it gone.
    app.store.close().await;
    assert_eq!(probe().await, StatusCode::OK, "answered from the check of under a second ago");
    eventually("a probe finds the database gone", || async { probe().await == StatusCode::SERVICE_UNAVAILABLE }).await;
}

#[tokio::test]
async fn a_request_id_from_the_mesh_is_kept_and_anything_else_is_replaced_by_a_new_one() {
    let app = spawn().await;
    let id = |response: reqwest::Response| response.headers()["x-request-id"].to_str().expect("text").to_owned();
    let given = app.http.get(app.url("/healthz")).header("x-request-id", "3f2a-9c.e_1").send().await.expect("answer");
    assert_eq!(id(given), "3f2a-9c.e_1");
    for bad in ["has space", "<script>", &"x".repeat(65)] {
        let replaced = app.http.get(app.url("/healthz")).header("x-request-id", bad).send().await.expect("answer");
        let new = id(replaced);
        assert_ne!(new, bad);
        assert_eq!(new.len(), 32);
    }
}

#[tokio::test]
async fn operation_names_that_name_nothing_in_the_document_cannot_use_up_the_metric_labels() {
    // A process of its own: the labels seen are the process's.
    let gateway = Process::start(4096, &[]);
    let http = reqwest::Client::new();
    let token = user_token(SEED, "uid:read");
    let send = |name: String| {
        let query = json!({ "query": "query Real { me { id } }", "operationName": name });
        http.post(gateway.url("/graphql")).bearer_auth(&token).json(&query).send()
    };
    for n in 0..250 {
        let refused: Value = send(format!("Junk{n}")).await.expect("answer").json().await.expect("JSON");
        assert!(refused["errors"].is_array(), "{refused}");
    }
    let real: Value = send("Real".into()).await.expect("answer").json().await.expect("JSON");
    assert_eq!(real["data"]["me"]["id"], SEED, "{real}");
    let metrics = http.get(gateway.url("/metrics")).send().await.expect("answer").text().await.expect("text");
    assert!(metrics.contains(r#"operation="Real""#), "the real operation lost its label");
    assert!(!metrics.contains("Junk"), "a name of no operation became a label");
}

#[tokio::test]
async fn on_sigterm_readiness_fails_a_slow_query_completes_subscribers_get_1001_and_the_process_exits_0() {
    let gateway = Process::start(
        4096,
        &[
            ("KYC_GATEWAY_SHUTDOWN_DRAIN_SECS", "1"),
            ("KYC_GATEWAY_SHUTDOWN_DEADLINE_SECS", "20"),
            // Every provider answer takes 3 s: a query is still running when the listener closes, 1 s after the signal.
            ("KYC_GATEWAY_SANDBOX_FAULTS", r#"{"latency_ms":3000}"#),
        ],
    );
    let http = reqwest::Client::new();
    let token = user_token(SEED, &format!("uid:read {ALL_ITEMS}"));
    let mut ws = Ws::connect_to(gateway.addr, TRANSPORT_WS).await;
    assert_eq!(ws.init(&token).await.expect("acknowledged")["type"], "connection_ack");
    ws.subscribe("1", "subscription { verificationChanged { provider } }").await;

    let slow = tokio::spawn({
        let (http, url, token) = (http.clone(), gateway.url("/graphql"), token.clone());
        async move {
            let query = json!({ "query": "{ me { id verificationCases { provider } } }" });
            http.post(url).bearer_auth(token).json(&query).send().await
        }
    });
    // The query is in flight (besides the scrape that asks).
    eventually("the slow query is in flight", || async {
        let text = http.get(gateway.url("/metrics")).send().await.expect("answer").text().await.expect("text");
        sample(&text, "kyc_gateway_http_requests_in_flight", &[]) >= 2.0
    })
    .await;

    let pid = gateway.child.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(killed.success());
    // Out of rotation at once, while still serving.
    eventually("readiness fails", || async {
        let answer = http.get(gateway.url("/readyz")).send().await;
        answer.is_ok_and(|a| a.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;

    // After the drain delay, new connections are refused while the query is still running.
    eventually("the listener closes", || async { http.get(gateway.url("/healthz")).send().await.is_err() }).await;
    assert!(!slow.is_finished(), "the query was still running when the listener closed");

    let answer = slow.await.expect("the task").expect("the slow query is answered, not cut");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["data"]["me"]["id"], SEED, "{body}");
    assert!(body["errors"].is_null(), "{body}");

    let closed = ws.closed().await;
    assert_eq!(closed.code, 1001, "going away: {closed:?}");

    let mut gateway = gateway;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = gateway.child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the process exits");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", gateway.logs());
}

/// Sends `signal` (`INT`, `TERM`) to the gateway process.
fn send_signal(gateway: &Process, signal: &str) {
    let pid = gateway.child.id().to_string();
    let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill runs");
    assert!(sent.success());
}

/// The process's exit status, once it has exited (polling), within `within`.
async fn exited(gateway: &mut Process, within: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = gateway.child.try_wait().expect("wait") {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "the process is still running: {}", gateway.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ctrl_c_stops_a_sandbox_gateway_at_once_whatever_its_drain_delay() {
    // A minute of drain delay: an exit well within it did not wait it out.
    let mut gateway = Process::start(4096, &[("KYC_GATEWAY_SHUTDOWN_DRAIN_SECS", "60")]);
    send_signal(&gateway, "INT");
    let status = exited(&mut gateway, Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{}", gateway.logs());
}

#[tokio::test]
async fn a_second_signal_stops_the_gateway_at_once_during_its_drain() {
    let mut gateway = Process::start(4096, &[("KYC_GATEWAY_SHUTDOWN_DRAIN_SECS", "60")]);
    let http = reqwest::Client::new();
    // SIGTERM drains, in sandbox mode too: not ready, still serving for the minute.
    send_signal(&gateway, "TERM");
    eventually("readiness fails", || async {
        let answer = http.get(gateway.url("/readyz")).send().await;
        answer.is_ok_and(|a| a.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    send_signal(&gateway, "INT");
    let status = exited(&mut gateway, Duration::from_secs(20)).await;
    assert!(!status.success(), "stopped short of a clean shutdown: {}", gateway.logs());
}
