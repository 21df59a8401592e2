//! Sandbox mode's GraphiQL sign-in: a small OpenID-style issuer at `/_sandbox/signin/` whose page mints a dev token
//! for the subject and scopes chosen there, through the authorization-code flow with PKCE (S256), as production's
//! issuer would. Compiled only with the `sandbox` feature and routed only in sandbox mode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;
use tokio::time::Instant;

use crate::auth::token::{mint_dev_token, Subject};
use crate::secret::Secret;

/// Where the sandbox issuer lives, and the page's client id.
const BASE: &str = "/_sandbox/signin";
const CLIENT_ID: &str = "graphiql";
/// Where codes are sent: the GraphiQL page, on the gateway's own origin.
const REDIRECT_PATH: &str = "/graphiql";
/// How long a code may wait for its exchange, and how many may wait at once (older ones are dropped first).
pub const CODE_TTL: Duration = Duration::from_secs(60);
pub const MAX_PENDING_CODES: usize = 32;
/// A minted token's lifetime; the page renews it with the refresh token before it ends.
pub const TOKEN_TTL_SECS: i64 = 900;
const REFRESH_TTL: Duration = Duration::from_secs(8 * 3600);
const MAX_REFRESH_TOKENS: usize = 256;
/// Bounds of what a caller sends.
const MAX_FORM_BYTES: usize = 16 * 1024;
const MAX_SUBJECT_BYTES: usize = 128;
const MAX_SCOPE_BYTES: usize = 2048;
const MAX_STATE_BYTES: usize = 512;
/// The sign-in page's policy: no script at all, its form posts to this origin only.
const PAGE_CSP: &str = "default-src 'none'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What `GET /graphiql/config` says in sandbox mode.
pub fn page_config() -> serde_json::Value {
    json!({ "signIn": { "issuer": BASE, "clientId": CLIENT_ID, "scopes": "", "sandbox": true } })
}

/// Who a token is for and what it may do.
#[derive(Clone)]
struct Grant {
    subject: Subject,
    scope: String,
}

struct Pending {
    challenge: String,
    grant: Grant,
    expires: Instant,
}

struct Refresh {
    grant: Grant,
    expires: Instant,
}

/// The issuer's state: codes waiting for their exchange and refresh tokens, both bounded and expiring.
pub struct SignIn {
    secret: Secret,
    codes: Mutex<HashMap<String, Pending>>,
    refresh: Mutex<HashMap<String, Refresh>>,
}

/// A refused token request, answered as RFC 6749 §5.2 says.
#[derive(Debug, PartialEq, Eq)]
pub struct TokenError {
    pub error: &'static str,
    pub description: &'static str,
}

fn refused(error: &'static str, description: &'static str) -> TokenError {
    TokenError { error, description }
}

/// A successful token answer.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub scope: String,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("the system's random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge: the unpadded base64url of a SHA-256 digest.
fn valid_challenge(c: &str) -> bool {
    c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}

/// Inserts under a bound: expired entries go first, then the soonest to expire.
fn insert_bounded<V>(map: &mut HashMap<String, V>, key: String, value: V, max: usize, expires: impl Fn(&V) -> Instant) {
    let now = Instant::now();
    map.retain(|_, v| expires(v) > now);
    while map.len() >= max {
        let Some(oldest) = map.iter().min_by_key(|(_, v)| expires(v)).map(|(k, _)| k.clone()) else { break };
        map.remove(&oldest);
    }
    map.insert(key, value);
}

impl SignIn {
    pub fn new(secret: Secret) -> Self {
        SignIn { secret, codes: Mutex::default(), refresh: Mutex::default() }
    }

    /// A code for `grant`, redeemable once within [`CODE_TTL`] with the verifier of `challenge`.
    fn issue_code(&self, challenge: String, grant: Grant) -> String {
        let code = random_token();
        let pending = Pending { challenge, grant, expires: Instant::now() + CODE_TTL };
        let mut codes = self.codes.lock().expect("codes lock");
        insert_bounded(&mut codes, code.clone(), pending, MAX_PENDING_CODES, |p| p.expires);
        code
    }

    /// The authorization-code grant. The code is spent by any attempt, a failed one too, so a verifier cannot be
    /// guessed at.
    pub fn exchange(&self, code: &str, verifier: Option<&str>) -> Result<Tokens, TokenError> {
        let pending = self.codes.lock().expect("codes lock").remove(code);
        let pending = pending.ok_or(refused("invalid_grant", "unknown, used or expired code"))?;
        if pending.expires <= Instant::now() {
            return Err(refused("invalid_grant", "unknown, used or expired code"));
        }
        let verifier = verifier.ok_or(refused("invalid_request", "code_verifier is required"))?;
        if !valid_verifier(verifier) || !constant_time_eq(s256(verifier).as_bytes(), pending.challenge.as_bytes()) {
            return Err(refused("invalid_grant", "code_verifier does not match the code_challenge"));
        }
        Ok(self.mint(pending.grant))
    }

    /// The refresh-token grant; the refresh token is replaced by a new one.
    pub fn renew(&self, refresh_token: &str) -> Result<Tokens, TokenError> {
        let entry = self.refresh.lock().expect("refresh lock").remove(refresh_token);
        match entry {
            Some(r) if r.expires > Instant::now() => Ok(self.mint(r.grant)),
            _ => Err(refused("invalid_grant", "unknown, used or expired refresh token")),
        }
    }

    fn mint(&self, grant: Grant) -> Tokens {
        let access_token = mint_dev_token(&self.secret, &grant.subject, &grant.scope, TOKEN_TTL_SECS);
        let refresh_token = random_token();
        let scope = grant.scope.clone();
        let entry = Refresh { grant, expires: Instant::now() + REFRESH_TTL };
        let mut refresh = self.refresh.lock().expect("refresh lock");
        insert_bounded(&mut refresh, refresh_token.clone(), entry, MAX_REFRESH_TOKENS, |r| r.expires);
        Tokens { access_token, refresh_token, scope }
    }
}

/// The sandbox issuer's routes, under [`BASE`].
pub fn routes<S: Clone + Send + Sync + 'static>(secret: Secret) -> Router<S> {
    let body_limit = axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES);
    Router::new()
        .route(&format!("{BASE}/.well-known/openid-configuration"), get(discovery))
        .route(&format!("{BASE}/authorize"), get(authorize_page).post(authorize).layer(body_limit))
        .route(&format!("{BASE}/token"), axum::routing::post(token).layer(body_limit))
        .with_state(Arc::new(SignIn::new(secret)))
}

/// The discovery document; its endpoints are paths on this origin (the page resolves them against the document's
/// URL).
async fn discovery() -> Response {
    Json(json!({
        "issuer": crate::auth::token::DEV_ISSUER,
        "authorization_endpoint": format!("{BASE}/authorize"),
        "token_endpoint": format!("{BASE}/token"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
    }))
    .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, body: String) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  <meta name=\"robots\" \
         content=\"noindex\">\n  <title>kyc-gateway sandbox sign-in</title>\n  <link rel=\"icon\" href=\"data:,\">\n\
         </head>\n<body>\n{body}</body>\n</html>\n"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn bad_request(message: &str) -> Response {
    page(StatusCode::BAD_REQUEST, format!("<h1>Sandbox sign-in</h1>\n<p>{}</p>\n", escape(message)))
}

/// The request parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
#[derive(serde::Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    scope: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// The client and where its codes go: GraphiQL on this origin only.
fn check_client(headers: &HeaderMap, client_id: Option<&str>, redirect_uri: Option<&str>) -> Result<(), &'static str> {
    if client_id != Some(CLIENT_ID) {
        return Err("unknown client_id: the sandbox issuer serves GraphiQL (client_id=graphiql) only");
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let to_graphiql = redirect_uri.and_then(|uri| reqwest::Url::parse(uri).ok()).is_some_and(|url| {
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => String::new(),
        };
        matches!(url.scheme(), "http" | "https")
            && authority == host
            && url.path() == REDIRECT_PATH
            && url.query().is_none()
            && url.fragment().is_none()
    });
    if !to_graphiql {
        return Err("redirect_uri must be this gateway's GraphiQL page (/graphiql, on this origin)");
    }
    Ok(())
}

/// The checks an authorization request passes, on the page and again when its form comes back.
fn check_request(
    headers: &HeaderMap,
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
    state: Option<&str>,
    challenge: Option<&str>,
) -> Result<(), &'static str> {
    check_client(headers, client_id, redirect_uri)?;
    if !state.is_some_and(|s| !s.is_empty() && s.len() <= MAX_STATE_BYTES && s.bytes().all(|b| b.is_ascii_graphic())) {
        return Err("state is required: 1 to 512 visible ASCII characters");
    }
    if !challenge.is_some_and(valid_challenge) {
        return Err("code_challenge is required: an S256 challenge (43 characters of base64url)");
    }
    Ok(())
}

/// Every scope the page offers as a checkbox (any other can be typed).
fn offered_scopes() -> Vec<String> {
    use kyc_vocabulary::scopes as s;
    let mut scopes: Vec<String> = s::all_user_scopes().split(' ').map(str::to_owned).collect();
    for extra in [s::WALLET_READ, s::USERS_READ, s::STATS_READ] {
        if !scopes.iter().any(|known| known == extra) {
            scopes.push(extra.to_owned());
        }
    }
    scopes
}

/// `GET /_sandbox/signin/authorize`: the sign-in page, a form with the subject, its kind and the scopes.
async fn authorize_page(headers: HeaderMap, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.response_type.as_deref() != Some("code") {
        return bad_request("response_type must be code");
    }
    if q.code_challenge_method.as_deref() != Some("S256") {
        return bad_request("code_challenge_method must be S256 (PKCE is required)");
    }
    let checked = check_request(
        &headers,
        q.client_id.as_deref(),
        q.redirect_uri.as_deref(),
        q.state.as_deref(),
        q.code_challenge.as_deref(),
    );
    if let Err(message) = checked {
        return bad_request(message);
    }
    let requested: Vec<&str> = q.scope.as_deref().unwrap_or("").split_ascii_whitespace().collect();
    let hidden =
        |name: &str, value: &str| format!("  <input type=\"hidden\" name=\"{name}\" value=\"{}\">\n", escape(value));
    let mut form = format!("<form method=\"post\" action=\"{BASE}/authorize\">\n");
    form += &hidden("client_id", CLIENT_ID);
    form += &hidden("redirect_uri", q.redirect_uri.as_deref().unwrap_or(""));
    form += &hidden("state", q.state.as_deref().unwrap_or(""));
    form += &hidden("code_challenge", q.code_challenge.as_deref().unwrap_or(""));
    form += &format!(
        "  <p><label>Subject (a user id, or a client's name) <input name=\"subject\" required \
         maxlength=\"{MAX_SUBJECT_BYTES}\" autocomplete=\"off\"></label></p>\n"
    );
    form +=
        "  <fieldset><legend>Kind</legend>\n    <label><input type=\"radio\" name=\"kind\" value=\"user\" checked> \
             user</label>\n    <label><input type=\"radio\" name=\"kind\" value=\"client\"> client</label>\n  \
             </fieldset>\n  <fieldset><legend>Scopes</legend>\n";
    for scope in offered_scopes() {
        let on = if requested.contains(&scope.as_str()) { " checked" } else { "" };
        let scope = escape(&scope);
        form +=
            &format!("    <label><input type=\"checkbox\" name=\"scope\" value=\"{scope}\"{on}> {scope}</label><br>\n");
    }
    form += "    <p><label>Other scopes (space-separated) <input name=\"other_scopes\" autocomplete=\"off\"></label></p>\n  \
             </fieldset>\n  <p><button type=\"submit\">Sign in</button></p>\n</form>\n";
    let intro = "<h1>Sandbox sign-in</h1>\n<p>Mints a dev token (issuer <code>kyc-gateway-dev</code>) for GraphiQL. \
                 Sandbox mode only: anyone can sign in as anyone here.</p>\n";
    page(StatusCode::OK, format!("{intro}{form}"))
}

/// The pairs of a form-encoded body (repeated names kept, as checkboxes send them).
fn pairs(body: &str) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(body).ok()
}

fn one<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut found = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match (found.next(), found.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

/// `POST /_sandbox/signin/authorize`: the form came back; a code, and back to GraphiQL with it and the state.
async fn authorize(State(sign_in): State<Arc<SignIn>>, headers: HeaderMap, body: String) -> Response {
    let Some(form) = pairs(&body) else { return bad_request("the form could not be read") };
    let (redirect_uri, state, challenge) =
        (one(&form, "redirect_uri"), one(&form, "state"), one(&form, "code_challenge"));
    if let Err(message) = check_request(&headers, one(&form, "client_id"), redirect_uri, state, challenge) {
        return bad_request(message);
    }
    let subject = one(&form, "subject").unwrap_or("").trim();
    if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES || !subject.bytes().all(|b| b.is_ascii_graphic()) {
        return bad_request("the subject is 1 to 128 visible ASCII characters");
    }
    let subject = match one(&form, "kind") {
        Some("user") => Subject::User(subject.to_owned()),
        Some("client") => Subject::Client(subject.to_owned()),
        _ => return bad_request("the kind is user or client"),
    };
    let mut scopes: Vec<&str> = form.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()).collect();
    scopes.extend(one(&form, "other_scopes").unwrap_or("").split_ascii_whitespace());
    let mut unique: Vec<&str> = Vec::new();
    for scope in scopes {
        if !unique.contains(&scope) {
            unique.push(scope);
        }
    }
    let scope = unique.join(" ");
    if scope.len() > MAX_SCOPE_BYTES || !scope.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return bad_request("the scopes are at most 2048 characters of visible ASCII");
    }
    let code = sign_in.issue_code(challenge.unwrap_or_default().to_owned(), Grant { subject, scope });
    let query = serde_urlencoded::to_string([("code", code.as_str()), ("state", state.unwrap_or_default())])
        .expect("encoding strings");
    let mut response = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(&format!("{REDIRECT_PATH}?{query}")).expect("an encoded query is ASCII");
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /_sandbox/signin/token`: the authorization-code grant (with its verifier) or the refresh-token grant.
async fn token(State(sign_in): State<Arc<SignIn>>, headers: HeaderMap, body: String) -> Response {
    let answer = match pairs(&body) {
        None => Err(refused("invalid_request", "send a form-encoded body")),
        Some(form) => match one(&form, "grant_type") {
            Some("authorization_code") => {
                match check_client(&headers, one(&form, "client_id"), one(&form, "redirect_uri")) {
                    Err(_) => Err(refused("invalid_request", "client_id graphiql and the redirect_uri of the request")),
                    Ok(()) => sign_in.exchange(one(&form, "code").unwrap_or(""), one(&form, "code_verifier")),
                }
            }
            Some("refresh_token") => sign_in.renew(one(&form, "refresh_token").unwrap_or("")),
            _ => Err(refused("unsupported_grant_type", "authorization_code or refresh_token")),
        },
    };
    let (status, body) = match answer {
        Ok(t) => (
            StatusCode::OK,
            json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_SECS,
                "refresh_token": t.refresh_token,
                "scope": t.scope,
            }),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, json!({ "error": e.error, "error_description": e.description })),
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant { subject: Subject::User("b76ab44d-b71e-4d19-b6f9-f6e88cd73946".into()), scope: "uid:read".into() }
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn the_challenge_of_the_rfc_7636_example_verifier_is_its_s256() {
        assert_eq!(s256(VERIFIER), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[tokio::test(start_paused = true)]
    async fn a_code_presented_after_its_expiry_is_refused() {
        let sign_in = SignIn::new(Secret::new("s"));
        let code = sign_in.issue_code(s256(VERIFIER), grant());
        tokio::time::advance(CODE_TTL + Duration::from_secs(1)).await;
        let refused = sign_in.exchange(&code, Some(VERIFIER)).map(|_| ()).expect_err("an expired code");
        assert_eq!(refused.error, "invalid_grant");
    }

    #[tokio::test(start_paused = true)]
    async fn a_code_presented_within_its_expiry_with_its_verifier_is_exchanged_once() {
        let sign_in = SignIn::new(Secret::new("s"));
        let code = sign_in.issue_code(s256(VERIFIER), grant());
        tokio::time::advance(CODE_TTL - Duration::from_secs(1)).await;
        let tokens = sign_in.exchange(&code, Some(VERIFIER)).expect("a fresh code");
        assert_eq!(tokens.scope, "uid:read");
        assert!(sign_in.exchange(&code, Some(VERIFIER)).is_err(), "a code is single-use");
        assert!(sign_in.renew(&tokens.refresh_token).is_ok());
        assert!(sign_in.renew(&tokens.refresh_token).is_err(), "a refresh token is replaced when used");
    }

    #[tokio::test(start_paused = true)]
    async fn pending_codes_are_bounded_and_the_oldest_goes_first() {
        let sign_in = SignIn::new(Secret::new("s"));
        let first = sign_in.issue_code(s256(VERIFIER), grant());
        for _ in 0..MAX_PENDING_CODES {
            tokio::time::advance(Duration::from_millis(1)).await;
            sign_in.issue_code(s256(VERIFIER), grant());
        }
        assert_eq!(sign_in.codes.lock().expect("lock").len(), MAX_PENDING_CODES);
        assert!(sign_in.exchange(&first, Some(VERIFIER)).is_err(), "the oldest code was dropped");
    }
}
