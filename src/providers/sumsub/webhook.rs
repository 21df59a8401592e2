//! Sumsub's webhooks (seed 003 and Sumsub's webhook documentation): a flat JSON object with `type`, `applicantId`,
//! `externalUserId`, `levelName`, `reviewStatus`, `reviewResult` and `createdAtMs`, and no personal data. Sumsub
//! gives no event id (`correlationId` names the request that caused it): a redelivery is the same body.

use serde::Deserialize;
use time::macros::format_description;
use time::PrimitiveDateTime;

use crate::domain::events::{bounded, Incoming, MalformedEvent, ProviderEvent, Reported, Subject};
use crate::domain::{states, Provider};

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
            let state = states::sumsub(&status, answer, reject_type);
            Reported::Verification { ordering_key: level.clone(), level, provider_status: status, state }
        }
        _ => Reported::UserChanged,
    };
    let event = ProviderEvent {
        provider: Provider::Sumsub,
        event_type: payload.event_type,
        subject: Subject::SumsubApplicant { applicant_id, external_user_id },
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
    fn seed_003_s_red_final_example_reads_as_a_rejection_at_its_time() {
        let body = br#"{"applicantId":"5cb744200a975a67ed1798a4","inspectionId":"5cb744200a975a67ed1798a5","correlationId":"req-fa94263f-0b23-42d7-9393-ab10b28ef42d","externalUserId":"externalUserId","levelName":"basic-kyc-level","type":"applicantReviewed","reviewResult":{"moderationComment":"We could not verify your profile.","clientComment":" Suspected fraudulent account.","reviewAnswer":"RED","rejectLabels":["UNSATISFACTORY_PHOTOS","GRAPHIC_EDITOR","FORGERY"],"reviewRejectType":"FINAL"},"reviewStatus":"completed","createdAtMs":"2020-02-21 13:23:19.001"}"#;
        let Ok(Incoming::Event { event, .. }) = parse(body, 0) else { panic!("an event") };
        assert_eq!(event.occurred_at, 1_582_291_399_001);
        assert_eq!(
            event.subject,
            Subject::SumsubApplicant {
                applicant_id: "5cb744200a975a67ed1798a4".into(),
                external_user_id: Some("externalUserId".into())
            }
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
