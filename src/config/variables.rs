//! Every `KYC_GATEWAY_*` variable the gateway reads, in one list: a variable set but not in it is a misspelling
//! (warned at start, naming the nearest known one), and docs/configuration.md's table is checked against it.

use crate::providers::registry::MODULES;
use crate::providers::section::POLICY_SETTINGS;

/// What every variable of the gateway starts with.
pub const PREFIX: &str = "KYC_GATEWAY_";

/// The variables outside the providers' sections.
pub const GENERAL: &[&str] = &[
    "KYC_GATEWAY_LISTEN",
    "KYC_GATEWAY_MODE",
    "KYC_GATEWAY_DEV_SECRET",
    "KYC_GATEWAY_LOG_FORMAT",
    "KYC_GATEWAY_METRICS_LISTEN",
    "KYC_GATEWAY_SHUTDOWN_DRAIN_SECS",
    "KYC_GATEWAY_SHUTDOWN_DEADLINE_SECS",
    "KYC_GATEWAY_JWT_ISSUERS",
    "KYC_GATEWAY_JWT_SECRET",
    "KYC_GATEWAY_JWT_ISSUER",
    "KYC_GATEWAY_JWT_AUDIENCE",
    "KYC_GATEWAY_JWT_USER_ISSUER",
    "KYC_GATEWAY_INTROSPECTION_SCOPE",
    "KYC_GATEWAY_JWT_ISSUER_SCOPES",
    "KYC_GATEWAY_JWT_ALGORITHMS",
    "KYC_GATEWAY_JWT_CLIENT_RULE",
    "KYC_GATEWAY_JWT_SCOPE_CLAIMS",
    "KYC_GATEWAY_JWT_LEEWAY_SECS",
    "KYC_GATEWAY_JWT_JWKS_REFRESH_SECS",
    "KYC_GATEWAY_JWT_JWKS_REFETCH_SECS",
    "KYC_GATEWAY_JWT_JWKS_TIMEOUT_MS",
    "KYC_GATEWAY_DATABASE_URL",
    "KYC_GATEWAY_DATABASE_MAX_CONNECTIONS",
    "KYC_GATEWAY_DATABASE_ACQUIRE_TIMEOUT_MS",
    "KYC_GATEWAY_DATABASE_IDLE_TIMEOUT_SECS",
    "KYC_GATEWAY_ENCRYPTION_KEY",
    "KYC_GATEWAY_ENCRYPTION_OLD_KEYS",
    "KYC_GATEWAY_WEBHOOK_MAX_BYTES",
    "KYC_GATEWAY_WEBHOOK_WORKER",
    "KYC_GATEWAY_WEBHOOK_POLL_MS",
    "KYC_GATEWAY_WS_MAX_SUBSCRIPTIONS",
    "KYC_GATEWAY_WS_MAX_CONNECTIONS_PER_CALLER",
    "KYC_GATEWAY_WS_MAX_CONNECTIONS",
    "KYC_GATEWAY_WS_INIT_TIMEOUT_SECS",
    "KYC_GATEWAY_WS_PING_SECS",
    "KYC_GATEWAY_WS_IDLE_TIMEOUT_SECS",
    "KYC_GATEWAY_WS_SEND_TIMEOUT_MS",
    "KYC_GATEWAY_WS_BUFFER",
    "KYC_GATEWAY_MAX_QUERY_BYTES",
    "KYC_GATEWAY_MAX_BODY_BYTES",
    "KYC_GATEWAY_MAX_DEPTH",
    "KYC_GATEWAY_MAX_ALIASES",
    "KYC_GATEWAY_MAX_ROOT_FIELDS",
    "KYC_GATEWAY_MAX_DIRECTIVES",
    "KYC_GATEWAY_MAX_DIRECTIVES_PER_FIELD",
    "KYC_GATEWAY_MAX_COST",
    "KYC_GATEWAY_DEFAULT_LIST_SIZE",
    "KYC_GATEWAY_MAX_RESPONSE_BYTES",
    "KYC_GATEWAY_MAX_ERRORS",
    "KYC_GATEWAY_TRUSTED_DOCUMENTS",
    "KYC_GATEWAY_SAFELIST_FILE",
    "KYC_GATEWAY_APQ_CAPACITY",
    "KYC_GATEWAY_APQ_MAX_BYTES",
    "KYC_GATEWAY_INTROSPECTION",
    "KYC_GATEWAY_SUGGESTIONS",
    "KYC_GATEWAY_HEADER_TIMEOUT_MS",
    "KYC_GATEWAY_BODY_TIMEOUT_MS",
    "KYC_GATEWAY_IDLE_TIMEOUT_SECS",
    "KYC_GATEWAY_MAX_CONNECTIONS",
    "KYC_GATEWAY_MAX_IN_FLIGHT_PER_CALLER",
    "KYC_GATEWAY_CORS_ORIGINS",
    "KYC_GATEWAY_CORS_MAX_AGE_SECS",
    "KYC_GATEWAY_GRAPHIQL_ISSUER",
    "KYC_GATEWAY_GRAPHIQL_CLIENT_ID",
    "KYC_GATEWAY_GRAPHIQL_SCOPES",
    "KYC_GATEWAY_AUDIT",
    "KYC_GATEWAY_AUDIT_QUEUE",
    "KYC_GATEWAY_AUDIT_COMMIT_TIMEOUT_MS",
    "KYC_GATEWAY_AUDIT_RETENTION_DAYS",
    "KYC_GATEWAY_AUDIT_CALLER_NAMES",
    "KYC_GATEWAY_AUDIT_SIGNING_KEY",
    "KYC_GATEWAY_AUDIT_SIGNING_KEY_FILE",
    "KYC_GATEWAY_AUDIT_SIGNING_KEY_ID",
    "KYC_GATEWAY_AUDIT_CHECKPOINT_RECORDS",
    "KYC_GATEWAY_AUDIT_CHECKPOINT_SECS",
    "KYC_GATEWAY_AUDIT_WITNESS_FILE",
    "KYC_GATEWAY_REQUIRE_PURPOSE",
    "KYC_GATEWAY_CACHE",
    "KYC_GATEWAY_CACHE_TTL_SECS",
    "KYC_GATEWAY_CACHE_NEGATIVE_TTL_SECS",
    "KYC_GATEWAY_CACHE_BULK_TTL_SECS",
    "KYC_GATEWAY_CACHE_MAX_MB",
    "KYC_GATEWAY_RESPONSE_CACHE_MAX_MB",
    "KYC_GATEWAY_FANOUT",
    "KYC_GATEWAY_LOADER_DELAY_US",
    "KYC_GATEWAY_MAX_USER_IDS",
];

/// The settings every provider's section has beside its own: `KYC_GATEWAY_<PROVIDER>_<SETTING>`.
pub fn common_settings() -> impl Iterator<Item = &'static str> {
    POLICY_SETTINGS.iter().copied().chain(["WEBHOOK_SECRETS"])
}

/// Every variable the gateway reads.
pub fn known() -> Vec<String> {
    let mut known: Vec<String> = GENERAL.iter().map(|v| v.to_string()).collect();
    known.extend(POLICY_SETTINGS.iter().map(|s| format!("{PREFIX}UPSTREAM_{s}")));
    for module in MODULES {
        let prefix = module.provider().env_prefix();
        known.extend(module.variables().iter().map(|v| v.to_string()));
        known.extend(common_settings().map(|s| format!("{prefix}{s}")));
    }
    #[cfg(feature = "sandbox")]
    {
        known.extend(kyc_sandbox::settings::VARIABLES.iter().map(|v| v.to_string()));
        for provider in super::sandbox_providers() {
            known.push(format!("{PREFIX}SANDBOX_{}_FAULTS", provider.to_ascii_uppercase()));
        }
    }
    known
}

/// The variables among `names` that the gateway does not read, each with the nearest one it does (a likely
/// misspelling) when one is close.
pub fn unknown<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, Option<String>)> {
    let known = known();
    names
        .filter(|name| name.starts_with(PREFIX) && !known.iter().any(|k| k == name))
        .map(|name| {
            let nearest = known
                .iter()
                .map(|k| (strsim::levenshtein(name, k), k))
                .min()
                .filter(|(distance, _)| *distance <= 3)
                .map(|(_, k)| k.clone());
            (name.to_owned(), nearest)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_variable_is_unknown_and_names_the_nearest_known_one() {
        let found =
            unknown(["KYC_GATEWAY_CAHCE", "KYC_GATEWAY_CACHE", "HOME", "KYC_GATEWAY_NOTHING_LIKE_IT"].into_iter());
        assert_eq!(
            found,
            [
                ("KYC_GATEWAY_CAHCE".to_owned(), Some("KYC_GATEWAY_CACHE".to_owned())),
                ("KYC_GATEWAY_NOTHING_LIKE_IT".to_owned(), None)
            ]
        );
        assert!(unknown(["KYC_GATEWAY_SILA_RETRIES", "KYC_GATEWAY_UPSTREAM_TIMEOUT_MS"].into_iter()).is_empty());
    }

    /// Every variable name the code of these folders spells out is a known one: the list cannot fall behind.
    #[test]
    fn every_variable_the_code_names_is_known() {
        let known = known();
        let mut missing = Vec::new();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut dirs = vec![std::path::PathBuf::from(root)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("a source folder") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let source = std::fs::read_to_string(&path).expect("a source file");
                let code = source.split("#[cfg(test)]").next().unwrap_or("");
                for name in code.split('"').skip(1).step_by(2) {
                    let whole = name.starts_with(PREFIX)
                        && !name.ends_with('_')
                        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                    if whole && !known.iter().any(|k| k == name) {
                        missing.push(format!("{name} ({})", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "variables not in config/variables.rs: {missing:?}");
    }
}
