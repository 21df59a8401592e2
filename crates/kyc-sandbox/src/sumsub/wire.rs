//! The sandbox Sumsub's own copy of Sumsub's wire format (Sumsub's API reference: applicants, reviews, errors), as
//! it writes it. The client reads with its own models, so the contract tests catch a field misspelt on either side.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applicant {
    /// 24 hex characters.
    pub id: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspection_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Info>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// `individual` or `company`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_id_docs: Option<RequiredIdDocs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ApplicantReview>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dob: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_of_birth: Option<String>,
    /// ISO 3166-1 alpha-3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id_docs: Vec<IdDoc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdDoc {
    /// `PASSPORT`, `ID_CARD`, `DRIVERS`, ...
    pub id_doc_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredIdDocs {
    pub doc_sets: Vec<DocSet>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocSet {
    pub id_doc_set_type: String,
    #[serde(default)]
    pub types: Vec<String>,
}

/// The applicant's review; also what `GET .../status` answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicantReview {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_cnt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_since_pending_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_result: Option<ReviewResult>,
    /// `init`, `pending`, `prechecked`, `queued`, `completed` or `onHold`.
    pub review_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResult {
    /// `GREEN` or `RED`; meaningful only once the review is `completed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_answer: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reject_labels: Vec<String>,
    /// `FINAL` or `RETRY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_reject_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderation_comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_comment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub button_ids: Vec<String>,
}

/// Sumsub's error body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub description: String,
    pub code: u16,
    pub correlation_id: String,
}

/// A webhook (`applicantReviewed`, `applicantPending`) in the shape of the examples of Sumsub's "Receive and
/// interpret results via API": references and the review's outcome, no personal data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWire {
    pub applicant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspection_id: Option<String>,
    /// `req-<uuid>`, new for every event.
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level_name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_result: Option<ReviewResult>,
    pub review_status: String,
    /// `YYYY-MM-DD HH:MM:SS.mmm`, UTC.
    pub created_at_ms: String,
    pub sandbox_mode: bool,
}

/// The body of Sumsub's sandbox-only `POST /resources/applicants/{applicantId}/status/testCompleted` (and of the
/// sandbox's `POST /_sandbox/applicants/{externalUserId}/review`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestCompletedWire {
    /// `GREEN` or `RED`.
    pub review_answer: String,
    #[serde(default)]
    pub reject_labels: Vec<String>,
    /// `FINAL` or `RETRY`; a RED answer needs one.
    #[serde(default)]
    pub review_reject_type: Option<String>,
    #[serde(default)]
    pub moderation_comment: Option<String>,
    #[serde(default)]
    pub client_comment: Option<String>,
}
