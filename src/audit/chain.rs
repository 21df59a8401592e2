//! The hash chain: how a record's hash is made (SHA-256 over its predecessor's hash and its fields, JSON in a fixed
//! order), how a batch is appended under the locked head (`audit_head`), how [`verify`] names a gap or an altered or
//! moved record, and how retention shortens the chain without breaking it. See ARCHITECTURE.md, `src/audit/`.

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::checkpoint::{self, Checkpoint, PublicKeys, Unsigned};
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

/// How many rows one `INSERT` carries on `engine`: records (16 parameters each), and subject rows (2 each).
fn rows_per_statement(engine: Engine) -> (usize, usize) {
    match engine {
        // A statement is a round trip to the server: few large ones (8,192 parameters, under PostgreSQL's 65,535).
        Engine::Postgres => (512, 4096),
        // In process there is no round trip to save, and binding numbered parameters costs SQLite more than linearly in
        // a statement's size: small statements, 128 parameters each.
        Engine::Sqlite => (8, 64),
    }
}

/// `($1, $2, ...), ($n+1, ...)`: the placeholders of `rows` rows of `columns` values.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        out.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(row * columns + column + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// Appends `entries` after the head, in one transaction already begun, locking the head; the records as written. The
/// head is held for few round trips: the records are numbered and hashed in memory, then written with multi-row
/// `INSERT`s (`rows_per_statement`), and the head moved.
pub async fn append(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    entries: &[&Entry],
) -> Result<Vec<Record>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    // What does not depend on the place in the chain is made before the head is locked.
    let columns: Vec<(String, String)> = entries
        .iter()
        .map(|entry| {
            (
                serde_json::to_string(&entry.subjects).expect("subjects serialise"),
                serde_json::to_string(&entry.fields).expect("fields serialise"),
            )
        })
        .collect();
    let (mut seq, mut prev) = locked_head(store, tx).await?;
    let mut written = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let hash = hash_of(seq, &prev, entry);
        written.push(Record {
            seq,
            entry: (*entry).clone(),
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    let (records_per_statement, subjects_per_statement) = rows_per_statement(store.engine());
    for (records, columns) in written.chunks(records_per_statement).zip(columns.chunks(records_per_statement)) {
        let sql = format!(
            "INSERT INTO audit_records ({COLUMNS}) VALUES {}",
            placeholders(records.len(), COLUMNS.split(',').count())
        );
        let mut insert = sqlx::query(&sql);
        for (record, (subjects, fields)) in records.iter().zip(columns) {
            let entry = &record.entry;
            insert = insert
                .bind(record.seq)
                .bind(entry.at)
                .bind(entry.request_id.as_str())
                .bind(entry.trace_id.as_deref())
                .bind(entry.caller.kind.as_str())
                .bind(entry.caller.id.as_str())
                .bind(entry.caller.issuer.as_str())
                .bind(subjects.as_str())
                .bind(fields.as_str())
                .bind(entry.operation_name.as_deref())
                .bind(entry.operation_type.as_str())
                .bind(entry.document_hash.as_str())
                .bind(entry.purpose.as_deref())
                .bind(entry.cause.as_deref())
                .bind(record.prev_hash.as_str())
                .bind(record.hash.as_str());
        }
        insert.execute(&mut **tx).await?;
    }
    let subjects: Vec<(&str, i64)> = written
        .iter()
        .flat_map(|record| record.entry.subjects.iter().map(move |subject| (subject.as_str(), record.seq)))
        .collect();
    for rows in subjects.chunks(subjects_per_statement) {
        let sql = format!(
            "INSERT INTO audit_subjects (user_id, seq) VALUES {} ON CONFLICT DO NOTHING",
            placeholders(rows.len(), 2)
        );
        let mut insert = sqlx::query(&sql);
        for (subject, seq) in rows {
            insert = insert.bind(*subject).bind(*seq);
        }
        insert.execute(&mut **tx).await?;
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
    #[error(
        "the signed checkpoint at record {seq} (key id {key_id}) does not match the records: the records up to \
         {seq} were rewritten, or the checkpoint was altered"
    )]
    CheckpointMismatch { seq: i64, key_id: String },
    #[error(
        "the signed checkpoint at record {seq} (key id {key_id}) has a signature that does not verify with that \
         key: it was forged or altered"
    )]
    BadSignature { seq: i64, key_id: String },
    #[error(
        "the signed checkpoint at record {seq} is signed with key id {key_id}, which no --key names (give the \
         public key of every key id the trail was signed with)"
    )]
    UnknownKey { seq: i64, key_id: String },
    #[error(
        "the signed checkpoint at record {seq} (key id {key_id}) is past the chain's last record {last}: records \
         were removed"
    )]
    CheckpointPastEnd { seq: i64, key_id: String, last: i64 },
    #[error(
        "record {seq}, the head of the newest checkpoint this gateway signed or verified, was removed or rewritten"
    )]
    AnchorRewritten { seq: i64 },
    #[error("the newest checkpoint this gateway signed or verified (record {seq}) is gone from the database")]
    AnchorMissing { seq: i64 },
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

/// What [`verify_signed`] found besides a whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVerified {
    pub chain: Verified,
    /// Checkpoints whose signature and head matched the records.
    pub checked: u64,
    /// Checkpoints of records retention removed before the retained start (not checked).
    pub skipped: u64,
    /// The newest record a checkpoint covers; the records after it are not signed yet.
    pub last_signed: Option<i64>,
}

/// Walks the chain from its checkpoint (or its beginning) to its head, in one snapshot of the database (a
/// `REPEATABLE READ` transaction on PostgreSQL, a read transaction on SQLite): records appended or removed by
/// retention while it walks are not seen, so a live trail verifies as it stood when the walk began.
pub async fn verify(store: &Store) -> Result<Verified, Broken> {
    walk(store, None, None).await.map(|(signed, _)| signed.chain)
}

/// The head `(seq, hash)` the chain ends at, walked in one snapshot from `anchor` (a checkpoint the signer signed:
/// its row must still be stored and its record still hash to it) or, without one or once retention removed its
/// record, from the retained start.
pub(super) async fn follow(store: &Store, anchor: Option<&Checkpoint>) -> Result<(i64, String), Broken> {
    let (verified, hash) = walk(store, None, anchor).await?;
    Ok((verified.chain.last, hash))
}

/// [`verify`], and each signed checkpoint (stored, and `witnessed` ones from outside) checked on the way: its key id
/// is among `keys`, its signature verifies, and the chain hashes to its head at its sequence. Checkpoints before the
/// retained start are skipped; one at the start is checked against the hash retention kept.
pub async fn verify_signed(
    store: &Store,
    keys: &PublicKeys,
    witnessed: &[Checkpoint],
) -> Result<SignedVerified, Broken> {
    walk(store, Some((keys, witnessed)), None).await.map(|(signed, _)| signed)
}

/// The checkpoints of records `after < seq <= up_to`: the stored ones and the witnessed ones, by sequence, each once.
async fn checkpoints_between(
    snapshot: &mut Transaction<'static, Any>,
    witnessed: &[Checkpoint],
    after: i64,
    up_to: i64,
) -> Result<Vec<Checkpoint>, Broken> {
    let mut found =
        checkpoint::stored(&mut **snapshot, after, up_to).await.map_err(|e| Broken::Unreadable(e.to_string()))?;
    found.extend(witnessed.iter().filter(|c| c.seq > after && c.seq <= up_to).cloned());
    found.sort_by(|a, b| (a.seq, &a.key_id, &a.signature).cmp(&(b.seq, &b.key_id, &b.signature)));
    found.dedup();
    Ok(found)
}

/// Checks `checkpoint` against the hash the chain has at its sequence.
fn check_checkpoint(checkpoint: &Checkpoint, keys: &PublicKeys, hash: &str) -> Result<(), Broken> {
    let (seq, key_id) = (checkpoint.seq, checkpoint.key_id.clone());
    match checkpoint.check(keys) {
        Err(Unsigned::UnknownKey) => return Err(Broken::UnknownKey { seq, key_id }),
        Err(Unsigned::BadSignature) => return Err(Broken::BadSignature { seq, key_id }),
        Ok(()) => {}
    }
    if checkpoint.hash != hash {
        return Err(Broken::CheckpointMismatch { seq, key_id });
    }
    Ok(())
}

async fn walk(
    store: &Store,
    signed: Option<(&PublicKeys, &[Checkpoint])>,
    anchor: Option<&Checkpoint>,
) -> Result<(SignedVerified, String), Broken> {
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
    // Retention removing the anchor's record also removes its row: from the retained start then.
    if let Some(anchor) = anchor.filter(|anchor| anchor.seq >= seq) {
        let kept: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_signed_checkpoints WHERE seq = $1 AND key_id = $2 AND hash = $3",
        )
        .bind(anchor.seq)
        .bind(&anchor.key_id)
        .bind(&anchor.hash)
        .fetch_one(&mut *snapshot)
        .await
        .map_err(unreadable)?;
        if kept == 0 {
            return Err(Broken::AnchorMissing { seq: anchor.seq });
        }
        if anchor.seq > seq {
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_records WHERE seq = $1"))
                .bind(anchor.seq)
                .fetch_optional(&mut *snapshot)
                .await
                .map_err(unreadable)?
                .ok_or(Broken::AnchorRewritten { seq: anchor.seq })?;
            let record = record_of(&row).map_err(|e| Broken::Unreadable(e.to_string()))?;
            if record.hash != hash_of(record.seq, &record.prev_hash, &record.entry) {
                return Err(Broken::AnchorRewritten { seq: anchor.seq });
            }
            (seq, hash) = (record.seq, record.hash);
        }
        if hash != anchor.hash {
            return Err(Broken::AnchorRewritten { seq: anchor.seq });
        }
    }
    let first = seq + 1;
    let mut count = 0u64;
    let (mut checked, mut skipped, mut last_signed) = (0u64, 0u64, None);
    if let Some((keys, witnessed)) = signed {
        // Before the retained start: nothing left to check them against.
        skipped += checkpoints_between(&mut snapshot, witnessed, i64::MIN, seq - 1).await?.len() as u64;
        // At the start: the hash retention kept of the last record it removed.
        for checkpoint in checkpoints_between(&mut snapshot, witnessed, seq - 1, seq).await? {
            check_checkpoint(&checkpoint, keys, &hash)?;
            checked += 1;
            last_signed = Some(seq);
        }
    }
    loop {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT 1000"))
            .bind(seq)
            .fetch_all(&mut *snapshot)
            .await
            .map_err(unreadable)?;
        if rows.is_empty() {
            break;
        }
        let page_last: i64 = rows.last().expect("a row").try_get("seq").map_err(unreadable)?;
        let mut page_checkpoints = match signed {
            Some((_, witnessed)) => checkpoints_between(&mut snapshot, witnessed, seq, page_last).await?,
            None => Vec::new(),
        }
        .into_iter()
        .peekable();
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
            while let Some(checkpoint) = page_checkpoints.next_if(|c| c.seq <= seq) {
                let keys = signed.map(|(keys, _)| keys).expect("checkpoints only when signed");
                check_checkpoint(&checkpoint, keys, &hash)?;
                checked += 1;
                last_signed = Some(seq);
            }
        }
    }
    let past_end = match signed {
        Some((_, witnessed)) => checkpoints_between(&mut snapshot, witnessed, seq, i64::MAX).await?,
        None => Vec::new(),
    };
    // Read only: nothing to keep.
    let _ = snapshot.rollback().await;
    if let Some(checkpoint) = past_end.into_iter().next() {
        return Err(Broken::CheckpointPastEnd { seq: checkpoint.seq, key_id: checkpoint.key_id, last: seq });
    }
    if seq > head_seq {
        return Err(Broken::PastHead { last: seq, head: head_seq });
    }
    if head_seq != seq || head_hash != hash {
        return Err(Broken::Truncated { last: seq, head: head_seq });
    }
    Ok((SignedVerified { chain: Verified { records: count, first, last: seq }, checked, skipped, last_signed }, hash))
}

/// Which records a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutoff {
    /// Those appended before this time (unix milliseconds).
    Before(i64),
    /// All but the newest this many.
    KeepLast(u64),
}

/// Removes the records `cutoff` names (older than a time, or all but the newest few): the last removed one becomes the checkpoint, and the removal
/// is itself recorded. How many were removed.
pub async fn purge(store: &Store, cutoff: Cutoff) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    // The head first: appends wait, and the records below it cannot change meanwhile.
    let (head, _) = locked_head(store, &mut tx).await?;
    let last = match cutoff {
        Cutoff::Before(before) => {
            sqlx::query("SELECT seq, hash, at FROM audit_records WHERE at < $1 ORDER BY seq DESC LIMIT 1").bind(before)
        }
        Cutoff::KeepLast(keep) => {
            let last_removed = head - i64::try_from(keep).unwrap_or(i64::MAX);
            sqlx::query("SELECT seq, hash, at FROM audit_records WHERE seq <= $1 ORDER BY seq DESC LIMIT 1")
                .bind(last_removed)
        }
    };
    let last: Option<(i64, String, i64)> = last
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| Ok::<_, sqlx::Error>((row.try_get("seq")?, row.try_get("hash")?, row.try_get("at")?)))
        .transpose()?;
    let Some((seq, hash, at)) = last else { return Ok(0) };
    let removed =
        sqlx::query("DELETE FROM audit_records WHERE seq <= $1").bind(seq).execute(&mut *tx).await?.rows_affected();
    sqlx::query("DELETE FROM audit_subjects WHERE seq <= $1").bind(seq).execute(&mut *tx).await?;
    // Signed checkpoints before the new start: nothing is left to check them against (the one at it still checks).
    sqlx::query("DELETE FROM audit_signed_checkpoints WHERE seq < $1").bind(seq).execute(&mut *tx).await?;
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
        cause: Some(match cutoff {
            Cutoff::Before(_) => {
                format!("removed {removed} records up to record {seq}, older than the retention period")
            }
            Cutoff::KeepLast(keep) => format!("removed {removed} records up to record {seq}, keeping the last {keep}"),
        }),
    };
    append(store, &mut tx, &[&entry]).await?;
    tx.commit().await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Caller, Outcome};

    #[test]
    fn a_record_s_hash_is_the_chain_s_format_unchanged() {
        // Computed independently (SHA-256 over the compact JSON of seq, prev_hash and the entry, in field order):
        // records already in a trail must keep verifying.
        let entry = Entry {
            at: 1_767_225_600_000,
            request_id: "req-1".into(),
            trace_id: None,
            caller: Caller { kind: "client".into(), id: "compliance".into(), issuer: "https://id.example.com/".into() },
            subjects: vec!["u-1".into(), "u-2".into()],
            fields: vec![
                FieldAccess { path: "user.emails".into(), outcome: Outcome::Returned, subjects: Vec::new() },
                FieldAccess { path: "user.phones".into(), outcome: Outcome::Denied, subjects: Vec::new() },
            ],
            operation_name: Some("Review".into()),
            operation_type: "query".into(),
            document_hash: "ab".repeat(32),
            purpose: Some("AML review".into()),
            cause: None,
        };
        let first = hash_of(7, GENESIS, &entry);
        assert_eq!(first, "0689c372a07958000eebe48426d539fe42654a8bd80bbed2d98bc18339b28302");
        // A field naming its subjects (records since fields carry them).
        let mut entry = entry;
        entry.fields[0].subjects = vec!["u-1".into()];
        assert_eq!(hash_of(8, &first, &entry), "878d06f29bd8d77b84ac17ddd22be9c8dc9ea86664316192e0a0d36d099d1ba0");
    }

    #[test]
    fn placeholders_number_rows_after_one_another() {
        assert_eq!(placeholders(1, 2), "($1, $2)");
        assert_eq!(placeholders(3, 2), "($1, $2), ($3, $4), ($5, $6)");
        assert_eq!(COLUMNS.split(',').count(), 16);
        // Under the engines' bind-parameter limits (SQLite 32,766, PostgreSQL 65,535).
        for (engine, limit) in [(Engine::Sqlite, 32_766), (Engine::Postgres, 65_535)] {
            let (records, subjects) = rows_per_statement(engine);
            assert!(records * 16 <= limit && subjects * 2 <= limit, "{engine:?}");
        }
    }
}
