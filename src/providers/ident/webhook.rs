//! ident's outgoing webhook: the KYC application as ident's API returns it, signed with a timestamp
//! (`X-Request-Signature: t=...`). With no event id and no event time of its own, an event is confirmed by reading the
//! application again rather than believing the status a possibly old delivery carries.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::{states, user_for_ident, IdentClient};
use crate::directory::{Directory, DirectoryError};
use crate::domain::events::{
    bounded, EventKind, Incoming, MalformedEvent, ProviderEvent, Reported, SignatureError, WebhookError,
};
use crate::domain::{Provider, UserId};
use crate::providers::connector::{Confirmed, Outcome, WebhookReader};
use crate::providers::signature::{check, hex_tag};
use crate::secret::Secret;

/// Who an event is about: an ident user, the owner of the application. (Its JSON is what the inbox holds.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
enum Subject {
    IdentUser { ident_user_id: String },
}

/// ident's webhook endpoint.
pub struct Reader {
    pub secrets: Vec<Secret>,
    /// How far the signed timestamp may be from the clock.
    pub tolerance: Duration,
    /// To read an application again.
    pub client: Arc<IdentClient>,
}

#[async_trait]
impl WebhookReader for Reader {
    fn configured(&self) -> bool {
        !self.secrets.is_empty()
    }

    fn read(&self, header: &dyn Fn(&str) -> Option<String>, body: &[u8], now: i64) -> Result<Incoming, WebhookError> {
        let tolerance = self.tolerance.as_secs() as i64;
        let sent = signature(&self.secrets, header("x-request-signature").as_deref(), body, now / 1000, tolerance)?;
        Ok(parse(body, sent * 1000)?)
    }

    /// The application's owner; an ident user the directory does not know is the gateway user of that id.
    async fn user_of(
        &self,
        subject: &serde_json::Value,
        directory: &dyn Directory,
    ) -> Result<Option<UserId>, DirectoryError> {
        let Ok(Subject::IdentUser { ident_user_id }) = serde_json::from_value(subject.clone()) else { return Ok(None) };
        if let Some(user) = user_for_ident(directory, &ident_user_id).await? {
            return Ok(Some(user));
        }
        // A known user whose ident id is another is not this ident user.
        match UserId::parse(ident_user_id) {
            Ok(user) if !directory.knows(&user).await? => Ok(Some(user)),
            _ => Ok(None),
        }
    }

    /// What ident says of the application now (an application it no longer knows only invalidates), as of now.
    async fn confirm(&self, reported: &Reported, _occurred_at: i64) -> Outcome<Confirmed> {
        let now = crate::clock::unix_millis();
        let Reported::Verification { ordering_key: application, .. } = reported else {
            return Ok(Confirmed { reported: reported.clone(), occurred_at: now });
        };
        let reported = match self.client.get(application).await? {
            Some(current) => Reported::Verification {
                level: current.kind.as_str().to_owned(),
                provider_status: current.status_word.clone(),
                state: current.state,
                ordering_key: application.clone(),
            },
            None => Reported::UserChanged,
        };
        Ok(Confirmed { reported, occurred_at: now })
    }

    fn kind(&self) -> EventKind {
        EventKind::Application
    }
}

/// ident's `X-Request-Signature: t=<unix seconds>,s=<hex HMAC-SHA256(secret, "<t>.<body>")>`; answers its timestamp,
/// when ident sent the event. A `t` outside the tolerance is refused, so a captured delivery cannot be replayed later.
pub fn signature(
    secrets: &[Secret],
    header: Option<&str>,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let (mut t, mut s) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("s", value)) => s = Some(value),
            _ => {}
        }
    }
    let (t, s) = (t.ok_or(SignatureError::Malformed)?, s.ok_or(SignatureError::Malformed)?);
    let timestamp: i64 = t.parse().map_err(|_| SignatureError::Malformed)?;
    // The signature first: a stale timestamp is only worth reporting on a genuine delivery.
    let signed = [t.as_bytes(), b".", body].concat();
    check(hmac::HMAC_SHA256, secrets, &signed, &hex_tag(s)?)?;
    if (now_secs - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    Ok(timestamp)
}

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
        subject: serde_json::to_value(Subject::IdentUser { ident_user_id: user }).expect("a subject serialises"),
        reported: Reported::Verification {
            state: states::state(&status),
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
    use crate::providers::signature::secrets;

    #[test]
    fn an_ident_signature_binds_its_timestamp_and_expires() {
        // Computed here with `openssl dgst -sha256 -hmac` over "1700000000.<body>".
        let body = br#"{"id":"e494ee10-bbf5-45bb-81aa-7e3561d8c729","status":"accepted","user_id":"9e15791a-dbf1-4e5e-8c6b-a7253e198b4c"}"#;
        let key = secrets(&["ident-webhook-secret"]);
        let header = "t=1700000000,s=b86a8b377628955712a2e7024ead3ccd2c580c2be2a1238100c2e83c059e524b";
        assert_eq!(signature(&key, Some(header), body, 1_700_000_100, 300), Ok(1_700_000_000));
        assert_eq!(signature(&key, Some(header), body, 1_700_000_301, 300), Err(SignatureError::Stale));
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(signature(&key, Some(&moved), body, 1_700_000_100, 300), Err(SignatureError::Mismatch));
        assert_eq!(signature(&key, Some("s=00"), body, 1_700_000_100, 300), Err(SignatureError::Malformed));
    }

    #[test]
    fn an_application_reads_as_its_owner_s_verification_ordered_per_application() {
        let body = br#"{"id":"e494ee10","user_id":"9e15791a","type":"kyc","status":"accepted","params":{"first_name":"Janice"}}"#;
        let Ok(Incoming::Event { id: None, event }) = parse(body, 1_700_000_000_000) else { panic!("an event") };
        assert_eq!(event.subject, serde_json::json!({"by": "ident_user", "ident_user_id": "9e15791a"}));
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
