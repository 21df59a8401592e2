//! The sandbox ident: bearer-JWT `GET/POST /api/v1/kyc_applications` (newest first, `?status=`, `page`/`rpp` with
//! `x-total-results-count`), `GET/PUT /api/v1/kyc_applications/:id` (PUT needs `status` and an application token)
//! and `GET /api/v1/users/:id/kyc_applications`.
//!
//! The real ident signs its tokens with RS256; the sandbox is both issuer and verifier, so it signs with HS256 and a
//! secret of its own. The gateway treats the token as opaque either way. The sandbox hosts one organization: an
//! application token sees every record, a user token only that user's.

pub mod population;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::faults::FaultInjector;
use super::support::{serve, Counters, Counts};
use crate::config::SandboxSettings;
use crate::secret::{random_token, Secret};
use wire::{CreateWire, KycApplicationWire, MessageWire, UpdateWire};

const ISSUER: &str = "https://ident.provide.services";
const COUNTERS: [&str; 6] = ["list", "create", "get", "put", "user_list", "unauthorized"];

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
    key: Secret,
    counters: Counters,
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
        let state = Arc::new(SandboxState {
            records: RwLock::new(population::generate(users, settings.seed)),
            key: Secret::new(random_token()),
            counters: Counters::new(&COUNTERS),
        });
        let router = Router::new()
            .route("/api/v1/kyc_applications", get(list).post(create))
            .route("/api/v1/kyc_applications/{id}", get(read).put(update))
            .route("/api/v1/users/{id}/kyc_applications", get(user_list))
            .with_state(state.clone());
        let faults = FaultInjector::new(settings.faults.ident.clone(), settings.seed ^ 0xfa17);
        Ok(IdentSandbox { base_url: serve("ident", router, faults.clone()).await?, state, faults })
    }

    /// The API root, `http://127.0.0.1:PORT/api/v1`.
    pub fn base_url(&self) -> String {
        format!("{}/api/v1", self.base_url)
    }

    fn mint(&self, sub: String, prvd: Prvd) -> Secret {
        let now = crate::clock::unix_seconds();
        let claims = Claims { iss: ISSUER.into(), sub, exp: now + 365 * 24 * 3600, iat: now, prvd };
        let key = EncodingKey::from_secret(self.state.key.expose().as_bytes());
        Secret::new(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("plain claims sign"))
    }

    /// An application-scoped token for the gateway's application.
    pub fn application_token(&self) -> Secret {
        let app = population::GATEWAY_APPLICATION;
        self.mint(
            format!("application:{app}"),
            Prvd { application_id: Some(app.into()), user_id: None, permissions: 7 },
        )
    }

    /// A user-scoped token (may read that user's applications; may not update any).
    pub fn user_token(&self, user_id: &str) -> Secret {
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
    let key = DecodingKey::from_secret(s.key.expose().as_bytes());
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
    let status = serde_json::from_slice::<UpdateWire>(&body).ok().and_then(|u| u.status);
    let Some(status) = status else {
        return message(StatusCode::BAD_REQUEST, "kyc application update must include status");
    };
    if !population::STATUSES.contains(&status.as_str()) {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "invalid status");
    }
    // Like the real service, any status is accepted here; the gateway enforces the transition table.
    let mut records = s.records.write().expect("records lock");
    match records.iter_mut().find(|r| r.id == id) {
        Some(record) => {
            record.status = status;
            (StatusCode::ACCEPTED, Json(record.clone())).into_response()
        }
        None => message(StatusCode::NOT_FOUND, "kyc application not found"),
    }
}
