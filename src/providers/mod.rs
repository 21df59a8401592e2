//! The providers: one folder each (configuration section, client, wire models, mapping into [`crate::domain`],
//! webhook reader), behind the capability traits of `connector.rs` and listed once in `registry.rs`. What every
//! provider shares lives here: the upstream policy, the cache across requests, the facade, linking, signatures.

pub mod cache;
pub mod connector;
mod error;
pub mod hub;
pub mod linking;
pub mod policy;
#[macro_use]
pub mod registry;
pub mod section;
pub mod signature;
pub mod token_cache;

// The provider folders, in the order they answer: each one word here, and nowhere else outside its folder.
providers!(fractal, sumsub, sila, ident, veriff);

use std::time::Duration;

pub use policy::{Call, Upstream, UpstreamPolicy};

use serde::de::DeserializeOwned;

pub use connector::{Connector, Outcome};
pub use error::ProviderError;
pub use hub::{BulkMemo, Providers};
pub use registry::{ProviderSet, ProviderSettings};

/// Joins a configured base URL and a path without doubling or losing the slash between them.
pub fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// Percent-encodes a value for use as (part of) one path segment: everything but RFC 3986's unreserved characters.
/// `None` for a value that cannot name anything: empty, or a dot segment (`.`, `..`), which URL parsers resolve
/// even when encoded, turning `users/../x` into `x`.
pub fn encode_path_segment(value: &str) -> Option<String> {
    if value.is_empty() || value.chars().all(|c| c == '.') {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    Some(out)
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

/// The error a non-success answer means, the same for every provider: 401 and 403 refuse the gateway's credentials,
/// 429 rate-limits, 400 and 422 reject the request, anything else is unavailability. Clients handle the statuses
/// that mean something else at their provider (404 for "no such applicant", say) first.
pub fn status_error(response: &reqwest::Response) -> ProviderError {
    let status = response.status().as_u16();
    match status {
        401 | 403 => ProviderError::Unauthorized(format!("HTTP {status}")),
        429 => ProviderError::RateLimited { retry_after: retry_after(response) },
        400 | 422 => ProviderError::Rejected { status },
        _ => ProviderError::Unavailable { status },
    }
}

/// The JSON body of a successful answer, or the error its status means.
pub async fn json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ProviderError> {
    if response.status().is_success() {
        response.json::<T>().await.map_err(|e| ProviderError::Decode(e.without_url().to_string()))
    } else {
        Err(status_error(&response))
    }
}
