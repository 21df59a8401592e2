//! Fractal's webhooks (its developer documentation, "Webhooks"): `{"type": ..., "data": {...}}`, one
//! `verification_approved` / `_rejected` / `_contacted` per level or add-on with `data {level, user_id, timestamp}`,
//! and `credential_shared` and `email_changed` about the user. Fractal gives no event id: a redelivery is the same body.

use async_trait::async_trait;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::states;
use crate::directory::{Directory, DirectoryError};
use crate::domain::events::{
    bounded, rfc3339_millis, Incoming, MalformedEvent, ProviderEvent, Reported, SignatureError, WebhookError,
};
use crate::domain::{Provider, UserId};
use crate::providers::connector::WebhookReader;
use crate::providers::signature::{check, hex_tag};
use crate::secret::Secret;

/// Who an event is about: the Fractal account a user linked. (Its JSON is what the inbox holds.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
enum Subject {
    FractalUid { uid: String },
}

/// Fractal's webhook endpoint.
pub struct Reader {
    pub secrets: Vec<Secret>,
}

#[async_trait]
impl WebhookReader for Reader {
    fn configured(&self) -> bool {
        !self.secrets.is_empty()
    }

    fn read(&self, header: &dyn Fn(&str) -> Option<String>, body: &[u8], now: i64) -> Result<Incoming, WebhookError> {
        signature(&self.secrets, header("x-fractal-signature").as_deref(), body)?;
        Ok(parse(body, now)?)
    }

    /// The user who linked that Fractal account, if any.
    async fn user_of(
        &self,
        subject: &serde_json::Value,
        directory: &dyn Directory,
    ) -> Result<Option<UserId>, DirectoryError> {
        let Ok(Subject::FractalUid { uid }) = serde_json::from_value(subject.clone()) else { return Ok(None) };
        directory.user_for_link(Provider::Fractal, &uid).await
    }
}

/// Fractal's `X-Fractal-Signature: sha1=<hex HMAC-SHA1(secret, body)>` (Fractal's webhook documentation).
pub fn signature(secrets: &[Secret], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let tag = header.trim().strip_prefix("sha1=").ok_or(SignatureError::Malformed)?;
    check(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secrets, body, &hex_tag(tag)?)
}

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
            let (state, _) = states::state(Some(status), None);
            Reported::Verification { ordering_key: level.clone(), level, provider_status: status.to_owned(), state }
        }
        _ => Reported::UserChanged,
    };
    let event = ProviderEvent {
        provider: Provider::Fractal,
        event_type: envelope.event_type,
        subject: serde_json::to_value(Subject::FractalUid { uid }).expect("a subject serialises"),
        reported,
        occurred_at: occurred_at.unwrap_or(received_at),
    };
    Ok(Incoming::Event { id: None, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KycState;
    use crate::providers::signature::secrets;

    #[test]
    fn fractal_s_published_vectors_verify() {
        // Both vectors are Fractal's own (its webhook documentation).
        assert_eq!(
            signature(&secrets(&["SUP3RS3CR3T"]), Some("sha1=6a89633e5f131bfb5f0b5826b33b3bab4bf52068"), b"my-payload"),
            Ok(())
        );
        let body = br#"{"type":"verification_approved","data":{"level":"basic","user_id":"b5c5a2cd-643e-444b-9591-e7b25fec997d","timestamp":"2020-10-09T10:50:32Z"}}"#;
        let key = secrets(&["9d7e80c0f169ab94d34392d64617b7517fb07c40"]);
        assert_eq!(signature(&key, Some("sha1=9e581dd775e5ba87e9839b595d6eb0d784ecfdb6"), body), Ok(()));
        let mut tampered = body.to_vec();
        tampered[40] ^= 1;
        assert_eq!(
            signature(&key, Some("sha1=9e581dd775e5ba87e9839b595d6eb0d784ecfdb6"), &tampered),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            signature(&key, Some("9e581dd775e5ba87e9839b595d6eb0d784ecfdb6"), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(signature(&key, None, body), Err(SignatureError::Missing));
    }

    #[test]
    fn the_documented_approval_reads_as_an_approved_level() {
        let body = br#"{"type":"verification_approved","data":{"level":"basic","user_id":"b5c5a2cd-643e-444b-9591-e7b25fec997d","timestamp":"2020-10-09T10:50:32Z"}}"#;
        let Ok(Incoming::Event { id: None, event }) = parse(body, 0) else { panic!("an event") };
        assert_eq!(
            event.subject,
            serde_json::json!({"by": "fractal_uid", "uid": "b5c5a2cd-643e-444b-9591-e7b25fec997d"})
        );
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
