//! Checking a provider's signature, the parts every provider shares: an HMAC recomputed with `ring` under each
//! configured secret (several at once while one rotates) and compared by `ring::hmac::verify`, in constant time.
//! What each provider signs, and where it puts the signature, is in its folder (`<provider>/webhook.rs`).

use ring::hmac;

pub use crate::domain::events::SignatureError;
use crate::secret::Secret;

/// Whether `tag` is the HMAC of `message` under any of `secrets`.
pub fn check(algorithm: hmac::Algorithm, secrets: &[Secret], message: &[u8], tag: &[u8]) -> Result<(), SignatureError> {
    let matches = secrets
        .iter()
        .any(|secret| hmac::verify(&hmac::Key::new(algorithm, secret.expose().as_bytes()), message, tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A hex-encoded tag of at most 128 bytes.
pub fn hex_tag(text: &str) -> Result<Vec<u8>, SignatureError> {
    let text = text.trim();
    if text.len() > 256 {
        return Err(SignatureError::Malformed);
    }
    hex::decode(text).map_err(|_| SignatureError::Malformed)
}

/// A header's value, or [`SignatureError::Missing`].
pub fn required(header: Option<String>) -> Result<String, SignatureError> {
    header.ok_or(SignatureError::Missing)
}

#[cfg(test)]
pub(crate) fn secrets(list: &[&str]) -> Vec<Secret> {
    list.iter().map(|s| Secret::new(*s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_secret_verifies_so_secrets_can_rotate() {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"old-secret-of-16+"), b"body");
        let both = secrets(&["new-secret-of-16+", "old-secret-of-16+"]);
        assert_eq!(check(hmac::HMAC_SHA256, &both, b"body", tag.as_ref()), Ok(()));
        assert_eq!(check(hmac::HMAC_SHA256, &both[..1], b"body", tag.as_ref()), Err(SignatureError::Mismatch));
        assert_eq!(check(hmac::HMAC_SHA256, &[], b"body", tag.as_ref()), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_tag_is_even_length_hex_of_bounded_size() {
        assert_eq!(hex_tag(" 0aFf "), Ok(vec![0x0a, 0xff]));
        assert_eq!(hex_tag("abc"), Err(SignatureError::Malformed));
        assert_eq!(hex_tag("zz"), Err(SignatureError::Malformed));
        assert_eq!(hex_tag(&"00".repeat(129)), Err(SignatureError::Malformed));
    }
}
