//! `kyc-gateway directory import FILE`: users and their provider references from a JSON list (each provider's
//! [`ImportField`]s; docs/configuration.md, "The directory import file"). Idempotent, and a stored link is kept: its
//! refresh token has rotated since the file was written, so overwriting it would lose the link.

use std::path::Path;

use serde_json::{Map, Value};

use super::sql::{ImportEntry, SqlDirectory};
use super::References;
use crate::domain::{Provider, UserId};
use crate::secret::Secret;

/// What one field of an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// One reference (a string).
    Reference,
    /// Several references (a list of strings).
    References,
    /// A linked account: `{"uid": "...", "refresh_token": "..."}`.
    Link,
}

/// A field a provider reads from an import entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportField {
    pub name: &'static str,
    pub provider: Provider,
    pub kind: FieldKind,
}

/// One user of an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub user_id: UserId,
    /// Each provider's one reference (it replaces the stored one).
    pub references: References,
    /// Each provider's list of references (added to the stored ones, never removing any).
    pub lists: References,
    /// `(provider, account, refresh token)`.
    pub links: Vec<(Provider, String, Secret)>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Users in the file (new or already known).
    pub users: usize,
    /// Links stored now (links already stored are kept and not counted).
    pub links: usize,
}

/// Why an entry is not valid: where, and what is wrong. Never a value from the file.
fn invalid(index: usize, what: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("entry {} (counting from 1): {what}", index + 1)
}

fn string(index: usize, field: &str, value: &Value) -> anyhow::Result<String> {
    match value {
        Value::String(s) if crate::domain::ids::check(s).is_ok() => Ok(s.clone()),
        Value::String(s) => {
            Err(invalid(index, format_args!("`{field}`: {}", crate::domain::ids::check(s).unwrap_err())))
        }
        _ => Err(invalid(index, format_args!("`{field}` must be a string"))),
    }
}

/// Reads the entries of a parsed file, each field through `fields`.
pub fn entries(file: &Value, fields: &[ImportField]) -> anyhow::Result<Vec<Entry>> {
    let list = file.as_array().ok_or_else(|| anyhow::anyhow!("the file must hold a JSON list of entries"))?;
    list.iter().enumerate().map(|(index, entry)| read_entry(index, entry, fields)).collect()
}

fn read_entry(index: usize, entry: &Value, fields: &[ImportField]) -> anyhow::Result<Entry> {
    let object: &Map<String, Value> = entry.as_object().ok_or_else(|| invalid(index, "must be a JSON object"))?;
    let user = object.get("user_id").ok_or_else(|| invalid(index, "`user_id` is missing"))?;
    let user_id = UserId::trusted(string(index, "user_id", user)?);
    let mut read = Entry { user_id, references: References::new(), lists: References::new(), links: Vec::new() };
    for (name, value) in object.iter().filter(|(name, _)| *name != "user_id") {
        // The file's keys are not echoed (a key may be a value put in the wrong place): the known ones are listed.
        let field = fields.iter().find(|f| f.name == name).ok_or_else(|| {
            let known: Vec<&str> = std::iter::once("user_id").chain(fields.iter().map(|f| f.name)).collect();
            invalid(index, format_args!("a field the file format does not have; the fields are {}", known.join(", ")))
        })?;
        if value.is_null() {
            continue;
        }
        match field.kind {
            FieldKind::Reference => {
                read.references.entry(field.provider).or_default().push(string(index, name, value)?);
            }
            FieldKind::References => {
                let list = value.as_array().ok_or_else(|| invalid(index, format_args!("`{name}` must be a list")))?;
                let refs = list.iter().map(|v| string(index, name, v)).collect::<anyhow::Result<Vec<_>>>()?;
                read.lists.entry(field.provider).or_default().extend(refs);
            }
            FieldKind::Link => {
                let link =
                    value.as_object().ok_or_else(|| invalid(index, format_args!("`{name}` must be an object")))?;
                if link.keys().any(|k| k != "uid" && k != "refresh_token") {
                    return Err(invalid(
                        index,
                        format_args!("`{name}` holds a field other than uid and refresh_token"),
                    ));
                }
                let uid = link.get("uid").ok_or_else(|| invalid(index, format_args!("`{name}.uid` is missing")))?;
                let token =
                    link.get("refresh_token").and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or_else(|| {
                        invalid(index, format_args!("`{name}.refresh_token` must be a non-empty string"))
                    })?;
                read.links.push((field.provider, string(index, &format!("{name}.uid"), uid)?, Secret::new(token)));
            }
        }
    }
    Ok(read)
}

/// Reads an import file; errors name the file and the place, never a value.
pub fn read(path: &Path, fields: &[ImportField]) -> anyhow::Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read directory file {}: {e}", path.display()))?;
    let file: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "directory file {} is not JSON: {} (line {}, column {})",
            path.display(),
            problem(&e),
            e.line(),
            e.column()
        )
    })?;
    entries(&file, fields).map_err(|e| anyhow::anyhow!("directory file {}: {e}", path.display()))
}

/// What is wrong with the JSON. Parsing into a `Value` fails only on the format (`trailing comma`, `EOF while
/// parsing a list`), never with a message quoting the file's values; the position is given apart.
fn problem(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let at = format!(" at line {} column {}", error.line(), error.column());
    match error.classify() {
        serde_json::error::Category::Data => "unexpected data".to_owned(),
        _ => text.strip_suffix(&at).unwrap_or(&text).to_owned(),
    }
}

/// Imports `entries` (see the module documentation); `replace_links` overwrites stored links (the sandbox's own
/// population, whose providers are new at every start).
pub async fn import(directory: &SqlDirectory, entries: &[Entry], replace_links: bool) -> anyhow::Result<Imported> {
    let rows: Vec<ImportEntry<'_>> = entries
        .iter()
        .map(|e| ImportEntry {
            user: &e.user_id,
            refs: e.references.clone(),
            lists: e.lists.clone(),
            links: e.links.iter().map(|(p, subject, token)| (*p, subject.as_str(), token)).collect(),
        })
        .collect();
    let links = directory.import(&rows, replace_links).await?;
    Ok(Imported { users: entries.len(), links })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const FIELDS: [ImportField; 2] = [
        ImportField { name: "one_ref", provider: Provider::Sila, kind: FieldKind::Reference },
        ImportField { name: "account", provider: Provider::Fractal, kind: FieldKind::Link },
    ];

    #[test]
    fn entries_read_each_provider_s_fields_and_refuse_unknown_ones_without_quoting_values() {
        let file = json!([{"user_id": "u1", "one_ref": "h1", "account": {"uid": "a1", "refresh_token": "secret-rt"}}]);
        let read = entries(&file, &FIELDS).expect("valid");
        assert_eq!(read[0].references[&Provider::Sila], ["h1"]);
        assert_eq!(read[0].links[0].1, "a1");
        let err = entries(&json!([{"user_id": "u1"}, {"user_id": "u2", "secret_field": "private"}]), &FIELDS)
            .expect_err("unknown field")
            .to_string();
        assert!(err.contains("entry 2") && err.contains("the fields are user_id, one_ref, account"), "{err}");
        assert!(!err.contains("secret_field") && !err.contains("private"), "neither key nor value echoed: {err}");
        let err = entries(&json!([{"one_ref": "h"}]), &FIELDS).expect_err("no user").to_string();
        assert!(err.contains("`user_id` is missing"), "{err}");
        let err = entries(&json!([{"user_id": 7}]), &FIELDS).expect_err("a number").to_string();
        assert!(err.contains("must be a string"), "{err}");
    }
}
