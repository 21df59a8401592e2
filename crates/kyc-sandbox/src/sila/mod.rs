//! The sandbox Sila: `POST /0.2/auth_token` (Basic client credentials -> a bearer token) and `/0.2/get_verifications`,
//! with Sila's `header` checks. `POST /_sandbox/verifications` changes a verification and sends Sila's `kyc` webhook,
//! signed `SILA-SIGNATURE` ([`webhook_signature`]); `GET/PUT /_sandbox/webhooks` sets where it goes.

pub mod population;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;

use super::faults::FaultInjector;
use super::support::{admin_body_limit, admin_json, random_uuid, same_secret, serve, Counters, Counts};
use super::webhooks::{self, WebhookEvent, WebhookSender};
use crate::settings::SandboxSettings;
use secrecy::{ExposeSecret, SecretString};

use crate::support::random_token;
use population::Entity;
use wire::{
    AccessToken, AuthTokenResponse, ChangeVerificationWire, Failure, HeaderOnly, KycEventDetails,
    VerificationsResponse, WebhookWire,
};

const COUNTERS: [&str; 6] =
    ["auth_token", "get_verifications", "get_verification", "sandbox_verification", "unauthorized", "refused"];

/// Sila documents no delivery timeout, only that receivers must answer fast (15 failed deliveries in a row disable a
/// webhook); the sandbox gives them 5 s, like Sumsub and ident.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcomes of a `kyc` webhook (Sila's webhook documentation).
pub const KYC_OUTCOMES: [&str; 6] = ["passed", "failed", "review", "documents_required", "pending", "member_review"];

struct SandboxState {
    /// Changed by `POST /_sandbox/verifications`; never held across an await.
    entities: RwLock<HashMap<String, Entity>>,
    app_handle: String,
    client_id: String,
    client_secret: SecretString,
    token_ttl: Duration,
    /// Bearer token -> unix second it expires.
    tokens: Mutex<HashMap<String, i64>>,
    counters: Counters,
    webhook_secret: SecretString,
    webhooks: WebhookSender,
}

/// A running sandbox Sila.
#[derive(Clone)]
pub struct SilaSandbox {
    base_url: String,
    state: Arc<SandboxState>,
    faults: Arc<FaultInjector>,
}

impl SilaSandbox {
    /// The faults injected into this sandbox, and its request count.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    pub async fn start(settings: &SandboxSettings, users: &[String]) -> std::io::Result<Self> {
        let entities =
            population::generate(users, settings.seed).into_iter().map(|e| (e.user_handle.clone(), e)).collect();
        let webhooks = WebhookSender::new("sila", WEBHOOK_TIMEOUT, settings.webhooks.clone());
        let state = Arc::new(SandboxState {
            entities: RwLock::new(entities),
            app_handle: "kyc-gateway-sandbox.silamoney.eth".into(),
            client_id: "kyc-gateway-sandbox".into(),
            client_secret: SecretString::from(random_token()),
            token_ttl: settings.sila_token_ttl,
            tokens: Mutex::new(HashMap::new()),
            counters: Counters::new(&COUNTERS),
            webhook_secret: SecretString::from(random_token()),
            webhooks: webhooks.clone(),
        });
        let router = Router::new()
            .route("/0.2/auth_token", post(auth_token))
            .route("/0.2/get_verifications", post(get_verifications))
            .route("/0.2/get_verifications/{uuid}", post(get_verification))
            .with_state(state.clone());
        let admin = Router::new()
            .route("/_sandbox/verifications", post(change_verification).layer(admin_body_limit()))
            .with_state(state.clone())
            .merge(webhooks::admin(webhooks));
        let faults = FaultInjector::new(settings.faults_for("sila"), settings.seed ^ 0xfa17);
        Ok(SilaSandbox { base_url: serve("sila", settings, router, admin, faults.clone()).await?, state, faults })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn app_handle(&self) -> &str {
        &self.state.app_handle
    }

    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    pub fn client_secret(&self) -> SecretString {
        self.state.client_secret.clone()
    }

    /// The entity behind a user handle as it is now, if any.
    pub fn entity(&self, user_handle: &str) -> Option<Entity> {
        self.state.entities.read().expect("entities lock").get(user_handle).cloned()
    }

    /// Every entity as it is now.
    pub fn entities(&self) -> impl Iterator<Item = Entity> {
        self.state.entities.read().expect("entities lock").values().cloned().collect::<Vec<_>>().into_iter()
    }

    /// The secret this sandbox signs its webhooks with (new at every start).
    pub fn webhook_secret(&self) -> SecretString {
        self.state.webhook_secret.clone()
    }

    pub fn webhooks(&self) -> &WebhookSender {
        &self.state.webhooks
    }

    pub fn counts(&self) -> Counts {
        self.state.counters.snapshot()
    }
}

fn failure(s: &SandboxState, status: StatusCode, message: &str) -> Response {
    s.counters.bump(if status == StatusCode::UNAUTHORIZED { "unauthorized" } else { "refused" });
    let body = Failure { success: false, status: "FAILURE".into(), message: message.into() };
    (status, Json(body)).into_response()
}

/// Parses and checks the `header` of a request body.
fn header_of(s: &SandboxState, body: &[u8]) -> Result<wire::Header, Response> {
    let parsed: HeaderOnly = serde_json::from_slice(body)
        .map_err(|_| failure(s, StatusCode::BAD_REQUEST, "The request body must be JSON with a header object."))?;
    let h = parsed.header;
    let now = crate::support::unix_seconds();
    if h.created > now + 5 {
        return Err(failure(s, StatusCode::BAD_REQUEST, "header.created must not be in the future."));
    }
    if h.created < now - 300 {
        return Err(failure(s, StatusCode::BAD_REQUEST, "header.created must not be more than 5 minutes in the past."));
    }
    if let Some(version) = &h.version {
        if !["0.2", "v0.2", "V0.2"].contains(&version.as_str()) {
            return Err(failure(s, StatusCode::BAD_REQUEST, "header.version must be 0.2, v0.2 or V0.2."));
        }
    }
    if h.app_handle != s.app_handle {
        return Err(failure(s, StatusCode::UNAUTHORIZED, "header.app_handle is not a known app."));
    }
    Ok(h)
}

async fn auth_token(State(s): State<Arc<SandboxState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.counters.bump("auth_token");
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.trim()).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let expected = format!("{}:{}", s.client_id, s.client_secret.expose_secret());
    if !basic.is_some_and(|b| same_secret(b.as_bytes(), expected.as_bytes())) {
        return failure(&s, StatusCode::UNAUTHORIZED, "Invalid client credentials.");
    }
    if let Err(response) = header_of(&s, &body) {
        return response;
    }
    let now = crate::support::unix_seconds();
    let mut tokens = s.tokens.lock().expect("token lock");
    // Asking again with more than 30 minutes left returns the same token.
    let reusable = tokens.iter().find(|(_, exp)| **exp - now > 1800).map(|(t, exp)| (t.clone(), *exp));
    let (token, expiration) = reusable.unwrap_or_else(|| {
        let token = random_token();
        let expiration = now + s.token_ttl.as_secs() as i64;
        tokens.insert(token.clone(), expiration);
        (token, expiration)
    });
    Json(AuthTokenResponse {
        success: true,
        status: "SUCCESS".into(),
        access_token: AccessToken { token, expiration, expires_in: (expiration - now).max(0) as u64 },
    })
    .into_response()
}

/// The bearer check, then the header check; answers the user handle's entity as it is now.
fn authorize(s: &SandboxState, headers: &HeaderMap, body: &[u8]) -> Result<Entity, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let valid = bearer
        .and_then(|t| s.tokens.lock().expect("token lock").get(&t).copied())
        .is_some_and(|exp| exp > crate::support::unix_seconds());
    if !valid {
        return Err(failure(s, StatusCode::UNAUTHORIZED, "Invalid or expired access token."));
    }
    let header = header_of(s, body)?;
    let handle = header.user_handle.unwrap_or_default();
    let entity = s.entities.read().expect("entities lock").get(&handle).cloned();
    entity.ok_or_else(|| {
        failure(s, StatusCode::FORBIDDEN, "The requested user_handle is not mapped to the app requested.")
    })
}

async fn get_verifications(State(s): State<Arc<SandboxState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.counters.bump("get_verifications");
    match authorize(&s, &headers, &body) {
        Err(response) => response,
        Ok(entity) => Json(VerificationsResponse {
            success: true,
            status: "SUCCESS".into(),
            reference: random_token(),
            sila_reference_id: random_token(),
            verifications: entity.summaries(),
        })
        .into_response(),
    }
}

async fn get_verification(
    State(s): State<Arc<SandboxState>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.counters.bump("get_verification");
    match authorize(&s, &headers, &body) {
        Err(response) => response,
        Ok(entity) => match entity.verifications.iter().find(|v| v.verification_id == uuid) {
            Some(v) => Json(v).into_response(),
            None => failure(&s, StatusCode::NOT_FOUND, "No such verification for this user_handle."),
        },
    }
}

/// Sila's webhook signature, `SILA-SIGNATURE`: base64 of HMAC-SHA256(webhook secret, raw body). Sila does not
/// publish its exact string to sign; this is the usual reading, kept in this one function so it is easy to change.
pub fn webhook_signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, body).as_ref())
}

/// `POST /_sandbox/verifications` `{"user_handle", "status", "verification_uuid"?}`: gives the verification (by
/// default the handle's newest) the status, as `/0.2/get_verifications` then shows, and sends the `kyc` webhook.
async fn change_verification(State(s): State<Arc<SandboxState>>, body: Result<Bytes, BytesRejection>) -> Response {
    s.counters.bump("sandbox_verification");
    let input: ChangeVerificationWire = match admin_json(body) {
        Ok(input) => input,
        Err((status, message)) => return failure(&s, status, &message),
    };
    if !KYC_OUTCOMES.contains(&input.status.as_str()) {
        let message = format!("status must be one of {}.", KYC_OUTCOMES.join(", "));
        return failure(&s, StatusCode::BAD_REQUEST, &message);
    }
    let changed = {
        let mut entities = s.entities.write().expect("entities lock");
        entities.get_mut(&input.user_handle).ok_or("No entity has this user_handle.").and_then(|entity| {
            let verification = match &input.verification_uuid {
                Some(uuid) => entity.verifications.iter_mut().find(|v| &v.verification_id == uuid),
                None => entity.verifications.iter_mut().max_by_key(|v| v.requested_at),
            };
            let v = verification.ok_or("The user_handle has no such verification.")?;
            v.verification_status = input.status.clone();
            v.updated_at = crate::support::unix_seconds().max(v.requested_at);
            v.kyc_action = population::kyc_action(&input.status);
            v.reasons.for_kyc_response = population::reasons(&input.status, 0);
            Ok(v.clone())
        })
    };
    let verification = match changed {
        Ok(v) => v,
        Err(message) => return failure(&s, StatusCode::NOT_FOUND, message),
    };
    let event_time = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .expect("a date formats");
    let event_uuid = random_uuid();
    let webhook = WebhookWire {
        event_time,
        event_type: "kyc".into(),
        event_uuid: event_uuid.clone(),
        event_details: KycEventDetails {
            entity: input.user_handle,
            outcome: input.status,
            kyc_level: verification.flow.clone(),
            verification_uuid: verification.verification_id.clone(),
        },
    };
    let body = serde_json::to_vec(&webhook).expect("plain data serialises");
    let secret = s.webhook_secret.clone();
    s.webhooks.send(WebhookEvent::new(body, move |body| {
        vec![
            ("SILA-WEBHOOK-ID", event_uuid.clone()),
            ("SILA-WEBHOOK-TYPE", "kyc".into()),
            ("SILA-SIGNATURE", webhook_signature(secret.expose_secret().as_bytes(), body)),
        ]
    }));
    Json(verification).into_response()
}

/// Starts this provider for the registry (`registry.rs`).
pub fn start<'a>(settings: &'a SandboxSettings, users: &'a [String]) -> crate::registry::Started<'a> {
    crate::registry::started(SilaSandbox::start(settings, users))
}

impl crate::Sandbox {
    /// The sandbox Sila.
    pub fn sila(&self) -> &SilaSandbox {
        self.get()
    }
}

impl crate::SandboxProvider for SilaSandbox {
    fn name(&self) -> &'static str {
        "sila"
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
            Variable::new("KYC_GATEWAY_SILA_BASE_URL", self.base_url()),
            Variable::new("KYC_GATEWAY_SILA_APP_HANDLE", self.app_handle()),
            Variable::new("KYC_GATEWAY_SILA_CLIENT_ID", self.client_id()),
            Variable::new("KYC_GATEWAY_SILA_CLIENT_SECRET", self.client_secret().expose_secret()),
            Variable::append("KYC_GATEWAY_SILA_WEBHOOK_SECRETS", self.webhook_secret().expose_secret(), ","),
            Variable::append("KYC_GATEWAY_SILA_FLOWS", population::flow_items(), "; "),
        ]
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::population::FLOW_STANDARD;
    use super::*;
    use crate::settings::SandboxWebhookSettings;
    use crate::webhooks::receiver::{quick_settings, settle, Receiver};

    async fn start(settings: &SandboxSettings) -> (SilaSandbox, Receiver) {
        let users: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
        let receiver = Receiver::start(0).await;
        let sandbox = SilaSandbox::start(settings, &users).await.expect("sandbox");
        sandbox.webhooks().set_targets(vec![format!("{}/webhooks/sila", receiver.url())]);
        (sandbox, receiver)
    }

    async fn change(sandbox: &SilaSandbox, body: Value) -> (StatusCode, Value) {
        let url = format!("{}/_sandbox/verifications", sandbox.base_url());
        let answer = reqwest::Client::new().post(url).json(&body).send().await.expect("answer");
        (answer.status(), answer.json().await.expect("json"))
    }

    /// `/0.2/get_verifications` for `handle`, through Sila's own authentication.
    async fn verifications(sandbox: &SilaSandbox, handle: &str) -> Value {
        let http = reqwest::Client::new();
        let header = json!({ "header": {
            "created": crate::support::unix_seconds(), "app_handle": sandbox.app_handle(), "user_handle": handle
        }});
        let token: Value = http
            .post(format!("{}/0.2/auth_token", sandbox.base_url()))
            .basic_auth(sandbox.client_id(), Some(sandbox.client_secret().expose_secret()))
            .json(&header)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        let token = token["access_token"]["token"].as_str().expect("a token").to_owned();
        http.post(format!("{}/0.2/get_verifications", sandbox.base_url()))
            .bearer_auth(token)
            .json(&header)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json")
    }

    #[tokio::test]
    async fn a_changed_verification_shows_in_get_verifications_and_sends_a_signed_kyc_webhook() {
        let (sandbox, receiver) = start(&quick_settings()).await;
        let (status, answer) = change(&sandbox, json!({ "user_handle": "u0", "status": "failed" })).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["verification_status"], "failed");
        let uuid = answer["verification_id"].as_str().expect("a uuid").to_owned();
        settle(sandbox.webhooks()).await;

        let hook = &receiver.wait_for(1).await[0];
        assert_eq!(hook.path, "/webhooks/sila");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, sandbox.webhook_secret().expose_secret().as_bytes());
        let expected = base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, &hook.body).as_ref());
        assert_eq!(hook.header("sila-signature"), expected);
        assert_eq!(expected.len(), 44);
        assert_eq!(hook.header("sila-webhook-type"), "kyc");
        let payload = hook.json();
        assert_eq!(hook.header("sila-webhook-id"), payload["event_uuid"]);
        assert_eq!(payload["event_type"], "kyc");
        assert_eq!(
            payload["event_details"],
            json!({ "entity": "u0", "outcome": "failed", "kyc_level": FLOW_STANDARD, "verification_uuid": uuid })
        );
        let time = payload["event_time"].as_str().expect("event_time");
        assert!(time.len() == 24 && &time[19..20] == "." && time.ends_with('Z'), "{time}");
        assert_eq!(payload["event_uuid"].as_str().map(str::len), Some(36));

        let listed = verifications(&sandbox, "u0").await;
        assert_eq!(listed["verifications"][0]["verification_status"], "failed", "{listed}");
        assert_eq!(sandbox.entity("u0").expect("u0").verifications[0].verification_status, "failed");
        assert_eq!(sandbox.counts().get("sandbox_verification"), 1);
    }

    #[tokio::test]
    async fn the_admin_endpoint_refuses_unknown_handles_verifications_and_outcomes() {
        let (sandbox, _receiver) = start(&quick_settings()).await;
        for (body, status) in [
            (json!({ "user_handle": "nobody", "status": "passed" }), StatusCode::NOT_FOUND),
            (json!({ "user_handle": "u0", "status": "passed", "verification_uuid": "nope" }), StatusCode::NOT_FOUND),
            (json!({ "user_handle": "u0", "status": "unverified" }), StatusCode::BAD_REQUEST),
            (json!({ "user_handle": "u0" }), StatusCode::BAD_REQUEST),
        ] {
            let (got, error) = change(&sandbox, body.clone()).await;
            assert_eq!(got, status, "{body}");
            assert_eq!(error["success"], false, "{error}");
        }
        assert_eq!(sandbox.webhooks().counts().sent, 0);
    }

    #[tokio::test]
    async fn within_the_reorder_window_the_newer_event_arrives_first_and_duplicates_follow() {
        let mut settings = quick_settings();
        settings.webhooks =
            SandboxWebhookSettings { reorder_window: Duration::from_secs(1), duplicate: true, ..settings.webhooks };
        let (sandbox, receiver) = start(&settings).await;
        assert_eq!(change(&sandbox, json!({ "user_handle": "u0", "status": "review" })).await.0, StatusCode::OK);
        assert_eq!(change(&sandbox, json!({ "user_handle": "u0", "status": "passed" })).await.0, StatusCode::OK);
        settle(sandbox.webhooks()).await;
        let outcomes: Vec<Value> =
            receiver.received().iter().map(|r| r.json()["event_details"]["outcome"].clone()).collect();
        assert_eq!(outcomes, [json!("passed"), json!("passed"), json!("review"), json!("review")]);
        assert_eq!(sandbox.webhooks().counts().delivered, 4);
    }
}
