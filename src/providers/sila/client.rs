//! The typed Sila client.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::mapping;
use super::models::{AuthTokenResponse, Header, HeaderOnly, VerificationResponse, VerificationsResponse};
use super::{Settings, SilaHandle};
use crate::domain::levels::LevelMap;
use crate::domain::{Provider, VerificationCase};
use crate::providers::token_cache::{lifetime, TokenCache};
use crate::providers::{encode_path_segment, join_url, json, Call, ProviderError, Upstream};
use crate::secret::random_token;
use crate::secret::Secret;

pub struct SilaClient {
    config: Settings,
    upstream: Upstream,
    token: TokenCache,
}

impl SilaClient {
    pub fn new(settings: &Settings) -> Self {
        SilaClient {
            upstream: Upstream::new(Provider::Sila, settings.policy.clone()),
            config: settings.clone(),
            token: TokenCache::default(),
        }
    }

    /// A fresh header: Sila refuses one older than 5 minutes, so it is built per call.
    fn header(&self, user_handle: Option<&str>) -> Header {
        Header {
            created: crate::clock::unix_seconds(),
            app_handle: self.config.app_handle.clone(),
            user_handle: user_handle.map(str::to_owned),
            version: Some("0.2".into()),
            reference: Some(random_token()),
        }
    }

    async fn bearer(&self) -> Result<Secret, ProviderError> {
        self.token
            .get(|| async {
                let url = join_url(&self.config.base_url, "/0.2/auth_token");
                // Asking again returns the same token while it has time left: safe to retry.
                let request = |http: &reqwest::Client| {
                    http.post(&url)
                        .basic_auth(&self.config.client_id, Some(self.config.client_secret.expose()))
                        .json(&HeaderOnly { header: self.header(None) })
                };
                let response = self.upstream.send(Call::Read, "/0.2/auth_token", request).await?;
                let answer: AuthTokenResponse = json(response).await?;
                let left = lifetime(answer.access_token.seconds_left());
                Ok((Secret::new(answer.access_token.token), left))
            })
            .await
    }

    /// A POST with the bearer token; `None` when Sila answers 403 because the handle is not one of this app's.
    async fn post<T: DeserializeOwned>(
        &self,
        route: &'static str,
        path: &str,
        user_handle: &str,
    ) -> Result<Option<T>, ProviderError> {
        self.upstream.check()?;
        let url = join_url(&self.config.base_url, path);
        let mut token = self.bearer().await?;
        for attempt in 0..2 {
            // A read, though a POST; the header is rebuilt per attempt so its `created` stays fresh.
            let request = |http: &reqwest::Client| {
                http.post(&url).bearer_auth(token.expose()).json(&HeaderOnly { header: self.header(Some(user_handle)) })
            };
            let response = self.upstream.send(Call::Read, route, request).await?;
            match response.status() {
                // 403: the handle is not this app's; 404: no such verification for it.
                StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => return Ok(None),
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    // Expired or revoked early: forget it and try once with a new one.
                    self.token.forget(&token).await;
                    token = self.bearer().await?;
                }
                _ => return json(response).await.map(Some),
            }
        }
        Err(ProviderError::Unauthorized("Sila refused a fresh token".into()))
    }

    /// A handle's verification cases; none when Sila does not know the handle.
    pub async fn cases(&self, handle: &SilaHandle, flows: &LevelMap) -> Result<Vec<VerificationCase>, ProviderError> {
        let answer: Option<VerificationsResponse> =
            self.post("/0.2/get_verifications", "/0.2/get_verifications", handle).await?;
        let verifications = answer.map(|a| a.verifications).unwrap_or_default();
        Ok(verifications.iter().map(|v| mapping::case(handle, v, flows)).collect())
    }

    /// The reason tags of one verification of a user handle; `None` when Sila does not know it.
    pub async fn reasons(
        &self,
        user_handle: &SilaHandle,
        verification_uuid: &str,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let Some(uuid) = encode_path_segment(verification_uuid) else { return Ok(None) };
        let path = format!("/0.2/get_verifications/{uuid}");
        let answer: Option<VerificationResponse> = self.post("/0.2/get_verifications/{id}", &path, user_handle).await?;
        Ok(answer.map(|v| v.reasons.for_kyc_response))
    }
}
