//! Sumsub's webhooks (seed 003 and Sumsub's webhook documentation): a flat JSON object with `type`, `applicantId`,
//! `externalUserId`, `levelName`, `reviewStatus`, `reviewResult` and `createdAtMs`, and no personal data. Sumsub
//! gives no event id (`correlationId` names the request that caused it): a redelivery is the same body.

use async_trait::async_trait;
use ring::hmac;
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::PrimitiveDateTime;

use super::states;
use crate::directory::{Directory, DirectoryError};
use crate::domain::events::{bounded, Incoming, MalformedEvent, ProviderEvent, Reported, SignatureError, WebhookError};
use crate::domain::{Provider, UserId};
use crate::providers::connector::WebhookReader;
use crate::providers::signature::{check, hex_tag};
use crate::secret::Secret;

/// Who an event is about: an applicant, and the `externalUserId` it was created with (the gateway user id by
/// default). (Its JSON is what the inbox holds.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
enum Subject {
    SumsubApplicant { applicant_id: String, external_user_id: Option<String> },
}

/// Sumsub's webhook endpoint.
pub struct Reader {
    pub secrets: Vec<Secret>,
}

#[async_trait]
impl WebhookReader for Reader {
    fn configured(&self) -> bool {
        !self.secrets.is_empty()
    }

    fn read(&self, header: &dyn Fn(&str) -> Option<String>, body: &[u8], now: i64) -> Result<Incoming, WebhookError> {
        let (digest, algorithm) = (header("x-payload-digest"), header("x-payload-digest-alg"));
        signature(&self.secrets, digest.as_deref(), algorithm.as_deref(), body)?;
        Ok(parse(body, now)?)
    }

    /// A stored applicant id names its user; else the `externalUserId`, unless that user's queries read another
    /// applicant (then this event is not about them).
    async fn user_of(
        &self,
        subject: &serde_json::Value,
        directory: &dyn Directory,
    ) -> Result<Option<UserId>, DirectoryError> {
        let Ok(Subject::SumsubApplicant { applicant_id, external_user_id }) = serde_json::from_value(subject.clone())
        else {
            return Ok(None);
        };
        if let Some(user) = directory.user_for_reference(Provider::Sumsub, &applicant_id).await? {
            return Ok(Some(user));
        }
        match external_user_id.and_then(|u| UserId::parse(u).ok()) {
            Some(user) if directory.references(&user, Provider::Sumsub).await?.is_empty() => Ok(Some(user)),
            _ => Ok(None),
        }
    }
}

/// Sumsub's `X-Payload-Digest`: hex HMAC of the raw body, with `X-Payload-Digest-Alg` naming SHA-1, SHA-256 or
/// SHA-512 (`HMAC_SHA1_HEX`, `HMAC_SHA256_HEX`, `HMAC_SHA512_HEX`; SHA-256, the dashboard's default, when absent).
pub fn signature(
    secrets: &[Secret],
    digest: Option<&str>,
    algorithm: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let digest = digest.ok_or(SignatureError::Missing)?;
    let algorithm = match algorithm.map(str::trim).unwrap_or("HMAC_SHA256_HEX") {
        "HMAC_SHA1_HEX" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "HMAC_SHA256_HEX" => hmac::HMAC_SHA256,
        "HMAC_SHA512_HEX" => hmac::HMAC_SHA512,
        _ => return Err(SignatureError::Malformed),
    };
    check(algorithm, secrets, body, &hex_tag(digest)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(rename = "type")]
    event_type: String,
    applicant_id: Option<String>,
    external_user_id: Option<String>,
    level_name: Option<String>,
    review_status: Option<String>,
    #[serde(default)]
    review_result: Option<ReviewResult>,
    created_at_ms: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewResult {
    review_answer: Option<String>,
    review_reject_type: Option<String>,
}

/// Types that move the applicant's review (and carry its `reviewStatus`).
const REVIEW_TYPES: [&str; 7] = [
    "applicantCreated",
    "applicantPending",
    "applicantReviewed",
    "applicantOnHold",
    "applicantPrechecked",
    "applicantReset",
    "applicantLevelChanged",
];
/// Types that change what is known about the applicant without a review status to announce.
const CHANGE_TYPES: [&str; 5] = [
    "applicantActivated",
    "applicantDeactivated",
    "applicantDeleted",
    "applicantPersonalInfoChanged",
    "applicantWorkflowCompleted",
];

/// `createdAtMs`: `2020-02-21 13:23:19.001`, UTC.
fn created_at(text: &str) -> Option<i64> {
    let with_millis = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
    let without = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let text = text.trim();
    let at = PrimitiveDateTime::parse(text, with_millis).or_else(|_| PrimitiveDateTime::parse(text, without)).ok()?;
    i64::try_from(at.assume_utc().unix_timestamp_nanos() / 1_000_000).ok()
}

/// Reads a Sumsub webhook body; `received_at` (unix ms) stands in when `createdAtMs` is absent (and a review without
/// its time only says that the applicant changed: it cannot be ordered).
pub fn parse(body: &[u8], received_at: i64) -> Result<Incoming, MalformedEvent> {
    let payload: Payload = serde_json::from_slice(body).map_err(|e| MalformedEvent::from_json(&e))?;
    let review = REVIEW_TYPES.contains(&payload.event_type.as_str());
    if !review && !CHANGE_TYPES.contains(&payload.event_type.as_str()) {
        return Ok(Incoming::Ignored { event_type: payload.event_type });
    }
    let applicant_id = payload
        .applicant_id
        .filter(|a| !a.is_empty())
        .ok_or_else(|| MalformedEvent("`applicantId` is missing".into()))?;
    let applicant_id = bounded("applicantId", applicant_id)?;
    let external_user_id =
        payload.external_user_id.filter(|e| !e.is_empty()).map(|e| bounded("externalUserId", e)).transpose()?;
    let occurred_at = match payload.created_at_ms.as_deref() {
        Some(text) => {
            Some(created_at(text).ok_or_else(|| MalformedEvent("`createdAtMs` is not a Sumsub time".into()))?)
        }
        None => None,
    };
    let reported = match (review, occurred_at) {
        (true, Some(_)) => {
            let status = payload.review_status.ok_or_else(|| MalformedEvent("`reviewStatus` is missing".into()))?;
            let status = bounded("reviewStatus", status)?;
            let level = payload.level_name.ok_or_else(|| MalformedEvent("`levelName` is missing".into()))?;
            let level = bounded("levelName", level)?;
            let result = payload.review_result;
            let answer = result.as_ref().and_then(|r| r.review_answer.as_deref()).filter(|_| status == "completed");
            let reject_type = result.as_ref().and_then(|r| r.review_reject_type.as_deref());
            let state = states::state(&status, answer, reject_type);
            Reported::Verification { ordering_key: level.clone(), level, provider_status: status, state }
        }
        _ => Reported::UserChanged,
    };
    let event = ProviderEvent {
        provider: Provider::Sumsub,
        event_type: payload.event_type,
        subject: serde_json::to_value(Subject::SumsubApplicant { applicant_id, external_user_id })
            .expect("a subject serialises"),
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

    /// Seed 003's GREEN example; Sumsub publishes no digest, so these were computed here with `openssl dgst -hmac`.
    const SUMSUB_BODY: &str = r#"{"applicantId":"5cb56e8e0a975a35f333cb83","inspectionId":"5cb56e8e0a975a35f333cb84","correlationId":"req-a260b669-4f14-4bb5-a4c5-ac0218acb9a4","externalUserId":"externalUserId","levelName":"basic-kyc-level","type":"applicantReviewed","reviewResult":{"reviewAnswer":"GREEN"},"reviewStatus":"completed","createdAtMs":"2020-02-21 13:23:19.321"}"#;

    #[test]
    fn sumsub_digests_verify_with_each_algorithm() {
        let key = secrets(&["SoMe_SeCrEt_KeY"]);
        let body = SUMSUB_BODY.as_bytes();
        let sha1 = "a9c0f20d3850f06e65f915510c428cabb5efef43";
        let sha256 = "dc1029b977cff1f1df76fe6e8736cc4c9f612cb8098969eeb99cc05ea8f043c6";
        let sha512 = "3b4848d1ebd7e113670d6b0e06fd4ac072e208f1a932c314588cec352d8646e5ad7b9cec8d77c423b0e7cfa206d892532040a38091667d012b8264bd1b8ab266";
        assert_eq!(signature(&key, Some(sha1), Some("HMAC_SHA1_HEX"), body), Ok(()));
        assert_eq!(signature(&key, Some(sha256), Some("HMAC_SHA256_HEX"), body), Ok(()));
        assert_eq!(signature(&key, Some(sha256), None, body), Ok(()), "SHA-256 when the header is absent");
        assert_eq!(signature(&key, Some(sha512), Some("HMAC_SHA512_HEX"), body), Ok(()));
        assert_eq!(signature(&key, Some(sha256), Some("HMAC_SHA1_HEX"), body), Err(SignatureError::Mismatch));
        assert_eq!(signature(&key, Some(sha256), Some("HMAC_MD5_HEX"), body), Err(SignatureError::Malformed));
        assert_eq!(signature(&secrets(&["wrong"]), Some(sha256), None, body), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_configured_secret_verifies_a_sumsub_digest_so_secrets_can_rotate() {
        let both = secrets(&["new-secret", "SoMe_SeCrEt_KeY"]);
        let sha256 = "dc1029b977cff1f1df76fe6e8736cc4c9f612cb8098969eeb99cc05ea8f043c6";
        assert_eq!(signature(&both, Some(sha256), None, SUMSUB_BODY.as_bytes()), Ok(()));
        assert_eq!(signature(&[], Some(sha256), None, SUMSUB_BODY.as_bytes()), Err(SignatureError::Mismatch));
    }

    #[test]
    fn seed_003_s_red_final_example_reads_as_a_rejection_at_its_time() {
        let body = br#"{"applicantId":"5cb744200a975a67ed1798a4","inspectionId":"5cb744200a975a67ed1798a5","correlationId":"req-fa94263f-0b23-42d7-9393-ab10b28ef42d","externalUserId":"externalUserId","levelName":"basic-kyc-level","type":"applicantReviewed","reviewResult":{"moderationComment":"We could not verify your profile.","clientComment":" Suspected fraudulent account.","reviewAnswer":"RED","rejectLabels":["UNSATISFACTORY_PHOTOS","GRAPHIC_EDITOR","FORGERY"],"reviewRejectType":"FINAL"},"reviewStatus":"completed","createdAtMs":"2020-02-21 13:23:19.001"}"#;
        let Ok(Incoming::Event { event, .. }) = parse(body, 0) else { panic!("an event") };
        assert_eq!(event.occurred_at, 1_582_291_399_001);
        assert_eq!(
            event.subject,
            serde_json::json!({
                "by": "sumsub_applicant",
                "applicant_id": "5cb744200a975a67ed1798a4",
                "external_user_id": "externalUserId"
            })
        );
        assert_eq!(
            event.reported,
            Reported::Verification {
                level: "basic-kyc-level".into(),
                provider_status: "completed".into(),
                state: KycState::Rejected,
                ordering_key: "basic-kyc-level".into()
            }
        );
    }

    #[test]
    fn a_green_answer_counts_only_once_the_review_completed() {
        let body = br#"{"applicantId":"a1","levelName":"basic-kyc-level","type":"applicantPending","reviewStatus":"pending","reviewResult":{"reviewAnswer":"GREEN"},"createdAtMs":"2020-02-21 13:23:19.321"}"#;
        let Ok(Incoming::Event { event, .. }) = parse(body, 0) else { panic!("an event") };
        assert!(matches!(event.reported, Reported::Verification { state: KycState::Pending, .. }));
        assert_eq!(
            parse(br#"{"type":"videoIdentStatusChanged"}"#, 0),
            Ok(Incoming::Ignored { event_type: "videoIdentStatusChanged".into() })
        );
        let no_status = br#"{"type":"applicantReviewed","applicantId":"a1","levelName":"l","createdAtMs":"2020-02-21 13:23:19.321"}"#;
        assert!(parse(no_status, 0).is_err(), "no reviewStatus");
        // Without its time a review cannot be ordered: it only says the applicant changed.
        let untimed = br#"{"type":"applicantReviewed","applicantId":"a1","levelName":"l","reviewStatus":"completed"}"#;
        let Ok(Incoming::Event { event, .. }) = parse(untimed, 7) else { panic!("an event") };
        assert_eq!((event.reported, event.occurred_at), (Reported::UserChanged, 7));
    }
}
