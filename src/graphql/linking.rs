//! Linking the caller's Fractal account: `startFractalLink`, `completeFractalLink`, `unlinkFractal` (the flow is
//! described in `providers/linking.rs` and docs/identity-and-linking.md).

use async_graphql::{Context, Object, Result, SimpleObject};
use time::OffsetDateTime;

use super::errors::{self, coded, ErrorCode};
use super::{principal, services};
use crate::authz::rules;
use crate::domain::Provider;
use crate::providers::linking::LinkError;

/// Where to send the user to authorize the gateway at Fractal.
#[derive(SimpleObject)]
pub struct FractalLinkStart {
    /// Fractal's authorize page, with the gateway's client, the scopes and the `state`.
    pub authorize_url: String,
    /// What Fractal hands back with the code; pass it to `completeFractalLink` as it is.
    pub state: String,
    /// When the state expires.
    pub expires_at: OffsetDateTime,
}

/// A stored link.
#[derive(SimpleObject)]
pub struct FractalLinkResult {
    /// The scopes the user granted the gateway at Fractal.
    pub granted_scopes: Vec<String>,
}

/// The user the token speaks for: linking is about one's own account.
fn own_user<'a>(ctx: &Context<'a>) -> Result<&'a str> {
    rules::me(principal(ctx)).ok_or_else(|| {
        coded("linking Fractal needs a user token: a user links their own account", ErrorCode::NotAUserToken)
    })
}

fn link_error(error: LinkError) -> async_graphql::Error {
    let code = match &error {
        LinkError::RedirectNotAllowed => ErrorCode::RedirectUriNotAllowed,
        LinkError::StateInvalid => ErrorCode::LinkStateInvalid,
        LinkError::StateForeign => ErrorCode::LinkStateForeign,
        LinkError::StateExpired => ErrorCode::LinkStateExpired,
        LinkError::StateReplayed => ErrorCode::LinkStateReplayed,
        LinkError::AccessDenied => ErrorCode::FractalAccessDenied,
        LinkError::AccountTaken => ErrorCode::FractalAccountTaken,
        LinkError::Refused | LinkError::NoCode => ErrorCode::BadUserInput,
        LinkError::Provider(e) => return errors::provider(Provider::Fractal, e),
        LinkError::Directory(e) => return errors::internal("directory", e),
    };
    coded(error.to_string(), code)
}

#[derive(Default)]
pub struct LinkingMutation;

#[Object]
impl LinkingMutation {
    /// Starts linking the caller's Fractal account: the authorize URL to send the user to. Fractal sends the user
    /// back to `redirectUri` (which must be on the gateway's allow-list) with `code` and `state`, or with
    /// `error=access_denied`. Needs a user token with `fractal.link:write`.
    #[graphql(requires_scopes = "fractal.link:write")]
    async fn start_fractal_link(&self, ctx: &Context<'_>, redirect_uri: String) -> Result<Option<FractalLinkStart>> {
        let user = own_user(ctx)?;
        if redirect_uri.len() > 2048 {
            return Err(errors::bad_input("redirectUri is longer than 2048 characters"));
        }
        let start = services(ctx).providers.start_fractal_link(user, &redirect_uri).await.map_err(link_error)?;
        let expires_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(start.expires_at) * 1_000_000)
            .map_err(|e| errors::internal("link state expiry", &e))?;
        Ok(Some(FractalLinkStart { authorize_url: start.authorize_url, state: start.state, expires_at }))
    }

    /// Completes linking with what Fractal handed back at the redirect URI: `state`, and `code` (or `error`, when
    /// the user refused). Each state works once, for the user who started it, for 10 minutes. Needs a user token
    /// with `fractal.link:write`.
    #[graphql(requires_scopes = "fractal.link:write")]
    async fn complete_fractal_link(
        &self,
        ctx: &Context<'_>,
        state: String,
        code: Option<String>,
        error: Option<String>,
    ) -> Result<Option<FractalLinkResult>> {
        let user = own_user(ctx)?;
        if code.as_ref().is_some_and(|c| c.len() > 1024) || error.as_ref().is_some_and(|e| e.len() > 256) {
            return Err(errors::bad_input("code or error is longer than Fractal's"));
        }
        let providers = &services(ctx).providers;
        let scopes = providers
            .complete_fractal_link(user, &state, code.as_deref(), error.as_deref())
            .await
            .map_err(link_error)?;
        Ok(Some(FractalLinkResult { granted_scopes: scopes.split_whitespace().map(str::to_owned).collect() }))
    }

    /// Removes the caller's Fractal link (Fractal then contributes nothing for them until they link again); whether
    /// there was one. Needs a user token with `fractal.link:write`.
    #[graphql(requires_scopes = "fractal.link:write")]
    async fn unlink_fractal(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        let user = own_user(ctx)?;
        Ok(Some(services(ctx).providers.unlink_fractal(user).await.map_err(link_error)?))
    }
}
