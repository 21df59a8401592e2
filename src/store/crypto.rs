//! Secrets at rest: AES-256-GCM (ring), a random nonce per value, the key's id (the first six bytes of its SHA-256,
//! telling nothing about the key) beside every value so that older keys are still read. The associated data binds a
//! value to its row and column, so a ciphertext copied to another user's row does not open.

use std::collections::HashMap;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::secret::Secret;

/// A 256-bit key.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey([u8; 32]);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptionKey({})", self.id())
    }
}

impl EncryptionKey {
    /// A key from its standard base64 form (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        use base64::Engine;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| "is not base64".to_owned())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| format!("holds {} bytes, not 32", b.len()))?;
        Ok(EncryptionKey(bytes))
    }

    /// A key derived from a passphrase (sandbox mode: the dev secret, so a file database survives restarts).
    pub fn derived(label: &str, passphrase: &Secret) -> Self {
        let digest =
            ring::digest::digest(&ring::digest::SHA256, format!("{label}\0{}", passphrase.expose()).as_bytes());
        EncryptionKey(digest.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }

    /// The key's id: the first six bytes of its SHA-256, in hex.
    pub fn id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Raw bytes, for deriving other keys (the link state's signing key).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("no configured key has id {0} (add it to KYC_GATEWAY_ENCRYPTION_OLD_KEYS)")]
    UnknownKey(String),
    #[error("a stored secret does not open under its key")]
    Corrupt,
}

/// Seals and opens stored secrets.
pub struct TokenCipher {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher").field("current", &self.current).finish_non_exhaustive()
    }
}

fn aead(key: &EncryptionKey) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key.0).expect("32 bytes make an AES-256 key"))
}

impl TokenCipher {
    /// Seals under `current`; opens under it or any of `older`.
    pub fn new(current: &EncryptionKey, older: &[EncryptionKey]) -> Self {
        let keys = std::iter::once(current).chain(older).map(|k| (k.id(), aead(k))).collect();
        TokenCipher { current: current.id(), keys, random: SystemRandom::new() }
    }

    /// `secret` sealed under the current key: (key id, sealed bytes).
    pub fn seal(&self, secret: &Secret, context: &str) -> (String, Vec<u8>) {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).expect("the OS random generator works");
        let mut sealed = secret.expose().as_bytes().to_vec();
        self.keys[&self.current]
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut sealed)
            .expect("AES-GCM seals any length the store holds");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        (self.current.clone(), out)
    }

    /// Opens what [`TokenCipher::seal`] sealed under key `key_id` for the same `context`.
    pub fn open(&self, key_id: &str, sealed: &[u8], context: &str) -> Result<Secret, CryptoError> {
        let key = self.keys.get(key_id).ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Corrupt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Corrupt)?;
        let mut body = body.to_vec();
        let plain =
            key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut body).map_err(|_| CryptoError::Corrupt)?;
        String::from_utf8(plain.to_vec()).map(Secret::new).map_err(|_| CryptoError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> EncryptionKey {
        EncryptionKey([byte; 32])
    }

    #[test]
    fn a_sealed_secret_opens_under_its_key_and_context_only() {
        let cipher = TokenCipher::new(&key(1), &[]);
        let (id, sealed) = cipher.seal(&Secret::new("refresh-token"), "fractal_links/u1/refresh");
        assert_eq!(id, key(1).id());
        assert!(!sealed.windows(13).any(|w| w == b"refresh-token"), "not in clear text");
        assert_eq!(cipher.open(&id, &sealed, "fractal_links/u1/refresh").expect("opens").expose(), "refresh-token");
        assert_eq!(cipher.open(&id, &sealed, "fractal_links/u2/refresh"), Err(CryptoError::Corrupt));
        let (_, again) = cipher.seal(&Secret::new("refresh-token"), "fractal_links/u1/refresh");
        assert_ne!(sealed, again, "a fresh nonce every time");
    }

    #[test]
    fn a_new_key_reads_what_the_old_one_sealed_while_the_old_one_is_configured() {
        let old = TokenCipher::new(&key(1), &[]);
        let (id, sealed) = old.seal(&Secret::new("t"), "c");
        let rotated = TokenCipher::new(&key(2), &[key(1)]);
        assert_eq!(rotated.open(&id, &sealed, "c").expect("old rows read").expose(), "t");
        assert_eq!(rotated.seal(&Secret::new("t"), "c").0, key(2).id(), "new rows use the new key");
        let forgotten = TokenCipher::new(&key(2), &[]);
        assert_eq!(forgotten.open(&id, &sealed, "c"), Err(CryptoError::UnknownKey(key(1).id())));
    }

    #[test]
    fn keys_come_in_base64_of_32_bytes() {
        use base64::Engine;
        let text = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(EncryptionKey::from_base64(&text).expect("valid"), key(7));
        assert!(EncryptionKey::from_base64("c2hvcnQ=").expect_err("short").contains("holds 5 bytes"));
        assert!(EncryptionKey::from_base64("not base64!").is_err());
    }
}
