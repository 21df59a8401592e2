//! Providers' webhooks: believe only genuine events, lose none that was accepted, apply each once and in order.
//! [`Webhooks::receive`] has the provider's reader check the signature over the raw body and stores the event in the
//! inbox (`inbox.rs`) before answering; the worker (`worker.rs`) applies it after.

pub mod inbox;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::events::{Incoming, MalformedEvent, SignatureError, WebhookError};
use crate::domain::Provider;
use crate::providers::ProviderSet;
use crate::store::StoreError;
use inbox::{Accepted, Inbox};

/// How long storing an event may take: inside every provider's delivery timeout (the shortest documented is 5 s), so
/// a slow database is a 503 the provider retries, not a timeout it may count as delivered.
const ACCEPT_DEADLINE: Duration = Duration::from_secs(4);

/// The webhook endpoints (`POST /webhooks/<provider>`); each provider's signing secrets are in its own section.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The largest body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Whether this replica processes the inbox (every replica accepts events; off leaves the work to others).
    pub worker: bool,
    /// How often the worker looks for events accepted elsewhere or due for a retry.
    pub poll_interval: Duration,
    /// The inbox's clock: receipt times, retries and retention (tests move it by hand).
    pub clock: crate::clock::Clock,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            max_body_bytes: 256 * 1024,
            worker: true,
            poll_interval: Duration::from_secs(1),
            clock: crate::clock::Clock::system(),
        }
    }
}

/// What a webhook delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Stored; the worker applies it.
    Accepted,
    /// Stored before (a redelivery): acknowledged again, applied once.
    Duplicate,
    /// A type the gateway does not use.
    Ignored { event_type: String },
}

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("webhooks of this provider are not configured")]
    NotConfigured,
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Malformed(#[from] MalformedEvent),
    #[error("the event could not be stored: {0}")]
    Unavailable(String),
}

impl From<WebhookError> for Refusal {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Signature(e) => Refusal::Signature(e),
            WebhookError::Malformed(e) => Refusal::Malformed(e),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Unavailable(e.to_string())
    }
}

/// The webhook endpoints' side: settings, the providers' readers, the inbox, and the bell that wakes this replica's
/// worker.
#[derive(Clone)]
pub struct Webhooks {
    settings: Arc<WebhookSettings>,
    providers: ProviderSet,
    inbox: Inbox,
    wake: Arc<Notify>,
}

impl Webhooks {
    pub fn new(settings: WebhookSettings, providers: ProviderSet, inbox: Inbox, wake: Arc<Notify>) -> Self {
        Webhooks { settings: Arc::new(settings), providers, inbox, wake }
    }

    /// The largest body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.settings.max_body_bytes
    }

    /// Checks, reads and stores one delivery. `header` looks a request header up by name.
    pub async fn receive<'h>(
        &self,
        provider: Provider,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<Receipt, Refusal> {
        let reader = self.providers.get(provider).and_then(|c| c.webhooks()).filter(|r| r.configured());
        let Some(reader) = reader else { return Err(Refusal::NotConfigured) };
        let incoming = reader.read(&|name: &str| header(name).map(str::to_owned), body, self.inbox.now())?;
        let (id, event) = match incoming {
            Incoming::Ignored { event_type } => return Ok(Receipt::Ignored { event_type }),
            Incoming::Event { id, event } => (id, event),
        };
        let key = match id {
            Some(id) => format!("id:{id}"),
            None => format!("sha256:{}", crate::digest::sha256_hex(body)),
        };
        let accepted = tokio::time::timeout(ACCEPT_DEADLINE, self.inbox.accept(&key, &event))
            .await
            .map_err(|_| Refusal::Unavailable("the database did not answer in time".into()))??;
        Ok(match accepted {
            Accepted::New => {
                self.wake.notify_one();
                Receipt::Accepted
            }
            Accepted::Duplicate => Receipt::Duplicate,
        })
    }
}
