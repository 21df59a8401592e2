//! How a record is laid out on disk (migrations/*/0008_lean_audit.sql): ids and hashes as bytes, the fields list with
//! its subjects as positions in the record's subjects, and the writer's bounded cache of dictionary ids. Only the
//! layout is compact: a record read back is the logical [`Entry`] its hash was made over.

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use super::{Entry, FieldAccess, Outcome};

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

/// A caller's dictionary key: kind, id, issuer.
pub type CallerKey = (String, String, String);
/// An operation's dictionary key: name, type, document hash.
pub type OperationKey = (Option<String>, String, String);

/// The most ids the writer keeps of one dictionary; past it that dictionary's cache starts again empty.
const CACHED: usize = 50_000;

/// How far a dictionary row's `last_seq` may lag behind the records using it: a row is written again only when a
/// record this far past its `last_seq` uses it, and retention keeps every row within this of its last removed record.
pub const LAST_SEQ_SLACK: i64 = 1024;

/// Ids of one dictionary with their rows' `last_seq`: those committed, and those a transaction not yet committed
/// added or moved on.
#[derive(Debug)]
pub struct Cached<K> {
    ids: HashMap<K, (i64, i64)>,
    pending: HashMap<K, (i64, i64)>,
}

impl<K> Default for Cached<K> {
    fn default() -> Self {
        Cached { ids: HashMap::new(), pending: HashMap::new() }
    }
}

impl<K: Eq + Hash + Clone> Cached<K> {
    pub fn get(&self, key: &K) -> Option<i64> {
        self.entry(key).map(|(id, _)| id)
    }

    fn entry(&self, key: &K) -> Option<(i64, i64)> {
        self.pending.get(key).or_else(|| self.ids.get(key)).copied()
    }

    /// Notes the id of `key` and its row's `last_seq` as this transaction read or wrote them.
    pub fn add(&mut self, key: K, id: i64, last_seq: i64) {
        self.pending.insert(key, (id, last_seq));
    }

    /// The ids of `keys` whose rows' `last_seq` lags more than [`LAST_SEQ_SLACK`] behind `seq`, noted as moved to it
    /// (the caller writes them in the same transaction).
    pub fn stale(&mut self, keys: &[K], seq: i64) -> Vec<i64> {
        let mut moved = Vec::new();
        for key in keys {
            if let Some((id, last)) = self.entry(key).filter(|(_, last)| *last < seq - LAST_SEQ_SLACK) {
                debug_assert!(last < seq);
                moved.push(id);
                self.pending.insert(key.clone(), (id, seq));
            }
        }
        moved
    }

    fn settle(&mut self, committed: bool) {
        if !committed {
            self.pending.clear();
            return;
        }
        if self.ids.len() + self.pending.len() > CACHED {
            self.ids.clear();
        }
        self.ids.extend(self.pending.drain());
    }

    fn forget(&mut self) {
        self.ids.clear();
        self.pending.clear();
    }
}

/// The writer's cache of dictionary ids, so that a batch of known callers, operations, field lists and users costs no
/// lookup. Ids added in a transaction count only once it committed ([`Dictionaries::settle`]); all are forgotten when
/// the head's `epoch` says retention removed rows since they were read.
#[derive(Debug, Default)]
pub struct Dictionaries {
    pub epoch: i64,
    pub callers: Cached<CallerKey>,
    pub operations: Cached<OperationKey>,
    pub field_lists: Cached<String>,
    pub users: Cached<String>,
}

impl Dictionaries {
    /// Keeps the ids the last transaction added when it committed, forgets them when it did not.
    pub fn settle(&mut self, committed: bool) {
        self.callers.settle(committed);
        self.operations.settle(committed);
        self.field_lists.settle(committed);
        self.users.settle(committed);
    }

    /// Forgets every id when retention removed rows since they were read (the head's `epoch` moved).
    pub fn at_epoch(&mut self, epoch: i64) {
        if epoch != self.epoch {
            self.callers.forget();
            self.operations.forget();
            self.field_lists.forget();
            self.users.forget();
            self.epoch = epoch;
        }
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
    fn a_dictionary_row_is_written_again_only_when_a_record_past_its_slack_uses_it() {
        let mut cached = Cached::default();
        cached.add("u-1".to_owned(), 7, 100);
        let keys = ["u-1".to_owned()];
        assert!(cached.stale(&keys, 100 + LAST_SEQ_SLACK).is_empty());
        assert_eq!(cached.stale(&keys, 101 + LAST_SEQ_SLACK), [7]);
        // Moved on: the next records within the slack cost nothing, and a rolled back move is forgotten.
        assert!(cached.stale(&keys, 102 + LAST_SEQ_SLACK).is_empty());
        cached.settle(false);
        assert!(cached.get(&keys[0]).is_none());
        cached.add("u-1".to_owned(), 7, 100);
        cached.settle(true);
        let mut dictionaries = Dictionaries { users: cached, ..Default::default() };
        dictionaries.at_epoch(0);
        assert_eq!(dictionaries.users.get(&keys[0]), Some(7));
        dictionaries.at_epoch(1);
        assert_eq!(dictionaries.users.get(&keys[0]), None, "retention removed rows since");
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
