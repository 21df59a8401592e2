//! The typed Sumsub client. Every request is signed: HMAC-SHA256 over timestamp, method, path with query and body.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::models::Applicant;
use super::{Settings, SumsubApplicantId};
use crate::domain::{Provider, UserId};
use crate::providers::{encode_path_segment, join_url, json, Call, ProviderError, Upstream};

/// `X-App-Access-Sig`: lowercase hex HMAC-SHA256 of `ts + METHOD + path_with_query + body` with the secret key.
pub fn signature(secret_key: &[u8], ts: &str, method: &str, path_and_query: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret_key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(ts.as_bytes());
    ctx.update(method.to_ascii_uppercase().as_bytes());
    ctx.update(path_and_query.as_bytes());
    ctx.update(body);
    hex::encode(ctx.sign().as_ref())
}

pub struct SumsubClient {
    config: Settings,
    upstream: Upstream,
}

impl SumsubClient {
    pub fn new(settings: &Settings) -> Self {
        SumsubClient { upstream: Upstream::new(Provider::Sumsub, settings.policy.clone()), config: settings.clone() }
    }

    /// A signed GET; `None` for Sumsub's 404 (no such applicant).
    async fn get<T: DeserializeOwned>(
        &self,
        route: &'static str,
        path_and_query: &str,
    ) -> Result<Option<T>, ProviderError> {
        let url = reqwest::Url::parse(&join_url(&self.config.base_url, path_and_query))
            .map_err(|e| ProviderError::Transport(format!("the Sumsub base URL is not a URL: {e}")))?;
        // Sign exactly what goes on the request line: the base URL's own path prefix included, after the URL
        // parser's normalisation.
        let request_line = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        // Signed per attempt: a retry needs a fresh timestamp.
        let signed = |http: &reqwest::Client| {
            let ts = crate::clock::unix_seconds().to_string();
            let sig = signature(self.config.secret_key.expose().as_bytes(), &ts, "GET", &request_line, b"");
            http.get(url.clone())
                .header("X-App-Token", self.config.app_token.expose())
                .header("X-App-Access-Ts", ts)
                .header("X-App-Access-Sig", sig)
                .header("Accept", "application/json")
        };
        let response = self.upstream.send(Call::Read, route, signed).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        json(response).await.map(Some)
    }

    /// The applicant whose `externalUserId` is our user id, if Sumsub has one.
    pub async fn applicant_by_external_id(&self, user_id: &UserId) -> Result<Option<Applicant>, ProviderError> {
        let Some(external) = encode_path_segment(user_id) else { return Ok(None) };
        self.get(
            "/resources/applicants/-;externalUserId={id}/one",
            &format!("/resources/applicants/-;externalUserId={external}/one"),
        )
        .await
    }

    /// An applicant by Sumsub's id.
    pub async fn applicant(&self, applicant_id: &SumsubApplicantId) -> Result<Option<Applicant>, ProviderError> {
        let Some(id) = encode_path_segment(applicant_id) else { return Ok(None) };
        self.get("/resources/applicants/{id}/one", &format!("/resources/applicants/{id}/one")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_documented_string_to_sign_vector() {
        let sig = signature(
            b"Hej2ch71kG2kTd1iIUDZFNsO5C1lh5Gq",
            "1607551635",
            "POST",
            "/resources/accessTokens?userId=cfd20712-24a2-4c7d-9ab0-146f3c142335&levelName=basic-kyc-level&ttlInSecs=600",
            b"",
        );
        assert_eq!(sig, "1e1856be1c1e1ff113e5664acac6b423ffefe04ad42ff36567622ef56f62c4b1");
    }
}
