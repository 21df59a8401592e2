//! The directory in the store, for both engines. Fractal tokens are sealed (`store/crypto.rs`) before they are
//! written and opened when read; nothing else in the directory is secret.
//!
//! Holding a link for a refresh differs by engine: PostgreSQL locks the row (`SELECT ... FOR UPDATE` in a
//! transaction that the commit ends), which holds across every replica; SQLite serves one process, where a per-user
//! lock in memory is enough and no transaction stays open while Fractal answers (an in-memory SQLite has one
//! connection, which a long transaction would take from every other request).

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::ProviderRefs;
use super::{
    Consumed, Directory, DirectoryError, FractalLink, FractalRefresh, FractalTokens, LinkState, Linked, Reference,
};
use crate::secret::Secret;
use crate::store::crypto::TokenCipher;
use crate::store::{Engine, Store};

/// Stripes of the SQLite per-user refresh lock: a lock per stripe, not per user.
const STRIPES: usize = 64;

/// The directory on the store.
pub struct SqlDirectory {
    store: Store,
    cipher: Arc<TokenCipher>,
    stripes: Vec<Arc<Mutex<()>>>,
    /// PostgreSQL refreshes hold a pooled connection (and its row lock) across the call to Fractal: at most half
    /// the pool does, so reads and webhooks always find a connection.
    refreshes: Arc<tokio::sync::Semaphore>,
    hasher: std::collections::hash_map::RandomState,
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn time(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64)
}

/// The context sealed values of a link are bound to.
fn context(user_id: &str, column: &str) -> String {
    format!("fractal_links/{user_id}/{column}")
}

const LINK_COLUMNS: &str =
    "fractal_uid, scopes, access_key_id, access_sealed, access_renew_at, refresh_key_id, refresh_sealed";

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

    fn open(&self, user_id: &str, row: &AnyRow) -> Result<FractalLink, DirectoryError> {
        let corrupt = |e: crate::store::crypto::CryptoError| DirectoryError(e.to_string());
        let access_key: Option<String> = row.try_get("access_key_id")?;
        let access_token: Option<Vec<u8>> = row.try_get("access_sealed")?;
        let access_token = match (access_key, access_token) {
            (Some(key), Some(sealed)) => {
                Some(self.cipher.open(&key, &sealed, &context(user_id, "access")).map_err(corrupt)?)
            }
            _ => None,
        };
        let refresh_key: String = row.try_get("refresh_key_id")?;
        let refresh_token: Vec<u8> = row.try_get("refresh_sealed")?;
        let refresh_token =
            self.cipher.open(&refresh_key, &refresh_token, &context(user_id, "refresh")).map_err(corrupt)?;
        Ok(FractalLink {
            uid: row.try_get("fractal_uid")?,
            scopes: row.try_get("scopes")?,
            tokens: FractalTokens {
                access_token,
                access_renew_at: row.try_get::<Option<i64>, _>("access_renew_at")?.map(time),
                refresh_token,
            },
        })
    }

    fn seal(&self, user_id: &str, tokens: &FractalTokens) -> Sealed {
        seal(&self.cipher, user_id, tokens)
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

fn seal(cipher: &TokenCipher, user_id: &str, tokens: &FractalTokens) -> Sealed {
    let access = tokens.access_token.as_ref().map(|t| cipher.seal(t, &context(user_id, "access")));
    let (refresh_key, refresh) = cipher.seal(&tokens.refresh_token, &context(user_id, "refresh"));
    let (access_key, access) = match access {
        Some((key, sealed)) => (Some(key), Some(sealed)),
        None => (None, None),
    };
    Sealed { access_key, access, renew_at: tokens.access_renew_at.map(millis), refresh_key, refresh }
}

/// Writes a refresh's new tokens (bumping the link's version).
async fn write_tokens(
    cipher: &TokenCipher,
    executor: &mut sqlx::AnyConnection,
    user_id: &str,
    tokens: &FractalTokens,
) -> Result<(), DirectoryError> {
    let Sealed { access_key, access, renew_at, refresh_key, refresh } = seal(cipher, user_id, tokens);
    let updated = sqlx::query(
        "UPDATE fractal_links SET access_key_id = $2, access_sealed = $3, access_renew_at = $4, refresh_key_id = $5, \
         refresh_sealed = $6, version = version + 1, updated_at = $7 WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(access_key)
    .bind(access)
    .bind(renew_at)
    .bind(refresh_key)
    .bind(refresh)
    .bind(crate::clock::unix_millis())
    .execute(executor)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DirectoryError("the Fractal link was removed during the refresh".into()));
    }
    Ok(())
}

/// A PostgreSQL refresh: the row stays locked until the transaction ends.
struct RowLockRefresh {
    cipher: Arc<TokenCipher>,
    user_id: String,
    link: FractalLink,
    tx: Transaction<'static, Any>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

#[async_trait::async_trait]
impl FractalRefresh for RowLockRefresh {
    fn link(&self) -> &FractalLink {
        &self.link
    }

    #[tracing::instrument(name = "store.directory.commit", skip_all)]
    async fn commit(mut self: Box<Self>, tokens: FractalTokens) -> Result<(), DirectoryError> {
        write_tokens(&self.cipher, &mut self.tx, &self.user_id, &tokens).await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// A SQLite refresh: the process-wide lock of the user's stripe is held until the commit.
struct StripeRefresh {
    store: Store,
    cipher: Arc<TokenCipher>,
    user_id: String,
    link: FractalLink,
    _held: OwnedMutexGuard<()>,
}

#[async_trait::async_trait]
impl FractalRefresh for StripeRefresh {
    fn link(&self) -> &FractalLink {
        &self.link
    }

    #[tracing::instrument(name = "store.directory.commit", skip_all)]
    async fn commit(self: Box<Self>, tokens: FractalTokens) -> Result<(), DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        write_tokens(&self.cipher, &mut tx, &self.user_id, &tokens).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Directory for SqlDirectory {
    #[tracing::instrument(name = "store.directory.knows", skip_all)]
    async fn knows(&self, user_id: &str) -> Result<bool, DirectoryError> {
        let row = sqlx::query("SELECT 1 FROM users WHERE user_id = $1").bind(user_id).fetch_optional(self.store.pool());
        Ok(row.await?.is_some())
    }

    #[tracing::instrument(name = "store.directory.references", skip_all)]
    async fn references(&self, user_id: &str) -> Result<ProviderRefs, DirectoryError> {
        let row =
            sqlx::query("SELECT sumsub_applicant_id, sila_user_handle, ident_user_id FROM users WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(self.store.pool())
                .await?;
        let Some(row) = row else { return Ok(ProviderRefs::default()) };
        Ok(ProviderRefs {
            sumsub_applicant_id: row.try_get("sumsub_applicant_id")?,
            sila_user_handle: row.try_get("sila_user_handle")?,
            ident_user_id: row.try_get("ident_user_id")?,
        })
    }

    #[tracing::instrument(name = "store.directory.fractal_link", skip_all)]
    async fn fractal_link(&self, user_id: &str) -> Result<Option<FractalLink>, DirectoryError> {
        let row = sqlx::query(&format!("SELECT {LINK_COLUMNS} FROM fractal_links WHERE user_id = $1"))
            .bind(user_id)
            .fetch_optional(self.store.pool())
            .await?;
        row.map(|row| self.open(user_id, &row)).transpose()
    }

    #[tracing::instrument(name = "store.directory.fractal_uid", skip_all)]
    async fn fractal_uid(&self, user_id: &str) -> Result<Option<String>, DirectoryError> {
        let uid = sqlx::query_scalar("SELECT fractal_uid FROM fractal_links WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(uid)
    }

    #[tracing::instrument(name = "store.directory.begin_fractal_refresh", skip_all)]
    async fn begin_fractal_refresh(&self, user_id: &str) -> Result<Option<Box<dyn FractalRefresh>>, DirectoryError> {
        match self.store.engine() {
            Engine::Postgres => {
                let permit = self.refreshes.clone().acquire_owned().await.expect("the semaphore is never closed");
                let mut tx = self.store.pool().begin().await?;
                // A replica that waits for another's refresh gives up rather than hold its connection for long, and a
                // transaction left open (a process frozen mid-refresh) is ended by the server.
                sqlx::query("SET LOCAL lock_timeout = '10s'").execute(&mut *tx).await?;
                sqlx::query("SET LOCAL idle_in_transaction_session_timeout = '60s'").execute(&mut *tx).await?;
                let row =
                    sqlx::query(&format!("SELECT {LINK_COLUMNS} FROM fractal_links WHERE user_id = $1 FOR UPDATE"))
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(row) = row else { return Ok(None) };
                let link = self.open(user_id, &row)?;
                let cipher = self.cipher.clone();
                Ok(Some(Box::new(RowLockRefresh { cipher, user_id: user_id.to_owned(), link, tx, _permit: permit })))
            }
            Engine::Sqlite => {
                let stripe = (self.hasher.hash_one(user_id) % STRIPES as u64) as usize;
                let held = self.stripes[stripe].clone().lock_owned().await;
                let Some(link) = self.fractal_link(user_id).await? else { return Ok(None) };
                let (store, cipher) = (self.store.clone(), self.cipher.clone());
                Ok(Some(Box::new(StripeRefresh { store, cipher, user_id: user_id.to_owned(), link, _held: held })))
            }
        }
    }

    #[tracing::instrument(name = "store.directory.user_for_ident", skip_all)]
    async fn user_for_ident(&self, ident_user_id: &str) -> Result<Option<String>, DirectoryError> {
        let claimed: Option<String> = sqlx::query_scalar("SELECT user_id FROM users WHERE ident_user_id = $1 LIMIT 1")
            .bind(ident_user_id)
            .fetch_optional(self.store.pool())
            .await?;
        if claimed.is_some() {
            return Ok(claimed);
        }
        let default = sqlx::query("SELECT 1 FROM users WHERE user_id = $1 AND ident_user_id IS NULL")
            .bind(ident_user_id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(default.map(|_| ident_user_id.to_owned()))
    }

    #[tracing::instrument(name = "store.directory.user_for_fractal_uid", skip_all)]
    async fn user_for_fractal_uid(&self, uid: &str) -> Result<Option<String>, DirectoryError> {
        let user = sqlx::query_scalar("SELECT user_id FROM fractal_links WHERE fractal_uid = $1")
            .bind(uid)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(user)
    }

    #[tracing::instrument(name = "store.directory.user_for_reference", skip_all)]
    async fn user_for_reference(&self, reference: Reference<'_>) -> Result<Option<String>, DirectoryError> {
        let (sql, value) = match reference {
            Reference::SumsubApplicant(id) => ("SELECT user_id FROM users WHERE sumsub_applicant_id = $1 LIMIT 1", id),
            Reference::SilaHandle(handle) => ("SELECT user_id FROM users WHERE sila_user_handle = $1 LIMIT 1", handle),
        };
        Ok(sqlx::query_scalar(sql).bind(value).fetch_optional(self.store.pool()).await?)
    }

    #[tracing::instrument(name = "store.directory.register", skip_all)]
    async fn register(&self, user_id: &str, refs: &ProviderRefs) -> Result<(), DirectoryError> {
        sqlx::query(
            "INSERT INTO users (user_id, sumsub_applicant_id, sila_user_handle, ident_user_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET \
             sumsub_applicant_id = excluded.sumsub_applicant_id, sila_user_handle = excluded.sila_user_handle, \
             ident_user_id = excluded.ident_user_id",
        )
        .bind(user_id)
        .bind(refs.sumsub_applicant_id.clone())
        .bind(refs.sila_user_handle.clone())
        .bind(refs.ident_user_id.clone())
        .bind(crate::clock::unix_millis())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.directory.link_fractal", skip_all)]
    async fn link_fractal(&self, user_id: &str, link: &FractalLink) -> Result<Linked, DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        let owner: Option<String> = sqlx::query_scalar("SELECT user_id FROM fractal_links WHERE fractal_uid = $1")
            .bind(&link.uid)
            .fetch_optional(&mut *tx)
            .await?;
        if owner.is_some_and(|owner| owner != user_id) {
            return Ok(Linked::UidTaken);
        }
        let now = crate::clock::unix_millis();
        sqlx::query("INSERT INTO users (user_id, created_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING")
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let Sealed { access_key, access, renew_at, refresh_key, refresh } = self.seal(user_id, &link.tokens);
        sqlx::query(
            "INSERT INTO fractal_links (user_id, fractal_uid, scopes, access_key_id, access_sealed, access_renew_at, \
             refresh_key_id, refresh_sealed, version, linked_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9) \
             ON CONFLICT (user_id) DO UPDATE SET fractal_uid = excluded.fractal_uid, scopes = excluded.scopes, \
             access_key_id = excluded.access_key_id, access_sealed = excluded.access_sealed, \
             access_renew_at = excluded.access_renew_at, refresh_key_id = excluded.refresh_key_id, \
             refresh_sealed = excluded.refresh_sealed, version = fractal_links.version + 1, linked_at = excluded.linked_at, \
             updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(&link.uid)
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

    #[tracing::instrument(name = "store.directory.unlink_fractal", skip_all)]
    async fn unlink_fractal(&self, user_id: &str) -> Result<bool, DirectoryError> {
        let deleted = sqlx::query("DELETE FROM fractal_links WHERE user_id = $1")
            .bind(user_id)
            .execute(self.store.pool())
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    #[tracing::instrument(name = "store.directory.save_link_state", skip_all)]
    async fn save_link_state(&self, state: &LinkState) -> Result<(), DirectoryError> {
        // States a day past their expiry are of no use, even to tell a replay: forget them as new ones come.
        let long_gone = crate::clock::unix_millis() - 24 * 3600 * 1000;
        sqlx::query("DELETE FROM link_states WHERE expires_at < $1").bind(long_gone).execute(self.store.pool()).await?;
        sqlx::query("INSERT INTO link_states (nonce, user_id, redirect_uri, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&state.nonce)
            .bind(&state.user_id)
            .bind(&state.redirect_uri)
            .bind(state.expires_at)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.directory.consume_link_state", skip_all)]
    async fn consume_link_state(&self, nonce: &str) -> Result<Consumed, DirectoryError> {
        let row = sqlx::query(
            "UPDATE link_states SET used_at = $2 WHERE nonce = $1 AND used_at IS NULL \
             RETURNING user_id, redirect_uri, expires_at",
        )
        .bind(nonce)
        .bind(crate::clock::unix_millis())
        .fetch_optional(self.store.pool())
        .await?;
        if let Some(row) = row {
            return Ok(Consumed::Fresh(LinkState {
                nonce: nonce.to_owned(),
                user_id: row.try_get("user_id")?,
                redirect_uri: row.try_get("redirect_uri")?,
                expires_at: row.try_get("expires_at")?,
            }));
        }
        let known =
            sqlx::query("SELECT 1 FROM link_states WHERE nonce = $1").bind(nonce).fetch_optional(self.store.pool());
        Ok(if known.await?.is_some() { Consumed::AlreadyUsed } else { Consumed::Unknown })
    }
}

/// What a directory import holds for one user (see `import.rs`).
pub(crate) struct ImportLink<'a> {
    pub uid: &'a str,
    pub refresh_token: &'a Secret,
}

impl SqlDirectory {
    /// Adds users and their links in one transaction. A user already known keeps their references unless the entry
    /// names some; a link already stored is kept (its refresh token may have rotated since the file was written)
    /// unless `replace_links`. How many links were stored.
    #[tracing::instrument(name = "store.directory.import", skip_all)]
    pub(crate) async fn import(
        &self,
        entries: &[(&str, &ProviderRefs, Option<ImportLink<'_>>)],
        replace_links: bool,
    ) -> Result<usize, DirectoryError> {
        let mut tx = self.store.begin_write().await?;
        let now = crate::clock::unix_millis();
        let mut links = 0;
        for (user_id, refs, link) in entries {
            sqlx::query(
                "INSERT INTO users (user_id, sumsub_applicant_id, sila_user_handle, ident_user_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET \
                 sumsub_applicant_id = COALESCE(excluded.sumsub_applicant_id, users.sumsub_applicant_id), \
                 sila_user_handle = COALESCE(excluded.sila_user_handle, users.sila_user_handle), \
                 ident_user_id = COALESCE(excluded.ident_user_id, users.ident_user_id)",
            )
            .bind(*user_id)
            .bind(refs.sumsub_applicant_id.clone())
            .bind(refs.sila_user_handle.clone())
            .bind(refs.ident_user_id.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let Some(link) = link else { continue };
            let tokens =
                FractalTokens { access_token: None, access_renew_at: None, refresh_token: link.refresh_token.clone() };
            let Sealed { refresh_key, refresh, .. } = self.seal(user_id, &tokens);
            let conflict = if replace_links {
                "ON CONFLICT (user_id) DO UPDATE SET fractal_uid = excluded.fractal_uid, \
                 access_key_id = NULL, access_sealed = NULL, access_renew_at = NULL, \
                 refresh_key_id = excluded.refresh_key_id, \
                 refresh_sealed = excluded.refresh_sealed, version = fractal_links.version + 1, updated_at = excluded.updated_at"
            } else {
                "ON CONFLICT (user_id) DO NOTHING"
            };
            let stored = sqlx::query(&format!(
                "INSERT INTO fractal_links (user_id, fractal_uid, scopes, refresh_key_id, refresh_sealed, version, \
                 linked_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6) {conflict}"
            ))
            .bind(*user_id)
            .bind(link.uid)
            .bind("")
            .bind(refresh_key)
            .bind(refresh)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            links += stored.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(links)
    }
}
