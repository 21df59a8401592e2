//! Apollo Federation's `_entities`: each representation answered at its own position. async-graphql resolves them all
//! without it, so errors and strict audit mode's withholding (by path) could not tell whose field it was; the resolver
//! finds its position and answers an [`EntityUser`], resolved under `["_entities", position]`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{
    Any, Context, ContextSelectionSet, InputType, OutputType, Positioned, Result, ServerResult, Value, ID,
};

use super::errors::{bad_input, internal};
use super::services;
use super::user::User;

/// The positions of `_entities` given out so far in one operation, per `_entities` field (its response key) and id:
/// each resolution of a repeated representation takes the next position of its id (with the same answer), so every
/// position is answered once. `server/audited.rs` puts one in every operation's data.
#[derive(Debug, Default)]
pub struct EntityPositions(Mutex<HashMap<(String, String), usize>>);

/// The position in `_entities(representations:)` that this resolution of the user `id` answers for. Also refuses
/// more representations than `users(ids:)` takes ids: they are the same lookups.
pub fn position(ctx: &Context<'_>, id: &str) -> Result<usize> {
    let (_, representations) = ctx.param_value::<Vec<Any>>("representations", None)?;
    let max = services(ctx).max_user_ids;
    if representations.len() > max {
        return Err(bad_input(format!("_entities takes at most {max} representations, got {}", representations.len())));
    }
    // The key as the derive reads it (an `ID` parses from a string or a number).
    let asks_for = |r: &Any| {
        let Value::Object(fields) = &r.0 else { return false };
        fields.get("__typename") == Some(&Value::String("User".into()))
            && fields.get("id").is_some_and(|v| ID::parse(Some(v.clone())).is_ok_and(|parsed| parsed.as_str() == id))
    };
    let positions: Vec<usize> =
        representations.iter().enumerate().filter(|(_, r)| asks_for(r)).map(|(i, _)| i).collect();
    let taken = match ctx.data_opt::<EntityPositions>() {
        Some(given) => {
            let field = ctx.item.node.response_key().node.to_string();
            let mut given = given.0.lock().expect("entity positions lock");
            let next = given.entry((field, id.to_owned())).or_default();
            *next += 1;
            *next - 1
        }
        // Without the operation's record (nothing but HTTP runs queries), the first position of the id.
        None => 0,
    };
    positions.get(taken).or(positions.last()).copied().ok_or_else(|| internal("_entities", &"no representation"))
}

/// A user answered at a position of `_entities`: the GraphQL type `User` (the same type, registered by `User`),
/// resolved one level down, under its position.
pub struct EntityUser {
    pub position: usize,
    pub user: User,
}

impl OutputType for EntityUser {
    fn type_name() -> Cow<'static, str> {
        <User as OutputType>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <User as OutputType>::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        OutputType::resolve(&self.user, &ctx.with_index(self.position), field).await
    }
}
