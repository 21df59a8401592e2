//! ident's outgoing webhook: the KYC application as ident's API returns it (`id`, `user_id`, `type`, `status`, ...),
//! signed with a timestamp (`X-Request-Signature: t=...`). ident has no event id (a redelivery is the same body) and
//! no event time (the signature's is new at every retry), so the worker reads the application again rather than
//! believe the status a possibly old delivery carries (`webhooks/worker.rs`).

use serde::Deserialize;

use crate::domain::events::{bounded, Incoming, MalformedEvent, ProviderEvent, Reported, Subject};
use crate::domain::{states, Provider};

/// The fields the gateway reads; `params` and `provider_representation` (personal data) are not among them.
#[derive(Deserialize)]
struct Application {
    id: Option<String>,
    user_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
}

/// Reads an ident webhook body sent at `sent_at` (unix ms, from the signature's timestamp).
pub fn parse(body: &[u8], sent_at: i64) -> Result<Incoming, MalformedEvent> {
    let application: Application = serde_json::from_slice(body).map_err(|e| MalformedEvent::from_json(&e))?;
    let id = application.id.filter(|i| !i.is_empty()).ok_or_else(|| MalformedEvent("`id` is missing".into()))?;
    let user =
        application.user_id.filter(|u| !u.is_empty()).ok_or_else(|| MalformedEvent("`user_id` is missing".into()))?;
    let status = application.status.ok_or_else(|| MalformedEvent("`status` is missing".into()))?;
    let (id, user, status) = (bounded("id", id)?, bounded("user_id", user)?, bounded("status", status)?);
    let level = bounded("type", application.kind.unwrap_or_else(|| "kyc".to_owned()))?;
    let event = ProviderEvent {
        provider: Provider::Ident,
        event_type: "kyc_application".into(),
        subject: Subject::IdentUser { ident_user_id: user },
        reported: Reported::Verification {
            state: states::ident(&status),
            level,
            provider_status: status,
            ordering_key: id,
        },
        occurred_at: sent_at,
    };
    Ok(Incoming::Event { id: None, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KycState;

    #[test]
    fn an_application_reads_as_its_owner_s_verification_ordered_per_application() {
        let body = br#"{"id":"e494ee10","user_id":"9e15791a","type":"kyc","status":"accepted","params":{"first_name":"Janice"}}"#;
        let Ok(Incoming::Event { id: None, event }) = parse(body, 1_700_000_000_000) else { panic!("an event") };
        assert_eq!(event.subject, Subject::IdentUser { ident_user_id: "9e15791a".into() });
        assert_eq!(
            event.reported,
            Reported::Verification {
                level: "kyc".into(),
                provider_status: "accepted".into(),
                state: KycState::Approved,
                ordering_key: "e494ee10".into()
            }
        );
        assert!(!format!("{event:?}").contains("Janice"));
        assert!(parse(br#"{"id":"x","status":"accepted"}"#, 0).is_err());
    }
}
