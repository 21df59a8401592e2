//! Settings that bound what callers can make the gateway do: the shape and cost of operations, which documents may
//! run, connections and requests in flight, and which browser origins may call.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::env::Env;

/// Bounds on one GraphQL operation, checked before it runs (`graphql/limits.rs`), and on its answer.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// The largest document, in bytes.
    pub max_query_bytes: usize,
    /// The largest static cost: every field 1, a list field multiplies what is under it by its size.
    pub max_cost: u64,
    /// The most aliases in a document.
    pub max_aliases: usize,
    /// The most fields at the root of the operation.
    pub max_root_fields: usize,
    /// The deepest nesting of fields, fragments expanded.
    pub max_depth: usize,
    /// The most directives on one field, and in the whole document.
    pub max_directives_per_field: usize,
    pub max_directives: usize,
    /// The size assumed for a list field without a size argument.
    pub default_list_size: u64,
    /// The most errors one answer carries (the rest are counted in one last error).
    pub max_errors: usize,
    /// The largest answer, estimated while it is built; past it the operation fails.
    pub max_response_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_query_bytes: 64 * 1024,
            max_cost: 20_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_depth: 15,
            max_directives_per_field: 4,
            max_directives: 50,
            default_list_size: 10,
            max_errors: 100,
            max_response_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Which documents may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedMode {
    /// Any document; automatic persisted queries (Apollo's protocol) on.
    Apq,
    /// Only the documents of the safelist manifest, by hash or by text.
    Safelist,
    /// Any document; no persisted queries.
    Off,
}

/// The scope that lets a token introspect where introspection is off (`KYC_GATEWAY_INTROSPECTION_SCOPE`).
pub const DEFAULT_INTROSPECTION_SCOPE: &str = "schema:read";

/// Trusted documents and what the schema reveals.
#[derive(Debug, Clone)]
pub struct DocumentSettings {
    pub mode: TrustedMode,
    /// The safelist: an Apollo persisted query manifest (`{"format": "apollo-persisted-query-manifest", ...}`).
    pub safelist: Option<PathBuf>,
    /// How many registered persisted queries each replica keeps.
    pub apq_capacity: u64,
    /// How many bytes of registered persisted queries each replica keeps.
    pub apq_max_bytes: u64,
    /// Introspection and "did you mean" suggestions; `None`: on in sandbox mode, off in production.
    pub introspection: Option<bool>,
    pub suggestions: Option<bool>,
    /// Where introspection is off, tokens holding this scope introspect the schema cut to what they can read.
    pub introspection_scope: Option<String>,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        DocumentSettings {
            mode: TrustedMode::Apq,
            safelist: None,
            apq_capacity: 10_000,
            apq_max_bytes: 16 * 1024 * 1024,
            introspection: None,
            suggestions: None,
            introspection_scope: Some(DEFAULT_INTROSPECTION_SCOPE.into()),
        }
    }
}

/// Connections and requests.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// A request's body must arrive within this.
    pub body_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at most; `None`: what the open-files limit allows.
    pub max_connections: Option<usize>,
    /// Requests one caller (token subject) may have in flight; one more is 429.
    pub max_in_flight_per_caller: usize,
    /// The largest request body.
    pub max_body_bytes: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: None,
            max_in_flight_per_caller: 64,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Browser origins allowed to call (CORS). Tokens are bearer tokens, never cookies: no credentials mode.
#[derive(Debug, Clone, Default)]
pub struct CorsSettings {
    /// Exact origins (`https://app.example.com`); empty: none, except sandbox mode's `http://localhost:*`.
    pub origins: Vec<String>,
    /// How long a browser may cache a preflight answer.
    pub max_age: Duration,
}

pub(super) fn query_limits(env: &Env<'_>) -> anyhow::Result<QueryLimits> {
    let d = QueryLimits::default();
    let limits = QueryLimits {
        max_query_bytes: env.parse("KYC_GATEWAY_MAX_QUERY_BYTES", d.max_query_bytes)?,
        max_cost: env.parse("KYC_GATEWAY_MAX_COST", d.max_cost)?,
        max_aliases: env.parse("KYC_GATEWAY_MAX_ALIASES", d.max_aliases)?,
        max_root_fields: env.parse("KYC_GATEWAY_MAX_ROOT_FIELDS", d.max_root_fields)?,
        max_depth: env.parse("KYC_GATEWAY_MAX_DEPTH", d.max_depth)?,
        max_directives_per_field: env.parse("KYC_GATEWAY_MAX_DIRECTIVES_PER_FIELD", d.max_directives_per_field)?,
        max_directives: env.parse("KYC_GATEWAY_MAX_DIRECTIVES", d.max_directives)?,
        default_list_size: env.parse("KYC_GATEWAY_DEFAULT_LIST_SIZE", d.default_list_size)?,
        max_errors: env.parse("KYC_GATEWAY_MAX_ERRORS", d.max_errors)?,
        max_response_bytes: env.parse("KYC_GATEWAY_MAX_RESPONSE_BYTES", d.max_response_bytes)?,
    };
    if limits.max_query_bytes == 0 || limits.max_cost == 0 || limits.max_depth == 0 || limits.max_errors == 0 {
        bail!("the KYC_GATEWAY_MAX_* query limits must be at least 1");
    }
    Ok(limits)
}

pub(super) fn documents(env: &Env<'_>) -> anyhow::Result<DocumentSettings> {
    let d = DocumentSettings::default();
    let mode = env.choice(
        "KYC_GATEWAY_TRUSTED_DOCUMENTS",
        &[("apq", TrustedMode::Apq), ("safelist", TrustedMode::Safelist), ("off", TrustedMode::Off)],
        d.mode,
    )?;
    let safelist = env.get("KYC_GATEWAY_SAFELIST_FILE").map(PathBuf::from);
    if mode == TrustedMode::Safelist && safelist.is_none() {
        bail!("KYC_GATEWAY_TRUSTED_DOCUMENTS=safelist needs KYC_GATEWAY_SAFELIST_FILE (an Apollo persisted query manifest)");
    }
    let optional_switch = |name: &str| -> anyhow::Result<Option<bool>> {
        Ok(match env.get(name) {
            None => None,
            Some(_) => Some(env.switch(name, false)?),
        })
    };
    Ok(DocumentSettings {
        mode,
        safelist,
        apq_capacity: env.parse("KYC_GATEWAY_APQ_CAPACITY", d.apq_capacity)?,
        apq_max_bytes: env.parse("KYC_GATEWAY_APQ_MAX_BYTES", d.apq_max_bytes)?,
        introspection: optional_switch("KYC_GATEWAY_INTROSPECTION")?,
        suggestions: optional_switch("KYC_GATEWAY_SUGGESTIONS")?,
        introspection_scope: match env.get("KYC_GATEWAY_INTROSPECTION_SCOPE") {
            None => d.introspection_scope,
            Some(scope) if scope.trim().is_empty() => None,
            Some(scope) if scope.split_whitespace().count() == 1 && scope.len() <= 128 => Some(scope.trim().to_owned()),
            Some(_) => bail!("KYC_GATEWAY_INTROSPECTION_SCOPE is one scope (at most 128 bytes), or empty for none"),
        },
    })
}

pub(super) fn connections(env: &Env<'_>) -> anyhow::Result<ConnectionSettings> {
    let d = ConnectionSettings::default();
    let settings = ConnectionSettings {
        header_timeout: env.millis("KYC_GATEWAY_HEADER_TIMEOUT_MS", d.header_timeout)?,
        body_timeout: env.millis("KYC_GATEWAY_BODY_TIMEOUT_MS", d.body_timeout)?,
        idle_timeout: env.secs("KYC_GATEWAY_IDLE_TIMEOUT_SECS", d.idle_timeout)?,
        max_connections: match env.get("KYC_GATEWAY_MAX_CONNECTIONS") {
            None => None,
            Some(_) => Some(env.parse("KYC_GATEWAY_MAX_CONNECTIONS", 0usize)?),
        },
        max_in_flight_per_caller: env.parse("KYC_GATEWAY_MAX_IN_FLIGHT_PER_CALLER", d.max_in_flight_per_caller)?,
        max_body_bytes: env.parse("KYC_GATEWAY_MAX_BODY_BYTES", d.max_body_bytes)?,
    };
    if settings.header_timeout.is_zero() || settings.body_timeout.is_zero() || settings.idle_timeout.is_zero() {
        bail!("KYC_GATEWAY_HEADER_TIMEOUT_MS, _BODY_TIMEOUT_MS and KYC_GATEWAY_IDLE_TIMEOUT_SECS must be positive");
    }
    if settings.max_connections == Some(0) || settings.max_in_flight_per_caller == 0 || settings.max_body_bytes < 1024 {
        bail!("KYC_GATEWAY_MAX_CONNECTIONS and _MAX_IN_FLIGHT_PER_CALLER must be at least 1, _MAX_BODY_BYTES at least 1024");
    }
    Ok(settings)
}

pub(super) fn cors(env: &Env<'_>) -> anyhow::Result<CorsSettings> {
    let origins: Vec<String> = env
        .get("KYC_GATEWAY_CORS_ORIGINS")
        .map(|list| list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    for origin in &origins {
        let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
            && !origin.trim_end_matches('/').contains(['*', ' '])
            && origin.matches('/').count() == 2;
        if !valid {
            bail!("KYC_GATEWAY_CORS_ORIGINS: {origin:?} is not an origin (scheme://host[:port], no path, no wildcard)");
        }
    }
    Ok(CorsSettings { origins, max_age: env.secs("KYC_GATEWAY_CORS_MAX_AGE_SECS", Duration::from_secs(600))? })
}
