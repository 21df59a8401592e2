//! The sandbox ident's own copy of ident's wire format (Provide's ident API documentation), as it reads requests and
//! writes answers. The client has its own, so the contract tests catch a field misspelt on either side.

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
#[derive(Debug, Clone, Deserialize)]
pub struct CreateWire {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub params: Option<Value>,
}

/// `PUT /api/v1/kyc_applications/:id`.
#[derive(Debug, Clone, Deserialize)]
pub struct UpdateWire {
    #[serde(default)]
    pub status: Option<String>,
}

/// ident's error body.
#[derive(Debug, Clone, Serialize)]
pub struct MessageWire {
    pub message: String,
}
