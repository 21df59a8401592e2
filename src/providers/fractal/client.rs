//! The typed Fractal client, with two kinds of credentials: the gateway's client-credentials token (statistics), and
//! each user's own tokens from the directory (`/v2/users/me`), refreshed when expired or refused, the rotated refresh
//! token stored before the new access token is used (Fractal revokes the old pair on that first use).

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::SystemTime;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::mapping;
use super::models::{OAuthError, StatusCountsWire, TokenResponse, UserInfo, UserVerificationWire};
use super::{FractalUid, Settings};
use crate::directory::{Directory, LinkTokens};
use crate::domain::stats::{LevelVerification, StatusCounts};
use crate::domain::{Provider, ProviderProfile, UserId, VerificationCase};
use crate::providers::connector::LinkedAccount;
use crate::providers::token_cache::{lifetime, renew_margin, TokenCache};
use crate::providers::{join_url, json, Call, ProviderError, Upstream};
use crate::secret::Secret;

/// Fractal's scope for the client's statistics, which the gateway's client-credentials token asks for.
const STATS_SCOPE: &str = kyc_vocabulary::scopes::STATS_READ;

/// Stripes of locks that serialise token refreshes per user without a lock per user.
const REFRESH_STRIPES: usize = 64;

pub struct FractalClient {
    config: Settings,
    upstream: Upstream,
    directory: Arc<dyn Directory>,
    app_token: TokenCache,
    refresh_locks: Vec<Mutex<()>>,
    stripe_hasher: std::collections::hash_map::RandomState,
}

impl FractalClient {
    pub fn new(settings: &Settings, directory: Arc<dyn Directory>) -> Self {
        FractalClient {
            upstream: Upstream::new(Provider::Fractal, settings.policy.clone()),
            config: settings.clone(),
            directory,
            app_token: TokenCache::default(),
            refresh_locks: (0..REFRESH_STRIPES).map(|_| Mutex::new(())).collect(),
            stripe_hasher: Default::default(),
        }
    }

    /// A user's Fractal data, or `None` when the user never linked Fractal.
    pub async fn profile(&self, user_id: &UserId) -> Result<Option<ProviderProfile>, ProviderError> {
        let Some(link) = self.directory.link(user_id, Provider::Fractal).await? else {
            return Ok(None);
        };
        self.upstream.check()?;
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
        let read = |token: Secret| {
            let url = url.clone();
            move |http: &reqwest::Client| http.get(&url).bearer_auth(token.expose())
        };
        let response = self.upstream.send(Call::Read, "/v2/users/me", read(access.clone())).await?;
        let response = if response.status() == StatusCode::UNAUTHORIZED {
            // Expired early or revoked: refresh once and try again.
            let access = self.refresh_user(user_id, Some(&access)).await?;
            self.upstream.send(Call::Read, "/v2/users/me", read(access)).await?
        } else {
            response
        };
        let info: UserInfo = json(response).await?;
        Ok(Some(mapping::profile(info)))
    }

    /// Refreshes a user's tokens, unless another request (of any replica) did so since `stale` was read. The rotated
    /// tokens are committed before the new access token is used: Fractal revokes the old pair on that first use, so a
    /// failed commit (or a caller gone mid-refresh) leaves the new token unused and the old pair working.
    async fn refresh_user(&self, user_id: &UserId, stale: Option<&Secret>) -> Result<Secret, ProviderError> {
        // The directory holds the link for the whole refresh (a row lock on PostgreSQL), so one replica refreshes and
        // the others use its token; this local lock keeps this replica's waiters from each holding a database
        // connection.
        let _guard = self.refresh_locks[self.stripe(user_id)].lock().await;
        let held = self
            .directory
            .begin_refresh(user_id, Provider::Fractal)
            .await?
            .ok_or_else(|| ProviderError::Unauthorized("the Fractal link was removed".into()))?;
        let tokens = &held.link().tokens;
        if let (Some(current), Some(renew_at)) = (&tokens.access_token, tokens.access_renew_at) {
            let replaced = stale.is_none_or(|s| s != current);
            if replaced && renew_at > SystemTime::now() {
                return Ok(current.clone());
            }
        }
        let refresh = tokens.refresh_token.clone();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose()),
        ];
        let url = join_url(&self.config.auth_url, "/oauth/token");
        // A rotation is never retried blindly: the answer carries the only copy of the new refresh token.
        let response = self.upstream.send(Call::Write, "/oauth/token", |http| http.post(&url).form(&form)).await?;
        let token = decode_token(response).await?;
        let refresh_token = token
            .refresh_token
            .ok_or_else(|| ProviderError::Decode("refresh answer without a refresh token".into()))?;
        let access = Secret::new(token.access_token);
        let lifetime = lifetime(token.expires_in);
        let tokens = LinkTokens {
            access_token: Some(access.clone()),
            access_renew_at: Some(SystemTime::now() + lifetime - renew_margin(lifetime)),
            refresh_token: Secret::new(refresh_token),
        };
        // Persist first: the old pair dies as soon as the new access token is used.
        held.commit(tokens).await?;
        Ok(access)
    }

    /// The URL of Fractal's authorize page for a user linking Fractal, returning to `redirect_uri` with `state`; the
    /// code is bound to `code_challenge` (PKCE, S256).
    pub fn authorize_url(&self, redirect_uri: &str, scope: &str, state: &str, code_challenge: &str) -> String {
        let query = serde_urlencoded::to_string([
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
            ("code_challenge", code_challenge),
            ("code_challenge_method", "S256"),
        ])
        .expect("strings encode");
        format!("{}?{query}", join_url(&self.config.frontend_url, "/authorize"))
    }

    /// Exchanges an authorization code (with its flow's PKCE verifier) for the user's tokens, and reads which Fractal
    /// user they are for: the new link (uid, granted scopes, tokens). The access token is used once, to learn the
    /// uid; nothing is stored yet.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&Secret>,
    ) -> Result<LinkedAccount, ProviderError> {
        self.upstream.check()?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose()),
        ];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier.expose()));
        }
        let url = join_url(&self.config.auth_url, "/oauth/token");
        // A code is single use: never retried.
        let token =
            decode_token(self.upstream.send(Call::Write, "/oauth/token", |http| http.post(&url).form(&form)).await?)
                .await?;
        let refresh_token = token
            .refresh_token
            .ok_or_else(|| ProviderError::Decode("code exchange answer without a refresh token".into()))?;
        let access = Secret::new(token.access_token);
        let me = join_url(&self.config.resource_url, "/v2/users/me");
        let response =
            self.upstream.send(Call::Read, "/v2/users/me", |http| http.get(&me).bearer_auth(access.expose())).await?;
        let info: UserInfo = json(response).await?;
        let uid = info.uid.ok_or_else(|| ProviderError::Decode("the linked user granted no uid:read".into()))?;
        let uid = FractalUid::parse(uid).map_err(|e| ProviderError::Decode(format!("the uid: {e}")))?;
        let lifetime = lifetime(token.expires_in);
        Ok(LinkedAccount {
            subject: uid.into(),
            scopes: token.scope,
            tokens: LinkTokens {
                access_token: Some(access),
                access_renew_at: Some(SystemTime::now() + lifetime - renew_margin(lifetime)),
                refresh_token: Secret::new(refresh_token),
            },
        })
    }

    fn stripe(&self, user_id: &str) -> usize {
        (self.stripe_hasher.hash_one(user_id) % REFRESH_STRIPES as u64) as usize
    }

    /// The gateway's client-credentials token, fetched at most once at a time.
    async fn app_token(&self) -> Result<Secret, ProviderError> {
        self.app_token
            .get(|| async {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", &self.config.client_id),
                    ("client_secret", self.config.client_secret.expose()),
                    ("scope", STATS_SCOPE),
                ];
                let url = join_url(&self.config.auth_url, "/oauth/token");
                // A client-credentials grant changes nothing: safe to retry.
                let response =
                    self.upstream.send(Call::Read, "/oauth/token", |http| http.post(&url).form(&form)).await?;
                let token = decode_token(response).await?;
                Ok((Secret::new(token.access_token), lifetime(token.expires_in)))
            })
            .await
    }

    async fn stats<T: DeserializeOwned>(&self, path: &'static str) -> Result<T, ProviderError> {
        self.upstream.check()?;
        let url = join_url(&self.config.resource_url, path);
        let token = self.app_token().await?;
        let response = self.upstream.send(Call::Read, path, |http| http.get(&url).bearer_auth(token.expose())).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            // Revoked or expired before its time: forget it and fetch a new one, once.
            self.app_token.forget(&token).await;
            let token = self.app_token().await?;
            let response =
                self.upstream.send(Call::Read, path, |http| http.get(&url).bearer_auth(token.expose())).await?;
            return json(response).await;
        }
        json(response).await
    }

    pub async fn total_verifications(&self) -> Result<StatusCounts, ProviderError> {
        Ok(self.stats::<StatusCountsWire>("/v2/stats/total-verifications").await?.into())
    }

    /// Counts per ISO country code, in code order.
    pub async fn country_verifications(&self) -> Result<Vec<(String, StatusCounts)>, ProviderError> {
        let wire: std::collections::BTreeMap<String, StatusCountsWire> =
            self.stats("/v2/stats/country-verifications").await?;
        Ok(wire.into_iter().map(|(country, counts)| (country, counts.into())).collect())
    }

    /// Every user's verification of every level.
    pub async fn level_verifications(&self) -> Result<Vec<LevelVerification>, ProviderError> {
        let wire: Vec<UserVerificationWire> = self.stats("/v2/stats/user-verifications").await?;
        Ok(wire.into_iter().map(Into::into).collect())
    }

    /// Every user's verifications as cases, by Fractal uid: one bulk call for any number of users.
    pub async fn cases_by_uid(
        &self,
    ) -> Result<std::collections::HashMap<String, Vec<VerificationCase>>, ProviderError> {
        Ok(mapping::cases_by_uid(self.level_verifications().await?))
    }
}

/// The token endpoint's answer, where 400 and 401 mean the grant or the client was refused.
async fn decode_token(response: reqwest::Response) -> Result<TokenResponse, ProviderError> {
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
        return Err(ProviderError::Unauthorized(format!("token endpoint refused the grant: {error}")));
    }
    json(response).await
}
