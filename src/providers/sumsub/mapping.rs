//! A Sumsub applicant -> one verification case: its review decides the state, its level maps to items through
//! configuration, and `info` fills the details fields of the gateway's details table.

use std::sync::Arc;

use serde_json::{Map, Value};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::models::Applicant;
use super::states;
use crate::domain::levels::LevelMap;
use crate::domain::{Credential, KycState, Provider, RejectLabel, Review, VerificationCase};

/// A rejection label, with its meaning where Sumsub documents it.
fn label(code: &str) -> RejectLabel {
    let known = kyc_vocabulary::sumsub_labels::reject_label(code);
    RejectLabel {
        code: code.to_owned(),
        description: known.map(|l| l.description),
        is_final: known.map(|l| l.is_final),
    }
}

/// Sumsub's `YYYY-MM-DD HH:MM:SS`, in UTC.
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let head = text.get(..19)?;
    PrimitiveDateTime::parse(head, format).ok().map(PrimitiveDateTime::assume_utc)
}

/// ISO 3166-1 alpha-3 -> alpha-2 for the countries the details table should show in alpha-2. Others pass through.
fn alpha2(alpha3: &str) -> String {
    const CODES: [(&str, &str); 24] = [
        ("AUS", "AU"),
        ("AUT", "AT"),
        ("BEL", "BE"),
        ("BRA", "BR"),
        ("CAN", "CA"),
        ("CHE", "CH"),
        ("DEU", "DE"),
        ("DNK", "DK"),
        ("ESP", "ES"),
        ("FRA", "FR"),
        ("GBR", "GB"),
        ("HKG", "HK"),
        ("IND", "IN"),
        ("IRL", "IE"),
        ("ITA", "IT"),
        ("JPN", "JP"),
        ("NLD", "NL"),
        ("NOR", "NO"),
        ("POL", "PL"),
        ("PRT", "PT"),
        ("ROU", "RO"),
        ("SGP", "SG"),
        ("SWE", "SE"),
        ("USA", "US"),
    ];
    CODES
        .iter()
        .find(|(a3, _)| a3.eq_ignore_ascii_case(alpha3))
        .map(|(_, a2)| a2.to_string())
        .unwrap_or_else(|| alpha3.to_owned())
}

fn details(applicant: &Applicant) -> Option<Map<String, Value>> {
    let info = applicant.info.as_ref()?;
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            out.insert(key.to_owned(), Value::String(v));
        }
    };
    let name =
        [info.first_name.as_deref(), info.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    put("full_name", Some(name));
    put("date_of_birth", info.dob.clone());
    put("place_of_birth", info.place_of_birth.clone());
    put("residential_address_country", info.country.as_deref().map(alpha2));
    let document = info.id_docs.iter().find_map(|d| {
        let kind = match d.id_doc_type.as_str() {
            "PASSPORT" => "passport",
            "ID_CARD" => "national_id",
            "DRIVERS" => "drivers_license",
            _ => return None,
        };
        Some((kind, d))
    });
    if let Some((kind, doc)) = document {
        put("identification_document_type", Some(kind.to_owned()));
        put("identification_document_number", doc.number.clone());
        put("identification_document_country", doc.country.as_deref().map(alpha2));
        put("identification_document_date_of_issue", doc.issued_date.clone());
        put("identification_document_date_of_expiry", doc.valid_until.clone());
    }
    (!out.is_empty()).then_some(out)
}

/// The applicant as a verification case.
pub fn case(applicant: &Applicant, levels: &LevelMap) -> VerificationCase {
    let review = applicant.review.as_ref();
    let status = review.map(|r| r.review_status.clone()).unwrap_or_else(|| "init".to_owned());
    let result = review.and_then(|r| r.review_result.clone()).unwrap_or_default();
    let completed = status == "completed";
    let answer = result.review_answer.as_deref().filter(|_| completed);
    let reject_type = result.review_reject_type.as_deref();
    let state = states::state(&status, answer, reject_type);
    let level = review.and_then(|r| r.level_name.clone()).unwrap_or_else(|| "unknown".to_owned());
    let mut case = VerificationCase::new(
        Provider::Sumsub,
        applicant.id.clone(),
        level.clone(),
        levels.items(&level),
        state,
        status,
    );
    case.credential = Some(match state {
        KycState::Approved => Credential::Approved,
        KycState::Rejected => Credential::Rejected,
        _ => Credential::Pending,
    });
    case.retryable = match (completed, answer) {
        (true, Some("RED")) => Some(reject_type == Some("RETRY")),
        (true, Some(_)) => Some(false),
        _ => None,
    };
    case.review = review.and(Some(Review {
        answer: answer.map(str::to_owned),
        reject_type: result.review_reject_type.clone().filter(|_| answer == Some("RED")),
        reject_labels: result.reject_labels.iter().map(|code| label(code)).collect(),
        moderation_comment: result.moderation_comment.clone(),
        client_comment: result.client_comment.clone(),
    }));
    case.details = details(applicant).map(Arc::new);
    case.requested_at = parse_time(&applicant.created_at);
    case.updated_at = review.and_then(|r| r.review_date.as_deref()).and_then(parse_time);
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_red_final_example_of_seed_003_maps_to_a_rejected_case_that_cannot_be_retried() {
        let json = r#"{"id":"5cb744200a975a67ed1798a4","createdAt":"2020-02-21 13:20:01","externalUserId":"u",
            "info":{"firstName":"David","lastName":"Muller","dob":"1967-08-16","country":"DEU",
                    "idDocs":[{"idDocType":"PASSPORT","country":"DEU","number":"123456789"}]},
            "review":{"levelName":"basic-kyc-level","reviewStatus":"completed","reviewDate":"2020-02-21 13:23:19",
              "reviewResult":{"moderationComment":"We could not verify your profile.","clientComment":" Suspected fraudulent account.",
                "reviewAnswer":"RED","rejectLabels":["UNSATISFACTORY_PHOTOS","GRAPHIC_EDITOR","FORGERY"],"reviewRejectType":"FINAL"}}}"#;
        let applicant: Applicant = serde_json::from_str(json).expect("parses");
        let levels = LevelMap::parse("basic-kyc-level=basic+selfie+liveness").expect("levels");
        let case = case(&applicant, &levels);
        assert_eq!(case.state, KycState::Rejected);
        assert_eq!(case.items, ["basic", "selfie", "liveness"]);
        assert_eq!(case.retryable, Some(false));
        let review = case.review.expect("review");
        let codes: Vec<&str> = review.reject_labels.iter().map(|l| l.code.as_str()).collect();
        assert_eq!(codes, ["UNSATISFACTORY_PHOTOS", "GRAPHIC_EDITOR", "FORGERY"]);
        assert_eq!(review.reject_labels[2].is_final, Some(true), "FORGERY is one of Sumsub's final labels");
        assert_eq!(review.reject_type.as_deref(), Some("FINAL"));
        let details = case.details.expect("details");
        assert_eq!(details["full_name"], "David Muller");
        assert_eq!(details["identification_document_country"], "DE");
        assert_eq!(case.updated_at.map(|t| t.unix_timestamp()), Some(1_582_291_399));
    }
}
