//! The store: one SQL database for the directory, the webhook inbox and the audit trail (SQLite embedded, PostgreSQL
//! for production and replicas), through one sqlx `AnyPool` ([`Store::engine`] where the engines differ). Values
//! crossing the pool are integers, text and bytes only (times are unix milliseconds): the Any driver decodes no other.

pub mod changes;
pub mod crypto;
pub mod migrate;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::secret::Secret;

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// One process; writes are serialised by SQLite itself.
    Sqlite,
    /// Any number of replicas; rows are locked with `SELECT ... FOR UPDATE`, changes travel by `LISTEN/NOTIFY`.
    Postgres,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `sqlite::memory:`, `sqlite://path` or `postgres://...` (may hold a password).
    pub url: Secret,
    /// Connections in the pool (an in-memory SQLite database always has one).
    pub max_connections: u32,
    /// How long a query waits for a connection before failing.
    pub acquire_timeout: Duration,
    /// How long an unused connection stays open.
    pub idle_timeout: Duration,
}

impl StoreSettings {
    /// An in-memory SQLite database of its own (sandbox mode, tests).
    pub fn memory() -> Self {
        StoreSettings {
            url: Secret::new("sqlite::memory:"),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Why the store failed. The message names no value and no credential.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Migration(#[from] migrate::MigrateError),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("KYC_GATEWAY_DATABASE_URL {0}")]
    Url(String),
    /// The database could not be reached: which one (never a credential) and why, once.
    #[error("{target}: {cause}")]
    Connect { target: String, cause: String },
}

/// The database of the gateway.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    url: Secret,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("engine", &self.engine).finish_non_exhaustive()
    }
}

/// The URL sqlx is given, and the engine: `sqlite::memory:` becomes a named shared in-memory database (the Any pool
/// parses the URL per connection, and a plain `:memory:` would give each connection a database of its own); a
/// SQLite file is created when missing.
fn resolve(url: &str) -> Result<(String, Engine), StoreError> {
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        let name = crate::secret::random_token();
        return Ok((format!("sqlite:file:kyc-gateway-{name}?mode=memory&cache=shared"), Engine::Sqlite));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let with_mode = if rest.contains("mode=") {
            url.to_owned()
        } else if rest.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        return Ok((with_mode, Engine::Sqlite));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_owned(), Engine::Postgres));
    }
    Err(StoreError::Url("must start with sqlite: or postgres://".into()))
}

/// The database a URL names, for messages: PostgreSQL's host, port and database, a SQLite file's path; never the
/// user or the password.
fn target(url: &str, engine: Engine) -> String {
    use std::str::FromStr;
    match engine {
        Engine::Postgres => match sqlx::postgres::PgConnectOptions::from_str(url) {
            Ok(options) => {
                let at = match options.get_socket() {
                    Some(socket) => socket.display().to_string(),
                    None => format!("{}:{}", options.get_host(), options.get_port()),
                };
                let database = options.get_database().unwrap_or("of the user's name");
                format!("PostgreSQL at {at}, database {database}")
            }
            Err(_) => "PostgreSQL".into(),
        },
        Engine::Sqlite if url.contains("mode=memory") => "SQLite in memory".into(),
        Engine::Sqlite => match sqlx::sqlite::SqliteConnectOptions::from_str(url) {
            Ok(options) => format!("SQLite file {}", options.get_filename().display()),
            Err(_) => "SQLite".into(),
        },
    }
}

/// Why connecting failed. The pool retries a refused connection until its acquire timeout and then reports only the
/// timeout: one more attempt, made directly, finds the cause.
async fn connect_cause(error: sqlx::Error, options: &AnyConnectOptions, url: &str, patience: Duration) -> String {
    use sqlx::ConnectOptions;
    let error = match error {
        sqlx::Error::PoolTimedOut => match tokio::time::timeout(patience, options.connect()).await {
            Ok(Err(error)) => error,
            Ok(Ok(connection)) => {
                let _ = sqlx::Connection::close(connection).await;
                return format!("no connection within {} ms", patience.as_millis());
            }
            Err(_) => return format!("the server did not answer within {} ms", patience.as_millis()),
        },
        error => error,
    };
    if let Some(missing) = missing_directory(url) {
        return missing;
    }
    match error {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        sqlx::Error::Io(e) => e.to_string(),
        sqlx::Error::Database(e) => e.message().to_owned(),
        sqlx::Error::Tls(e) => format!("TLS: {e}"),
        sqlx::Error::PoolTimedOut => "no connection within the acquire timeout".into(),
        other => other.to_string(),
    }
}

/// For a SQLite file whose directory is missing (SQLite creates the file, never its directory): that directory.
fn missing_directory(url: &str) -> Option<String> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let directory = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty())?;
    match std::fs::metadata(directory) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("the directory {} does not exist", directory.display()))
        }
        Ok(metadata) if !metadata.is_dir() => Some(format!("{} is not a directory", directory.display())),
        _ => None,
    }
}

impl Store {
    /// Connects (without migrating: see [`Store::migrate`]).
    pub async fn connect(settings: &StoreSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, engine) = resolve(settings.url.expose())?;
        let memory = url.contains("mode=memory");
        let options: AnyConnectOptions =
            url.parse().map_err(|_| StoreError::Url("is not a database URL sqlx can read".into()))?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(if memory { 1 } else { settings.max_connections.max(1) })
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        // WAL lets readers work beside a writer; NORMAL is durable with WAL at a commit's end.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        pool = if memory {
            // An in-memory database lives as long as one connection to it: keep that one open.
            pool.min_connections(1).idle_timeout(None).max_lifetime(None)
        } else {
            pool.idle_timeout(settings.idle_timeout)
        };
        let pool = match pool.connect_with(options.clone()).await {
            Ok(pool) => pool,
            Err(error) => {
                let cause = connect_cause(error, &options, &url, settings.acquire_timeout).await;
                return Err(StoreError::Connect { target: target(&url, engine), cause });
            }
        };
        Ok(Store { pool, engine, url: Secret::new(url) })
    }

    /// Brings the schema up to this binary's version (see `migrate.rs`); the migrations applied, by name.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        Ok(migrate::run(self).await?)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The URL as sqlx was given it (for the PostgreSQL listener's own connection).
    pub(crate) fn url(&self) -> &Secret {
        &self.url
    }

    /// A transaction that will write: on SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so two writers
    /// never both read and then fail to upgrade.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        }
    }

    /// How many of this binary's migrations the database lacks; an error when it does not answer (readiness).
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        Ok(migrate::pending(self).await?)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (an in-memory database is gone after this).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_engine_and_memory_databases_are_shared_and_distinct() {
        let (a, engine) = resolve("sqlite::memory:").expect("valid");
        let (b, _) = resolve("sqlite::memory:").expect("valid");
        assert_eq!(engine, Engine::Sqlite);
        assert!(a.contains("mode=memory&cache=shared") && a != b);
        assert_eq!(resolve("sqlite:///var/lib/kyc.db").expect("valid").0, "sqlite:///var/lib/kyc.db?mode=rwc");
        assert_eq!(resolve("postgres://u:p@h/db").expect("valid").1, Engine::Postgres);
        assert!(resolve("mysql://h/db").is_err());
    }
}
