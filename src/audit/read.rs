//! Reading the trail back: the events of one person or one caller over a period (`auditEvents`, a user's own
//! `accessLog`), and the export for a SIEM.

use super::chain::{record_of, select};
use super::checkpoint::{self, Checkpoint};
use super::Record;
use crate::store::{Engine, Store, StoreError};

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Records about this user.
    pub user_id: Option<String>,
    /// Records of this caller (user or client id).
    pub caller: Option<String>,
    /// Records at or after this time, and before that one (unix ms).
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Records before this one (a page's cursor).
    pub before_seq: Option<i64>,
    /// Leave out the reads of this user, `(issuer, user id)`: a user's access log leaves out the user's own reads,
    /// told by issuer and kind, so a client or another issuer's subject with the same id text is still listed.
    pub not_user: Option<(String, String)>,
}

/// Up to `limit` records matching `filter`, newest first.
pub async fn events(store: &Store, filter: &Filter, limit: i64) -> Result<Vec<Record>, StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut next = |value: Value, condition: &dyn Fn(usize) -> String| {
        values.push(value);
        conditions.push(condition(values.len()));
    };
    let engine = store.engine();
    if let Some(user) = &filter.user_id {
        // SQLite: the subjects table; PostgreSQL: the index on the records' subjects (migrations/*/0008_lean_audit.sql).
        next(Value::Text(user.clone()), &|n| match engine {
            Engine::Sqlite => format!(
                "r.seq IN (SELECT s.seq FROM audit_subjects s JOIN audit_users u ON u.id = s.subject \
                 WHERE u.user_id = ${n})"
            ),
            Engine::Postgres => format!(
                "string_to_array(r.subjects, ',')::integer[] @> \
                 ARRAY[(SELECT u.id FROM audit_users u WHERE u.user_id = ${n})]"
            ),
        });
    }
    if let Some(caller) = &filter.caller {
        next(Value::Text(caller.clone()), &|n| {
            format!("r.caller IN (SELECT id FROM audit_callers WHERE caller = ${n})")
        });
    }
    if let Some(since) = filter.since {
        next(Value::Int(since), &|n| format!("r.at >= ${n}"));
    }
    if let Some(until) = filter.until {
        next(Value::Int(until), &|n| format!("r.at < ${n}"));
    }
    if let Some(before) = filter.before_seq {
        next(Value::Int(before), &|n| format!("r.seq < ${n}"));
    }
    if let Some((issuer, user)) = &filter.not_user {
        values.extend([Value::Text(issuer.clone()), Value::Text(user.clone())]);
        let n = values.len();
        conditions.push(format!(
            "r.caller NOT IN (SELECT id FROM audit_callers WHERE kind = 'user' AND issuer = ${} AND caller = ${n})",
            n - 1
        ));
    }
    let clause = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    let sql = format!("{}{clause} ORDER BY r.seq DESC LIMIT {}", select(engine), limit.max(0));
    let mut query = sqlx::query(&sql);
    for value in values {
        query = match value {
            Value::Text(text) => query.bind(text),
            Value::Int(int) => query.bind(int),
        };
    }
    let rows = query.fetch_all(store.pool()).await?;
    rows.iter().map(record_of).collect()
}

enum Value {
    Text(String),
    Int(i64),
}

/// A record as a line of the export: its JSON, with `at` in RFC 3339 (UTC, to the millisecond), the form
/// `audit export --since` takes. Only the text differs from the stored record, whose hash the chain checks.
pub fn export_line(record: &Record) -> String {
    let mut line = serde_json::to_value(record).expect("a record serialises");
    if let Some(at) = rfc3339(record.entry.at) {
        line["at"] = serde_json::Value::String(at);
    }
    line.to_string()
}

/// Unix milliseconds as `2026-01-01T00:00:00.123Z` (`None` past the year 9999).
pub(super) fn rfc3339(millis: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()?;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.format(format).ok()
}

/// One line of the export: a record, or a signed checkpoint (after the record it signs).
pub enum Exported<'a> {
    Record(&'a Record),
    Checkpoint(&'a Checkpoint),
}

impl Exported<'_> {
    /// Its JSON line ([`export_line`], [`Checkpoint::line`]).
    pub fn line(&self) -> String {
        match self {
            Exported::Record(record) => export_line(record),
            Exported::Checkpoint(checkpoint) => checkpoint.line(),
        }
    }
}

/// Every record from `since` (unix ms) on, oldest first, each followed by the signed checkpoints of its head, handed
/// to `each` a page at a time; how many records.
pub async fn export(store: &Store, since: i64, mut each: impl FnMut(Exported<'_>)) -> Result<u64, StoreError> {
    let (mut after, mut count) = (0i64, 0u64);
    loop {
        let rows = sqlx::query(&format!(
            "{} WHERE r.at >= $1 AND r.seq > $2 ORDER BY r.seq LIMIT 1000",
            select(store.engine())
        ))
        .bind(since)
        .bind(after)
        .fetch_all(store.pool())
        .await?;
        if rows.is_empty() {
            return Ok(count);
        }
        let records = rows.iter().map(record_of).collect::<Result<Vec<_>, _>>()?;
        let (first, last) = (records[0].seq, records[records.len() - 1].seq);
        let mut checkpoints = checkpoint::stored(store.pool(), first - 1, last).await?.into_iter().peekable();
        for record in &records {
            after = record.seq;
            count += 1;
            each(Exported::Record(record));
            while let Some(checkpoint) = checkpoints.next_if(|c| c.seq <= record.seq) {
                each(Exported::Checkpoint(&checkpoint));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc_to_the_millisecond() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(rfc3339(1_767_225_600_123).as_deref(), Some("2026-01-01T00:00:00.123Z"));
        assert_eq!(crate::domain::events::rfc3339_millis("2026-01-01T00:00:00.123Z"), Some(1_767_225_600_123));
    }
}
