//! Linking a user's account at the provider that offers it: the OAuth 2.0 authorization-code flow (`start`, the
//! provider's redirect, `complete`; docs/identity-and-linking.md). `complete` checks the state (signature, user,
//! expiry, single use) before exchanging the code; nothing is stored for a failed check or a refusal. The code is
//! bound to the flow by PKCE (RFC 7636, S256): the verifier stays with the state and goes only to the token endpoint.

use base64::Engine as _;

use super::connector::AccountLinking;
use super::{ProviderError, Providers};
use crate::directory::linking::StateClaims;
use crate::directory::{Consumed, DirectoryError, Link, LinkState, Linked};
use crate::domain::{Provider, UserId};
use crate::secret::Secret;

/// Why a link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the redirect URI is not on the gateway's allow-list")]
    RedirectNotAllowed,
    #[error("the state was not issued by this gateway")]
    StateInvalid,
    #[error("the state belongs to another user")]
    StateForeign,
    #[error("the state expired; start again")]
    StateExpired,
    #[error("the state was used before")]
    StateReplayed,
    #[error("the user refused the authorization at {0}")]
    AccessDenied(&'static str),
    #[error("{0} answered with an error of its own")]
    Refused(&'static str),
    #[error("{0}'s answer had no code")]
    NoCode(&'static str),
    #[error("that {0} account is linked to another user")]
    AccountTaken(&'static str),
    #[error("{1}")]
    Provider(Option<Provider>, ProviderError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// A started authorization.
#[derive(Debug, Clone)]
pub struct LinkStart {
    pub authorize_url: String,
    pub state: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// A PKCE code verifier (RFC 7636 §4.1): 32 bytes from the operating system's generator, base64url, so 43
/// unreserved characters.
pub fn code_verifier() -> Secret {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the OS random generator works");
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The S256 challenge of `verifier` (RFC 7636 §4.2): base64url of its SHA-256.
pub fn code_challenge(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

impl Providers {
    fn linking(&self) -> Result<(Provider, &dyn AccountLinking), LinkError> {
        self.set.linking().map_err(|missing| {
            let (provider, error) = missing.error();
            LinkError::Provider(provider, error)
        })
    }

    /// Step 1: the authorize URL for `user`, returning to `redirect_uri`.
    pub async fn start_link(&self, user: &UserId, redirect_uri: &str) -> Result<LinkStart, LinkError> {
        let (provider, linking) = self.linking()?;
        let settings = linking.settings();
        if !settings.redirect_uris.iter().any(|allowed| allowed == redirect_uri) {
            return Err(LinkError::RedirectNotAllowed);
        }
        let expires_at = crate::clock::unix_millis() + settings.state_ttl.as_millis() as i64;
        let claims = StateClaims { nonce: crate::secret::random_token(), user_id: user.to_string(), expires_at };
        let state = self.link_states.sign(&claims);
        let verifier = code_verifier();
        let challenge = code_challenge(verifier.expose());
        let record = LinkState {
            nonce: claims.nonce,
            user_id: user.clone(),
            provider,
            redirect_uri: redirect_uri.to_owned(),
            expires_at,
            code_verifier: Some(verifier),
        };
        self.directory.save_link_state(&record, settings.open_states).await?;
        Ok(LinkStart {
            authorize_url: linking.authorize_url(redirect_uri, &settings.scopes, &state, &challenge),
            state,
            expires_at,
        })
    }

    /// Step 3: checks `state` for `user` and, with the provider's `code`, stores the link; `error` is the provider's
    /// refusal, if it redirected with one. The granted scopes.
    pub async fn complete_link(
        &self,
        user: &UserId,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
    ) -> Result<String, LinkError> {
        let (provider, linking) = self.linking()?;
        let claims = self.link_states.verify(state).ok_or(LinkError::StateInvalid)?;
        // A foreign or expired state is not used up: its owner may still be mid-flow, or it is dead anyway.
        if claims.user_id != user.as_str() {
            return Err(LinkError::StateForeign);
        }
        if claims.expires_at <= crate::clock::unix_millis() {
            return Err(LinkError::StateExpired);
        }
        let record = match self.directory.consume_link_state(&claims.nonce).await? {
            Consumed::Fresh(record) if record.provider == provider => record,
            Consumed::Fresh(_) | Consumed::Unknown => return Err(LinkError::StateInvalid),
            Consumed::AlreadyUsed => return Err(LinkError::StateReplayed),
        };
        let code = match (error, code) {
            (Some("access_denied"), _) => return Err(LinkError::AccessDenied(provider.display_name())),
            (Some(_), _) => return Err(LinkError::Refused(provider.display_name())),
            (None, None) => return Err(LinkError::NoCode(provider.display_name())),
            (None, Some(code)) => code,
        };
        let account = linking
            .exchange_code(code, &record.redirect_uri, record.code_verifier.as_ref())
            .await
            .map_err(|e| LinkError::Provider(Some(provider), e))?;
        let link = Link { subject: account.subject, scopes: account.scopes, tokens: account.tokens };
        match self.directory.store_link(user, provider, &link).await? {
            Linked::SubjectTaken => Err(LinkError::AccountTaken(provider.display_name())),
            Linked::Stored => {
                self.changed(user).await;
                Ok(link.scopes)
            }
        }
    }

    /// Removes the user's link; whether there was one.
    pub async fn unlink(&self, user: &UserId) -> Result<bool, LinkError> {
        // Without a linking provider there is no link to remove.
        let Ok((provider, _)) = self.set.linking() else { return Ok(false) };
        let removed = self.directory.remove_link(user, provider).await?;
        if removed {
            self.changed(user).await;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_s256_and_each_verifier_is_new_and_well_formed() {
        // RFC 7636, appendix B.
        let challenge = code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let (a, b) = (code_verifier(), code_verifier());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)));
    }
}
