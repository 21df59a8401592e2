//! The sandbox providers behave like the real services: credentials, signatures, headers, errors, pagination.

use std::time::{SystemTime, UNIX_EPOCH};

use kyc_gateway::providers::sumsub::signature;
use kyc_gateway::sandbox::ident::population::{JANICE_WAY, SEED_USERS};
use kyc_gateway::sandbox::sumsub::population::RED_FINAL_APPLICANT;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::Expose as _;
use crate::helpers::{spawn, spawn_with, TestApp, SEED};

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// A Sumsub GET signed with `secret` at `ts`.
async fn sumsub_get(
    app: &TestApp,
    path: &str,
    token: &str,
    secret: &str,
    ts: i64,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let sandbox = &app.sandbox().sumsub();
    let sig = signature(secret.as_bytes(), &ts.to_string(), "GET", path, b"");
    let response = app
        .http
        .get(format!("{}{path}", sandbox.base_url()))
        .header("X-App-Token", token)
        .header("X-App-Access-Ts", ts.to_string())
        .header("X-App-Access-Sig", sig)
        .send()
        .await
        .expect("answer");
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.expect("json"))
}

#[tokio::test]
async fn sumsub_answers_signed_requests_by_id_external_id_status_and_required_docs() {
    let app = spawn().await;
    let s = &app.sandbox().sumsub();
    let (token, secret) = (s.app_token(), s.secret_key());
    let by_external = format!("/resources/applicants/-;externalUserId={SEED}/one");
    let (status, _, body) = sumsub_get(&app, &by_external, token.expose(), secret.expose(), now()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], RED_FINAL_APPLICANT);
    assert_eq!(body["review"]["reviewResult"]["reviewRejectType"], "FINAL");
    let by_id = format!("/resources/applicants/{RED_FINAL_APPLICANT}/one");
    let (_, _, same) = sumsub_get(&app, &by_id, token.expose(), secret.expose(), now()).await;
    assert_eq!(same, body);
    let (_, _, review) = sumsub_get(
        &app,
        &format!("/resources/applicants/{RED_FINAL_APPLICANT}/status"),
        token.expose(),
        secret.expose(),
        now(),
    )
    .await;
    assert_eq!(review["reviewStatus"], "completed");
    assert_eq!(review["reviewResult"]["clientComment"], " Suspected fraudulent account.");
    let (_, _, docs) = sumsub_get(
        &app,
        &format!("/resources/applicants/{RED_FINAL_APPLICANT}/requiredIdDocsStatus"),
        token.expose(),
        secret.expose(),
        now(),
    )
    .await;
    assert_eq!(docs["IDENTITY"]["reviewResult"]["reviewAnswer"], "RED");
    assert_eq!(docs["SELFIE"]["reviewResult"]["reviewAnswer"], "GREEN");
}

#[tokio::test]
async fn sumsub_refuses_a_wrong_token_an_old_timestamp_and_a_bad_signature_and_404s_the_unknown() {
    let app = spawn().await;
    let s = &app.sandbox().sumsub();
    let (token, secret) = (s.app_token(), s.secret_key());
    let path = format!("/resources/applicants/{RED_FINAL_APPLICANT}/one");
    for (token, secret, ts) in [
        ("sbx:wrong", secret.expose(), now()),
        (token.expose(), secret.expose(), now() - 120),
        (token.expose(), "not-the-secret", now()),
    ] {
        let (status, _, body) = sumsub_get(&app, &path, token, secret, ts).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["code"], 401);
        assert!(body["description"].is_string() && body["correlationId"].is_string());
    }
    // Signed for one path, sent to another: refused.
    let ts = now().to_string();
    let sig = signature(secret.expose().as_bytes(), &ts, "GET", &path, b"");
    let tampered = app
        .http
        .get(format!("{}/resources/applicants/{RED_FINAL_APPLICANT}/status", s.base_url()))
        .header("X-App-Token", token.expose())
        .header("X-App-Access-Ts", ts)
        .header("X-App-Access-Sig", sig)
        .send()
        .await
        .expect("answer");
    assert_eq!(tampered.status(), StatusCode::UNAUTHORIZED);
    let (status, _, body) =
        sumsub_get(&app, "/resources/applicants/000000000000000000000000/one", token.expose(), secret.expose(), now())
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 404);
    assert_eq!(s.counts().get("unauthorized"), 4);
}

#[tokio::test]
async fn sumsub_answers_429_past_its_rate_limit_with_retry_after() {
    let app = spawn_with(|c| c.sandbox.sumsub_get_limit = 3).await;
    let s = &app.sandbox().sumsub();
    let path = format!("/resources/applicants/{RED_FINAL_APPLICANT}/one");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, headers, _) =
            sumsub_get(&app, &path, s.app_token().expose(), s.secret_key().expose(), now()).await;
        statuses.push((status, headers.get("retry-after").is_some()));
    }
    assert_eq!(statuses[..3], [(StatusCode::OK, false); 3]);
    assert_eq!(statuses[3], (StatusCode::TOO_MANY_REQUESTS, true));
}

async fn sila_post(app: &TestApp, path: &str, auth: (&str, &str), header: Value) -> (StatusCode, Value) {
    let url = format!("{}{path}", app.sandbox().sila().base_url());
    let response = app
        .http
        .post(url)
        .header("authorization", format!("{} {}", auth.0, auth.1))
        .json(&json!({ "header": header }))
        .send()
        .await
        .expect("answer");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

fn basic(app: &TestApp) -> String {
    use base64::Engine;
    let s = &app.sandbox().sila();
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", s.client_id(), s.client_secret().expose()))
}

#[tokio::test]
async fn sila_issues_one_bearer_token_and_answers_verifications_with_reason_tags() {
    let app = spawn().await;
    let s = &app.sandbox().sila();
    let header = |user: Option<&str>| json!({ "created": now(), "app_handle": s.app_handle(), "user_handle": user, "version": "0.2" });
    let (status, first) = sila_post(&app, "/0.2/auth_token", ("Basic", &basic(&app)), header(None)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = sila_post(&app, "/0.2/auth_token", ("Basic", &basic(&app)), header(None)).await;
    assert_eq!(first["access_token"]["token"], second["access_token"]["token"], "the same token while hours are left");
    assert_eq!(first["access_token"]["expires_in"], 8 * 3600);
    let token = first["access_token"]["token"].as_str().expect("token").to_owned();
    let (status, list) = sila_post(&app, "/0.2/get_verifications", ("Bearer", &token), header(Some(SEED))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["verifications"][0]["verification_status"], "passed");
    let uuid = list["verifications"][0]["verification_uuid"].as_str().expect("uuid");
    let (_, one) =
        sila_post(&app, &format!("/0.2/get_verifications/{uuid}"), ("Bearer", &token), header(Some(SEED))).await;
    assert_eq!(one["reasons"]["for_kyc_response"][0], "KYC SSN Match");
    assert_eq!(one["status"], "SUCCESS");
}

#[tokio::test]
async fn sila_refuses_bad_credentials_stale_or_future_headers_and_unknown_handles() {
    let app = spawn().await;
    let s = &app.sandbox().sila();
    let header = |created: i64, version: &str| json!({ "created": created, "app_handle": s.app_handle(), "user_handle": SEED, "version": version });
    let (status, body) = sila_post(&app, "/0.2/auth_token", ("Basic", "d3Jvbmc6d3Jvbmc="), header(now(), "0.2")).await;
    assert_eq!((status, body["success"].clone()), (StatusCode::UNAUTHORIZED, json!(false)));
    let (_, token) = sila_post(&app, "/0.2/auth_token", ("Basic", &basic(&app)), header(now(), "0.2")).await;
    let token = token["access_token"]["token"].as_str().expect("token").to_owned();
    for (created, version) in [(now() + 120, "0.2"), (now() - 400, "0.2"), (now(), "1.0")] {
        let (status, body) =
            sila_post(&app, "/0.2/get_verifications", ("Bearer", &token), header(created, version)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{created} {version}: {body}");
        assert_eq!(body["status"], "FAILURE");
    }
    let (status, _) = sila_post(&app, "/0.2/get_verifications", ("Bearer", "nope"), header(now(), "0.2")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unknown = json!({ "created": now(), "app_handle": s.app_handle(), "user_handle": "nobody" });
    let (status, body) = sila_post(&app, "/0.2/get_verifications", ("Bearer", &token), unknown).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["success"], false);
}

async fn get_json(app: &TestApp, url: &str, token: &secrecy::SecretString) -> Value {
    app.http.get(url).bearer_auth(token.expose()).send().await.expect("answer").json().await.expect("json")
}

#[tokio::test]
async fn ident_pages_filters_and_scopes_applications_by_token() {
    let app = spawn().await;
    let ident = &app.sandbox().ident();
    let base = ident.base_url();
    let token = ident.application_token();
    let response = app
        .http
        .get(format!("{base}/kyc_applications?rpp=2&page=1"))
        .bearer_auth(token.expose())
        .send()
        .await
        .expect("answer");
    let total: usize = response.headers()["x-total-results-count"].to_str().expect("ascii").parse().expect("number");
    assert_eq!(total, ident.records().len());
    let page: Vec<Value> = response.json().await.expect("json");
    assert_eq!(page.len(), 2);
    assert!(page[0]["created_at"].as_str() >= page[1]["created_at"].as_str(), "newest first");
    let remediate = get_json(&app, &format!("{base}/kyc_applications?status=remediate&rpp=100"), &token).await;
    let remediate = remediate.as_array().expect("list");
    assert!(
        remediate.iter().all(|r| r["status"] == "remediate") && remediate.iter().any(|r| r["name"] == "John Smith")
    );
    let janice = get_json(&app, &format!("{base}/kyc_applications/{JANICE_WAY}"), &token).await;
    assert_eq!(janice["provider_representation"]["errors"].as_array().map(Vec::len), Some(5));
    let own = get_json(&app, &format!("{base}/kyc_applications"), &ident.user_token(SEED_USERS[1])).await;
    assert_eq!(own.as_array().map(Vec::len), Some(2), "John Smith and Truong Tri Tung share a user");
    let no_token = app.http.get(format!("{base}/kyc_applications")).send().await.expect("answer");
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ident_put_needs_a_status_and_an_application_token() {
    let app = spawn().await;
    let ident = &app.sandbox().ident();
    let url = format!("{}/kyc_applications/{JANICE_WAY}", ident.base_url());
    let missing = app
        .http
        .put(&url)
        .bearer_auth(ident.application_token().expose())
        .json(&json!({}))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["message"], "kyc application update must include status");
    let user = app
        .http
        .put(&url)
        .bearer_auth(ident.user_token(SEED_USERS[3]).expose())
        .json(&json!({ "status": "accepted" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(user.status(), StatusCode::FORBIDDEN);
    let ok = app
        .http
        .put(&url)
        .bearer_auth(ident.application_token().expose())
        .json(&json!({ "status": "review" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
}
