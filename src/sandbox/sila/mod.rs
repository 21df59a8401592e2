//! The sandbox Sila: `POST /0.2/auth_token` (Basic client credentials -> an 8-hour bearer token, the same token again
//! while more than 30 minutes are left), `POST /0.2/get_verifications` and `/0.2/get_verifications/<uuid>`, with
//! Sila's `header` checks (`created` neither in the future nor older than 5 minutes, the app handle, the version) and
//! 403 for a user handle the app does not know.

pub mod population;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;

use super::faults::FaultInjector;
use super::support::{same_secret, serve, Counters, Counts};
use crate::config::SandboxSettings;
use crate::secret::{random_token, Secret};
use population::Entity;
use wire::{AccessToken, AuthTokenResponse, Failure, HeaderOnly, VerificationsResponse};

const COUNTERS: [&str; 5] = ["auth_token", "get_verifications", "get_verification", "unauthorized", "refused"];

struct SandboxState {
    entities: HashMap<String, Entity>,
    app_handle: String,
    client_id: String,
    client_secret: Secret,
    token_ttl: Duration,
    /// Bearer token -> unix second it expires.
    tokens: Mutex<HashMap<String, i64>>,
    counters: Counters,
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
        let state = Arc::new(SandboxState {
            entities,
            app_handle: "kyc-gateway-sandbox.silamoney.eth".into(),
            client_id: "kyc-gateway-sandbox".into(),
            client_secret: Secret::new(random_token()),
            token_ttl: settings.sila_token_ttl,
            tokens: Mutex::new(HashMap::new()),
            counters: Counters::new(&COUNTERS),
        });
        let router = Router::new()
            .route("/0.2/auth_token", post(auth_token))
            .route("/0.2/get_verifications", post(get_verifications))
            .route("/0.2/get_verifications/{uuid}", post(get_verification))
            .with_state(state.clone());
        let faults = FaultInjector::new(settings.faults.sila.clone(), settings.seed ^ 0xfa17);
        Ok(SilaSandbox { base_url: serve("sila", router, faults.clone()).await?, state, faults })
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

    pub fn client_secret(&self) -> Secret {
        self.state.client_secret.clone()
    }

    /// The entity behind a user handle, if any.
    pub fn entity(&self, user_handle: &str) -> Option<&Entity> {
        self.state.entities.get(user_handle)
    }

    pub fn entities(&self) -> impl Iterator<Item = &Entity> {
        self.state.entities.values()
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
    let now = crate::clock::unix_seconds();
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
    let expected = format!("{}:{}", s.client_id, s.client_secret.expose());
    if !basic.is_some_and(|b| same_secret(b.as_bytes(), expected.as_bytes())) {
        return failure(&s, StatusCode::UNAUTHORIZED, "Invalid client credentials.");
    }
    if let Err(response) = header_of(&s, &body) {
        return response;
    }
    let now = crate::clock::unix_seconds();
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

/// The bearer check, then the header check; answers the user handle's entity.
fn authorize<'a>(s: &'a SandboxState, headers: &HeaderMap, body: &[u8]) -> Result<&'a Entity, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let valid = bearer
        .and_then(|t| s.tokens.lock().expect("token lock").get(&t).copied())
        .is_some_and(|exp| exp > crate::clock::unix_seconds());
    if !valid {
        return Err(failure(s, StatusCode::UNAUTHORIZED, "Invalid or expired access token."));
    }
    let header = header_of(s, body)?;
    let handle = header.user_handle.unwrap_or_default();
    s.entities.get(&handle).ok_or_else(|| {
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
