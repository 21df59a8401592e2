//! What providers tell the gateway on their own (webhooks), in the gateway's words: a delivery read into a
//! [`ProviderEvent`] (in the provider's terms, nothing personal, so it can sit in the inbox) and, once the provider has
//! named the gateway user, a [`VerificationEvent`].

use serde::{Deserialize, Serialize};

use super::{KycState, Provider, UserId};

/// What an event reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Reported {
    /// A verification moved: its level (the provider's word, or an application's type) and its new status.
    Verification {
        /// The provider's level (a level name, a flow, an application type).
        level: String,
        /// The provider's own status word.
        provider_status: String,
        /// The status in the gateway's words.
        state: KycState,
        /// What the ordering is kept per, beside the user and provider: the level, or an application's id.
        ordering_key: String,
    },
    /// Something else about the user changed (an email, a deleted applicant): what is cached about them is stale,
    /// and there is no state to announce.
    UserChanged,
}

/// One accepted provider event, as the inbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEvent {
    /// Which provider sent it.
    pub provider: Provider,
    /// The provider's event type (`applicantReviewed`, `kyc`, ...), for logs.
    pub event_type: String,
    /// Who it is about, in the provider's own terms: its reader wrote it and its reader reads it back.
    pub subject: serde_json::Value,
    /// What it reports.
    pub reported: Reported,
    /// When it happened at the provider, unix milliseconds: the order between events of one user and level.
    pub occurred_at: i64,
}

/// What a verification event is about: a verification case, or a KYC application (which `kycApplications`'
/// rules guard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A verification case.
    #[default]
    Case,
    /// A KYC application.
    Application,
}

/// A change of one user's verification at one provider, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationEvent {
    /// The gateway user.
    pub user_id: UserId,
    /// A case or an application.
    #[serde(default)]
    pub kind: EventKind,
    /// The provider that reported it.
    pub provider: Provider,
    /// The provider's level string.
    pub level: String,
    /// The items of the level (what the scope rules read).
    pub level_items: Vec<String>,
    /// Where it stands now.
    pub state: KycState,
    /// The provider's own status word.
    pub provider_status: String,
    /// When it happened at the provider, unix milliseconds.
    pub occurred_at: i64,
}

/// What a provider's webhook body says, once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An event the gateway acts on; `id` is the provider's own event id, where it has one (else the inbox
    /// recognises a redelivery by the body's digest).
    Event {
        /// The provider's event id.
        id: Option<String>,
        /// The event.
        event: ProviderEvent,
    },
    /// An event type the gateway does not use: acknowledged, logged by type, nothing else.
    Ignored {
        /// The provider's event type.
        event_type: String,
    },
}

/// Why a webhook delivery was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature is missing, malformed, wrong or stale.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The body is not what the provider documents.
    #[error("{0}")]
    Malformed(#[from] MalformedEvent),
}

/// Why a signature was refused. Nothing here is secret; the HTTP answer is a bare 401 anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header.
    #[error("the signature header is missing")]
    Missing,
    /// A header that is not the provider's format.
    #[error("the signature header is malformed")]
    Malformed,
    /// No configured secret signs this body so.
    #[error("the signature does not match")]
    Mismatch,
    /// The signed time is too far from now.
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
}

/// A webhook body that is not what its provider documents. The message names fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed webhook: {0}")]
pub struct MalformedEvent(pub String);

impl MalformedEvent {
    /// From a serde error: its category and position only (serde's message may quote the value).
    pub fn from_json(error: &serde_json::Error) -> Self {
        MalformedEvent(format!("not the documented JSON (line {}, column {})", error.line(), error.column()))
    }
}

/// RFC 3339 text as unix milliseconds.
pub fn rfc3339_millis(text: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The longest id, level or status word kept from an event: real ones are far shorter, and every kept field travels
/// in a change notification (PostgreSQL's `NOTIFY` carries at most 8000 bytes).
pub const MAX_FIELD: usize = 256;

/// `value` of the field `name`, refused when longer than [`MAX_FIELD`].
pub fn bounded(name: &str, value: String) -> Result<String, MalformedEvent> {
    if value.len() > MAX_FIELD {
        return Err(MalformedEvent(format!("`{name}` is longer than {MAX_FIELD} bytes")));
    }
    Ok(value)
}
