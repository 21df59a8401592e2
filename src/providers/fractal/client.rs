//! The typed Fractal client.
//!
//! Two kinds of credentials: the gateway's client-credentials token (statistics), cached until shortly before it
//! expires and fetched once however many requests need it at the same moment; and each user's own tokens from the
//! directory (`/v2/users/me`), refreshed when expired or refused, with the rotated refresh token stored back before the
//! new access token is used (Fractal revokes the old pair on that first use).

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::error::FractalError;
use super::mapping::{self, StatusCounts, UserVerification};
use super::models::{OAuthError, StatusCountsWire, TokenResponse, UserInfo, UserVerificationWire};
use crate::directory::{Directory, FractalTokens};
use crate::domain::ProviderProfile;
use crate::providers::{join_url, retry_after, HttpPolicy};
use crate::secret::Secret;

/// Where Fractal is and who the gateway is to it.
#[derive(Debug, Clone)]
pub struct FractalConfig {
    /// Token endpoint host, e.g. `https://auth.fractal.id`.
    pub auth_url: String,
    /// Resource API host, e.g. `https://resource.fractal.id`.
    pub resource_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub http: HttpPolicy,
}

struct AppToken {
    token: Secret,
    refresh_at: Instant,
}

/// Stripes of locks that serialise token refreshes per user without a lock per user.
const REFRESH_STRIPES: usize = 64;

pub struct FractalClient {
    config: FractalConfig,
    http: reqwest::Client,
    directory: Arc<dyn Directory>,
    app_token: Mutex<Option<AppToken>>,
    refresh_locks: Vec<Mutex<()>>,
    stripe_hasher: std::collections::hash_map::RandomState,
}

/// A token's lifetime from `expires_in`, bounded so that no answer can overflow the clock arithmetic.
fn lifetime(expires_in: u64) -> Duration {
    Duration::from_secs(expires_in.clamp(1, 30 * 24 * 3600))
}

/// Renew a token this long before it expires, but never more than half its lifetime early.
fn renew_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(60).min(lifetime / 2)
}

impl FractalClient {
    pub fn new(config: FractalConfig, directory: Arc<dyn Directory>) -> Self {
        FractalClient {
            http: config.http.client(),
            config,
            directory,
            app_token: Mutex::new(None),
            refresh_locks: (0..REFRESH_STRIPES).map(|_| Mutex::new(())).collect(),
            stripe_hasher: Default::default(),
        }
    }

    /// A user's Fractal data, or `None` when the user never linked Fractal.
    pub async fn profile(&self, user_id: &str) -> Result<Option<ProviderProfile>, FractalError> {
        let Some(link) = self.directory.fractal_link(user_id).await? else {
            return Ok(None);
        };
        let fresh = link
            .tokens
            .access_token
            .clone()
            .filter(|_| link.tokens.access_renew_at.is_some_and(|at| at > SystemTime::now()));
        let access = match fresh {
            Some(token) => token,
            None => self.refresh_user(user_id, None).await?,
        };
        let url = join_url(&self.config.resource_url, "/v2/users/me");
        let response = self.http.get(&url).bearer_auth(access.expose()).send().await?;
        let response = if response.status() == StatusCode::UNAUTHORIZED {
            // Expired early or revoked: refresh once and try again.
            let access = self.refresh_user(user_id, Some(&access)).await?;
            self.http.get(&url).bearer_auth(access.expose()).send().await?
        } else {
            response
        };
        let info: UserInfo = decode(response).await?;
        Ok(Some(mapping::profile(info)))
    }

    /// Refreshes a user's tokens, unless another request did so since `stale` was read.
    async fn refresh_user(&self, user_id: &str, stale: Option<&Secret>) -> Result<Secret, FractalError> {
        let _guard = self.refresh_locks[self.stripe(user_id)].lock().await;
        let link = self
            .directory
            .fractal_link(user_id)
            .await?
            .ok_or_else(|| FractalError::Unauthorized("the Fractal link was removed".into()))?;
        if let (Some(current), Some(renew_at)) = (&link.tokens.access_token, link.tokens.access_renew_at) {
            let replaced = stale.is_some_and(|s| s != current) || stale.is_none();
            if replaced && renew_at > SystemTime::now() {
                return Ok(current.clone());
            }
        }
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", link.tokens.refresh_token.expose()),
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose()),
        ];
        let response = self.http.post(join_url(&self.config.auth_url, "/oauth/token")).form(&form).send().await?;
        let token: TokenResponse = decode_token(response).await?;
        let refresh_token =
            token.refresh_token.ok_or_else(|| FractalError::Decode("refresh answer without a refresh token".into()))?;
        let access = Secret::new(token.access_token);
        let lifetime = lifetime(token.expires_in);
        let tokens = FractalTokens {
            access_token: Some(access.clone()),
            access_renew_at: Some(SystemTime::now() + lifetime - renew_margin(lifetime)),
            refresh_token: Secret::new(refresh_token),
        };
        // Persist first: the old pair dies as soon as the new access token is used.
        self.directory.store_fractal_tokens(user_id, tokens).await?;
        Ok(access)
    }

    fn stripe(&self, user_id: &str) -> usize {
        (self.stripe_hasher.hash_one(user_id) % REFRESH_STRIPES as u64) as usize
    }

    /// The gateway's client-credentials token, fetched at most once at a time.
    async fn app_token(&self) -> Result<Secret, FractalError> {
        let mut cached = self.app_token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.refresh_at > Instant::now()) {
            return Ok(t.token.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose()),
            ("scope", crate::auth::STATS_READ),
        ];
        let response = self.http.post(join_url(&self.config.auth_url, "/oauth/token")).form(&form).send().await?;
        let token: TokenResponse = decode_token(response).await?;
        let lifetime = lifetime(token.expires_in);
        let secret = Secret::new(token.access_token);
        *cached =
            Some(AppToken { token: secret.clone(), refresh_at: Instant::now() + lifetime - renew_margin(lifetime) });
        Ok(secret)
    }

    async fn stats<T: DeserializeOwned>(&self, path: &str) -> Result<T, FractalError> {
        let url = join_url(&self.config.resource_url, path);
        let token = self.app_token().await?;
        let response = self.http.get(&url).bearer_auth(token.expose()).send().await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            // Revoked or expired before its time: forget it and fetch a new one, once.
            self.app_token.lock().await.take_if(|t| t.token == token);
            let token = self.app_token().await?;
            return decode(self.http.get(&url).bearer_auth(token.expose()).send().await?).await;
        }
        decode(response).await
    }

    pub async fn total_verifications(&self) -> Result<StatusCounts, FractalError> {
        Ok(self.stats::<StatusCountsWire>("/v2/stats/total-verifications").await?.into())
    }

    /// Counts per ISO country code, in code order.
    pub async fn country_verifications(&self) -> Result<Vec<(String, StatusCounts)>, FractalError> {
        let wire: std::collections::BTreeMap<String, StatusCountsWire> =
            self.stats("/v2/stats/country-verifications").await?;
        Ok(wire.into_iter().map(|(country, counts)| (country, counts.into())).collect())
    }

    pub async fn user_verifications(&self) -> Result<Vec<UserVerification>, FractalError> {
        let wire: Vec<UserVerificationWire> = self.stats("/v2/stats/user-verifications").await?;
        Ok(wire.into_iter().map(Into::into).collect())
    }
}

/// Maps a resource answer to its body or to the error its status means.
async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, FractalError> {
    let status = response.status();
    if status.is_success() {
        return response.json::<T>().await.map_err(|e| FractalError::Decode(e.without_url().to_string()));
    }
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            FractalError::Unauthorized(format!("resource answered HTTP {}", status.as_u16()))
        }
        StatusCode::TOO_MANY_REQUESTS => FractalError::RateLimited { retry_after: retry_after(&response) },
        _ => FractalError::Unavailable { status: status.as_u16() },
    })
}

/// Like [`decode`] for the token endpoint, where 400 and 401 mean the grant or client was refused.
async fn decode_token(response: reqwest::Response) -> Result<TokenResponse, FractalError> {
    let status = response.status();
    if status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED {
        // Only OAuth's own error words reach the log, never free text from the provider.
        const OAUTH_ERRORS: [&str; 6] = [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
        ];
        let error = response.json::<OAuthError>().await.map(|e| e.error).unwrap_or_default();
        let error = OAUTH_ERRORS.into_iter().find(|known| *known == error).unwrap_or("other");
        return Err(FractalError::Unauthorized(format!("token endpoint refused the grant: {error}")));
    }
    decode(response).await
}
