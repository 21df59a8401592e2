//! Providers' webhooks: believe only genuine events, lose none that was accepted, apply each once and in order.
//!
//! `POST /webhooks/<provider>` (`server/webhooks.rs`) hands the raw body and the headers here. [`Webhooks::receive`]
//! checks the provider's signature over the raw body (`signature.rs`), reads the body with the provider's own reader
//! (`providers/<provider>/webhook.rs`), and stores the event in the inbox (`inbox.rs`) before the answer; the worker
//! (`worker.rs`) applies it after. A redelivery is recognised by the provider's event id, or by the body's digest
//! where the provider sends none.

pub mod inbox;
pub mod signature;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::WebhookSettings;
use crate::domain::events::{Incoming, MalformedEvent};
use crate::domain::Provider;
use crate::providers::{fractal, ident, sila, sumsub};
use crate::secret::Secret;
use crate::store::StoreError;
use inbox::{Accepted, Inbox};
use signature::SignatureError;

/// How long storing an event may take: inside every provider's delivery timeout (Sumsub and ident 5 s, Fractal 10 s),
/// so a slow database is a 503 the provider retries, not a timeout it may count as delivered.
const ACCEPT_DEADLINE: Duration = Duration::from_secs(4);

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

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Unavailable(e.to_string())
    }
}

/// The webhook endpoints' side: settings, the inbox, and the bell that wakes this replica's worker.
#[derive(Clone)]
pub struct Webhooks {
    settings: Arc<WebhookSettings>,
    inbox: Inbox,
    wake: Arc<Notify>,
}

impl Webhooks {
    pub fn new(settings: WebhookSettings, inbox: Inbox, wake: Arc<Notify>) -> Self {
        Webhooks { settings: Arc::new(settings), inbox, wake }
    }

    /// The largest body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.settings.max_body_bytes
    }

    fn secrets(&self, provider: Provider) -> &[Secret] {
        let s = &self.settings.secrets;
        match provider {
            Provider::Fractal => &s.fractal,
            Provider::Sumsub => &s.sumsub,
            Provider::Sila => &s.sila,
            Provider::Ident => &s.ident,
        }
    }

    /// Checks, reads and stores one delivery. `header` looks a request header up by name.
    pub async fn receive<'h>(
        &self,
        provider: Provider,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<Receipt, Refusal> {
        let secrets = self.secrets(provider);
        if secrets.is_empty() {
            return Err(Refusal::NotConfigured);
        }
        let now = crate::clock::unix_millis();
        let incoming = match provider {
            Provider::Fractal => {
                signature::fractal(secrets, header("x-fractal-signature"), body)?;
                fractal::webhook::parse(body, now)?
            }
            Provider::Sumsub => {
                signature::sumsub(secrets, header("x-payload-digest"), header("x-payload-digest-alg"), body)?;
                sumsub::webhook::parse(body, now)?
            }
            Provider::Sila => {
                signature::sila(secrets, header("sila-signature"), body)?;
                sila::webhook::parse(body, now)?
            }
            Provider::Ident => {
                let tolerance = self.settings.ident_tolerance.as_secs() as i64;
                let sent = signature::ident(secrets, header("x-request-signature"), body, now / 1000, tolerance)?;
                ident::webhook::parse(body, sent * 1000)?
            }
        };
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
