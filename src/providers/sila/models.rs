//! Sila's wire format as the client writes and reads it (Sila's API reference: `auth_token`, `get_verifications`).
//! The sandbox has its own copy; the contract tests parse the documentation's example payloads with these.

use serde::{Deserialize, Serialize};

/// The `header` every Sila request carries.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// Unix seconds; not in the future, not more than 5 minutes old.
    pub created: i64,
    pub app_handle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<String>,
    /// `0.2`, `v0.2` or `V0.2` when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderOnly {
    pub header: Header,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccessToken {
    pub token: String,
    /// Unix seconds at which the token expires.
    pub expiration: i64,
    /// Seconds the token has left (not in every answer: `expiration` says it too).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl AccessToken {
    /// Seconds the token has left.
    pub fn seconds_left(&self) -> u64 {
        self.expires_in.unwrap_or_else(|| (self.expiration - crate::clock::unix_seconds()).max(0) as u64)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthTokenResponse {
    pub success: bool,
    #[serde(default)]
    pub status: Option<String>,
    pub access_token: AccessToken,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VerificationSummary {
    pub verification_uuid: String,
    /// The KYC flow's uuid.
    pub flow: String,
    pub verification_status: String,
    /// Unix seconds of the `/kyc` call.
    pub requested_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VerificationsResponse {
    pub success: bool,
    // The documentation's example answer carries neither `status` nor the references.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub sila_reference_id: Option<String>,
    pub verifications: Vec<VerificationSummary>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reasons {
    /// Alloy reason tags; never shown to end users.
    #[serde(default)]
    pub for_kyc_response: Vec<String>,
}

/// `POST /0.2/get_verifications/<uuid>`: one verification in full; the client reads its status and reason tags.
#[derive(Debug, Clone, Deserialize)]
pub struct VerificationResponse {
    pub success: bool,
    #[serde(default)]
    pub verification_id: Option<String>,
    pub verification_status: String,
    #[serde(default)]
    pub reasons: Reasons,
    /// `entity_data`, `doc_upload`, `review` or null.
    #[serde(default)]
    pub kyc_action: Option<String>,
}
