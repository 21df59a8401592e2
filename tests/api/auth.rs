//! Authentication: 401 paths, and dev tokens only in sandbox mode.

use kyc_gateway::auth::token::{mint_dev_token, mint_hs256, Subject, DEFAULT_DEV_SECRET};
use kyc_gateway::config::{FractalSettings, JwtSettings};
use kyc_gateway::secret::Secret;
use kyc_gateway::{App, Config};
use reqwest::StatusCode;

use crate::helpers::{production_state, spawn, spawn_with, user_token, TestApp, SEED};

async fn post_raw(
    app: &TestApp,
    authorization: Option<&str>,
    body: &str,
) -> (StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    let mut request =
        app.http.post(app.url("/graphql")).header("content-type", "application/json").body(body.to_owned());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("answer");
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.expect("json body"))
}

fn assert_unauthenticated(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &serde_json::Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers["www-authenticate"].to_str().expect("ascii").starts_with("Bearer"));
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    assert!(body.get("data").is_none(), "a 401 carries no data");
}

const QUERY: &str = r#"{"query":"{ me { id } }"}"#;

#[tokio::test]
async fn a_request_without_a_token_is_401_with_a_bearer_challenge() {
    let app = spawn().await;
    let (status, headers, body) = post_raw(&app, None, QUERY).await;
    assert_unauthenticated(status, &headers, &body);
    assert_eq!(headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn a_basic_authorization_header_is_401() {
    let app = spawn().await;
    let (status, headers, body) = post_raw(&app, Some("Basic dXNlcjpwYXNz"), QUERY).await;
    assert_unauthenticated(status, &headers, &body);
}

#[tokio::test]
async fn an_expired_token_is_401_invalid_token() {
    let app = spawn().await;
    let expired = mint_dev_token(&Secret::new(DEFAULT_DEV_SECRET), &Subject::User(SEED.into()), "uid:read", -120);
    let (status, headers, body) = post_raw(&app, Some(&format!("Bearer {expired}")), QUERY).await;
    assert_unauthenticated(status, &headers, &body);
    assert_eq!(headers["www-authenticate"], "Bearer error=\"invalid_token\"");
    assert_eq!(body["errors"][0]["message"], "token expired");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401() {
    let app = spawn().await;
    let forged = mint_dev_token(&Secret::new("not-the-secret"), &Subject::User(SEED.into()), "uid:read", 60);
    let (status, headers, body) = post_raw(&app, Some(&format!("Bearer {forged}")), QUERY).await;
    assert_unauthenticated(status, &headers, &body);
}

#[tokio::test]
async fn a_token_of_another_issuer_or_garbage_is_401() {
    let app = spawn().await;
    let other =
        mint_hs256(&Secret::new(DEFAULT_DEV_SECRET), "someone-else", &Subject::User(SEED.into()), "uid:read", 60);
    for token in [other.as_str(), "garbage", "a.b.c"] {
        let (status, headers, body) = post_raw(&app, Some(&format!("Bearer {token}")), QUERY).await;
        assert_unauthenticated(status, &headers, &body);
    }
}

#[tokio::test]
async fn malformed_json_is_400_with_a_message() {
    let app = spawn().await;
    let token = format!("Bearer {}", user_token(SEED, "uid:read"));
    for body in [r#"{"query": "{ me { id } }""#, "not json", r#"{"variables": {}}"#] {
        let (status, _, answer) = post_raw(&app, Some(&token), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST");
        assert!(answer["errors"][0]["message"].as_str().expect("message").contains("not a GraphQL request"));
    }
}

/// A production-mode app whose "real" Fractal is a sandbox Fractal started beside it.
async fn production_app() -> (TestApp, String) {
    let sandbox = spawn().await;
    let fractal = sandbox.sandbox().fractal.clone();
    let secret = "production-issuer-secret".to_owned();
    let app = spawn_with(|c| {
        c.fractal = Some(FractalSettings {
            frontend_url: fractal.base_url().into(),
            auth_url: fractal.base_url().into(),
            resource_url: fractal.base_url().into(),
            client_id: fractal.client_id().into(),
            client_secret: fractal.client_secret(),
        });
        c.jwt = Some(JwtSettings {
            secret: Secret::new(secret.clone()),
            issuer: "https://id.example.com/".into(),
            audience: None,
        });
        production_state(c);
    })
    .await;
    (app, secret)
}

#[tokio::test]
async fn a_gateway_with_a_real_provider_refuses_dev_tokens_and_accepts_its_issuer() {
    let (app, secret) = production_app().await;
    assert!(app.sandbox.is_none(), "no sandbox in production mode");
    let (status, headers, body) =
        post_raw(&app, Some(&format!("Bearer {}", user_token(SEED, "uid:read"))), QUERY).await;
    assert_unauthenticated(status, &headers, &body);
    let token =
        mint_hs256(&Secret::new(secret), "https://id.example.com/", &Subject::User("user-1".into()), "uid:read", 60);
    let answer = app.query(&token, "{ me { id } }").await.ok();
    assert_eq!(answer.data("me.id"), "user-1");
}

#[tokio::test]
async fn a_gateway_with_a_real_provider_refuses_to_start_on_the_default_dev_secret() {
    let mut config = Config {
        fractal: Some(FractalSettings {
            frontend_url: "http://127.0.0.1:9".into(),
            auth_url: "http://127.0.0.1:9".into(),
            resource_url: "http://127.0.0.1:9".into(),
            client_id: "id".into(),
            client_secret: Secret::new("secret"),
        }),
        ..Config::default()
    };
    let error = App::build(config.clone()).await.err().expect("no issuer: refused").to_string();
    assert!(error.contains("refusing to start"), "{error}");
    config.jwt =
        Some(JwtSettings { secret: Secret::new(DEFAULT_DEV_SECRET), issuer: "https://id".into(), audience: None });
    let error = App::build(config).await.err().expect("default secret: refused").to_string();
    assert!(error.contains("dev secret"), "{error}");
}

#[tokio::test]
async fn the_binary_refuses_to_start_with_a_real_provider_and_the_default_dev_secret() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KYC_GATEWAY_FRACTAL_CLIENT_ID", "id")
        .env("KYC_GATEWAY_FRACTAL_CLIENT_SECRET", "secret")
        .env("KYC_GATEWAY_JWT_ISSUER", "https://id.example.com/")
        .env("KYC_GATEWAY_JWT_SECRET", DEFAULT_DEV_SECRET)
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(!stderr.contains("secret\""), "the secret is not echoed: {stderr}");
}
