//! The sandbox Fractal ID: a real HTTP server speaking Fractal's token and resource API on loopback.
//!
//! Routes: `GET /authorize` (a page to approve or deny as a sandbox user; with an extra `uid` parameter the user
//! decides at once, `decision=deny` refusing), `POST /authorize` (the page's answer), `POST /oauth/token`
//! (authorization_code, refresh_token with rotation, client_credentials; parameters in the form body or the query
//! string), `GET /v2/users/me`, and `GET /v2/stats/{total,country,user}-verifications`. Requests are counted.

pub mod population;
mod tokens;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub use population::{Population, SandboxUser, SEED_PERSON_UID};
use tokens::{Issued, Owner, TokenStore};

use super::faults::FaultInjector;
use super::support::{same_secret, serve, Counters, Counts};
use crate::auth::Scopes;
use crate::authz::STATS_READ;
use crate::config::SandboxSettings;
use crate::secret::random_token;
use crate::secret::Secret;
use wire::{OAuthError, TokenResponse, UserVerificationWire};

/// Every scope a sandbox user grants when linking: the gateway then decides per caller what to show.
pub use crate::authz::all_user_scopes;

const COUNTERS: [&str; 10] = [
    "authorize",
    "token_authorization_code",
    "token_refresh",
    "token_client_credentials",
    "token_refused",
    "users_me",
    "stats_total",
    "stats_country",
    "stats_users",
    "resource_refused",
];

struct SandboxState {
    population: Population,
    client_id: String,
    client_secret: Secret,
    tokens: Mutex<TokenStore>,
    counters: Counters,
    /// The statistics never change: serialised once.
    stats_total: Bytes,
    stats_country: Bytes,
    stats_users: Bytes,
}

/// A running sandbox Fractal.
#[derive(Clone)]
pub struct FractalSandbox {
    base_url: String,
    state: Arc<SandboxState>,
    faults: Arc<FaultInjector>,
}

impl FractalSandbox {
    /// The faults injected into this sandbox, and its request count.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Binds `127.0.0.1:0` and serves until the runtime stops.
    pub async fn start(settings: &SandboxSettings) -> std::io::Result<Self> {
        let population = Population::generate(settings.users, settings.seed);
        let (stats_total, stats_country, stats_users) = stats(&population);
        let state = Arc::new(SandboxState {
            population,
            client_id: "kyc-gateway-sandbox".into(),
            client_secret: Secret::new(random_token()),
            tokens: Mutex::new(TokenStore::new(settings.fractal_token_ttl)),
            counters: Counters::new(&COUNTERS),
            stats_total,
            stats_country,
            stats_users,
        });
        let router = Router::new()
            .route("/authorize", get(authorize).post(authorize_decision))
            .route("/oauth/token", post(token))
            .route("/v2/users/me", get(users_me))
            .route("/v2/stats/total-verifications", get(stats_total_handler))
            .route("/v2/stats/country-verifications", get(stats_country_handler))
            .route("/v2/stats/user-verifications", get(stats_users_handler))
            .with_state(state.clone());
        let faults = FaultInjector::new(settings.faults.fractal.clone(), settings.seed ^ 0xfa17);
        Ok(FractalSandbox { base_url: serve("fractal", router, faults.clone()).await?, state, faults })
    }

    /// Base URL of both the token and the resource API.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    pub fn client_secret(&self) -> Secret {
        self.state.client_secret.clone()
    }

    pub fn population(&self) -> &Population {
        &self.state.population
    }

    /// A refresh token for `uid` with every user scope, as if the user had just linked Fractal.
    pub fn link_user(&self, uid: &str) -> Secret {
        Secret::new(self.tokens().grant_refresh(uid, &all_user_scopes()))
    }

    pub fn counts(&self) -> Counts {
        self.state.counters.snapshot()
    }

    /// Expires every access token now, as if two hours had passed.
    pub fn expire_access_tokens(&self) {
        self.tokens().expire_access_tokens();
    }

    /// Whether the sandbox would still accept `refresh_token`.
    pub fn refresh_token_is_valid(&self, refresh_token: &Secret) -> bool {
        self.tokens().refresh_is_valid(refresh_token.expose())
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, TokenStore> {
        self.state.tokens.lock().expect("sandbox token store poisoned")
    }
}

fn stats(population: &Population) -> (Bytes, Bytes, Bytes) {
    let mut total: BTreeMap<&str, u64> = BTreeMap::new();
    let mut country: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut users = Vec::new();
    for user in &population.users {
        for case in &user.cases {
            let status = case.stats_status();
            *total.entry(status).or_default() += 1;
            *country.entry(user.country).or_default().entry(status).or_default() += 1;
            users.push(UserVerificationWire {
                user_id: user.uid.clone(),
                level: case.wire.level.clone(),
                credential: status.into(),
            });
        }
    }
    (json(&total), json(&country), json(&users))
}

fn json<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("plain data serialises"))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = OAuthError { error: error.into(), error_description: Some(description.into()) };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let value = format!("Bearer error=\"{error}\"");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value.parse().expect("ASCII header value"));
    }
    response
}

fn params(query: Option<String>, body: &[u8]) -> HashMap<String, String> {
    let mut out: HashMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    if let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
        out.extend(form);
    }
    out
}

/// Escapes text for an HTML attribute or body.
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// `GET /authorize`: Fractal's authorize page. With a `uid` parameter (scripts and tests) the sandbox user of that uid
/// decides at once (`decision=deny` refuses; an unknown uid refuses too); without one, a page asks which sandbox user
/// signs in and whether they approve, and posts the answer to `POST /authorize`.
async fn authorize(State(s): State<Arc<SandboxState>>, RawQuery(query): RawQuery) -> Response {
    s.counters.bump("authorize");
    let p = params(query, &[]);
    if let Err(response) = check_authorize(&s, &p) {
        return response;
    }
    if p.contains_key("uid") {
        return decide(&s, &p);
    }
    let hidden: String = ["client_id", "redirect_uri", "response_type", "scope", "state"]
        .iter()
        .map(|k| {
            let value = p.get(*k).map(String::as_str).unwrap_or("");
            format!(r#"<input type="hidden" name="{k}" value="{}">"#, html(value))
        })
        .collect();
    let scope = p.get("scope").map(String::as_str).unwrap_or("uid:read");
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Sandbox Fractal: authorize</title></head>
<body><h1>Sandbox Fractal</h1><p>An application asks to read: <code>{}</code></p>
<form method="post" action="/authorize">{hidden}
<label>Sign in as the sandbox user <input name="uid" value="{SEED_PERSON_UID}" size="40"></label>
<p><button name="decision" value="approve">Approve</button> <button name="decision" value="deny">Deny</button></p>
</form></body></html>"#,
        html(scope)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// `POST /authorize`: the page's answer.
async fn authorize_decision(State(s): State<Arc<SandboxState>>, body: Bytes) -> Response {
    let p = params(None, &body);
    if let Err(response) = check_authorize(&s, &p) {
        return response;
    }
    decide(&s, &p)
}

fn check_authorize(s: &SandboxState, p: &HashMap<String, String>) -> Result<(), Response> {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != s.client_id || get("response_type") != "code" || get("redirect_uri").is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id, response_type=code and redirect_uri are required",
        ));
    }
    if get("state").is_empty() {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "state is required"));
    }
    Ok(())
}

/// Redirects back with a code, or with `error=access_denied` when the user denies or is no sandbox user.
fn decide(s: &SandboxState, p: &HashMap<String, String>) -> Response {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let redirect = get("redirect_uri");
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let approved = get("decision") != "deny" && s.population.get(get("uid")).is_some();
    let location = if !approved {
        let q = serde_urlencoded::to_string([
            ("error", "access_denied"),
            ("error_description", "the user refused"),
            ("state", get("state")),
        ])
        .expect("strings encode");
        format!("{redirect}{sep}{q}")
    } else {
        let scope = if get("scope").is_empty() { "uid:read" } else { get("scope") };
        let code = s.tokens.lock().expect("token store").grant_code(get("uid"), scope, &s.client_id, redirect);
        let q =
            serde_urlencoded::to_string([("code", code.as_str()), ("state", get("state"))]).expect("strings encode");
        format!("{redirect}{sep}{q}")
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn token_response(issued: Issued, token_type: &str, ttl: Duration) -> Response {
    let created_at = crate::clock::unix_seconds().max(0) as u64;
    Json(TokenResponse {
        access_token: issued.access_token,
        token_type: token_type.into(),
        expires_in: ttl.as_secs().max(1),
        refresh_token: issued.refresh_token,
        scope: issued.scope,
        created_at,
    })
    .into_response()
}

async fn token(State(s): State<Arc<SandboxState>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let p = params(query, &body);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != s.client_id
        || !same_secret(get("client_secret").as_bytes(), s.client_secret.expose().as_bytes())
    {
        s.counters.bump("token_refused");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret");
    }
    let mut store = s.tokens.lock().expect("token store");
    let ttl = store.access_ttl();
    match get("grant_type") {
        "authorization_code" => {
            s.counters.bump("token_authorization_code");
            match store.exchange_code(get("code"), get("client_id"), get("redirect_uri")) {
                Some(issued) => token_response(issued, "bearer", ttl),
                None => refused(&s, "invalid_grant", "unknown, used or expired code, or another redirect_uri"),
            }
        }
        "refresh_token" => {
            s.counters.bump("token_refresh");
            match store.refresh(get("refresh_token")) {
                Some(issued) => token_response(issued, "bearer", ttl),
                None => refused(&s, "invalid_grant", "unknown or revoked refresh token"),
            }
        }
        "client_credentials" => {
            s.counters.bump("token_client_credentials");
            let scope = if get("scope").is_empty() { STATS_READ } else { get("scope") };
            if scope.split_whitespace().any(|sc| sc != STATS_READ) {
                return refused(&s, "invalid_scope", "client credentials grant only client.stats:read");
            }
            token_response(store.issue_client(&s.client_id, scope), "Bearer", ttl)
        }
        _ => refused(&s, "unsupported_grant_type", "use authorization_code, refresh_token or client_credentials"),
    }
}

fn refused(s: &SandboxState, error: &str, description: &str) -> Response {
    s.counters.bump("token_refused");
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

/// The bearer token's owner and scopes; `None` is Fractal's 401 (see [`invalid_token`]).
fn bearer(s: &SandboxState, headers: &HeaderMap) -> Option<(Owner, Scopes)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())?;
    let found = s.tokens.lock().expect("token store").use_access(&token)?;
    Some((found.owner, Scopes::parse(&found.scope)))
}

fn invalid_token(s: &SandboxState) -> Response {
    s.counters.bump("resource_refused");
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "missing, unknown or expired access token")
}

async fn users_me(State(s): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    s.counters.bump("users_me");
    let Some((owner, scopes)) = bearer(&s, &headers) else {
        return invalid_token(&s);
    };
    let Owner::User(uid) = owner else {
        s.counters.bump("resource_refused");
        return oauth_error(StatusCode::FORBIDDEN, "insufficient_scope", "a user token is required");
    };
    match s.population.get(&uid) {
        Some(user) => Json(Population::render_me(user, &scopes)).into_response(),
        None => oauth_error(StatusCode::NOT_FOUND, "not_found", "user not found"),
    }
}

fn stats_answer(s: &SandboxState, headers: &HeaderMap, body: &Bytes) -> Response {
    match bearer(s, headers) {
        None => invalid_token(s),
        Some((_, scopes)) if !scopes.has(STATS_READ) => {
            s.counters.bump("resource_refused");
            oauth_error(StatusCode::FORBIDDEN, "insufficient_scope", "client.stats:read is required")
        }
        Some(_) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
    }
}

async fn stats_total_handler(State(s): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    s.counters.bump("stats_total");
    stats_answer(&s, &headers, &s.stats_total)
}

async fn stats_country_handler(State(s): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    s.counters.bump("stats_country");
    stats_answer(&s, &headers, &s.stats_country)
}

async fn stats_users_handler(State(s): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    s.counters.bump("stats_users");
    stats_answer(&s, &headers, &s.stats_users)
}
