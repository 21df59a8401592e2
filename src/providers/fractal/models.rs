//! Fractal's wire format as the client reads it (Fractal's developer documentation: "User information retrieval" and
//! "Client statistics"). The sandbox has its own copy; the contract tests parse the documentation's example payloads
//! with these.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `POST /oauth/token` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// `bearer` for user grants, `Bearer` for client credentials.
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: String,
    pub created_at: u64,
}

/// OAuth error body of the token and resource endpoints.
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// `GET /v2/users/me`: only the fields the token's scopes allow are present.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserInfo {
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub emails: Option<Vec<EmailWire>>,
    /// The documentation's first example spells the key `phones:`; accept both.
    #[serde(default, alias = "phones:")]
    pub phones: Option<Vec<PhoneWire>>,
    #[serde(default)]
    pub wallets: Option<Vec<WalletWire>>,
    #[serde(default)]
    pub verification_cases: Option<Vec<CaseWire>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailWire {
    pub address: String,
    /// `registration`, `journey` or `obsolete`.
    #[serde(default)]
    pub source_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhoneWire {
    pub number: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WalletWire {
    #[serde(default)]
    pub id: Option<String>,
    pub address: String,
    pub currency: String,
    #[serde(default)]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaseWire {
    #[serde(default)]
    pub id: Option<String>,
    pub level: String,
    #[serde(default)]
    pub journey_completed: Option<bool>,
    /// `pending`, `contacted` or `done` (the documentation's examples also show `approved` here).
    #[serde(default)]
    pub status: Option<String>,
    /// `pending`, `approved` or `rejected`.
    #[serde(default)]
    pub credential: Option<String>,
    #[serde(default)]
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Counts per status, as `/v2/stats/total-verifications` answers (zero counts may be omitted).
pub type StatusCountsWire = BTreeMap<String, u64>;

/// One row of `/v2/stats/user-verifications`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserVerificationWire {
    pub user_id: String,
    pub level: String,
    /// The verification's status: approved, pending, contacted, rejected (or expired).
    pub credential: String,
}
