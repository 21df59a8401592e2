//! The signing keys of issuers that publish a JWK Set (RFC 7517), configured or found through OpenID Connect Discovery:
//! cached, refreshed, and fetched again for an unknown `kid` within a per-`kid` backoff and a shared budget, so
//! made-up `kid`s can neither make the gateway hammer the issuer nor hold back a rotated-in key. The key and the allow-list choose the algorithm, never the token alone (RFC 8725).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The algorithms an issuer with published keys may use, and the default allow-list.
pub const ASYMMETRIC_ALGORITHMS: [Algorithm; 4] =
    [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

/// The largest JWK Set or discovery document read. Real sets hold a few keys in a few KB.
pub const MAX_DOCUMENT_BYTES: usize = 128 * 1024;
/// The most keys one set may hold; a larger one is refused whole (the old keys stay).
pub const MAX_KEYS: usize = 100;
/// The longest `kid` looked up or kept.
pub const MAX_KID_BYTES: usize = 256;
/// RSA moduli accepted, in bytes: 2048 bits at least (RFC 7518 §3.3), 8192 at most (what ring verifies).
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

/// The JOSE name of an algorithm this module verifies; `None` for every other (`none`, `HS*`, ...).
pub fn algorithm_named(name: &str) -> Option<Algorithm> {
    ASYMMETRIC_ALGORITHMS.into_iter().find(|alg| algorithm_name(*alg) == name)
}

/// The JOSE name (RFC 7518 §3.1, RFC 8037 §3.1).
pub fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES384 => "ES384",
    }
}

/// The type of a public key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    P256,
    Ed25519,
}

impl KeyType {
    fn verifies(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (KeyType::Rsa, Algorithm::RS256 | Algorithm::PS256)
                | (KeyType::P256, Algorithm::ES256)
                | (KeyType::Ed25519, Algorithm::EdDSA)
        )
    }
}

/// The algorithm to verify a token with: the token's `alg` only when it is on the allow-list, fits the key's type,
/// and is the key's own `alg` when the key names one (RFC 7517 §4.4). `None`: the token is refused.
pub fn select_algorithm(
    token_alg: &str,
    key: KeyType,
    key_alg: Option<Algorithm>,
    allowed: &[Algorithm],
) -> Option<Algorithm> {
    let alg = algorithm_named(token_alg)?;
    let fits = allowed.contains(&alg) && key.verifies(alg) && key_alg.is_none_or(|own| own == alg);
    fits.then_some(alg)
}

/// One public key of a set.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: Option<String>,
    pub key_type: KeyType,
    /// The key's own `alg`, when its JWK names one.
    pub alg: Option<Algorithm>,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).field("type", &self.key_type).finish_non_exhaustive()
    }
}

/// Why a document was not taken. The text names no key material and no URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("the request failed ({0})")]
    Http(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("not a valid document: {0}")]
    Malformed(String),
}

fn b64(value: &Value, member: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.get(member)?.as_str()?).ok()
}

/// One JWK, when it is a signature key this gateway may use; `None` skips it.
fn public_key(jwk: &Value, allowed: &[Algorithm]) -> Option<PublicKey> {
    // A key for encryption, or restricted to other operations, never verifies a signature (RFC 7517 §4.2, §4.3).
    if jwk.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops") {
        if !ops.as_array()?.iter().any(|op| op == "verify") {
            return None;
        }
    }
    let alg = match jwk.get("alg") {
        None | Some(Value::Null) => None,
        Some(name) => Some(algorithm_named(name.as_str()?).filter(|alg| allowed.contains(alg))?),
    };
    let kid = match jwk.get("kid") {
        None | Some(Value::Null) => None,
        Some(kid) => Some(kid.as_str().filter(|k| k.len() <= MAX_KID_BYTES)?.to_owned()),
    };
    let (key_type, decoding) = match (jwk.get("kty")?.as_str()?, jwk.get("crv").and_then(Value::as_str)) {
        ("RSA", _) => {
            let (n, e) = (b64(jwk, "n")?, b64(jwk, "e")?);
            let modulus = n.iter().position(|b| *b != 0).map_or(0, |first| n.len() - first);
            if !RSA_MODULUS_BYTES.contains(&modulus) || e.is_empty() || e.len() > 8 {
                return None;
            }
            (KeyType::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        // Coordinates and keys of exactly the curve's size (RFC 7518 §6.2.1.2, RFC 8037 §2).
        ("EC", Some("P-256")) if [b64(jwk, "x")?.len(), b64(jwk, "y")?.len()] == [32, 32] => {
            let (x, y) = (jwk["x"].as_str()?, jwk["y"].as_str()?);
            (KeyType::P256, DecodingKey::from_ec_components(x, y).ok()?)
        }
        ("OKP", Some("Ed25519")) if b64(jwk, "x")?.len() == 32 => {
            (KeyType::Ed25519, DecodingKey::from_ed_components(jwk["x"].as_str()?).ok()?)
        }
        // `oct` (HMAC secrets) and every other type or curve: never, so an `HS256` token "signed" with an issuer's
        // public key has no key to be checked against (RFC 8725 §2.1, §3.1).
        _ => return None,
    };
    if alg.is_some_and(|alg| !key_type.verifies(alg))
        || !ASYMMETRIC_ALGORITHMS.iter().any(|a| allowed.contains(a) && key_type.verifies(*a))
    {
        return None;
    }
    Some(PublicKey { kid, key_type, alg, decoding })
}

/// The usable keys of a JWK Set document. Keys this gateway cannot or may not use are skipped; a set with none
/// left, or with more than [`MAX_KEYS`], is an error (the keys held before stay in use).
pub fn parse_jwks(body: &[u8], allowed: &[Algorithm]) -> Result<Vec<PublicKey>, FetchError> {
    let document: Value = serde_json::from_slice(body).map_err(|e| FetchError::Malformed(e.to_string()))?;
    let keys = document.get("keys").and_then(Value::as_array).ok_or(FetchError::Malformed("no `keys` array".into()))?;
    if keys.len() > MAX_KEYS {
        return Err(FetchError::Malformed(format!("{} keys, more than {MAX_KEYS}", keys.len())));
    }
    let usable: Vec<PublicKey> = keys.iter().filter_map(|jwk| public_key(jwk, allowed)).collect();
    if usable.is_empty() {
        return Err(FetchError::Malformed("no key this gateway may verify with".into()));
    }
    Ok(usable)
}

/// The key a token names, and the algorithm to verify it with.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    Found(&'a PublicKey, Algorithm),
    /// No key has this `kid`: the set may have been rotated since it was fetched.
    UnknownKid,
    /// A key was found but may not verify this token, or the token names none and the set has no single fit.
    Refused,
}

/// Finds the key of a token with header `alg` and `kid` among `keys`.
pub(crate) fn lookup<'a>(
    keys: &'a [PublicKey],
    token_alg: &str,
    kid: Option<&str>,
    allowed: &[Algorithm],
) -> Lookup<'a> {
    let fit = |key: &'a PublicKey| select_algorithm(token_alg, key.key_type, key.alg, allowed).map(|alg| (key, alg));
    match kid {
        Some(kid) => {
            let mut named = keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).peekable();
            if named.peek().is_none() {
                return Lookup::UnknownKid;
            }
            named.find_map(fit).map_or(Lookup::Refused, |(key, alg)| Lookup::Found(key, alg))
        }
        // Without a `kid` (RFC 7515 §4.1.4 makes it optional) only a set with exactly one fitting key decides.
        None => {
            let mut fitting = keys.iter().filter_map(fit);
            match (fitting.next(), fitting.next()) {
                (Some((key, alg)), None) => Lookup::Found(key, alg),
                _ => Lookup::Refused,
            }
        }
    }
}

/// Whether a key document may be fetched from `url`: HTTPS, or plain HTTP to this machine only (a test or a local
/// identity provider). Keys fetched over plain HTTP across a network could be anyone's.
pub fn check_fetch_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("");
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
    let loopback = host == "localhost" || ip.is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(format!("{url:?} must be an https URL (plain http only to localhost)")),
    }
}

/// The discovery document's URL for an issuer: OpenID Connect Discovery 1.0 §4 (a terminating `/` removed before
/// appending the well-known path).
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// GET with the client's timeouts, at most [`MAX_DOCUMENT_BYTES`] of body.
async fn get_bounded(http: &reqwest::Client, url: &Url) -> Result<Vec<u8>, FetchError> {
    let failed = |e: reqwest::Error| FetchError::Http(e.without_url().to_string());
    let mut response =
        http.get(url.clone()).header(reqwest::header::ACCEPT, "application/json").send().await.map_err(failed)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Where an issuer's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// The `jwks_uri` of the issuer's discovery document.
    Discovery,
    /// A configured JWK Set URL.
    Jwks(Url),
}

/// Fetches caused by unknown `kid`s that may start at once; after them, one per refetch interval divided by this.
pub(crate) const REFETCH_BURST: u32 = 3;
/// The most unknown `kid`s whose backoff is remembered; the oldest is forgotten first.
pub(crate) const MAX_TRACKED_KIDS: usize = 1024;
/// The longest wait between two fetches for one `kid` that stays unknown.
const MAX_KID_BACKOFF: Duration = Duration::from_secs(3600);

/// One unknown `kid`'s backoff: when it may cause a fetch again, and the wait after that one.
#[derive(Debug, Clone, Copy)]
struct KidBackoff {
    next: Instant,
    wait: Duration,
    order: u64,
}

/// When a token naming an unknown `kid` may fetch the set again: each `kid` backs off on its own (the refetch
/// interval, doubling while it stays unknown), and all share a small budget, so made-up `kid`s neither hammer the
/// issuer nor keep a rotated-in `kid` waiting. A pure gate, tested with explicit instants.
#[derive(Debug, Default)]
pub(crate) struct RefetchGate {
    /// The budget as a theoretical arrival time (GCRA): a fetch may start while it is at most `BURST - 1` spacings ahead.
    budget: Option<Instant>,
    kids: std::collections::HashMap<String, KidBackoff>,
    order: u64,
}

impl RefetchGate {
    /// Whether a fetch for `kid` may start at `now`; when it may, the fetch is counted against the budget and
    /// `kid`'s backoff. `interval` is the refetch interval.
    pub fn allow(&mut self, kid: &str, now: Instant, interval: Duration) -> bool {
        let known = self.kids.get(kid).copied();
        if known.is_some_and(|k| now < k.next) {
            return false;
        }
        let spacing = interval / REFETCH_BURST;
        let due = self.budget.map_or(now, |at| at.max(now));
        if due.saturating_duration_since(now) > spacing * (REFETCH_BURST - 1) {
            return false;
        }
        self.budget = Some(due + spacing);
        let wait = known.map_or(interval, |k| (k.wait * 2).min(MAX_KID_BACKOFF).max(interval));
        if known.is_none() && self.kids.len() >= MAX_TRACKED_KIDS {
            if let Some(oldest) = self.kids.iter().min_by_key(|(_, k)| k.order).map(|(kid, _)| kid.clone()) {
                self.kids.remove(&oldest);
            }
        }
        self.order += 1;
        self.kids.insert(kid.to_owned(), KidBackoff { next: now + wait, wait, order: self.order });
        true
    }

    /// Forgets the backoff of the `kid`s a fetched set holds: they are known now.
    pub fn forget_known(&mut self, keys: &[PublicKey]) {
        for kid in keys.iter().filter_map(|k| k.kid.as_deref()) {
            self.kids.remove(kid);
        }
    }

    /// How many unknown `kid`s are remembered.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.kids.len()
    }

    /// Whether `kid`'s backoff is remembered.
    #[cfg(test)]
    pub fn tracks(&self, kid: &str) -> bool {
        self.kids.contains_key(kid)
    }
}

/// The fetching side of one issuer's cache, behind one lock so that fetches never run twice at once.
#[derive(Debug, Default)]
struct Fetching {
    /// The `jwks_uri` discovery found; forgotten when a fetch from it fails, so the next one discovers again.
    jwks_uri: Option<Url>,
    gate: RefetchGate,
}

/// How often and how patiently keys are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchTiming {
    /// The periodic refresh.
    pub refresh: Duration,
    /// The least time between two fetches for one unknown `kid`; [`REFETCH_BURST`] fetches per such interval in all.
    pub refetch: Duration,
}

/// One issuer's keys: the last good set, shared by every request; fetches behind a lock.
pub(crate) struct IssuerKeys {
    issuer: String,
    source: KeySource,
    allowed: Vec<Algorithm>,
    http: reqwest::Client,
    timing: FetchTiming,
    keys: RwLock<Arc<Vec<PublicKey>>>,
    fetching: Arc<Mutex<Fetching>>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys").field("issuer", &self.issuer).field("source", &self.source).finish_non_exhaustive()
    }
}

impl IssuerKeys {
    pub fn new(
        issuer: String,
        source: KeySource,
        allowed: Vec<Algorithm>,
        http: reqwest::Client,
        timing: FetchTiming,
    ) -> Self {
        IssuerKeys {
            issuer,
            source,
            allowed,
            http,
            timing,
            keys: RwLock::new(Arc::new(Vec::new())),
            fetching: Arc::new(Mutex::new(Fetching::default())),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The keys held now.
    pub fn current(&self) -> Arc<Vec<PublicKey>> {
        self.keys.read().expect("the key set lock is never poisoned").clone()
    }

    /// Whether a set has been fetched (a set is taken only with at least one usable key).
    pub fn has_keys(&self) -> bool {
        !self.current().is_empty()
    }

    /// Takes `keys` as if fetched.
    #[cfg(test)]
    pub(crate) fn preload(&self, keys: Vec<PublicKey>) {
        *self.keys.write().expect("the key set lock is never poisoned") = Arc::new(keys);
    }

    /// The verification key and algorithm for a token with header `alg` and `kid`. A `kid` the set does not hold
    /// fetches the set again when [`RefetchGate`] allows it.
    pub async fn key_for(&self, token_alg: &str, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
        // A token whose `alg` may never be used here does not get to cause a fetch.
        if !algorithm_named(token_alg).is_some_and(|alg| self.allowed.contains(&alg)) {
            return None;
        }
        let found = |keys: &[PublicKey]| match lookup(keys, token_alg, kid, &self.allowed) {
            Lookup::Found(key, alg) => Some(Some((key.decoding.clone(), alg))),
            Lookup::Refused => Some(None),
            Lookup::UnknownKid => None,
        };
        if let Some(answer) = found(&self.current()) {
            return answer;
        }
        let kid = kid?;
        let mut fetching = self.fetching.lock().await;
        // Another request may have fetched the set while this one waited.
        if let Some(answer) = found(&self.current()) {
            return answer;
        }
        if kid.len() > MAX_KID_BYTES || !fetching.gate.allow(kid, Instant::now(), self.timing.refetch) {
            tracing::debug!(issuer = %self.issuer, kid = ?kid, "unknown signing key; not fetching the set again yet");
            return None;
        }
        tracing::info!(issuer = %self.issuer, kid = ?kid, "a token names an unknown signing key: fetching the set again");
        let _ = self.fetch(&mut fetching).await;
        found(&self.current()).flatten()
    }

    /// Fetches the set (discovering its URL first when needed) and takes it when it holds a usable key.
    async fn fetch(&self, fetching: &mut Fetching) -> Result<(), FetchError> {
        let result = self.fetch_keys(fetching).await;
        match &result {
            Ok(keys) => {
                let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
                tracing::info!(issuer = %self.issuer, keys = keys.len(), kids = ?kids, "fetched the issuer's signing keys");
            }
            Err(error) => {
                fetching.jwks_uri = None;
                tracing::warn!(issuer = %self.issuer, %error, "could not fetch the issuer's signing keys; keeping those held");
            }
        }
        let keys = result?;
        fetching.gate.forget_known(&keys);
        *self.keys.write().expect("the key set lock is never poisoned") = Arc::new(keys);
        Ok(())
    }

    async fn fetch_keys(&self, fetching: &mut Fetching) -> Result<Vec<PublicKey>, FetchError> {
        let jwks_uri = match (&self.source, &fetching.jwks_uri) {
            (KeySource::Jwks(url), _) => url.clone(),
            (KeySource::Discovery, Some(url)) => url.clone(),
            (KeySource::Discovery, None) => {
                let url = self.discover().await?;
                fetching.jwks_uri = Some(url.clone());
                url
            }
        };
        parse_jwks(&get_bounded(&self.http, &jwks_uri).await?, &self.allowed)
    }

    /// The `jwks_uri` of the issuer's discovery document, whose `issuer` must be the configured one exactly
    /// (OpenID Connect Discovery 1.0 §4.3).
    async fn discover(&self) -> Result<Url, FetchError> {
        let url = Url::parse(&discovery_url(&self.issuer)).map_err(|e| FetchError::Malformed(e.to_string()))?;
        let body = get_bounded(&self.http, &url).await?;
        let document: Value = serde_json::from_slice(&body).map_err(|e| FetchError::Malformed(e.to_string()))?;
        if document.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(FetchError::Malformed("the discovery document names another issuer".into()));
        }
        let jwks_uri =
            document.get("jwks_uri").and_then(Value::as_str).ok_or(FetchError::Malformed("no jwks_uri".into()))?;
        check_fetch_url(jwks_uri).map_err(FetchError::Malformed)
    }

    /// Fetches the set now and then every refresh interval (sooner again after a failure), until aborted. The fetch
    /// lock is taken before this returns, so a request that arrives before the first fetch waits for it instead of
    /// spending the unknown-`kid` refetch on it.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::AbortHandle {
        let first = self.fetching.clone().try_lock_owned().expect("nothing fetches before the refresh starts");
        let this = self.clone();
        tokio::spawn(async move {
            let mut held = Some(first);
            let mut failures: u32 = 0;
            loop {
                let mut fetching = match held.take() {
                    Some(guard) => guard,
                    None => this.fetching.clone().lock_owned().await,
                };
                let fetched = this.fetch(&mut fetching).await.is_ok();
                drop(fetching);
                failures = if fetched { 0 } else { failures.saturating_add(1) };
                tokio::time::sleep(retry_after(failures, this.timing.refresh)).await;
            }
        })
        .abort_handle()
    }
}

/// The wait before the next periodic fetch: the refresh interval, or after failures 1 s, 2 s, 4 s, ... up to it.
fn retry_after(failures: u32, refresh: Duration) -> Duration {
    match failures {
        0 => refresh,
        n => Duration::from_secs(1u64 << (n - 1).min(6)).min(refresh),
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    use super::*;

    const ALL: [Algorithm; 4] = ASYMMETRIC_ALGORITHMS;

    fn ec_jwk(kid: &str) -> Value {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("parses");
        let point = pair.public_key().as_ref();
        json!({ "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]) })
    }

    fn ed_jwk(kid: &str) -> Value {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("a key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parses");
        json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()) })
    }

    /// An RSA public JWK of the right shape (the modulus need not be a real one to be parsed).
    fn rsa_jwk(kid: &str, modulus_bytes: usize) -> Value {
        let n = vec![0xC5u8; modulus_bytes];
        json!({ "kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB" })
    }

    fn parse(keys: Vec<Value>, allowed: &[Algorithm]) -> Result<Vec<PublicKey>, FetchError> {
        parse_jwks(json!({ "keys": keys }).to_string().as_bytes(), allowed)
    }

    #[test]
    fn the_algorithm_comes_from_the_allow_list_and_the_key_type_never_the_header_alone() {
        assert_eq!(select_algorithm("RS256", KeyType::Rsa, None, &ALL), Some(Algorithm::RS256));
        assert_eq!(select_algorithm("PS256", KeyType::Rsa, None, &ALL), Some(Algorithm::PS256));
        assert_eq!(select_algorithm("ES256", KeyType::P256, None, &ALL), Some(Algorithm::ES256));
        assert_eq!(select_algorithm("EdDSA", KeyType::Ed25519, None, &ALL), Some(Algorithm::EdDSA));
        for header in ["none", "None", "HS256", "HS384", "HS512", "RS384", "ES384", "", "rs256"] {
            for key in [KeyType::Rsa, KeyType::P256, KeyType::Ed25519] {
                assert_eq!(select_algorithm(header, key, None, &ALL), None, "{header} with {key:?}");
            }
        }
        assert_eq!(select_algorithm("ES256", KeyType::Rsa, None, &ALL), None, "the key type decides");
        assert_eq!(select_algorithm("RS256", KeyType::P256, None, &ALL), None);
        assert_eq!(select_algorithm("EdDSA", KeyType::P256, None, &ALL), None);
        assert_eq!(select_algorithm("RS256", KeyType::Rsa, None, &[Algorithm::ES256]), None, "the allow-list decides");
        assert_eq!(
            select_algorithm("RS256", KeyType::Rsa, Some(Algorithm::PS256), &ALL),
            None,
            "a key that names its alg is used with that alg only"
        );
        assert_eq!(select_algorithm("PS256", KeyType::Rsa, Some(Algorithm::PS256), &ALL), Some(Algorithm::PS256));
    }

    #[test]
    fn a_jwk_set_keeps_only_signature_keys_of_the_allowed_types() {
        let keys = parse(
            vec![
                rsa_jwk("rsa", 256),
                ec_jwk("ec"),
                ed_jwk("ed"),
                json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" }),
                {
                    let mut k = ec_jwk("enc");
                    k["use"] = json!("enc");
                    k
                },
                {
                    let mut k = ec_jwk("ops");
                    k["key_ops"] = json!(["encrypt"]);
                    k
                },
                {
                    let mut k = rsa_jwk("rs384", 256);
                    k["alg"] = json!("RS384");
                    k
                },
                {
                    let mut k = rsa_jwk("confused", 256);
                    k["alg"] = json!("ES256");
                    k
                },
                rsa_jwk("short", 128),
                json!({ "kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA" }),
                json!({ "kty": "OKP", "crv": "X25519", "kid": "x25519", "x": URL_SAFE_NO_PAD.encode([1u8; 32]) }),
                json!({ "kty": "RSA", "kid": "broken", "n": "not base64!", "e": "AQAB" }),
                {
                    let mut k = ed_jwk("long");
                    k["kid"] = json!("k".repeat(MAX_KID_BYTES + 1));
                    k
                },
            ],
            &ALL,
        )
        .expect("a set with usable keys");
        let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, ["rsa", "ec", "ed"]);
        let only_ec = parse(vec![rsa_jwk("rsa", 256), ec_jwk("ec")], &[Algorithm::ES256]).expect("the EC key");
        assert_eq!(only_ec.len(), 1, "a key no allowed algorithm can use is dropped");
    }

    #[test]
    fn a_set_with_no_usable_key_too_many_keys_or_no_keys_array_is_refused_whole() {
        assert!(matches!(parse(vec![json!({ "kty": "oct", "k": "AA" })], &ALL), Err(FetchError::Malformed(_))));
        let many: Vec<Value> = (0..=MAX_KEYS).map(|i| rsa_jwk(&i.to_string(), 256)).collect();
        assert!(matches!(parse(many, &ALL), Err(FetchError::Malformed(_))));
        assert!(parse_jwks(b"{\"keys\": {}}", &ALL).is_err());
        assert!(parse_jwks(b"<html>", &ALL).is_err());
    }

    #[test]
    fn a_token_finds_its_key_by_kid_or_as_the_only_fit() {
        let keys = parse(vec![rsa_jwk("rsa", 256), ec_jwk("ec")], &ALL).expect("keys");
        assert!(
            matches!(lookup(&keys, "ES256", Some("ec"), &ALL), Lookup::Found(k, Algorithm::ES256) if k.kid.as_deref() == Some("ec"))
        );
        assert!(matches!(lookup(&keys, "PS256", Some("rsa"), &ALL), Lookup::Found(_, Algorithm::PS256)));
        assert!(matches!(lookup(&keys, "ES256", Some("new"), &ALL), Lookup::UnknownKid));
        assert!(matches!(lookup(&keys, "HS256", Some("rsa"), &ALL), Lookup::Refused), "alg confusion");
        assert!(matches!(lookup(&keys, "ES256", Some("rsa"), &ALL), Lookup::Refused));
        assert!(matches!(lookup(&keys, "ES256", None, &ALL), Lookup::Found(_, Algorithm::ES256)), "the only EC key");
        let two = parse(vec![ec_jwk("a"), ec_jwk("b")], &ALL).expect("keys");
        assert!(matches!(lookup(&two, "ES256", None, &ALL), Lookup::Refused), "no kid, two candidates");
    }

    #[test]
    fn a_kid_that_stays_unknown_backs_off_and_never_holds_back_another_kid() {
        let interval = Duration::from_secs(60);
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut gate = RefetchGate::default();
        assert!(gate.allow("bogus", at(0), interval), "the first one");
        assert!(!gate.allow("bogus", at(0), interval));
        assert!(!gate.allow("bogus", at(59), interval));
        assert!(gate.allow("rotated", at(59), interval), "another kid is not held back by the bogus one");
        assert!(gate.allow("bogus", at(60), interval), "once its interval has passed");
        assert!(!gate.allow("bogus", at(179), interval), "then it waits twice as long");
        assert!(gate.allow("bogus", at(180), interval));
        assert!(!gate.allow("bogus", at(419), interval));
        assert!(gate.allow("bogus", at(420), interval));
        let mut long = RefetchGate::default();
        let mut t = 0;
        for _ in 0..20 {
            t += 10_000;
            long.allow("bogus", at(t), interval);
        }
        assert!(!long.allow("bogus", at(t + 3599), interval));
        assert!(long.allow("bogus", at(t + 3600), interval), "the backoff stops growing at an hour");
    }

    #[test]
    fn a_flood_of_random_kids_fetches_a_bounded_number_of_times_per_interval() {
        let interval = Duration::from_secs(60);
        let start = Instant::now();
        let mut gate = RefetchGate::default();
        // 1,000 made-up kids over ten minutes, one every 600 ms, each sent three times.
        let mut allowed = Vec::new();
        for i in 0..1000u64 {
            let now = start + Duration::from_millis(600 * i);
            for _ in 0..3 {
                if gate.allow(&format!("random-{i}"), now, interval) {
                    allowed.push(now);
                }
            }
        }
        let most_in_a_window = allowed
            .iter()
            .map(|from| allowed.iter().filter(|t| **t >= *from && t.duration_since(*from) < interval).count())
            .max()
            .unwrap_or(0);
        assert!(most_in_a_window < 2 * REFETCH_BURST as usize, "{most_in_a_window} fetches within one interval");
        assert!(allowed.len() <= REFETCH_BURST as usize * 11, "{} fetches in ten minutes", allowed.len());
        // A rotated-in kid waits at most one spacing of the budget for a fetch of its own.
        let last = start + Duration::from_millis(600 * 999);
        assert!((0..=20).any(|s| gate.allow("rotated", last + Duration::from_secs(s), interval)));
        // However many kids come, the gate remembers a bounded number.
        let mut big = RefetchGate::default();
        for i in 0..(MAX_TRACKED_KIDS as u64 + 500) {
            assert!(big.allow(&format!("k{i}"), start + interval * (i as u32), interval));
        }
        assert_eq!(big.tracked(), MAX_TRACKED_KIDS);
        assert!(!big.tracks("k499") && big.tracks("k500"), "the oldest are forgotten first");
    }

    #[test]
    fn failed_fetches_are_retried_sooner_than_the_refresh_and_never_later() {
        let refresh = Duration::from_secs(300);
        assert_eq!(retry_after(0, refresh), refresh);
        assert_eq!(retry_after(1, refresh), Duration::from_secs(1));
        assert_eq!(retry_after(3, refresh), Duration::from_secs(4));
        assert_eq!(retry_after(40, refresh), Duration::from_secs(64));
        assert_eq!(retry_after(40, Duration::from_secs(10)), Duration::from_secs(10));
    }

    #[test]
    fn keys_are_fetched_over_https_or_from_this_machine_only() {
        for ok in
            ["https://id.example.com/keys", "http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]:9/k"]
        {
            assert!(check_fetch_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://id.example.com/keys",
            "http://10.0.0.1/jwks",
            "ftp://id.example.com/",
            "not a url",
            "file:///etc/keys",
        ] {
            assert!(check_fetch_url(bad).is_err(), "{bad}");
        }
        assert_eq!(discovery_url("https://id.example.com/"), "https://id.example.com/.well-known/openid-configuration");
        assert_eq!(
            discovery_url("https://id.example.com/tenant"),
            "https://id.example.com/tenant/.well-known/openid-configuration"
        );
    }
}
