//! The trail's dictionaries (migrations/*/0008_lean_audit.sql and 0009): callers, operations, field lists and users
//! stored once and referenced by id from the records; the writer's bounded cache of their ids; and how retention
//! forgets the rows no retained record uses (each row's `last_seq`, the head's `epoch`).

use std::collections::HashMap;
use std::hash::Hash;

use sqlx::{Any, Row, Transaction};

use super::layout::{self, json_rows};
use super::Entry;
use crate::store::{Engine, StoreError};

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

/// A batch's keys in each dictionary: per entry for callers, operations and field lists; the users once each.
pub(super) struct Keys {
    pub callers: Vec<CallerKey>,
    pub operations: Vec<OperationKey>,
    pub field_lists: Vec<String>,
    users: Vec<String>,
}

impl Keys {
    pub fn of(entries: &[&Entry]) -> Self {
        let mut users: Vec<String> = entries.iter().flat_map(|e| e.subjects.iter().cloned()).collect();
        users.sort_unstable();
        users.dedup();
        Keys {
            callers: entries
                .iter()
                .map(|e| (e.caller.kind.clone(), e.caller.id.clone(), e.caller.issuer.clone()))
                .collect(),
            operations: entries
                .iter()
                .map(|e| (e.operation_name.clone(), e.operation_type.clone(), e.document_hash.clone()))
                .collect(),
            field_lists: entries.iter().map(|entry| layout::field_list(entry)).collect(),
            users,
        }
    }
}

impl Dictionaries {
    /// The ids of every key of a batch whose last record is `last`, in the transaction holding the head: the rows
    /// looked up or added, and moved on as used up to `last` where their `last_seq` lags too far.
    pub(super) async fn resolve(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        engine: Engine,
        keys: &Keys,
        last: i64,
    ) -> Result<(), StoreError> {
        let [callers_sql, operations_sql, fields_sql, users_sql] = dictionary_sql(engine);
        let text = |row: &sqlx::any::AnyRow, column: &str| row.try_get::<String, _>(column);
        resolve(
            tx,
            &mut self.callers,
            &keys.callers,
            last,
            |(kind, id, issuer)| serde_json::json!([kind, id, issuer]),
            |row| Ok((text(row, "kind")?, text(row, "caller")?, text(row, "issuer")?)),
            &callers_sql,
        )
        .await?;
        resolve(
            tx,
            &mut self.operations,
            &keys.operations,
            last,
            |(name, kind, document)| serde_json::json!([name, kind, document]),
            |row| Ok((row.try_get("name")?, text(row, "operation_type")?, text(row, "document_hash")?)),
            &operations_sql,
        )
        .await?;
        resolve(
            tx,
            &mut self.field_lists,
            &keys.field_lists,
            last,
            |fields| serde_json::json!([fields]),
            |row| text(row, "fields"),
            &fields_sql,
        )
        .await?;
        resolve(
            tx,
            &mut self.users,
            &keys.users,
            last,
            |user| serde_json::json!([user]),
            |row| text(row, "user_id"),
            &users_sql,
        )
        .await
    }
}

/// The ids of `keys` in a dictionary: from `cached`, else looked up, else added as used up to `last`; then the rows
/// whose `last_seq` lags too far behind `last` moved to it. One statement per step for all the keys, whatever their
/// number.
async fn resolve<K: Eq + Hash + Clone>(
    tx: &mut Transaction<'static, Any>,
    cached: &mut Cached<K>,
    keys: &[K],
    last: i64,
    json: impl Fn(&K) -> serde_json::Value,
    row_key: impl Fn(&sqlx::any::AnyRow) -> Result<K, sqlx::Error>,
    sql: &DictionarySql,
) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::new();
    let missing: Vec<&K> = keys.iter().filter(|key| cached.get(key).is_none() && seen.insert(*key)).collect();
    let rows = |keys: &[&K]| serde_json::Value::Array(keys.iter().map(|k| json(k)).collect()).to_string();
    let add = |cached: &mut Cached<K>, row: &sqlx::any::AnyRow| -> Result<(), sqlx::Error> {
        cached.add(row_key(row)?, row.try_get("id")?, row.try_get("last_seq")?);
        Ok(())
    };
    if !missing.is_empty() {
        for row in sqlx::query(&sql.select).bind(rows(&missing)).fetch_all(&mut **tx).await? {
            add(cached, &row)?;
        }
        let missing: Vec<&K> = missing.into_iter().filter(|k| cached.get(k).is_none()).collect();
        if !missing.is_empty() {
            for row in sqlx::query(&sql.insert).bind(rows(&missing)).bind(last).fetch_all(&mut **tx).await? {
                add(cached, &row)?;
            }
        }
    }
    let moved = cached.stale(keys, last);
    if !moved.is_empty() {
        sqlx::query(&sql.touch).bind(last).bind(serde_json::Value::from(moved).to_string()).execute(&mut **tx).await?;
    }
    Ok(())
}

/// One dictionary's statements: look keys up, add them, and move rows' `last_seq` on.
struct DictionarySql {
    select: String,
    insert: String,
    touch: String,
}

/// The dictionaries' statements on `engine`: callers, operations, field lists, users.
fn dictionary_sql(engine: Engine) -> [DictionarySql; 4] {
    let rows = json_rows(engine);
    let ids = match engine {
        Engine::Sqlite => "SELECT value FROM json_each($2)",
        Engine::Postgres => "SELECT json_array_elements_text($2::json)::integer",
    };
    let sql = |table: &str, columns: &str, select: String, values: &str| DictionarySql {
        select,
        insert: format!(
            "INSERT INTO {table} ({columns}, last_seq) SELECT {values}, CAST($2 AS BIGINT) FROM {rows} \
             RETURNING CAST(id AS BIGINT) AS id, {columns}, last_seq"
        ),
        touch: format!("UPDATE {table} SET last_seq = $1 WHERE id IN ({ids})"),
    };
    [
        sql(
            "audit_callers",
            "kind, caller, issuer",
            format!(
                "SELECT CAST(c.id AS BIGINT) AS id, c.kind, c.caller, c.issuer, c.last_seq FROM audit_callers c \
                 JOIN {rows} ON c.caller = j.value ->> 1 AND c.issuer = j.value ->> 2 AND c.kind = j.value ->> 0"
            ),
            "j.value ->> 0, j.value ->> 1, j.value ->> 2",
        ),
        sql(
            "audit_operations",
            "name, operation_type, document_hash",
            format!(
                "SELECT CAST(o.id AS BIGINT) AS id, o.name, o.operation_type, o.document_hash, o.last_seq \
                 FROM audit_operations o JOIN {rows} ON o.document_hash = j.value ->> 2 \
                 AND o.operation_type = j.value ->> 1 AND o.name IS NOT DISTINCT FROM j.value ->> 0"
            ),
            "j.value ->> 0, j.value ->> 1, j.value ->> 2",
        ),
        sql(
            "audit_field_lists",
            "fields",
            format!(
                "SELECT CAST(f.id AS BIGINT) AS id, f.fields, f.last_seq FROM audit_field_lists f JOIN {rows} \
                 ON f.fields = j.value ->> 0"
            ),
            "j.value ->> 0",
        ),
        sql(
            "audit_users",
            "user_id",
            format!(
                "SELECT CAST(u.id AS BIGINT) AS id, u.user_id, u.last_seq FROM audit_users u JOIN {rows} \
                 ON u.user_id = j.value ->> 0"
            ),
            "j.value ->> 0",
        ),
    ]
}

/// Removes the dictionaries' rows no record after `removed` uses, so that a person's id or a caller leaves with the
/// last record naming them; moves the head's epoch when any went, so every writer forgets the ids it cached. Under the
/// head's lock, after the records up to `removed` were deleted.
pub(super) async fn forget_unused(
    tx: &mut Transaction<'static, Any>,
    engine: Engine,
    removed: i64,
) -> Result<(), StoreError> {
    // A record at `seq` using a row keeps its `last_seq` at `seq - LAST_SEQ_SLACK` or later: only a row whose
    // `last_seq` is at most `removed + LAST_SEQ_SLACK` can be unused, and only records up to `removed + 2 *
    // LAST_SEQ_SLACK` can use it. Those are read by their primary key.
    let window = "FROM audit_records r WHERE r.seq > $1 AND r.seq <= $3";
    let users = match engine {
        Engine::Sqlite => "SELECT j.value FROM audit_records r, json_each('[' || r.subjects || ']') AS j \
                           WHERE r.seq > $1 AND r.seq <= $3"
            .to_owned(),
        Engine::Postgres => format!("SELECT unnest(string_to_array(r.subjects, ',')::integer[]) {window}"),
    };
    let used = [
        ("audit_callers", format!("SELECT r.caller {window}")),
        ("audit_operations", format!("SELECT r.operation {window}")),
        ("audit_field_lists", format!("SELECT r.fields {window}")),
        ("audit_users", users),
    ];
    let mut forgotten = 0;
    for (table, used) in used {
        forgotten += sqlx::query(&format!("DELETE FROM {table} WHERE last_seq <= $2 AND id NOT IN ({used})"))
            .bind(removed)
            .bind(removed + LAST_SEQ_SLACK)
            .bind(removed + 2 * LAST_SEQ_SLACK)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    if forgotten > 0 {
        sqlx::query("UPDATE audit_head SET epoch = epoch + 1 WHERE id = 1").execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dictionary_row_is_written_again_only_when_a_record_past_its_slack_uses_it() {
        let mut cached = Cached::default();
        cached.add("u-1".to_owned(), 7, 100);
        cached.settle(true);
        let keys = ["u-1".to_owned()];
        assert!(cached.stale(&keys, 100 + LAST_SEQ_SLACK).is_empty());
        assert_eq!(cached.stale(&keys, 101 + LAST_SEQ_SLACK), [7]);
        // Moved on: the next records within the slack cost nothing, and a rolled back move is forgotten.
        assert!(cached.stale(&keys, 102 + LAST_SEQ_SLACK).is_empty());
        cached.settle(false);
        assert_eq!(cached.stale(&keys, 102 + LAST_SEQ_SLACK), [7], "moved again: the rolled back move never was");
        cached.settle(true);
        let mut dictionaries = Dictionaries { users: cached, ..Default::default() };
        dictionaries.at_epoch(0);
        assert_eq!(dictionaries.users.get(&keys[0]), Some(7));
        dictionaries.at_epoch(1);
        assert_eq!(dictionaries.users.get(&keys[0]), None, "retention removed rows since");
    }
}
