//! The change channel: what one replica learns (a mutation, an unlink, a webhook) reaches every replica through
//! [`Changes::subscribe`]: a `pg_notify` on commit with PostgreSQL (no extra server), an in-process broadcast with
//! SQLite. A listener that lost its connection reports [`Change::Resync`]: subscribers treat all they hold as stale.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};
use tokio::sync::broadcast;

use super::{Engine, Store, StoreError};
use crate::domain::events::VerificationEvent;
use crate::domain::UserId;

/// The PostgreSQL channel every replica listens on.
const CHANNEL: &str = "kyc_gateway_changes";
/// Buffered changes per subscriber; one that falls further behind is told to resync.
const BUFFER: usize = 4096;

/// Something that changed about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// What the gateway knows about this user changed (its links, references or provider data).
    UserChanged { user_id: UserId },
    /// A provider reported a new state of a user's verification (a webhook): the user's data changed, and
    /// subscribers who may see it are told.
    Verification { event: VerificationEvent },
    /// Changes may have been missed: everything cached is suspect.
    Resync,
}

impl Change {
    /// The user the change is about, if it is about one.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Change::UserChanged { user_id } => Some(user_id),
            Change::Verification { event } => Some(&event.user_id),
            Change::Resync => None,
        }
    }
}

/// Publishes changes and hands out subscriptions.
#[derive(Clone)]
pub struct Changes {
    local: broadcast::Sender<Change>,
    /// The store to notify through, with PostgreSQL.
    notify: Option<Store>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").field("cross_replica", &self.notify.is_some()).finish()
    }
}

impl Changes {
    /// The channel of `store`: in-process for SQLite; for PostgreSQL, a listener on its own connection feeds the
    /// local broadcast (the returned handle stops it).
    pub async fn start(store: &Store) -> Result<(Changes, Option<tokio::task::AbortHandle>), StoreError> {
        let (local, _) = broadcast::channel(BUFFER);
        match store.engine() {
            Engine::Sqlite => Ok((Changes { local, notify: None }, None)),
            Engine::Postgres => {
                let mut listener = sqlx::postgres::PgListener::connect(store.url().expose()).await?;
                listener.listen(CHANNEL).await?;
                let task = tokio::spawn(listen(listener, local.clone()));
                Ok((Changes { local, notify: Some(store.clone()) }, Some(task.abort_handle())))
            }
        }
    }

    /// Tells every replica (this one included).
    pub async fn publish(&self, change: &Change) -> Result<(), StoreError> {
        match &self.notify {
            None => {
                // No subscriber is no error: nothing to tell.
                let _ = self.local.send(change.clone());
                Ok(())
            }
            Some(store) => {
                let payload = serde_json::to_string(change).expect("a change serialises");
                sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(store.pool()).await?;
                Ok(())
            }
        }
    }

    /// Commits `tx` and tells every replica, as one step where the engine allows: with PostgreSQL the notification is
    /// part of the transaction (delivered exactly when it commits, never for a rolled-back one); with SQLite, one
    /// process, the broadcast follows the commit.
    pub async fn commit_and_publish(
        &self,
        mut tx: Transaction<'static, Any>,
        change: &Change,
    ) -> Result<(), StoreError> {
        match &self.notify {
            Some(_) => {
                let payload = serde_json::to_string(change).expect("a change serialises");
                sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            None => {
                tx.commit().await?;
                let _ = self.local.send(change.clone());
            }
        }
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.local.subscribe()
    }
}

/// Feeds PostgreSQL notifications to the local broadcast until aborted. `try_recv` answers `None` after the
/// connection was lost and re-established (notifications in between are gone): that is a resync.
async fn listen(mut listener: sqlx::postgres::PgListener, local: broadcast::Sender<Change>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match serde_json::from_str::<Change>(notification.payload()) {
                Ok(change) => {
                    let _ = local.send(change);
                }
                Err(_) => tracing::warn!("ignoring a change notification of an unknown shape"),
            },
            Ok(None) => {
                tracing::warn!("the change listener reconnected; changes may have been missed");
                let _ = local.send(Change::Resync);
            }
            Err(error) => {
                tracing::warn!(%error, "the change listener lost the database; retrying");
                let _ = local.send(Change::Resync);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
