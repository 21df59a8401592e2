//! What providers tell the gateway on their own (webhooks), in the gateway's words.
//!
//! A provider's webhook is read by its module (`providers/<provider>/webhook.rs`) into a [`ProviderEvent`]: who it is
//! about in the provider's terms, the level and status it reports, and when it happened. Nothing personal is kept
//! (Fractal's `email_changed` carries an address: only the fact that the user changed is kept), so an event can sit
//! in the inbox table without widening what the store holds. Once the directory has named the gateway user, a
//! verification change becomes a [`VerificationEvent`], what subscribers receive.

use serde::{Deserialize, Serialize};

use super::{KycState, Provider};

/// Who an event is about, in the provider's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Subject {
    /// A Fractal `uid` (the account the user linked).
    FractalUid {
        /// Fractal's user id.
        uid: String,
    },
    /// A Sumsub applicant, and the `externalUserId` it was created with (the gateway user id by default).
    SumsubApplicant {
        /// Sumsub's applicant id.
        applicant_id: String,
        /// Our own user id, as given to Sumsub.
        external_user_id: Option<String>,
    },
    /// A Sila user handle.
    SilaHandle {
        /// The handle.
        handle: String,
    },
    /// An ident user (the owner of a KYC application).
    IdentUser {
        /// ident's `user_id`.
        ident_user_id: String,
    },
}

/// What an event reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Reported {
    /// A verification moved: its level (the provider's word, or an ident application's type) and its new status.
    Verification {
        /// The provider's level (Sumsub `levelName`, a Sila flow, a Fractal level or add-on, an ident type).
        level: String,
        /// The provider's own status word.
        provider_status: String,
        /// The status in the gateway's words.
        state: KycState,
        /// What the ordering is kept per, beside the user and provider: the level, or an ident application's id.
        ordering_key: String,
    },
    /// Something else about the user changed (an email, a shared credential, a deleted applicant): what is cached
    /// about them is stale, and there is no state to announce.
    UserChanged,
}

/// One accepted provider event, as the inbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEvent {
    /// Which provider sent it.
    pub provider: Provider,
    /// The provider's event type (`applicantReviewed`, `verification_approved`, `kyc`, ...), for logs.
    pub event_type: String,
    /// Who it is about.
    pub subject: Subject,
    /// What it reports.
    pub reported: Reported,
    /// When it happened at the provider, unix milliseconds: the order between events of one user and level.
    pub occurred_at: i64,
}

/// A change of one user's verification at one provider, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationEvent {
    /// The gateway user.
    pub user_id: String,
    /// The provider that reported it.
    pub provider: Provider,
    /// The provider's level string.
    pub level: String,
    /// The Fractal-style items of the level (what the scope rules read).
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
