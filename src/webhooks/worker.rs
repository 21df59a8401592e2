//! The inbox worker: applies accepted events after their webhook was answered, in order per provider, user and level
//! (an older event is stale), confirmed first where the provider's events carry no time, and publishes each change in
//! the same step. It drains what is due at start, is woken per event, and polls. See ARCHITECTURE.md, `src/webhooks/`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::inbox::{status, Claimed, Inbox};
use crate::directory::{Directory, DirectoryError};
use crate::domain::events::{ProviderEvent, Reported, VerificationEvent};
use crate::providers::connector::{Confirmed, WebhookReader};
use crate::providers::{ProviderError, ProviderSet};
use crate::store::changes::{Change, Changes};
use crate::store::StoreError;

/// Events claimed at once.
const BATCH: i64 = 32;
/// How long a claim holds before another replica may take the event.
const LEASE: Duration = Duration::from_secs(60);
/// Finished events are kept this long to recognise redeliveries; one that is still the newest applied for its user
/// is kept as long as that stays so ([`Inbox::purge`]).
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often finished events are purged, by the inbox's clock.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Why one event could not be processed now (it is retried later).
#[derive(Debug, thiserror::Error)]
enum ProcessError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Directory(#[from] DirectoryError),
    #[error("re-reading the provider: {0}")]
    Provider(#[from] ProviderError),
}

impl From<sqlx::Error> for ProcessError {
    fn from(e: sqlx::Error) -> Self {
        ProcessError::Store(StoreError::Sql(e))
    }
}

/// What the worker needs.
#[derive(Clone)]
pub struct Worker {
    pub inbox: Inbox,
    pub changes: Changes,
    pub directory: Arc<dyn Directory>,
    /// Each provider's reader names the user an event is about and confirms what it reports.
    pub providers: ProviderSet,
    pub wake: Arc<Notify>,
    pub poll_interval: Duration,
    /// Applied events are recorded: the webhook that caused a write.
    pub audit: crate::audit::Audit,
}

impl Worker {
    /// Runs until aborted.
    pub fn spawn(self) -> tokio::task::AbortHandle {
        tokio::spawn(async move { self.run().await }).abort_handle()
    }

    async fn run(self) {
        let mut last_purge = None::<i64>;
        loop {
            self.drain().await;
            let now = self.inbox.now();
            if last_purge.is_none_or(|at| now - at > PURGE_EVERY.as_millis() as i64) {
                let before = now - KEEP.as_millis() as i64;
                match self.inbox.purge(before).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "purged finished webhook events"),
                    Err(error) => tracing::warn!(%error, "could not purge finished webhook events"),
                }
                last_purge = Some(now);
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Processes every due event, batch after batch.
    pub async fn drain(&self) {
        loop {
            let claimed = match self.inbox.claim(BATCH, LEASE).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "could not claim webhook events; retrying later");
                    return;
                }
            };
            if claimed.is_empty() {
                return;
            }
            for event in &claimed {
                self.process_one(event).await;
            }
        }
    }

    async fn process_one(&self, claimed: &Claimed) {
        let event: ProviderEvent = match serde_json::from_str(&claimed.event) {
            Ok(event) => event,
            Err(_) => {
                tracing::error!(inbox_id = claimed.id, "an inbox event cannot be read; marked failed");
                if let Err(error) = self.inbox.fail(claimed).await {
                    tracing::warn!(%error, "could not mark an inbox event failed");
                }
                return;
            }
        };
        let provider = event.provider.label();
        // The event's type is bounded (`domain::events::bounded`) and names a kind of event, never a person.
        let span = tracing::info_span!(
            "webhook.process",
            otel.name = %format_args!("webhook {provider}"),
            provider,
            event_type = %event.event_type,
            attempt = claimed.attempts,
            outcome = tracing::field::Empty,
        );
        let processed = tracing::Instrument::instrument(self.process(claimed, &event), span.clone()).await;
        let result = match &processed {
            Ok(outcome) => outcome,
            Err(_) if claimed.attempts >= super::inbox::MAX_ATTEMPTS => "given_up",
            Err(_) => "retry",
        };
        span.record("outcome", result);
        metrics::counter!(crate::telemetry::metrics::WEBHOOK_EVENTS, "provider" => provider, "result" => result)
            .increment(1);
        let logged = async {
            match processed {
                Ok(outcome) => tracing::info!(
                    provider = event.provider.as_str(),
                    event_type = %event.event_type,
                    outcome,
                    "webhook event processed"
                ),
                Err(error) => {
                    tracing::warn!(provider = event.provider.as_str(), attempt = claimed.attempts, %error, "webhook event failed; will retry");
                    if let Err(error) = self.inbox.retry_later(claimed).await {
                        tracing::warn!(%error, "could not schedule a webhook event's retry");
                    }
                    if claimed.attempts >= super::inbox::MAX_ATTEMPTS {
                        tracing::error!(
                            provider = event.provider.as_str(),
                            inbox_id = claimed.id,
                            "webhook event given up"
                        );
                    }
                }
            }
        };
        tracing::Instrument::instrument(logged, span).await;
    }

    /// The reader of the provider an event came from; `None` when that provider is no longer configured here.
    fn reader(&self, event: &ProviderEvent) -> Option<&dyn WebhookReader> {
        self.providers.get(event.provider)?.webhooks()
    }

    /// Applies one event; the outcome recorded.
    async fn process(&self, claimed: &Claimed, event: &ProviderEvent) -> Result<&'static str, ProcessError> {
        let store = self.inbox.store();
        let reader = self.reader(event);
        let user_id = match reader {
            Some(reader) => reader.user_of(&event.subject, self.directory.as_ref()).await?,
            None => None,
        };
        let (Some(reader), Some(user_id)) = (reader, user_id) else {
            let mut tx = store.begin_write().await?;
            if self.inbox.finish(&mut tx, claimed, status::UNMATCHED).await? {
                tx.commit().await?;
            }
            return Ok(status::UNMATCHED);
        };
        if let Some(reference) = reader.reference_to_keep(&event.subject) {
            // Kept before the change is announced: the user's next read finds what the event is about.
            self.directory.add_reference(&user_id, event.provider, &reference).await?;
        }
        let Confirmed { reported, occurred_at } = reader.confirm(&event.reported, event.occurred_at).await?;
        let mut tx = store.begin_write().await?;
        // Newer wins; of two at the same time, the greater event key, so arrival order never decides and a replay of
        // the applied event is stale. An empty key (set before keys were kept) is never replaced by an equal time.
        let change = match &reported {
            Reported::UserChanged => {
                let applied: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO user_change_versions (provider, user_id, occurred_at, event_key, inbox_id) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider, user_id) DO UPDATE SET \
                     occurred_at = excluded.occurred_at, event_key = excluded.event_key, inbox_id = excluded.inbox_id \
                     WHERE user_change_versions.occurred_at < excluded.occurred_at \
                     OR (user_change_versions.occurred_at = excluded.occurred_at \
                     AND user_change_versions.event_key <> '' AND user_change_versions.event_key < excluded.event_key) \
                     RETURNING inbox_id",
                )
                .bind(event.provider.as_str())
                .bind(user_id.as_str())
                .bind(occurred_at)
                .bind(&claimed.key)
                .bind(claimed.id)
                .fetch_optional(&mut *tx)
                .await?;
                if applied.is_none() {
                    if self.inbox.finish(&mut tx, claimed, status::STALE).await? {
                        tx.commit().await?;
                    }
                    return Ok(status::STALE);
                }
                Change::UserChanged { user_id }
            }
            Reported::Verification { level, provider_status, state, ordering_key } => {
                let applied: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO verification_versions (provider, user_id, ordering_key, occurred_at, event_key, \
                     state, provider_status, inbox_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (provider, user_id, ordering_key) DO UPDATE SET occurred_at = excluded.occurred_at, \
                     event_key = excluded.event_key, state = excluded.state, \
                     provider_status = excluded.provider_status, inbox_id = excluded.inbox_id \
                     WHERE verification_versions.occurred_at < excluded.occurred_at \
                     OR (verification_versions.occurred_at = excluded.occurred_at \
                     AND verification_versions.event_key <> '' AND verification_versions.event_key < excluded.event_key) \
                     RETURNING inbox_id",
                )
                .bind(event.provider.as_str())
                .bind(user_id.as_str())
                .bind(ordering_key)
                .bind(occurred_at)
                .bind(&claimed.key)
                .bind(serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
                .bind(provider_status)
                .bind(claimed.id)
                .fetch_optional(&mut *tx)
                .await?;
                if applied.is_none() {
                    if self.inbox.finish(&mut tx, claimed, status::STALE).await? {
                        tx.commit().await?;
                    }
                    return Ok(status::STALE);
                }
                let level_items = self.providers.get(event.provider).map(|c| c.items(level)).unwrap_or_default();
                Change::Verification {
                    event: VerificationEvent {
                        user_id,
                        kind: reader.kind(),
                        provider: event.provider,
                        level: level.clone(),
                        level_items,
                        state: *state,
                        provider_status: provider_status.clone(),
                        occurred_at,
                    },
                }
            }
        };
        if !self.inbox.finish(&mut tx, claimed, status::PROCESSED).await? {
            // Another worker took the event after this claim's lease ran out: it applies it.
            return Ok("taken over");
        }
        self.changes.commit_and_publish(tx, &change).await?;
        self.record(event, &change, claimed.id).await;
        Ok(status::PROCESSED)
    }

    /// Records the applied event in the audit trail: a provider caused a write about a user. Not recording it does
    /// not undo it: the failure is logged.
    async fn record(&self, event: &ProviderEvent, change: &Change, inbox_id: i64) {
        let entry = crate::audit::Entry {
            at: crate::clock::unix_millis(),
            request_id: format!("webhook-{inbox_id}"),
            trace_id: None,
            caller: crate::audit::Caller {
                kind: "provider".into(),
                id: event.provider.as_str().into(),
                issuer: String::new(),
            },
            subjects: change.user_id().map(|u| u.to_string()).into_iter().collect(),
            fields: Vec::new(),
            operation_name: None,
            operation_type: "webhook".into(),
            document_hash: String::new(),
            purpose: None,
            cause: Some(format!("webhook {} {}", event.provider.as_str(), event.event_type)),
        };
        if let Err(error) = self.audit.record(entry).await {
            tracing::error!(%error, provider = event.provider.as_str(), "an applied webhook event was not recorded");
        }
    }
}
