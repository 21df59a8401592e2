//! Stage 7, audit: what the audit record of an operation holds is collected as its fields resolve: each personal
//! field answered or denied, with its path of field names (what the record keeps) and its response path (where
//! strict mode finds the value); mutations by name; and, when required, a client's stated purpose.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{ExtensionContext, ResolveInfo};
use async_graphql::{PathSegment, QueryPathSegment, ServerError, ServerResult, Value};

use super::{path_of, PolicyExtension};
use crate::audit::Outcome;
use crate::auth::Principal;
use crate::graphql::access::{personal, Access, Purpose};
use crate::graphql::errors::ErrorCode;

/// A personal field of an audited operation, being resolved.
pub struct Noted<'a> {
    access: &'a Arc<Access>,
    path: Vec<PathSegment>,
    field: String,
}

impl Noted<'_> {
    pub fn denied(&self) {
        self.access.note_field(self.path.clone(), self.field.clone(), Outcome::Denied);
    }

    /// Notes what the resolver came to: a value answered, or a denial it raised.
    pub fn resolved(self, resolved: &ServerResult<Option<Value>>) {
        match resolved {
            Ok(Some(value)) if !matches!(value, Value::Null) => {
                self.access.note_field(self.path, self.field, Outcome::Returned)
            }
            Err(error)
                if error.extensions.as_ref().and_then(|e| e.get("code"))
                    == Some(&Value::from(ErrorCode::UnauthorizedFieldOrType.as_str())) =>
            {
                self.access.note_field(self.path, self.field, Outcome::Denied)
            }
            _ => {}
        }
    }
}

/// The path of field names from the root to the field being resolved (`user.emails`), list positions left out: the
/// response path with each aliased field's name for its alias.
fn field_path(info: &ResolveInfo<'_>, aliased: &HashMap<String, String>) -> String {
    let mut segments: Vec<&QueryPathSegment<'_>> =
        std::iter::once(info.path_node).chain(info.path_node.parents()).map(|node| &node.segment).collect();
    segments.reverse();
    let Some((_, above)) = segments.split_last() else { return info.name.to_owned() };
    let (mut key, mut names) = (String::new(), Vec::with_capacity(segments.len()));
    for segment in above {
        if !key.is_empty() {
            key.push('.');
        }
        match segment {
            QueryPathSegment::Index(index) => key.push_str(&index.to_string()),
            QueryPathSegment::Name(name) => {
                key.push_str(name);
                names.push(aliased.get(&key).map_or(*name, String::as_str).to_owned());
            }
        }
    }
    names.push(info.name.to_owned());
    names.join(".")
}

/// The field being resolved, when it is personal and the operation audited; a mutation field is noted by name.
pub fn noted<'a>(policy: &PolicyExtension, ctx: &'a ExtensionContext<'_>, info: &ResolveInfo<'_>) -> Option<Noted<'a>> {
    let access = ctx.data_opt::<Arc<Access>>()?;
    if info.parent_type == "Mutation" {
        access.note_mutation(info.name);
    }
    if !personal(info.parent_type, info.name) {
        return None;
    }
    Some(Noted { access, path: path_of(info), field: field_path(info, &policy.state().aliased) })
}

/// A client reading personal data must say why, when the gateway is configured so: the error, the field noted
/// denied.
pub fn purpose(
    policy: &PolicyExtension,
    ctx: &ExtensionContext<'_>,
    info: &ResolveInfo<'_>,
    noted: &Noted<'_>,
) -> Option<ServerError> {
    let client = matches!(ctx.data_opt::<Principal>(), Some(Principal::Client { .. }));
    let stated = ctx.data_opt::<Purpose>().is_some_and(|p| p.0.is_some());
    if !policy.bounds.require_purpose || !client || stated {
        return None;
    }
    let mut error = ServerError::new(
        "a client token reading personal data must state its purpose (X-Access-Purpose)",
        Some(info.field.name.pos),
    );
    error.path = noted.path.clone();
    error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::PurposeRequired.as_str());
    noted.denied();
    Some(error)
}

/// An aliased field with a selection set of an audited operation: remembered by its response path while it
/// resolves, so that the paths of the personal fields under it use its name. The key to forget it by.
pub fn enter_alias(
    policy: &PolicyExtension,
    ctx: &ExtensionContext<'_>,
    info: &ResolveInfo<'_>,
    leaf: bool,
) -> Option<String> {
    match (ctx.data_opt::<Arc<Access>>(), info.alias) {
        (Some(_), Some(_)) if !leaf => {
            let key = info.path_node.to_string();
            policy.state().aliased.insert(key.clone(), info.name.to_owned());
            Some(key)
        }
        _ => None,
    }
}

/// Forgets an alias [`enter_alias`] remembered.
pub fn leave_alias(policy: &PolicyExtension, key: Option<String>) {
    if let Some(key) = key {
        policy.state().aliased.remove(&key);
    }
}
