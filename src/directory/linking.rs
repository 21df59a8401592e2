//! The `state` of an account-linking authorization (OAuth 2.0, RFC 6749 §10.12): bound to its user, expiring, single
//! use, and signed (`v1.<payload>.<signature>`, HMAC-SHA256 under a key derived from the encryption key, checked in
//! constant time), so a forged, foreign or expired state is refused before the store is asked.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::store::crypto::EncryptionKey;

const VERSION: &str = "v1";

/// What a state says, once its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateClaims {
    /// The directory's key of the state.
    #[serde(rename = "n")]
    pub nonce: String,
    /// The gateway user who started the authorization.
    #[serde(rename = "u")]
    pub user_id: String,
    /// Unix milliseconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// Signs and checks states.
pub struct StateSigner {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for StateSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSigner")
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl StateSigner {
    /// A signer whose key is derived from `key` (so states stay valid across replicas and restarts).
    pub fn new(key: &EncryptionKey) -> Self {
        let mut material = b"kyc-gateway link state\0".to_vec();
        material.extend_from_slice(key.bytes());
        let derived = ring::digest::digest(&ring::digest::SHA256, &material);
        StateSigner { key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()) }
    }

    pub fn sign(&self, claims: &StateClaims) -> String {
        let payload = b64(&serde_json::to_vec(claims).expect("claims serialise"));
        let signed = format!("{VERSION}.{payload}");
        let tag = ring::hmac::sign(&self.key, signed.as_bytes());
        format!("{signed}.{}", b64(tag.as_ref()))
    }

    /// The claims of a state this gateway signed; `None` for anything else (forged, altered, malformed).
    pub fn verify(&self, state: &str) -> Option<StateClaims> {
        // A state is short; anything long is not one of ours.
        if state.len() > 1024 {
            return None;
        }
        let (signed, tag) = state.rsplit_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag).ok()?;
        ring::hmac::verify(&self.key, signed.as_bytes(), &tag).ok()?;
        let payload = signed.strip_prefix(VERSION)?.strip_prefix('.')?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// How long a link state is kept after it expires: a replay within that time is told from a forgery.
pub const KEPT_AFTER_EXPIRY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// How often the purge of old link states runs.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Forgets the link states that expired more than [`KEPT_AFTER_EXPIRY`] before `now` (unix milliseconds); how many.
pub async fn purge(directory: &dyn super::Directory, now: i64) -> Result<u64, super::DirectoryError> {
    directory.purge_link_states(now - KEPT_AFTER_EXPIRY.as_millis() as i64).await
}

/// The background purge: [`purge`] at start and every [`PURGE_EVERY`], until aborted (at shutdown).
pub fn spawn_purge(directory: std::sync::Arc<dyn super::Directory>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = purge(directory.as_ref(), crate::clock::unix_millis()).await {
                tracing::warn!(%error, "could not purge expired link states");
            }
        }
    })
    .abort_handle()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(byte: u8) -> StateSigner {
        let key = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        StateSigner::new(&EncryptionKey::from_base64(&key).expect("key"))
    }

    #[test]
    fn a_signed_state_verifies_and_an_altered_or_foreign_one_does_not() {
        let claims = StateClaims { nonce: "n1".into(), user_id: "u1".into(), expires_at: 42 };
        let state = signer(1).sign(&claims);
        assert_eq!(signer(1).verify(&state), Some(claims.clone()));
        assert_eq!(signer(2).verify(&state), None, "another gateway's key");
        let forged = StateClaims { user_id: "u2".into(), ..claims };
        let payload = b64(&serde_json::to_vec(&forged).expect("json"));
        let tag = state.rsplit_once('.').expect("three parts").1;
        assert_eq!(signer(1).verify(&format!("v1.{payload}.{tag}")), None, "a payload changed under its signature");
        assert_eq!(signer(1).verify("garbage"), None);
    }
}
