//! The hash chain: how a record's hash is made (SHA-256 over its predecessor's hash and its fields, JSON in a fixed
//! order), how a batch is appended under the locked head (`audit_head`), how [`verify`] names a gap or an altered or
//! moved record, and how retention shortens the chain without breaking it. See ARCHITECTURE.md, `src/audit/`.

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::checkpoint::{self, Checkpoint, PublicKeys, Unsigned};
use super::dictionaries::{self, Dictionaries, Keys};
use super::layout::{self, json_rows};
use super::{Entry, Record};
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
/// already holds): its place, its hash, and the dictionaries' epoch.
async fn locked_head(store: &Store, tx: &mut Transaction<'static, Any>) -> Result<(i64, String, i64), StoreError> {
    let lock = match store.engine() {
        Engine::Postgres => " FOR UPDATE",
        Engine::Sqlite => "",
    };
    let row = sqlx::query(&format!("SELECT seq, hash, epoch FROM audit_head WHERE id = 1{lock}"))
        .fetch_one(&mut **tx)
        .await?;
    Ok((row.try_get("seq")?, row.try_get("hash")?, row.try_get("epoch")?))
}

/// The records' `INSERT` on `engine`, from the JSON rows of [`record_row`].
fn insert_records(engine: Engine) -> String {
    let columns = "seq, at, request_id, trace_id, caller, operation, fields, subjects, purpose, cause, hash, link";
    let values = match engine {
        Engine::Sqlite => {
            "j.value ->> 0, j.value ->> 1, unhex(j.value ->> 2), unhex(j.value ->> 3), j.value ->> 4, j.value ->> 5, \
             j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9, unhex(j.value ->> 10), unhex(j.value ->> 11)"
        }
        Engine::Postgres => {
            "(j.value ->> 0)::bigint, (j.value ->> 1)::bigint, decode(j.value ->> 2, 'hex'), \
             decode(j.value ->> 3, 'hex'), (j.value ->> 4)::integer, (j.value ->> 5)::integer, \
             (j.value ->> 6)::integer, j.value ->> 7, j.value ->> 8, j.value ->> 9, decode(j.value ->> 10, 'hex'), \
             decode(j.value ->> 11, 'hex')"
        }
    };
    format!("INSERT INTO audit_records ({columns}) SELECT {values} FROM {}", json_rows(engine))
}

/// One record as a row of the records' `INSERT`.
fn record_row(record: &Record, ids: (i64, i64, i64), subjects: &str) -> serde_json::Value {
    let entry = &record.entry;
    let (caller, operation, fields) = ids;
    serde_json::json!([
        record.seq,
        entry.at,
        hex::encode(layout::encode_id(&entry.request_id)),
        entry.trace_id.as_deref().map(|t| hex::encode(layout::encode_id(t))),
        caller,
        operation,
        fields,
        subjects,
        entry.purpose,
        entry.cause,
        record.hash,
        layout::link_of(&record.prev_hash).map(hex::encode),
    ])
}

/// Appends `entries` after the head, in one transaction already begun, locking the head; the records as written.
pub async fn append(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    entries: &[&Entry],
) -> Result<Vec<Record>, StoreError> {
    append_with(store, tx, entries, &mut Dictionaries::default()).await
}

/// [`append`] with the writer's cache of dictionary ids (settled by the caller once the transaction ended). The head
/// is held for few round trips: the records are numbered and hashed in memory; only values new to the cache are looked
/// up; the records, and on SQLite their subjects, are written with one statement each, and the head moved.
pub(super) async fn append_with(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    entries: &[&Entry],
    dictionaries: &mut Dictionaries,
) -> Result<Vec<Record>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let engine = store.engine();
    // What does not depend on the place in the chain is made before the head is locked.
    let keys = Keys::of(entries);
    let (mut seq, mut prev, epoch) = locked_head(store, tx).await?;
    dictionaries.at_epoch(epoch);
    // Every row this batch uses is noted as used up to its last record.
    dictionaries.resolve(tx, engine, &keys, seq + entries.len() as i64).await?;
    let id = |found: Option<i64>| found.ok_or_else(|| StoreError::Corrupt("an audit dictionary id is missing".into()));
    let mut written = Vec::with_capacity(entries.len());
    let mut rows = Vec::with_capacity(entries.len());
    let mut subject_rows = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        seq += 1;
        let hash = hash_of(seq, &prev, entry);
        let record =
            Record { seq, entry: (*entry).clone(), prev_hash: std::mem::replace(&mut prev, hash.clone()), hash };
        let ids = (
            id(dictionaries.callers.get(&keys.callers[i]))?,
            id(dictionaries.operations.get(&keys.operations[i]))?,
            id(dictionaries.field_lists.get(&keys.field_lists[i]))?,
        );
        let mut subjects = String::new();
        let mut seen: Vec<i64> = Vec::with_capacity(entry.subjects.len());
        for subject in &entry.subjects {
            let user = id(dictionaries.users.get(subject))?;
            if !subjects.is_empty() {
                subjects.push(',');
            }
            subjects.push_str(&user.to_string());
            if !seen.contains(&user) {
                seen.push(user);
                subject_rows.push(serde_json::json!([user, seq]));
            }
        }
        rows.push(record_row(&record, ids, &subjects));
        written.push(record);
    }
    sqlx::query(&insert_records(engine)).bind(serde_json::Value::Array(rows).to_string()).execute(&mut **tx).await?;
    // PostgreSQL finds a person's records through an index on the records' subjects; SQLite through this table.
    if engine == Engine::Sqlite && !subject_rows.is_empty() {
        sqlx::query(&format!(
            "INSERT INTO audit_subjects (subject, seq) SELECT j.value ->> 0, j.value ->> 1 FROM {} WHERE true \
             ON CONFLICT DO NOTHING",
            json_rows(engine)
        ))
        .bind(serde_json::Value::Array(subject_rows).to_string())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .execute(&mut **tx)
        .await?;
    Ok(written)
}

/// A record read back from the store (a row of [`select`]).
pub fn record_of(row: &sqlx::any::AnyRow) -> Result<Record, StoreError> {
    stored_of(row).map(|(record, _)| record)
}

/// A record read back, and its stored link ([`layout::link_of`] of the hash it was appended after).
fn stored_of(row: &sqlx::any::AnyRow) -> Result<(Record, Option<Vec<u8>>), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("audit record {what} cannot be read"));
    let seq: i64 = row.try_get("seq")?;
    let subjects: Option<String> = row.try_get("subjects")?;
    let subjects: Vec<String> =
        serde_json::from_str(subjects.as_deref().unwrap_or("[]")).map_err(|_| corrupt("subjects"))?;
    let fields: String = row.try_get("fields")?;
    let fields = layout::fields_of(&fields, &subjects).ok_or_else(|| corrupt("fields"))?;
    let request_id: Vec<u8> = row.try_get("request_id")?;
    let trace_id: Option<Vec<u8>> = row.try_get("trace_id")?;
    let hash: Vec<u8> = row.try_get("hash")?;
    let prev: Option<Vec<u8>> = row.try_get("prev_hash")?;
    let start: Option<String> = row.try_get("start_hash")?;
    // The previous record's hash; after retention, the hash it kept of the last record it removed.
    let prev_hash = match (prev, start) {
        (Some(prev), _) => hex::encode(prev),
        (None, Some(start)) => start,
        (None, None) if seq == 1 => GENESIS.to_owned(),
        (None, None) => String::new(),
    };
    let record = Record {
        seq,
        entry: Entry {
            at: row.try_get("at")?,
            request_id: layout::decode_id(&request_id).ok_or_else(|| corrupt("request id"))?,
            trace_id: trace_id.map(|t| layout::decode_id(&t).ok_or_else(|| corrupt("trace id"))).transpose()?,
            caller: super::Caller {
                kind: row.try_get("caller_kind")?,
                id: row.try_get("caller")?,
                issuer: row.try_get("issuer")?,
            },
            subjects,
            fields,
            operation_name: row.try_get("operation_name")?,
            operation_type: row.try_get("operation_type")?,
            document_hash: row.try_get("document_hash")?,
            purpose: row.try_get("purpose")?,
            cause: row.try_get("cause")?,
        },
        prev_hash,
        hash: hex::encode(hash),
    };
    Ok((record, row.try_get("link")?))
}

/// `SELECT` of whole records on `engine`, from `audit_records r` joined to its dictionaries, for a `WHERE` on `r.` and
/// an `ORDER BY` to follow; [`record_of`] reads its rows.
pub fn select(engine: Engine) -> String {
    let subjects = match engine {
        Engine::Sqlite => {
            "(SELECT json_group_array(u.user_id ORDER BY j.key) FROM json_each('[' || r.subjects || ']') AS j \
             JOIN audit_users u ON u.id = j.value)"
        }
        Engine::Postgres => {
            "(SELECT COALESCE(json_agg(u.user_id ORDER BY j.ord), '[]')::text \
             FROM unnest(string_to_array(r.subjects, ',')::integer[]) WITH ORDINALITY AS j(id, ord) \
             JOIN audit_users u ON u.id = j.id)"
        }
    };
    format!(
        "SELECT r.seq, r.at, r.request_id, r.trace_id, c.kind AS caller_kind, c.caller AS caller, c.issuer AS issuer, \
         {subjects} AS subjects, f.fields AS fields, o.name AS operation_name, o.operation_type AS operation_type, \
         o.document_hash AS document_hash, r.purpose, r.cause, r.hash, r.link, p.hash AS prev_hash, \
         k.hash AS start_hash \
         FROM audit_records r \
         JOIN audit_callers c ON c.id = r.caller \
         JOIN audit_operations o ON o.id = r.operation \
         JOIN audit_field_lists f ON f.id = r.fields \
         LEFT JOIN audit_records p ON p.seq = r.seq - 1 \
         LEFT JOIN audit_checkpoint k ON k.seq = r.seq - 1"
    )
}

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
    walk(store, None, None, None).await.map(|(signed, _)| signed.chain)
}

/// The record `(seq, hash)` at `at` (the head when `at` is past it, or before the retained start), the chain walked
/// whole to its head in one snapshot from `anchor` (a checkpoint the signer signed: its row must still be stored and
/// its record still hash to it) or, without one or once retention removed its record, from the retained start.
pub(super) async fn follow(
    store: &Store,
    anchor: Option<&Checkpoint>,
    at: Option<i64>,
) -> Result<(i64, String), Broken> {
    let mut found = None;
    let (verified, hash) = walk(store, None, anchor, at.map(|at| (at, &mut found))).await?;
    Ok(found.map_or((verified.chain.last, hash), |hash| (at.expect("found at a place"), hash)))
}

/// [`verify`], and each signed checkpoint (stored, and `witnessed` ones from outside) checked on the way: its key id
/// is among `keys`, its signature verifies, and the chain hashes to its head at its sequence. Checkpoints before the
/// retained start are skipped; one at the start is checked against the hash retention kept.
pub async fn verify_signed(
    store: &Store,
    keys: &PublicKeys,
    witnessed: &[Checkpoint],
) -> Result<SignedVerified, Broken> {
    walk(store, Some((keys, witnessed)), None, None).await.map(|(signed, _)| signed)
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

/// The walk of [`verify`], [`verify_signed`] and [`follow`]; `at` takes the hash of the record at that place on the way.
async fn walk(
    store: &Store,
    signed: Option<(&PublicKeys, &[Checkpoint])>,
    anchor: Option<&Checkpoint>,
    mut at: Option<(i64, &mut Option<String>)>,
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
            let row = sqlx::query(&format!("{} WHERE r.seq = $1", select(store.engine())))
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
        let sql = format!("{} WHERE r.seq > $1 ORDER BY r.seq LIMIT 1000", select(store.engine()));
        let rows = sqlx::query(&sql).bind(seq).fetch_all(&mut *snapshot).await.map_err(unreadable)?;
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
            let (record, link) = stored_of(row).map_err(|e| Broken::Unreadable(e.to_string()))?;
            if record.seq != seq + 1 {
                return Err(Broken::Missing { expected: seq + 1, found: record.seq });
            }
            // The link names the hash the record was appended after (the hash itself is the previous record's).
            if link != layout::link_of(&hash) {
                return Err(Broken::Unlinked { seq: record.seq, previous: seq });
            }
            if hash_of(record.seq, &hash, &record.entry) != record.hash {
                return Err(Broken::Altered { seq: record.seq });
            }
            seq = record.seq;
            hash = record.hash;
            count += 1;
            if let Some((_, found)) = at.as_mut().filter(|(place, _)| *place == seq) {
                **found = Some(hash.clone());
            }
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
    let (head, _, _) = locked_head(store, &mut tx).await?;
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
        .map(|row| {
            Ok::<_, sqlx::Error>((
                row.try_get("seq")?,
                hex::encode(row.try_get::<Vec<u8>, _>("hash")?),
                row.try_get("at")?,
            ))
        })
        .transpose()?;
    let Some((seq, hash, at)) = last else { return Ok(0) };
    let removed =
        sqlx::query("DELETE FROM audit_records WHERE seq <= $1").bind(seq).execute(&mut *tx).await?.rows_affected();
    if store.engine() == Engine::Sqlite {
        sqlx::query("DELETE FROM audit_subjects WHERE seq <= $1").bind(seq).execute(&mut *tx).await?;
    }
    dictionaries::forget_unused(&mut tx, store.engine(), seq).await?;
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
    use crate::audit::{Caller, FieldAccess, Outcome};

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
}
