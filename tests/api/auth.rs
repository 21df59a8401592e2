//! Authentication: 401 paths, and dev tokens only in sandbox mode.

use kyc_gateway::auth::token::{mint_dev_token, mint_hs256, Subject, DEFAULT_DEV_SECRET};
use kyc_gateway::config::SecretIssuer;
use kyc_gateway::secret::Secret;
use kyc_gateway::{App, Config};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{production_state, spawn, spawn_with, user_token, TestApp, ISSUER, ISSUER_SECRET, SEED};

pub async fn post_raw(
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

pub fn assert_unauthenticated(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &serde_json::Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers["www-authenticate"].to_str().expect("ascii").starts_with("Bearer"));
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    assert!(body.get("data").is_none(), "a 401 carries no data");
}

pub const QUERY: &str = r#"{"query":"{ me { id } }"}"#;

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

/// A production-mode app whose "real" Fractal is a sandbox Fractal started beside it, and whose token issuer shares
/// [`ISSUER_SECRET`] with it; `adjust` changes the configuration further.
async fn production_app(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let sandbox = spawn().await;
    spawn_with(|c| {
        crate::helpers::point_at(c, sandbox.sandbox(), &["FRACTAL"]);
        c.tokens.secret_issuer = Some(crate::helpers::secret_issuer());
        production_state(c);
        adjust(c);
    })
    .await
}

#[tokio::test]
async fn a_gateway_with_a_real_provider_refuses_dev_tokens_and_accepts_its_issuer() {
    let app = production_app(|_| {}).await;
    assert!(app.sandbox.is_none(), "no sandbox in production mode");
    let (status, headers, body) =
        post_raw(&app, Some(&format!("Bearer {}", user_token(SEED, "uid:read"))), QUERY).await;
    assert_unauthenticated(status, &headers, &body);
    let token = mint_hs256(&Secret::new(ISSUER_SECRET), ISSUER, &Subject::User("user-1".into()), "uid:read", 60);
    let answer = app.query(&token, "{ me { id } }").await.ok();
    assert_eq!(answer.data("me.id"), "user-1");
}

#[tokio::test]
async fn a_gateway_with_a_real_provider_refuses_to_start_on_the_default_dev_secret() {
    let mut config = Config::default();
    config.vars.set("KYC_GATEWAY_FRACTAL_AUTH_URL", "http://127.0.0.1:9");
    config.vars.set("KYC_GATEWAY_FRACTAL_RESOURCE_URL", "http://127.0.0.1:9");
    config.vars.set("KYC_GATEWAY_FRACTAL_CLIENT_ID", "id");
    config.vars.set("KYC_GATEWAY_FRACTAL_CLIENT_SECRET", "secret");
    let error = App::build(config.clone()).await.err().expect("no issuer: refused").to_string();
    assert!(error.contains("refusing to start"), "{error}");
    config.tokens.secret_issuer =
        Some(SecretIssuer { issuer: "https://id".into(), secret: Secret::new(DEFAULT_DEV_SECRET) });
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

#[tokio::test]
async fn a_gateway_with_a_real_provider_refuses_to_start_with_a_one_byte_shared_secret() {
    let sandbox = spawn().await;
    let mut config = Config { listen: "127.0.0.1:0".parse().expect("an address"), ..Config::default() };
    crate::helpers::point_at(&mut config, sandbox.sandbox(), &["FRACTAL"]);
    config.tokens.secret_issuer = Some(SecretIssuer { issuer: ISSUER.into(), secret: Secret::new("x") });
    production_state(&mut config);
    let error = App::build(config).await.err().expect("a 1-byte secret: refused").to_string();
    assert!(error.contains("refusing to start") && error.contains("at least 32"), "{error}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KYC_GATEWAY_FRACTAL_CLIENT_ID", "id")
        .env("KYC_GATEWAY_FRACTAL_CLIENT_SECRET", "secret")
        .env("KYC_GATEWAY_JWT_ISSUER", "https://id.example.com/")
        .env("KYC_GATEWAY_JWT_SECRET", "x")
        .env("KYC_GATEWAY_DATABASE_URL", "sqlite::memory:")
        .env("KYC_GATEWAY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success(), "the binary refuses too");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("KYC_GATEWAY_JWT_SECRET holds 1 bytes"), "{stderr}");
}

/// A token of the shared-secret test issuer with exactly these claims.
fn issuer_token_with(claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(ISSUER_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).expect("signs")
}

#[tokio::test]
async fn with_an_audience_configured_a_token_without_aud_or_with_aud_null_or_another_is_401() {
    let app = production_app(|c| c.tokens.audiences = vec!["kyc-gateway".into()]).await;
    let base =
        json!({ "iss": ISSUER, "sub": "user-1", "exp": kyc_gateway::clock::unix_seconds() + 60, "scope": "uid:read" });
    let (status, headers, body) = post_raw(&app, Some(&format!("Bearer {}", issuer_token_with(&base))), QUERY).await;
    assert_unauthenticated(status, &headers, &body);
    for aud in [json!(null), json!("another-api"), json!(["another-api"]), json!([])] {
        let mut claims = base.clone();
        claims["aud"] = aud.clone();
        let (status, headers, body) =
            post_raw(&app, Some(&format!("Bearer {}", issuer_token_with(&claims))), QUERY).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "aud {aud}");
        assert_unauthenticated(status, &headers, &body);
    }
    for aud in [json!("kyc-gateway"), json!(["another-api", "kyc-gateway"])] {
        let mut claims = base.clone();
        claims["aud"] = aud.clone();
        let answer = app.query(&issuer_token_with(&claims), "{ me { id } }").await.ok();
        assert_eq!(answer.data("me.id"), "user-1", "aud {aud}");
    }
}

#[tokio::test]
async fn a_request_with_two_authorization_headers_is_400_whatever_they_hold() {
    let app = spawn().await;
    let seed = format!("Bearer {}", user_token(SEED, "uid:read"));
    let other = format!("Bearer {}", user_token("someone-else", "uid:read"));
    for (first, second) in [(&seed, &other), (&seed, &seed), (&seed, &"Basic dXNlcjpwYXNz".to_owned())] {
        let post = app
            .http
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .header("authorization", first)
            .header("authorization", second)
            .body(QUERY);
        let get = app
            .http
            .get(app.url("/graphql?query=%7B%20me%20%7B%20id%20%7D%20%7D"))
            .header("authorization", first)
            .header("authorization", second);
        for request in [post, get] {
            let response = request.send().await.expect("answer");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let body: Value = response.json().await.expect("a JSON body");
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{body}");
            assert!(body.get("data").is_none(), "{body}");
        }
    }
    let one = app.query(&user_token(SEED, "uid:read"), "{ me { id } }").await.ok();
    assert_eq!(one.data("me.id"), SEED, "one header is served as before");
}

#[tokio::test]
async fn a_websocket_upgrade_with_two_authorization_headers_is_400() {
    let app = spawn().await;
    let mut request = format!("ws://{}/graphql/ws", app.addr).into_client_request().expect("a ws URL");
    request.headers_mut().insert("Sec-WebSocket-Protocol", crate::ws::TRANSPORT_WS.parse().expect("a header"));
    for sub in [SEED, "someone-else"] {
        let value = format!("Bearer {}", user_token(sub, "uid:read")).parse().expect("a header");
        request.headers_mut().append("Authorization", value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST.as_u16())
        }
        other => panic!("expected 400, got {:?}", other.map(|(_, response)| response.status())),
    }
}
