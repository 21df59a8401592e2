//! The inbox table: provider events accepted and waiting, or done. A row is inserted before the 2xx, keyed by provider
//! and event key (event id or body digest), so any replica recognises a redelivery. Workers claim rows with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL) that runs out if its replica dies; finishing needs the claim still held.
//! A row lives as long as the ordering state it set (see [`Inbox::purge`]), so a replay of the latest delivery of a
//! user's verification is recognised at any age.

use std::time::Duration;

use sqlx::{Any, Row, Transaction};

use crate::clock::Clock;
use crate::domain::events::ProviderEvent;
use crate::store::{Engine, Store, StoreError};

/// Where an inbox row stands.
pub mod status {
    /// Accepted, not processed yet (or waiting for a retry).
    pub const PENDING: &str = "pending";
    /// Applied: caches invalidated, subscribers told.
    pub const PROCESSED: &str = "processed";
    /// Older than what was already applied for that user and level: acknowledged, not applied.
    pub const STALE: &str = "stale";
    /// About no user the gateway can name.
    pub const UNMATCHED: &str = "unmatched";
    /// Failed every attempt (or unreadable); kept for an operator.
    pub const FAILED: &str = "failed";
}

/// What inserting an event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A new row.
    New,
    /// The same event was accepted before (a redelivery).
    Duplicate,
}

/// A row a worker claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    /// The event key (`id:<provider's id>` or `sha256:<body digest>`): it breaks ties between equal event times.
    pub key: String,
    /// The claim's attempt number: finishing needs it to be unchanged.
    pub attempts: i64,
    /// The stored event (JSON of [`ProviderEvent`]).
    pub event: String,
}

/// Attempts before an event is given up as failed: with the backoff below, about an hour of retries.
pub const MAX_ATTEMPTS: i64 = 15;

#[derive(Clone)]
pub struct Inbox {
    store: Store,
    clock: Clock,
}

impl Inbox {
    pub fn new(store: Store, clock: Clock) -> Self {
        Inbox { store, clock }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The inbox's time, unix milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.unix_millis()
    }

    /// Stores an accepted event under `key`, due at once.
    #[tracing::instrument(name = "store.inbox.accept", skip_all)]
    pub async fn accept(&self, key: &str, event: &ProviderEvent) -> Result<Accepted, StoreError> {
        let now = self.now();
        let json = serde_json::to_string(event).expect("an event serialises");
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO webhook_inbox (provider, event_key, event_type, event, received_at, status, attempts, \
             next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $5) \
             ON CONFLICT (provider, event_key) DO NOTHING RETURNING id",
        )
        .bind(event.provider.as_str())
        .bind(key)
        .bind(&event.event_type)
        .bind(json)
        .bind(now)
        .bind(status::PENDING)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(if inserted.is_some() { Accepted::New } else { Accepted::Duplicate })
    }

    /// Claims up to `limit` due events for `lease`, oldest first.
    #[tracing::instrument(name = "store.inbox.claim", skip_all)]
    pub async fn claim(&self, limit: i64, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        let now = self.now();
        let skip_locked = match self.store.engine() {
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_inbox SET claimed_until = $1, attempts = attempts + 1 WHERE id IN (\
             SELECT id FROM webhook_inbox WHERE status = $2 AND next_attempt_at <= $3 \
             AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY id LIMIT $4{skip_locked}) \
             RETURNING id, event_key, attempts, event"
        );
        let mut tx = self.store.begin_write().await?;
        let rows = sqlx::query(&sql)
            .bind(now + lease.as_millis() as i64)
            .bind(status::PENDING)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut claimed: Vec<Claimed> = rows
            .iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.try_get("id")?,
                    key: row.try_get("event_key")?,
                    attempts: row.try_get("attempts")?,
                    event: row.try_get("event")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Marks a claimed event done with `outcome` inside `tx`; `false` when the claim was lost (the lease ran out and
    /// another worker took the event), and then nothing of `tx` must be committed.
    #[tracing::instrument(name = "store.inbox.finish", skip_all)]
    pub async fn finish(
        &self,
        tx: &mut Transaction<'static, Any>,
        claimed: &Claimed,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_inbox SET status = $1, processed_at = $2, claimed_until = NULL \
             WHERE id = $3 AND status = $4 AND attempts = $5",
        )
        .bind(outcome)
        .bind(self.now())
        .bind(claimed.id)
        .bind(status::PENDING)
        .bind(claimed.attempts)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a failed attempt back, due again after a backoff (1 s doubling, at most 5 minutes); after
    /// [`MAX_ATTEMPTS`] the event is marked failed.
    #[tracing::instrument(name = "store.inbox.retry_later", skip_all)]
    pub async fn retry_later(&self, claimed: &Claimed) -> Result<(), StoreError> {
        let backoff_ms = 1000i64 << claimed.attempts.clamp(0, 9);
        let (next_status, due) = if claimed.attempts >= MAX_ATTEMPTS {
            (status::FAILED, 0)
        } else {
            (status::PENDING, self.now() + backoff_ms.min(300_000))
        };
        sqlx::query(
            "UPDATE webhook_inbox SET status = $1, next_attempt_at = $2, claimed_until = NULL \
             WHERE id = $3 AND attempts = $4",
        )
        .bind(next_status)
        .bind(due)
        .bind(claimed.id)
        .bind(claimed.attempts)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Marks an event that cannot be read as failed (a bug or a tampered row), outside any claim check.
    #[tracing::instrument(name = "store.inbox.fail", skip_all)]
    pub async fn fail(&self, claimed: &Claimed) -> Result<(), StoreError> {
        sqlx::query("UPDATE webhook_inbox SET status = $1, claimed_until = NULL WHERE id = $2")
            .bind(status::FAILED)
            .bind(claimed.id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Deletes finished events received before `before` (unix ms), except one an ordering state (`*_versions`) still
    /// names: a key lives as long as the state it protects, and a superseded event's replay is stale by that state.
    /// Pending and failed events stay (failed ones for an operator to look at).
    #[tracing::instrument(name = "store.inbox.purge", skip_all)]
    pub async fn purge(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webhook_inbox WHERE status NOT IN ($1, $2) AND received_at < $3 \
             AND NOT EXISTS (SELECT 1 FROM verification_versions v WHERE v.inbox_id = webhook_inbox.id) \
             AND NOT EXISTS (SELECT 1 FROM user_change_versions u WHERE u.inbox_id = webhook_inbox.id)",
        )
        .bind(status::PENDING)
        .bind(status::FAILED)
        .bind(before)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
