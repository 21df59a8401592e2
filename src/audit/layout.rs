//! How a record is laid out on disk (migrations/*/0008_lean_audit.sql): ids and hashes as bytes, the fields list with
//! its subjects as positions in the record's subjects, and a batch as one JSON parameter. Only the layout is compact:
//! a record read back is the logical [`Entry`] its hash was made over.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Entry, FieldAccess, Outcome};
use crate::store::Engine;

/// The tag of an id stored as text.
const TEXT: u8 = 0;
/// The tag of an id stored as the bytes of its lowercase hex.
const HEX: u8 = 1;
/// The tag of an id stored as the 16 bytes of a lowercase UUID.
const UUID: u8 = 2;

fn lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

/// A request or trace id as stored: a tag byte, then 16 bytes (UUID), half the hex's length (hex), or the text.
pub fn encode_id(id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(id.len() / 2 + 1);
    if is_uuid(id) {
        out.push(UUID);
        out.extend(hex::decode(id.replace('-', "")).expect("checked hex"));
    } else if id.len().is_multiple_of(2) && lower_hex(id) {
        out.push(HEX);
        out.extend(hex::decode(id).expect("checked hex"));
    } else {
        out.push(TEXT);
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// An id back from its stored bytes.
pub fn decode_id(bytes: &[u8]) -> Option<String> {
    let (tag, rest) = bytes.split_first()?;
    match *tag {
        TEXT => String::from_utf8(rest.to_vec()).ok(),
        HEX => Some(hex::encode(rest)),
        UUID if rest.len() == 16 => {
            let h = hex::encode(rest);
            Some(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
        }
        _ => None,
    }
}

/// The stored link of a record after `prev_hash`: the bytes of its first 8 hex digits (none after `genesis`).
pub fn link_of(prev_hash: &str) -> Option<Vec<u8>> {
    prev_hash.get(..8).and_then(|head| hex::decode(head).ok())
}

/// A field of a stored field list: its subjects as positions in the record's subjects where they are among them.
#[derive(Serialize, Deserialize)]
struct StoredField {
    path: String,
    outcome: Outcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    subjects: Vec<StoredSubject>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredSubject {
    Position(usize),
    User(String),
}

/// The stored field list of `entry` (the same text for every record with the same fields read of the same positions).
pub fn field_list(entry: &Entry) -> String {
    let mut positions: HashMap<&str, usize> = HashMap::with_capacity(entry.subjects.len());
    for (i, subject) in entry.subjects.iter().enumerate() {
        positions.entry(subject.as_str()).or_insert(i);
    }
    let fields: Vec<StoredField> = entry
        .fields
        .iter()
        .map(|f| StoredField {
            path: f.path.clone(),
            outcome: f.outcome,
            subjects: f
                .subjects
                .iter()
                .map(|s| match positions.get(s.as_str()) {
                    Some(&i) => StoredSubject::Position(i),
                    None => StoredSubject::User(s.clone()),
                })
                .collect(),
        })
        .collect();
    serde_json::to_string(&fields).expect("fields serialise")
}

/// The fields of a record from its stored field list and its subjects.
pub fn fields_of(stored: &str, subjects: &[String]) -> Option<Vec<FieldAccess>> {
    let fields: Vec<StoredField> = serde_json::from_str(stored).ok()?;
    fields
        .into_iter()
        .map(|f| {
            let subjects = f
                .subjects
                .into_iter()
                .map(|s| match s {
                    StoredSubject::Position(i) => subjects.get(i).cloned(),
                    StoredSubject::User(user) => Some(user),
                })
                .collect::<Option<Vec<_>>>()?;
            Some(FieldAccess { path: f.path, outcome: f.outcome, subjects })
        })
        .collect()
}

/// The rows of the JSON array bound as `$1`, as `j`, each row's values `j.value ->> 0`, `j.value ->> 1`...: a batch of
/// any size is one statement of one parameter, the same text every time (prepared once per connection).
pub fn json_rows(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "json_each($1) AS j",
        Engine::Postgres => "json_array_elements($1::json) AS j(value)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stored_in_few_bytes_and_read_back_as_they_were() {
        let uuid = "b76ab44d-b71e-4d19-b6f9-f6e88cd73946";
        assert_eq!(encode_id(uuid).len(), 17);
        let hex32 = "0123456789abcdef0123456789abcdef";
        assert_eq!(encode_id(hex32).len(), 17);
        for id in [uuid, hex32, "", "req-1", "B76AB44D-B71E-4D19-B6F9-F6E88CD73946", "abc", "ABCD", "é-ü", "0g"] {
            assert_eq!(decode_id(&encode_id(id)).as_deref(), Some(id), "{id}");
        }
        assert_eq!(link_of("genesis"), None);
        assert_eq!(link_of(&"ab".repeat(32)), Some(vec![0xab; 4]));
    }

    #[test]
    fn a_field_list_names_subjects_by_position_and_reads_back_whole() {
        let entry = Entry {
            at: 0,
            request_id: "r".into(),
            trace_id: None,
            caller: super::super::Caller { kind: "user".into(), id: "u".into(), issuer: String::new() },
            subjects: vec!["u-1".into(), "u-2".into()],
            fields: vec![
                FieldAccess { path: "a".into(), outcome: Outcome::Returned, subjects: vec!["u-2".into()] },
                FieldAccess { path: "b".into(), outcome: Outcome::Denied, subjects: Vec::new() },
                FieldAccess { path: "c".into(), outcome: Outcome::Returned, subjects: vec!["other".into()] },
            ],
            operation_name: None,
            operation_type: "query".into(),
            document_hash: String::new(),
            purpose: None,
            cause: None,
        };
        let stored = field_list(&entry);
        assert_eq!(
            stored,
            r#"[{"path":"a","outcome":"RETURNED","subjects":[1]},{"path":"b","outcome":"DENIED"},{"path":"c","outcome":"RETURNED","subjects":["other"]}]"#
        );
        assert_eq!(fields_of(&stored, &entry.subjects), Some(entry.fields.clone()));
        // A list stored before the lean layout (user ids) reads back as it was.
        let older = serde_json::to_string(&entry.fields).expect("json");
        assert_eq!(fields_of(&older, &[]), Some(entry.fields));
    }
}
