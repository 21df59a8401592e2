//! A string that must never reach a log, a trace or an error message.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Holds a secret (client secret, token, signing key): `secrecy`'s string, zeroed when dropped. `Debug` and
/// `Display` print `[redacted]`; two are equal when their texts are, compared in constant time.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The secret itself, for the one place that has to send or check it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

impl From<SecretString> for Secret {
    fn from(secret: SecretString) -> Self {
        Secret(secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A random token (48 hex characters, 192 bits) from the operating system's generator: sandbox credentials, request
/// references, idempotency keys.
pub fn random_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the OS random generator works");
    hex::encode(bytes)
}

/// 32 random bytes in base64: an encryption key (`KYC_GATEWAY_ENCRYPTION_KEY`) for a throwaway database.
pub fn random_key_base64() -> String {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the OS random generator works");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
