//! Resilience against the sandboxes' injected faults: retries of reads, never of writes, `Retry-After`, the
//! circuit breaker, and partial results with a code per failure.

use std::time::{Duration, Instant};

use kyc_gateway::domain::application::KycApplicationStatus;
use kyc_gateway::providers::ident::{IdentClient, Settings as IdentSettings};
use kyc_gateway::providers::UpstreamPolicy;
use kyc_gateway::sandbox::ident::population::JOHN_SMITH;
use kyc_gateway::sandbox::Faults;
use serde_json::{json, Value};

use crate::helpers::{client_token, eventually, providers, spawn, spawn_with, ALL_ITEMS, SEED};

fn cases_query(user: &str) -> String {
    format!(r#"{{ user(id: "{user}") {{ verificationCases {{ provider }} }} }}"#)
}

#[tokio::test]
async fn a_read_answered_503_is_retried_and_succeeds() {
    let app = spawn_with(|c| c.cache.enabled = false).await;
    let sumsub = &app.sandbox().sumsub();
    sumsub.faults().set(Faults { fail_next: 1, ..Faults::default() });
    let answer = app.query(&client_token(&format!("client.users:read {ALL_ITEMS}")), &cases_query(SEED)).await.ok();
    assert_eq!(providers(answer.data("user.verificationCases")), ["FRACTAL", "SUMSUB", "SILA", "VERIFF"]);
    assert_eq!(sumsub.faults().requests(), 2, "the 503, then the retry");
    assert_eq!(sumsub.counts().get("applicant_by_external_id"), 1, "one reached the handler");
}

async fn ident_client(app: &crate::helpers::TestApp) -> IdentClient {
    let ident = &app.sandbox().ident();
    IdentClient::new(&IdentSettings {
        base_url: ident.base_url(),
        token: ident.application_token().into(),
        types: kyc_gateway::domain::levels::LevelMap::default(),
        policy: UpstreamPolicy::default(),
        webhook_secrets: Vec::new(),
        webhook_tolerance: Duration::from_secs(300),
        bulk_from: kyc_gateway::providers::ident::DEFAULT_BULK_FROM,
    })
}

#[tokio::test]
async fn a_put_is_never_retried_and_a_get_is() {
    let app = spawn().await;
    let ident = &app.sandbox().ident();
    let client = ident_client(&app).await;
    ident.faults().set(Faults { fail_next: 1, ..Faults::default() });
    let error = client.update_status(JOHN_SMITH, KycApplicationStatus::Accepted).await.expect_err("the PUT failed");
    assert!(matches!(error, kyc_gateway::providers::ProviderError::Unavailable { status: 503 }), "{error:?}");
    assert_eq!(ident.faults().requests(), 1, "one PUT, no retry");
    assert_eq!(ident.counts().get("put"), 0);
    ident.faults().set(Faults { fail_next: 1, ..Faults::default() });
    let found = client.get(JOHN_SMITH).await.expect("retried").expect("found");
    assert_eq!(found.status, Some(KycApplicationStatus::Remediate), "the failed PUT changed nothing");
    assert_eq!(ident.faults().requests(), 3);
}

#[tokio::test]
async fn a_failed_status_update_answers_provider_unavailable_without_retrying_the_put() {
    let app = spawn().await;
    let ident = &app.sandbox().ident();
    let update = r#"mutation { updateKycApplicationStatus(id: "13bd0b24-f0d9-4caa-89ab-259c058877ce", status: ACCEPTED) { status } }"#;
    // The read before the PUT passes; the PUT itself meets the 503.
    let token = client_token("client.users:read kyc_application:write");
    let before = ident.faults().requests();
    ident.faults().set(Faults { fail_next: 1, only_method: Some("PUT".into()), ..Faults::default() });
    let answer = app.query(&token, update).await;
    assert_eq!(answer.codes(), ["PROVIDER_UNAVAILABLE"], "{:#}", answer.body);
    assert_eq!(ident.counts().get("put"), 0);
    assert_eq!(ident.faults().requests() - before, 2, "one GET, one PUT, no retry");
}

#[tokio::test]
async fn retry_after_is_honoured_before_the_retry() {
    let app = spawn_with(|c| c.cache.enabled = false).await;
    let sumsub = &app.sandbox().sumsub();
    sumsub.faults().set(Faults { rate_limit_next: 1, retry_after_secs: 1, ..Faults::default() });
    let started = Instant::now();
    let answer = app.query(&client_token(&format!("client.users:read {ALL_ITEMS}")), &cases_query(SEED)).await.ok();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After");
    assert_eq!(providers(answer.data("user.verificationCases")), ["FRACTAL", "SUMSUB", "SILA", "VERIFF"]);
    assert_eq!(sumsub.faults().requests(), 2);
}

#[tokio::test]
async fn the_breaker_opens_after_consecutive_failures_probes_and_closes() {
    let app = spawn_with(|c| {
        c.cache.enabled = false;
        c.vars.set("KYC_GATEWAY_SILA_RETRIES", "0");
        c.vars.set("KYC_GATEWAY_SILA_BREAKER_THRESHOLD", "3");
        // Long enough that the checks made while it is open never race its end.
        c.vars.set("KYC_GATEWAY_SILA_BREAKER_COOLDOWN_MS", "2000");
    })
    .await;
    let sila = &app.sandbox().sila();
    let token = client_token(&format!("client.users:read {ALL_ITEMS}"));
    // Healthy first, so the gateway holds a Sila token: the failures below are the data calls'.
    app.query(&token, &cases_query(SEED)).await.ok();
    sila.faults().set(Faults { error_rate: 1.0, ..Faults::default() });
    let sila_code = |answer: &crate::helpers::Gql| {
        answer.errors().iter().find(|e| e["extensions"]["provider"] == "SILA").map(|e| e["extensions"]["code"].clone())
    };
    for _ in 0..3 {
        let answer = app.query(&token, &cases_query(SEED)).await;
        assert_eq!(sila_code(&answer), Some(json!("PROVIDER_UNAVAILABLE")));
        assert_eq!(
            providers(answer.data("user.verificationCases")),
            ["FRACTAL", "SUMSUB", "VERIFF"],
            "the others still answer"
        );
    }
    let seen = sila.faults().requests();
    let open = app.query(&token, &cases_query(SEED)).await;
    assert_eq!(sila_code(&open), Some(json!("PROVIDER_CIRCUIT_OPEN")));
    assert_eq!(sila.faults().requests(), seen, "an open breaker sends nothing");
    // Until the cooldown passes every answer is CIRCUIT_OPEN and nothing is sent; then one probe goes out.
    eventually("the half-open probe went out", || async {
        let answer = app.query(&token, &cases_query(SEED)).await;
        match sila.faults().requests() - seen {
            0 => {
                assert_eq!(sila_code(&answer), Some(json!("PROVIDER_CIRCUIT_OPEN")));
                false
            }
            _ => {
                assert_eq!(sila_code(&answer), Some(json!("PROVIDER_UNAVAILABLE")), "the probe failed");
                true
            }
        }
    })
    .await;
    assert_eq!(sila.faults().requests(), seen + 1, "exactly one probe");
    assert_eq!(sila_code(&app.query(&token, &cases_query(SEED)).await), Some(json!("PROVIDER_CIRCUIT_OPEN")));
    sila.faults().set(Faults::default());
    eventually("a probe after the cooldown closed the breaker", || async {
        app.query(&token, &cases_query(SEED)).await.errors().is_empty()
    })
    .await;
    let healed = app.query(&token, &cases_query(SEED)).await.ok();
    assert_eq!(providers(healed.data("user.verificationCases")), ["FRACTAL", "SUMSUB", "SILA", "VERIFF"]);
}

#[tokio::test]
async fn a_slow_provider_times_out_alone() {
    let app = spawn_with(|c| {
        c.cache.enabled = false;
        c.vars.set("KYC_GATEWAY_SUMSUB_TIMEOUT_MS", "300");
        c.vars.set("KYC_GATEWAY_SUMSUB_RETRIES", "0");
    })
    .await;
    // Sumsub answers after a minute: an answer within half of that was bounded by the timeout, however loaded the
    // machine is.
    app.sandbox().sumsub().faults().set(Faults { latency_ms: 60_000, ..Faults::default() });
    let started = Instant::now();
    let answer = app.query(&client_token(&format!("client.users:read {ALL_ITEMS}")), &cases_query(SEED)).await;
    assert!(started.elapsed() < Duration::from_secs(30), "bounded by the Sumsub timeout, not its latency");
    assert_eq!(providers(answer.data("user.verificationCases")), ["FRACTAL", "SILA", "VERIFF"]);
    let error = answer.error_at("user.verificationCases").expect("the Sumsub error");
    assert_eq!(error["extensions"], json!({ "code": "PROVIDER_TIMEOUT", "provider": "SUMSUB" }));
}

#[tokio::test]
async fn the_admin_endpoint_sets_and_shows_faults() {
    let app = spawn().await;
    let url = format!("{}/_sandbox/faults", app.sandbox().sila().base_url());
    let set: Value = app
        .http
        .put(&url)
        .json(&json!({ "latency_ms": 5, "error_rate": 0.5 }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(set["faults"]["latency_ms"], 5);
    assert_eq!(app.sandbox().sila().faults().get().error_rate, 0.5);
    let refused = app.http.put(&url).json(&json!({ "latency": 5 })).send().await.expect("answer");
    assert!(refused.status().is_client_error(), "unknown fields are refused");
}

#[tokio::test]
async fn requests_queued_behind_a_failed_token_fetch_fail_with_it_instead_of_each_waiting_again() {
    let app = spawn_with(|c| {
        c.cache.enabled = false;
        c.vars.set("KYC_GATEWAY_SILA_TIMEOUT_MS", "300");
        c.vars.set("KYC_GATEWAY_SILA_DEADLINE_MS", "400");
        c.vars.set("KYC_GATEWAY_SILA_BREAKER_THRESHOLD", "1000");
    })
    .await;
    let sila = &app.sandbox().sila();
    sila.faults().set(Faults { timeout_rate: 1.0, ..Faults::default() });
    let token = client_token(&format!("client.users:read {ALL_ITEMS}"));
    let query = cases_query(SEED);
    let queries = (0..8).map(|_| app.query(&token, &query));
    for answer in futures_util::future::join_all(queries).await {
        let error = answer.error_at("user.verificationCases").expect("the Sila error");
        assert_eq!(error["extensions"], json!({ "code": "PROVIDER_TIMEOUT", "provider": "SILA" }));
        assert_eq!(providers(answer.data("user.verificationCases")), ["FRACTAL", "SUMSUB", "VERIFF"]);
    }
    assert_eq!(sila.faults().requests(), 1, "one token fetch hung; the others did not queue up their own");
}

#[tokio::test]
async fn an_aggregate_missing_a_provider_s_part_is_null_with_that_provider_s_error() {
    use crate::helpers::user_token;
    let app = spawn().await;
    // The seed person: Fractal approved basic+liveness, Sumsub rejected basic-kyc-level (basic+selfie+liveness).
    let token = user_token(SEED, "verification.basic:read verification.liveness:read kyc_application:read");
    let q = r#"{ me { kycState(level: "basic+liveness") } }"#;
    assert_eq!(app.query(&token, q).await.ok().data("me.kycState"), "APPROVED");
    app.cache.invalidate_all();
    app.sandbox().fractal().faults().set(Faults { error_rate: 1.0, ..Faults::default() });
    let without_fractal = app.query(&token, q).await;
    assert_eq!(without_fractal.data("me.kycState"), &Value::Null, "{:#}", without_fractal.body);
    let error = without_fractal.error_at("me.kycState").expect("Fractal's error at the field");
    assert_eq!(error["extensions"]["provider"], "FRACTAL", "{error:#}");
}

#[tokio::test]
async fn an_aggregate_already_decided_by_the_parts_that_arrived_is_answered() {
    use crate::helpers::user_token;
    let app = spawn().await;
    let token = user_token(SEED, "verification.basic:read verification.liveness:read kyc_application:read");
    // Fractal alone approved every item: Sumsub's failure cannot change that.
    app.sandbox().sumsub().faults().set(Faults { error_rate: 1.0, ..Faults::default() });
    let answer = app.query(&token, r#"{ me { kycState(level: "basic+liveness") } }"#).await;
    assert_eq!(answer.data("me.kycState"), "APPROVED", "{:#}", answer.body);
    assert_eq!(answer.error_at("me.kycState").expect("Sumsub's error")["extensions"]["provider"], "SUMSUB");
}

#[tokio::test]
async fn ident_answering_an_html_404_for_a_user_s_list_is_an_error_not_an_empty_list() {
    use crate::helpers::production_app;
    use axum::response::Html;
    let html = axum::Router::new()
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, Html("<html><body>Not Found</body></html>")) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let proxy = format!("http://{}/api/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, html).await });
    let sandbox_app = spawn().await;
    let user = "9a253758-197a-4308-8d2d-61cfe9317644";
    let app = production_app(&sandbox_app, &[user], |c| {
        c.vars.set("KYC_GATEWAY_IDENT_BASE_URL", proxy.clone());
    })
    .await;
    let q = format!(r#"{{ user(id: "{user}") {{ kycApplications {{ id }} }} }}"#);
    let answer =
        app.query(&crate::helpers::issuer_token("staff", "client.users:read kyc_application:read", true), &q).await;
    assert_eq!(answer.data("user.kycApplications"), &Value::Null, "{:#}", answer.body);
    assert_eq!(answer.codes(), ["PROVIDER_UNAVAILABLE"], "{:#}", answer.body);
}
