//! Versioned migrations, embedded by `sqlx::migrate!` (one migrator per dialect) and run at start-up or alone
//! (`kyc-gateway migrate`), recorded in `_sqlx_migrations` under PostgreSQL's advisory lock; an unknown or changed
//! migration is refused. The earlier migrator's `schema_migrations` is adopted, each row checked, and kept current.

use sqlx::migrate::{Migrate, MigrateError as SqlxMigrateError, Migrator};
use sqlx::{AnyConnection, Connection, Row};

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

/// Whether a table of this name exists (no DDL: readiness probes call this).
async fn table_exists<'c, E>(engine: Engine, executor: E, table: &str) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let sql = match engine {
        Engine::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
        Engine::Postgres => "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1",
    };
    Ok(sqlx::query(sql).bind(table).fetch_optional(executor).await?.is_some())
}

/// The versions recorded as applied; none when the database was never migrated by sqlx.
async fn applied(engine: Engine, conn: &mut AnyConnection) -> Result<Vec<i64>, sqlx::Error> {
    if !table_exists(engine, &mut *conn, "_sqlx_migrations").await? {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE").fetch_all(&mut *conn).await
}

/// How many of this binary's migrations the database lacks (readiness: a replica whose database is behind is not
/// ready). Fails when the database does not answer.
pub(super) async fn pending(store: &Store) -> Result<usize, sqlx::Error> {
    let mut conn = store.pool().acquire().await?;
    let applied = applied(store.engine(), &mut conn).await?;
    Ok(migrator(store.engine()).iter().filter(|m| !applied.contains(&m.version)).count())
}

/// Applies what is missing; the migrations applied, as `NNNN_description`. On PostgreSQL the whole run holds one
/// advisory lock, so replicas starting together on one database migrate one after another.
pub(super) async fn run(store: &Store) -> Result<Vec<String>, MigrateError> {
    let engine = store.engine();
    let mut conn = store.pool().acquire().await?;
    if engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(LOCK_KEY).execute(&mut *conn).await?;
    }
    let outcome = run_on(engine, &mut conn).await;
    if engine == Engine::Postgres {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(LOCK_KEY).execute(&mut *conn).await;
        if unlocked.is_err() {
            // A connection that may still hold the lock never goes back to the pool.
            let _ = conn.close().await;
        }
    }
    outcome
}

async fn run_on(engine: Engine, conn: &mut AnyConnection) -> Result<Vec<String>, MigrateError> {
    let migrator = migrator(engine);
    conn.ensure_migrations_table().await?;
    adopt_legacy(engine, migrator, conn).await?;
    let before = applied(engine, conn).await?;
    migrator.run_direct(&mut *conn).await?;
    let new: Vec<_> = migrator.iter().filter(|m| !before.contains(&m.version)).collect();
    mirror_to_legacy(engine, conn, &new).await?;
    Ok(new.iter().map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_"))).collect())
}

/// Carries the earlier migrator's records (`schema_migrations`: version, name, SHA-256 of the text) over to sqlx's.
/// A recorded migration whose text changed is refused, as sqlx would.
async fn adopt_legacy(engine: Engine, migrator: &Migrator, conn: &mut AnyConnection) -> Result<(), MigrateError> {
    if !table_exists(engine, &mut *conn, "schema_migrations").await? {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
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
    tx.commit().await?;
    Ok(())
}

/// Records `applied` in the earlier migrator's table too, where there is one: an earlier kyc-gateway started on this
/// database then refuses it as newer than itself, instead of applying its first migration again.
async fn mirror_to_legacy(
    engine: Engine,
    conn: &mut AnyConnection,
    applied: &[&sqlx::migrate::Migration],
) -> Result<(), MigrateError> {
    if applied.is_empty() || !table_exists(engine, &mut *conn, "schema_migrations").await? {
        return Ok(());
    }
    for migration in applied {
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(migration.version)
        .bind(format!("{:04}_{}", migration.version, migration.description.replace(' ', "_")))
        .bind(crate::digest::sha256_hex(migration.sql.as_bytes()))
        .bind(crate::clock::unix_millis())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
