//! Trusted documents: automatic persisted queries (Apollo's protocol) and safelist mode.
//!
//! A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`, at first without the query;
//! `PERSISTED_QUERY_NOT_FOUND` asks it to send both once, after which the hash alone runs the document (each replica
//! keeps its own bounded cache; a replica that has not seen the hash asks again). In **safelist** mode only the
//! documents of a manifest run (Apollo's persisted query manifest format), whether sent by hash or in full, and
//! nothing can be registered: production frontends ship their operations to the manifest at build time.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Request;

use super::errors::ErrorCode;
use crate::config::{DocumentSettings, TrustedMode};

/// Why a request's document cannot run.
pub type Refusal = (ErrorCode, String);

pub struct TrustedDocuments {
    mode: TrustedMode,
    registered: moka::future::Cache<String, Arc<str>>,
    safelist: HashMap<String, Arc<str>>,
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
        Ok(TrustedDocuments {
            mode: settings.mode,
            registered: moka::future::Cache::builder().max_capacity(settings.apq_capacity).build(),
            safelist,
        })
    }

    /// Resolves the request's document: fills in the query of a persisted one, registers a new one (APQ), or refuses.
    pub async fn resolve(&self, request: &mut Request) -> Result<(), Refusal> {
        let persisted = match request.extensions.get("persistedQuery") {
            None => None,
            Some(value) => Some(persisted_hash(value)?),
        };
        match (self.mode, persisted) {
            (TrustedMode::Off, None) | (TrustedMode::Apq, None) => Ok(()),
            (TrustedMode::Off, Some(_)) => {
                Err((ErrorCode::PersistedQueryNotSupported, "PersistedQueryNotSupported".into()))
            }
            (TrustedMode::Apq, Some(hash)) => {
                if request.query.is_empty() {
                    let known = self.registered.get(&hash).await;
                    let query =
                        known.ok_or((ErrorCode::PersistedQueryNotFound, "PersistedQueryNotFound".to_owned()))?;
                    request.query = query.to_string();
                    return Ok(());
                }
                if sha256_hex(&request.query) != hash {
                    return Err((ErrorCode::PersistedQueryHashMismatch, "provided sha does not match query".into()));
                }
                self.registered.insert(hash, Arc::from(request.query.as_str())).await;
                Ok(())
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
                Ok(())
            }
        }
    }
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
