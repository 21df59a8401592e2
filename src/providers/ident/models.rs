//! ident's wire format as the client writes and reads it (Provide's ident API documentation: KYC applications).
//! The sandbox has its own copy; the contract tests parse the documentation's example records with these.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct KycApplicationWire {
    pub id: String,
    /// RFC 3339 with offset, e.g. `2019-06-12T02:31:33.613098-04:00`.
    pub created_at: String,
    #[serde(default)]
    pub errors: Vec<Value>,
    #[serde(default)]
    pub application_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    pub provider: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub params: Option<Value>,
    #[serde(default)]
    pub provider_representation: Option<Value>,
}

/// `POST /api/v1/kyc_applications`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateWire {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

/// `PUT /api/v1/kyc_applications/:id`.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateWire {
    pub status: Option<String>,
}
