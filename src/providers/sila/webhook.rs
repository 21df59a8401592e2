//! Sila's webhooks (its webhook documentation): `{event_time, event_type, event_uuid, event_details}` with the KYC
//! types `kyc` (outcomes pending, passed, failed, review, member_review, documents_required), `kyc_status` (passed,
//! failed, member_failed) and `kyc_action` (documents_required or review). `event_details.entity` is the user handle
//! and `kyc_level` the KYC flow. `event_time` is read as RFC 3339 text or as unix seconds (or milliseconds) alike,
//! since Sila's excerpt does not show it.

use serde::Deserialize;

use crate::domain::events::{bounded, rfc3339_millis, Incoming, MalformedEvent, ProviderEvent, Reported, Subject};
use crate::domain::{states, Provider};

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
            let state = states::sila(&outcome);
            Reported::Verification { ordering_key: level.clone(), level, provider_status: outcome, state }
        }
        None => Reported::UserChanged,
    };
    let event = ProviderEvent {
        provider: Provider::Sila,
        event_type: payload.event_type,
        subject: Subject::SilaHandle { handle },
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

    #[test]
    fn a_kyc_event_reads_with_its_uuid_handle_flow_and_outcome() {
        let body = br#"{"event_time":"2024-03-01T10:00:00.000Z","event_type":"kyc","event_uuid":"c5b8c2a4","event_details":{"entity":"user.handle","outcome":"passed","kyc_level":"DOC_KYC"}}"#;
        let Ok(Incoming::Event { id, event }) = parse(body, 0) else { panic!("an event") };
        assert_eq!(id.as_deref(), Some("c5b8c2a4"));
        assert_eq!(event.subject, Subject::SilaHandle { handle: "user.handle".into() });
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
