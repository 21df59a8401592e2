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
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text))
        .map_err(|e| anyhow::anyhow!("directory file {} is not valid{}", path.display(), explain(&e)))
}

/// The fields of the file, the only keys an error may name.
const FIELDS: [&str; 7] =
    ["user_id", "fractal", "sumsub_applicant_id", "sila_user_handle", "ident_user_id", "uid", "refresh_token"];

/// Where and what is wrong, from serde's category, position and path: serde_json's messages about data quote the
/// value (`invalid type: string "..."`), so only the parts that come from the format itself are kept.
fn explain(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    use serde_json::error::Category;
    let inner = error.inner();
    let at = format!("line {}, column {}", inner.line(), inner.column());
    let text = inner.to_string();
    let message = text.strip_suffix(&format!(" at line {} column {}", inner.line(), inner.column())).unwrap_or(&text);
    match inner.classify() {
        Category::Syntax | Category::Eof => format!(" ({at}): not JSON: {message}"),
        Category::Io => format!(" ({at}): {message}"),
        Category::Data => {
            let path: String = error
                .path()
                .iter()
                .map(|segment| match segment {
                    serde_path_to_error::Segment::Seq { index } => format!("[{index}]"),
                    serde_path_to_error::Segment::Map { key } if FIELDS.contains(&key.as_str()) => format!(".{key}"),
                    _ => ".?".to_owned(),
                })
                .collect();
            let path = path.trim_end_matches(".?");
            let place = if path.is_empty() { format!(" ({at})") } else { format!(" at {path} ({at})") };
            format!("{place}: {}", what_is_wrong(message))
        }
    }
}

/// serde's data error without the value it may quote.
fn what_is_wrong(message: &str) -> String {
    let expected = message.rsplit_once(", expected ").map(|(_, expected)| expected);
    if let Some(field) = message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
        if FIELDS.contains(&field) {
            return format!("the field {field} is missing");
        }
    }
    if message.starts_with("unknown field `") {
        return format!("a field the file format does not have (expected {})", expected.unwrap_or("none"));
    }
    if let (Some(found), Some(expected)) = (message.strip_prefix("invalid type: "), expected) {
        // `integer `5``, `string "..."`, `map`: the kind only.
        let kind = found.split(['`', '"', ',']).next().unwrap_or("").trim();
        let kind = if kind.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') { kind } else { "another type" };
        return format!("expected {expected}, found {kind}");
    }
    "a value of the wrong form".to_owned()
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
