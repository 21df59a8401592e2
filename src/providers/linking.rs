//! Linking a user's Fractal account: the OAuth 2.0 authorization-code flow the gateway drives.
//!
//! 1. `start`: a signed-in user names where Fractal should send them back (a URI on the configured allow-list); the
//!    gateway remembers a new single-use `state` bound to that user and answers Fractal's authorize URL.
//! 2. The user approves (or refuses) at Fractal, which redirects to that URI with `code` and `state` (or
//!    `error=access_denied`).
//! 3. `complete`: the same user hands `state` and `code` back; the gateway checks the state (its signature, its user,
//!    its expiry, that it was never used), exchanges the code and stores the link. Nothing is stored for a state
//!    that fails a check, nor for a refusal.

use std::sync::Arc;
use std::time::Duration;

use super::{ProviderError, Providers};
use crate::directory::linking::{StateClaims, StateSigner};
use crate::directory::{Consumed, DirectoryError, LinkState, Linked};
use crate::store::changes::Change;

/// How linking is set up.
#[derive(Debug)]
pub struct Linking {
    pub signer: StateSigner,
    /// Where Fractal may send users back: exact URIs.
    pub redirect_uris: Vec<String>,
    /// The scopes asked of the user (space separated).
    pub scopes: String,
    /// How long a state is good for (Fractal's codes live 10 minutes; so do states).
    pub state_ttl: Duration,
}

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
    #[error("the user refused the authorization at Fractal")]
    AccessDenied,
    #[error("Fractal answered with an error of its own")]
    Refused,
    #[error("Fractal's answer had no code")]
    NoCode,
    #[error("that Fractal account is linked to another user")]
    AccountTaken,
    #[error(transparent)]
    Provider(#[from] ProviderError),
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

impl Providers {
    fn linking(&self) -> Result<(&super::fractal::FractalClient, &Linking), LinkError> {
        match (&self.fractal, &self.linking) {
            (Some(client), Some(linking)) => Ok((client, linking)),
            _ => Err(ProviderError::NotConfigured.into()),
        }
    }

    /// Step 1: the authorize URL for `user_id`, returning to `redirect_uri`.
    pub async fn start_fractal_link(&self, user_id: &str, redirect_uri: &str) -> Result<LinkStart, LinkError> {
        let (client, linking) = self.linking()?;
        if !linking.redirect_uris.iter().any(|allowed| allowed == redirect_uri) {
            return Err(LinkError::RedirectNotAllowed);
        }
        let expires_at = crate::clock::unix_millis() + linking.state_ttl.as_millis() as i64;
        let claims = StateClaims { nonce: crate::secret::random_token(), user_id: user_id.to_owned(), expires_at };
        let state = linking.signer.sign(&claims);
        let record = LinkState {
            nonce: claims.nonce,
            user_id: user_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            expires_at,
        };
        self.directory.save_link_state(&record).await?;
        Ok(LinkStart { authorize_url: client.authorize_url(redirect_uri, &linking.scopes, &state), state, expires_at })
    }

    /// Step 3: checks `state` for `user_id` and, with Fractal's `code`, stores the link; `error` is Fractal's
    /// refusal, if it redirected with one. The granted scopes.
    pub async fn complete_fractal_link(
        &self,
        user_id: &str,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
    ) -> Result<String, LinkError> {
        let (client, linking) = self.linking()?;
        let claims = linking.signer.verify(state).ok_or(LinkError::StateInvalid)?;
        // A foreign or expired state is not used up: its owner may still be mid-flow, or it is dead anyway.
        if claims.user_id != user_id {
            return Err(LinkError::StateForeign);
        }
        if claims.expires_at <= crate::clock::unix_millis() {
            return Err(LinkError::StateExpired);
        }
        let record = match self.directory.consume_link_state(&claims.nonce).await? {
            Consumed::Fresh(record) => record,
            Consumed::AlreadyUsed => return Err(LinkError::StateReplayed),
            Consumed::Unknown => return Err(LinkError::StateInvalid),
        };
        match (error, code) {
            (Some("access_denied"), _) => return Err(LinkError::AccessDenied),
            (Some(_), _) => return Err(LinkError::Refused),
            (None, None) => return Err(LinkError::NoCode),
            (None, Some(_)) => {}
        }
        let link = client.exchange_code(code.expect("checked above"), &record.redirect_uri).await?;
        match self.directory.link_fractal(user_id, &link).await? {
            Linked::UidTaken => Err(LinkError::AccountTaken),
            Linked::Stored => {
                self.changed(user_id).await;
                Ok(link.scopes)
            }
        }
    }

    /// Removes the user's link; whether there was one.
    pub async fn unlink_fractal(&self, user_id: &str) -> Result<bool, LinkError> {
        let removed = self.directory.unlink_fractal(user_id).await?;
        if removed {
            self.changed(user_id).await;
        }
        Ok(removed)
    }

    /// After a change this replica made about a user: forgets it here at once, and tells every replica.
    pub async fn changed(&self, user_id: &str) {
        self.invalidate_user(user_id).await;
        let change = Change::UserChanged { user_id: user_id.to_owned() };
        if let Err(error) = self.changes.publish(&change).await {
            // Other replicas' caches expire on their own; this one is already right.
            tracing::warn!(%error, "could not tell other replicas about a change");
        }
    }
}

/// The linking set-up, shared by the hub.
pub type SharedLinking = Option<Arc<Linking>>;
