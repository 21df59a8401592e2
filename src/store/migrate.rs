//! Versioned migrations, embedded in the binary and run at start-up (or alone: `kyc-gateway migrate`).
//!
//! Each migration has a SQLite and a PostgreSQL text (the DDL differs; the statements the code runs do not). Every
//! upgrade runs in one transaction under a lock (PostgreSQL's `pg_advisory_xact_lock`, SQLite's write lock), so
//! replicas starting together apply each migration once, and a failed upgrade leaves the database as it was.
//! `schema_migrations` records each applied migration with a checksum of its text: a database that holds a
//! migration this binary does not know (a newer binary migrated it) is refused, and so is one whose recorded
//! migration was edited since.

use sqlx::{Executor, Row};

use super::{Engine, Store};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, in order.
const MIGRATIONS: &[Migration] =
    &[migration!(1, "0001_directory"), migration!(2, "0002_webhooks"), migration!(3, "0003_audit")];

/// An arbitrary, fixed key for the advisory lock of migrations.
const LOCK_KEY: i64 = 0x006b_7963_5f6d_6967;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "refusing the database: it holds migration {name} (version {version}), which this kyc-gateway ({binary}) does \
         not know; a newer kyc-gateway migrated it, so run that version or a newer one"
    )]
    Newer { version: i64, name: String, binary: &'static str },
    #[error("refusing the database: migration {name} was changed after it was applied (its checksum differs)")]
    Modified { name: String },
    #[error("migrating the database: {0}")]
    Sql(#[from] sqlx::Error),
}

impl Migration {
    fn text(&self, engine: Engine) -> &'static str {
        match engine {
            Engine::Sqlite => self.sqlite,
            Engine::Postgres => self.postgres,
        }
    }

    fn checksum(&self, engine: Engine) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.text(engine).as_bytes());
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How many of this binary's migrations the database lacks (readiness: a replica whose database is behind is not
/// ready). Fails when the database does not answer or was never migrated.
pub(super) async fn pending(store: &Store) -> Result<usize, sqlx::Error> {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(store.pool()).await?;
    Ok(MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)).count())
}

/// Applies what is missing; the names of the migrations applied.
pub(super) async fn run(store: &Store) -> Result<Vec<&'static str>, MigrateError> {
    let engine = store.engine();
    let mut tx = store.begin_write().await?;
    if engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK_KEY).execute(&mut *tx).await?;
    }
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let rows = sqlx::query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *tx)
        .await?;
    let mut applied = Vec::new();
    for row in &rows {
        let version: i64 = row.try_get("version")?;
        let name: String = row.try_get("name")?;
        let checksum: String = row.try_get("checksum")?;
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(MigrateError::Newer { version, name, binary: env!("CARGO_PKG_VERSION") });
        };
        if known.checksum(engine) != checksum {
            return Err(MigrateError::Modified { name });
        }
        applied.push(version);
    }
    let mut done = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        tx.execute(migration.text(engine)).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(migration.checksum(engine))
            .bind(crate::clock::unix_millis())
            .execute(&mut *tx)
            .await?;
        done.push(migration.name);
    }
    tx.commit().await?;
    Ok(done)
}
