//! ident's wire format (`providers/ident.md`, seed 002). Shared by the client and the sandbox server.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KycApplicationWire {
    pub id: String,
    /// RFC 3339 with offset, e.g. `2019-06-12T02:31:33.613098-04:00`.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_representation: Option<Value>,
}

/// `POST /api/v1/kyc_applications`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

/// `PUT /api/v1/kyc_applications/:id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateWire {
    #[serde(default)]
    pub status: Option<String>,
}

/// ident's error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageWire {
    pub message: String,
}
