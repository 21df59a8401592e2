//! The typed ident client.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::models::{CreateWire, KycApplicationWire, UpdateWire};
use crate::providers::{encode_path_segment, join_url, json, HttpPolicy, ProviderError};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct IdentConfig {
    /// The API root, `https://ident.provide.services/api/v1`.
    pub base_url: String,
    /// The gateway's application-scoped bearer JWT (issued by ident; opaque to the gateway).
    pub token: Secret,
    pub http: HttpPolicy,
}

/// One page of a list, with ident's `x-total-results-count`.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<KycApplicationWire>,
    pub total: u64,
}

pub struct IdentClient {
    config: IdentConfig,
    http: reqwest::Client,
}

/// `None` for a 404, the body otherwise.
async fn optional<T: DeserializeOwned>(response: reqwest::Response) -> Result<Option<T>, ProviderError> {
    if response.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    json(response).await.map(Some)
}

impl IdentClient {
    pub fn new(config: IdentConfig) -> Self {
        IdentClient { http: config.http.client(), config }
    }

    fn url(&self, path: &str) -> String {
        join_url(&self.config.base_url, path)
    }

    /// Applications, newest first: page `page` (from 1) of `rpp`, optionally of one status.
    pub async fn list(&self, status: Option<&str>, page: u64, rpp: u64) -> Result<Page, ProviderError> {
        let mut query = vec![("page", page.to_string()), ("rpp", rpp.to_string())];
        if let Some(status) = status {
            query.push(("status", status.to_owned()));
        }
        let response = self
            .http
            .get(self.url("/kyc_applications"))
            .bearer_auth(self.config.token.expose())
            .query(&query)
            .send()
            .await?;
        let total = response
            .headers()
            .get("x-total-results-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let items: Vec<KycApplicationWire> = json(response).await?;
        Ok(Page { total: total.unwrap_or(items.len() as u64), items })
    }

    /// Every application of one user (ident's user id).
    pub async fn by_user(&self, user_id: &str) -> Result<Vec<KycApplicationWire>, ProviderError> {
        let path = format!("/users/{}/kyc_applications", encode_path_segment(user_id));
        let response = self.http.get(self.url(&path)).bearer_auth(self.config.token.expose()).send().await?;
        Ok(optional(response).await?.unwrap_or_default())
    }

    /// One application, re-read from its provider (`provider_representation` included).
    pub async fn get(&self, id: &str) -> Result<Option<KycApplicationWire>, ProviderError> {
        let path = format!("/kyc_applications/{}", encode_path_segment(id));
        optional(self.http.get(self.url(&path)).bearer_auth(self.config.token.expose()).send().await?).await
    }

    pub async fn create(&self, body: &CreateWire) -> Result<KycApplicationWire, ProviderError> {
        let response = self
            .http
            .post(self.url("/kyc_applications"))
            .bearer_auth(self.config.token.expose())
            .json(body)
            .send()
            .await?;
        json(response).await
    }

    /// Sets an application's status. Never retried: a PUT that timed out may have been applied.
    pub async fn update_status(&self, id: &str, status: &str) -> Result<Option<KycApplicationWire>, ProviderError> {
        let path = format!("/kyc_applications/{}", encode_path_segment(id));
        let body = UpdateWire { status: Some(status.to_owned()) };
        optional(self.http.put(self.url(&path)).bearer_auth(self.config.token.expose()).json(&body).send().await?).await
    }
}
