//! The sandbox Sila's own copy of Sila's wire format (Sila's API reference), as it reads requests and writes
//! answers. The client has its own, so the contract tests catch a field misspelt on either side.

use serde::{Deserialize, Serialize};

/// The `header` every Sila request carries.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    /// Unix seconds; not in the future, not more than 5 minutes old.
    pub created: i64,
    pub app_handle: String,
    #[serde(default)]
    pub user_handle: Option<String>,
    /// `0.2`, `v0.2` or `V0.2` when present.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HeaderOnly {
    pub header: Header,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessToken {
    pub token: String,
    /// Unix seconds at which the token expires.
    pub expiration: i64,
    /// Seconds the token has left.
    pub expires_in: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthTokenResponse {
    pub success: bool,
    pub status: String,
    pub access_token: AccessToken,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationSummary {
    pub verification_uuid: String,
    /// The KYC flow's uuid.
    pub flow: String,
    pub verification_status: String,
    /// Unix seconds of the `/kyc` call.
    pub requested_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationsResponse {
    pub success: bool,
    pub status: String,
    pub reference: String,
    pub sila_reference_id: String,
    pub verifications: Vec<VerificationSummary>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Reasons {
    /// Alloy reason tags; never shown to end users.
    #[serde(default)]
    pub for_kyc_response: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationResponse {
    pub success: bool,
    pub verification_id: String,
    pub requested_at: i64,
    pub updated_at: i64,
    pub entity_type: String,
    pub verification_status: String,
    pub flow: String,
    #[serde(default)]
    pub checks_performed: Vec<String>,
    pub parent_verification: Option<String>,
    #[serde(default)]
    pub reasons: Reasons,
    /// `entity_data`, `doc_upload`, `review` or null.
    pub kyc_action: Option<String>,
    pub certification_status: Option<String>,
    pub reference: String,
    pub status: String,
    pub sila_reference_id: String,
}

/// Sila's answer when it refuses a request.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub success: bool,
    pub status: String,
    pub message: String,
}

/// A `kyc` webhook (Sila's webhook documentation): `{event_time, event_type, event_uuid, event_details}`.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookWire {
    /// RFC 3339, UTC, with milliseconds.
    pub event_time: String,
    pub event_type: String,
    pub event_uuid: String,
    pub event_details: KycEventDetails,
}

#[derive(Debug, Clone, Serialize)]
pub struct KycEventDetails {
    /// The user handle.
    pub entity: String,
    /// `pending`, `passed`, `failed`, `review`, `member_review` or `documents_required`.
    pub outcome: String,
    /// The verification's KYC flow.
    pub kyc_level: String,
    pub verification_uuid: String,
}

/// `POST /_sandbox/verifications`: the sandbox's own admin request, not Sila's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeVerificationWire {
    pub user_handle: String,
    pub status: String,
    /// Default: the handle's newest verification.
    #[serde(default)]
    pub verification_uuid: Option<String>,
}
