//! The sandbox ident: bearer-JWT `/api/v1/kyc_applications` (list, create, read, update) and
//! `/api/v1/users/:id/kyc_applications`. A status change sends ident's webhook, signed `X-Request-Signature:
//! t=<unix>,s=<hex HMAC-SHA256("<t>.<body>")>`; `GET/PUT /_sandbox/webhooks` sets where it goes.

pub mod population;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::faults::FaultInjector;
use super::support::{admin_body_limit, hex, serve, Counters, Counts};
use super::webhooks::{self, WebhookEvent, WebhookSender};
use crate::settings::SandboxSettings;
use secrecy::{ExposeSecret, SecretString};

use crate::support::random_token;
use wire::{CreateWire, KycApplicationWire, MessageWire, UpdateWire};

const ISSUER: &str = "https://ident.provide.services";
const COUNTERS: [&str; 7] = ["list", "create", "get", "put", "sandbox_status", "user_list", "unauthorized"];

/// ident gives a webhook receiver 5 s (ident's webhook documentation).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
struct Prvd {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    application_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    permissions: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// `application:<uuid>` or `user:<uuid>`.
    sub: String,
    exp: i64,
    iat: i64,
    prvd: Prvd,
}

enum Caller {
    Application,
    User(String),
}

struct SandboxState {
    records: RwLock<Vec<KycApplicationWire>>,
    key: SecretString,
    counters: Counters,
    webhook_secret: SecretString,
    webhooks: WebhookSender,
}

/// A running sandbox ident.
#[derive(Clone)]
pub struct IdentSandbox {
    base_url: String,
    state: Arc<SandboxState>,
    faults: Arc<FaultInjector>,
}

impl IdentSandbox {
    /// The faults injected into this sandbox, and its request count.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    pub async fn start(settings: &SandboxSettings, users: &[String]) -> std::io::Result<Self> {
        let webhooks = WebhookSender::new("ident", WEBHOOK_TIMEOUT, settings.webhooks.clone());
        let state = Arc::new(SandboxState {
            records: RwLock::new(population::generate(users, settings.seed)),
            key: SecretString::from(random_token()),
            counters: Counters::new(&COUNTERS),
            webhook_secret: SecretString::from(random_token()),
            webhooks: webhooks.clone(),
        });
        let router = Router::new()
            .route("/api/v1/kyc_applications", get(list).post(create))
            .route("/api/v1/kyc_applications/{id}", get(read).put(update))
            .route("/api/v1/users/{id}/kyc_applications", get(user_list))
            .with_state(state.clone());
        let admin = Router::new()
            .route("/_sandbox/applications/{id}/status", post(sandbox_status).layer(admin_body_limit()))
            .with_state(state.clone())
            .merge(webhooks::admin(webhooks));
        let faults = FaultInjector::new(settings.faults_for("ident"), settings.seed ^ 0xfa17);
        Ok(IdentSandbox { base_url: serve("ident", settings, router, admin, faults.clone()).await?, state, faults })
    }

    /// The API root, `http://127.0.0.1:PORT/api/v1`.
    pub fn base_url(&self) -> String {
        format!("{}/api/v1", self.base_url)
    }

    fn mint(&self, sub: String, prvd: Prvd) -> SecretString {
        let now = crate::support::unix_seconds();
        let claims = Claims { iss: ISSUER.into(), sub, exp: now + 365 * 24 * 3600, iat: now, prvd };
        let key = EncodingKey::from_secret(self.state.key.expose_secret().as_bytes());
        SecretString::from(
            // The real ident signs with RS256; the sandbox is both issuer and verifier, so HS256 with a secret of its
            // own (the gateway treats the token as opaque either way).
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("plain claims sign"),
        )
    }

    /// An application-scoped token for the gateway's application.
    pub fn application_token(&self) -> SecretString {
        let app = population::GATEWAY_APPLICATION;
        self.mint(
            format!("application:{app}"),
            Prvd { application_id: Some(app.into()), user_id: None, permissions: 7 },
        )
    }

    /// A user-scoped token (may read that user's applications; may not update any).
    pub fn user_token(&self, user_id: &str) -> SecretString {
        self.mint(
            format!("user:{user_id}"),
            Prvd { application_id: None, user_id: Some(user_id.into()), permissions: 1 },
        )
    }

    pub fn records(&self) -> Vec<KycApplicationWire> {
        self.state.records.read().expect("records lock").clone()
    }

    pub fn counts(&self) -> Counts {
        self.state.counters.snapshot()
    }

    /// The secret this sandbox signs its webhooks with (new at every start).
    pub fn webhook_secret(&self) -> SecretString {
        self.state.webhook_secret.clone()
    }

    pub fn webhooks(&self) -> &WebhookSender {
        &self.state.webhooks
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(MessageWire { message: text.into() })).into_response()
}

fn caller(s: &SandboxState, headers: &HeaderMap) -> Result<Caller, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // ident splits on a lowercase `bearer `; accept either case, as the gateway's notes ask.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.validate_aud = false;
    let key = DecodingKey::from_secret(s.key.expose_secret().as_bytes());
    let claims = token.and_then(|t| jsonwebtoken::decode::<Claims>(&t, &key, &validation).ok()).map(|d| d.claims);
    match claims {
        Some(c) if c.sub.starts_with("application:") => Ok(Caller::Application),
        Some(c) => match c.sub.strip_prefix("user:") {
            Some(user) => Ok(Caller::User(user.to_owned())),
            None => Err(unauthorized(s)),
        },
        None => Err(unauthorized(s)),
    }
}

fn unauthorized(s: &SandboxState) -> Response {
    s.counters.bump("unauthorized");
    message(StatusCode::UNAUTHORIZED, "unauthorized")
}

fn visible(caller: &Caller, record: &KycApplicationWire) -> bool {
    match caller {
        // One organization: an application token sees every record, a user token only that user's.
        Caller::Application => true,
        Caller::User(user) => record.user_id.as_deref() == Some(user.as_str()),
    }
}

/// Records without `provider_representation`: only a single read re-reads the provider.
fn summary(record: &KycApplicationWire) -> KycApplicationWire {
    KycApplicationWire { provider_representation: None, ..record.clone() }
}

fn newest_first(records: &mut [KycApplicationWire]) {
    let at = |r: &KycApplicationWire| {
        OffsetDateTime::parse(&r.created_at, &Rfc3339).map(|t| t.unix_timestamp()).unwrap_or(0)
    };
    records.sort_by_key(|r| std::cmp::Reverse(at(r)));
}

async fn list(
    State(s): State<Arc<SandboxState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.counters.bump("list");
    let caller = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1);
    let rpp: usize = q.get("rpp").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(25).min(100);
    let mut records: Vec<KycApplicationWire> = s
        .records
        .read()
        .expect("records lock")
        .iter()
        .filter(|r| visible(&caller, r))
        .filter(|r| q.get("status").is_none_or(|status| &r.status == status))
        .map(summary)
        .collect();
    newest_first(&mut records);
    let total = records.len();
    let page_items: Vec<_> = records.into_iter().skip((page - 1) * rpp).take(rpp).collect();
    ([("x-total-results-count", total.to_string())], Json(page_items)).into_response()
}

async fn user_list(State(s): State<Arc<SandboxState>>, headers: HeaderMap, Path(user): Path<String>) -> Response {
    s.counters.bump("user_list");
    let caller = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Caller::User(own) = &caller {
        if own != &user {
            return message(StatusCode::FORBIDDEN, "forbidden");
        }
    }
    let mut records: Vec<KycApplicationWire> = s
        .records
        .read()
        .expect("records lock")
        .iter()
        .filter(|r| r.user_id.as_deref() == Some(user.as_str()))
        .map(summary)
        .collect();
    newest_first(&mut records);
    Json(records).into_response()
}

async fn read(State(s): State<Arc<SandboxState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    s.counters.bump("get");
    let caller = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let records = s.records.read().expect("records lock");
    match records.iter().find(|r| r.id == id && visible(&caller, r)) {
        Some(record) => Json(record).into_response(),
        None => message(StatusCode::NOT_FOUND, "kyc application not found"),
    }
}

fn uuid_from(token: &str) -> String {
    format!("{}-{}-4{}-a{}-{}", &token[0..8], &token[8..12], &token[13..16], &token[17..20], &token[20..32])
}

async fn create(State(s): State<Arc<SandboxState>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    s.counters.bump("create");
    let caller = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(input) = serde_json::from_slice::<CreateWire>(&body) else {
        return message(StatusCode::BAD_REQUEST, "invalid kyc application");
    };
    let kind = input.kind.unwrap_or_else(|| "kyc".into());
    if kind != "kyc" && kind != "kyb" {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "type must be kyc or kyb");
    }
    let provider = input.provider.unwrap_or_else(|| "vouched".into());
    if provider != "vouched" && provider != "identitymind" {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "unsupported kyc provider");
    }
    let user_id = match (&caller, input.user_id) {
        (Caller::User(own), None) => own.clone(),
        (Caller::User(own), Some(other)) if &other != own => return message(StatusCode::FORBIDDEN, "forbidden"),
        (_, Some(user)) => user,
        (Caller::Application, None) => return message(StatusCode::BAD_REQUEST, "user_id is required"),
    };
    let record = KycApplicationWire {
        id: uuid_from(&random_token()),
        created_at: OffsetDateTime::now_utc().format(&Rfc3339).expect("RFC 3339 formats"),
        errors: Vec::new(),
        application_id: Some(population::GATEWAY_APPLICATION.into()),
        user_id: Some(user_id),
        provider,
        identifier: None,
        kind,
        status: "pending".into(),
        name: input.name,
        description: input.description,
        params: input.params,
        provider_representation: None,
    };
    s.records.write().expect("records lock").push(record.clone());
    (StatusCode::CREATED, Json(record)).into_response()
}

async fn update(
    State(s): State<Arc<SandboxState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    s.counters.bump("put");
    match caller(&s, &headers) {
        Ok(Caller::Application) => {}
        Ok(Caller::User(_)) => return message(StatusCode::FORBIDDEN, "an application token is required"),
        Err(r) => return r,
    }
    change_status(&s, &id, &body)
}

/// `POST /_sandbox/applications/:id/status` `{"status": ...}`: the `PUT` without a token, for scripts.
async fn sandbox_status(
    State(s): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    s.counters.bump("sandbox_status");
    match body {
        Ok(body) => change_status(&s, &id, &body),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            message(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large")
        }
        Err(rejection) => message(rejection.status(), &rejection.body_text()),
    }
}

/// The status change of `PUT` and of the sandbox route, then the webhook: 202 with the record.
fn change_status(s: &SandboxState, id: &str, body: &[u8]) -> Response {
    let status = serde_json::from_slice::<UpdateWire>(body).ok().and_then(|u| u.status);
    let Some(status) = status else {
        return message(StatusCode::BAD_REQUEST, "kyc application update must include status");
    };
    if !population::STATUSES.contains(&status.as_str()) {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "invalid status");
    }
    // Like the real service, any status is accepted here; the gateway enforces the transition table.
    let record = {
        let mut records = s.records.write().expect("records lock");
        let Some(record) = records.iter_mut().find(|r| r.id == id) else {
            return message(StatusCode::NOT_FOUND, "kyc application not found");
        };
        record.status = status;
        record.clone()
    };
    // The body is the record exactly as `GET /api/v1/kyc_applications/:id` answers it.
    let body = serde_json::to_vec(&record).expect("plain data serialises");
    let secret = s.webhook_secret.clone();
    s.webhooks.send(WebhookEvent::new(body, move |body| {
        vec![(
            "X-Request-Signature",
            webhook_signature(secret.expose_secret().as_bytes(), crate::support::unix_seconds(), body),
        )]
    }));
    (StatusCode::ACCEPTED, Json(record)).into_response()
}

/// ident's `X-Request-Signature` for an attempt at unix second `t`: `t=<t>,s=<hex HMAC-SHA256(secret, "<t>.<body>")>`
/// (ident's webhook documentation).
pub fn webhook_signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(format!("{t}.").as_bytes());
    context.update(body);
    format!("t={t},s={}", hex(context.sign().as_ref()))
}

/// Starts this provider for the registry (`registry.rs`).
pub fn start<'a>(settings: &'a SandboxSettings, users: &'a [String]) -> crate::registry::Started<'a> {
    crate::registry::started(IdentSandbox::start(settings, users))
}

impl crate::Sandbox {
    /// The sandbox Ident.
    pub fn ident(&self) -> &IdentSandbox {
        self.get()
    }
}

impl crate::SandboxProvider for IdentSandbox {
    fn name(&self) -> &'static str {
        "ident"
    }

    fn base_url(&self) -> String {
        Self::base_url(self).to_owned()
    }

    fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    fn webhooks(&self) -> &WebhookSender {
        &self.state.webhooks
    }

    fn environment(&self) -> Vec<crate::Variable> {
        use crate::Variable;
        vec![
            Variable::new("KYC_GATEWAY_IDENT_BASE_URL", self.base_url()),
            Variable::new("KYC_GATEWAY_IDENT_TOKEN", self.application_token().expose_secret()),
            Variable::append("KYC_GATEWAY_IDENT_WEBHOOK_SECRETS", self.webhook_secret().expose_secret(), ","),
        ]
    }

    fn users(&self) -> Vec<String> {
        population::SEED_USERS.iter().map(|u| u.to_string()).collect()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::population::{JOHN_SMITH, TIM_EVANS};
    use super::*;
    use crate::webhooks::receiver::{hmac_hex, quick_settings, settle, Receiver};

    async fn start() -> (IdentSandbox, Receiver) {
        let users: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
        let receiver = Receiver::start(1).await;
        let sandbox = IdentSandbox::start(&quick_settings(), &users).await.expect("sandbox");
        sandbox.webhooks().set_targets(vec![format!("{}/webhooks/ident", receiver.url())]);
        (sandbox, receiver)
    }

    /// Checks `X-Request-Signature` with an HMAC computed here; answers its `t`.
    fn verify(sandbox: &IdentSandbox, hook: &crate::webhooks::receiver::Received) -> i64 {
        let header = hook.header("x-request-signature");
        let (t, s) = header.split_once(",s=").expect("t=...,s=...");
        let t = t.strip_prefix("t=").expect("t=");
        let mut message = format!("{t}.").into_bytes();
        message.extend_from_slice(&hook.body);
        assert_eq!(s, hmac_hex(ring::hmac::HMAC_SHA256, sandbox.webhook_secret().expose_secret(), &message));
        let t: i64 = t.parse().expect("unix seconds");
        assert!((crate::support::unix_seconds() - t).abs() < 60);
        t
    }

    #[tokio::test]
    async fn a_put_sends_the_application_as_get_shows_it_signed_with_the_attempts_timestamp() {
        let (sandbox, receiver) = start().await;
        let http = reqwest::Client::new();
        let url = format!("{}/kyc_applications/{JOHN_SMITH}", sandbox.base_url());
        let token = sandbox.application_token();
        let put = http.put(&url).bearer_auth(token.expose_secret()).json(&json!({ "status": "accepted" })).send().await;
        assert_eq!(put.expect("answer").status(), StatusCode::ACCEPTED);
        settle(sandbox.webhooks()).await;

        // The first attempt was answered 500, the second delivered; each carries its own valid signature.
        let received = receiver.received();
        assert_eq!(received.len(), 2);
        assert_eq!(received[0].body, received[1].body);
        for hook in &received {
            assert_eq!(hook.path, "/webhooks/ident");
            verify(&sandbox, hook);
        }
        let shown = http.get(&url).bearer_auth(token.expose_secret()).send().await.expect("answer");
        let shown = shown.bytes().await.expect("body");
        assert_eq!(received[1].body, shown, "the webhook body is the application as GET answers it");
        assert_eq!(serde_json::from_slice::<Value>(&shown).expect("json")["status"], "accepted");
        let counts = sandbox.webhooks().counts();
        assert_eq!((counts.delivered, counts.failed_attempts), (1, 1));
    }

    #[tokio::test]
    async fn the_sandbox_route_changes_a_status_without_a_token_and_checks_it_like_put() {
        let (sandbox, receiver) = start().await;
        let http = reqwest::Client::new();
        let url =
            |id: &str| format!("{}/_sandbox/applications/{id}/status", sandbox.base_url().trim_end_matches("/api/v1"));
        let answer = http.post(url(TIM_EVANS)).json(&json!({ "status": "submitted" })).send().await.expect("answer");
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        let record: Value = answer.json().await.expect("json");
        assert_eq!(record["status"], "submitted");
        settle(sandbox.webhooks()).await;
        let hook = receiver.received().pop().expect("a webhook");
        verify(&sandbox, &hook);
        assert_eq!(hook.json()["id"], TIM_EVANS);
        assert_eq!(sandbox.records().iter().find(|r| r.id == TIM_EVANS).map(|r| r.status.as_str()), Some("submitted"));

        for (id, body, status) in [
            (TIM_EVANS, json!({}), StatusCode::BAD_REQUEST),
            (TIM_EVANS, json!({ "status": "approved" }), StatusCode::UNPROCESSABLE_ENTITY),
            ("no-such-application", json!({ "status": "accepted" }), StatusCode::NOT_FOUND),
        ] {
            let answer = http.post(url(id)).json(&body).send().await.expect("answer");
            assert_eq!(answer.status(), status, "{body}");
            let error: Value = answer.json().await.expect("a JSON error");
            assert!(error["message"].is_string(), "{error}");
        }
        assert_eq!(sandbox.counts().get("sandbox_status"), 4);
        assert_eq!(sandbox.webhooks().counts().sent, 1);
    }
}
