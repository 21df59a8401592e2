//! Stage 3, operation: the operation the request runs (the one it names, or the document's only one), refused when
//! a query or mutation arrives without the audit trail's collection (only the HTTP handler provides it, so nothing
//! reaches personal data unrecorded), and noted for the audit record and the metrics.

use std::sync::Arc;

use async_graphql::extensions::ExtensionContext;
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, OperationType, VariableDefinition};
use async_graphql::{Positioned, ServerError};

use crate::graphql::access::{Access, Operation};
use crate::graphql::errors::ErrorCode;

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
    let audited = ctx.data_opt::<Arc<Access>>();
    if audited.is_none() && chosen.is_some() && kind != "subscription" {
        // Only the HTTP handler audits queries and mutations; anything else (a persisted query sent over WebSocket
        // by its hash, say) would read personal data without a record.
        let mut error =
            ServerError::new("only subscriptions go over WebSocket; send queries and mutations to POST /graphql", None);
        error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadRequest.as_str());
        return Err(error);
    }
    if let Some(access) = audited {
        access.note_operation(Operation {
            // The chosen operation's own name (`query MyKyc { ... }`), never a requested name that names nothing in
            // the document: metrics label operations by it, and made-up names must not use up their labels.
            name: chosen.and_then(|(name, _)| name).map(str::to_owned),
            kind: kind.to_owned(),
            document_hash: crate::digest::sha256_hex(query),
            mutations: Vec::new(),
        });
    }
    Ok(chosen.map(|(_, op)| op.node.variable_definitions.clone()).unwrap_or_default())
}
