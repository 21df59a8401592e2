//! Scope checks for resolvers: the caller's [`Principal`] from the request data, and the denial error when a
//! requirement is not met.

use async_graphql::{Context, Result};

use super::errors::unauthorized;
use crate::auth::Principal;

/// The caller. The HTTP layer puts it on every request; a request without one is a bug, not a caller error.
pub fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    ctx.data_unchecked::<Principal>()
}

/// Passes when the caller holds at least one of `any_of`.
pub fn require_any(ctx: &Context<'_>, any_of: &[&str]) -> Result<()> {
    let p = principal(ctx);
    if any_of.iter().any(|s| p.has(s)) {
        Ok(())
    } else {
        Err(unauthorized(any_of.iter().map(|s| vec![s.to_string()]).collect()))
    }
}

/// Passes when the caller holds `scope`.
pub fn require(ctx: &Context<'_>, scope: &str) -> Result<()> {
    require_any(ctx, &[scope])
}
