//! The typed ident client.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::models::{CreateWire, KycApplicationWire, UpdateWire};
use crate::domain::Provider;
use crate::providers::{encode_path_segment, join_url, json, Call, ProviderError, Upstream, UpstreamPolicy};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct IdentConfig {
    /// The API root, `https://ident.provide.services/api/v1`.
    pub base_url: String,
    /// The gateway's application-scoped bearer JWT (issued by ident; opaque to the gateway).
    pub token: Secret,
    pub policy: UpstreamPolicy,
}

/// One page of a list, with ident's `x-total-results-count`.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<KycApplicationWire>,
    pub total: u64,
}

pub struct IdentClient {
    config: IdentConfig,
    upstream: Upstream,
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
        IdentClient { upstream: Upstream::new(Provider::Ident, config.policy.clone()), config }
    }

    fn url(&self, path: &str) -> String {
        join_url(&self.config.base_url, path)
    }

    async fn send(
        &self,
        call: Call,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
        path: &str,
    ) -> Result<reqwest::Response, ProviderError> {
        let url = self.url(path);
        self.upstream.send(call, |http| build(http, &url).bearer_auth(self.config.token.expose())).await
    }

    /// Applications, newest first: page `page` (from 1) of `rpp`, optionally of one status.
    pub async fn list(&self, status: Option<&str>, page: u64, rpp: u64) -> Result<Page, ProviderError> {
        let mut query = vec![("page", page.to_string()), ("rpp", rpp.to_string())];
        if let Some(status) = status {
            query.push(("status", status.to_owned()));
        }
        let response = self.send(Call::Read, |http, url| http.get(url).query(&query), "/kyc_applications").await?;
        let total = response
            .headers()
            .get("x-total-results-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let items: Vec<KycApplicationWire> = json(response).await?;
        let before = (page.saturating_sub(1)) * rpp;
        // Without the header, a full page means there may be more.
        let total = total.unwrap_or(before + items.len() as u64 + u64::from(items.len() as u64 == rpp));
        Ok(Page { total, items })
    }

    /// Every application of one user (ident's user id). Records of anyone else are dropped, whatever ident answers.
    pub async fn by_user(&self, user_id: &str) -> Result<Vec<KycApplicationWire>, ProviderError> {
        let Some(segment) = encode_path_segment(user_id) else { return Ok(Vec::new()) };
        let path = format!("/users/{segment}/kyc_applications");
        let response = self.send(Call::Read, |http, url| http.get(url), &path).await?;
        let records: Vec<KycApplicationWire> = optional(response).await?.unwrap_or_default();
        Ok(records.into_iter().filter(|r| r.user_id.as_deref() == Some(user_id)).collect())
    }

    /// One application, re-read from its provider (`provider_representation` included).
    pub async fn get(&self, id: &str) -> Result<Option<KycApplicationWire>, ProviderError> {
        let Some(segment) = encode_path_segment(id) else { return Ok(None) };
        let path = format!("/kyc_applications/{segment}");
        let record: Option<KycApplicationWire> =
            optional(self.send(Call::Read, |http, url| http.get(url), &path).await?).await?;
        Ok(record.filter(|r| r.id == id))
    }

    /// Creates an application. Never retried: a create that timed out may have been applied.
    pub async fn create(&self, body: &CreateWire) -> Result<KycApplicationWire, ProviderError> {
        json(self.send(Call::Write, |http, url| http.post(url).json(body), "/kyc_applications").await?).await
    }

    /// Sets an application's status. Never retried: a PUT that timed out may have been applied.
    pub async fn update_status(&self, id: &str, status: &str) -> Result<Option<KycApplicationWire>, ProviderError> {
        let Some(segment) = encode_path_segment(id) else { return Ok(None) };
        let body = UpdateWire { status: Some(status.to_owned()) };
        let path = format!("/kyc_applications/{segment}");
        optional(self.send(Call::Write, |http, url| http.put(url).json(&body), &path).await?).await
    }
}
