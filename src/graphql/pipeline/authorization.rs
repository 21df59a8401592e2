//! Stage 6, authorization: a field's static requirement (`@requiresScopes`, read by [`Declared`]) is checked before its
//! resolver runs; a denied field is `null` with `UNAUTHORIZED_FIELD_OR_TYPE` and nothing is fetched for it. Rules that
//! depend on data run in the resolvers (`authz::rules`). Federation's `_service` follows introspection.

use async_graphql::extensions::{ExtensionContext, ResolveInfo};
use async_graphql::ServerError;

use super::path_of;
use crate::auth::{Principal, Scopes};
use crate::authz::Declared;
use crate::graphql::errors::{required_scopes, ErrorCode};

/// Refuses `_service` where introspection is off: the SDL is the whole schema, and a router composes from
/// `schema.graphql` instead.
pub fn service(serve_sdl: bool, info: &ResolveInfo<'_>) -> Result<(), ServerError> {
    if serve_sdl || info.parent_type != "Query" || info.name != "_service" {
        return Ok(());
    }
    let mut error = ServerError::new(
        "`_service` is off where introspection is off; compose from schema.graphql",
        Some(info.field.name.pos),
    );
    error.path = path_of(info);
    error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::GraphqlValidationFailed.as_str());
    Err(error)
}

/// The denial of the field being resolved, when its declared requirement is not met.
pub fn declared(declared: &Declared, ctx: &ExtensionContext<'_>, info: &ResolveInfo<'_>) -> Option<ServerError> {
    let requirement = declared.get(info.parent_type, info.name)?;
    let no_scopes = Scopes::default();
    let scopes = ctx.data_opt::<Principal>().map_or(&no_scopes, Principal::scopes);
    let denial = requirement.check(scopes).err()?;
    let mut error = ServerError::new("Unauthorized field or type", Some(info.field.name.pos));
    error.path = path_of(info);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", ErrorCode::UnauthorizedFieldOrType.as_str());
    extensions.set("requiredScopes", required_scopes(&denial));
    Some(error)
}
