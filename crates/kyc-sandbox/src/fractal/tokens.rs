//! The sandbox Fractal's OAuth token store, with Fractal's rotation rule: a refresh returns a new pair, and the old
//! pair is revoked once the new access token is first used. Refreshing again before that use keeps the chain: the
//! first use of the newest access token revokes every pair before it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::support::{random_token, same_secret};

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Whether `verifier` is a PKCE code verifier: 43 to 128 unreserved characters (RFC 7636 §4.1).
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether `challenge` can be an S256 challenge: a SHA-256 in base64url, without padding.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A Fractal user (uid).
    User(String),
    /// The client of a client-credentials grant.
    Client(String),
}

#[derive(Debug, Clone)]
struct AccessGrant {
    owner: Owner,
    scope: String,
    expires_at: Instant,
    /// The (refresh, access) pairs this token replaced; revoked on this token's first use.
    replaces: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    uid: String,
    scope: String,
    access: Option<String>,
    /// Earlier pairs of this chain that are not revoked yet.
    lineage: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
struct CodeGrant {
    uid: String,
    scope: String,
    client_id: String,
    redirect_uri: String,
    expires_at: Instant,
    /// The PKCE S256 challenge the authorization was started with.
    code_challenge: Option<String>,
}

/// A freshly issued token pair.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub scope: String,
}

pub struct TokenStore {
    access_ttl: Duration,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, RefreshGrant>,
    codes: HashMap<String, CodeGrant>,
}

/// What a bearer token is good for.
pub struct Bearer {
    pub owner: Owner,
    pub scope: String,
}

impl TokenStore {
    pub fn new(access_ttl: Duration) -> Self {
        TokenStore { access_ttl, access: HashMap::new(), refresh: HashMap::new(), codes: HashMap::new() }
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// A refresh token for `uid`, as if the user had just completed the authorization flow.
    pub fn grant_refresh(&mut self, uid: &str, scope: &str) -> String {
        let token = random_token();
        let grant = RefreshGrant { uid: uid.into(), scope: scope.into(), access: None, lineage: Vec::new() };
        self.refresh.insert(token.clone(), grant);
        token
    }

    /// An authorization code, valid for 10 minutes.
    pub fn grant_code(
        &mut self,
        uid: &str,
        scope: &str,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: Option<&str>,
    ) -> String {
        let code = random_token();
        let grant = CodeGrant {
            uid: uid.into(),
            scope: scope.into(),
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            expires_at: Instant::now() + Duration::from_secs(600),
            code_challenge: code_challenge.map(str::to_owned),
        };
        self.codes.insert(code.clone(), grant);
        code
    }

    fn issue_user(&mut self, uid: &str, scope: &str, replaces: Vec<(String, Option<String>)>) -> Issued {
        let access_token = random_token();
        let refresh_token = random_token();
        self.access.insert(
            access_token.clone(),
            AccessGrant {
                owner: Owner::User(uid.into()),
                scope: scope.into(),
                expires_at: Instant::now() + self.access_ttl,
                replaces: replaces.clone(),
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            RefreshGrant {
                uid: uid.into(),
                scope: scope.into(),
                access: Some(access_token.clone()),
                lineage: replaces,
            },
        );
        Issued { access_token, refresh_token: Some(refresh_token), scope: scope.into() }
    }

    /// Exchanges an authorization code (single use: a refused attempt uses it up too). A code issued with a PKCE
    /// challenge needs the verifier it was made from; one issued without takes no verifier.
    pub fn exchange_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Option<Issued> {
        let grant = self.codes.remove(code)?;
        if grant.client_id != client_id || grant.redirect_uri != redirect_uri || grant.expires_at < Instant::now() {
            return None;
        }
        let pkce = match (&grant.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) => {
                is_verifier(verifier) && same_secret(s256(verifier).as_bytes(), challenge.as_bytes())
            }
            (None, None) => true,
            _ => false,
        };
        if !pkce {
            return None;
        }
        Some(self.issue_user(&grant.uid, &grant.scope, Vec::new()))
    }

    /// Rotates a refresh token: a new pair; the old one lives until the new access token is used.
    pub fn refresh(&mut self, refresh_token: &str) -> Option<Issued> {
        let grant = self.refresh.get(refresh_token)?.clone();
        let mut replaces = grant.lineage;
        replaces.push((refresh_token.to_owned(), grant.access));
        Some(self.issue_user(&grant.uid, &grant.scope, replaces))
    }

    pub fn issue_client(&mut self, client_id: &str, scope: &str) -> Issued {
        let access_token = random_token();
        self.access.insert(
            access_token.clone(),
            AccessGrant {
                owner: Owner::Client(client_id.into()),
                scope: scope.into(),
                expires_at: Instant::now() + self.access_ttl,
                replaces: Vec::new(),
            },
        );
        Issued { access_token, refresh_token: None, scope: scope.into() }
    }

    /// Checks a bearer token at the resource server; its first use revokes the pair it replaced.
    pub fn use_access(&mut self, token: &str) -> Option<Bearer> {
        let grant = self.access.get_mut(token)?;
        if grant.expires_at <= Instant::now() {
            return None;
        }
        let bearer = Bearer { owner: grant.owner.clone(), scope: grant.scope.clone() };
        // Revoking what is already gone (a chain entry revoked earlier) is harmless.
        for (old_refresh, old_access) in std::mem::take(&mut grant.replaces) {
            self.refresh.remove(&old_refresh);
            if let Some(old) = old_access {
                self.access.remove(&old);
            }
        }
        Some(bearer)
    }

    /// Makes every access token expired, so the next use is refused (tests of the refresh path).
    pub fn expire_access_tokens(&mut self) {
        let past = Instant::now() - Duration::from_secs(1);
        for grant in self.access.values_mut() {
            grant.expires_at = past;
        }
    }

    /// Whether a refresh token would still be accepted.
    pub fn refresh_is_valid(&self, refresh_token: &str) -> bool {
        self.refresh.contains_key(refresh_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_pair_dies_when_the_rotated_access_token_is_first_used() {
        let mut store = TokenStore::new(Duration::from_secs(60));
        let r0 = store.grant_refresh("u", "uid:read");
        let first = store.refresh(&r0).expect("refresh");
        let r1 = first.refresh_token.clone().expect("rotated");
        assert!(store.refresh_is_valid(&r0), "old refresh token lives until the new access token is used");
        let second = store.refresh(&r1).expect("refresh again");
        assert!(store.use_access(&second.access_token).is_some());
        assert!(!store.refresh_is_valid(&r1));
        assert!(!store.refresh_is_valid(&r0), "the whole chain before the used token is revoked");
        assert!(store.use_access(&first.access_token).is_none(), "the replaced access token is revoked");
    }

    #[test]
    fn a_code_issued_with_a_challenge_needs_its_own_verifier() {
        let mut store = TokenStore::new(Duration::from_secs(60));
        let (mine, theirs) = ("m".repeat(43), "t".repeat(43));
        let challenge = s256(&mine);
        let mut code = || store.grant_code("u", "uid:read", "c", "https://r", Some(&challenge));
        let (a, b, c) = (code(), code(), code());
        assert!(store.exchange_code(&a, "c", "https://r", Some(&theirs)).is_none(), "another flow's verifier");
        assert!(store.exchange_code(&b, "c", "https://r", None).is_none(), "no verifier");
        assert!(store.exchange_code(&c, "c", "https://r", Some(&mine)).is_some());
        let plain = store.grant_code("u", "uid:read", "c", "https://r", None);
        assert!(store.exchange_code(&plain, "c", "https://r", Some(&mine)).is_none(), "a verifier for no challenge");
    }
}
