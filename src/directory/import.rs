//! `kyc-gateway directory import FILE`: users and their provider references from a JSON file, for a first
//! deployment or a migration from another system. Idempotent: importing the same file again changes nothing, and a
//! Fractal link already stored is kept (its refresh token has rotated since the file was written; overwriting it
//! would lose the link).
//!
//! The file: `[{"user_id": "...", "fractal": {"uid": "...", "refresh_token": "..."}, "sumsub_applicant_id": "...",
//! "sila_user_handle": "...", "ident_user_id": "..."}]`, every field but `user_id` optional.

use std::path::Path;

use serde::Deserialize;

use super::sql::{ImportLink, SqlDirectory};
use super::ProviderRefs;
use crate::secret::Secret;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub user_id: String,
    #[serde(default)]
    pub fractal: Option<FractalEntry>,
    #[serde(default)]
    pub sumsub_applicant_id: Option<String>,
    #[serde(default)]
    pub sila_user_handle: Option<String>,
    #[serde(default)]
    pub ident_user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FractalEntry {
    pub uid: String,
    pub refresh_token: Secret,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Users in the file (new or already known).
    pub users: usize,
    /// Fractal links stored now (links already stored are kept and not counted).
    pub links: usize,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// Reads an import file; errors name the file, never a value.
pub fn read(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read directory file {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("directory file {} is not valid: line {}, column {}", path.display(), e.line(), e.column())
    })
}

/// Imports `entries` (see the module documentation); `replace_links` overwrites stored links (the sandbox's own
/// population, whose provider is new at every start).
pub async fn import(directory: &SqlDirectory, entries: &[Entry], replace_links: bool) -> anyhow::Result<Imported> {
    let refs: Vec<ProviderRefs> = entries
        .iter()
        .map(|e| ProviderRefs {
            sumsub_applicant_id: e.sumsub_applicant_id.clone(),
            sila_user_handle: e.sila_user_handle.clone(),
            ident_user_id: e.ident_user_id.clone(),
        })
        .collect();
    let rows: Vec<_> = entries
        .iter()
        .zip(&refs)
        .map(|(e, refs)| {
            let link = e.fractal.as_ref().map(|f| ImportLink { uid: &f.uid, refresh_token: &f.refresh_token });
            (e.user_id.as_str(), refs, link)
        })
        .collect();
    let links = directory.import(&rows, replace_links).await?;
    Ok(Imported { users: entries.len(), links })
}
