//! Executing an operation under the audit trail (`crate::audit`): every operation that answered (or was denied)
//! personal data, and every mutation, leaves a record before its answer leaves. In strict mode a failed record
//! withholds the personal values (`AUDIT_UNAVAILABLE` at their paths); the rest of the answer still goes out.

use std::sync::Arc;

use async_graphql::{PathSegment, Request, Response, ServerError, Value};
use axum::http::{HeaderMap, HeaderName};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::connections::CallerSlot;
use super::observe::RequestContext;
use super::responses::Kept;
use super::AppState;
use crate::audit::{Caller, Entry, FieldAccess, Outcome};
use crate::auth::token::Verified;
use crate::graphql::access::{field_paths, Access, Noted, Operation, Purpose};
use crate::graphql::errors::ErrorCode;
use crate::graphql::{EntityPositions, Executed, Loaders};

/// The longest stated purpose.
const MAX_PURPOSE: usize = 200;
/// The header a client states its purpose in.
pub static PURPOSE_HEADER: HeaderName = HeaderName::from_static("x-access-purpose");

/// What the audit record takes from the HTTP request.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// This request's id (also the `X-Request-Id` of the answer).
    pub request_id: String,
    /// The trace of a W3C `traceparent` header.
    pub trace_id: Option<String>,
    /// The `X-Access-Purpose` header.
    pub purpose: Option<String>,
}

/// A stated purpose, if it is one: printable text of at most 200 bytes.
fn valid_purpose(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_PURPOSE || text.chars().any(char::is_control) {
        return Err(format!("a purpose is printable text of 1 to {MAX_PURPOSE} bytes"));
    }
    Ok(text.to_owned())
}

impl RequestMeta {
    /// The request's id and trace (from `observe.rs`), and its purpose header; an unreadable purpose is refused (the
    /// message says why).
    pub fn new(context: &RequestContext, headers: &HeaderMap) -> Result<RequestMeta, String> {
        let purpose = match headers.get(&PURPOSE_HEADER) {
            None => None,
            Some(value) => Some(valid_purpose(value.to_str().map_err(|_| "X-Access-Purpose is not text".to_owned())?)?),
        };
        Ok(RequestMeta { request_id: context.request_id.clone(), trace_id: context.trace_id.clone(), purpose })
    }
}

/// The purpose of one operation: its `extensions.purpose`, else the header's.
fn purpose_of(request: &Request, meta: &RequestMeta) -> Result<Option<String>, String> {
    match request.extensions.get("purpose") {
        Some(Value::String(text)) => valid_purpose(text).map(Some),
        Some(_) => Err("extensions.purpose must be a string".into()),
        None => Ok(meta.purpose.clone()),
    }
}

/// One operation's answer, and whether its execution started: when it did not, the answer holds request errors
/// only, which GraphQL over HTTP answers without `data` (`graphql.rs`).
pub struct Answered {
    pub response: Response,
    pub executed: bool,
    /// An answer from the response cache: its `data` as kept, serialized (`response` then holds no data).
    pub kept: Option<Arc<Kept>>,
}

impl Answered {
    pub fn new(response: Response, executed: bool) -> Self {
        Answered { response, executed, kept: None }
    }
}

/// Executes `request` as `caller` and records it; the answer (personal values withheld if the record failed). The
/// operation runs in a task of its own that outlives the request, so a client that disconnects cannot cut a mutation
/// (or a read of personal data) short of its record.
pub async fn execute(
    state: &AppState,
    caller: &Verified,
    meta: &RequestMeta,
    slot: Arc<CallerSlot>,
    loaders: Arc<Loaders>,
    request: Request,
) -> Answered {
    let purpose = match purpose_of(&request, meta) {
        Ok(purpose) => purpose,
        Err(message) => {
            let mut error = ServerError::new(message, None);
            error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadRequest.as_str());
            return Answered::new(Response::from_errors(vec![error]), false);
        }
    };
    let key = state.responses.key(&request, &caller.principal, purpose.is_some());
    if let Some(kept) = match &key {
        Some(key) => state.responses.get(key).await,
        None => None,
    } {
        // Answered on the connection's task: nothing runs that could outlive the client, and the answer leaves only
        // after its record (strict mode), as an executed one does.
        return answer_kept(state, caller, meta, purpose, kept).await;
    }
    let (state, caller, meta) = (state.clone(), caller.clone(), meta.clone());
    // Dropped with this future: the task hears that nobody waits for the answer any more.
    let (_waiting, gone) = oneshot::channel::<()>();
    // Counted as running until it ends: a shutdown lets it leave its record first.
    let running = state.audit.running();
    // hyper drops this future when the client disconnects; the task runs on. An operation that mutates or has answered
    // (or been denied) personal data then runs to its end and leaves its record, any other stops (`gone`). The caller's
    // in-flight slot goes with the task, so an operation running on still counts against the caller's bound.
    let operation = async move {
        let (_running, _slot) = (running, slot);
        run(&state, &caller, &meta, loaders, request, Asked { purpose, key }, gone).await
    };
    let task = tokio::spawn(crate::telemetry::otel::carry_request_trace(operation.in_current_span()));
    match task.await {
        Ok(answered) => answered,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => {
            Answered::new(Response::from_errors(vec![ServerError::new("the operation was cancelled", None)]), false)
        }
    }
}

/// [`execute`]'s task: `gone` resolves when the client no longer waits.
async fn run(
    state: &AppState,
    caller: &Verified,
    meta: &RequestMeta,
    loaders: Arc<Loaders>,
    mut request: Request,
    Asked { purpose, key }: Asked,
    gone: oneshot::Receiver<()>,
) -> Answered {
    if let Some(route) = state.introspection.route(&caller.principal, &mut request, &state.bounds).await {
        return match route {
            Ok(schema) => Answered::new(schema.execute(request).await, true),
            Err(error) => Answered::new(Response::from_errors(vec![error]), false),
        };
    }
    // The operations of one batch share their loaders, and so what the first of them read.
    let built = loaders.made;
    // What it (and the request's other operations) read from the providers' cache: a kept answer lives no longer.
    let reads = loaders.reads.clone();
    let access = Arc::new(Access::default());
    let executed = Executed::default();
    let request = request
        .data(caller.principal.clone())
        .data(loaders)
        .data(access.clone())
        .data(Purpose(purpose.clone()))
        .data(executed.clone())
        .data(EntityPositions::default());
    // Its name and attributes are set on the exported span once the document is parsed (`observe_operation`).
    let span = tracing::info_span!("graphql.operation");
    let started = std::time::Instant::now();
    let execution = reads.clone().scope(state.schema.execute(request)).instrument(span.clone());
    tokio::pin!(execution);
    let mut response = tokio::select! {
        biased;
        response = &mut execution => response,
        _ = gone => {
            // Decided between two polls of the operation: nothing it does is missed.
            if !access.must_be_recorded() {
                let response = Response::from_errors(vec![ServerError::new("the client went away", None)]);
                return Answered::new(response, executed.started());
            }
            execution.await
        }
    };
    let elapsed = started.elapsed();
    let executed = executed.started();
    let asked = access.asked();
    let (noted, subjects, operation) = access.take();
    // Whose change drops a kept answer: the users asked for, and any other whose data it holds.
    let about: std::collections::BTreeSet<String> = asked.into_iter().chain(subjects.iter().cloned()).collect();
    if let Some(key) = key {
        let built = (built, reads.earliest_expiry());
        state.responses.keep(key, built, &response, &noted, &subjects, &operation, about.into_iter().collect()).await;
    }
    if !recorded(state, caller, meta, purpose, field_paths(&noted), subjects, &operation).await {
        withhold(&mut response, &noted);
    }
    observe_operation(&span, &operation, &response, elapsed);
    Answered::new(response, executed)
}

/// What [`execute`] decided before the operation's task: the stated purpose, and the answer's key in the response
/// cache (`responses.rs`) when it may be kept.
struct Asked {
    purpose: Option<String>,
    key: Option<super::responses::Key>,
}

/// A kept answer (`responses.rs`), with the record an execution of it would leave: the same fields, subjects,
/// operation and purpose. Its serialized data goes out as kept, unless the record failed and values are withheld.
async fn answer_kept(
    state: &AppState,
    caller: &Verified,
    meta: &RequestMeta,
    purpose: Option<String>,
    kept: Arc<Kept>,
) -> Answered {
    let span = tracing::info_span!("graphql.operation", graphql.cached = true);
    let started = std::time::Instant::now();
    let mut response = Response::new(Value::Null);
    let (fields, subjects) = (kept.fields.clone(), kept.subjects.clone());
    // Timed as an execution is: up to its record.
    let took = started.elapsed();
    let written = recorded(state, caller, meta, purpose, fields, subjects, &kept.operation).await;
    if written {
        observe_operation(&span, &kept.operation, &response, took);
        return Answered { response, executed: true, kept: Some(kept) };
    }
    response.data = serde_json::from_str(kept.data.get()).expect("a kept answer is the JSON of a Value");
    withhold(&mut response, &kept.noted);
    observe_operation(&span, &kept.operation, &response, took);
    Answered::new(response, true)
}

/// Writes the operation's record, when it read (or was denied) personal data or is a mutation; whether the answer
/// may carry its personal values (false when the record failed: they are withheld).
async fn recorded(
    state: &AppState,
    caller: &Verified,
    meta: &RequestMeta,
    purpose: Option<String>,
    fields: Vec<FieldAccess>,
    subjects: Vec<String>,
    operation: &Operation,
) -> bool {
    let mutation = operation.kind == "mutation";
    if fields.is_empty() && !mutation {
        return true;
    }
    let p = &caller.principal;
    let entry = Entry {
        at: crate::clock::unix_millis(),
        request_id: meta.request_id.clone(),
        trace_id: meta.trace_id.clone(),
        caller: Caller { kind: p.kind().into(), id: p.subject().to_owned(), issuer: p.issuer().to_owned() },
        subjects,
        fields,
        operation_name: operation.name.clone(),
        operation_type: operation.kind.clone(),
        document_hash: operation.document_hash.clone(),
        purpose,
        cause: match (mutation, operation.trail_reads.is_empty()) {
            (true, _) => Some(format!("mutation {}", operation.mutations.join(", "))),
            (false, false) => Some(format!("read of the audit trail: {}", operation.trail_reads.join(", "))),
            (false, true) => None,
        },
    };
    match state.audit.record(entry).await {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, request_id = %meta.request_id, "personal data withheld: its audit record failed");
            false
        }
    }
}

/// The operation's span fields and metrics: its name (bounded, see `telemetry::metrics::operation_label`), type,
/// execution time and outcome (an error once values were withheld). The document and variables are never recorded.
fn observe_operation(span: &tracing::Span, operation: &Operation, response: &Response, took: std::time::Duration) {
    use crate::telemetry::metrics as m;
    let name = m::operation_label(operation.name.as_deref());
    let kind = if operation.kind.is_empty() { "unknown" } else { operation.kind.as_str() };
    let attributes = [("graphql.operation.name", name.as_str()), ("graphql.operation.type", kind)];
    crate::telemetry::otel::rename(span, &format!("{kind} {name}"), &attributes);
    let outcome = if response.errors.is_empty() { "ok" } else { "error" };
    let labels = [("operation", name), ("type", kind.to_owned()), ("outcome", outcome.to_owned())];
    metrics::counter!(m::OPERATIONS, &labels).increment(1);
    metrics::histogram!(m::OPERATION_DURATION, "type" => kind.to_owned()).record(took.as_secs_f64());
}

/// Takes every answered personal value out of `response`: `null` with an `AUDIT_UNAVAILABLE` error at its path.
fn withhold(response: &mut Response, noted: &[Noted]) {
    for n in noted.iter().filter(|n| n.outcome == Outcome::Returned) {
        if set_null(&mut response.data, &n.at) {
            let mut error =
                ServerError::new("withheld: the audit trail cannot record this read now; retry later", None);
            error.path = n.at.clone();
            error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::AuditUnavailable.as_str());
            response.errors.push(error);
        }
    }
}

/// Sets the value at `path` to null; whether it was there.
fn set_null(value: &mut Value, path: &[PathSegment]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        let was = !matches!(value, Value::Null);
        *value = Value::Null;
        return was;
    };
    match (first, value) {
        (PathSegment::Field(name), Value::Object(fields)) => {
            fields.get_mut(name.as_str()).is_some_and(|child| set_null(child, rest))
        }
        (PathSegment::Index(i), Value::List(items)) => items.get_mut(*i).is_some_and(|child| set_null(child, rest)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_withheld_value_is_null_at_its_path_and_the_rest_stays() {
        let mut data = Value::from_json(serde_json::json!({
            "me": { "id": "u", "emails": [{ "address": "a@example.com" }], "verificationCases": [{ "details": { "fullName": "N" } }] }
        }))
        .expect("json");
        let at = |p: &[&str]| {
            p.iter()
                .map(|s| s.parse::<usize>().map(PathSegment::Index).unwrap_or(PathSegment::Field((*s).to_owned())))
                .collect::<Vec<_>>()
        };
        assert!(set_null(&mut data, &at(&["me", "emails"])));
        assert!(set_null(&mut data, &at(&["me", "verificationCases", "0", "details", "fullName"])));
        assert!(!set_null(&mut data, &at(&["me", "phones"])));
        assert_eq!(
            data.into_json().expect("json"),
            serde_json::json!({ "me": { "id": "u", "emails": null, "verificationCases": [{ "details": { "fullName": null } }] } })
        );
    }

    #[test]
    fn a_purpose_is_short_printable_text() {
        let context = RequestContext { request_id: "r".into(), trace_id: None };
        let mut headers = HeaderMap::new();
        headers.insert("x-access-purpose", "AML review".parse().expect("header"));
        assert_eq!(RequestMeta::new(&context, &headers).expect("meta").purpose.as_deref(), Some("AML review"));
        headers.insert("x-access-purpose", "x".repeat(300).parse().expect("header"));
        assert!(RequestMeta::new(&context, &headers).is_err());
    }
}
