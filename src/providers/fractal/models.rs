//! Fractal's wire format (seeds 000 and 001, `providers/fractal.md`). Shared by the client and the sandbox server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /oauth/token` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// `bearer` for user grants, `Bearer` for client credentials.
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: String,
    pub created_at: u64,
}

/// OAuth error body of the token and resource endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// `GET /v2/users/me`: only the fields the token's scopes allow are present.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<EmailWire>>,
    /// Seed 001's first example spells the key `phones:`; accept both.
    #[serde(default, alias = "phones:", skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneWire>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallets: Option<Vec<WalletWire>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_cases: Option<Vec<CaseWire>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailWire {
    pub address: String,
    /// `registration`, `journey` or `obsolete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneWire {
    pub number: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WalletWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub address: String,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey_completed: Option<bool>,
    /// `pending`, `contacted` or `done` (seed 001's examples also show `approved` here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `pending`, `approved` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default)]
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Counts per status, as `/v2/stats/total-verifications` answers (zero counts may be omitted).
pub type StatusCountsWire = BTreeMap<String, u64>;

/// One row of `/v2/stats/user-verifications`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserVerificationWire {
    pub user_id: String,
    pub level: String,
    /// The verification's status: approved, pending, contacted, rejected (or expired).
    pub credential: String,
}
