//! The inbox worker: applies accepted events after their webhook was answered.
//!
//! For each claimed event: name the gateway user through the directory; for a verification, keep the order (an event
//! older than the newest one applied for that provider, user and level is acknowledged as stale and changes nothing).
//! ident's events carry no time of their own (only the signature's, new at every retry), so an ident event is not
//! believed as it stands: the worker reads the application again and announces what ident says now;
//! then mark the event processed and publish the change in one step (`Changes::commit_and_publish`). Every replica
//! applies a published change to its caches (the user's entries dropped, the user marked stale in the bulk answers)
//! before telling its subscribers, so a subscriber's next query sees the new state.
//!
//! The worker starts by draining what is due (events accepted before a restart and never processed), is woken by
//! this replica's endpoint after each accepted event, and polls for events accepted by replicas without a worker or
//! due for a retry.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::inbox::{status, Claimed, Inbox};
use crate::config::LevelSettings;
use crate::directory::{Directory, DirectoryError, Reference};
use crate::domain::events::{ProviderEvent, Reported, Subject, VerificationEvent};
use crate::domain::{level_items, Provider};
use crate::providers::ident::IdentClient;
use crate::providers::sila::SilaClient;
use crate::providers::ProviderError;
use crate::store::changes::{Change, Changes};
use crate::store::StoreError;

/// Events claimed at once.
const BATCH: i64 = 32;
/// How long a claim holds before another replica may take the event.
const LEASE: Duration = Duration::from_secs(60);
/// Finished events are kept this long to recognise redeliveries.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

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
    /// To read the users of template-made Sila handles.
    pub sila: Option<Arc<SilaClient>>,
    /// To read an application again when ident reports it changed.
    pub ident: Option<Arc<IdentClient>>,
    pub levels: Arc<LevelSettings>,
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
        let mut last_purge = None::<tokio::time::Instant>;
        loop {
            self.drain().await;
            if last_purge.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                let before = crate::clock::unix_millis() - KEEP.as_millis() as i64;
                match self.inbox.purge(before).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::info!(purged, "purged finished webhook events"),
                    Err(error) => tracing::warn!(%error, "could not purge finished webhook events"),
                }
                last_purge = Some(tokio::time::Instant::now());
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

    /// Applies one event; the outcome recorded.
    async fn process(&self, claimed: &Claimed, event: &ProviderEvent) -> Result<&'static str, ProcessError> {
        let store = self.inbox.store();
        let Some(user_id) = self.user_of(&event.subject).await? else {
            let mut tx = store.begin_write().await?;
            if self.inbox.finish(&mut tx, claimed, status::UNMATCHED).await? {
                tx.commit().await?;
            }
            return Ok(status::UNMATCHED);
        };
        let reported = self.current(event).await?;
        let occurred_at =
            if event.provider == Provider::Ident { crate::clock::unix_millis() } else { event.occurred_at };
        let mut tx = store.begin_write().await?;
        let change = match &reported {
            Reported::UserChanged => Change::UserChanged { user_id },
            Reported::Verification { level, provider_status, state, ordering_key } => {
                let applied: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO verification_versions (provider, user_id, ordering_key, occurred_at, state, \
                     provider_status, inbox_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (provider, user_id, ordering_key) DO UPDATE SET occurred_at = excluded.occurred_at, \
                     state = excluded.state, provider_status = excluded.provider_status, inbox_id = excluded.inbox_id \
                     WHERE verification_versions.occurred_at <= excluded.occurred_at RETURNING inbox_id",
                )
                .bind(event.provider.as_str())
                .bind(&user_id)
                .bind(ordering_key)
                .bind(occurred_at)
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
                Change::Verification {
                    event: VerificationEvent {
                        user_id,
                        provider: event.provider,
                        level: level.clone(),
                        level_items: self.items_of(event.provider, level),
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
            subjects: change.user_id().map(str::to_owned).into_iter().collect(),
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

    /// What the event reports, as far as it can be believed: as it stands, except an ident application's, which is
    /// read again (an application ident no longer knows, or ident not configured here, only invalidates).
    async fn current(&self, event: &ProviderEvent) -> Result<Reported, ProcessError> {
        let (Provider::Ident, Reported::Verification { ordering_key: application, .. }) =
            (event.provider, &event.reported)
        else {
            return Ok(event.reported.clone());
        };
        let Some(ident) = &self.ident else { return Ok(Reported::UserChanged) };
        Ok(match ident.get(application).await? {
            Some(now) => {
                let case = now.as_case(&self.levels.ident);
                Reported::Verification {
                    level: case.level,
                    provider_status: case.provider_status,
                    state: case.state,
                    ordering_key: application.clone(),
                }
            }
            None => Reported::UserChanged,
        })
    }

    /// The gateway user an event is about: through the directory's stored references first, then the defaults by
    /// which the gateway finds users at each provider (Sumsub's `externalUserId` and ident's `user_id` are the
    /// gateway's user id; a Sila handle is made by the template).
    async fn user_of(&self, subject: &Subject) -> Result<Option<String>, DirectoryError> {
        let directory = self.directory.as_ref();
        Ok(match subject {
            Subject::FractalUid { uid } => directory.user_for_fractal_uid(uid).await?,
            // A default applies only to a user who has no stored reference of that kind: one whose queries read
            // another applicant or handle must not hear of this one.
            Subject::SumsubApplicant { applicant_id, external_user_id } => {
                match directory.user_for_reference(Reference::SumsubApplicant(applicant_id)).await? {
                    Some(user) => Some(user),
                    None => match external_user_id {
                        Some(user) if directory.references(user).await?.sumsub_applicant_id.is_none() => {
                            Some(user.clone())
                        }
                        _ => None,
                    },
                }
            }
            Subject::SilaHandle { handle } => {
                match directory.user_for_reference(Reference::SilaHandle(handle)).await? {
                    Some(user) => Some(user),
                    None => match self.sila.as_ref().and_then(|sila| sila.user_of_handle(handle)) {
                        Some(user) if directory.references(&user).await?.sila_user_handle.is_none() => Some(user),
                        _ => None,
                    },
                }
            }
            Subject::IdentUser { ident_user_id } => match directory.user_for_ident(ident_user_id).await? {
                Some(user) => Some(user),
                // A user the directory does not know is found by default; a known one whose ident id is another
                // is not this ident user.
                None if !directory.knows(ident_user_id).await? => Some(ident_user_id.clone()),
                None => None,
            },
        })
    }

    /// The Fractal-style items of a provider's level, as the scope rules read them.
    fn items_of(&self, provider: Provider, level: &str) -> Vec<String> {
        match provider {
            Provider::Fractal => level_items(level),
            Provider::Sumsub => self.levels.sumsub.items(level),
            Provider::Sila => self.levels.sila.items(level),
            Provider::Ident => self.levels.ident.items(level),
        }
    }
}
