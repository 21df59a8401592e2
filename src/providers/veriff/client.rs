//! The typed Veriff client: `X-AUTH-CLIENT` carries the API key, `X-HMAC-SIGNATURE` the hex HMAC-SHA256 of what
//! the endpoint signs (the session id for a GET, the body for a POST or PATCH) under the shared secret.

use reqwest::StatusCode;

use super::models::{DecisionResponse, ErrorBody};
use super::{Settings, VeriffSessionId};
use crate::domain::Provider;
use crate::providers::{encode_path_segment, join_url, status_error, Call, ProviderError, Upstream};

/// `X-HMAC-SIGNATURE`: lowercase hex HMAC-SHA256 of `message` under the shared secret.
pub fn signature(shared_secret: &[u8], message: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, shared_secret);
    hex::encode(ring::hmac::sign(&key, message).as_ref())
}

pub struct VeriffClient {
    config: Settings,
    upstream: Upstream,
}

impl VeriffClient {
    pub fn new(settings: &Settings) -> Self {
        VeriffClient { upstream: Upstream::new(Provider::Veriff, settings.policy.clone()), config: settings.clone() }
    }

    /// `GET /v1/sessions/{id}/decision`, signed over the session id; `None` for Veriff's 404 (no such session).
    pub async fn decision(&self, session: &VeriffSessionId) -> Result<Option<DecisionResponse>, ProviderError> {
        let Some(id) = encode_path_segment(session) else { return Ok(None) };
        let url = join_url(&self.config.base_url, &format!("/v1/sessions/{id}/decision"));
        let sig = signature(self.config.shared_secret.expose().as_bytes(), session.as_bytes());
        let request = |http: &reqwest::Client| {
            http.get(&url)
                .header("X-AUTH-CLIENT", self.config.api_key.expose())
                .header("X-HMAC-SIGNATURE", &sig)
                .header("Content-Type", "application/json")
        };
        let response = self.upstream.send(Call::Read, "/v1/sessions/{id}/decision", request).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                let answer: DecisionResponse =
                    response.json().await.map_err(|e| ProviderError::Decode(e.without_url().to_string()))?;
                if answer.verification.as_ref().is_some_and(|v| v.id != session.as_str()) {
                    return Err(ProviderError::Decode("the decision is about another session".into()));
                }
                Ok(Some(answer))
            }
            _ => Err(refusal(response).await),
        }
    }
}

/// The most of an error answer's body read.
const MAX_ERROR_BODY: usize = 4096;

/// The error a non-success answer means; Veriff's `code` (never its message, which may echo input) goes to the log.
async fn refusal(mut response: reqwest::Response) -> ProviderError {
    let error = status_error(&response);
    let status = response.status().as_u16();
    // An error body is a few fields: at most 4 KiB is read.
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            break;
        }
    }
    let code = if body.len() <= MAX_ERROR_BODY {
        serde_json::from_slice::<ErrorBody>(&body).ok().and_then(|b| b.code)
    } else {
        None
    };
    let code = code.filter(|c| c.len() <= 8 && c.bytes().all(|b| b.is_ascii_digit()));
    tracing::warn!(provider = "veriff", status, code = code.as_deref().unwrap_or("none"), "Veriff refused a request");
    match error {
        ProviderError::Unauthorized(_) => {
            ProviderError::Unauthorized(format!("HTTP {status}, Veriff code {}", code.as_deref().unwrap_or("none")))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Veriff's HMAC mock data (its shared secret, a session id and a request body), computed here with
    /// `printf '%s' MESSAGE | openssl dgst -sha256 -hmac abcdef12-abcd-abcd-abcd-abcdef012345`.
    const SECRET: &[u8] = b"abcdef12-abcd-abcd-abcd-abcdef012345";

    #[test]
    fn a_get_is_signed_over_the_bare_session_id() {
        assert_eq!(
            signature(SECRET, b"aea9ba6d-1b47-47fc-a4fc-f72b6d3584a7"),
            "895cb3fd31139d89aeb7b263682e15479ab57651e70591256ad2c14fde4950dd"
        );
        assert_eq!(
            signature(SECRET, b"12df6045-3846-3e45-946a-14fa6136d78b"),
            "72425a5b0d91e04c84c7f7fa50a62fb16a3d03a4b78149832737492a5171ab12"
        );
    }

    #[test]
    fn a_post_is_signed_over_its_exact_body() {
        let body = br#"{"verification":{"callback":"https://veriff.com","person":{"firstName":"John","lastName":"Smith"},"document":{"type":"PASSPORT","country":"EE"},"vendorData":"unique id of the end-user","timestamp":"2016-05-19T08:30:25.597Z"}}"#;
        assert_eq!(signature(SECRET, body), "0dcab73ddd20062616d104231c7439657546a5c24e4691977da93bb854c31e25");
    }
}
