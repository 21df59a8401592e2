//! Trusted documents: automatic persisted queries (Apollo's protocol; each replica keeps its own cache, bounded in
//! bytes and entries) and safelist mode (only a manifest's documents run). A document is registered only once it passed
//! every check before execution: [`TrustedDocuments::resolve`] hands back a [`Registration`] completed at stage 5.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Request;

use crate::config::{DocumentSettings, TrustedMode};
use crate::graphql::errors::ErrorCode;

/// Why a request's document cannot run.
pub type Refusal = (ErrorCode, String);

pub struct TrustedDocuments {
    mode: TrustedMode,
    registered: moka::future::Cache<String, Arc<str>>,
    safelist: HashMap<String, Arc<str>>,
}

/// A persisted query sent with its text, to be registered once it has passed the checks (stage 5).
#[derive(Debug, Clone)]
pub struct Registration {
    hash: String,
    text: Arc<str>,
}

/// Apollo's persisted query manifest.
#[derive(serde::Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    operations: Vec<ManifestOperation>,
}

#[derive(serde::Deserialize)]
struct ManifestOperation {
    id: String,
    body: String,
}

pub use crate::digest::sha256_hex;

impl TrustedDocuments {
    /// The documents setting; reads and checks the safelist manifest (every `id` must be its body's hash).
    pub fn load(settings: &DocumentSettings) -> anyhow::Result<Self> {
        let mut safelist = HashMap::new();
        if let Some(path) = &settings.safelist {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("KYC_GATEWAY_SAFELIST_FILE {}: {e}", path.display()))?;
            let manifest: Manifest = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("KYC_GATEWAY_SAFELIST_FILE {} is not a manifest: {e}", path.display()))?;
            if manifest.format != "apollo-persisted-query-manifest" || manifest.version != 1 {
                anyhow::bail!("KYC_GATEWAY_SAFELIST_FILE must be an apollo-persisted-query-manifest, version 1");
            }
            for operation in manifest.operations {
                if sha256_hex(&operation.body) != operation.id.to_ascii_lowercase() {
                    anyhow::bail!("KYC_GATEWAY_SAFELIST_FILE: operation {} is not the hash of its body", operation.id);
                }
                safelist.insert(operation.id.to_ascii_lowercase(), Arc::from(operation.body));
            }
        }
        Ok(TrustedDocuments { mode: settings.mode, registered: apq_cache(settings), safelist })
    }

    /// Resolves the request's document: fills in the query of a persisted one, or refuses. A persisted query sent
    /// with its text (APQ) comes back as a [`Registration`], for [`TrustedDocuments::register`] once the document
    /// has passed the checks: nothing is registered before that.
    pub async fn resolve(&self, request: &mut Request) -> Result<Option<Registration>, Refusal> {
        let persisted = match request.extensions.get("persistedQuery") {
            None => None,
            Some(value) => Some(persisted_hash(value)?),
        };
        match (self.mode, persisted) {
            (TrustedMode::Off, None) | (TrustedMode::Apq, None) => Ok(None),
            (TrustedMode::Off, Some(_)) => {
                Err((ErrorCode::PersistedQueryNotSupported, "PersistedQueryNotSupported".into()))
            }
            (TrustedMode::Apq, Some(hash)) => {
                if request.query.is_empty() {
                    let known = self.registered.get(&hash).await;
                    let query =
                        known.ok_or((ErrorCode::PersistedQueryNotFound, "PersistedQueryNotFound".to_owned()))?;
                    request.query = query.to_string();
                    return Ok(None);
                }
                if sha256_hex(&request.query) != hash {
                    return Err((ErrorCode::PersistedQueryHashMismatch, "provided sha does not match query".into()));
                }
                if self.registered.contains_key(&hash) {
                    return Ok(None);
                }
                Ok(Some(Registration { hash, text: Arc::from(request.query.as_str()) }))
            }
            (TrustedMode::Safelist, hash) => {
                let hash = hash.unwrap_or_else(|| sha256_hex(&request.query));
                let listed = self.safelist.get(&hash).ok_or_else(|| {
                    (ErrorCode::PersistedQueryNotInList, "the operation is not in this gateway's safelist".to_owned())
                })?;
                if !request.query.is_empty() && *request.query != **listed {
                    return Err((ErrorCode::PersistedQueryHashMismatch, "provided sha does not match query".into()));
                }
                request.query = listed.to_string();
                Ok(None)
            }
        }
    }

    /// Registers a persisted query that passed the checks (the pipeline, `pipeline/mod.rs`, calls this after validation).
    pub async fn register(&self, registration: Registration) {
        self.registered.insert(registration.hash, registration.text).await;
        // Evictions are applied now, so the cache never holds more than its budget for long.
        self.registered.run_pending_tasks().await;
    }
}

/// The cache of registered persisted queries, bounded in entries and in bytes: each entry weighs its size, and at
/// least one entry's share of the byte budget (`max_bytes / capacity`), so neither bound can be passed. Either bound
/// at 0 keeps nothing.
fn apq_cache(settings: &DocumentSettings) -> moka::future::Cache<String, Arc<str>> {
    let budget = if settings.apq_capacity == 0 { 0 } else { settings.apq_max_bytes };
    let share = budget / settings.apq_capacity.max(1);
    moka::future::Cache::builder()
        .max_capacity(budget)
        .weigher(move |hash: &String, text: &Arc<str>| {
            let bytes = (hash.len() + text.len()) as u64;
            u32::try_from(bytes.max(share)).unwrap_or(u32::MAX)
        })
        .build()
}

/// The `sha256Hash` of a `persistedQuery` extension (version 1, 64 hex digits).
fn persisted_hash(value: &async_graphql::Value) -> Result<String, Refusal> {
    let invalid = || {
        (
            ErrorCode::BadRequest,
            "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}".to_owned(),
        )
    };
    let async_graphql::Value::Object(fields) = value else { return Err(invalid()) };
    let version = fields.get("version").and_then(|v| match v {
        async_graphql::Value::Number(n) => n.as_u64(),
        _ => None,
    });
    let hash = fields.get("sha256Hash").and_then(|v| match v {
        async_graphql::Value::String(s) => Some(s.to_ascii_lowercase()),
        _ => None,
    });
    match (version, hash) {
        (Some(1), Some(hash)) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(hash),
        _ => Err(invalid()),
    }
}
