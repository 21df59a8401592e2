//! Veriff's wire format as the client reads it (Veriff's API reference: `GET /v1/sessions/{id}/decision` and the
//! decision webhook, which carry the same `verification` object). The sandbox has its own copy; the contract tests
//! parse the documentation's example payloads with these. Veriff may leave any field null or out.

use serde::{Deserialize, Deserializer};

/// `GET /v1/sessions/{id}/decision`'s answer, and the decision webhook's body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionResponse {
    /// `success`: the status of the message, not of the decision.
    pub status: String,
    /// `null` while the session has no decision yet.
    #[serde(default)]
    pub verification: Option<Decision>,
    #[serde(default)]
    pub technical_data: Option<TechnicalData>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The session's id (a UUID).
    pub id: String,
    #[serde(default)]
    pub attempt_id: Option<String>,
    /// 9001, 9102, 9103, 9104 or 9121; read for logs only (the documentation's tables disagree on 9104 and 9121).
    #[serde(default)]
    pub code: Option<i64>,
    /// `approved`, `declined`, `resubmission_requested`, `review`, `expired` or `abandoned`.
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// A number in the examples, a string in the decision-codes table: read as text.
    #[serde(default, deserialize_with = "number_or_text")]
    pub reason_code: Option<String>,
    /// RFC 3339, milliseconds or microseconds.
    #[serde(default)]
    pub decision_time: Option<String>,
    /// When the session was created, RFC 3339.
    #[serde(default)]
    pub acceptance_time: Option<String>,
    /// The integrator's reference to the person: the gateway user id.
    #[serde(default)]
    pub vendor_data: Option<String>,
    /// The integrator's UUID of the person, where it sends one.
    #[serde(default)]
    pub end_user_id: Option<String>,
    #[serde(default)]
    pub person: Option<Person>,
    #[serde(default)]
    pub document: Option<Document>,
    /// Deprecated; always empty.
    #[serde(default)]
    pub comments: Vec<serde_json::Value>,
    #[serde(default)]
    pub additional_verified_data: Option<serde_json::Value>,
    #[serde(default)]
    pub risk_labels: Vec<RiskLabel>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub date_of_birth: Option<String>,
    #[serde(default)]
    pub year_of_birth: Option<String>,
    #[serde(default)]
    pub place_of_birth: Option<String>,
    #[serde(default)]
    pub nationality: Option<String>,
    /// A national identification number (not the document's number).
    #[serde(default)]
    pub id_number: Option<String>,
    #[serde(default)]
    pub gender: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    #[serde(default)]
    pub number: Option<String>,
    /// `PASSPORT`, `ID_CARD`, `RESIDENCE_PERMIT`, `DRIVERS_LICENSE`, `VISA` or `OTHER`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskLabel {
    pub label: String,
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TechnicalData {
    #[serde(default)]
    pub ip: Option<String>,
}

/// Veriff's error body: `{"status": "fail", "code": "1818", "message": "..."}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub status: serde_json::Value,
    #[serde(default, deserialize_with = "number_or_text")]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// A JSON number or string as text; `null` as `None`.
fn number_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(deserializer)? {
        Some(serde_json::Value::String(text)) => Some(text),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}
