//! A Veriff session's decision -> one verification case: its status decides the state, the integration's level maps
//! to items through configuration, `person` and `document` fill the details table, and `reasonCode` with `reason`
//! are carried as the case's reasons (they come in the decision: no call of their own).

use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::models::Decision;
use super::{states, VeriffSessionId, LEVEL};
use crate::domain::levels::LevelMap;
use crate::domain::{Credential, KycState, Provider, Reasons, VerificationCase};

/// RFC 3339 text (Veriff's `decisionTime` and `acceptanceTime`).
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// The details table's document type for Veriff's; a type the table has no word for is left out.
fn document_type(kind: &str) -> Option<&'static str> {
    match kind {
        "PASSPORT" => Some("passport"),
        "ID_CARD" => Some("national_id"),
        "DRIVERS_LICENSE" => Some("drivers_license"),
        _ => None,
    }
}

fn details(decision: &Decision) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            out.insert(key.to_owned(), Value::String(v));
        }
    };
    if let Some(person) = &decision.person {
        let joined = [person.first_name.as_deref(), person.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|n| !n.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        put("full_name", person.full_name.clone().or(Some(joined)));
        put("date_of_birth", person.date_of_birth.clone());
        put("place_of_birth", person.place_of_birth.clone());
    }
    if let Some(document) = &decision.document {
        put("identification_document_type", document.kind.as_deref().and_then(document_type).map(str::to_owned));
        put("identification_document_number", document.number.clone());
        // The table holds alpha-2 codes, which Veriff documents for `document.country`.
        let country = document.country.as_deref().filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()));
        put("identification_document_country", country.map(str::to_ascii_uppercase));
        put("identification_document_date_of_issue", document.valid_from.clone());
        put("identification_document_date_of_expiry", document.valid_until.clone());
    }
    (!out.is_empty()).then_some(out)
}

/// `reasonCode` and `reason` as one tag (`102: Suspected document tampering`), or either alone.
fn reasons(decision: &Decision) -> Option<Vec<String>> {
    let code = decision.reason_code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let reason = decision.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let tag = match (code, reason) {
        (Some(code), Some(reason)) => format!("{code}: {reason}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => return None,
    };
    Some(vec![tag])
}

/// A session's decision as a verification case.
pub fn case(decision: &Decision, levels: &LevelMap) -> VerificationCase {
    let status = decision.status.as_str();
    let state = states::state(status);
    let mut case = VerificationCase::new(
        Provider::Veriff,
        decision.id.clone(),
        LEVEL.to_owned(),
        levels.items(LEVEL),
        state,
        decision.status.clone(),
    );
    case.credential = match state {
        KycState::Approved => Some(Credential::Approved),
        KycState::Rejected => Some(Credential::Rejected),
        // Lapsed before anything was analysed.
        KycState::Expired => None,
        _ => Some(Credential::Pending),
    };
    case.journey_completed = match status {
        "approved" | "declined" | "review" => Some(true),
        "resubmission_requested" | "expired" | "abandoned" => Some(false),
        _ => None,
    };
    // Veriff takes a resubmission in the same session; after any other decision a new session is needed.
    case.retryable = match status {
        "resubmission_requested" => Some(true),
        "approved" | "declined" | "expired" | "abandoned" => Some(false),
        _ => None,
    };
    case.reasons = reasons(decision).map(|tags| Reasons::Carried(Arc::new(tags)));
    case.details = details(decision).map(Arc::new);
    case.requested_at = decision.acceptance_time.as_deref().and_then(parse_time);
    case.updated_at = decision.decision_time.as_deref().and_then(parse_time);
    case
}

/// A session without a decision yet (`verification: null`): PENDING, nothing else known.
pub fn undecided(session: &VeriffSessionId, levels: &LevelMap) -> VerificationCase {
    let mut case = VerificationCase::new(
        Provider::Veriff,
        session.to_string(),
        LEVEL.to_owned(),
        levels.items(LEVEL),
        KycState::Pending,
        states::NO_DECISION.to_owned(),
    );
    case.credential = Some(Credential::Pending);
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::veriff::models::DecisionResponse;

    fn levels() -> LevelMap {
        LevelMap::parse(super::super::DEFAULT_LEVELS).expect("levels")
    }

    fn decision(json: serde_json::Value) -> Decision {
        let answer: DecisionResponse = serde_json::from_value(json).expect("parses");
        answer.verification.expect("a decision")
    }

    #[test]
    fn an_approved_decision_is_an_approved_basic_selfie_liveness_case_with_its_person_and_document() {
        let decision = decision(serde_json::json!({
            "status": "success",
            "verification": {
                "id": "12df6045-3846-3e45-946a-14fa6136d78b", "code": 9001, "status": "approved",
                "reason": null, "reasonCode": null,
                "decisionTime": "2019-11-06T07:18:36.916Z", "acceptanceTime": "2019-11-06T07:15:27.000Z",
                "vendorData": "12345678",
                "person": { "firstName": "SARAH", "lastName": "MORGAN", "dateOfBirth": "1967-03-30",
                            "placeOfBirth": "MADRID", "idNumber": null },
                "document": { "type": "DRIVERS_LICENSE", "number": "MORGA753116SM9IJ", "country": "GB",
                              "validFrom": null, "validUntil": "2022-04-20" }
            }
        }));
        let case = case(&decision, &levels());
        assert_eq!((case.provider, case.state, case.provider_status.as_str()), (Provider::Veriff, KycState::Approved, "approved"));
        assert_eq!((case.level.as_str(), case.items.clone()), ("idv", vec!["basic".to_owned(), "selfie".into(), "liveness".into()]));
        assert_eq!((case.credential, case.retryable, case.journey_completed), (Some(Credential::Approved), Some(false), Some(true)));
        assert_eq!(case.reasons, None, "an approval has no reasons");
        let details = case.details.expect("details");
        assert_eq!(details["full_name"], "SARAH MORGAN");
        assert_eq!(details["date_of_birth"], "1967-03-30");
        assert_eq!(details["identification_document_type"], "drivers_license");
        assert_eq!(details["identification_document_country"], "GB");
        assert_eq!(details["identification_document_date_of_expiry"], "2022-04-20");
        assert!(!details.contains_key("identification_document_date_of_issue"), "validFrom was null");
        assert_eq!(case.updated_at.map(|t| t.unix_timestamp()), Some(1_573_024_716));
        assert_eq!(case.requested_at.map(|t| t.unix_timestamp()), Some(1_573_024_527));
    }

    #[test]
    fn a_declined_decision_carries_its_reason_code_and_reason_and_a_resubmission_may_be_retried() {
        let declined = decision(serde_json::json!({ "status": "success", "verification": {
            "id": "s1", "status": "declined", "code": 9102, "reasonCode": 102, "reason": "Suspected document tampering"
        }}));
        let case = case(&declined, &levels());
        assert_eq!((case.state, case.retryable, case.credential), (KycState::Rejected, Some(false), Some(Credential::Rejected)));
        assert_eq!(case.reasons, Some(Reasons::Carried(Arc::new(vec!["102: Suspected document tampering".into()]))));
        assert!(case.details.is_none());
        let resubmit = decision(serde_json::json!({ "status": "success", "verification": {
            "id": "s1", "status": "resubmission_requested", "reasonCode": "204", "reason": null
        }}));
        let case = super::case(&resubmit, &levels());
        assert_eq!((case.state, case.retryable), (KycState::ActionRequired, Some(true)));
        assert_eq!(case.reasons, Some(Reasons::Carried(Arc::new(vec!["204".into()]))), "a string code reads too");
        let expired = decision(serde_json::json!({ "status": "success", "verification": { "id": "s1", "status": "abandoned" }}));
        let case = super::case(&expired, &levels());
        assert_eq!((case.state, case.credential, case.retryable), (KycState::Expired, None, Some(false)));
    }

    #[test]
    fn a_session_without_a_decision_is_pending() {
        let answer: DecisionResponse =
            serde_json::from_str(r#"{"status":"success","verification":null}"#).expect("parses");
        assert!(answer.verification.is_none());
        let case = undecided(&VeriffSessionId::trusted("s1"), &levels());
        assert_eq!((case.state, case.provider_status.as_str()), (KycState::Pending, "decision_pending"));
    }
}
