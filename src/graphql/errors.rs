//! Every GraphQL error the gateway answers carries a stable `extensions.code` from this list. Internal detail
//! (provider bodies, URLs, secrets) is logged here and never returned.

use async_graphql::{Error, ErrorExtensions, Value};

use crate::domain::Provider;
use crate::providers::ProviderError;

/// The thing asked for does not exist (for callers who may know that).
pub const NOT_FOUND: &str = "NOT_FOUND";
/// The token is missing, malformed, expired or wrongly signed (HTTP 401).
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
/// The token lacks the scopes for this field or row (Apollo Router's code).
pub const UNAUTHORIZED_FIELD_OR_TYPE: &str = "UNAUTHORIZED_FIELD_OR_TYPE";
/// `me` was asked with a client token, which speaks for no user.
pub const NOT_A_USER_TOKEN: &str = "NOT_A_USER_TOKEN";
/// An argument is out of bounds or malformed.
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
/// The HTTP request is not a GraphQL request (malformed JSON, missing query, mutation over GET).
pub const BAD_REQUEST: &str = "BAD_REQUEST";
pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const PROVIDER_UNAVAILABLE: &str = "PROVIDER_UNAVAILABLE";
pub const PROVIDER_TIMEOUT: &str = "PROVIDER_TIMEOUT";
pub const PROVIDER_RATE_LIMITED: &str = "PROVIDER_RATE_LIMITED";
/// The provider refused the gateway's credentials or the user's link (revoked consent).
pub const PROVIDER_UNAUTHORIZED: &str = "PROVIDER_UNAUTHORIZED";
/// The provider failed repeatedly and its circuit breaker is open; the gateway does not call it until a probe
/// succeeds.
pub const PROVIDER_CIRCUIT_OPEN: &str = "PROVIDER_CIRCUIT_OPEN";
/// The provider refused a request the gateway had checked (its own validation differs); details are logged.
pub const PROVIDER_REJECTED: &str = "PROVIDER_REJECTED";
/// The field needs a provider this gateway is not configured for.
pub const PROVIDER_NOT_CONFIGURED: &str = "PROVIDER_NOT_CONFIGURED";
/// A status update the transition table does not allow; `extensions.allowed` lists the states that are.
pub const INVALID_TRANSITION: &str = "INVALID_TRANSITION";
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

/// An error with a code and nothing else in its extensions.
pub fn coded(message: impl Into<String>, code: &'static str) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", code))
}

/// A denial. `alternatives` is Apollo's `requiredScopes`: any one inner list, all of whose scopes are needed.
pub fn unauthorized(alternatives: Vec<Vec<String>>) -> Error {
    Error::new("Unauthorized field or type").extend_with(|_, e| {
        e.set("code", UNAUTHORIZED_FIELD_OR_TYPE);
        let list =
            alternatives.into_iter().map(|all| Value::List(all.into_iter().map(Value::String).collect())).collect();
        e.set("requiredScopes", Value::List(list));
    })
}

pub fn bad_input(message: impl Into<String>) -> Error {
    coded(message, BAD_USER_INPUT)
}

/// A provider failure as the caller sees it: a code and the provider's name; the cause goes to the log.
pub fn provider(provider: Provider, error: &ProviderError) -> Error {
    let (code, message) = match error {
        ProviderError::Timeout | ProviderError::Overloaded => (PROVIDER_TIMEOUT, "did not answer in time"),
        ProviderError::RateLimited { .. } => (PROVIDER_RATE_LIMITED, "is rate limiting the gateway"),
        ProviderError::Unauthorized(_) => (PROVIDER_UNAUTHORIZED, "refused the gateway's credentials"),
        ProviderError::NotConfigured => (PROVIDER_NOT_CONFIGURED, "is not configured on this gateway"),
        ProviderError::CircuitOpen => (PROVIDER_CIRCUIT_OPEN, "failed repeatedly; calls are paused"),
        ProviderError::Rejected { .. } => (PROVIDER_REJECTED, "refused the request"),
        _ => (PROVIDER_UNAVAILABLE, "is unavailable"),
    };
    tracing::warn!(provider = provider.as_str(), code, error = %error, "provider call failed");
    Error::new(format!("{} {message}", provider.display_name())).extend_with(|_, e| {
        e.set("code", code);
        e.set("provider", provider.as_str());
        if let ProviderError::RateLimited { retry_after: Some(after) } = error {
            e.set("retryAfterSeconds", after.as_secs());
        }
    })
}

pub fn internal(context: &str, detail: &dyn std::fmt::Display) -> Error {
    tracing::error!(context, error = %detail, "internal error");
    coded("Internal server error", INTERNAL_SERVER_ERROR)
}
