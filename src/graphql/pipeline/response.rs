//! Stage 8, response: a failed nullable field is `null` with its error and path (async-graphql 7 would leave it out and
//! wipe a parent whose every field failed); the answer's size is bounded as it resolves; at most `max_errors` errors,
//! each coded by the phase it comes from (async-graphql codes none of its own).

use async_graphql::extensions::{ExtensionContext, ResolveInfo};
use async_graphql::{Response, ServerError, ServerResult, Value};

use super::{Phase, PolicyExtension};
use crate::graphql::errors::ErrorCode;

fn has_code(error: &ServerError) -> bool {
    error.extensions.as_ref().is_some_and(|e| e.get("code").is_some())
}

/// `error` with `code`, unless it has one.
pub fn with_code(mut error: ServerError, code: ErrorCode) -> ServerError {
    if !has_code(&error) {
        error.extensions.get_or_insert_with(Default::default).set("code", Value::from(code.as_str()));
    }
    error
}

/// At most `max` errors; the rest are counted in one last error.
fn bounded(mut errors: Vec<ServerError>, max: usize) -> Vec<ServerError> {
    if errors.len() > max {
        let left_out = errors.len() - (max - 1);
        errors.truncate(max - 1);
        let mut last = ServerError::new(format!("{left_out} more errors were left out of this answer"), None);
        last.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::TooManyErrors.as_str());
        errors.push(last);
    }
    errors
}

/// A rough size of a resolved value in the JSON answer: leaves only (an object's or list's members are counted
/// when they resolve), so each byte is counted once. A scalar's value (a `JSON` object or list) is counted by
/// [`value_bytes`].
pub(super) fn leaf_bytes(value: &Value) -> Option<usize> {
    Some(match value {
        Value::Null | Value::Boolean(_) => 5,
        Value::Number(_) => 12,
        Value::String(s) => s.len() + 2,
        Value::Enum(e) => e.len() + 2,
        Value::Binary(b) => b.len() * 4 / 3 + 2,
        Value::List(items) => items.iter().map(leaf_bytes).sum::<Option<usize>>()? + 2,
        Value::Object(_) => return None,
    })
}

/// A rough size of a whole value in the JSON answer, members included: the value of a scalar (or enum) field, which
/// no resolver of its own counts.
pub(super) fn value_bytes(value: &Value) -> usize {
    match value {
        Value::List(items) => items.iter().map(value_bytes).fold(2, usize::saturating_add),
        Value::Object(members) => {
            members.iter().map(|(name, value)| name.len() + 4 + value_bytes(value)).fold(2, usize::saturating_add)
        }
        leaf => leaf_bytes(leaf).unwrap_or(0),
    }
}

/// What the response stage needs to know of a field before it resolves.
pub struct Shape {
    nullable: bool,
    /// A scalar's (or enum's) value is measured whole; an object's members are measured as they resolve.
    pub leaf: bool,
    name_bytes: usize,
}

impl Shape {
    pub fn of(ctx: &ExtensionContext<'_>, info: &ResolveInfo<'_>) -> Self {
        let leaf = ctx
            .schema_env
            .registry
            .types
            .get(async_graphql::registry::MetaTypeName::concrete_typename(info.return_type))
            .is_some_and(|ty| ty.is_leaf());
        Shape { nullable: !info.return_type.ends_with('!'), leaf, name_bytes: info.name.len() + 4 }
    }
}

/// A field refused before it resolved: `null` with the error when it is nullable, else the error.
pub fn refused(policy: &PolicyExtension, shape: &Shape, error: ServerError) -> ServerResult<Option<Value>> {
    if !shape.nullable {
        return Err(error);
    }
    nulled(policy, error)
}

/// `null`, its error kept for the answer.
pub fn nulled(policy: &PolicyExtension, error: ServerError) -> ServerResult<Option<Value>> {
    policy.state().nulled.push(error);
    Ok(Some(Value::Null))
}

/// Whether the answer has grown past its bound already: the rest resolves to nothing (no provider calls).
pub fn too_large(policy: &PolicyExtension) -> bool {
    policy.state().too_large
}

/// What a field resolved to, as the answer holds it: a failed nullable field `null`, a value counted.
pub fn resolved(
    policy: &PolicyExtension,
    shape: &Shape,
    resolved: ServerResult<Option<Value>>,
) -> ServerResult<Option<Value>> {
    match resolved {
        Err(error) if shape.nullable => nulled(policy, error),
        Ok(Some(value)) => {
            let bytes = if shape.leaf { Some(value_bytes(&value)) } else { leaf_bytes(&value) };
            if let Some(bytes) = bytes {
                let mut state = policy.state();
                state.bytes += bytes + shape.name_bytes;
                if state.bytes > policy.bounds.limits.max_response_bytes {
                    state.too_large = true;
                }
            }
            Ok(Some(value))
        }
        other => other,
    }
}

/// An executed operation's answer (of a query, or of one subscription event): the nulled fields' errors added, the
/// whole answer replaced when it grew too large, the errors coded and bounded. Execution's own uncoded errors are
/// argument coercions.
pub fn executed(policy: &PolicyExtension, mut response: Response) -> Response {
    let (nulled, too_large) = {
        let mut state = policy.state();
        let too_large = std::mem::take(&mut state.too_large);
        state.bytes = 0;
        (std::mem::take(&mut state.nulled), too_large)
    };
    if too_large {
        let limit = policy.bounds.limits.max_response_bytes;
        let mut error = ServerError::new(format!("the answer grew past {limit} bytes; ask for less"), None);
        error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::ResponseTooLarge.as_str());
        response.data = Value::Null;
        response.errors = vec![error];
        return response;
    }
    let errors = nulled.into_iter().chain(std::mem::take(&mut response.errors));
    let coded = errors.map(|e| with_code(e, ErrorCode::BadUserInput)).collect();
    response.errors = bounded(coded, policy.bounds.limits.max_errors);
    response
}

/// The request's answer: an error async-graphql raised with no code, coded by where the request got to (after
/// validation and before execution only the choice of the operation can fail; execution coded its own).
pub fn requested(policy: &PolicyExtension, mut response: Response) -> Response {
    let uncoded = match policy.state().phase {
        Phase::Validated => ErrorCode::OperationResolutionFailure,
        Phase::Executing => ErrorCode::BadUserInput,
        Phase::Started => ErrorCode::InternalServerError,
    };
    let coded = std::mem::take(&mut response.errors).into_iter().map(|e| with_code(e, uncoded)).collect();
    response.errors = bounded(coded, policy.bounds.limits.max_errors);
    response
}
