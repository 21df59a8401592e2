//! The sandbox Sumsub: requests signed and checked like the real service (`X-App-Access-Sig` in constant time, the
//! timestamp within a minute), applicants by id and `externalUserId`, 429 past the documented rate limit. Reviews
//! change through Sumsub's own sandbox routes (or unsigned `/_sandbox/...`), each sending Sumsub's signed webhook.

pub mod population;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use time::macros::format_description;

use super::faults::FaultInjector;
use super::support::{admin_body_limit, admin_json, hex, random_uuid, same_secret, serve, Counters, Counts, RateLimit};
use super::webhooks::{self, WebhookEvent, WebhookSender};
use crate::settings::SandboxSettings;
use secrecy::{ExposeSecret, SecretString};

use crate::support::random_token;
use wire::{Applicant, ApplicantReview, ErrorBody, ReviewResult, TestCompletedWire, WebhookWire};

const COUNTERS: [&str; 10] = [
    "applicant",
    "applicant_by_external_id",
    "status",
    "required_docs",
    "test_completed",
    "status_pending",
    "sandbox_review",
    "unauthorized",
    "not_found",
    "rate_limited",
];

/// Sumsub gives a webhook receiver 5 s (Sumsub's webhook documentation).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The most rejection labels a test review takes, the longest label and the longest comment.
const MAX_LABELS: usize = 32;
const MAX_LABEL_LEN: usize = 64;
const MAX_COMMENT_LEN: usize = 2000;

struct SandboxState {
    /// Changed by test reviews; never held across an await.
    applicants: RwLock<Vec<Applicant>>,
    by_id: HashMap<String, usize>,
    by_external: HashMap<String, usize>,
    app_token: SecretString,
    secret_key: SecretString,
    get_limit: RateLimit,
    post_limit: RateLimit,
    counters: Counters,
    webhook_secret: SecretString,
    webhooks: WebhookSender,
}

/// A running sandbox Sumsub.
#[derive(Clone)]
pub struct SumsubSandbox {
    base_url: String,
    state: Arc<SandboxState>,
    faults: Arc<FaultInjector>,
}

impl SumsubSandbox {
    /// The faults injected into this sandbox, and its request count.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Serves applicants for the gateway users `users` (see [`population::generate`]).
    pub async fn start(settings: &SandboxSettings, users: &[String]) -> std::io::Result<Self> {
        let applicants = population::generate(users, settings.seed);
        let by_id = applicants.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        let by_external =
            applicants.iter().enumerate().filter_map(|(i, a)| Some((a.external_user_id.clone()?, i))).collect();
        let webhooks = WebhookSender::new("sumsub", WEBHOOK_TIMEOUT, settings.webhooks.clone());
        let state = Arc::new(SandboxState {
            applicants: RwLock::new(applicants),
            by_id,
            by_external,
            app_token: SecretString::from(format!("sbx:{}", random_token())),
            secret_key: SecretString::from(random_token()),
            get_limit: RateLimit::new(settings.sumsub_get_limit, settings.sumsub_window),
            post_limit: RateLimit::new(settings.sumsub_post_limit, settings.sumsub_window),
            counters: Counters::new(&COUNTERS),
            webhook_secret: SecretString::from(random_token()),
            webhooks: webhooks.clone(),
        });
        let router = Router::new()
            .route("/resources/applicants/{id}/{what}", get(applicant))
            .route("/resources/applicants/{id}/status/{change}", post(change_status).layer(admin_body_limit()))
            .fallback(not_found)
            .with_state(state.clone());
        let admin = Router::new()
            .route("/_sandbox/applicants/{external_user_id}/review", post(sandbox_review).layer(admin_body_limit()))
            .with_state(state.clone())
            .merge(webhooks::admin(webhooks));
        let faults = FaultInjector::new(settings.faults_for("sumsub"), settings.seed ^ 0xfa17);
        Ok(SumsubSandbox { base_url: serve("sumsub", settings, router, admin, faults.clone()).await?, state, faults })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn app_token(&self) -> SecretString {
        self.state.app_token.clone()
    }

    pub fn secret_key(&self) -> SecretString {
        self.state.secret_key.clone()
    }

    /// The applicant of a gateway user as it is now, if any.
    pub fn applicant_of(&self, user_id: &str) -> Option<Applicant> {
        let index = *self.state.by_external.get(user_id)?;
        Some(self.state.applicants.read().expect("applicants lock")[index].clone())
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

fn error(status: StatusCode, description: &str) -> Response {
    let body = ErrorBody { description: description.into(), code: status.as_u16(), correlation_id: random_token() };
    (status, Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found")
}

/// Sumsub's checks on every request: app token, timestamp within a minute, signature, then the rate limit.
fn admit(
    s: &SandboxState,
    method: &Method,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let refuse = |description: &str| {
        s.counters.bump("unauthorized");
        Err(error(StatusCode::UNAUTHORIZED, description))
    };
    if !same_secret(header("X-App-Token").as_bytes(), s.app_token.expose_secret().as_bytes()) {
        return refuse("App token is missing or unknown");
    }
    let ts = header("X-App-Access-Ts");
    match ts.parse::<i64>() {
        Ok(t) if (crate::support::unix_seconds() - t).abs() <= 60 => {}
        _ => return refuse("Request timestamp is missing or more than a minute off"),
    }
    let path_and_query = uri.0.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s.secret_key.expose_secret().as_bytes());
    let mut message = Vec::with_capacity(ts.len() + path_and_query.len() + body.len() + 8);
    message.extend_from_slice(ts.as_bytes());
    message.extend_from_slice(method.as_str().as_bytes());
    message.extend_from_slice(path_and_query.as_bytes());
    message.extend_from_slice(body);
    let signature = decode_hex(header("X-App-Access-Sig")).unwrap_or_default();
    if ring::hmac::verify(&key, &message, &signature).is_err() {
        return refuse("Request signature mismatch");
    }
    let limit = if method == Method::GET { &s.get_limit } else { &s.post_limit };
    if let Err(retry_after) = limit.admit() {
        s.counters.bump("rate_limited");
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
        response.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
        return Err(response);
    }
    Ok(())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The index of the applicant a path names: its id, or `-;externalUserId=<id>`.
fn find(s: &SandboxState, id: &str) -> Option<usize> {
    match id.strip_prefix("-;externalUserId=") {
        Some(external) => s.by_external.get(external).copied(),
        None => s.by_id.get(id).copied(),
    }
}

/// `GET /resources/applicants/{id}/{one|status|requiredIdDocsStatus}`, `id` being an applicant id or
/// `-;externalUserId=<id>`.
async fn applicant(
    State(s): State<Arc<SandboxState>>,
    Path((id, what)): Path<(String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let counter = match what.as_str() {
        "one" if id.starts_with("-;") => "applicant_by_external_id",
        "one" => "applicant",
        "status" => "status",
        "requiredIdDocsStatus" => "required_docs",
        _ => return not_found().await,
    };
    s.counters.bump(counter);
    if let Err(response) = admit(&s, &method, &uri, &headers, &body) {
        return response;
    }
    let Some(index) = find(&s, &id) else {
        s.counters.bump("not_found");
        return error(StatusCode::NOT_FOUND, "Applicant not found");
    };
    let applicants = s.applicants.read().expect("applicants lock");
    let applicant = &applicants[index];
    match what.as_str() {
        "one" => Json(applicant).into_response(),
        "status" => match &applicant.review {
            Some(review) => Json(review).into_response(),
            None => Json(serde_json::json!({ "reviewStatus": "init" })).into_response(),
        },
        _ => Json(population::required_docs_status(applicant)).into_response(),
    }
}

/// What a review change does: a completed review with this result, or a new pending one.
enum Change {
    Completed(ReviewResult),
    Pending,
}

/// Checks a test review the way Sumsub's sandbox would have it: GREEN alone, or RED with a reject type and labels.
fn review_result(input: TestCompletedWire) -> Result<ReviewResult, String> {
    let label_ok = |l: &String| {
        !l.is_empty()
            && l.len() <= MAX_LABEL_LEN
            && l.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    match (input.review_answer.as_str(), input.review_reject_type.as_deref()) {
        ("GREEN", None) if input.reject_labels.is_empty() => {}
        ("GREEN", _) => return Err("a GREEN answer takes no rejectLabels or reviewRejectType".into()),
        ("RED", Some("FINAL" | "RETRY")) if !input.reject_labels.is_empty() => {}
        ("RED", _) => return Err("a RED answer needs rejectLabels and a reviewRejectType, FINAL or RETRY".into()),
        _ => return Err("reviewAnswer must be GREEN or RED".into()),
    }
    if input.reject_labels.len() > MAX_LABELS || !input.reject_labels.iter().all(label_ok) {
        return Err(format!(
            "rejectLabels: at most {MAX_LABELS} labels of A-Z, 0-9 and _, at most {MAX_LABEL_LEN} long"
        ));
    }
    let comments = [&input.moderation_comment, &input.client_comment];
    if comments.iter().any(|c| c.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT_LEN)) {
        return Err(format!("comments are at most {MAX_COMMENT_LEN} characters"));
    }
    Ok(ReviewResult {
        review_answer: Some(input.review_answer),
        reject_labels: input.reject_labels,
        review_reject_type: input.review_reject_type,
        moderation_comment: input.moderation_comment,
        client_comment: input.client_comment,
        button_ids: Vec::new(),
    })
}

/// Applies `change` to the applicant at `index`, then sends its webhook; answers the new review.
fn apply(s: &SandboxState, index: usize, change: Change) -> ApplicantReview {
    let now = time::OffsetDateTime::now_utc();
    let (review, webhook) = {
        let mut applicants = s.applicants.write().expect("applicants lock");
        let applicant = &mut applicants[index];
        let review = applicant.review.get_or_insert_with(|| ApplicantReview {
            review_id: Some(format!("rev{}", &random_token()[..8])),
            attempt_id: Some(format!("att{}", &random_token()[..8])),
            attempt_cnt: Some(1),
            level_name: Some(population::LEVELS[0].into()),
            create_date: Some(applicant.created_at.clone()),
            review_date: None,
            elapsed_since_pending_ms: None,
            review_result: None,
            review_status: "init".into(),
            priority: Some(0),
        });
        let kind = match change {
            Change::Completed(result) => {
                review.review_status = "completed".into();
                review.review_result = Some(result);
                let date = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
                review.review_date = Some(now.format(date).expect("a date formats"));
                "applicantReviewed"
            }
            Change::Pending => {
                // After a completed review the applicant resubmits: a new attempt begins.
                if review.review_status == "completed" {
                    review.attempt_cnt = Some(review.attempt_cnt.unwrap_or(0) + 1);
                    review.attempt_id = Some(format!("att{}", &random_token()[..8]));
                }
                review.review_status = "pending".into();
                review.review_result = None;
                review.review_date = None;
                "applicantPending"
            }
        };
        let created_at = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]");
        let webhook = WebhookWire {
            applicant_id: applicant.id.clone(),
            inspection_id: applicant.inspection_id.clone(),
            correlation_id: format!("req-{}", random_uuid()),
            external_user_id: applicant.external_user_id.clone(),
            level_name: review.level_name.clone(),
            kind: kind.into(),
            review_result: review.review_result.clone(),
            review_status: review.review_status.clone(),
            created_at_ms: now.format(created_at).expect("a date formats"),
            sandbox_mode: true,
        };
        (review.clone(), webhook)
    };
    let body = serde_json::to_vec(&webhook).expect("plain data serialises");
    let alg = s.webhooks.settings().sumsub_digest_alg;
    let secret = s.webhook_secret.clone();
    s.webhooks.send(WebhookEvent::new(body, move |body| {
        let (alg, digest) = webhook_digest(&alg, secret.expose_secret().as_bytes(), body);
        vec![("X-Payload-Digest", digest), ("X-Payload-Digest-Alg", alg.into())]
    }));
    review
}

/// Sumsub's webhook digest: the lowercase hex HMAC of the raw body under the webhook secret, with the algorithm
/// chosen in its dashboard (`HMAC_SHA1_HEX`, `HMAC_SHA256_HEX` or `HMAC_SHA512_HEX`); answers the algorithm used,
/// SHA-256 for a name it does not know (configuration refuses those; a hand-built setting may not).
pub fn webhook_digest(alg: &str, secret: &[u8], body: &[u8]) -> (&'static str, String) {
    let (name, algorithm) = match alg {
        "HMAC_SHA1_HEX" => ("HMAC_SHA1_HEX", ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        "HMAC_SHA512_HEX" => ("HMAC_SHA512_HEX", ring::hmac::HMAC_SHA512),
        _ => ("HMAC_SHA256_HEX", ring::hmac::HMAC_SHA256),
    };
    (name, hex(ring::hmac::sign(&ring::hmac::Key::new(algorithm, secret), body).as_ref()))
}

/// `POST /resources/applicants/{id}/status/testCompleted` and `.../status/pending`: Sumsub's sandbox-only review
/// changes, signed like every request. Both answer `{"ok": 1}`, as Sumsub does.
async fn change_status(
    State(s): State<Arc<SandboxState>>,
    Path((id, change)): Path<(String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let counter = match change.as_str() {
        "testCompleted" => "test_completed",
        "pending" => "status_pending",
        _ => return not_found().await,
    };
    s.counters.bump(counter);
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), "The request body is too large or unreadable"),
    };
    if let Err(response) = admit(&s, &method, &uri, &headers, &body) {
        return response;
    }
    let Some(index) = find(&s, &id) else {
        s.counters.bump("not_found");
        return error(StatusCode::NOT_FOUND, "Applicant not found");
    };
    let change = if change == "pending" {
        Change::Pending
    } else {
        match admin_json::<TestCompletedWire>(Ok(body))
            .and_then(|i| review_result(i).map_err(|e| (StatusCode::BAD_REQUEST, e)))
        {
            Ok(result) => Change::Completed(result),
            Err((status, message)) => return error(status, &message),
        }
    };
    apply(&s, index, change);
    Json(serde_json::json!({ "ok": 1 })).into_response()
}

/// `POST /_sandbox/applicants/{externalUserId}/review`: `testCompleted` for scripts, unsigned and by the gateway's
/// user id; answers the applicant's new review.
async fn sandbox_review(
    State(s): State<Arc<SandboxState>>,
    Path(external_user_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    s.counters.bump("sandbox_review");
    let result = match admin_json::<TestCompletedWire>(body)
        .and_then(|i| review_result(i).map_err(|e| (StatusCode::BAD_REQUEST, e)))
    {
        Ok(result) => result,
        Err((status, message)) => return error(status, &message),
    };
    let Some(&index) = s.by_external.get(&external_user_id) else {
        s.counters.bump("not_found");
        return error(StatusCode::NOT_FOUND, "No applicant has this externalUserId");
    };
    Json(apply(&s, index, Change::Completed(result))).into_response()
}

/// Starts this provider for the registry (`registry.rs`).
pub fn start<'a>(settings: &'a SandboxSettings, users: &'a [String]) -> crate::registry::Started<'a> {
    crate::registry::started(SumsubSandbox::start(settings, users))
}

impl crate::Sandbox {
    /// The sandbox Sumsub.
    pub fn sumsub(&self) -> &SumsubSandbox {
        self.get()
    }
}

impl crate::SandboxProvider for SumsubSandbox {
    fn name(&self) -> &'static str {
        "sumsub"
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
            Variable::new("KYC_GATEWAY_SUMSUB_BASE_URL", self.base_url()),
            Variable::new("KYC_GATEWAY_SUMSUB_APP_TOKEN", self.app_token().expose_secret()),
            Variable::new("KYC_GATEWAY_SUMSUB_SECRET_KEY", self.secret_key().expose_secret()),
            Variable::append("KYC_GATEWAY_SUMSUB_WEBHOOK_SECRETS", self.webhook_secret().expose_secret(), ","),
            Variable::append("KYC_GATEWAY_SUMSUB_LEVELS", population::LEVEL_ITEMS, "; "),
        ]
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{json, Value};

    use super::population::{GREEN_APPLICANT, RED_FINAL_APPLICANT};
    use super::*;
    use crate::settings::SandboxWebhookSettings;
    use crate::webhooks::receiver::{hmac_hex, quick_settings, settle, Receiver};

    fn users() -> Vec<String> {
        (0..12).map(|i| format!("user-{i}")).collect()
    }

    async fn start(settings: &SandboxSettings) -> (SumsubSandbox, Receiver) {
        let receiver = Receiver::start(0).await;
        let sandbox = SumsubSandbox::start(settings, &users()).await.expect("sandbox");
        sandbox.webhooks().set_targets(vec![format!("{}/webhooks/sumsub", receiver.url())]);
        (sandbox, receiver)
    }

    /// A request signed as Sumsub documents it, computed here.
    async fn signed(sandbox: &SumsubSandbox, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let ts = crate::support::unix_seconds().to_string();
        let message = format!("{ts}{}{path}{body}", method.as_str());
        let signature = hmac_hex(ring::hmac::HMAC_SHA256, sandbox.secret_key().expose_secret(), message.as_bytes());
        let answer = reqwest::Client::new()
            .request(method, format!("{}{path}", sandbox.base_url()))
            .header("X-App-Token", sandbox.app_token().expose_secret())
            .header("X-App-Access-Ts", ts)
            .header("X-App-Access-Sig", signature)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("answer");
        (answer.status(), answer.json().await.expect("json"))
    }

    #[tokio::test]
    async fn test_completed_changes_the_review_and_sends_a_signed_applicant_reviewed_webhook() {
        let (sandbox, receiver) = start(&quick_settings()).await;
        let path = format!("/resources/applicants/{RED_FINAL_APPLICANT}/status/testCompleted");
        let body = r#"{"reviewAnswer":"GREEN","rejectLabels":[]}"#;
        assert_eq!(signed(&sandbox, Method::POST, &path, body).await, (StatusCode::OK, json!({ "ok": 1 })));
        settle(sandbox.webhooks()).await;

        let received = receiver.wait_for(1).await;
        assert_eq!(received.len(), 1);
        let hook = &received[0];
        assert_eq!(hook.path, "/webhooks/sumsub");
        assert_eq!(hook.header("x-payload-digest-alg"), "HMAC_SHA256_HEX");
        let digest = hmac_hex(ring::hmac::HMAC_SHA256, sandbox.webhook_secret().expose_secret(), &hook.body);
        assert_eq!(hook.header("x-payload-digest"), digest);
        let payload = hook.json();
        let keys: BTreeSet<&str> = payload.as_object().expect("an object").keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = [
            "applicantId",
            "inspectionId",
            "correlationId",
            "externalUserId",
            "levelName",
            "type",
            "reviewResult",
            "reviewStatus",
            "createdAtMs",
            "sandboxMode",
        ]
        .into();
        assert_eq!(keys, expected);
        assert_eq!(payload["applicantId"], RED_FINAL_APPLICANT);
        assert_eq!(payload["inspectionId"], "5cb744200a975a67ed1798a5");
        assert_eq!(payload["externalUserId"], "user-0");
        assert_eq!(payload["levelName"], "basic-kyc-level");
        assert_eq!(payload["type"], "applicantReviewed");
        assert_eq!(payload["reviewResult"], json!({ "reviewAnswer": "GREEN" }));
        assert_eq!(payload["reviewStatus"], "completed");
        assert_eq!(payload["sandboxMode"], true);
        let correlation = payload["correlationId"].as_str().expect("a correlation id");
        assert!(correlation.starts_with("req-") && correlation.len() == 40, "{correlation}");
        let created = payload["createdAtMs"].as_str().expect("createdAtMs");
        assert_eq!((created.len(), &created[10..11], &created[19..20]), (23, " ", "."), "{created}");

        let status_path = format!("/resources/applicants/{RED_FINAL_APPLICANT}/status");
        let (status, review) = signed(&sandbox, Method::GET, &status_path, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(review["reviewStatus"], "completed");
        assert_eq!(review["reviewResult"], json!({ "reviewAnswer": "GREEN" }));
        assert_eq!(review["reviewDate"].as_str().map(|d| &d[..10]), Some(&created[..10]));
        let one = sandbox.applicant_of("user-0").expect("the applicant");
        assert_eq!(
            one.review.expect("a review").review_result.expect("a result").review_answer.as_deref(),
            Some("GREEN")
        );
        assert_eq!(sandbox.counts().get("test_completed"), 1);
    }

    #[tokio::test]
    async fn pending_starts_a_new_attempt_and_sends_applicant_pending() {
        let (sandbox, receiver) = start(&quick_settings()).await;
        let path = format!("/resources/applicants/{GREEN_APPLICANT}/status/pending");
        assert_eq!(signed(&sandbox, Method::POST, &path, "").await.0, StatusCode::OK);
        settle(sandbox.webhooks()).await;
        let payload = receiver.wait_for(1).await[0].json();
        assert_eq!((&payload["type"], &payload["reviewStatus"]), (&json!("applicantPending"), &json!("pending")));
        assert!(payload.get("reviewResult").is_none());
        let review = sandbox.applicant_of("user-2").expect("the applicant").review.expect("a review");
        assert_eq!((review.review_status.as_str(), review.attempt_cnt), ("pending", Some(2)));
        assert!(review.review_result.is_none() && review.review_date.is_none());
    }

    #[tokio::test]
    async fn test_completed_is_signed_like_every_request_and_checks_its_body() {
        let (sandbox, _receiver) = start(&quick_settings()).await;
        let path = format!("/resources/applicants/{RED_FINAL_APPLICANT}/status/testCompleted");
        let unsigned = reqwest::Client::new()
            .post(format!("{}{path}", sandbox.base_url()))
            .body(r#"{"reviewAnswer":"GREEN"}"#)
            .send()
            .await
            .expect("answer");
        assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
        for body in [
            r#"{"reviewAnswer":"AMBER"}"#,
            r#"{"reviewAnswer":"RED","rejectLabels":["FORGERY"]}"#,
            r#"{"reviewAnswer":"GREEN","reviewRejectType":"FINAL"}"#,
            r#"{"reviewAnswer":"RED","reviewRejectType":"RETRY","rejectLabels":["not a label"]}"#,
            r#"{"reviewAnswer":"GREEN","colour":"green"}"#,
            "not json",
        ] {
            let (status, error) = signed(&sandbox, Method::POST, &path, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(error["description"].is_string() && error["code"] == 400, "{error}");
        }
        let unknown = "/resources/applicants/000000000000000000000000/status/testCompleted";
        let (status, _) = signed(&sandbox, Method::POST, unknown, r#"{"reviewAnswer":"GREEN"}"#).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(sandbox.webhooks().counts().sent, 0);
    }

    #[tokio::test]
    async fn the_sandbox_review_route_needs_no_signature_and_honours_the_digest_algorithm() {
        let mut settings = quick_settings();
        settings.webhooks = SandboxWebhookSettings { sumsub_digest_alg: "HMAC_SHA512_HEX".into(), ..settings.webhooks };
        let (sandbox, receiver) = start(&settings).await;
        let http = reqwest::Client::new();
        let review = json!({
            "reviewAnswer": "RED", "rejectLabels": ["BAD_SELFIE"], "reviewRejectType": "RETRY",
            "moderationComment": "Please retake your selfie.", "clientComment": "Blurred."
        });
        let url = |user: &str| format!("{}/_sandbox/applicants/{user}/review", sandbox.base_url());
        let answer: Value =
            http.post(url("user-2")).json(&review).send().await.expect("answer").json().await.expect("json");
        assert_eq!(
            (&answer["reviewStatus"], &answer["reviewResult"]["reviewRejectType"]),
            (&json!("completed"), &json!("RETRY"))
        );
        settle(sandbox.webhooks()).await;
        let hook = &receiver.wait_for(1).await[0];
        assert_eq!(hook.header("x-payload-digest-alg"), "HMAC_SHA512_HEX");
        let digest = hmac_hex(ring::hmac::HMAC_SHA512, sandbox.webhook_secret().expose_secret(), &hook.body);
        assert_eq!(hook.header("x-payload-digest"), digest);
        assert_eq!(hook.json()["reviewResult"]["rejectLabels"], json!(["BAD_SELFIE"]));
        assert_eq!(hook.json()["externalUserId"], "user-2");

        let missing = http.post(url("nobody")).json(&review).send().await.expect("answer");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let error: Value = missing.json().await.expect("a JSON error");
        assert_eq!(error["code"], 404);
        assert_eq!(sandbox.counts().get("sandbox_review"), 2);
    }

    #[test]
    fn every_digest_algorithm_is_the_hex_hmac_of_the_body() {
        for (alg, algorithm) in [
            ("HMAC_SHA1_HEX", ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            ("HMAC_SHA256_HEX", ring::hmac::HMAC_SHA256),
            ("HMAC_SHA512_HEX", ring::hmac::HMAC_SHA512),
        ] {
            assert_eq!(webhook_digest(alg, b"secret", b"{}"), (alg, hmac_hex(algorithm, "secret", b"{}")));
        }
        assert_eq!(webhook_digest("HMAC_MD5_HEX", b"s", b"{}").0, "HMAC_SHA256_HEX");
    }
}
