//! One module per upstream provider: a typed client, its wire models, its error enum and the mapping into
//! [`crate::domain`]. Resolvers never see HTTP; they ask these clients.

pub mod fractal;

use std::time::Duration;

/// HTTP settings every provider client shares.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub timeout: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy { connect_timeout: Duration::from_secs(2), timeout: Duration::from_secs(10) }
    }
}

impl HttpPolicy {
    /// A reqwest client with this policy. Redirects are not followed: a provider API that redirects is misconfigured,
    /// and following would send credentials elsewhere.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kyc-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in")
    }
}

/// Joins a configured base URL and a path without doubling or losing the slash between them.
pub fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// The `Retry-After` of a 429 answer, in seconds.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
