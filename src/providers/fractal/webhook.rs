//! Fractal's webhooks (its developer documentation, "Webhooks"): `{"type": ..., "data": {...}}`, one
//! `verification_approved` / `_rejected` / `_contacted` per level or add-on with `data {level, user_id, timestamp}`,
//! and `credential_shared` and `email_changed` about the user. Fractal gives no event id: a redelivery is the same body.

use serde::Deserialize;

use crate::domain::events::{bounded, rfc3339_millis, Incoming, MalformedEvent, ProviderEvent, Reported, Subject};
use crate::domain::{states, Provider};

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: Option<Data>,
}

/// The fields the gateway reads; `email_changed`'s address is deliberately not among them.
#[derive(Deserialize)]
struct Data {
    user_id: Option<String>,
    level: Option<String>,
    timestamp: Option<String>,
}

/// Reads a Fractal webhook body; `received_at` (unix ms) stands in for events that carry no time (which then only
/// say that the user changed: without a time, a verification event cannot be ordered).
pub fn parse(body: &[u8], received_at: i64) -> Result<Incoming, MalformedEvent> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| MalformedEvent::from_json(&e))?;
    let status = match envelope.event_type.as_str() {
        "verification_approved" => Some("approved"),
        "verification_rejected" => Some("rejected"),
        "verification_contacted" => Some("contacted"),
        "credential_shared" | "email_changed" => None,
        _ => return Ok(Incoming::Ignored { event_type: envelope.event_type }),
    };
    let data = envelope.data.ok_or_else(|| MalformedEvent("`data` is missing".into()))?;
    let uid =
        data.user_id.filter(|u| !u.is_empty()).ok_or_else(|| MalformedEvent("`data.user_id` is missing".into()))?;
    let uid = bounded("data.user_id", uid)?;
    let occurred_at = match data.timestamp.as_deref() {
        Some(text) => {
            Some(rfc3339_millis(text).ok_or_else(|| MalformedEvent("`data.timestamp` is not RFC 3339".into()))?)
        }
        None => None,
    };
    let reported = match (status, occurred_at) {
        (Some(status), Some(_)) => {
            let level =
                data.level.filter(|l| !l.is_empty()).ok_or_else(|| MalformedEvent("`data.level` is missing".into()))?;
            let level = bounded("data.level", level)?;
            let (state, _) = states::fractal(Some(status), None);
            Reported::Verification { ordering_key: level.clone(), level, provider_status: status.to_owned(), state }
        }
        _ => Reported::UserChanged,
    };
    let event = ProviderEvent {
        provider: Provider::Fractal,
        event_type: envelope.event_type,
        subject: Subject::FractalUid { uid },
        reported,
        occurred_at: occurred_at.unwrap_or(received_at),
    };
    Ok(Incoming::Event { id: None, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KycState;

    #[test]
    fn the_documented_approval_reads_as_an_approved_level() {
        let body = br#"{"type":"verification_approved","data":{"level":"basic","user_id":"b5c5a2cd-643e-444b-9591-e7b25fec997d","timestamp":"2020-10-09T10:50:32Z"}}"#;
        let Ok(Incoming::Event { id: None, event }) = parse(body, 0) else { panic!("an event") };
        assert_eq!(event.subject, Subject::FractalUid { uid: "b5c5a2cd-643e-444b-9591-e7b25fec997d".into() });
        assert_eq!(event.occurred_at, 1_602_240_632_000);
        let Reported::Verification { level, state, provider_status, .. } = event.reported else {
            panic!("a verification")
        };
        assert_eq!((level.as_str(), state, provider_status.as_str()), ("basic", KycState::Approved, "approved"));
    }

    #[test]
    fn an_email_change_keeps_no_address_and_unknown_types_are_ignored() {
        let body = br#"{"type":"email_changed","data":{"user_id":"u1","email":"someone@example.com"}}"#;
        let Ok(Incoming::Event { event, .. }) = parse(body, 42) else { panic!("an event") };
        assert_eq!((event.reported.clone(), event.occurred_at), (Reported::UserChanged, 42));
        assert!(!format!("{event:?}").contains("someone"));
        assert_eq!(
            parse(br#"{"type":"wallet_added","data":{}}"#, 0),
            Ok(Incoming::Ignored { event_type: "wallet_added".into() })
        );
        assert!(parse(br#"{"type":"verification_approved","data":{"level":"basic"}}"#, 0).is_err());
        assert!(parse(b"not json", 0).is_err());
    }
}
