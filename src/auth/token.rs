//! Bearer tokens: verifying incoming ones, and minting sandbox dev tokens (HS256, issuer [`DEV_ISSUER`]), which a
//! gateway in front of a real provider never accepts. A token goes to its configured issuer by its unverified `iss`,
//! whose keys check the signature before the claims, so a forged token is "invalid", never "expired".

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::claims::{ClaimRules, Expected};
use super::jwks::{check_fetch_url, FetchTiming, IssuerKeys, KeySource, ASYMMETRIC_ALGORITHMS, MAX_KID_BYTES};
use super::{Principal, ScopeGrants};
use crate::secret::Secret;

/// Issuer of the tokens `kyc-gateway token` mints.
pub const DEV_ISSUER: &str = "kyc-gateway-dev";
/// The documented default of `KYC_GATEWAY_DEV_SECRET`; fine for the sandbox, refused anywhere else.
pub const DEFAULT_DEV_SECRET: &str = "kyc-gateway-sandbox-dev-secret";
/// The shortest HS256 secret production mode starts with: the size of the hash output (RFC 7518 §3.2).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// The longest token read. Identity providers' access tokens are a few KB; a larger one is refused unread.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The clock leeway of sandbox dev tokens (production's is `KYC_GATEWAY_JWT_LEEWAY_SECS`).
const DEV_LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    /// Space-separated scopes (OAuth 2.0 style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// Scopes as an array (the `scp` convention of some identity providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scp: Option<Vec<String>>,
    /// The client the token was issued to; equal to `sub` on client (service) tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
}

/// Who a dev token is minted for.
#[derive(Debug, Clone)]
pub enum Subject {
    User(String),
    Client(String),
}

fn now() -> u64 {
    crate::clock::unix_seconds().max(0) as u64
}

/// Mints an HS256 token of `issuer` for `subject`, valid for `ttl_secs` (negative for a token that has already
/// expired). A client token's `client_id` is its `sub` (RFC 9068). The one minting function: the `token` command, the
/// tests and the benchmark all use it.
pub fn mint_hs256(secret: &Secret, issuer: &str, subject: &Subject, scope: &str, ttl_secs: i64) -> String {
    let iat = now();
    let (sub, client_id) = match subject {
        Subject::User(id) => (id.clone(), None),
        Subject::Client(name) => (name.clone(), Some(name.clone())),
    };
    let claims = Claims {
        iss: issuer.to_owned(),
        sub,
        exp: iat.saturating_add_signed(ttl_secs),
        iat: Some(iat),
        scope: Some(scope.to_owned()),
        scp: None,
        client_id,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.expose().as_bytes()))
        .expect("HS256 signing of plain claims cannot fail")
}

/// Mints a sandbox dev token (issuer [`DEV_ISSUER`]).
pub fn mint_dev_token(secret: &Secret, subject: &Subject, scope: &str, ttl_secs: i64) -> String {
    mint_hs256(secret, DEV_ISSUER, subject, scope, ttl_secs)
}

/// Why a bearer token was refused. The text is safe to show to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    /// A user's token from an issuer other than the one that names the gateway's users (`KYC_GATEWAY_JWT_USER_ISSUER`).
    #[error("invalid token: its issuer does not name this gateway's users (only its client tokens are accepted)")]
    NotUsersIssuer,
}

/// An issuer that shares an HS256 secret with the gateway (`KYC_GATEWAY_JWT_SECRET`, `KYC_GATEWAY_JWT_ISSUER`).
#[derive(Debug, Clone)]
pub struct SecretIssuer {
    pub issuer: String,
    pub secret: Secret,
}

/// An issuer that publishes its keys (an entry of `KYC_GATEWAY_JWT_ISSUERS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    /// The `iss` of its tokens, exactly.
    pub issuer: String,
    /// Its JWK Set URL; `None`: the `jwks_uri` of its OpenID Connect Discovery document.
    pub jwks_url: Option<String>,
}

/// How production mode verifies callers' tokens. `config/tokens.rs` reads it from the environment and checks it.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub secret_issuer: Option<SecretIssuer>,
    pub issuers: Vec<IssuerSettings>,
    /// When not empty, every token's `aud` must name one of these.
    pub audiences: Vec<String>,
    /// What issuers with published keys may sign with (a subset of [`ASYMMETRIC_ALGORITHMS`]).
    pub algorithms: Vec<Algorithm>,
    /// Clock difference allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// How often every issuer's keys are fetched again.
    pub jwks_refresh: Duration,
    /// The least time between two fetches caused by tokens naming an unknown `kid`.
    pub jwks_refetch: Duration,
    /// The longest a key or discovery document may take to arrive.
    pub jwks_timeout: Duration,
    pub claims: ClaimRules,
    /// The issuer whose `sub` names a gateway user; `None`: the only issuer, when there is one.
    pub user_issuer: Option<String>,
    /// The scopes an issuer may grant; an issuer not listed grants any.
    pub issuer_scopes: Vec<(String, ScopeGrants)>,
}

impl TokenSettings {
    /// Every configured issuer, the shared secret's first.
    pub fn issuer_names(&self) -> impl Iterator<Item = &str> {
        self.secret_issuer.iter().map(|s| s.issuer.as_str()).chain(self.issuers.iter().map(|i| i.issuer.as_str()))
    }

    /// That one issuer names users (when there are several, the one configured) and the scope grants name issuers.
    pub fn check_issuer_roles(&self) -> Result<(), String> {
        let known = |issuer: &str| self.issuer_names().any(|i| i == issuer);
        match &self.user_issuer {
            Some(users) if !known(users) => {
                return Err(format!("KYC_GATEWAY_JWT_USER_ISSUER {users:?} is none of the configured issuers"))
            }
            None if self.issuer_names().count() > 1 => {
                return Err("several token issuers are configured; set KYC_GATEWAY_JWT_USER_ISSUER to the one whose \
                            `sub` is your users' id (the tokens of the others act only as clients)"
                    .into())
            }
            _ => {}
        }
        match self.issuer_scopes.iter().find(|(issuer, _)| !known(issuer)) {
            Some((issuer, _)) => {
                Err(format!("KYC_GATEWAY_JWT_ISSUER_SCOPES names {issuer:?}, which is none of the configured issuers"))
            }
            None => Ok(()),
        }
    }

    /// The issuer whose `sub` names a gateway user: the configured one, or the only issuer.
    pub fn users_issuer(&self) -> Option<&str> {
        match &self.user_issuer {
            Some(issuer) => Some(issuer),
            None => {
                let mut all = self.issuer_names();
                let first = all.next();
                first.filter(|_| all.next().is_none())
            }
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            secret_issuer: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            algorithms: ASYMMETRIC_ALGORITHMS.to_vec(),
            leeway: Duration::from_secs(30),
            jwks_refresh: Duration::from_secs(300),
            jwks_refetch: Duration::from_secs(60),
            jwks_timeout: Duration::from_secs(5),
            claims: ClaimRules::default(),
            user_issuer: None,
            issuer_scopes: Vec::new(),
        }
    }
}

/// The parts of a compact JWS (RFC 7515 §7.1), decoded but not yet verified.
struct Jws<'a> {
    header: JwsHeader,
    claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    signing_input: &'a str,
    signature: &'a str,
}

#[derive(Deserialize)]
struct JwsHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Extensions the verifier must understand (RFC 7515 §4.1.11); this one understands none.
    #[serde(default)]
    crit: Option<Value>,
}

impl<'a> Jws<'a> {
    fn parse(token: &'a str) -> Result<Self, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid);
        }
        let (signing_input, signature) = token.rsplit_once('.').ok_or(AuthError::Invalid)?;
        let (header, payload) = signing_input.split_once('.').ok_or(AuthError::Invalid)?;
        let json = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| AuthError::Invalid);
        let header: JwsHeader = serde_json::from_slice(&json(header)?).map_err(|_| AuthError::Invalid)?;
        if header.crit.is_some() || header.kid.as_ref().is_some_and(|kid| kid.len() > MAX_KID_BYTES) {
            return Err(AuthError::Invalid);
        }
        let claims = serde_json::from_slice(&json(payload)?).map_err(|_| AuthError::Invalid)?;
        Ok(Jws { header, claims, signing_input, signature })
    }
}

/// What one issuer's tokens may be: a user's only from the issuer that names users, scopes only those it may grant.
struct IssuerPolicy {
    issuer: Arc<str>,
    names_users: bool,
    grants: Option<ScopeGrants>,
}

struct Verifier {
    /// The HS256 issuer and its key: the sandbox's dev issuer, or production's explicitly configured one.
    secret: Option<(String, DecodingKey)>,
    policies: Vec<IssuerPolicy>,
    issuers: Vec<Arc<IssuerKeys>>,
    audiences: Vec<String>,
    leeway: u64,
    rules: ClaimRules,
}

/// A verified token: the caller (with the issuer that signed it), and when it expires (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    pub expires_at: i64,
}

/// Verifies bearer tokens of the configured issuers. Cheap to clone: clones share the key caches.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Verifier>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issuers: Vec<&str> = self.inner.issuers.iter().map(|i| i.issuer()).collect();
        let secret = self.inner.secret.as_ref().map(|(issuer, _)| issuer);
        f.debug_struct("TokenVerifier")
            .field("secret_issuer", &secret)
            .field("issuers", &issuers)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Accepts HS256 tokens of `issuer` signed with `secret`; `audience`, when set, must be in the token's `aud`.
    /// The sandbox's verifier (dev tokens); scopes and clients are read by the default [`ClaimRules`].
    pub fn hs256(secret: &Secret, issuer: &str, audience: Option<&str>) -> Self {
        TokenVerifier {
            inner: Arc::new(Verifier {
                secret: Some((issuer.to_owned(), DecodingKey::from_secret(secret.expose().as_bytes()))),
                policies: vec![IssuerPolicy { issuer: Arc::from(issuer), names_users: true, grants: None }],
                issuers: Vec::new(),
                audiences: audience.map(str::to_owned).into_iter().collect(),
                leeway: DEV_LEEWAY_SECS,
                rules: ClaimRules::default(),
            }),
        }
    }

    /// Production's verifier. Nothing is fetched until [`TokenVerifier::start`]; the settings' limits (secret
    /// length, issuers) are checked by the configuration, only what would make this verifier unsafe is refused here.
    pub fn new(settings: &TokenSettings) -> anyhow::Result<Self> {
        if let Some(alg) = settings.algorithms.iter().find(|alg| !ASYMMETRIC_ALGORITHMS.contains(alg)) {
            anyhow::bail!("{alg:?} is not an algorithm for published keys");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.jwks_timeout)
            .timeout(settings.jwks_timeout)
            // A key endpoint that redirects is misconfigured; keys come only from the configured place.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kyc-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let timing = FetchTiming { refresh: settings.jwks_refresh, refetch: settings.jwks_refetch };
        let issuers = settings
            .issuers
            .iter()
            .map(|i| {
                let source = match &i.jwks_url {
                    Some(url) => KeySource::Jwks(check_fetch_url(url).map_err(anyhow::Error::msg)?),
                    None => KeySource::Discovery,
                };
                let keys = IssuerKeys::new(i.issuer.clone(), source, settings.algorithms.clone(), http.clone(), timing);
                Ok(Arc::new(keys))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let secret = settings
            .secret_issuer
            .as_ref()
            .map(|s| (s.issuer.clone(), DecodingKey::from_secret(s.secret.expose().as_bytes())));
        settings.check_issuer_roles().map_err(anyhow::Error::msg)?;
        let users = settings.users_issuer();
        let policies = settings
            .issuer_names()
            .map(|issuer| IssuerPolicy {
                issuer: Arc::from(issuer),
                names_users: users == Some(issuer),
                grants: settings.issuer_scopes.iter().find(|(i, _)| i == issuer).map(|(_, g)| g.clone()),
            })
            .collect();
        Ok(TokenVerifier {
            inner: Arc::new(Verifier {
                secret,
                policies,
                issuers,
                audiences: settings.audiences.clone(),
                leeway: settings.leeway.as_secs(),
                rules: settings.claims.clone(),
            }),
        })
    }

    /// The issuer whose `sub` names a gateway user.
    pub fn users_issuer(&self) -> Option<&str> {
        self.inner.policies.iter().find(|p| p.names_users).map(|p| &*p.issuer)
    }

    /// Starts fetching every issuer's keys, now and periodically; call once. The tasks run until aborted.
    pub fn start(&self) -> Vec<tokio::task::AbortHandle> {
        self.inner.issuers.iter().map(|keys| keys.spawn_refresh()).collect()
    }

    /// Whether tokens of every configured issuer can be verified: each issuer's keys have been fetched (a verifier
    /// of a shared secret only is always ready).
    pub async fn ready(&self) -> bool {
        self.inner.issuers.iter().all(|keys| keys.has_keys())
    }

    /// Verifies the value of an `Authorization` header.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        self.verify_header_fully(header).await.map(|verified| verified.principal)
    }

    /// Verifies the value of an `Authorization` header: the caller, and what the audit trail records of its token.
    pub async fn verify_header_fully(&self, header: Option<&str>) -> Result<Verified, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        self.verify_fully(token.trim()).await
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_fully(token).await.map(|verified| verified.principal)
    }

    /// Verifies a token and answers when it expires (unix seconds): a WebSocket connection authenticated once
    /// must end when its token does.
    pub async fn verify_with_expiry(&self, token: &str) -> Result<(Principal, i64), AuthError> {
        self.verify_fully(token).await.map(|verified| (verified.principal, verified.expires_at))
    }

    /// Verifies a token: the caller, its issuer and its expiry.
    pub async fn verify_fully(&self, token: &str) -> Result<Verified, AuthError> {
        let jws = Jws::parse(token)?;
        let iss = jws.claims.get("iss").and_then(Value::as_str).ok_or(AuthError::Invalid)?;
        let (issuer, key, alg) = self.key_for(iss, &jws.header).await.ok_or(AuthError::Invalid)?;
        let signed = jsonwebtoken::crypto::verify(jws.signature, jws.signing_input.as_bytes(), &key, alg);
        if !signed.unwrap_or(false) {
            return Err(AuthError::Invalid);
        }
        let expected = Expected { issuer, audiences: &self.inner.audiences, leeway: self.inner.leeway };
        let exp = expected.check(&jws.claims, crate::clock::unix_seconds())?;
        let policy = self.inner.policies.iter().find(|p| &*p.issuer == issuer).ok_or(AuthError::Invalid)?;
        let principal = match self.inner.rules.principal(&policy.issuer, &jws.claims)? {
            Principal::User { .. } if !policy.names_users => return Err(AuthError::NotUsersIssuer),
            principal => principal,
        };
        let principal = match &policy.grants {
            None => principal,
            Some(grants) => principal.granted_by(grants),
        };
        Ok(Verified { principal, expires_at: exp })
    }

    /// The configured issuer named `iss`, and the key and algorithm its token is verified with.
    async fn key_for(&self, iss: &str, header: &JwsHeader) -> Option<(&str, DecodingKey, Algorithm)> {
        if let Some((issuer, key)) = &self.inner.secret {
            if issuer == iss {
                // The shared secret verifies HS256 and nothing else.
                return (header.alg == "HS256").then(|| (issuer.as_str(), key.clone(), Algorithm::HS256));
            }
        }
        let keys = self.inner.issuers.iter().find(|keys| keys.issuer() == iss)?;
        let (key, alg) = keys.key_for(&header.alg, header.kid.as_deref()).await?;
        Some((keys.issuer(), key, alg))
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    use super::*;
    use crate::auth::Scopes;

    fn secret() -> Secret {
        Secret::new("s3cret")
    }

    fn dev() -> TokenVerifier {
        TokenVerifier::hs256(&secret(), DEV_ISSUER, None)
    }

    fn encode(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).expect("signs")
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[tokio::test]
    async fn a_minted_user_token_verifies_with_its_scopes() {
        let token = mint_dev_token(&secret(), &Subject::User("u1".into()), "uid:read contact:read", 60);
        let p = dev().verify(&token).await.expect("valid");
        assert_eq!(p.user_id().map(|u| u.as_str()), Some("u1"));
        assert!(p.has("contact:read") && p.has("uid:read") && !p.has("client.users:read"));
    }

    #[tokio::test]
    async fn a_client_token_is_no_user() {
        let token = mint_dev_token(&secret(), &Subject::Client("mesh".into()), "client.users:read", 60);
        let p = dev().verify(&token).await.expect("valid");
        assert_eq!(
            p,
            Principal::Client {
                issuer: DEV_ISSUER.into(),
                name: "mesh".into(),
                scopes: Scopes::parse("client.users:read")
            }
        );
    }

    #[tokio::test]
    async fn a_user_token_naming_its_client_is_still_a_user_token() {
        let claims = Claims {
            iss: DEV_ISSUER.into(),
            sub: "u1".into(),
            exp: now() + 60,
            iat: None,
            scope: Some("uid:read".into()),
            scp: None,
            client_id: Some("web-app".into()),
        };
        let key = EncodingKey::from_secret(secret().expose().as_bytes());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("signs");
        let p = dev().verify(&token).await.expect("valid");
        assert_eq!(p.user_id().map(|u| u.as_str()), Some("u1"));
    }

    #[tokio::test]
    async fn expired_wrongly_signed_and_foreign_tokens_are_refused() {
        let verifier = dev();
        let expired = mint_dev_token(&secret(), &Subject::User("u".into()), "", -120);
        assert_eq!(verifier.verify(&expired).await, Err(AuthError::Expired));
        let other_key = mint_dev_token(&Secret::new("other"), &Subject::User("u".into()), "", 60);
        assert_eq!(verifier.verify(&other_key).await, Err(AuthError::Invalid));
        let dev_token = mint_dev_token(&secret(), &Subject::User("u".into()), "", 60);
        let production = TokenVerifier::hs256(&secret(), "https://id.example.com/", None);
        assert_eq!(production.verify(&dev_token).await, Err(AuthError::Invalid));
        assert_eq!(verifier.verify_header(Some("Basic abc")).await, Err(AuthError::NotBearer));
        assert_eq!(verifier.verify_header(None).await, Err(AuthError::Missing));
    }

    #[tokio::test]
    async fn the_shared_secret_verifies_hs256_only_and_never_an_unsigned_token() {
        let claims = json!({ "iss": DEV_ISSUER, "sub": "u1", "exp": now() + 60 });
        let key = EncodingKey::from_secret(secret().expose().as_bytes());
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            assert_eq!(dev().verify(&encode(alg, None, &claims, &key)).await, Err(AuthError::Invalid), "{alg:?}");
        }
        for alg in ["none", "None", "NONE"] {
            let unsigned = format!("{}.{}.", b64(&json!({ "alg": alg, "typ": "JWT" })), b64(&claims));
            assert_eq!(dev().verify(&unsigned).await, Err(AuthError::Invalid), "alg {alg}");
        }
        assert!(dev().verify(&encode(Algorithm::HS256, None, &claims, &key)).await.is_ok());
    }

    #[tokio::test]
    async fn tokens_that_are_too_long_malformed_or_carry_critical_extensions_are_refused() {
        let key = EncodingKey::from_secret(secret().expose().as_bytes());
        let big = json!({ "iss": DEV_ISSUER, "sub": "u1", "exp": now() + 60, "pad": "x".repeat(MAX_TOKEN_BYTES) });
        assert_eq!(dev().verify(&encode(Algorithm::HS256, None, &big, &key)).await, Err(AuthError::Invalid));
        let claims = json!({ "iss": DEV_ISSUER, "sub": "u1", "exp": now() + 60 });
        let good = encode(Algorithm::HS256, None, &claims, &key);
        let (signing_input, signature) = good.rsplit_once('.').expect("three parts");
        let crit_header = b64(&json!({ "alg": "HS256", "crit": ["exp"], "exp": 1 }));
        let crit_input = format!("{crit_header}.{}", signing_input.split_once('.').expect("parts").1);
        let crit_signature = jsonwebtoken::crypto::sign(crit_input.as_bytes(), &key, Algorithm::HS256).expect("signs");
        assert_eq!(dev().verify(&format!("{crit_input}.{crit_signature}")).await, Err(AuthError::Invalid));
        for broken in [signing_input.to_owned(), format!("{good}.{signature}"), format!("x{good}"), String::new()] {
            assert_eq!(dev().verify(&broken).await, Err(AuthError::Invalid), "{broken}");
        }
    }

    #[tokio::test]
    async fn with_an_audience_a_token_without_aud_or_with_aud_null_is_refused() {
        let verifier = TokenVerifier::hs256(&secret(), DEV_ISSUER, Some("kyc-gateway"));
        let key = EncodingKey::from_secret(secret().expose().as_bytes());
        let base = json!({ "iss": DEV_ISSUER, "sub": "u1", "exp": now() + 60 });
        assert_eq!(verifier.verify(&encode(Algorithm::HS256, None, &base, &key)).await, Err(AuthError::Invalid));
        for (aud, accepted) in [(json!(null), false), (json!("other"), false), (json!("kyc-gateway"), true)] {
            let mut claims = base.clone();
            claims["aud"] = aud.clone();
            let answer = verifier.verify(&encode(Algorithm::HS256, None, &claims, &key)).await;
            assert_eq!(answer.is_ok(), accepted, "aud {aud}: {answer:?}");
        }
    }

    #[tokio::test]
    async fn an_issuer_with_published_keys_verifies_its_own_keys_and_never_hs256() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("parses");
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": "k1",
                          "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]) });
        let issuer = "https://id.example.com/";
        let settings = TokenSettings {
            issuers: vec![IssuerSettings { issuer: issuer.into(), jwks_url: Some("http://127.0.0.1:9/jwks".into()) }],
            ..TokenSettings::default()
        };
        let verifier = TokenVerifier::new(&settings).expect("a verifier");
        assert!(!verifier.ready().await, "no keys fetched yet");
        let keys =
            super::super::jwks::parse_jwks(json!({ "keys": [jwk] }).to_string().as_bytes(), &settings.algorithms)
                .expect("keys");
        verifier.inner.issuers[0].preload(keys);
        assert!(verifier.ready().await);

        let claims = json!({ "iss": issuer, "sub": "u1", "exp": now() + 60, "scp": ["uid:read"] });
        let token = encode(Algorithm::ES256, Some("k1"), &claims, &EncodingKey::from_ec_der(pkcs8.as_ref()));
        let p = verifier.verify(&token).await.expect("valid");
        assert!(p.user_id().map(|u| u.as_str()) == Some("u1") && p.has("uid:read"));
        // The public key as an HMAC secret, in the forms an attacker might try.
        for secret in [point.clone(), jwk_text(&point)] {
            let forged = encode(Algorithm::HS256, Some("k1"), &claims, &EncodingKey::from_secret(&secret));
            assert_eq!(verifier.verify(&forged).await, Err(AuthError::Invalid));
        }
        let dev_token = mint_dev_token(&secret(), &Subject::User("u1".into()), "", 60);
        assert_eq!(verifier.verify(&dev_token).await, Err(AuthError::Invalid), "no shared secret configured");
    }

    fn jwk_text(point: &[u8]) -> Vec<u8> {
        json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]) }).to_string().into_bytes()
    }

    #[test]
    fn production_settings_default_to_the_four_asymmetric_algorithms_and_a_short_leeway() {
        let d = TokenSettings::default();
        assert_eq!(d.algorithms, ASYMMETRIC_ALGORITHMS);
        assert!(d.leeway <= Duration::from_secs(30));
        let with_hs = TokenSettings { algorithms: vec![Algorithm::HS256], ..TokenSettings::default() };
        assert!(TokenVerifier::new(&with_hs).is_err(), "HS256 is never an algorithm of published keys");
    }
}
