use std::time::Duration;

/// Why a call to Fractal failed. Messages are for logs; the GraphQL layer shows only the code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FractalError {
    /// Fractal refused the gateway's client credentials or a user's link (revoked, or its refresh token lost).
    #[error("Fractal refused the credentials: {0}")]
    Unauthorized(String),
    #[error("Fractal rate limited the gateway")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Fractal answered HTTP {status}")]
    Unavailable { status: u16 },
    #[error("Fractal did not answer in time")]
    Timeout,
    #[error("cannot reach Fractal: {0}")]
    Transport(String),
    #[error("unexpected answer from Fractal: {0}")]
    Decode(String),
    #[error("directory: {0}")]
    Directory(String),
}

impl From<reqwest::Error> for FractalError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            FractalError::Timeout
        } else if e.is_decode() {
            FractalError::Decode(e.without_url().to_string())
        } else {
            FractalError::Transport(e.without_url().to_string())
        }
    }
}

impl From<crate::directory::DirectoryError> for FractalError {
    fn from(e: crate::directory::DirectoryError) -> Self {
        FractalError::Directory(e.0)
    }
}
