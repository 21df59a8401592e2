//! A string that must never reach a log, a trace or an error message.

use std::fmt;

/// Holds a secret (client secret, token, signing key). `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that has to send or check it.
    pub fn expose(&self) -> &str {
        &self.0
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes in base64: an encryption key (`KYC_GATEWAY_ENCRYPTION_KEY`) for a throwaway database.
pub fn random_key_base64() -> String {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the OS random generator works");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
