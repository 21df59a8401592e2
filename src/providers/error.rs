//! Why a call to a provider failed, the same words for every provider.

use std::time::Duration;

/// Why a call to a provider failed. One enum for every provider: each client maps its provider's statuses and bodies
/// onto these variants. Messages are for logs only; the GraphQL layer shows a code and the provider's name.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the gateway's credentials, a signature, or a user's link (revoked, or its token lost).
    #[error("refused the credentials: {0}")]
    Unauthorized(String),
    #[error("rate limited the gateway")]
    RateLimited { retry_after: Option<Duration> },
    /// The provider refused a request as invalid (HTTP 400 or 422); the gateway validates before sending, so this is
    /// unexpected and logged. (A 403 refuses the gateway's credentials: [`ProviderError::Unauthorized`].)
    #[error("rejected the request with HTTP {status}")]
    Rejected { status: u16 },
    #[error("answered HTTP {status}")]
    Unavailable { status: u16 },
    #[error("did not answer in time")]
    Timeout,
    #[error("cannot be reached: {0}")]
    Transport(String),
    #[error("gave an unexpected answer: {0}")]
    Decode(String),
    /// The gateway's own concurrency limit for this provider stayed full until the call's deadline.
    #[error("too many calls in flight")]
    Overloaded,
    /// The provider failed too often in a row; calls are refused until a probe succeeds.
    #[error("circuit breaker is open")]
    CircuitOpen,
    /// The gateway has no configuration for this provider.
    #[error("is not configured")]
    NotConfigured,
    #[error("directory: {0}")]
    Directory(String),
}

impl ProviderError {
    /// A short stable name for metric labels and span attributes (the message may carry details; this never does).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Unauthorized(_) => "unauthorized",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Rejected { .. } => "rejected",
            ProviderError::Unavailable { .. } => "unavailable",
            ProviderError::Timeout => "timeout",
            ProviderError::Transport(_) => "transport",
            ProviderError::Decode(_) => "decode",
            ProviderError::Overloaded => "overloaded",
            ProviderError::CircuitOpen => "circuit_open",
            ProviderError::NotConfigured => "not_configured",
            ProviderError::Directory(_) => "directory",
        }
    }
}

impl From<reqwest::Error> for ProviderError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            ProviderError::Timeout
        } else if e.is_decode() {
            ProviderError::Decode(e.without_url().to_string())
        } else {
            ProviderError::Transport(e.without_url().to_string())
        }
    }
}

impl From<crate::directory::DirectoryError> for ProviderError {
    fn from(e: crate::directory::DirectoryError) -> Self {
        ProviderError::Directory(e.to_string())
    }
}
