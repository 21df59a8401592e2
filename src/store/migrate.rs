//! Versioned migrations, embedded by `sqlx::migrate!` (one migrator per dialect) and run at start-up or alone
//! (`kyc-gateway migrate`), recorded in `_sqlx_migrations` under PostgreSQL's advisory lock; an unknown or changed
//! migration is refused. A database of the earlier migrator (`schema_migrations`) is adopted first, each row checked.

use sqlx::migrate::{Migrate, MigrateError as SqlxMigrateError, Migrator};
use sqlx::Row;

use super::{Engine, Store};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// An arbitrary, fixed key for the advisory lock of the adoption.
const LOCK_KEY: i64 = 0x006b_7963_5f6d_6967;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "refusing the database: it holds migration version {version}, which this kyc-gateway ({binary}) does not \
         know; a newer kyc-gateway migrated it, so run that version or a newer one"
    )]
    Newer { version: i64, binary: &'static str },
    #[error("refusing the database: migration {name} was changed after it was applied (its checksum differs)")]
    Modified { name: String },
    #[error("migrating the database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(String),
}

impl From<SqlxMigrateError> for MigrateError {
    fn from(e: SqlxMigrateError) -> Self {
        match e {
            SqlxMigrateError::VersionMissing(version) => {
                MigrateError::Newer { version, binary: env!("CARGO_PKG_VERSION") }
            }
            SqlxMigrateError::VersionMismatch(version) => MigrateError::Modified { name: version.to_string() },
            SqlxMigrateError::Execute(e) => MigrateError::Sql(e),
            other => MigrateError::Migrate(other.to_string()),
        }
    }
}

fn migrator(engine: Engine) -> &'static Migrator {
    match engine {
        Engine::Sqlite => &SQLITE,
        Engine::Postgres => &POSTGRES,
    }
}

/// The versions recorded as applied; none when the database was never migrated by sqlx.
async fn applied(store: &Store) -> Result<Vec<i64>, sqlx::Error> {
    let mut conn = store.pool().acquire().await?;
    conn.ensure_migrations_table().await.map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE").fetch_all(&mut *conn).await
}

/// How many of this binary's migrations the database lacks (readiness: a replica whose database is behind is not
/// ready). Fails when the database does not answer.
pub(super) async fn pending(store: &Store) -> Result<usize, sqlx::Error> {
    let applied = applied(store).await?;
    Ok(migrator(store.engine()).iter().filter(|m| !applied.contains(&m.version)).count())
}

/// Applies what is missing; the migrations applied, as `NNNN_description`.
pub(super) async fn run(store: &Store) -> Result<Vec<String>, MigrateError> {
    let migrator = migrator(store.engine());
    adopt_legacy(store, migrator).await?;
    let before = applied(store).await?;
    migrator.run(store.pool()).await?;
    Ok(migrator
        .iter()
        .filter(|m| !before.contains(&m.version))
        .map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_")))
        .collect())
}

/// Whether the earlier migrator's table exists.
async fn has_legacy_table(store: &Store) -> Result<bool, sqlx::Error> {
    let sql = match store.engine() {
        Engine::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        Engine::Postgres => {
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
        }
    };
    Ok(sqlx::query(sql).fetch_optional(store.pool()).await?.is_some())
}

/// Carries the earlier migrator's records (`schema_migrations`: version, name, SHA-256 of the text) over to sqlx's,
/// then drops its table. A recorded migration whose text changed is refused, as sqlx would.
async fn adopt_legacy(store: &Store, migrator: &Migrator) -> Result<(), MigrateError> {
    if !has_legacy_table(store).await? {
        return Ok(());
    }
    applied(store).await?;
    let mut tx = store.begin_write().await?;
    if store.engine() == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK_KEY).execute(&mut *tx).await?;
        if sqlx::query(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'",
        )
        .fetch_optional(&mut *tx)
        .await?
        .is_none()
        {
            // Another replica adopted it while this one waited for the lock.
            return Ok(());
        }
    }
    let rows = sqlx::query("SELECT version, name, checksum FROM schema_migrations").fetch_all(&mut *tx).await?;
    for row in rows {
        let version: i64 = row.try_get("version")?;
        let name: String = row.try_get("name")?;
        let checksum: String = row.try_get("checksum")?;
        let Some(migration) = migrator.iter().find(|m| m.version == version) else {
            return Err(MigrateError::Newer { version, binary: env!("CARGO_PKG_VERSION") });
        };
        if crate::digest::sha256_hex(migration.sql.as_bytes()) != checksum {
            return Err(MigrateError::Modified { name });
        }
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0) ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(migration.description.to_string())
        .bind(migration.checksum.to_vec())
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DROP TABLE schema_migrations").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
