//! Stage 3, operation: the operation the request runs (the one it names, or the document's only one), refused when
//! a query or mutation arrives without the audit trail's collection (only the HTTP handler provides it, so nothing
//! reaches personal data unrecorded), and noted for the audit record and the metrics. An operation name is caller
//! text: one longer than [`MAX_OPERATION_NAME`], or an `operationName` that is no GraphQL name, is refused here.

use std::sync::Arc;

use async_graphql::extensions::ExtensionContext;
use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{Positioned, ServerError};

use crate::graphql::access::{Access, Operation};
use crate::graphql::errors::ErrorCode;

/// The longest operation name (in `operationName` or in the document) a request may use.
pub const MAX_OPERATION_NAME: usize = 128;

/// Whether `name` is a GraphQL Name (`[_A-Za-z][_0-9A-Za-z]*`).
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn coded(message: &str, code: ErrorCode) -> ServerError {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
    error
}

/// The request's `operationName`, checked before anything else reads it: at most [`MAX_OPERATION_NAME`] characters
/// of a GraphQL Name. The error never echoes the name.
pub fn check_requested(name: Option<&str>) -> Result<(), ServerError> {
    let Some(name) = name else { return Ok(()) };
    if name.chars().count() > MAX_OPERATION_NAME {
        let message = format!("operationName is at most {MAX_OPERATION_NAME} characters");
        return Err(coded(&message, ErrorCode::OperationNameTooLong));
    }
    if !is_name(name) {
        let message = "operationName is not a GraphQL name ([_A-Za-z][_0-9A-Za-z]*), so it names no operation";
        return Err(coded(message, ErrorCode::OperationResolutionFailure));
    }
    Ok(())
}

/// An operation name as the audit record, the metrics and the logs may hold it: a GraphQL Name of at most
/// [`MAX_OPERATION_NAME`] characters as is, anything else cut to its name characters and marked `__truncated`.
pub fn bounded_name(name: &str) -> String {
    if name.chars().count() <= MAX_OPERATION_NAME && is_name(name) {
        return name.to_owned();
    }
    const MARK: &str = "__truncated";
    let kept: String =
        name.chars().filter(|c| *c == '_' || c.is_ascii_alphanumeric()).take(MAX_OPERATION_NAME - MARK.len()).collect();
    format!("{kept}{MARK}")
}

/// The type of the operation a request runs (see [`chosen`]), `None` when none can be chosen: what decides whether a
/// GET may carry it.
pub fn chosen_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    chosen(doc, name).map(|(_, op)| op.node.ty)
}

/// The operation a request runs: the one it names, or the document's only one.
fn chosen<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<(Option<&'d str>, &'d Positioned<OperationDefinition>)> {
    let mut operations = doc.operations.iter();
    let chosen = match name {
        Some(name) => operations.find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
        None => operations.next().filter(|_| doc.operations.iter().count() == 1),
    };
    chosen.map(|(n, op)| (n.map(|n| n.as_str()), op))
}

/// The root fields whose answer is about the users they were asked for (each noted by `access::note_asked`).
const CACHEABLE_ROOTS: [&str; 4] = ["me", "user", "users", "__typename"];

/// Whether every root field of `set` (fragments expanded, at most a few levels of them) is one of
/// [`CACHEABLE_ROOTS`].
fn roots_cacheable(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    depth < 4
        && set.items.iter().all(|item| match &item.node {
            Selection::Field(field) => CACHEABLE_ROOTS.contains(&field.node.name.node.as_str()),
            Selection::InlineFragment(fragment) => roots_cacheable(doc, &fragment.node.selection_set.node, depth + 1),
            Selection::FragmentSpread(spread) => doc
                .fragments
                .get(&spread.node.fragment_name.node)
                .is_some_and(|fragment| roots_cacheable(doc, &fragment.node.selection_set.node, depth + 1)),
        })
}

/// In a request's data: it came as a GET, so only a query may run.
#[derive(Debug, Clone, Copy)]
pub struct ReadOnly;

/// `query`, `mutation` or `subscription`; `query` when it cannot be told (execution then fails anyway).
fn kind(operation: Option<&Positioned<OperationDefinition>>) -> &'static str {
    match operation.map(|op| op.node.ty) {
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        _ => "query",
    }
}

/// Chooses the operation of `doc` named `name` (of the text `query`), refuses it unaudited, notes it; its variable
/// definitions, for stage 4.
pub fn choose(
    ctx: &ExtensionContext<'_>,
    doc: &ExecutableDocument,
    name: Option<&str>,
    query: &str,
) -> Result<Vec<Positioned<VariableDefinition>>, ServerError> {
    let chosen = chosen(doc, name);
    let kind = kind(chosen.map(|(_, op)| op));
    if chosen.and_then(|(name, _)| name).is_some_and(|name| name.chars().count() > MAX_OPERATION_NAME) {
        let message = format!("an operation's name is at most {MAX_OPERATION_NAME} characters");
        return Err(coded(&message, ErrorCode::OperationNameTooLong));
    }
    if ctx.data_opt::<ReadOnly>().is_some() && chosen.is_some() && kind != "query" {
        // The HTTP handler answers 405 before this; the pipeline refuses it too, whatever chose the operation.
        return Err(coded("only queries may be sent with GET; use POST", ErrorCode::BadRequest));
    }
    let audited = ctx.data_opt::<Arc<Access>>();
    if audited.is_none() && chosen.is_some() && kind != "subscription" {
        // Only the HTTP handler audits queries and mutations; anything else (a persisted query sent over WebSocket
        // by its hash, say) would read personal data without a record.
        let message = "only subscriptions go over WebSocket; send queries and mutations to POST /graphql";
        return Err(coded(message, ErrorCode::BadRequest));
    }
    if let Some(access) = audited {
        access.note_operation(Operation {
            // The chosen operation's own name (`query MyKyc { ... }`), never a requested name that names nothing in
            // the document: metrics label operations by it, and made-up names must not use up their labels.
            name: chosen.and_then(|(name, _)| name).map(bounded_name),
            kind: kind.to_owned(),
            document_hash: crate::digest::sha256_hex(query),
            cacheable: kind == "query"
                && chosen.is_some_and(|(_, op)| roots_cacheable(doc, &op.node.selection_set.node, 0)),
            ..Operation::default()
        });
    }
    Ok(chosen.map(|(_, op)| op.node.variable_definitions.clone()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_name_is_a_graphql_name_of_at_most_128_characters() {
        assert!(check_requested(None).is_ok() && check_requested(Some("MyKyc_2")).is_ok());
        assert!(check_requested(Some(&"A".repeat(128))).is_ok());
        for bad in ["A".repeat(129), "my name".into(), "2fast".into(), "é".into(), String::new()] {
            assert!(check_requested(Some(&bad)).is_err(), "{bad:?}");
        }
        assert_eq!(bounded_name("MyKyc"), "MyKyc");
        let long = bounded_name(&"A".repeat(60_000));
        assert!(long.len() <= MAX_OPERATION_NAME && long.ends_with("__truncated"), "{long}");
        assert_eq!(bounded_name("a b\nc"), "abc__truncated", "a newline and a space are not name characters");
    }

    #[test]
    fn the_operation_a_request_runs_is_its_named_one_or_the_document_s_only_one() {
        let doc = async_graphql::parser::parse_query("mutation M { a }").expect("parses");
        assert_eq!(chosen_type(&doc, None), Some(OperationType::Mutation), "a lone named mutation");
        let doc = async_graphql::parser::parse_query("query Q { a } mutation M { a }").expect("parses");
        assert_eq!(chosen_type(&doc, Some("M")), Some(OperationType::Mutation));
        assert_eq!(chosen_type(&doc, Some("Q")), Some(OperationType::Query));
        assert_eq!(chosen_type(&doc, None), None);
    }

    #[test]
    fn only_a_query_of_users_asked_for_by_id_or_token_may_be_cached() {
        let cacheable = |text: &str| {
            let doc = async_graphql::parser::parse_query(text).expect("parses");
            let (_, op) = chosen(&doc, None).expect("one operation");
            roots_cacheable(&doc, &op.node.selection_set.node, 0)
        };
        assert!(cacheable("{ me { id } u: user(id: \"x\") { id } users(ids: []) { id } __typename }"));
        assert!(cacheable("query { ...F } fragment F on Query { ... on Query { me { id } } }"));
        assert!(!cacheable("{ me { id } verificationStats { total } }"));
        assert!(!cacheable("{ ...F } fragment F on Query { auditEvents { edges { cursor } } }"));
        assert!(!cacheable("{ ...F } fragment F on Query { ...G } fragment G on Query { ...F }"), "a cycle");
    }
}
