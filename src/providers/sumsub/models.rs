//! Sumsub's wire format as the client reads it (Sumsub's API reference: applicants, reviews and webhooks). The
//! sandbox has its own copy; the contract tests parse the documentation's example payloads with these.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applicant {
    /// 24 hex characters.
    pub id: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub inspection_id: Option<String>,
    #[serde(default)]
    pub external_user_id: Option<String>,
    #[serde(default)]
    pub info: Option<Info>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    /// `individual` or `company`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub required_id_docs: Option<RequiredIdDocs>,
    #[serde(default)]
    pub review: Option<ApplicantReview>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub dob: Option<String>,
    #[serde(default)]
    pub place_of_birth: Option<String>,
    /// ISO 3166-1 alpha-3.
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub id_docs: Vec<IdDoc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdDoc {
    /// `PASSPORT`, `ID_CARD`, `DRIVERS`, ...
    pub id_doc_type: String,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub issued_date: Option<String>,
    #[serde(default)]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredIdDocs {
    pub doc_sets: Vec<DocSet>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocSet {
    pub id_doc_set_type: String,
    #[serde(default)]
    pub types: Vec<String>,
}

/// The applicant's review; also what `GET .../status` answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicantReview {
    #[serde(default)]
    pub review_id: Option<String>,
    #[serde(default)]
    pub attempt_id: Option<String>,
    #[serde(default)]
    pub attempt_cnt: Option<u32>,
    #[serde(default)]
    pub level_name: Option<String>,
    #[serde(default)]
    pub create_date: Option<String>,
    #[serde(default)]
    pub review_date: Option<String>,
    #[serde(default)]
    pub elapsed_since_pending_ms: Option<u64>,
    #[serde(default)]
    pub review_result: Option<ReviewResult>,
    /// `init`, `pending`, `prechecked`, `queued`, `completed` or `onHold`.
    pub review_status: String,
    #[serde(default)]
    pub priority: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResult {
    /// `GREEN` or `RED`; meaningful only once the review is `completed`.
    #[serde(default)]
    pub review_answer: Option<String>,
    #[serde(default)]
    pub reject_labels: Vec<String>,
    /// `FINAL` or `RETRY`.
    #[serde(default)]
    pub review_reject_type: Option<String>,
    #[serde(default)]
    pub moderation_comment: Option<String>,
    #[serde(default)]
    pub client_comment: Option<String>,
    #[serde(default)]
    pub button_ids: Vec<String>,
}

/// A webhook Sumsub sends (`applicantReviewed`, `applicantPending`, ...): no personal data, only references and the
/// review's outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub applicant_id: String,
    #[serde(default)]
    pub inspection_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Our own user id, as the applicant was created with it.
    #[serde(default)]
    pub external_user_id: Option<String>,
    #[serde(default)]
    pub level_name: Option<String>,
    /// `applicantReviewed`, `applicantPending`, `applicantOnHold`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub review_result: Option<ReviewResult>,
    #[serde(default)]
    pub review_status: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS.mmm`, UTC.
    #[serde(default)]
    pub created_at_ms: Option<String>,
    #[serde(default)]
    pub sandbox_mode: Option<bool>,
    #[serde(default)]
    pub client_id: Option<String>,
}
