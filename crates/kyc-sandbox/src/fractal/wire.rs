//! The sandbox Fractal's own copy of Fractal's wire format (Fractal's developer documentation), as it writes it. The
//! client reads with its own models: the two are kept apart so that a misspelt field on one side is caught by the
//! contract tests, not hidden by the other side making the same mistake.

use serde::Serialize;

/// `POST /oauth/token` answer.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// `bearer` for user grants, `Bearer` for client credentials.
    pub token_type: String,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    pub created_at: u64,
}

/// OAuth error body.
#[derive(Debug, Clone, Serialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// `GET /v2/users/me`: only the fields the token's scopes allow are present.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UserInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<EmailWire>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneWire>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallets: Option<Vec<WalletWire>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_cases: Option<Vec<CaseWire>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmailWire {
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhoneWire {
    pub number: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WalletWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub address: String,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_completed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One row of `/v2/stats/user-verifications`.
#[derive(Debug, Clone, Serialize)]
pub struct UserVerificationWire {
    pub user_id: String,
    pub level: String,
    pub credential: String,
}

/// A verification webhook (`verification_approved`, `verification_rejected`, `verification_contacted`): one per level
/// or add-on. Fields in the order of Fractal's documented example, whose signature is a test vector.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookWire {
    #[serde(rename = "type")]
    pub kind: String,
    pub data: VerificationEventWire,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationEventWire {
    /// One level or add-on (`plus`, `selfie`), never a combined `plus+selfie`.
    pub level: String,
    pub user_id: String,
    /// RFC 3339, UTC, whole seconds: `2020-10-09T10:50:32Z`.
    pub timestamp: String,
}

/// `POST /_sandbox/verifications`: the sandbox's own admin request, not Fractal's.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeVerificationWire {
    pub uid: String,
    /// One of the user's case levels, `plus+selfie` say.
    pub level: String,
    /// `approved`, `rejected` or `contacted`.
    pub status: String,
}
