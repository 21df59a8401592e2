//! Bearer tokens: minting sandbox dev tokens and verifying incoming ones.
//!
//! Sandbox mode accepts HS256 tokens minted by `kyc-gateway token` with the shared dev secret (issuer
//! [`DEV_ISSUER`]). A gateway in front of a real provider never accepts them: it verifies tokens of the configured
//! issuer only, and refuses to start while its signing secret is the documented default (see `config.rs`).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Principal, Scopes};
use crate::secret::Secret;

/// Issuer of the tokens `kyc-gateway token` mints.
pub const DEV_ISSUER: &str = "kyc-gateway-dev";
/// The documented default of `KYC_GATEWAY_DEV_SECRET`; fine for the sandbox, refused anywhere else.
pub const DEFAULT_DEV_SECRET: &str = "kyc-gateway-sandbox-dev-secret";

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
}

/// Verifies bearer tokens of one issuer signed with one HS256 secret.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").field("issuer", &self.validation.iss).finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Accepts tokens of `issuer` signed with `secret`; `audience`, when set, must be in the token's `aud`.
    pub fn hs256(secret: &Secret, issuer: &str, audience: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        TokenVerifier { key: DecodingKey::from_secret(secret.expose().as_bytes()), validation }
    }

    /// Verifies the value of an `Authorization` header.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        self.verify(token.trim())
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_with_expiry(token).map(|(principal, _)| principal)
    }

    /// Verifies a token and answers when it expires (unix seconds): a WebSocket connection authenticated once
    /// must end when its token does.
    pub fn verify_with_expiry(&self, token: &str) -> Result<(Principal, i64), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid,
        })?;
        let claims = data.claims;
        let scopes = match (claims.scope, claims.scp) {
            (Some(scope), _) => Scopes::parse(&scope),
            (None, Some(list)) => list.into_iter().collect(),
            (None, None) => Scopes::default(),
        };
        if claims.sub.is_empty() {
            return Err(AuthError::Invalid);
        }
        // A client-credentials token is about the client itself: its `sub` is its `client_id` (RFC 9068). A user's
        // token names the client it was issued to as well, with the user as `sub`.
        let principal = match claims.client_id {
            Some(name) if name == claims.sub => Principal::Client { name, scopes },
            _ => Principal::User { id: claims.sub, scopes },
        };
        Ok((principal, i64::try_from(claims.exp).unwrap_or(i64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("s3cret")
    }

    #[test]
    fn a_minted_user_token_verifies_with_its_scopes() {
        let token = mint_dev_token(&secret(), &Subject::User("u1".into()), "uid:read contact:read", 60);
        let p = TokenVerifier::hs256(&secret(), DEV_ISSUER, None).verify(&token).expect("valid");
        assert_eq!(p.user_id(), Some("u1"));
        assert!(p.has("contact:read") && p.has("uid:read") && !p.has("client.users:read"));
    }

    #[test]
    fn a_client_token_is_no_user() {
        let token = mint_dev_token(&secret(), &Subject::Client("mesh".into()), "client.users:read", 60);
        let p = TokenVerifier::hs256(&secret(), DEV_ISSUER, None).verify(&token).expect("valid");
        assert_eq!(p, Principal::Client { name: "mesh".into(), scopes: Scopes::parse("client.users:read") });
    }

    #[test]
    fn a_user_token_naming_its_client_is_still_a_user_token() {
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
        let p = TokenVerifier::hs256(&secret(), DEV_ISSUER, None).verify(&token).expect("valid");
        assert_eq!(p.user_id(), Some("u1"));
    }

    #[test]
    fn expired_wrongly_signed_and_foreign_tokens_are_refused() {
        let verifier = TokenVerifier::hs256(&secret(), DEV_ISSUER, None);
        let expired = mint_dev_token(&secret(), &Subject::User("u".into()), "", -120);
        assert_eq!(verifier.verify(&expired), Err(AuthError::Expired));
        let other_key = mint_dev_token(&Secret::new("other"), &Subject::User("u".into()), "", 60);
        assert_eq!(verifier.verify(&other_key), Err(AuthError::Invalid));
        let dev = mint_dev_token(&secret(), &Subject::User("u".into()), "", 60);
        let production = TokenVerifier::hs256(&secret(), "https://id.example.com/", None);
        assert_eq!(production.verify(&dev), Err(AuthError::Invalid));
        assert_eq!(verifier.verify_header(Some("Basic abc")), Err(AuthError::NotBearer));
        assert_eq!(verifier.verify_header(None), Err(AuthError::Missing));
    }
}
