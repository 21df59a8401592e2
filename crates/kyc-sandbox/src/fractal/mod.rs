//! The sandbox Fractal ID: Fractal's token and resource API on loopback (`/authorize`, `/oauth/token` with refresh
//! rotation, `/v2/users/me`, `/v2/stats/...`). `POST /_sandbox/verifications` changes a case and sends Fractal's
//! webhooks, signed `X-Fractal-Signature: sha1=<hex HMAC-SHA1>`; `GET/PUT /_sandbox/webhooks` sets where they go.

pub mod population;
mod tokens;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub use population::{Population, SandboxUser, SEED_PERSON_UID};
use tokens::{Issued, Owner, TokenStore};

use super::faults::FaultInjector;
use super::support::{admin_body_limit, admin_json, hex, same_secret, serve, Counters, Counts};
use super::webhooks::{self, WebhookEvent, WebhookSender};
use crate::settings::SandboxSettings;
use crate::support::random_token;
use kyc_vocabulary::level_items;
use kyc_vocabulary::scopes::STATS_READ;
use secrecy::{ExposeSecret, SecretString};
use wire::{
    ChangeVerificationWire, OAuthError, TokenResponse, UserVerificationWire, VerificationEventWire, WebhookWire,
};

/// Every scope a sandbox user grants when linking: the gateway then decides per caller what to show.
pub use kyc_vocabulary::scopes::all_user_scopes;

/// The scopes a token carries, as Fractal reads them: space-separated words.
#[derive(Debug, Clone, Default)]
pub struct Granted(std::collections::HashSet<String>);

impl Granted {
    pub fn parse(space_separated: &str) -> Self {
        Granted(space_separated.split_whitespace().map(str::to_owned).collect())
    }

    pub fn has(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }
}

/// Where sandbox users come back after approving at the sandbox Fractal: a frontend's callback on the developer's
/// machine.
pub const SANDBOX_REDIRECT_URI: &str = "http://localhost:3000/fractal/callback";

const COUNTERS: [&str; 11] = [
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
    "sandbox_verification",
];

/// Fractal retries a webhook not answered within 10 s (Fractal's webhook documentation).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

struct SandboxState {
    current: RwLock<Arc<Current>>,
    /// Serialises changes: each copies the population, changes the copy and swaps it in, so readers never wait for
    /// a change and never see half of one.
    changes: Mutex<()>,
    client_id: String,
    client_secret: SecretString,
    tokens: Mutex<TokenStore>,
    counters: Counters,
    webhook_secret: SecretString,
    webhooks: WebhookSender,
}

/// The population as it is now, with its statistics serialised once per change rather than once per request.
struct Current {
    population: Arc<Population>,
    stats_total: Bytes,
    stats_country: Bytes,
    stats_users: Bytes,
}

impl Current {
    fn new(population: Population) -> Arc<Self> {
        let (stats_total, stats_country, stats_users) = stats(&population);
        Arc::new(Current { population: Arc::new(population), stats_total, stats_country, stats_users })
    }
}

impl SandboxState {
    fn current(&self) -> Arc<Current> {
        self.current.read().expect("sandbox population lock").clone()
    }

    /// Gives `uid`'s case of `level` the status and credential; answers the case's level and its items.
    fn change_case(
        &self,
        uid: &str,
        level: &str,
        (status, credential): (&str, &str),
    ) -> Result<(String, Vec<String>), &'static str> {
        let _change = self.changes.lock().expect("sandbox change lock");
        let mut population = (*self.current().population).clone();
        let user = population.get_mut(uid).ok_or("no sandbox Fractal user has this uid")?;
        let wanted = level_items(level);
        let case = user.cases.iter_mut().find(|c| c.items() == wanted).ok_or("the user has no case of this level")?;
        case.wire.status = Some(status.into());
        case.wire.credential = Some(credential.into());
        case.wire.journey_completed = Some(true);
        case.expired = false;
        let changed = (case.wire.level.clone(), case.items());
        *self.current.write().expect("sandbox population lock") = Current::new(population);
        Ok(changed)
    }
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
        let webhooks = WebhookSender::new("fractal", WEBHOOK_TIMEOUT, settings.webhooks.clone());
        let state = Arc::new(SandboxState {
            current: RwLock::new(Current::new(population)),
            changes: Mutex::new(()),
            client_id: "kyc-gateway-sandbox".into(),
            client_secret: SecretString::from(random_token()),
            tokens: Mutex::new(TokenStore::new(settings.fractal_token_ttl)),
            counters: Counters::new(&COUNTERS),
            webhook_secret: SecretString::from(random_token()),
            webhooks: webhooks.clone(),
        });
        let router = Router::new()
            .route("/authorize", get(authorize).post(authorize_decision))
            .route("/oauth/token", post(token))
            .route("/v2/users/me", get(users_me))
            .route("/v2/stats/total-verifications", get(stats_total_handler))
            .route("/v2/stats/country-verifications", get(stats_country_handler))
            .route("/v2/stats/user-verifications", get(stats_users_handler))
            .with_state(state.clone());
        let admin = Router::new()
            .route("/_sandbox/verifications", post(change_verification).layer(admin_body_limit()))
            .with_state(state.clone())
            .merge(webhooks::admin(webhooks));
        let faults = FaultInjector::new(settings.faults_for("fractal"), settings.seed ^ 0xfa17);
        Ok(FractalSandbox { base_url: serve("fractal", settings, router, admin, faults.clone()).await?, state, faults })
    }

    /// Base URL of both the token and the resource API.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    pub fn client_secret(&self) -> SecretString {
        self.state.client_secret.clone()
    }

    /// The population as it is now: a snapshot, which later changes (`POST /_sandbox/verifications`) leave as it is.
    pub fn population(&self) -> Arc<Population> {
        self.state.current().population.clone()
    }

    /// The secret this sandbox signs its webhooks with (new at every start).
    pub fn webhook_secret(&self) -> SecretString {
        self.state.webhook_secret.clone()
    }

    pub fn webhooks(&self) -> &WebhookSender {
        &self.state.webhooks
    }

    /// A refresh token for `uid` with every user scope, as if the user had just linked Fractal.
    pub fn link_user(&self, uid: &str) -> SecretString {
        SecretString::from(self.tokens().grant_refresh(uid, &all_user_scopes()))
    }

    pub fn counts(&self) -> Counts {
        self.state.counters.snapshot()
    }

    /// Expires every access token now, as if two hours had passed.
    pub fn expire_access_tokens(&self) {
        self.tokens().expire_access_tokens();
    }

    /// Whether the sandbox would still accept `refresh_token`.
    pub fn refresh_token_is_valid(&self, refresh_token: &str) -> bool {
        self.tokens().refresh_is_valid(refresh_token)
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
    let hidden: String =
        ["client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method"]
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
    // PKCE (RFC 7636): S256 only, with a challenge of SHA-256's length in base64url.
    let (challenge, method) = (get("code_challenge"), get("code_challenge_method"));
    if !(challenge.is_empty() && method.is_empty()) && (method != "S256" || !tokens::is_s256_challenge(challenge)) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code_challenge must be an S256 challenge with code_challenge_method=S256",
        ));
    }
    Ok(())
}

/// Redirects back with a code, or with `error=access_denied` when the user denies or is no sandbox user.
fn decide(s: &SandboxState, p: &HashMap<String, String>) -> Response {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let redirect = get("redirect_uri");
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let approved = get("decision") != "deny" && s.current().population.get(get("uid")).is_some();
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
        let challenge = Some(get("code_challenge")).filter(|c| !c.is_empty());
        let code =
            s.tokens.lock().expect("token store").grant_code(get("uid"), scope, &s.client_id, redirect, challenge);
        let q =
            serde_urlencoded::to_string([("code", code.as_str()), ("state", get("state"))]).expect("strings encode");
        format!("{redirect}{sep}{q}")
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn token_response(issued: Issued, token_type: &str, ttl: Duration) -> Response {
    let created_at = crate::support::unix_seconds().max(0) as u64;
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
        || !same_secret(get("client_secret").as_bytes(), s.client_secret.expose_secret().as_bytes())
    {
        s.counters.bump("token_refused");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret");
    }
    let mut store = s.tokens.lock().expect("token store");
    let ttl = store.access_ttl();
    match get("grant_type") {
        "authorization_code" => {
            s.counters.bump("token_authorization_code");
            let verifier = p.get("code_verifier").map(String::as_str);
            match store.exchange_code(get("code"), get("client_id"), get("redirect_uri"), verifier) {
                Some(issued) => token_response(issued, "bearer", ttl),
                None => refused(
                    &s,
                    "invalid_grant",
                    "unknown, used or expired code, another redirect_uri, or a code_verifier that does not match",
                ),
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
fn bearer(s: &SandboxState, headers: &HeaderMap) -> Option<(Owner, Granted)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())?;
    let found = s.tokens.lock().expect("token store").use_access(&token)?;
    Some((found.owner, Granted::parse(&found.scope)))
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
    match s.current().population.get(&uid) {
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
    stats_answer(&s, &headers, &s.current().stats_total)
}

async fn stats_country_handler(State(s): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    s.counters.bump("stats_country");
    stats_answer(&s, &headers, &s.current().stats_country)
}

async fn stats_users_handler(State(s): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    s.counters.bump("stats_users");
    stats_answer(&s, &headers, &s.current().stats_users)
}

/// Fractal's webhook signature header value: `sha1=` and the hex HMAC-SHA1 of the raw body under the webhook secret
/// (Fractal's webhook documentation, whose test vectors the tests check).
pub fn webhook_signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    format!("sha1={}", hex(ring::hmac::sign(&key, body).as_ref()))
}

/// `POST /_sandbox/verifications` `{"uid", "level", "status": "approved"|"rejected"|"contacted"}`: changes the user's
/// case of that level (`/v2/users/me` and the statistics show it at once), then sends one webhook per level or add-on
/// of the case, as Fractal does.
async fn change_verification(State(s): State<Arc<SandboxState>>, body: Result<Bytes, BytesRejection>) -> Response {
    s.counters.bump("sandbox_verification");
    let input: ChangeVerificationWire = match admin_json(body) {
        Ok(input) => input,
        Err((status, message)) => return oauth_error(status, "invalid_request", &message),
    };
    let (status, credential, kind) = match input.status.as_str() {
        "approved" => ("done", "approved", "verification_approved"),
        "rejected" => ("done", "rejected", "verification_rejected"),
        "contacted" => ("contacted", "pending", "verification_contacted"),
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "status must be approved, rejected or contacted",
            )
        }
    };
    let (level, items) = match s.change_case(&input.uid, &input.level, (status, credential)) {
        Ok(changed) => changed,
        Err(message) => return oauth_error(StatusCode::NOT_FOUND, "not_found", message),
    };
    let timestamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .expect("a date formats");
    let key = s.webhook_secret.expose_secret().as_bytes().to_vec();
    for item in &items {
        let data =
            VerificationEventWire { level: item.clone(), user_id: input.uid.clone(), timestamp: timestamp.clone() };
        let body = serde_json::to_vec(&WebhookWire { kind: kind.into(), data }).expect("plain data serialises");
        let key = key.clone();
        s.webhooks
            .send(WebhookEvent::new(body, move |body| vec![("X-Fractal-Signature", webhook_signature(&key, body))]));
    }
    Json(serde_json::json!({
        "uid": input.uid, "level": level, "status": status, "credential": credential, "webhooks": items
    }))
    .into_response()
}

/// Starts this provider for the registry (`registry.rs`).
/// It is the first: its population defines the users the others draw from.
pub fn start<'a>(settings: &'a SandboxSettings, _users: &'a [String]) -> crate::registry::Started<'a> {
    crate::registry::started(FractalSandbox::start(settings))
}

impl crate::Sandbox {
    /// The sandbox Fractal.
    pub fn fractal(&self) -> &FractalSandbox {
        self.get()
    }
}

impl crate::SandboxProvider for FractalSandbox {
    fn name(&self) -> &'static str {
        "fractal"
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
        let base = self.base_url();
        vec![
            Variable::new("KYC_GATEWAY_FRACTAL_FRONTEND_URL", base),
            Variable::new("KYC_GATEWAY_FRACTAL_AUTH_URL", base),
            Variable::new("KYC_GATEWAY_FRACTAL_RESOURCE_URL", base),
            Variable::new("KYC_GATEWAY_FRACTAL_CLIENT_ID", self.client_id()),
            Variable::new("KYC_GATEWAY_FRACTAL_CLIENT_SECRET", self.client_secret().expose_secret()),
            Variable::append("KYC_GATEWAY_FRACTAL_WEBHOOK_SECRETS", self.webhook_secret().expose_secret(), ","),
            // A frontend's callback on the developer's machine.
            Variable::new("KYC_GATEWAY_FRACTAL_REDIRECT_URIS", SANDBOX_REDIRECT_URI),
        ]
    }

    fn users(&self) -> Vec<String> {
        self.population().users.iter().map(|u| u.uid.clone()).collect()
    }

    /// A user of the population is linked to this Fractal under their uid, with a fresh refresh token.
    fn directory_fields(&self, user_id: &str) -> Vec<(&'static str, serde_json::Value)> {
        match self.population().get(user_id) {
            Some(user) => {
                let link =
                    serde_json::json!({ "uid": user.uid, "refresh_token": self.link_user(&user.uid).expose_secret() });
                vec![("fractal", link)]
            }
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
    use crate::webhooks::receiver::{hmac_hex, quick_settings, settle, Receiver};

    #[test]
    fn the_webhook_signature_matches_fractals_test_vectors() {
        assert_eq!(webhook_signature(b"SUP3RS3CR3T", b"my-payload"), "sha1=6a89633e5f131bfb5f0b5826b33b3bab4bf52068");
        let wire = WebhookWire {
            kind: "verification_approved".into(),
            data: VerificationEventWire {
                level: "basic".into(),
                user_id: "b5c5a2cd-643e-444b-9591-e7b25fec997d".into(),
                timestamp: "2020-10-09T10:50:32Z".into(),
            },
        };
        let body = serde_json::to_vec(&wire).expect("serialises");
        assert_eq!(
            std::str::from_utf8(&body).expect("utf-8"),
            r#"{"type":"verification_approved","data":{"level":"basic","user_id":"b5c5a2cd-643e-444b-9591-e7b25fec997d","timestamp":"2020-10-09T10:50:32Z"}}"#,
            "the documented example, byte for byte"
        );
        assert_eq!(
            webhook_signature(b"9d7e80c0f169ab94d34392d64617b7517fb07c40", &body),
            "sha1=9e581dd775e5ba87e9839b595d6eb0d784ecfdb6"
        );
    }

    async fn token(http: &reqwest::Client, sandbox: &FractalSandbox, form: &[(&str, &str)]) -> String {
        let secret = sandbox.client_secret();
        let mut form = form.to_vec();
        form.extend([("client_id", sandbox.client_id()), ("client_secret", secret.expose_secret())]);
        let answer: Value = http
            .post(format!("{}/oauth/token", sandbox.base_url()))
            .form(&form)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        answer["access_token"].as_str().expect("a token").to_owned()
    }

    #[tokio::test]
    async fn a_changed_case_shows_in_the_read_api_and_sends_one_signed_webhook_per_item() {
        let receiver = Receiver::start(1).await;
        let sandbox = FractalSandbox::start(&quick_settings()).await.expect("sandbox");
        sandbox.webhooks().set_targets(vec![format!("{}/webhooks/fractal", receiver.url())]);
        let http = reqwest::Client::new();
        let change = json!({ "uid": SEED_PERSON_UID, "level": "plus+selfie", "status": "approved" });
        let answer = http.post(format!("{}/_sandbox/verifications", sandbox.base_url())).json(&change).send().await;
        let answer: Value = answer.expect("answer").error_for_status().expect("200").json().await.expect("json");
        assert_eq!(answer["credential"], "approved");
        assert_eq!(answer["webhooks"], json!(["plus", "selfie"]));
        settle(sandbox.webhooks()).await;

        // The first attempt was answered 500 and retried: three requests, two deliveries.
        let received = receiver.received();
        assert_eq!(received.len(), 3);
        let counts = sandbox.webhooks().counts();
        assert_eq!((counts.sent, counts.delivered, counts.failed_attempts), (2, 2, 1));
        let secret = sandbox.webhook_secret();
        let mut levels = Vec::new();
        for r in &received {
            assert_eq!(r.path, "/webhooks/fractal");
            let expected = hmac_hex(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.expose_secret(), &r.body);
            assert_eq!(r.header("x-fractal-signature"), format!("sha1={expected}"));
            let body = r.json();
            assert_eq!(body["type"], "verification_approved");
            assert_eq!(body["data"]["user_id"], SEED_PERSON_UID);
            let timestamp = body["data"]["timestamp"].as_str().expect("a timestamp");
            assert!(timestamp.len() == 20 && timestamp.ends_with('Z'), "{timestamp}");
            levels.push(body["data"]["level"].as_str().expect("a level").to_owned());
        }
        levels.sort();
        levels.dedup();
        assert_eq!(levels, ["plus", "selfie"]);

        // `/v2/users/me` and the statistics show the new state.
        let refresh = sandbox.link_user(SEED_PERSON_UID);
        let access =
            token(&http, &sandbox, &[("grant_type", "refresh_token"), ("refresh_token", refresh.expose_secret())])
                .await;
        let me: Value = http
            .get(format!("{}/v2/users/me", sandbox.base_url()))
            .bearer_auth(&access)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        let cases = me["verification_cases"].as_array().expect("cases");
        let case = cases.iter().find(|c| c["level"] == "plus+selfie").expect("the plus+selfie case");
        assert_eq!((&case["status"], &case["credential"]), (&json!("done"), &json!("approved")));
        let client =
            token(&http, &sandbox, &[("grant_type", "client_credentials"), ("scope", "client.stats:read")]).await;
        let stats: Value = http
            .get(format!("{}/v2/stats/user-verifications", sandbox.base_url()))
            .bearer_auth(&client)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        let row = json!({ "user_id": SEED_PERSON_UID, "level": "plus+selfie", "credential": "approved" });
        assert!(stats.as_array().expect("rows").contains(&row));
        let snapshot = sandbox.population();
        let seed = snapshot.get(SEED_PERSON_UID).expect("the seed person");
        assert!(seed.cases.iter().any(|c| c.wire.level == "plus+selfie" && c.stats_status() == "approved"));
        assert_eq!(sandbox.counts().get("sandbox_verification"), 1);
    }

    #[tokio::test]
    async fn the_admin_endpoint_refuses_unknown_users_levels_and_statuses() {
        let sandbox = FractalSandbox::start(&quick_settings()).await.expect("sandbox");
        let http = reqwest::Client::new();
        let url = format!("{}/_sandbox/verifications", sandbox.base_url());
        for (body, status) in [
            (json!({ "uid": "nobody", "level": "plus", "status": "approved" }), 404),
            (json!({ "uid": SEED_PERSON_UID, "level": "uniqueness", "status": "approved" }), 404),
            (json!({ "uid": SEED_PERSON_UID, "level": "plus", "status": "done" }), 400),
            (json!({ "uid": SEED_PERSON_UID, "level": "plus" }), 400),
        ] {
            let answer = http.post(&url).json(&body).send().await.expect("answer");
            assert_eq!(answer.status().as_u16(), status, "{body}");
            let error: Value = answer.json().await.expect("a JSON error");
            assert!(error["error_description"].is_string(), "{error}");
        }
        let big = http.post(&url).body(vec![b' '; 20_000]).send().await.expect("answer");
        assert_eq!(big.status().as_u16(), 413);
        assert_eq!(sandbox.webhooks().counts().sent, 0);
    }

    #[tokio::test]
    async fn without_targets_a_change_is_counted_undeliverable() {
        let sandbox = FractalSandbox::start(&quick_settings()).await.expect("sandbox");
        let change = json!({ "uid": SEED_PERSON_UID, "level": "plus", "status": "rejected" });
        let url = format!("{}/_sandbox/verifications", sandbox.base_url());
        let answer = reqwest::Client::new().post(url).json(&change).send().await.expect("answer");
        assert!(answer.status().is_success());
        settle(sandbox.webhooks()).await;
        let counts = sandbox.webhooks().counts();
        assert_eq!((counts.sent, counts.undeliverable, counts.delivered), (1, 1, 0));
    }
}
