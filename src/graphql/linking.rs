//! Linking the caller's account at the provider that offers linking (the flow: `providers/linking.rs`; the guide:
//! docs/identity-and-linking.md). The GraphQL names are the published API's, from when there was one such provider.

use async_graphql::{Context, Object, Result, SimpleObject};
use time::OffsetDateTime;

use super::errors::{self, coded, ErrorCode};
use super::{principal, services};
use crate::authz::rules;
use crate::domain::UserId;
use crate::providers::linking::LinkError;

/// Where to send the user to authorize the gateway at the provider.
#[derive(SimpleObject)]
#[graphql(name = "FractalLinkStart")]
pub struct LinkStart {
    /// The provider's authorize page, with the gateway's client, the scopes and the `state`.
    pub authorize_url: String,
    /// What the provider hands back with the code; pass it to `completeFractalLink` as it is.
    pub state: String,
    /// When the state expires.
    pub expires_at: OffsetDateTime,
}

/// A stored link.
#[derive(SimpleObject)]
#[graphql(name = "FractalLinkResult")]
pub struct LinkResult {
    /// The scopes the user granted the gateway at the provider.
    pub granted_scopes: Vec<String>,
}

/// The name of the provider accounts are linked at, for messages.
fn linked_at(ctx: &Context<'_>) -> &'static str {
    services(ctx).providers.set.linking().map_or("an account", |(provider, _)| provider.display_name())
}

/// The user the token speaks for: linking is about one's own account.
fn own_user<'a>(ctx: &Context<'a>) -> Result<&'a UserId> {
    rules::me(principal(ctx)).ok_or_else(|| {
        let message = format!("linking {} needs a user token: a user links their own account", linked_at(ctx));
        coded(message, ErrorCode::NotAUserToken)
    })
}

fn link_error(error: LinkError) -> async_graphql::Error {
    let code = match &error {
        LinkError::RedirectNotAllowed => ErrorCode::RedirectUriNotAllowed,
        LinkError::StateInvalid => ErrorCode::LinkStateInvalid,
        LinkError::StateForeign => ErrorCode::LinkStateForeign,
        LinkError::StateExpired => ErrorCode::LinkStateExpired,
        LinkError::StateReplayed => ErrorCode::LinkStateReplayed,
        LinkError::AccessDenied(_) => ErrorCode::LinkAccessDenied,
        LinkError::AccountTaken(_) => ErrorCode::LinkAccountTaken,
        LinkError::Refused(_) | LinkError::NoCode(_) => ErrorCode::BadUserInput,
        LinkError::Provider(Some(provider), e) => return errors::provider(*provider, e),
        LinkError::Provider(None, e) => return errors::internal("linking", e),
        LinkError::Directory(e) => return errors::internal("directory", e),
    };
    coded(error.to_string(), code)
}

#[derive(Default)]
pub struct LinkingMutation;

#[Object]
impl LinkingMutation {
    /// Starts linking the caller's account: the authorize URL to send the user to. The provider sends the user
    /// back to `redirectUri` (which must be on the gateway's allow-list) with `code` and `state`, or with
    /// `error=access_denied`. Needs a user token with `fractal.link:write`.
    #[graphql(name = "startFractalLink", requires_scopes = "fractal.link:write")]
    async fn start_link(&self, ctx: &Context<'_>, redirect_uri: String) -> Result<Option<LinkStart>> {
        let user = own_user(ctx)?;
        if redirect_uri.len() > 2048 {
            return Err(errors::bad_input("redirectUri is longer than 2048 characters"));
        }
        let start = services(ctx).providers.start_link(user, &redirect_uri).await.map_err(link_error)?;
        let expires_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(start.expires_at) * 1_000_000)
            .map_err(|e| errors::internal("link state expiry", &e))?;
        Ok(Some(LinkStart { authorize_url: start.authorize_url, state: start.state, expires_at }))
    }

    /// Completes linking with what the provider handed back at the redirect URI: `state`, and `code` (or `error`,
    /// when the user refused). Each state works once, for the user who started it, for 10 minutes. Needs a user
    /// token with `fractal.link:write`.
    #[graphql(name = "completeFractalLink", requires_scopes = "fractal.link:write")]
    async fn complete_link(
        &self,
        ctx: &Context<'_>,
        state: String,
        code: Option<String>,
        error: Option<String>,
    ) -> Result<Option<LinkResult>> {
        let user = own_user(ctx)?;
        if code.as_ref().is_some_and(|c| c.len() > 1024) || error.as_ref().is_some_and(|e| e.len() > 256) {
            return Err(errors::bad_input(format!("code or error is longer than {}'s", linked_at(ctx))));
        }
        let providers = &services(ctx).providers;
        let scopes =
            providers.complete_link(user, &state, code.as_deref(), error.as_deref()).await.map_err(link_error)?;
        Ok(Some(LinkResult { granted_scopes: scopes.split_whitespace().map(str::to_owned).collect() }))
    }

    /// Removes the caller's link (the provider then contributes nothing for them until they link again); whether
    /// there was one. Needs a user token with `fractal.link:write`.
    #[graphql(name = "unlinkFractal", requires_scopes = "fractal.link:write")]
    async fn unlink(&self, ctx: &Context<'_>) -> Result<Option<bool>> {
        let user = own_user(ctx)?;
        Ok(Some(services(ctx).providers.unlink(user).await.map_err(link_error)?))
    }
}
