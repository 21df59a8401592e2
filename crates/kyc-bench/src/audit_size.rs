//! The audit trail's size on disk per record: on SQLite the database file and its WAL after a checkpoint, on
//! PostgreSQL every `audit*` table with its indexes and TOAST (`pg_total_relation_size`), so tables added to the
//! trail count without changing this. Records are the rows of `audit_records`.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

/// Bytes on disk and the records they hold.
#[derive(Debug, Clone, Copy)]
pub struct AuditSize {
    pub records: i64,
    pub bytes: i64,
}

impl AuditSize {
    pub fn per_record(&self) -> Option<f64> {
        (self.records > 0).then(|| self.bytes as f64 / self.records as f64)
    }

    /// "`what` N MB for M records: B bytes per record".
    pub fn describe(&self, what: &str) -> String {
        format!(
            "{what} {:.1} MB for {} audit records: {} bytes per record",
            self.bytes as f64 / 1024.0 / 1024.0,
            self.records,
            self.per_record().map_or("-".into(), |b| format!("{b:.0}")),
        )
    }
}

/// The SQLite database at `path` (no gateway writing to it): checkpointed, then the sizes of the file and its WAL.
pub async fn sqlite(path: &Path) -> anyhow::Result<AuditSize> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?;
    let mut db = SqliteConnection::connect_with(&options).await.context("opening the gateway's database")?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut db).await?;
    let records: i64 = sqlx::query("SELECT count(*) FROM audit_records").fetch_one(&mut db).await?.try_get(0)?;
    db.close().await?;
    let mut bytes = 0;
    for suffix in ["", "-wal"] {
        bytes += std::fs::metadata(format!("{}{suffix}", path.display())).map_or(0, |m| m.len()) as i64;
    }
    Ok(AuditSize { records, bytes })
}

/// The audit tables of the PostgreSQL database `db` connects to.
pub async fn postgres(db: &mut PgConnection) -> anyhow::Result<AuditSize> {
    let bytes: Option<i64> = sqlx::query(
        "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND c.relname LIKE 'audit%' AND n.nspname = current_schema()",
    )
    .fetch_one(&mut *db)
    .await?
    .try_get(0)?;
    let records: i64 = sqlx::query("SELECT count(*) FROM audit_records").fetch_one(&mut *db).await?.try_get(0)?;
    Ok(AuditSize { records, bytes: bytes.unwrap_or(0) })
}
