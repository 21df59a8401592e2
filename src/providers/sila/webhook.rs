//! Sila's webhooks (its webhook documentation): `{event_time, event_type, event_uuid, event_details}`, the KYC types
//! `kyc`, `kyc_status` and `kyc_action`; `event_details.entity` is the user handle, `kyc_level` the KYC flow.
//! `event_time` is read as RFC 3339 text or unix seconds (or milliseconds) alike: Sila's excerpt does not show it.

use async_trait::async_trait;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::states;
use crate::directory::{Directory, DirectoryError};
use crate::domain::events::{
    bounded, rfc3339_millis, Incoming, MalformedEvent, ProviderEvent, Reported, SignatureError, WebhookError,
};
use crate::domain::{Provider, UserId};
use crate::providers::connector::WebhookReader;
use crate::providers::signature::check;
use crate::secret::Secret;

/// Who an event is about: a user handle. (Its JSON is what the inbox holds.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
enum Subject {
    SilaHandle { handle: String },
}

/// Sila's webhook endpoint: its signature, its reader, and how a handle names a gateway user.
pub struct Reader {
    pub secrets: Vec<Secret>,
    /// `KYC_GATEWAY_SILA_USER_HANDLE_TEMPLATE`.
    pub template: String,
}

impl Reader {
    /// The gateway user a handle made by the template belongs to (`None` when it does not fit the template).
    fn user_of_template(&self, handle: &str) -> Option<UserId> {
        let (prefix, suffix) = self.template.split_once("{user_id}")?;
        let user = handle.strip_prefix(prefix)?.strip_suffix(suffix)?;
        UserId::parse(user).ok()
    }
}

#[async_trait]
impl WebhookReader for Reader {
    fn configured(&self) -> bool {
        !self.secrets.is_empty()
    }

    fn read(&self, header: &dyn Fn(&str) -> Option<String>, body: &[u8], now: i64) -> Result<Incoming, WebhookError> {
        signature(&self.secrets, header("sila-signature").as_deref(), body)?;
        Ok(parse(body, now)?)
    }

    /// A stored handle names its user; a handle made by the template names the user of that id, unless that user's
    /// queries read another handle (then this event is not about them).
    async fn user_of(
        &self,
        subject: &serde_json::Value,
        directory: &dyn Directory,
    ) -> Result<Option<UserId>, DirectoryError> {
        let Ok(Subject::SilaHandle { handle }) = serde_json::from_value(subject.clone()) else { return Ok(None) };
        if let Some(user) = directory.user_for_reference(Provider::Sila, &handle).await? {
            return Ok(Some(user));
        }
        match self.user_of_template(&handle) {
            Some(user) if directory.references(&user, Provider::Sila).await?.is_empty() => Ok(Some(user)),
            _ => Ok(None),
        }
    }
}

/// Sila's `SILA-SIGNATURE`: base64 HMAC-SHA256 of the raw body. Sila does not publish the exact string it signs;
/// the raw body is the assumption, kept in this one function.
pub fn signature(secrets: &[Secret], signature: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::Missing)?.trim();
    if signature.len() > 128 {
        return Err(SignatureError::Malformed);
    }
    let tag = base64::engine::general_purpose::STANDARD.decode(signature).map_err(|_| SignatureError::Malformed)?;
    check(hmac::HMAC_SHA256, secrets, body, &tag)
}

#[derive(Deserialize)]
struct Payload {
    event_type: String,
    event_uuid: Option<String>,
    event_time: Option<serde_json::Value>,
    #[serde(default)]
    event_details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    entity: Option<String>,
    outcome: Option<String>,
    kyc_level: Option<String>,
}

fn event_time(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::String(text) => rfc3339_millis(text),
        // Seconds until the year 5138; past that it must be milliseconds.
        serde_json::Value::Number(n) => n.as_i64().map(|v| if v < 100_000_000_000 { v * 1000 } else { v }),
        _ => None,
    }
}

/// Reads a Sila webhook body; `received_at` (unix ms) stands in when `event_time` is absent (and an outcome without
/// its time only says that the entity changed: it cannot be ordered).
pub fn parse(body: &[u8], received_at: i64) -> Result<Incoming, MalformedEvent> {
    let payload: Payload = serde_json::from_slice(body).map_err(|e| MalformedEvent::from_json(&e))?;
    if !matches!(payload.event_type.as_str(), "kyc" | "kyc_status" | "kyc_action") {
        return Ok(Incoming::Ignored { event_type: payload.event_type });
    }
    let details = payload.event_details.ok_or_else(|| MalformedEvent("`event_details` is missing".into()))?;
    let handle = details
        .entity
        .filter(|e| !e.is_empty())
        .ok_or_else(|| MalformedEvent("`event_details.entity` is missing".into()))?;
    let handle = bounded("event_details.entity", handle)?;
    let outcome = details.outcome.ok_or_else(|| MalformedEvent("`event_details.outcome` is missing".into()))?;
    let outcome = bounded("event_details.outcome", outcome)?;
    let occurred_at = match &payload.event_time {
        Some(value) => Some(event_time(value).ok_or_else(|| MalformedEvent("`event_time` is not a time".into()))?),
        None => None,
    };
    let level = bounded("event_details.kyc_level", details.kyc_level.unwrap_or_else(|| "unknown".to_owned()))?;
    let reported = match occurred_at {
        Some(_) => {
            let state = states::state(&outcome);
            Reported::Verification { ordering_key: level.clone(), level, provider_status: outcome, state }
        }
        None => Reported::UserChanged,
    };
    let event = ProviderEvent {
        provider: Provider::Sila,
        event_type: payload.event_type,
        subject: serde_json::to_value(Subject::SilaHandle { handle }).expect("a subject serialises"),
        reported,
        occurred_at: occurred_at.unwrap_or(received_at),
    };
    let id = payload.event_uuid.filter(|u| !u.is_empty()).map(|u| bounded("event_uuid", u)).transpose()?;
    Ok(Incoming::Event { id, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KycState;
    use crate::providers::signature::secrets;

    #[test]
    fn a_sila_signature_is_base64_hmac_sha256_of_the_body() {
        // Computed here with `openssl dgst -sha256 -hmac ... -binary | base64`.
        let body = br#"{"event_time":"2024-03-01T10:00:00.000Z","event_type":"kyc","event_uuid":"c5b8c2a4-64a1-4b5c-9d8e-1f2a3b4c5d6e","event_details":{"entity":"user.handle","outcome":"passed","kyc_level":"DOC_KYC"}}"#;
        let key = secrets(&["sila-webhook-secret"]);
        assert_eq!(signature(&key, Some("BZQJywy38K9AVZhl7Kj+FY/Gievt0vyQwk2EtW1QpbE="), body), Ok(()));
        assert_eq!(
            signature(&key, Some("CZQJywy38K9AVZhl7Kj+FY/Gievt0vyQwk2EtW1QpbE="), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(signature(&key, Some("not base64!"), body), Err(SignatureError::Malformed));
    }

    #[test]
    fn a_kyc_event_reads_with_its_uuid_handle_flow_and_outcome() {
        let body = br#"{"event_time":"2024-03-01T10:00:00.000Z","event_type":"kyc","event_uuid":"c5b8c2a4","event_details":{"entity":"user.handle","outcome":"passed","kyc_level":"DOC_KYC"}}"#;
        let Ok(Incoming::Event { id, event }) = parse(body, 0) else { panic!("an event") };
        assert_eq!(id.as_deref(), Some("c5b8c2a4"));
        assert_eq!(event.subject, serde_json::json!({"by": "sila_handle", "handle": "user.handle"}));
        assert_eq!(event.occurred_at, 1_709_287_200_000);
        assert!(matches!(event.reported, Reported::Verification { state: KycState::Approved, .. }));
        let seconds = br#"{"event_time":1709287200,"event_type":"kyc_action","event_details":{"entity":"h","outcome":"documents_required"}}"#;
        let Ok(Incoming::Event { event, .. }) = parse(seconds, 0) else { panic!("an event") };
        assert_eq!(event.occurred_at, 1_709_287_200_000);
        assert!(matches!(event.reported, Reported::Verification { state: KycState::ActionRequired, .. }));
        assert_eq!(
            parse(br#"{"event_type":"transaction"}"#, 0),
            Ok(Incoming::Ignored { event_type: "transaction".into() })
        );
    }
}
