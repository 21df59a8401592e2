//! Veriff's decision webhook (its "Decision webhook" page): the decision endpoint's body (`status`, `verification`,
//! `technicalData`), signed `X-HMAC-SIGNATURE` (hex HMAC-SHA256 of the raw body under the shared secret). Only the
//! session id, the status, the decision time and the person's references are kept: nothing personal.

use async_trait::async_trait;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::{states, VeriffSessionId, LEVEL};
use crate::directory::{Directory, DirectoryError};
use crate::domain::events::{
    bounded, rfc3339_millis, Incoming, MalformedEvent, ProviderEvent, Reported, SignatureError, WebhookError,
};
use crate::domain::{Provider, UserId};
use crate::providers::connector::WebhookReader;
use crate::providers::signature::{check, hex_tag};
use crate::secret::Secret;

/// Who an event is about: a session, and the references to the person it was created with. (Its JSON is what the
/// inbox holds.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
enum Subject {
    VeriffSession { session_id: String, vendor_data: Option<String>, end_user_id: Option<String> },
}

/// Veriff's webhook endpoint.
pub struct Reader {
    pub secrets: Vec<Secret>,
    /// Whether an unknown session is given to the user its `vendorData` names (`KYC_GATEWAY_VERIFF_LEARN_SESSIONS`).
    pub learn_sessions: bool,
}

#[async_trait]
impl WebhookReader for Reader {
    fn configured(&self) -> bool {
        !self.secrets.is_empty()
    }

    fn read(&self, header: &dyn Fn(&str) -> Option<String>, body: &[u8], now: i64) -> Result<Incoming, WebhookError> {
        // The HMAC page names both headers; the legacy `X-SIGNATURE` (a plain SHA-256) is not taken.
        let signature = header("x-hmac-signature").or_else(|| header("vrf-hmac-signature"));
        check_signature(&self.secrets, signature.as_deref(), body)?;
        Ok(parse(body, now)?)
    }

    /// A stored session names its user; else, when sessions are learned, `vendorData`, else `endUserId`.
    async fn user_of(
        &self,
        subject: &serde_json::Value,
        directory: &dyn Directory,
    ) -> Result<Option<UserId>, DirectoryError> {
        let Ok(Subject::VeriffSession { session_id, vendor_data, end_user_id }) =
            serde_json::from_value(subject.clone())
        else {
            return Ok(None);
        };
        if let Some(user) = directory.user_for_reference(Provider::Veriff, &session_id).await? {
            return Ok(Some(user));
        }
        if !self.learn_sessions {
            return Ok(None);
        }
        Ok([vendor_data, end_user_id].into_iter().flatten().find_map(|id| UserId::parse(id).ok()))
    }

    /// A session the directory does not hold yet is the user's from now on, when sessions are learned.
    fn reference_to_keep(&self, subject: &serde_json::Value) -> Option<String> {
        if !self.learn_sessions {
            return None;
        }
        match serde_json::from_value(subject.clone()) {
            Ok(Subject::VeriffSession { session_id, .. }) => Some(session_id),
            Err(_) => None,
        }
    }
}

/// `X-HMAC-SIGNATURE`: hex (either case) HMAC-SHA256 of the raw body under any configured shared secret.
pub fn check_signature(secrets: &[Secret], signature: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let tag = hex_tag(signature.ok_or(SignatureError::Missing)?)?;
    if tag.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    check(hmac::HMAC_SHA256, secrets, body, &tag)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    verification: Option<Verification>,
    /// The event webhook's (`started`, `submitted`): not a decision.
    #[serde(default)]
    action: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Verification {
    id: Option<String>,
    status: Option<String>,
    #[serde(default)]
    decision_time: Option<String>,
    #[serde(default)]
    vendor_data: Option<String>,
    #[serde(default)]
    end_user_id: Option<String>,
}

/// Reads a decision webhook body; `received_at` (unix ms) stands in when `decisionTime` is absent (and a decision
/// without its time only says that the session changed: it cannot be ordered).
pub fn parse(body: &[u8], received_at: i64) -> Result<Incoming, MalformedEvent> {
    let payload: Payload = serde_json::from_slice(body).map_err(|e| MalformedEvent::from_json(&e))?;
    let Some(verification) = payload.verification else {
        let event_type = match payload.action {
            Some(action) => bounded("action", format!("event:{action}"))?,
            None => "no_decision".to_owned(),
        };
        return Ok(Incoming::Ignored { event_type });
    };
    let session_id = verification
        .id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| MalformedEvent("`verification.id` is missing".into()))?;
    let session_id = VeriffSessionId::parse(session_id)
        .map_err(|e| MalformedEvent(format!("`verification.id`: {e}")))?
        .to_string();
    let status = verification.status.ok_or_else(|| MalformedEvent("`verification.status` is missing".into()))?;
    let status = bounded("verification.status", status)?;
    let occurred_at = match verification.decision_time.as_deref() {
        Some(text) => Some(
            rfc3339_millis(text).ok_or_else(|| MalformedEvent("`verification.decisionTime` is not a time".into()))?,
        ),
        None => None,
    };
    // Up to 1,000 characters at Veriff: one that cannot be a gateway user id names no one (not an error to retry).
    let reference = |value: Option<String>| value.filter(|v| UserId::parse(v.as_str()).is_ok());
    let reported = match occurred_at {
        Some(_) => Reported::Verification {
            level: LEVEL.to_owned(),
            state: states::state(&status),
            provider_status: status.clone(),
            ordering_key: session_id.clone(),
        },
        None => Reported::UserChanged,
    };
    let subject = Subject::VeriffSession {
        session_id,
        vendor_data: reference(verification.vendor_data),
        end_user_id: reference(verification.end_user_id),
    };
    let event = ProviderEvent {
        provider: Provider::Veriff,
        // The decision webhook has no type of its own; its status is in `reported`.
        event_type: "decision".to_owned(),
        subject: serde_json::to_value(subject).expect("a subject serialises"),
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

    /// Veriff's HMAC mock data (secret and body of its "HMAC Authentication" page); the signature was computed here
    /// with `printf '%s' BODY | openssl dgst -sha256 -hmac abcdef12-abcd-abcd-abcd-abcdef012345`.
    const MOCK_SECRET: &str = "abcdef12-abcd-abcd-abcd-abcdef012345";
    const MOCK_BODY: &str = r#"{"verification":{"callback":"https://veriff.com","person":{"firstName":"John","lastName":"Smith"},"document":{"type":"PASSPORT","country":"EE"},"vendorData":"unique id of the end-user","timestamp":"2016-05-19T08:30:25.597Z"}}"#;
    const MOCK_SIGNATURE: &str = "0dcab73ddd20062616d104231c7439657546a5c24e4691977da93bb854c31e25";

    #[test]
    fn a_veriff_signature_is_hex_hmac_sha256_of_the_raw_body_in_either_case() {
        let key = secrets(&[MOCK_SECRET]);
        let body = MOCK_BODY.as_bytes();
        assert_eq!(check_signature(&key, Some(MOCK_SIGNATURE), body), Ok(()));
        assert_eq!(check_signature(&key, Some(&MOCK_SIGNATURE.to_uppercase()), body), Ok(()));
        let mut tampered = body.to_vec();
        tampered[2] = b'V';
        assert_eq!(check_signature(&key, Some(MOCK_SIGNATURE), &tampered), Err(SignatureError::Mismatch));
        assert_eq!(check_signature(&secrets(&["another-shared-secret"]), Some(MOCK_SIGNATURE), body), Err(SignatureError::Mismatch));
        assert_eq!(check_signature(&key, None, body), Err(SignatureError::Missing));
        assert_eq!(check_signature(&key, Some("not hex"), body), Err(SignatureError::Malformed));
        assert_eq!(check_signature(&key, Some("00ff"), body), Err(SignatureError::Malformed), "not 32 bytes");
    }

    #[test]
    fn the_legacy_x_signature_of_sha256_body_and_secret_is_not_an_hmac() {
        // sha256(body ‖ secret), computed here with `printf '%s%s' BODY SECRET | openssl dgst -sha256`.
        let legacy = "0558cec8645b295b424644f65dc65f1e4b4af2a9d2211bda0b0e62cfa78275fc";
        let reader = Reader { secrets: secrets(&[MOCK_SECRET]), learn_sessions: true };
        let header = |name: &str| (name == "x-signature").then(|| legacy.to_owned());
        let refused = reader.read(&header, MOCK_BODY.as_bytes(), 0);
        assert_eq!(refused, Err(WebhookError::Signature(SignatureError::Missing)));
        let as_hmac = |name: &str| (name == "x-hmac-signature").then(|| legacy.to_owned());
        assert_eq!(reader.read(&as_hmac, MOCK_BODY.as_bytes(), 0), Err(WebhookError::Signature(SignatureError::Mismatch)));
    }

    #[test]
    fn the_vrf_header_is_read_when_x_hmac_signature_is_absent() {
        let reader = Reader { secrets: secrets(&[MOCK_SECRET]), learn_sessions: true };
        let header = |name: &str| (name == "vrf-hmac-signature").then(|| MOCK_SIGNATURE.to_owned());
        // Signed and read: the mock body is a session request, not a decision (no `id`).
        let read = reader.read(&header, MOCK_BODY.as_bytes(), 0);
        assert!(matches!(read, Err(WebhookError::Malformed(_))), "{read:?}");
    }

    #[test]
    fn a_decision_reads_with_its_session_status_time_and_the_person_s_reference() {
        let body = br#"{"status":"success","verification":{"id":"12df6045-3846-3e45-946a-14fa6136d78b","code":9102,"status":"declined","reason":"Suspected document tampering","reasonCode":102,"vendorData":"user-1","endUserId":null,"decisionTime":"2019-11-06T07:18:36.916Z","person":{"firstName":"SARAH"}},"technicalData":{"ip":"186.153.67.122"}}"#;
        let Ok(Incoming::Event { id, event }) = parse(body, 0) else { panic!("an event") };
        assert_eq!(id, None, "a redelivery is the same body");
        assert_eq!(event.occurred_at, 1_573_024_716_916);
        assert_eq!(event.event_type, "decision");
        assert_eq!(
            event.subject,
            serde_json::json!({
                "by": "veriff_session", "session_id": "12df6045-3846-3e45-946a-14fa6136d78b",
                "vendor_data": "user-1", "end_user_id": null
            })
        );
        assert!(!event.subject.to_string().contains("SARAH"), "nothing personal is kept");
        assert_eq!(
            event.reported,
            Reported::Verification {
                level: "idv".into(),
                provider_status: "declined".into(),
                state: KycState::Rejected,
                ordering_key: "12df6045-3846-3e45-946a-14fa6136d78b".into()
            }
        );
        let reader = Reader { secrets: Vec::new(), learn_sessions: true };
        assert_eq!(reader.reference_to_keep(&event.subject).as_deref(), Some("12df6045-3846-3e45-946a-14fa6136d78b"));
    }

    #[test]
    fn an_event_webhook_is_ignored_and_a_decision_without_id_or_status_is_malformed() {
        let started = br#"{"id":"f04bdb47-d3be-4b28-b028-a652feb060b5","attemptId":"e30122d1-740b-4764-853f-470374a7abf4","feature":"selfid","code":7002,"action":"submitted","vendorData":"12345678","endUserId":null}"#;
        assert_eq!(parse(started, 0), Ok(Incoming::Ignored { event_type: "event:submitted".into() }));
        assert!(parse(br#"{"status":"success","verification":{"status":"approved"}}"#, 0).is_err());
        assert!(parse(br#"{"status":"success","verification":{"id":"s1"}}"#, 0).is_err());
        let long_id = format!(r#"{{"status":"success","verification":{{"id":"{}","status":"approved"}}}}"#, "a".repeat(300));
        assert!(parse(long_id.as_bytes(), 0).is_err(), "a session id is bounded");
        assert!(parse(b"{not json", 0).is_err());
        let untimed = br#"{"status":"success","verification":{"id":"s1","status":"approved"}}"#;
        let Ok(Incoming::Event { event, .. }) = parse(untimed, 7) else { panic!("an event") };
        assert_eq!((event.reported, event.occurred_at), (Reported::UserChanged, 7));
        let long_vendor = format!(r#"{{"status":"success","verification":{{"id":"s1","status":"approved","vendorData":"{}"}}}}"#, "v".repeat(1000));
        let Ok(Incoming::Event { event, .. }) = parse(long_vendor.as_bytes(), 7) else { panic!("an event") };
        assert_eq!(event.subject["vendor_data"], serde_json::Value::Null, "too long to name a gateway user");
    }
}
