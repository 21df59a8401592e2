//! The sandbox Sumsub: signed requests checked like the real service (`X-App-Token`, `X-App-Access-Ts` within one
//! minute, `X-App-Access-Sig` compared in constant time), applicants by id and by `externalUserId`, `/status`,
//! `/requiredIdDocsStatus`, 404 for unknown applicants and 429 past the documented rate limit.

pub mod population;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::faults::FaultInjector;
use super::support::{same_secret, serve, Counters, Counts, RateLimit};
use crate::config::SandboxSettings;
use crate::secret::{random_token, Secret};
use wire::{Applicant, ErrorBody};

const COUNTERS: [&str; 7] =
    ["applicant", "applicant_by_external_id", "status", "required_docs", "unauthorized", "not_found", "rate_limited"];

struct SandboxState {
    applicants: Vec<Applicant>,
    by_id: HashMap<String, usize>,
    by_external: HashMap<String, usize>,
    app_token: Secret,
    secret_key: Secret,
    get_limit: RateLimit,
    post_limit: RateLimit,
    counters: Counters,
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
        let state = Arc::new(SandboxState {
            applicants,
            by_id,
            by_external,
            app_token: Secret::new(format!("sbx:{}", random_token())),
            secret_key: Secret::new(random_token()),
            get_limit: RateLimit::new(settings.sumsub_get_limit, settings.sumsub_window),
            post_limit: RateLimit::new(settings.sumsub_post_limit, settings.sumsub_window),
            counters: Counters::new(&COUNTERS),
        });
        let router = Router::new()
            .route("/resources/applicants/{id}/{what}", get(applicant))
            .fallback(not_found)
            .with_state(state.clone());
        let faults = FaultInjector::new(settings.faults.sumsub.clone(), settings.seed ^ 0xfa17);
        Ok(SumsubSandbox { base_url: serve("sumsub", router, faults.clone()).await?, state, faults })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn app_token(&self) -> Secret {
        self.state.app_token.clone()
    }

    pub fn secret_key(&self) -> Secret {
        self.state.secret_key.clone()
    }

    /// The applicant of a gateway user, if any.
    pub fn applicant_of(&self, user_id: &str) -> Option<&Applicant> {
        self.state.by_external.get(user_id).map(|&i| &self.state.applicants[i])
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
    if !same_secret(header("X-App-Token").as_bytes(), s.app_token.expose().as_bytes()) {
        return refuse("App token is missing or unknown");
    }
    let ts = header("X-App-Access-Ts");
    match ts.parse::<i64>() {
        Ok(t) if (crate::clock::unix_seconds() - t).abs() <= 60 => {}
        _ => return refuse("Request timestamp is missing or more than a minute off"),
    }
    let path_and_query = uri.0.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s.secret_key.expose().as_bytes());
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

/// The applicant a path names: its id, or `-;externalUserId=<id>`.
fn find<'a>(s: &'a SandboxState, id: &str) -> Option<&'a Applicant> {
    let index = match id.strip_prefix("-;externalUserId=") {
        Some(external) => s.by_external.get(external),
        None => s.by_id.get(id),
    };
    index.map(|&i| &s.applicants[i])
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
    let Some(applicant) = find(&s, &id) else {
        s.counters.bump("not_found");
        return error(StatusCode::NOT_FOUND, "Applicant not found");
    };
    match what.as_str() {
        "one" => Json(applicant).into_response(),
        "status" => match &applicant.review {
            Some(review) => Json(review).into_response(),
            None => Json(serde_json::json!({ "reviewStatus": "init" })).into_response(),
        },
        _ => Json(population::required_docs_status(applicant)).into_response(),
    }
}
