//! Every error the gateway answers carries a stable `extensions.code` from [`ErrorCode`]. Internal detail (provider
//! bodies, URLs, secrets) is logged here and never returned.

use async_graphql::{Error, ErrorExtensions, Value};

use crate::authz::Denial;
use crate::domain::Provider;
use crate::providers::ProviderError;

/// Declares [`ErrorCode`], its wire names and [`ErrorCode::ALL`] from one list, so none can miss a code.
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )*) => {
        /// Every `extensions.code` the gateway answers. Clients branch on these, never on message text; docs/api.md
        /// lists them with their meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the table in docs/api.md.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it appears in `extensions.code`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $name, )*
                }
            }
        }
    };
}

error_codes! {
    /// The token is missing, malformed, expired or wrongly signed (HTTP 401).
    Unauthenticated => "UNAUTHENTICATED",
    /// The HTTP request is not a GraphQL request (malformed JSON, missing query, mutation over GET).
    BadRequest => "BAD_REQUEST",
    /// The document does not parse.
    GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
    /// The document does not fit the schema or its limits.
    GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
    /// A variable's or argument's value is malformed or out of bounds.
    BadUserInput => "BAD_USER_INPUT",
    /// The operation to run cannot be chosen: `operationName` missing for a document of several, or unknown.
    OperationResolutionFailure => "OPERATION_RESOLUTION_FAILURE",
    /// The operation's name (`operationName`, or the name in the document) is longer than 128 characters.
    OperationNameTooLong => "OPERATION_NAME_TOO_LONG",
    /// The token lacks the scopes for this field or row (Apollo Router's code).
    UnauthorizedFieldOrType => "UNAUTHORIZED_FIELD_OR_TYPE",
    /// `me` was asked with a client token, which speaks for no user.
    NotAUserToken => "NOT_A_USER_TOKEN",
    /// A provider failed or answered something the gateway could not read.
    ProviderUnavailable => "PROVIDER_UNAVAILABLE",
    /// A provider did not answer in time (or the gateway's own concurrency limit for it stayed full).
    ProviderTimeout => "PROVIDER_TIMEOUT",
    /// A provider is rate limiting the gateway.
    ProviderRateLimited => "PROVIDER_RATE_LIMITED",
    /// A provider refused the gateway's credentials or the user's link (revoked consent).
    ProviderUnauthorized => "PROVIDER_UNAUTHORIZED",
    /// The field needs a provider this gateway is not configured for.
    ProviderNotConfigured => "PROVIDER_NOT_CONFIGURED",
    /// A status update the transition table does not allow; `extensions.allowed` lists the states that are.
    InvalidTransition => "INVALID_TRANSITION",
    /// The thing asked for does not exist (for callers who may know that).
    NotFound => "NOT_FOUND",
    /// A provider failed repeatedly and its circuit breaker is open; the gateway does not call it until a probe
    /// succeeds.
    ProviderCircuitOpen => "PROVIDER_CIRCUIT_OPEN",
    /// A provider refused a request the gateway had checked (its own validation differs); details are logged.
    ProviderRejected => "PROVIDER_REJECTED",
    /// Linking an account: the redirect URI is not on the gateway's allow-list.
    RedirectUriNotAllowed => "REDIRECT_URI_NOT_ALLOWED",
    /// Linking an account: the `state` was not issued by this gateway (forged, altered, or another deployment's).
    LinkStateInvalid => "LINK_STATE_INVALID",
    /// Linking an account: the `state` was issued to another user.
    LinkStateForeign => "LINK_STATE_FOREIGN",
    /// Linking an account: the `state` expired (it lives 10 minutes); start again.
    LinkStateExpired => "LINK_STATE_EXPIRED",
    /// Linking an account: the `state` was used before.
    LinkStateReplayed => "LINK_STATE_REPLAYED",
    /// Linking an account: the user refused at the provider (`error=access_denied`). The code keeps the name it
    /// had when the first linking provider was the only one.
    LinkAccessDenied => "FRACTAL_ACCESS_DENIED",
    /// Linking an account: that account at the provider is linked to another user (the code's name as above).
    LinkAccountTaken => "FRACTAL_ACCOUNT_TAKEN",
    /// A subscriber read its events more slowly than they came and fell behind its buffer: its subscription (and
    /// connection) was closed; subscribe again and query the current state.
    SubscriberTooSlow => "SUBSCRIBER_TOO_SLOW",
    /// The gateway may have missed changes (its change channel reconnected): a subscription's event stream has a
    /// gap; query the current state. The subscription goes on.
    EventsMissed => "EVENTS_MISSED",
    /// A connection already holds as many subscriptions as it may.
    TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
    /// The document is longer than `KYC_GATEWAY_MAX_QUERY_BYTES`.
    QueryTooLarge => "QUERY_TOO_LARGE",
    /// The operation's static cost is above `KYC_GATEWAY_MAX_COST`; `extensions.cost` is the computed cost.
    CostLimitExceeded => "COST_LIMIT_EXCEEDED",
    /// The document holds more aliases than `KYC_GATEWAY_MAX_ALIASES`.
    AliasLimitExceeded => "ALIAS_LIMIT_EXCEEDED",
    /// The operation selects more root fields than `KYC_GATEWAY_MAX_ROOT_FIELDS`.
    RootFieldLimitExceeded => "ROOT_FIELD_LIMIT_EXCEEDED",
    /// Fields nest deeper than `KYC_GATEWAY_MAX_DEPTH` (fragments expanded), or brackets deeper than the parser allows.
    DepthLimitExceeded => "DEPTH_LIMIT_EXCEEDED",
    /// More directives on one field, or in the document, than allowed.
    DirectiveLimitExceeded => "DIRECTIVE_LIMIT_EXCEEDED",
    /// The answer grew past `KYC_GATEWAY_MAX_RESPONSE_BYTES` while it was built: nothing of it is sent.
    ResponseTooLarge => "RESPONSE_TOO_LARGE",
    /// More errors than `KYC_GATEWAY_MAX_ERRORS`: this last error counts the ones left out.
    TooManyErrors => "TOO_MANY_ERRORS",
    /// The caller has `KYC_GATEWAY_MAX_IN_FLIGHT_PER_CALLER` requests in flight (HTTP 429 with `Retry-After`).
    RateLimited => "RATE_LIMITED",
    /// A persisted query's hash is not known here: send the query with its hash (Apollo's APQ protocol).
    PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
    /// A persisted query's text does not hash to the hash sent with it.
    PersistedQueryHashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
    /// Safelist mode: the document is not in the safelist.
    PersistedQueryNotInList => "PERSISTED_QUERY_NOT_IN_LIST",
    /// Persisted queries are off on this gateway.
    PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
    /// `KYC_GATEWAY_REQUIRE_PURPOSE=on` and a client token read personal data without stating why
    /// (`X-Access-Purpose` or `extensions.purpose`).
    PurposeRequired => "PURPOSE_REQUIRED",
    /// Strict audit mode and the trail cannot take records: personal data is withheld rather than sent unrecorded.
    AuditUnavailable => "AUDIT_UNAVAILABLE",
    /// A bug; details are logged, never answered.
    InternalServerError => "INTERNAL_SERVER_ERROR",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a code and nothing else in its extensions.
pub fn coded(message: impl Into<String>, code: ErrorCode) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
}

/// A denial, as Apollo Router words it.
pub fn unauthorized(denial: Denial) -> Error {
    Error::new("Unauthorized field or type").extend_with(|_, e| {
        e.set("code", ErrorCode::UnauthorizedFieldOrType.as_str());
        e.set("requiredScopes", required_scopes(&denial));
    })
}

/// `requiredScopes` as a GraphQL value.
pub fn required_scopes(denial: &Denial) -> Value {
    let list = denial.required.iter().map(|all| Value::List(all.iter().cloned().map(Value::String).collect()));
    Value::List(list.collect())
}

pub fn bad_input(message: impl Into<String>) -> Error {
    coded(message, ErrorCode::BadUserInput)
}

/// The code and message a provider failure answers with. Exhaustive: a new failure needs a decision here.
fn provider_code(error: &ProviderError) -> (ErrorCode, &'static str) {
    match error {
        ProviderError::Timeout | ProviderError::Overloaded => (ErrorCode::ProviderTimeout, "did not answer in time"),
        ProviderError::RateLimited { .. } => (ErrorCode::ProviderRateLimited, "is rate limiting the gateway"),
        ProviderError::Unauthorized(_) => (ErrorCode::ProviderUnauthorized, "refused the gateway's credentials"),
        ProviderError::NotConfigured => (ErrorCode::ProviderNotConfigured, "is not configured on this gateway"),
        ProviderError::CircuitOpen => (ErrorCode::ProviderCircuitOpen, "failed repeatedly; calls are paused"),
        ProviderError::Rejected { .. } => (ErrorCode::ProviderRejected, "refused the request"),
        ProviderError::Unavailable { .. }
        | ProviderError::Transport(_)
        | ProviderError::Decode(_)
        | ProviderError::Directory(_) => (ErrorCode::ProviderUnavailable, "is unavailable"),
    }
}

/// A provider failure as the caller sees it: a code and the provider's name; the cause goes to the log.
pub fn provider(provider: Provider, error: &ProviderError) -> Error {
    let (code, message) = provider_code(error);
    tracing::warn!(provider = provider.as_str(), code = code.as_str(), error = %error, "provider call failed");
    Error::new(format!("{} {message}", provider.display_name())).extend_with(|_, e| {
        e.set("code", code.as_str());
        e.set("provider", provider.as_str());
        if let ProviderError::RateLimited { retry_after: Some(after) } = error {
            e.set("retryAfterSeconds", after.as_secs());
        }
    })
}

/// A capability no configured provider has: the provider that would have it is not configured.
pub fn missing(missing: crate::providers::registry::Missing) -> Error {
    match missing.error() {
        (Some(provider), error) => self::provider(provider, &error),
        (None, error) => {
            let (code, message) = provider_code(&error);
            Error::new(format!("no provider {message}")).extend_with(|_, e| e.set("code", code.as_str()))
        }
    }
}

pub fn internal(context: &str, detail: &dyn std::fmt::Display) -> Error {
    tracing::error!(context, error = %detail, "internal error");
    coded("Internal server error", ErrorCode::InternalServerError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_and_in_screaming_snake_case() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_uppercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
