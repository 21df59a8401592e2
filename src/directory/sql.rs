//! The directory in the store, for both engines: `users`, `provider_refs` and `provider_links` (tokens sealed by
//! `store/crypto.rs`; nothing else here is secret). A link held for a refresh is a row lock on PostgreSQL (across
//! replicas), a per-link lock in memory on SQLite (one process; no transaction open while the provider answers).

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{
    Consumed, Directory, DirectoryError, Link, LinkRefresh, LinkState, LinkTokens, Linked, References, UserEntry,
};
use crate::domain::{Provider, UserId};
use crate::secret::Secret;
use crate::store::crypto::TokenCipher;
use crate::store::{Engine, Store};

/// Stripes of the SQLite per-link refresh lock: a lock per stripe, not per link.
const STRIPES: usize = 64;

/// The most users (or subjects) one statement of a list's look-up names.
const ENTRIES_AT_ONCE: usize = 500;

/// `$from, ..., $(from + n - 1)`.
fn numbered(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The directory on the store.
pub struct SqlDirectory {
    store: Store,
    cipher: Arc<TokenCipher>,
    stripes: Vec<Arc<Mutex<()>>>,
    /// PostgreSQL refreshes hold a pooled connection (and its row lock) across the call to the provider: at most
    /// half the pool does, so reads and webhooks always find a connection.
    refreshes: Arc<tokio::sync::Semaphore>,
    hasher: std::collections::hash_map::RandomState,
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn time(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64)
}

/// The context sealed values of a link are bound to (`<provider>_links/<user>/<column>`: the name of the table the
/// first links were sealed in, kept so that they still open).
fn context(provider: Provider, user: &str, column: &str) -> String {
    format!("{}_links/{user}/{column}", provider.label())
}

const LINK_COLUMNS: &str =
    "subject, scopes, access_key_id, access_sealed, access_renew_at, refresh_key_id, refresh_sealed, version";

impl SqlDirectory {
    pub fn new(store: Store, cipher: Arc<TokenCipher>) -> Self {
        let pool = store.pool().options().get_max_connections() as usize;
        SqlDirectory {
            refreshes: Arc::new(tokio::sync::Semaphore::new((pool / 2).max(1))),
            store,
            cipher,
            stripes: (0..STRIPES).map(|_| Arc::new(Mutex::new(()))).collect(),
            hasher: Default::default(),
        }
    }

    fn open(&self, provider: Provider, user: &str, row: &AnyRow) -> Result<Link, DirectoryError> {
        let corrupt = |e: crate::store::crypto::CryptoError| DirectoryError::Corrupt(e.to_string());
        let access_key: Option<String> = row.try_get("access_key_id")?;
        let access_token: Option<Vec<u8>> = row.try_get("access_sealed")?;
        let access_token = match (access_key, access_token) {
            (Some(key), Some(sealed)) => {
                Some(self.cipher.open(&key, &sealed, &context(provider, user, "access")).map_err(corrupt)?)
            }
            _ => None,
        };
        let refresh_key: String = row.try_get("refresh_key_id")?;
        let refresh_token: Vec<u8> = row.try_get("refresh_sealed")?;
        let refresh_token =
            self.cipher.open(&refresh_key, &refresh_token, &context(provider, user, "refresh")).map_err(corrupt)?;
        Ok(Link {
            subject: row.try_get("subject")?,
            scopes: row.try_get("scopes")?,
            tokens: LinkTokens {
                access_token,
                access_renew_at: row.try_get::<Option<i64>, _>("access_renew_at")?.map(time),
                refresh_token,
            },
        })
    }

    async fn read_versioned(&self, user: &UserId, provider: Provider) -> Result<Option<(Link, i64)>, DirectoryError> {
        let row =
            sqlx::query(&format!("SELECT {LINK_COLUMNS} FROM provider_links WHERE user_id = $1 AND provider = $2"))
                .bind(user.as_str())
                .bind(provider.as_str())
                .fetch_optional(self.store.pool())
                .await?;
        row.map(|row| Ok((self.open(provider, user, &row)?, row.try_get("version")?))).transpose()
    }
}

/// The sealed columns of a link's tokens.
struct Sealed {
    access_key: Option<String>,
    access: Option<Vec<u8>>,
    renew_at: Option<i64>,
    refresh_key: String,
    refresh: Vec<u8>,
}

fn seal(cipher: &TokenCipher, provider: Provider, user: &str, tokens: &LinkTokens) -> Sealed {
    let access = tokens.access_token.as_ref().map(|t| cipher.seal(t, &context(provider, user, "access")));
    let (refresh_key, refresh) = cipher.seal(&tokens.refresh_token, &context(provider, user, "refresh"));
    let (access_key, access) = match access {
        Some((key, sealed)) => (Some(key), Some(sealed)),
        None => (None, None),
    };
    Sealed { access_key, access, renew_at: tokens.access_renew_at.map(millis), refresh_key, refresh }
}

/// Writes a refresh's new tokens (bumping the link's version), if the link is still the `version` the refresh read:
/// a link replaced in between (a re-link to another account) keeps the new account's tokens.
async fn write_tokens(
    cipher: &TokenCipher,
    executor: &mut sqlx::AnyConnection,
    provider: Provider,
    user: &str,
    version: i64,
    tokens: &LinkTokens,
) -> Result<(), DirectoryError> {
    let Sealed { access_key, access, renew_at, refresh_key, refresh } = seal(cipher, provider, user, tokens);
    let updated = sqlx::query(
        "UPDATE provider_links SET access_key_id = $3, access_sealed = $4, access_renew_at = $5, \
         refresh_key_id = $6, refresh_sealed = $7, version = version + 1, updated_at = $8 \
         WHERE user_id = $1 AND provider = $2 AND version = $9",
    )
    .bind(user)
    .bind(provider.as_str())
    .bind(access_key)
    .bind(access)
    .bind(renew_at)
    .bind(refresh_key)
    .bind(refresh)
    .bind(crate::clock::unix_millis())
    .bind(version)
    .execute(executor)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DirectoryError::LinkRemoved);
    }
    Ok(())
}

/// A PostgreSQL refresh: the row stays locked until the transaction ends.
struct RowLockRefresh {
    cipher: Arc<TokenCipher>,
    provider: Provider,
    user: UserId,
    link: Link,
    version: i64,
    tx: Transaction<'static, Any>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

#[async_trait::async_trait]
impl LinkRefresh for RowLockRefresh {
    fn link(&self) -> &Link {
        &self.link
    }

    #[tracing::instrument(name = "store.directory.commit", skip_all)]
    async fn commit(mut self: Box<Self>, tokens: LinkTokens) -> Result<(), DirectoryError> {
        write_tokens(&self.cipher, &mut self.tx, self.provider, &self.user, self.version, &tokens).await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// A SQLite refresh: the process-wide lock of the link's stripe is held until the commit.
struct StripeRefresh {
    store: Store,
    cipher: Arc<TokenCipher>,
    provider: Provider,
    user: UserId,
    link: Link,
    version: i64,
    _held: OwnedMutexGuard<()>,
}

#[async_trait::async_trait]
impl LinkRefresh for StripeRefresh {
    fn link(&self) -> &Link {
        &self.link
    }

    #[tracing::instrument(name = "store.directory.commit", skip_all)]
    async fn commit(self: Box<Self>, tokens: LinkTokens) -> Result<(), DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        write_tokens(&self.cipher, &mut tx, self.provider, &self.user, self.version, &tokens).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Inserts `user` unless known.
async fn ensure_user(tx: &mut sqlx::AnyConnection, user: &str, now: i64) -> Result<(), DirectoryError> {
    sqlx::query("INSERT INTO users (user_id, created_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING")
        .bind(user)
        .bind(now)
        .execute(tx)
        .await?;
    Ok(())
}

/// The most references a user keeps at one provider: adding one more drops the oldest.
pub const MAX_REFERENCES: usize = 100;

/// Replaces the user's references at each provider `refs` names.
async fn replace_references(tx: &mut sqlx::AnyConnection, user: &str, refs: &References) -> Result<(), DirectoryError> {
    for provider in refs.keys() {
        sqlx::query("DELETE FROM provider_refs WHERE user_id = $1 AND provider = $2")
            .bind(user)
            .bind(provider.as_str())
            .execute(&mut *tx)
            .await?;
    }
    add_references(tx, user, refs).await.map(|_| ())
}

/// Adds the references of `refs` the user does not hold yet, keeping at most [`MAX_REFERENCES`] per provider (the
/// newest); how many were new.
async fn add_references(tx: &mut sqlx::AnyConnection, user: &str, refs: &References) -> Result<u64, DirectoryError> {
    let now = crate::clock::unix_millis();
    let mut added = 0;
    for (provider, references) in refs {
        for reference in references {
            added += sqlx::query(
                "INSERT INTO provider_refs (user_id, provider, reference, added_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, provider, reference) DO NOTHING",
            )
            .bind(user)
            .bind(provider.as_str())
            .bind(reference)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        sqlx::query(
            "DELETE FROM provider_refs WHERE user_id = $1 AND provider = $2 AND reference NOT IN \
             (SELECT reference FROM provider_refs WHERE user_id = $1 AND provider = $2 \
              ORDER BY added_at DESC, reference DESC LIMIT $3)",
        )
        .bind(user)
        .bind(provider.as_str())
        .bind(MAX_REFERENCES as i64)
        .execute(&mut *tx)
        .await?;
    }
    Ok(added)
}

#[async_trait::async_trait]
impl Directory for SqlDirectory {
    #[tracing::instrument(name = "store.directory.entry", skip_all)]
    async fn entry(&self, user: &UserId) -> Result<UserEntry, DirectoryError> {
        let pool = self.store.pool();
        let known = sqlx::query("SELECT 1 FROM users WHERE user_id = $1").bind(user.as_str()).fetch_optional(pool);
        if known.await?.is_none() {
            return Ok(UserEntry::default());
        }
        let mut entry = UserEntry { known: true, ..UserEntry::default() };
        let refs = sqlx::query(
            "SELECT provider, reference FROM provider_refs WHERE user_id = $1 ORDER BY added_at DESC, reference DESC",
        )
        .bind(user.as_str())
        .fetch_all(pool)
        .await?;
        for row in refs {
            let provider: String = row.try_get("provider")?;
            // A provider no longer in this build keeps its rows for a later one, unused here.
            if let Some(provider) = Provider::from_name(&provider) {
                entry.references.entry(provider).or_default().push(row.try_get("reference")?);
            }
        }
        let links = sqlx::query("SELECT provider, subject FROM provider_links WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_all(pool)
            .await?;
        for row in links {
            let provider: String = row.try_get("provider")?;
            if let Some(provider) = Provider::from_name(&provider) {
                entry.links.insert(provider, row.try_get("subject")?);
            }
        }
        Ok(entry)
    }

    #[tracing::instrument(name = "store.directory.entries", skip_all, fields(users = users.len()))]
    async fn entries(&self, users: &[UserId]) -> Result<Vec<UserEntry>, DirectoryError> {
        let pool = self.store.pool();
        let mut found: std::collections::HashMap<String, UserEntry> = std::collections::HashMap::new();
        for chunk in users.chunks(ENTRIES_AT_ONCE) {
            let within = numbered(1, chunk.len());
            let known_sql = format!("SELECT user_id FROM users WHERE user_id IN ({within})");
            // Each user's references in the order `entry` reads them.
            let refs_sql = format!(
                "SELECT user_id, provider, reference FROM provider_refs WHERE user_id IN ({within}) \
                 ORDER BY user_id, added_at DESC, reference DESC"
            );
            let links_sql =
                format!("SELECT user_id, provider, subject FROM provider_links WHERE user_id IN ({within})");
            let bind = |sql| chunk.iter().fold(sqlx::query(sql), |q, u| q.bind(u.as_str()));
            for row in bind(&known_sql).fetch_all(pool).await? {
                found.insert(row.try_get("user_id")?, UserEntry { known: true, ..UserEntry::default() });
            }
            for row in bind(&refs_sql).fetch_all(pool).await? {
                let user: String = row.try_get("user_id")?;
                let provider: String = row.try_get("provider")?;
                // A provider no longer in this build keeps its rows for a later one, unused here.
                if let (Some(entry), Some(provider)) = (found.get_mut(user.as_str()), Provider::from_name(&provider)) {
                    entry.references.entry(provider).or_default().push(row.try_get("reference")?);
                }
            }
            for row in bind(&links_sql).fetch_all(pool).await? {
                let user: String = row.try_get("user_id")?;
                let provider: String = row.try_get("provider")?;
                if let (Some(entry), Some(provider)) = (found.get_mut(user.as_str()), Provider::from_name(&provider)) {
                    entry.links.insert(provider, row.try_get("subject")?);
                }
            }
        }
        Ok(users.iter().map(|u| found.get(u.as_str()).cloned().unwrap_or_default()).collect())
    }

    #[tracing::instrument(name = "store.directory.user_for_reference", skip_all)]
    async fn user_for_reference(&self, provider: Provider, reference: &str) -> Result<Option<UserId>, DirectoryError> {
        let user: Option<String> = sqlx::query_scalar(
            "SELECT user_id FROM provider_refs WHERE provider = $1 AND reference = $2 ORDER BY user_id LIMIT 1",
        )
        .bind(provider.as_str())
        .bind(reference)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(user.map(UserId::trusted))
    }

    #[tracing::instrument(name = "store.directory.register", skip_all)]
    async fn register(&self, user: &UserId, refs: &References) -> Result<(), DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        ensure_user(&mut tx, user, crate::clock::unix_millis()).await?;
        replace_references(&mut tx, user, refs).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.directory.add_reference", skip_all)]
    async fn add_reference(&self, user: &UserId, provider: Provider, reference: &str) -> Result<bool, DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        ensure_user(&mut tx, user, crate::clock::unix_millis()).await?;
        let added = add_references(&mut tx, user, &References::from([(provider, vec![reference.to_owned()])])).await?;
        tx.commit().await?;
        Ok(added > 0)
    }

    #[tracing::instrument(name = "store.directory.link", skip_all)]
    async fn link(&self, user: &UserId, provider: Provider) -> Result<Option<Link>, DirectoryError> {
        Ok(self.read_versioned(user, provider).await?.map(|(link, _)| link))
    }

    #[tracing::instrument(name = "store.directory.user_for_link", skip_all)]
    async fn user_for_link(&self, provider: Provider, subject: &str) -> Result<Option<UserId>, DirectoryError> {
        let user: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM provider_links WHERE provider = $1 AND subject = $2")
                .bind(provider.as_str())
                .bind(subject)
                .fetch_optional(self.store.pool())
                .await?;
        Ok(user.map(UserId::trusted))
    }

    #[tracing::instrument(name = "store.directory.users_for_links", skip_all, fields(subjects = subjects.len()))]
    async fn users_for_links(
        &self,
        provider: Provider,
        subjects: &[String],
    ) -> Result<Vec<Option<UserId>>, DirectoryError> {
        let mut found: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for chunk in subjects.chunks(ENTRIES_AT_ONCE) {
            let sql = format!(
                "SELECT subject, user_id FROM provider_links WHERE provider = $1 AND subject IN ({})",
                numbered(2, chunk.len())
            );
            let query = chunk.iter().fold(sqlx::query(&sql).bind(provider.as_str()), |q, s| q.bind(s.as_str()));
            for row in query.fetch_all(self.store.pool()).await? {
                found.insert(row.try_get("subject")?, row.try_get("user_id")?);
            }
        }
        Ok(subjects.iter().map(|s| found.get(s).cloned().map(UserId::trusted)).collect())
    }

    #[tracing::instrument(name = "store.directory.begin_refresh", skip_all)]
    async fn begin_refresh(
        &self,
        user: &UserId,
        provider: Provider,
    ) -> Result<Option<Box<dyn LinkRefresh>>, DirectoryError> {
        match self.store.engine() {
            Engine::Postgres => {
                let permit = self.refreshes.clone().acquire_owned().await.expect("the semaphore is never closed");
                let mut tx = self.store.pool().begin().await?;
                // A replica that waits for another's refresh gives up rather than hold its connection for long, and a
                // transaction left open (a process frozen mid-refresh) is ended by the server.
                sqlx::query("SET LOCAL lock_timeout = '10s'").execute(&mut *tx).await?;
                sqlx::query("SET LOCAL idle_in_transaction_session_timeout = '60s'").execute(&mut *tx).await?;
                let row = sqlx::query(&format!(
                    "SELECT {LINK_COLUMNS} FROM provider_links WHERE user_id = $1 AND provider = $2 FOR UPDATE"
                ))
                .bind(user.as_str())
                .bind(provider.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let (link, version) = (self.open(provider, user, &row)?, row.try_get("version")?);
                let cipher = self.cipher.clone();
                let user = user.clone();
                Ok(Some(Box::new(RowLockRefresh { cipher, provider, user, link, version, tx, _permit: permit })))
            }
            Engine::Sqlite => {
                let stripe = (self.hasher.hash_one((user.as_str(), provider)) % STRIPES as u64) as usize;
                let held = self.stripes[stripe].clone().lock_owned().await;
                let Some((link, version)) = self.read_versioned(user, provider).await? else { return Ok(None) };
                let (store, cipher, user) = (self.store.clone(), self.cipher.clone(), user.clone());
                Ok(Some(Box::new(StripeRefresh { store, cipher, provider, user, link, version, _held: held })))
            }
        }
    }

    #[tracing::instrument(name = "store.directory.store_link", skip_all)]
    async fn store_link(&self, user: &UserId, provider: Provider, link: &Link) -> Result<Linked, DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM provider_links WHERE provider = $1 AND subject = $2")
                .bind(provider.as_str())
                .bind(&link.subject)
                .fetch_optional(&mut *tx)
                .await?;
        if owner.is_some_and(|owner| owner != user.as_str()) {
            return Ok(Linked::SubjectTaken);
        }
        let now = crate::clock::unix_millis();
        ensure_user(&mut tx, user, now).await?;
        let Sealed { access_key, access, renew_at, refresh_key, refresh } =
            seal(&self.cipher, provider, user, &link.tokens);
        sqlx::query(
            "INSERT INTO provider_links (user_id, provider, subject, scopes, access_key_id, access_sealed, \
             access_renew_at, refresh_key_id, refresh_sealed, version, linked_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) \
             ON CONFLICT (user_id, provider) DO UPDATE SET subject = excluded.subject, scopes = excluded.scopes, \
             access_key_id = excluded.access_key_id, access_sealed = excluded.access_sealed, \
             access_renew_at = excluded.access_renew_at, refresh_key_id = excluded.refresh_key_id, \
             refresh_sealed = excluded.refresh_sealed, version = provider_links.version + 1, \
             linked_at = excluded.linked_at, updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(provider.as_str())
        .bind(&link.subject)
        .bind(&link.scopes)
        .bind(access_key)
        .bind(access)
        .bind(renew_at)
        .bind(refresh_key)
        .bind(refresh)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Linked::Stored)
    }

    #[tracing::instrument(name = "store.directory.remove_link", skip_all)]
    async fn remove_link(&self, user: &UserId, provider: Provider) -> Result<bool, DirectoryError> {
        let deleted = sqlx::query("DELETE FROM provider_links WHERE user_id = $1 AND provider = $2")
            .bind(user.as_str())
            .bind(provider.as_str())
            .execute(self.store.pool())
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    #[tracing::instrument(name = "store.directory.save_link_state", skip_all)]
    async fn save_link_state(&self, state: &LinkState, open_per_user: usize) -> Result<(), DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        if self.store.engine() == Engine::Postgres {
            // Concurrent starts of one user take turns, so that none of them sees fewer open states than there are.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("link_states/{}", state.user_id.as_str()))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO link_states (nonce, user_id, provider, redirect_uri, expires_at, code_verifier) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&state.nonce)
        .bind(state.user_id.as_str())
        .bind(state.provider.as_str())
        .bind(&state.redirect_uri)
        .bind(state.expires_at)
        .bind(state.code_verifier.as_ref().map(|v| v.expose().to_owned()))
        .execute(&mut *tx)
        .await?;
        // The new state always stays; of the user's other open states, the newest `open_per_user - 1` do.
        sqlx::query(
            "DELETE FROM link_states WHERE user_id = $1 AND nonce <> $2 AND used_at IS NULL AND expires_at > $3 \
             AND nonce NOT IN (SELECT nonce FROM link_states WHERE user_id = $1 AND nonce <> $2 \
               AND used_at IS NULL AND expires_at > $3 ORDER BY expires_at DESC, nonce DESC LIMIT $4)",
        )
        .bind(state.user_id.as_str())
        .bind(&state.nonce)
        .bind(crate::clock::unix_millis())
        .bind(open_per_user.saturating_sub(1) as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.directory.purge_link_states", skip_all)]
    async fn purge_link_states(&self, expired_before: i64) -> Result<u64, DirectoryError> {
        let deleted = sqlx::query("DELETE FROM link_states WHERE expires_at < $1")
            .bind(expired_before)
            .execute(self.store.pool())
            .await?;
        Ok(deleted.rows_affected())
    }

    #[tracing::instrument(name = "store.directory.consume_link_state", skip_all)]
    async fn consume_link_state(&self, nonce: &str) -> Result<Consumed, DirectoryError> {
        let row = sqlx::query(
            "UPDATE link_states SET used_at = $2 WHERE nonce = $1 AND used_at IS NULL \
             RETURNING user_id, provider, redirect_uri, expires_at, code_verifier",
        )
        .bind(nonce)
        .bind(crate::clock::unix_millis())
        .fetch_optional(self.store.pool())
        .await?;
        if let Some(row) = row {
            let provider: String = row.try_get("provider")?;
            let provider = Provider::from_name(&provider)
                .ok_or_else(|| DirectoryError::Corrupt("a link state names no known provider".into()))?;
            return Ok(Consumed::Fresh(LinkState {
                nonce: nonce.to_owned(),
                user_id: UserId::trusted(row.try_get::<String, _>("user_id")?),
                provider,
                redirect_uri: row.try_get("redirect_uri")?,
                expires_at: row.try_get("expires_at")?,
                code_verifier: row.try_get::<Option<String>, _>("code_verifier")?.map(Secret::new),
            }));
        }
        let known =
            sqlx::query("SELECT 1 FROM link_states WHERE nonce = $1").bind(nonce).fetch_optional(self.store.pool());
        Ok(if known.await?.is_some() { Consumed::AlreadyUsed } else { Consumed::Unknown })
    }
}

/// What a directory import holds for one user (see `import.rs`).
pub(crate) struct ImportEntry<'a> {
    pub user: &'a UserId,
    /// A provider's one reference: it replaces the stored one.
    pub refs: References,
    /// A provider's list of references: added to those stored (which may have been added since).
    pub lists: References,
    /// A link with only its refresh token: the first refresh obtains an access token.
    pub links: Vec<(Provider, &'a str, &'a Secret)>,
}

impl SqlDirectory {
    /// Adds users, their references and links in one transaction. A user already known keeps their references at a
    /// provider the entry does not name; a link already stored is kept (its refresh token may have rotated since the
    /// file was written) unless `replace_links`. How many links were stored.
    #[tracing::instrument(name = "store.directory.import", skip_all)]
    pub(crate) async fn import(
        &self,
        entries: &[ImportEntry<'_>],
        replace_links: bool,
    ) -> Result<usize, DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        let now = crate::clock::unix_millis();
        let mut stored = 0;
        for entry in entries {
            ensure_user(&mut tx, entry.user, now).await?;
            replace_references(&mut tx, entry.user, &entry.refs).await?;
            add_references(&mut tx, entry.user, &entry.lists).await?;
            for (provider, subject, refresh_token) in &entry.links {
                let tokens =
                    LinkTokens { access_token: None, access_renew_at: None, refresh_token: (*refresh_token).clone() };
                let Sealed { refresh_key, refresh, .. } = seal(&self.cipher, *provider, entry.user, &tokens);
                let conflict = if replace_links {
                    "ON CONFLICT (user_id, provider) DO UPDATE SET subject = excluded.subject, \
                     access_key_id = NULL, access_sealed = NULL, access_renew_at = NULL, \
                     refresh_key_id = excluded.refresh_key_id, refresh_sealed = excluded.refresh_sealed, \
                     version = provider_links.version + 1, updated_at = excluded.updated_at"
                } else {
                    "ON CONFLICT (user_id, provider) DO NOTHING"
                };
                let inserted = sqlx::query(&format!(
                    "INSERT INTO provider_links (user_id, provider, subject, scopes, refresh_key_id, refresh_sealed, \
                     version, linked_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) {conflict}"
                ))
                .bind(entry.user.as_str())
                .bind(provider.as_str())
                .bind(*subject)
                .bind("")
                .bind(refresh_key)
                .bind(refresh)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                stored += inserted.rows_affected() as usize;
            }
        }
        tx.commit().await?;
        Ok(stored)
    }
}
