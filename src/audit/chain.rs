//! The hash chain: how a record's hash is made, how a batch is appended, how the chain is checked, and how
//! retention shortens it without breaking it.
//!
//! A record's hash is SHA-256 over its predecessor's hash and its own fields, serialised as JSON in a fixed order. The
//! chain's head (`audit_head`: the last sequence number and hash) is locked by the transaction that appends, so
//! replicas append one after the other and the sequence has no gaps; a missing sequence number, a record whose
//! predecessor hash is not the previous record's hash, or a record whose hash does not match its fields is named by
//! [`verify`].

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::{Entry, FieldAccess, Record};
use crate::digest::sha256_hex;
use crate::store::{Engine, Store, StoreError};

/// The predecessor of the first record.
pub const GENESIS: &str = "genesis";

/// What is hashed: every field of the record but its own hash, in this order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: i64,
    prev_hash: &'a str,
    entry: &'a Entry,
}

/// The hash of a record in place `seq` after `prev_hash`.
pub fn hash_of(seq: i64, prev_hash: &str, entry: &Entry) -> String {
    sha256_hex(serde_json::to_vec(&Hashed { seq, prev_hash, entry }).expect("a record serialises"))
}

/// The head of the chain, locked for this transaction (PostgreSQL: the row; SQLite: the write lock the transaction
/// already holds).
async fn locked_head(store: &Store, tx: &mut Transaction<'static, Any>) -> Result<(i64, String), StoreError> {
    let lock = match store.engine() {
        Engine::Postgres => " FOR UPDATE",
        Engine::Sqlite => "",
    };
    let row = sqlx::query(&format!("SELECT seq, hash FROM audit_head WHERE id = 1{lock}")).fetch_one(&mut **tx).await?;
    Ok((row.try_get("seq")?, row.try_get("hash")?))
}

/// Appends `entries` after the head, in one transaction already begun (with the head locked by this call); the
/// records as written.
pub async fn append(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    entries: &[&Entry],
) -> Result<Vec<Record>, StoreError> {
    let (mut seq, mut prev) = locked_head(store, tx).await?;
    let mut written = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let hash = hash_of(seq, &prev, entry);
        sqlx::query(
            "INSERT INTO audit_records (seq, at, request_id, trace_id, caller_kind, caller, issuer, subjects, fields, \
             operation_name, operation_type, document_hash, purpose, cause, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(seq)
        .bind(entry.at)
        .bind(&entry.request_id)
        .bind(entry.trace_id.clone())
        .bind(&entry.caller.kind)
        .bind(&entry.caller.id)
        .bind(&entry.caller.issuer)
        .bind(serde_json::to_string(&entry.subjects).expect("subjects serialise"))
        .bind(serde_json::to_string(&entry.fields).expect("fields serialise"))
        .bind(entry.operation_name.clone())
        .bind(&entry.operation_type)
        .bind(&entry.document_hash)
        .bind(entry.purpose.clone())
        .bind(entry.cause.clone())
        .bind(&prev)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
        for subject in &entry.subjects {
            sqlx::query("INSERT INTO audit_subjects (user_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(subject)
                .bind(seq)
                .execute(&mut **tx)
                .await?;
        }
        written.push(Record { seq, entry: (*entry).clone(), prev_hash: prev.clone(), hash: hash.clone() });
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .execute(&mut **tx)
        .await?;
    Ok(written)
}

/// A record read back from the store.
pub fn record_of(row: &sqlx::any::AnyRow) -> Result<Record, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("audit record {what} is not JSON"));
    let subjects: String = row.try_get("subjects")?;
    let fields: String = row.try_get("fields")?;
    Ok(Record {
        seq: row.try_get("seq")?,
        entry: Entry {
            at: row.try_get("at")?,
            request_id: row.try_get("request_id")?,
            trace_id: row.try_get("trace_id")?,
            caller: super::Caller {
                kind: row.try_get("caller_kind")?,
                id: row.try_get("caller")?,
                issuer: row.try_get("issuer")?,
            },
            subjects: serde_json::from_str(&subjects).map_err(|_| corrupt("subjects"))?,
            fields: serde_json::from_str::<Vec<FieldAccess>>(&fields).map_err(|_| corrupt("fields"))?,
            operation_name: row.try_get("operation_name")?,
            operation_type: row.try_get("operation_type")?,
            document_hash: row.try_get("document_hash")?,
            purpose: row.try_get("purpose")?,
            cause: row.try_get("cause")?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The columns of a record, for `SELECT`.
pub const COLUMNS: &str = "seq, at, request_id, trace_id, caller_kind, caller, issuer, subjects, fields, \
                           operation_name, operation_type, document_hash, purpose, cause, prev_hash, hash";

/// Why the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("record {seq} was altered: its hash does not match its content")]
    Altered { seq: i64 },
    #[error(
        "record {seq} does not follow record {previous}: a record between them was removed, or records were moved"
    )]
    Unlinked { seq: i64, previous: i64 },
    #[error("record {expected} is missing (the next record is {found})")]
    Missing { expected: i64, found: i64 },
    #[error("the chain ends at record {last}, but its head says {head}: the last records were removed")]
    Truncated { last: i64, head: i64 },
    #[error(
        "the chain goes on to record {last}, past its head at record {head}: records were added around the writer"
    )]
    PastHead { last: i64, head: i64 },
    #[error("{0}")]
    Unreadable(String),
}

/// The chain is whole: how many records it holds, and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub first: i64,
    pub last: i64,
}

/// Walks the chain from its checkpoint (or its beginning) to its head, in one snapshot of the database (a
/// `REPEATABLE READ` transaction on PostgreSQL, a read transaction on SQLite): records appended or removed by
/// retention while it walks are not seen, so a live trail verifies as it stood when the walk began.
pub async fn verify(store: &Store) -> Result<Verified, Broken> {
    let unreadable = |e: sqlx::Error| Broken::Unreadable(e.to_string());
    let begin = match store.engine() {
        Engine::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        // Deferred: the first read below takes the snapshot (WAL) or the shared lock every later read keeps.
        Engine::Sqlite => "BEGIN",
    };
    let mut snapshot = store.pool().begin_with(begin).await.map_err(unreadable)?;
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *snapshot)
        .await
        .map_err(unreadable)?;
    let head_seq: i64 = head.try_get("seq").map_err(unreadable)?;
    let head_hash: String = head.try_get("hash").map_err(unreadable)?;
    let checkpoint = sqlx::query("SELECT seq, hash FROM audit_checkpoint WHERE id = 1")
        .fetch_optional(&mut *snapshot)
        .await
        .map_err(unreadable)?;
    let (mut seq, mut hash) = match checkpoint {
        Some(row) => (row.try_get::<i64, _>("seq").map_err(unreadable)?, row.try_get("hash").map_err(unreadable)?),
        None => (0, GENESIS.to_owned()),
    };
    let first = seq + 1;
    let mut count = 0u64;
    loop {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT 1000"))
            .bind(seq)
            .fetch_all(&mut *snapshot)
            .await
            .map_err(unreadable)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let record = record_of(row).map_err(|e| Broken::Unreadable(e.to_string()))?;
            if record.seq != seq + 1 {
                return Err(Broken::Missing { expected: seq + 1, found: record.seq });
            }
            if record.prev_hash != hash {
                return Err(Broken::Unlinked { seq: record.seq, previous: seq });
            }
            if hash_of(record.seq, &record.prev_hash, &record.entry) != record.hash {
                return Err(Broken::Altered { seq: record.seq });
            }
            seq = record.seq;
            hash = record.hash;
            count += 1;
        }
    }
    // Read only: nothing to keep.
    let _ = snapshot.rollback().await;
    if seq > head_seq {
        return Err(Broken::PastHead { last: seq, head: head_seq });
    }
    if head_seq != seq || head_hash != hash {
        return Err(Broken::Truncated { last: seq, head: head_seq });
    }
    Ok(Verified { records: count, first, last: seq })
}

/// Removes the records older than `before` (unix ms): the last removed one becomes the checkpoint, and the removal
/// is itself recorded. How many were removed.
pub async fn purge(store: &Store, before: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    // The head first: appends wait, and the records below it cannot change meanwhile.
    locked_head(store, &mut tx).await?;
    let last: Option<(i64, String, i64)> =
        sqlx::query("SELECT seq, hash, at FROM audit_records WHERE at < $1 ORDER BY seq DESC LIMIT 1")
            .bind(before)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| Ok::<_, sqlx::Error>((row.try_get("seq")?, row.try_get("hash")?, row.try_get("at")?)))
            .transpose()?;
    let Some((seq, hash, at)) = last else { return Ok(0) };
    let removed =
        sqlx::query("DELETE FROM audit_records WHERE seq <= $1").bind(seq).execute(&mut *tx).await?.rows_affected();
    sqlx::query("DELETE FROM audit_subjects WHERE seq <= $1").bind(seq).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO audit_checkpoint (id, seq, hash, at) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at",
    )
    .bind(seq)
    .bind(&hash)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let entry = Entry {
        at: crate::clock::unix_millis(),
        request_id: crate::secret::random_token(),
        trace_id: None,
        caller: super::Caller { kind: "system".into(), id: "retention".into(), issuer: String::new() },
        subjects: Vec::new(),
        fields: Vec::new(),
        operation_name: None,
        operation_type: "retention".into(),
        document_hash: String::new(),
        purpose: Some("retention".into()),
        cause: Some(format!("removed {removed} records up to record {seq}, older than the retention period")),
    };
    append(store, &mut tx, &[&entry]).await?;
    tx.commit().await?;
    Ok(removed)
}
