//! The sandbox Sumsub's applicants: both example payloads of Sumsub's review documentation plus generated applicants covering every
//! review status, GREEN and RED answers, RETRY and FINAL rejections with its documented labels, and both comments.

use super::wire::{Applicant, ApplicantReview, DocSet, IdDoc, Info, RequiredIdDocs, ReviewResult};
use crate::rng::Rng;
use kyc_vocabulary::sumsub_labels::REJECT_LABELS;

/// Seed 003's RED, FINAL example.
pub const RED_FINAL_APPLICANT: &str = "5cb744200a975a67ed1798a4";
/// Seed 003's GREEN example.
pub const GREEN_APPLICANT: &str = "5cb56e8e0a975a35f333cb83";
/// A label Sumsub may add after its documentation was written: it passes through without a description.
pub const UNKNOWN_LABEL: &str = "SANDBOX_LABEL_NOT_IN_SEED_003";

/// The sandbox's levels; `KYC_GATEWAY_SUMSUB_LEVELS` maps them to items (see `config.rs`).
pub const LEVELS: [&str; 3] = ["basic-kyc-level", "id-and-liveness", "plus-kyc-level"];

/// The items each of [`LEVELS`] covers, as a gateway's level map reads them.
pub const LEVEL_ITEMS: &str =
    "basic-kyc-level=basic+selfie+liveness; id-and-liveness=basic+liveness; plus-kyc-level=plus+selfie+liveness";

/// (reviewStatus, reviewAnswer, reviewRejectType), cycled through.
const REVIEWS: [(&str, Option<&str>, Option<&str>); 8] = [
    ("init", None, None),
    ("pending", None, None),
    ("queued", None, None),
    ("prechecked", None, None),
    ("onHold", None, None),
    ("completed", Some("GREEN"), None),
    ("completed", Some("RED"), Some("RETRY")),
    ("completed", Some("RED"), Some("FINAL")),
];

const FIRST: [&str; 8] = ["Anna", "Ben", "Chloe", "Daniel", "Eva", "Felix", "Gina", "Henrik"];
const LAST: [&str; 8] = ["Novak", "Berg", "Moreau", "Silva", "Larsen", "Weber", "Rossi", "Kowalski"];
const COUNTRIES: [&str; 6] = ["DEU", "USA", "GBR", "FRA", "DNK", "ROU"];

fn doc_sets(level: &str) -> RequiredIdDocs {
    let set = |kind: &str, types: &[&str]| DocSet {
        id_doc_set_type: kind.into(),
        types: types.iter().map(|t| t.to_string()).collect(),
    };
    let mut sets = vec![set("IDENTITY", &["PASSPORT", "ID_CARD", "DRIVERS"]), set("SELFIE", &["SELFIE"])];
    if level == "plus-kyc-level" {
        sets.push(set("PROOF_OF_RESIDENCE", &["UTILITY_BILL"]));
    }
    RequiredIdDocs { doc_sets: sets }
}

fn date(rng: &mut Rng, from: usize, span: usize) -> String {
    format!("{}-{:02}-{:02}", from + rng.below(span), 1 + rng.below(12), 1 + rng.below(28))
}

fn review(
    level: &str,
    status: &str,
    result: Option<ReviewResult>,
    dates: (&str, &str),
    attempt: u32,
) -> ApplicantReview {
    ApplicantReview {
        review_id: Some(format!("rev{attempt}")),
        attempt_id: Some(format!("att{attempt}")),
        attempt_cnt: Some(attempt),
        level_name: Some(level.into()),
        create_date: Some(dates.0.into()),
        review_date: (status == "completed").then(|| dates.1.into()),
        elapsed_since_pending_ms: (status != "init").then_some(115_879),
        review_result: result,
        review_status: status.into(),
        priority: Some(0),
    }
}

/// One of the documentation's two examples: a completed `basic-kyc-level` review created at `created_at`.
fn documented(
    (id, inspection_id): (&str, &str),
    owner: &str,
    created_at: &str,
    info: Option<Info>,
    result: ReviewResult,
) -> Applicant {
    Applicant {
        id: id.into(),
        created_at: created_at.into(),
        client_id: Some("kyc-gateway-sandbox".into()),
        inspection_id: Some(inspection_id.into()),
        external_user_id: Some(owner.into()),
        info,
        email: None,
        phone: None,
        lang: Some("en".into()),
        kind: Some("individual".into()),
        required_id_docs: Some(doc_sets("basic-kyc-level")),
        review: Some(review("basic-kyc-level", "completed", Some(result), (created_at, "2020-02-21 13:23:19"), 1)),
    }
}

/// The documentation's two examples (Sumsub's "Receive and interpret results via API"), owned by the given gateway
/// users.
fn seed_applicants(red_owner: &str, green_owner: &str) -> [Applicant; 2] {
    let david = Info {
        first_name: Some("David".into()),
        last_name: Some("Muller".into()),
        dob: Some("1967-08-16".into()),
        place_of_birth: Some("Berlin".into()),
        country: Some("DEU".into()),
        id_docs: vec![IdDoc {
            id_doc_type: "PASSPORT".into(),
            country: Some("DEU".into()),
            number: Some("123456789".into()),
            issued_date: Some("2015-03-02".into()),
            valid_until: Some("2025-03-01".into()),
        }],
    };
    let red = ReviewResult {
        review_answer: Some("RED".into()),
        reject_labels: vec!["UNSATISFACTORY_PHOTOS".into(), "GRAPHIC_EDITOR".into(), "FORGERY".into()],
        review_reject_type: Some("FINAL".into()),
        moderation_comment: Some("We could not verify your profile. Please contact support: support@sumsub.com".into()),
        client_comment: Some(" Suspected fraudulent account.".into()),
        button_ids: Vec::new(),
    };
    let green = ReviewResult { review_answer: Some("GREEN".into()), ..Default::default() };
    [
        documented(
            (RED_FINAL_APPLICANT, "5cb744200a975a67ed1798a5"),
            red_owner,
            "2020-02-21 13:20:01",
            Some(david),
            red,
        ),
        documented((GREEN_APPLICANT, "5cb56e8e0a975a35f333cb84"), green_owner, "2020-02-21 13:21:10", None, green),
    ]
}

fn generated(i: usize, owner: &str, rng: &mut Rng) -> Applicant {
    let (status, answer, reject_type) = REVIEWS[(i / 3) % REVIEWS.len()];
    let level = LEVELS[(i / 3 / REVIEWS.len()) % LEVELS.len()];
    let country = *rng.pick(&COUNTRIES);
    let result = answer.map(|answer| {
        let temporary: Vec<&str> = REJECT_LABELS.iter().filter(|l| !l.is_final).map(|l| l.code).collect();
        let finals: Vec<&str> = REJECT_LABELS.iter().filter(|l| l.is_final).map(|l| l.code).collect();
        let mut labels: Vec<String> = match reject_type {
            Some("RETRY") => vec![temporary[i % temporary.len()].into()],
            Some(_) => vec![finals[i % finals.len()].into(), temporary[(i / 2) % temporary.len()].into()],
            None => Vec::new(),
        };
        if reject_type == Some("RETRY") && i.is_multiple_of(7) {
            labels.push(UNKNOWN_LABEL.into());
        }
        let red = answer == "RED";
        ReviewResult {
            review_answer: Some(answer.into()),
            reject_labels: labels,
            review_reject_type: reject_type.map(str::to_owned),
            moderation_comment: red.then(|| "Please upload a clear photo of your document.".into()),
            client_comment: red.then(|| format!("Internal note {i}: document checks failed.")),
            button_ids: Vec::new(),
        }
    });
    let created = format!("{} 10:{:02}:{:02}", date(rng, 2021, 4), rng.below(60), rng.below(60));
    let reviewed = format!("{} 11:{:02}:{:02}", &created[..10], rng.below(60), rng.below(60));
    Applicant {
        id: rng.hex(24),
        created_at: created.clone(),
        client_id: Some("kyc-gateway-sandbox".into()),
        inspection_id: Some(rng.hex(24)),
        external_user_id: Some(owner.into()),
        info: (status != "init").then(|| Info {
            first_name: Some(FIRST[i % FIRST.len()].into()),
            last_name: Some(LAST[(i / 8) % LAST.len()].into()),
            dob: Some(date(rng, 1955, 45)),
            place_of_birth: None,
            country: Some(country.into()),
            id_docs: vec![IdDoc {
                id_doc_type: ["PASSPORT", "ID_CARD", "DRIVERS"][i % 3].into(),
                country: Some(country.into()),
                number: Some(rng.hex(9).to_uppercase()),
                issued_date: Some(date(rng, 2016, 6)),
                valid_until: Some(date(rng, 2027, 8)),
            }],
        }),
        email: None,
        phone: None,
        lang: Some("en".into()),
        kind: Some("individual".into()),
        required_id_docs: Some(doc_sets(level)),
        review: Some(review(level, status, result, (&created, &reviewed), 1 + (i % 2) as u32)),
    }
}

/// Applicants for the gateway users `users` (index 0 is the seed person): the documentation's RED example belongs to user 0,
/// its GREEN example to user 2, and two of every three others have a generated applicant.
pub fn generate(users: &[String], seed: u64) -> Vec<Applicant> {
    let mut rng = Rng::new(seed ^ 0x5u64);
    let mut out = Vec::new();
    for (i, user) in users.iter().enumerate() {
        match i {
            0 | 2 => {}
            _ if i % 3 == 1 => {}
            _ => out.push(generated(i, user, &mut rng)),
        }
    }
    if users.len() > 2 {
        out.extend(seed_applicants(&users[0], &users[2]));
    }
    out
}

/// `GET .../requiredIdDocsStatus`: each required step with its own review result, or null before submission.
pub fn required_docs_status(applicant: &Applicant) -> serde_json::Value {
    let review = applicant.review.as_ref();
    let result = review.and_then(|r| r.review_result.clone());
    let submitted = review.is_some_and(|r| r.review_status != "init");
    let mut out = serde_json::Map::new();
    for (index, set) in applicant.required_id_docs.iter().flat_map(|d| d.doc_sets.iter()).enumerate() {
        let step = match (&result, submitted) {
            (_, false) => serde_json::Value::Null,
            (None, true) => serde_json::json!({ "reviewResult": {}, "idDocType": set.types[0] }),
            (Some(r), true) => {
                // The first step carries a RED answer's labels; the others passed.
                let step_result = if index == 0 || r.review_answer.as_deref() == Some("GREEN") {
                    serde_json::to_value(r).expect("plain data")
                } else {
                    serde_json::json!({ "reviewAnswer": "GREEN" })
                };
                serde_json::json!({ "reviewResult": step_result, "idDocType": set.types[0] })
            }
        };
        out.insert(set.id_doc_set_type.clone(), step);
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn applicants_cover_every_review_and_both_seed_examples() {
        let users: Vec<String> = (0..300).map(|i| format!("user-{i}")).collect();
        let applicants = generate(&users, 42);
        let kinds: HashSet<(String, Option<String>, Option<String>)> = applicants
            .iter()
            .filter_map(|a| a.review.as_ref())
            .map(|r| {
                let result = r.review_result.clone().unwrap_or_default();
                (r.review_status.clone(), result.review_answer, result.review_reject_type)
            })
            .collect();
        assert_eq!(kinds.len(), REVIEWS.len());
        assert!(applicants
            .iter()
            .any(|a| a.id == RED_FINAL_APPLICANT && a.external_user_id.as_deref() == Some("user-0")));
        assert!(applicants.iter().any(|a| a.id == GREEN_APPLICANT && a.external_user_id.as_deref() == Some("user-2")));
        assert!(applicants.iter().any(|a| a
            .review
            .as_ref()
            .and_then(|r| r.review_result.as_ref())
            .is_some_and(|r| r.reject_labels.iter().any(|l| l == UNKNOWN_LABEL))));
        let ids: HashSet<&str> = applicants.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids.len(), applicants.len(), "applicant ids are unique");
    }
}
