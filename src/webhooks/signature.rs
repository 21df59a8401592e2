//! Each provider's webhook signature, checked over the raw body before anything reads it.
//!
//! Every check is an HMAC recomputed with `ring` and compared by `ring::hmac::verify` (constant time). Each provider
//! may have several secrets configured at once: a rotation adds the new secret, the provider switches, and the old one
//! is removed later; a signature matching any of them is good.
//!
//! - Fractal: `X-Fractal-Signature: sha1=<hex HMAC-SHA1(secret, body)>` (Fractal's webhook documentation).
//! - Sumsub: `X-Payload-Digest: <hex HMAC(secret, body)>` with `X-Payload-Digest-Alg` naming SHA-1, SHA-256 or
//!   SHA-512 (`HMAC_SHA1_HEX`, `HMAC_SHA256_HEX`, `HMAC_SHA512_HEX`; SHA-256, the dashboard's default, when absent).
//! - Sila: `SILA-SIGNATURE: <base64 HMAC-SHA256(secret, body)>`. Sila does not publish the exact string it signs; the
//!   raw body is the assumption, kept in this one function.
//! - ident: `X-Request-Signature: t=<unix seconds>,s=<hex HMAC-SHA256(secret, "<t>.<body>")>`; a `t` outside the
//!   tolerance is refused, so a captured delivery cannot be replayed later.

use base64::Engine as _;
use ring::hmac;

use crate::secret::Secret;

/// Why a signature was refused. Nothing here is secret; the HTTP answer is a bare 401 anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
}

/// Whether `tag` is the HMAC of `message` under any of `secrets` (`ring::hmac::verify` compares in constant time).
fn check(algorithm: hmac::Algorithm, secrets: &[Secret], message: &[u8], tag: &[u8]) -> Result<(), SignatureError> {
    let matches = secrets
        .iter()
        .any(|secret| hmac::verify(&hmac::Key::new(algorithm, secret.expose().as_bytes()), message, tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn hex(text: &str) -> Result<Vec<u8>, SignatureError> {
    let text = text.trim().as_bytes();
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return Err(SignatureError::Malformed);
    }
    let digit = |c: u8| (c as char).to_digit(16).ok_or(SignatureError::Malformed);
    text.chunks(2).map(|pair| Ok((digit(pair[0])? * 16 + digit(pair[1])?) as u8)).collect()
}

/// Fractal's `X-Fractal-Signature`.
pub fn fractal(secrets: &[Secret], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let tag = header.trim().strip_prefix("sha1=").ok_or(SignatureError::Malformed)?;
    check(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secrets, body, &hex(tag)?)
}

/// Sumsub's `X-Payload-Digest` and `X-Payload-Digest-Alg`.
pub fn sumsub(
    secrets: &[Secret],
    digest: Option<&str>,
    algorithm: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let digest = digest.ok_or(SignatureError::Missing)?;
    let algorithm = match algorithm.map(str::trim).unwrap_or("HMAC_SHA256_HEX") {
        "HMAC_SHA1_HEX" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "HMAC_SHA256_HEX" => hmac::HMAC_SHA256,
        "HMAC_SHA512_HEX" => hmac::HMAC_SHA512,
        _ => return Err(SignatureError::Malformed),
    };
    check(algorithm, secrets, body, &hex(digest)?)
}

/// Sila's `SILA-SIGNATURE`.
pub fn sila(secrets: &[Secret], signature: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?.trim();
    if signature.len() > 128 {
        return Err(SignatureError::Malformed);
    }
    let tag = base64::engine::general_purpose::STANDARD.decode(signature).map_err(|_| SignatureError::Malformed)?;
    check(hmac::HMAC_SHA256, secrets, body, &tag)
}

/// ident's `X-Request-Signature`; answers its timestamp (unix seconds), which is when ident sent the event.
pub fn ident(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let (mut t, mut s) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("s", value)) => s = Some(value),
            _ => {}
        }
    }
    let (t, s) = (t.ok_or(SignatureError::Malformed)?, s.ok_or(SignatureError::Malformed)?);
    let timestamp: i64 = t.parse().map_err(|_| SignatureError::Malformed)?;
    // The signature first: a stale timestamp is only worth reporting on a genuine delivery.
    let signed = [t.as_bytes(), b".", body].concat();
    check(hmac::HMAC_SHA256, secrets, &signed, &hex(s)?)?;
    if (now_secs - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn fractal_s_published_vectors_verify() {
        // Both vectors are Fractal's own (its webhook documentation).
        assert_eq!(
            fractal(&secrets(&["SUP3RS3CR3T"]), Some("sha1=6a89633e5f131bfb5f0b5826b33b3bab4bf52068"), b"my-payload"),
            Ok(())
        );
        let body = br#"{"type":"verification_approved","data":{"level":"basic","user_id":"b5c5a2cd-643e-444b-9591-e7b25fec997d","timestamp":"2020-10-09T10:50:32Z"}}"#;
        let key = secrets(&["9d7e80c0f169ab94d34392d64617b7517fb07c40"]);
        assert_eq!(fractal(&key, Some("sha1=9e581dd775e5ba87e9839b595d6eb0d784ecfdb6"), body), Ok(()));
        let mut tampered = body.to_vec();
        tampered[40] ^= 1;
        assert_eq!(
            fractal(&key, Some("sha1=9e581dd775e5ba87e9839b595d6eb0d784ecfdb6"), &tampered),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            fractal(&key, Some("9e581dd775e5ba87e9839b595d6eb0d784ecfdb6"), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(fractal(&key, None, body), Err(SignatureError::Missing));
    }

    /// Seed 003's GREEN example; Sumsub publishes no digest, so these were computed here with `openssl dgst -hmac`.
    const SUMSUB_BODY: &str = r#"{"applicantId":"5cb56e8e0a975a35f333cb83","inspectionId":"5cb56e8e0a975a35f333cb84","correlationId":"req-a260b669-4f14-4bb5-a4c5-ac0218acb9a4","externalUserId":"externalUserId","levelName":"basic-kyc-level","type":"applicantReviewed","reviewResult":{"reviewAnswer":"GREEN"},"reviewStatus":"completed","createdAtMs":"2020-02-21 13:23:19.321"}"#;

    #[test]
    fn sumsub_digests_verify_with_each_algorithm() {
        let key = secrets(&["SoMe_SeCrEt_KeY"]);
        let body = SUMSUB_BODY.as_bytes();
        let sha1 = "a9c0f20d3850f06e65f915510c428cabb5efef43";
        let sha256 = "dc1029b977cff1f1df76fe6e8736cc4c9f612cb8098969eeb99cc05ea8f043c6";
        let sha512 = "3b4848d1ebd7e113670d6b0e06fd4ac072e208f1a932c314588cec352d8646e5ad7b9cec8d77c423b0e7cfa206d892532040a38091667d012b8264bd1b8ab266";
        assert_eq!(sumsub(&key, Some(sha1), Some("HMAC_SHA1_HEX"), body), Ok(()));
        assert_eq!(sumsub(&key, Some(sha256), Some("HMAC_SHA256_HEX"), body), Ok(()));
        assert_eq!(sumsub(&key, Some(sha256), None, body), Ok(()), "SHA-256 when the header is absent");
        assert_eq!(sumsub(&key, Some(sha512), Some("HMAC_SHA512_HEX"), body), Ok(()));
        assert_eq!(sumsub(&key, Some(sha256), Some("HMAC_SHA1_HEX"), body), Err(SignatureError::Mismatch));
        assert_eq!(sumsub(&key, Some(sha256), Some("HMAC_MD5_HEX"), body), Err(SignatureError::Malformed));
        assert_eq!(sumsub(&secrets(&["wrong"]), Some(sha256), None, body), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_configured_secret_verifies_so_secrets_can_rotate() {
        let both = secrets(&["new-secret", "SoMe_SeCrEt_KeY"]);
        let sha256 = "dc1029b977cff1f1df76fe6e8736cc4c9f612cb8098969eeb99cc05ea8f043c6";
        assert_eq!(sumsub(&both, Some(sha256), None, SUMSUB_BODY.as_bytes()), Ok(()));
        assert_eq!(sumsub(&[], Some(sha256), None, SUMSUB_BODY.as_bytes()), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_sila_signature_is_base64_hmac_sha256_of_the_body() {
        // Computed here with `openssl dgst -sha256 -hmac ... -binary | base64`.
        let body = br#"{"event_time":"2024-03-01T10:00:00.000Z","event_type":"kyc","event_uuid":"c5b8c2a4-64a1-4b5c-9d8e-1f2a3b4c5d6e","event_details":{"entity":"user.handle","outcome":"passed","kyc_level":"DOC_KYC"}}"#;
        let key = secrets(&["sila-webhook-secret"]);
        assert_eq!(sila(&key, Some("BZQJywy38K9AVZhl7Kj+FY/Gievt0vyQwk2EtW1QpbE="), body), Ok(()));
        assert_eq!(
            sila(&key, Some("CZQJywy38K9AVZhl7Kj+FY/Gievt0vyQwk2EtW1QpbE="), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(sila(&key, Some("not base64!"), body), Err(SignatureError::Malformed));
    }

    #[test]
    fn an_ident_signature_binds_its_timestamp_and_expires() {
        // Computed here with `openssl dgst -sha256 -hmac` over "1700000000.<body>".
        let body = br#"{"id":"e494ee10-bbf5-45bb-81aa-7e3561d8c729","status":"accepted","user_id":"9e15791a-dbf1-4e5e-8c6b-a7253e198b4c"}"#;
        let key = secrets(&["ident-webhook-secret"]);
        let header = "t=1700000000,s=b86a8b377628955712a2e7024ead3ccd2c580c2be2a1238100c2e83c059e524b";
        assert_eq!(ident(&key, Some(header), body, 1_700_000_100, 300), Ok(1_700_000_000));
        assert_eq!(ident(&key, Some(header), body, 1_700_000_301, 300), Err(SignatureError::Stale));
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(ident(&key, Some(&moved), body, 1_700_000_100, 300), Err(SignatureError::Mismatch));
        assert_eq!(ident(&key, Some("s=00"), body, 1_700_000_100, 300), Err(SignatureError::Malformed));
    }
}
