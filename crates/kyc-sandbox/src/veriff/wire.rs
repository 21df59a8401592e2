//! The sandbox Veriff's own copy of Veriff's wire format (its API reference: `POST /v1/sessions`,
//! `GET /v1/sessions/{id}/decision`, the decision webhook, errors), as it writes it. Veriff keeps a field it has no
//! value for as `null`. The client reads with its own models, so the contract tests catch a misspelt field.

use serde::{Deserialize, Serialize};

/// The decision endpoint's answer and the decision webhook's body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionResponse {
    /// `success`: the message's status.
    pub status: String,
    /// `null` until the session has a decision.
    pub verification: Option<Decision>,
    pub technical_data: TechnicalData,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub id: String,
    pub attempt_id: String,
    /// 9001, 9102, 9103, 9104 or 9121.
    pub code: u32,
    pub status: String,
    pub reason: Option<String>,
    pub reason_code: Option<u32>,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub decision_time: String,
    pub acceptance_time: String,
    pub vendor_data: Option<String>,
    pub end_user_id: Option<String>,
    pub person: Option<Person>,
    pub document: Option<Document>,
    /// Deprecated, always empty.
    pub comments: Vec<serde_json::Value>,
    pub additional_verified_data: serde_json::Value,
    pub risk_labels: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Person {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub year_of_birth: Option<String>,
    pub place_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub id_number: Option<String>,
    pub gender: Option<String>,
    /// Deprecated, always null.
    pub citizenship: Option<String>,
    /// Legacy, always null.
    pub pep_sanction_match: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub number: Option<String>,
    /// `PASSPORT`, `ID_CARD`, `RESIDENCE_PERMIT` or `DRIVERS_LICENSE`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TechnicalData {
    pub ip: Option<String>,
}

/// Veriff's error body: `code` is a string.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub status: String,
    pub code: String,
    pub message: String,
}

/// `POST /v1/sessions`'s body: `{"verification": {...}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CreateSessionRequest {
    pub verification: Option<NewSession>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSession {
    #[serde(default)]
    pub callback: Option<String>,
    /// Checked by hand: Veriff answers 1501 for a value that is not a string.
    #[serde(default)]
    pub vendor_data: Option<serde_json::Value>,
    #[serde(default)]
    pub end_user_id: Option<String>,
    #[serde(default)]
    pub person: Option<Person>,
}

/// `POST /v1/sessions`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct CreateSessionResponse {
    pub status: String,
    pub verification: CreatedSession,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSession {
    pub id: String,
    pub url: String,
    pub vendor_data: Option<String>,
    pub host: String,
    /// `created`.
    pub status: String,
    pub session_token: String,
}

/// `POST /_sandbox/sessions/{id}/decision`: the sandbox's own admin body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeDecisionWire {
    pub status: String,
    #[serde(default)]
    pub reason_code: Option<u32>,
    #[serde(default)]
    pub reason: Option<String>,
}
