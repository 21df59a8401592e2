//! The sandbox Veriff: `GET /v1/sessions/{id}/decision` and `POST /v1/sessions`, checked like Veriff's public API v1
//! (`X-AUTH-CLIENT`, `X-HMAC-SIGNATURE` compared in constant time), refusals with its documented error codes. `POST
//! /_sandbox/sessions/{id}/decision` gives a session a decision and sends the signed decision webhook.

pub mod population;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::{ExposeSecret, SecretString};

use super::faults::FaultInjector;
use super::support::{
    admin_body_limit, admin_json, hex, random_token, random_uuid, same_secret, serve, Counters, Counts,
};
use super::webhooks::{self, WebhookEvent, WebhookSender};
use crate::settings::SandboxSettings;
use population::{DecisionState, Session};
use wire::{
    ChangeDecisionWire, CreateSessionRequest, CreateSessionResponse, CreatedSession, Decision, DecisionResponse,
    ErrorBody, TechnicalData,
};

const COUNTERS: [&str; 5] = ["decision", "create_session", "sandbox_decision", "unauthorized", "not_found"];

/// Veriff documents no delivery timeout (it retries a non-200 answer hourly for a week); the sandbox gives a
/// receiver 5 s, like the others.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The decisions an admin change may give (Veriff's "Verification session decisions").
pub const DECISIONS: [&str; 6] = ["approved", "declined", "resubmission_requested", "review", "expired", "abandoned"];

/// The longest `vendorData` Veriff takes (its code 1500), and the largest `POST /v1/sessions` body read.
const MAX_VENDOR_DATA: usize = 1000;
const MAX_REASON: usize = 500;

/// The address the decisions' `technicalData.ip` shows (a documentation range, RFC 5737).
const SANDBOX_IP: &str = "192.0.2.10";

struct SandboxState {
    /// Changed by decisions and new sessions; never held across an await.
    sessions: RwLock<HashMap<String, Session>>,
    /// The sessions of each gateway user at start (what the directory file holds), in creation order.
    by_user: HashMap<String, Vec<String>>,
    api_key: SecretString,
    shared_secret: SecretString,
    counters: Counters,
    webhooks: WebhookSender,
    base_url: RwLock<String>,
}

/// A running sandbox Veriff.
#[derive(Clone)]
pub struct VeriffSandbox {
    base_url: String,
    state: Arc<SandboxState>,
    faults: Arc<FaultInjector>,
}

impl VeriffSandbox {
    /// Serves sessions for the gateway users `users` (see [`population::generate`]).
    pub async fn start(settings: &SandboxSettings, users: &[String]) -> std::io::Result<Self> {
        let generated = population::generate(users, settings.seed);
        let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
        for session in &generated {
            if let Some(user) = &session.vendor_data {
                by_user.entry(user.clone()).or_default().push(session.id.clone());
            }
        }
        let webhooks = WebhookSender::new("veriff", WEBHOOK_TIMEOUT, settings.webhooks.clone());
        let state = Arc::new(SandboxState {
            sessions: RwLock::new(generated.into_iter().map(|s| (s.id.clone(), s)).collect()),
            by_user,
            // Veriff's API keys and shared secrets are UUIDs.
            api_key: SecretString::from(random_uuid()),
            shared_secret: SecretString::from(random_uuid()),
            counters: Counters::new(&COUNTERS),
            webhooks: webhooks.clone(),
            base_url: RwLock::default(),
        });
        let router = Router::new()
            .route("/v1/sessions", post(create_session).layer(admin_body_limit()))
            .route("/v1/sessions/{id}/decision", get(decision))
            .fallback(not_found)
            .with_state(state.clone());
        let admin = Router::new()
            .route("/_sandbox/sessions/{id}/decision", post(change_decision).layer(admin_body_limit()))
            .with_state(state.clone())
            .merge(webhooks::admin(webhooks));
        let faults = FaultInjector::new(settings.faults_for("veriff"), settings.seed ^ 0xfa17);
        let base_url = serve("veriff", settings, router, admin, faults.clone()).await?;
        *state.base_url.write().expect("base URL lock") = base_url.clone();
        Ok(VeriffSandbox { base_url, state, faults })
    }

    /// The faults injected into this sandbox, and its request count.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `X-AUTH-CLIENT`.
    pub fn api_key(&self) -> SecretString {
        self.state.api_key.clone()
    }

    /// Signs requests, answers and webhooks (new at every start).
    pub fn shared_secret(&self) -> SecretString {
        self.state.shared_secret.clone()
    }

    /// The sessions of a gateway user the sandbox started with (what its directory entry holds).
    pub fn sessions_of(&self, user_id: &str) -> Vec<String> {
        self.state.by_user.get(user_id).cloned().unwrap_or_default()
    }

    /// A session as it is now.
    pub fn session(&self, id: &str) -> Option<Session> {
        self.state.sessions.read().expect("sessions lock").get(id).cloned()
    }

    pub fn webhooks(&self) -> &WebhookSender {
        &self.state.webhooks
    }

    pub fn counts(&self) -> Counts {
        self.state.counters.snapshot()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody { status: "fail".into(), code: code.into(), message: message.into() };
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    // Veriff documents its 404 ("Session not found") without a code: the sandbox's is "404".
    error(StatusCode::NOT_FOUND, "404", "Not found")
}

/// Veriff's checks of `X-AUTH-CLIENT`: present (1801), a UUID (1802), this integration's (1803).
fn admit(s: &SandboxState, headers: &HeaderMap) -> Result<(), Response> {
    let refuse = |code: &str, message: &str| {
        s.counters.bump("unauthorized");
        Err(error(StatusCode::UNAUTHORIZED, code, message))
    };
    let Some(key) = headers.get("x-auth-client").and_then(|v| v.to_str().ok()) else {
        return refuse("1801", "Mandatory X-AUTH-CLIENT header containing the API key is missing from the request");
    };
    if !is_uuid(key) {
        return refuse("1802", "API key is not a valid UUID");
    }
    if !same_secret(key.as_bytes(), s.api_key.expose_secret().as_bytes()) {
        return refuse("1803", "Integration with the API key was not found");
    }
    Ok(())
}

/// `X-HMAC-SIGNATURE` over `message`: 64 hex characters (1812) that are its HMAC-SHA256 under the shared secret,
/// compared in constant time (`mismatch`: 1818 for a path id, 1819 for a body).
fn check_signature(
    s: &SandboxState,
    headers: &HeaderMap,
    message: &[u8],
    mismatch: (&str, &str),
) -> Result<(), Response> {
    let refuse = |code: &str, message: &str| {
        s.counters.bump("unauthorized");
        Err(error(StatusCode::UNAUTHORIZED, code, message))
    };
    let given = headers.get("x-hmac-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let tag = match ::hex::decode(given.trim()) {
        Ok(tag) if tag.len() == 32 => tag,
        _ => return refuse("1812", "Signature is not a valid SHA256 hash"),
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s.shared_secret.expose_secret().as_bytes());
    if ring::hmac::verify(&key, message, &tag).is_err() {
        return refuse(mismatch.0, mismatch.1);
    }
    Ok(())
}

/// A UUID in its 8-4-4-4-12 text form.
fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A JSON answer signed as Veriff signs its own: `X-AUTH-CLIENT` and the body's `X-HMAC-SIGNATURE`.
fn signed(s: &SandboxState, status: StatusCode, body: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(body).expect("plain data serialises");
    let signature = hex(ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s.shared_secret.expose_secret().as_bytes()),
        &body,
    )
    .as_ref());
    let mut response = (status, [("content-type", "application/json")], body).into_response();
    let headers = response.headers_mut();
    headers.insert("x-auth-client", HeaderValue::from_str(s.api_key.expose_secret()).expect("a UUID is a header"));
    headers.insert("x-hmac-signature", HeaderValue::from_str(&signature).expect("hex is a header"));
    response
}

/// A session's decision answer as Veriff writes it.
fn answer(session: &Session) -> DecisionResponse {
    let verification = session.decision.as_ref().map(|d| Decision {
        id: session.id.clone(),
        attempt_id: d.attempt_id.clone(),
        code: population::code(&d.status),
        status: d.status.clone(),
        reason: d.reason.as_ref().map(|(_, text)| text.clone()),
        reason_code: d.reason.as_ref().map(|(code, _)| *code),
        decision_time: d.decision_time.clone(),
        acceptance_time: session.acceptance_time.clone(),
        vendor_data: session.vendor_data.clone(),
        end_user_id: None,
        person: session.person.clone(),
        document: session.document.clone(),
        comments: Vec::new(),
        additional_verified_data: serde_json::json!({}),
        risk_labels: Vec::new(),
    });
    DecisionResponse {
        status: "success".into(),
        verification,
        technical_data: TechnicalData { ip: Some(SANDBOX_IP.into()) },
    }
}

/// Veriff's checks of a query id: 20 to 40 characters (1001), a UUID (1002).
fn check_id(id: &str) -> Result<(), Response> {
    if !(20..=40).contains(&id.len()) {
        return Err(error(StatusCode::BAD_REQUEST, "1001", "Query ID must be between 20 and 40 symbols."));
    }
    if !is_uuid(id) {
        return Err(error(StatusCode::BAD_REQUEST, "1002", "Query ID must be a valid UUID V4"));
    }
    Ok(())
}

/// `GET /v1/sessions/{id}/decision`: `verification` is `null` until the session has a decision.
async fn decision(State(s): State<Arc<SandboxState>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    s.counters.bump("decision");
    let checked = admit(&s, &headers).and_then(|()| check_id(&id)).and_then(|()| {
        let mismatch = ("1818", "Signature does not match the HMAC-SHA256 of query ID and integration API secret");
        check_signature(&s, &headers, id.as_bytes(), mismatch)
    });
    if let Err(response) = checked {
        return response;
    }
    let session = s.sessions.read().expect("sessions lock").get(&id).cloned();
    match session {
        Some(session) => signed(&s, StatusCode::OK, &answer(&session)),
        None => {
            s.counters.bump("not_found");
            error(StatusCode::NOT_FOUND, "404", "Session not found")
        }
    }
}

/// `POST /v1/sessions`: a new session (no signature, as Veriff documents for this one endpoint), `created`, without a
/// decision; `vendorData` is a string (1501) of at most 1,000 characters (1500).
async fn create_session(
    State(s): State<Arc<SandboxState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    s.counters.bump("create_session");
    if let Err(response) = admit(&s, &headers) {
        return response;
    }
    let missing = || error(StatusCode::BAD_REQUEST, "1102", "Mandatory parameters are missing from the request.");
    let Some(new) =
        body.ok().and_then(|b| serde_json::from_slice::<CreateSessionRequest>(&b).ok()).and_then(|r| r.verification)
    else {
        return missing();
    };
    let vendor_data = match new.vendor_data {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) if text.chars().count() <= MAX_VENDOR_DATA => Some(text),
        Some(serde_json::Value::String(_)) => {
            return error(StatusCode::BAD_REQUEST, "1500", "vendorData field cannot be more than 1000 symbols.")
        }
        Some(_) => return error(StatusCode::BAD_REQUEST, "1501", "vendorData must be a string."),
    };
    let id = random_uuid();
    let session = Session {
        id: id.clone(),
        vendor_data: vendor_data.clone(),
        acceptance_time: population::timestamp(now_ms()),
        person: new.person,
        document: None,
        decision: None,
    };
    s.sessions.write().expect("sessions lock").insert(id.clone(), session);
    let host = s.base_url.read().expect("base URL lock").clone();
    let token = random_token();
    let created = CreateSessionResponse {
        status: "success".into(),
        verification: CreatedSession {
            url: format!("{host}/v/{token}"),
            id,
            vendor_data,
            host,
            status: "created".into(),
            session_token: token,
        },
    };
    signed(&s, StatusCode::CREATED, &created)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Veriff's webhook signature: lowercase hex HMAC-SHA256 of the raw body under the shared secret.
pub fn webhook_signature(secret: &[u8], body: &[u8]) -> String {
    hex(ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), body).as_ref())
}

/// `POST /_sandbox/sessions/{id}/decision` `{"status", "reasonCode"?, "reason"?}`: the session's new decision (a new
/// attempt, decided now), as the decision endpoint then shows; sends the signed decision webhook.
async fn change_decision(
    State(s): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    s.counters.bump("sandbox_decision");
    let input: ChangeDecisionWire = match admin_json(body) {
        Ok(input) => input,
        Err((status, message)) => return error(status, "1104", &message),
    };
    if !DECISIONS.contains(&input.status.as_str()) {
        return error(StatusCode::BAD_REQUEST, "1303", &format!("Invalid status: one of {}.", DECISIONS.join(", ")));
    }
    if input.reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON) {
        return error(StatusCode::BAD_REQUEST, "1104", &format!("reason is at most {MAX_REASON} characters."));
    }
    let reason = match (input.reason_code, input.reason) {
        (Some(code), reason) => Some((code, reason.unwrap_or_default())),
        (None, Some(_)) => return error(StatusCode::BAD_REQUEST, "1104", "A reason needs its reasonCode."),
        (None, None) => population::reason(&input.status, 0).map(|(code, text)| (code, text.to_owned())),
    };
    let changed = {
        let mut sessions = s.sessions.write().expect("sessions lock");
        sessions.get_mut(&id).map(|session| {
            // A decision comes after what came before it, by a millisecond at least.
            let previous = session.decision.as_ref().and_then(|d| time_ms(&d.decision_time)).unwrap_or(0);
            session.decision = Some(DecisionState {
                status: input.status.clone(),
                attempt_id: random_uuid(),
                reason,
                decision_time: population::timestamp(now_ms().max(previous + 1)),
            });
            answer(session)
        })
    };
    let Some(decided) = changed else {
        s.counters.bump("not_found");
        return error(StatusCode::NOT_FOUND, "404", "Session not found");
    };
    let body = serde_json::to_vec(&decided).expect("plain data serialises");
    let (secret, key) = (s.shared_secret.clone(), s.api_key.clone());
    s.webhooks.send(WebhookEvent::new(body, move |body| {
        vec![
            ("X-AUTH-CLIENT", key.expose_secret().to_owned()),
            ("X-HMAC-SIGNATURE", webhook_signature(secret.expose_secret().as_bytes(), body)),
        ]
    }));
    signed(&s, StatusCode::OK, &decided)
}

/// Unix milliseconds of a `YYYY-MM-DDTHH:MM:SS.mmmZ` time.
fn time_ms(text: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Starts this provider for the registry (`registry.rs`).
pub fn start<'a>(settings: &'a SandboxSettings, users: &'a [String]) -> crate::registry::Started<'a> {
    crate::registry::started(VeriffSandbox::start(settings, users))
}

impl crate::Sandbox {
    /// The sandbox Veriff.
    pub fn veriff(&self) -> &VeriffSandbox {
        self.get()
    }
}

impl crate::SandboxProvider for VeriffSandbox {
    fn name(&self) -> &'static str {
        "veriff"
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
            Variable::new("KYC_GATEWAY_VERIFF_BASE_URL", self.base_url()),
            Variable::new("KYC_GATEWAY_VERIFF_API_KEY", self.api_key().expose_secret()),
            Variable::new("KYC_GATEWAY_VERIFF_SHARED_SECRET", self.shared_secret().expose_secret()),
            // Veriff signs its webhooks with the integration's shared secret.
            Variable::append("KYC_GATEWAY_VERIFF_WEBHOOK_SECRETS", self.shared_secret().expose_secret(), ","),
            Variable::append("KYC_GATEWAY_VERIFF_LEVELS", population::LEVEL_ITEMS, "; "),
            // Every session here is the sandbox's own: a decision's `vendorData` may name its user.
            Variable::new("KYC_GATEWAY_VERIFF_LEARN_SESSIONS", "on"),
        ]
    }

    /// A user with sessions holds their ids (`vendorData` names the user at Veriff; the directory, the sessions).
    fn directory_fields(&self, user_id: &str) -> Vec<(&'static str, serde_json::Value)> {
        match self.state.by_user.get(user_id) {
            Some(sessions) => vec![("veriff_session_ids", serde_json::json!(sessions))],
            None => Vec::new(),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::settings::SandboxWebhookSettings;
    use crate::webhooks::receiver::{hmac_hex, quick_settings, settle, Receiver};

    fn users() -> Vec<String> {
        (0..30).map(|i| format!("user-{i}")).collect()
    }

    async fn start(settings: &SandboxSettings) -> (VeriffSandbox, Receiver) {
        let receiver = Receiver::start(0).await;
        let sandbox = VeriffSandbox::start(settings, &users()).await.expect("sandbox");
        sandbox.webhooks().set_targets(vec![format!("{}/webhooks/veriff", receiver.url())]);
        (sandbox, receiver)
    }

    /// `GET /v1/sessions/{id}/decision` with these headers: the status, the answer's signature header, the body.
    async fn get_decision(
        sandbox: &VeriffSandbox,
        id: &str,
        key: Option<&str>,
        sig: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = reqwest::Client::new().get(format!("{}/v1/sessions/{id}/decision", sandbox.base_url()));
        if let Some(key) = key {
            request = request.header("X-AUTH-CLIENT", key);
        }
        if let Some(sig) = sig {
            request = request.header("X-HMAC-SIGNATURE", sig);
        }
        let answer = request.send().await.expect("answer");
        let status = answer.status();
        let signature = answer.headers().get("x-hmac-signature").map(|v| v.to_str().expect("ascii").to_owned());
        let bytes = answer.bytes().await.expect("body");
        if let Some(signature) = &signature {
            assert_eq!(signature, &hmac_hex(ring::hmac::HMAC_SHA256, sandbox.shared_secret().expose_secret(), &bytes));
        }
        (status, signature, serde_json::from_slice(&bytes).expect("json"))
    }

    fn sign(sandbox: &VeriffSandbox, message: &str) -> String {
        hmac_hex(ring::hmac::HMAC_SHA256, sandbox.shared_secret().expose_secret(), message.as_bytes())
    }

    #[tokio::test]
    async fn a_decision_is_answered_to_the_api_key_with_the_session_id_signed_and_the_answer_is_signed() {
        let (sandbox, _receiver) = start(&quick_settings()).await;
        let id = sandbox.sessions_of("user-0")[0].clone();
        let key = sandbox.api_key();
        let (status, signature, body) =
            get_decision(&sandbox, &id, Some(key.expose_secret()), Some(&sign(&sandbox, &id))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(signature.is_some(), "Veriff signs its answers");
        assert_eq!(body["status"], "success");
        let v = &body["verification"];
        assert_eq!(
            (&v["id"], &v["status"], &v["code"], &v["vendorData"]),
            (&json!(id), &json!("approved"), &json!(9001), &json!("user-0"))
        );
        assert_eq!(v["person"]["lastName"], "Muller");
        assert_eq!(v["document"]["type"], "PASSPORT");
        assert!(v["reasonCode"].is_null() && v["reason"].is_null() && v["endUserId"].is_null());
        // Upper-case hex is the same signature.
        let upper = sign(&sandbox, &id).to_uppercase();
        assert_eq!(get_decision(&sandbox, &id, Some(key.expose_secret()), Some(&upper)).await.0, StatusCode::OK);
        assert_eq!(sandbox.counts().get("decision"), 2);
    }

    #[tokio::test]
    async fn wrong_credentials_signatures_and_ids_are_refused_with_veriff_s_codes() {
        let (sandbox, _receiver) = start(&quick_settings()).await;
        let id = sandbox.sessions_of("user-0")[0].clone();
        let key = sandbox.api_key();
        let key = key.expose_secret();
        let good = sign(&sandbox, &id);
        let other = random_uuid();
        // (path id, X-AUTH-CLIENT, X-HMAC-SIGNATURE, status, Veriff's code)
        let cases = [
            (id.as_str(), None, Some(good.as_str()), StatusCode::UNAUTHORIZED, "1801"),
            (&id, Some("not-a-uuid"), Some(&good), StatusCode::UNAUTHORIZED, "1802"),
            (&id, Some(&other), Some(&good), StatusCode::UNAUTHORIZED, "1803"),
            (&id, Some(key), None, StatusCode::UNAUTHORIZED, "1812"),
            (&id, Some(key), Some("abc"), StatusCode::UNAUTHORIZED, "1812"),
            (&id, Some(key), Some(&sign(&sandbox, &other)), StatusCode::UNAUTHORIZED, "1818"),
            ("short", Some(key), Some(&good), StatusCode::BAD_REQUEST, "1001"),
            ("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", Some(key), Some(&good), StatusCode::BAD_REQUEST, "1002"),
        ];
        for (path_id, key, sig, status, code) in cases {
            let (got, signature, body) = get_decision(&sandbox, path_id, key, sig).await;
            assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
            assert_eq!(body["status"], "fail");
            assert!(body["message"].is_string() && signature.is_none());
        }
        let unknown = random_uuid();
        let (status, _, body) = get_decision(&sandbox, &unknown, Some(key), Some(&sign(&sandbox, &unknown))).await;
        assert_eq!((status, &body["status"]), (StatusCode::NOT_FOUND, &json!("fail")));
        assert_eq!(sandbox.counts().get("unauthorized"), 6);
    }

    #[tokio::test]
    async fn a_created_session_has_no_decision_until_one_is_given_and_then_sends_a_signed_decision_webhook() {
        let (sandbox, receiver) = start(&quick_settings()).await;
        let http = reqwest::Client::new();
        let key = sandbox.api_key();
        let create = |body: Value, key: Option<String>| {
            let mut request = http.post(format!("{}/v1/sessions", sandbox.base_url())).json(&body);
            if let Some(key) = key {
                request = request.header("X-AUTH-CLIENT", key);
            }
            request.send()
        };
        let body = json!({ "verification": { "vendorData": "user-1", "person": { "firstName": "Mari", "lastName": "Maasikas" } } });
        let created = create(body.clone(), Some(key.expose_secret().to_owned())).await.expect("answer");
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.expect("json");
        assert_eq!((&created["status"], &created["verification"]["status"]), (&json!("success"), &json!("created")));
        let id = created["verification"]["id"].as_str().expect("an id").to_owned();
        assert_eq!(create(body, None).await.expect("answer").status(), StatusCode::UNAUTHORIZED);
        let long = json!({ "verification": { "vendorData": "v".repeat(1001) } });
        let refused: Value =
            create(long, Some(key.expose_secret().to_owned())).await.expect("answer").json().await.expect("json");
        assert_eq!(refused["code"], "1500");
        let not_string = json!({ "verification": { "vendorData": 7 } });
        let refused: Value =
            create(not_string, Some(key.expose_secret().to_owned())).await.expect("answer").json().await.expect("json");
        assert_eq!(refused["code"], "1501");

        let (_, _, undecided) =
            get_decision(&sandbox, &id, Some(key.expose_secret()), Some(&sign(&sandbox, &id))).await;
        assert_eq!(
            undecided,
            json!({ "status": "success", "verification": null, "technicalData": { "ip": SANDBOX_IP } })
        );

        let url = format!("{}/_sandbox/sessions/{id}/decision", sandbox.base_url());
        let answer = http.post(&url).json(&json!({ "status": "declined", "reasonCode": 103, "reason": "Person showing the document does not appear to match document photo" })).send().await.expect("answer");
        assert_eq!(answer.status(), StatusCode::OK);
        settle(sandbox.webhooks()).await;
        let hook = &receiver.wait_for(1).await[0];
        assert_eq!(hook.path, "/webhooks/veriff");
        assert_eq!(
            hook.header("x-hmac-signature"),
            hmac_hex(ring::hmac::HMAC_SHA256, sandbox.shared_secret().expose_secret(), &hook.body)
        );
        assert_eq!(hook.header("x-auth-client"), key.expose_secret());
        let payload = hook.json();
        let v = &payload["verification"];
        assert_eq!(
            (&v["id"], &v["status"], &v["code"], &v["reasonCode"]),
            (&json!(id), &json!("declined"), &json!(9102), &json!(103))
        );
        assert_eq!((&v["vendorData"], &v["person"]["firstName"]), (&json!("user-1"), &json!("Mari")));
        let time = v["decisionTime"].as_str().expect("decisionTime");
        assert!(time.len() == 24 && time.ends_with('Z'), "{time}");
        let (_, _, now) = get_decision(&sandbox, &id, Some(key.expose_secret()), Some(&sign(&sandbox, &id))).await;
        assert_eq!(now["verification"], payload["verification"]);
        assert_eq!(sandbox.counts().get("create_session"), 4);
    }

    #[tokio::test]
    async fn the_admin_endpoint_refuses_unknown_sessions_and_statuses_and_a_failing_receiver_gets_a_retry() {
        let mut settings = quick_settings();
        settings.webhooks =
            SandboxWebhookSettings { retry_schedule: vec![Duration::from_millis(10)], ..settings.webhooks };
        let receiver = Receiver::start(1).await;
        let sandbox = VeriffSandbox::start(&settings, &users()).await.expect("sandbox");
        sandbox.webhooks().set_targets(vec![format!("{}/webhooks/veriff", receiver.url())]);
        let http = reqwest::Client::new();
        let id = sandbox.sessions_of("user-3")[1].clone();
        for (path_id, body, status) in [
            (random_uuid(), json!({ "status": "approved" }), StatusCode::NOT_FOUND),
            (id.clone(), json!({ "status": "created" }), StatusCode::BAD_REQUEST),
            (id.clone(), json!({ "status": "approved", "colour": "green" }), StatusCode::BAD_REQUEST),
            (id.clone(), json!({ "status": "declined", "reason": "no code" }), StatusCode::BAD_REQUEST),
        ] {
            let answer = http
                .post(format!("{}/_sandbox/sessions/{path_id}/decision", sandbox.base_url()))
                .json(&body)
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), status, "{body}");
            let error: Value = answer.json().await.expect("json");
            assert_eq!(error["status"], "fail");
        }
        let url = format!("{}/_sandbox/sessions/{id}/decision", sandbox.base_url());
        let decided: Value = http
            .post(&url)
            .json(&json!({ "status": "resubmission_requested" }))
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert_eq!(
            (&decided["verification"]["reasonCode"], &decided["verification"]["code"]),
            (&json!(201), &json!(9103)),
            "a documented reason by default"
        );
        settle(sandbox.webhooks()).await;
        assert_eq!(receiver.received().len(), 2, "the first attempt failed, the retry arrived");
        assert_eq!(sandbox.webhooks().counts().delivered, 1);
        assert_eq!(sandbox.faults().requests(), 0, "admin routes are not provider traffic");
    }

    #[test]
    fn the_webhook_signature_is_the_hex_hmac_of_veriff_s_mock_data() {
        // Veriff's HMAC mock secret and body; computed here with `openssl dgst -sha256 -hmac`.
        let body = br#"{"verification":{"callback":"https://veriff.com","person":{"firstName":"John","lastName":"Smith"},"document":{"type":"PASSPORT","country":"EE"},"vendorData":"unique id of the end-user","timestamp":"2016-05-19T08:30:25.597Z"}}"#;
        assert_eq!(
            webhook_signature(b"abcdef12-abcd-abcd-abcd-abcdef012345", body),
            "0dcab73ddd20062616d104231c7439657546a5c24e4691977da93bb854c31e25"
        );
    }
}
