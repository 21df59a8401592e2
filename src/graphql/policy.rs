//! The policy of every request, in one place:
//!
//! - **Static scope requirements**: before a field's resolver runs, its `@requiresScopes` declaration (read from the
//!   schema by [`Declared`]) is checked against the caller's scopes; a denied field is `null` with an
//!   `UNAUTHORIZED_FIELD_OR_TYPE` error, and its resolver never runs (so nothing is fetched for it).
//! - **Nullable errors**: an error on a nullable field makes that field `null` and is reported with its path.
//!   async-graphql 7 instead leaves the failed field out of its object, and turns an object whose every field failed
//!   into `null`, so a denied `User.id` would wipe the whole user. Guarded fields are nullable precisely so a denial
//!   never does that.
//! - **Codes by phase**: async-graphql gives its own errors no code, so each is coded by the phase it comes from:
//!   parsing (`GRAPHQL_PARSE_FAILED`), coercing the variables (`BAD_USER_INPUT`, see `variables.rs`), validation
//!   (`GRAPHQL_VALIDATION_FAILED`), choosing the operation (`OPERATION_RESOLUTION_FAILURE`) and coercing arguments
//!   while executing (`BAD_USER_INPUT`). Errors the gateway raises carry their code already.
//! - **Request errors and execution**: [`Executed`] tells the HTTP layer whether an operation's execution started,
//!   which decides its status code and whether its answer may carry `data` (GraphQL over HTTP).
//! - **Federation's `_service`** follows introspection: with introspection off it answers an error instead of the SDL.
//! - **Bounds**: before anything else, the document is resolved against the trusted documents (`trusted.rs`) and
//!   measured (`limits.rs`); a persisted query is registered only once it has passed those checks and validation.
//!   While executing, the answer's size is counted (leaves, JSON values whole) and, past its bound, the rest of the
//!   operation is not resolved and the answer is one `RESPONSE_TOO_LARGE` error; an answer carries at most
//!   `max_errors` errors.
//! - **Audited or subscription**: an operation runs with the audit trail's collection ([`Access`], which the HTTP
//!   handler provides), or it is a subscription (WebSocket); a query or mutation reaching the schema any other way is
//!   refused before it runs, so nothing personal is ever read unrecorded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest, NextRequest,
    NextResolve, NextValidation, ResolveInfo,
};
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition};
use async_graphql::{
    PathSegment, Positioned, QueryPathSegment, Request, Response, ServerError, ServerResult, ValidationResult, Value,
    Variables,
};

use super::access::{personal, Access, Operation, Purpose};
use super::documents::Documents;
use super::errors::{required_scopes, ErrorCode};
use super::limits::{self, Refused};
use super::trusted::{Registration, TrustedDocuments};
use crate::audit::Outcome;
use crate::auth::{Principal, Scopes};
use crate::authz::Declared;
use crate::config::QueryLimits;

/// What bounds every operation.
pub struct Bounds {
    pub limits: QueryLimits,
    pub trusted: TrustedDocuments,
    /// A client token reading personal data must state a purpose (`PURPOSE_REQUIRED`).
    pub require_purpose: bool,
}

/// Whether an operation's execution started, put in the request's data by the HTTP layer and set by the policy.
///
/// async-graphql calls `Extension::execute` only once the request was prepared, parsed and validated, its variables
/// coerced and its operation chosen (`Schema::execute`, async-graphql 7.2 `schema.rs`): an answer whose flag is unset
/// holds request errors only. GraphQL over HTTP answers those with 400 under `application/graphql-response+json`
/// (<https://graphql.github.io/graphql-over-http/draft/#sec-application-graphql-response-json>), and the GraphQL
/// spec wants no `data` entry for them (<https://spec.graphql.org/October2021/#sec-Data>).
#[derive(Debug, Clone, Default)]
pub struct Executed(Arc<AtomicBool>);

impl Executed {
    pub fn started(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Installs [`PolicyExtension`] on every request.
pub struct RequestPolicy {
    declared: Arc<Declared>,
    bounds: Arc<Bounds>,
    documents: Documents,
    /// Whether federation's `_service { sdl }` answers (it follows introspection).
    serve_sdl: bool,
}

impl RequestPolicy {
    pub fn new(declared: Arc<Declared>, bounds: Arc<Bounds>, serve_sdl: bool) -> Self {
        RequestPolicy { declared, bounds, serve_sdl, documents: Documents::default() }
    }
}

impl ExtensionFactory for RequestPolicy {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PolicyExtension {
            declared: self.declared.clone(),
            bounds: self.bounds.clone(),
            serve_sdl: self.serve_sdl,
            documents: self.documents.clone(),
            state: Mutex::default(),
        })
    }
}

/// How far a request got: what an error without a code came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Started,
    Validated,
    Executing,
}

#[derive(Default)]
struct State {
    operation_name: Option<String>,
    /// Errors of the variable coercion, answered in place of validation.
    coercion: Vec<ServerError>,
    phase: Phase,
    /// Errors of fields resolved to `null`, until the execution (of the query, or of one subscription event) ends.
    nulled: Vec<ServerError>,
    /// The estimated size of the answer so far, and whether it passed its bound.
    bytes: usize,
    too_large: bool,
    /// A persisted query to register once it has passed validation.
    registration: Option<Registration>,
    /// A parsed document to keep once it has passed validation (its text, and it).
    parsed: Option<(String, ExecutableDocument)>,
    /// The field names of the aliased fields being resolved, by response path (`harmless` -> `user`): what the audit
    /// record's paths are made of. Only fields with a selection set, while they resolve.
    aliased: HashMap<String, String>,
}

/// One request's policy.
pub struct PolicyExtension {
    declared: Arc<Declared>,
    bounds: Arc<Bounds>,
    serve_sdl: bool,
    documents: Documents,
    state: Mutex<State>,
}

impl PolicyExtension {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("policy state poisoned")
    }
}

/// A refusal before execution, with its measure: `extensions.cost` for the cost, `measured` and `limit` always.
fn refused(refused: Refused) -> ServerError {
    let mut error = ServerError::new(refused.message, None);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", refused.code.as_str());
    if refused.code == ErrorCode::CostLimitExceeded {
        extensions.set("cost", Value::from(refused.measured));
    }
    extensions.set("measured", Value::from(refused.measured));
    extensions.set("limit", Value::from(refused.limit));
    error
}

/// A rough size of a resolved value in the JSON answer: leaves only (an object's or list's members are counted
/// when they resolve), so each byte is counted once. A scalar's value (a `JSON` object or list) is counted by
/// [`value_bytes`].
fn leaf_bytes(value: &Value) -> Option<usize> {
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
fn value_bytes(value: &Value) -> usize {
    match value {
        Value::List(items) => items.iter().map(value_bytes).fold(2, usize::saturating_add),
        Value::Object(members) => {
            members.iter().map(|(name, value)| name.len() + 4 + value_bytes(value)).fold(2, usize::saturating_add)
        }
        leaf => leaf_bytes(leaf).unwrap_or(0),
    }
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

fn has_code(error: &ServerError) -> bool {
    error.extensions.as_ref().is_some_and(|e| e.get("code").is_some())
}

fn with_code(mut error: ServerError, code: ErrorCode) -> ServerError {
    if !has_code(&error) {
        error.extensions.get_or_insert_with(Default::default).set("code", Value::from(code.as_str()));
    }
    error
}

/// The response path of the field being resolved.
fn path_of(info: &ResolveInfo<'_>) -> Vec<PathSegment> {
    let mut path: Vec<PathSegment> = std::iter::once(info.path_node)
        .chain(info.path_node.parents())
        .map(|node| match node.segment {
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
            QueryPathSegment::Index(index) => PathSegment::Index(index),
        })
        .collect();
    path.reverse();
    path
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

/// The operation a request runs: the one it names, or the document's only one.
fn chosen_operation<'d>(
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
fn operation_kind(operation: Option<&Positioned<OperationDefinition>>) -> &'static str {
    match operation.map(|op| op.node.ty) {
        Some(async_graphql::parser::types::OperationType::Mutation) => "mutation",
        Some(async_graphql::parser::types::OperationType::Subscription) => "subscription",
        _ => "query",
    }
}

#[async_trait::async_trait]
impl Extension for PolicyExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.state().operation_name = request.operation_name.clone();
        let bounds = &self.bounds;
        let registration = bounds.trusted.resolve(&mut request).await.map_err(|(code, message)| {
            let mut error = ServerError::new(message, None);
            error.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
            error
        })?;
        // A document kept from before passed the pre-scan then (`documents.rs`); any other is pre-scanned before the
        // parser sees it.
        let kept = self.documents.get(&request.query).await;
        let fresh = kept.is_none();
        match kept {
            Some(document) => request.set_parsed_query(document),
            None => limits::prescan(&request.query, &bounds.limits).map_err(refused)?,
        }
        // Parsed once here (async-graphql uses this document): measured before its own checks walk it.
        let variables = request.variables.clone();
        let text = fresh.then(|| request.query.clone());
        let document = request.parsed_query().map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))?;
        limits::analyze(document, &variables, &ctx.schema_env.registry, &bounds.limits).map_err(refused)?;
        let parsed = text.map(|text| (text, document.clone()));
        // Registered and kept after validation (see `validation`): a document that fails anything before is never
        // kept.
        {
            let mut state = self.state();
            state.registration = registration;
            state.parsed = parsed;
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await.map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))?;
        let mut state = self.state();
        let chosen = chosen_operation(&doc, state.operation_name.as_deref());
        let kind = operation_kind(chosen.map(|(_, op)| op));
        let audited = ctx.data_opt::<Arc<Access>>();
        if audited.is_none() && chosen.is_some() && kind != "subscription" {
            // Only the HTTP handler audits queries and mutations; anything else (a persisted query sent over
            // WebSocket by its hash, say) would read personal data without a record.
            let mut error = ServerError::new(
                "only subscriptions go over WebSocket; send queries and mutations to POST /graphql",
                None,
            );
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
        let definitions = chosen.map(|(_, op)| op.node.variable_definitions.clone()).unwrap_or_default();
        state.coercion = super::variables::coerce(&ctx.schema_env.registry, &definitions, variables)
            .into_iter()
            .map(|e| with_code(e, ErrorCode::BadUserInput))
            .collect();
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let coercion = std::mem::take(&mut self.state().coercion);
        if !coercion.is_empty() {
            return Err(coercion);
        }
        let validated = next.run(ctx).await.map_err(|errors| {
            errors.into_iter().map(|e| with_code(e, ErrorCode::GraphqlValidationFailed)).collect::<Vec<_>>()
        })?;
        let (registration, parsed) = {
            let mut state = self.state();
            state.phase = Phase::Validated;
            (state.registration.take(), state.parsed.take())
        };
        if let Some(registration) = registration {
            self.bounds.trusted.register(registration).await;
        }
        if let Some((text, document)) = parsed {
            self.documents.keep(text, document).await;
        }
        Ok(validated)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.state().phase = Phase::Executing;
        if let Some(executed) = ctx.data_opt::<Executed>() {
            executed.0.store(true, Ordering::Release);
        }
        let mut response = next.run(ctx, operation_name).await;
        // The nulled fields' errors go back here, not in `request`: `execute` runs for every query and for every event
        // of a subscription, `request` never runs over WebSocket. Execution's own uncoded errors are argument
        // coercions.
        let (nulled, too_large) = {
            let mut state = self.state();
            let too_large = std::mem::take(&mut state.too_large);
            state.bytes = 0;
            (std::mem::take(&mut state.nulled), too_large)
        };
        if too_large {
            let limit = self.bounds.limits.max_response_bytes;
            let mut error = ServerError::new(format!("the answer grew past {limit} bytes; ask for less"), None);
            error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::ResponseTooLarge.as_str());
            response.data = Value::Null;
            response.errors = vec![error];
            return response;
        }
        let errors = nulled.into_iter().chain(std::mem::take(&mut response.errors));
        let coded = errors.map(|e| with_code(e, ErrorCode::BadUserInput)).collect();
        response.errors = bounded(coded, self.bounds.limits.max_errors);
        response
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let nullable = !info.return_type.ends_with('!');
        // A scalar's (or enum's) value is measured whole; an object's members are measured as they resolve.
        let leaf = ctx
            .schema_env
            .registry
            .types
            .get(async_graphql::registry::MetaTypeName::concrete_typename(info.return_type))
            .is_some_and(|ty| ty.is_leaf());
        let access = ctx.data_opt::<Arc<Access>>();
        // Personal fields are noted for the audit record (answered or denied), with their path of field names (what
        // the record holds) and their response path (where strict mode finds the value).
        let audited = if personal(info.parent_type, info.name) { access } else { None };
        let (path, field) = match audited {
            Some(_) => (Some(path_of(&info)), field_path(&info, &self.state().aliased)),
            None => (None, String::new()),
        };
        if info.parent_type == "Mutation" {
            if let Some(access) = ctx.data_opt::<Arc<Access>>() {
                access.note_mutation(info.name);
            }
        }
        if !self.serve_sdl && info.parent_type == "Query" && info.name == "_service" {
            // The SDL is the whole schema: where introspection is off (production by default), `_service` must not
            // hand it out either. A router composes from `schema.graphql` instead.
            let mut error = ServerError::new(
                "`_service` is off where introspection is off; compose from schema.graphql",
                Some(info.field.name.pos),
            );
            error.path = path_of(&info);
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", ErrorCode::GraphqlValidationFailed.as_str());
            return Err(error);
        }
        if let Some(requirement) = self.declared.get(info.parent_type, info.name) {
            let no_scopes = Scopes::default();
            let scopes = ctx.data_opt::<Principal>().map_or(&no_scopes, Principal::scopes);
            if let Err(denial) = requirement.check(scopes) {
                let mut error = ServerError::new("Unauthorized field or type", Some(info.field.name.pos));
                error.path = path_of(&info);
                let extensions = error.extensions.get_or_insert_with(Default::default);
                extensions.set("code", ErrorCode::UnauthorizedFieldOrType.as_str());
                extensions.set("requiredScopes", required_scopes(&denial));
                if let (Some(access), Some(path)) = (audited, &path) {
                    access.note_field(path.clone(), field.clone(), Outcome::Denied);
                }
                if !nullable {
                    return Err(error);
                }
                self.state().nulled.push(error);
                return Ok(Some(Value::Null));
            }
        }
        if let (Some(access), Some(path)) = (audited, &path) {
            // A client reading personal data must say why, when the gateway is configured so.
            let client = matches!(ctx.data_opt::<Principal>(), Some(Principal::Client { .. }));
            let stated = ctx.data_opt::<Purpose>().is_some_and(|p| p.0.is_some());
            if self.bounds.require_purpose && client && !stated {
                let mut error = ServerError::new(
                    "a client token reading personal data must state its purpose (X-Access-Purpose)",
                    Some(info.field.name.pos),
                );
                error.path = path.clone();
                error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::PurposeRequired.as_str());
                access.note_field(path.clone(), field.clone(), Outcome::Denied);
                self.state().nulled.push(error);
                return Ok(Some(Value::Null));
            }
        }
        if self.state().too_large {
            // The answer is lost already: resolve nothing more (no provider calls).
            return Ok(Some(Value::Null));
        }
        let name_bytes = info.name.len() + 4;
        // An aliased field with a selection set: its name, for the paths of the personal fields under it.
        let alias_key = match (access, info.alias) {
            (Some(_), Some(_)) if !leaf => {
                let key = info.path_node.to_string();
                self.state().aliased.insert(key.clone(), info.name.to_owned());
                Some(key)
            }
            _ => None,
        };
        let resolved = next.run(ctx, info).await;
        if let Some(key) = alias_key {
            self.state().aliased.remove(&key);
        }
        if let (Some(access), Some(path)) = (audited, path) {
            match &resolved {
                Ok(Some(value)) if !matches!(value, Value::Null) => access.note_field(path, field, Outcome::Returned),
                Err(error)
                    if error.extensions.as_ref().and_then(|e| e.get("code"))
                        == Some(&Value::from(ErrorCode::UnauthorizedFieldOrType.as_str())) =>
                {
                    access.note_field(path, field, Outcome::Denied)
                }
                _ => {}
            }
        }
        match resolved {
            Err(error) if nullable => {
                self.state().nulled.push(error);
                Ok(Some(Value::Null))
            }
            Ok(Some(value)) => {
                let bytes = if leaf { Some(value_bytes(&value)) } else { leaf_bytes(&value) };
                if let Some(bytes) = bytes {
                    let mut state = self.state();
                    state.bytes += bytes + name_bytes;
                    if state.bytes > self.bounds.limits.max_response_bytes {
                        state.too_large = true;
                    }
                }
                Ok(Some(value))
            }
            other => other,
        }
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let phase = self.state().phase;
        // An error async-graphql raised with no code, by where the request got to: after validation and before
        // execution only the choice of the operation can fail; execution coded its own (see `execute`).
        let uncoded = match phase {
            Phase::Validated => ErrorCode::OperationResolutionFailure,
            Phase::Executing => ErrorCode::BadUserInput,
            Phase::Started => ErrorCode::InternalServerError,
        };
        let coded = std::mem::take(&mut response.errors).into_iter().map(|e| with_code(e, uncoded)).collect();
        response.errors = bounded(coded, self.bounds.limits.max_errors);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DocumentSettings;
    use async_graphql::{EmptyMutation, Object, Schema, Subscription};
    use futures_util::{Stream, StreamExt};

    struct Query;

    #[Object]
    impl Query {
        async fn answer(&self) -> i32 {
            42
        }

        async fn settings(&self) -> async_graphql::Json<serde_json::Value> {
            async_graphql::Json(serde_json::json!({ "nested": { "text": "x".repeat(300) } }))
        }
    }

    struct Subscription;

    #[Subscription]
    impl Subscription {
        async fn ticks(&self) -> impl Stream<Item = i32> {
            futures_util::stream::iter([1])
        }
    }

    fn schema(limits: QueryLimits) -> Schema<Query, EmptyMutation, Subscription> {
        let trusted = TrustedDocuments::load(&DocumentSettings::default()).expect("documents");
        let bounds = Arc::new(Bounds { limits, trusted, require_purpose: false });
        let sdl = Schema::build(Query, EmptyMutation, Subscription).finish().sdl();
        Schema::build(Query, EmptyMutation, Subscription)
            .extension(RequestPolicy::new(Arc::new(Declared::from_sdl(&sdl)), bounds, true))
            .finish()
    }

    fn code(response: &Response) -> Option<String> {
        let extensions = response.errors.first()?.extensions.as_ref()?;
        match extensions.get("code")? {
            Value::String(code) => Some(code.clone()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_query_without_the_audit_trail_s_collection_is_refused_before_it_runs_and_a_subscription_is_not() {
        let schema = schema(QueryLimits::default());
        let audited = schema.execute(Request::new("{ answer }").data(Arc::new(Access::default()))).await;
        assert!(audited.errors.is_empty(), "{:?}", audited.errors);
        // A persisted query registered over HTTP, then asked for by its hash alone without a collection (as over
        // WebSocket).
        let hash = crate::digest::sha256_hex("{ answer }");
        let persisted = serde_json::json!({ "version": 1, "sha256Hash": hash });
        let mut by_hash = Request::new("");
        by_hash.extensions.insert("persistedQuery".into(), Value::from_json(persisted).expect("a value"));
        let mut registering = Request::new("{ answer }").data(Arc::new(Access::default()));
        registering.extensions = by_hash.extensions.clone();
        assert!(schema.execute(registering).await.errors.is_empty());
        for request in [Request::new("{ answer }"), by_hash] {
            let unaudited = schema.execute(request).await;
            assert_eq!(code(&unaudited).as_deref(), Some("BAD_REQUEST"), "{:?}", unaudited.errors);
            assert_eq!(unaudited.data, Value::Null);
        }
        let mut stream = schema.execute_stream(Request::new("subscription { ticks }"));
        let tick = stream.next().await.expect("an event");
        assert!(tick.errors.is_empty(), "{:?}", tick.errors);
    }

    #[tokio::test]
    async fn a_json_value_counts_toward_the_answer_s_size_whole() {
        let limits = QueryLimits { max_response_bytes: 200, ..QueryLimits::default() };
        let answer = schema(limits).execute(Request::new("{ settings }").data(Arc::new(Access::default()))).await;
        assert_eq!(code(&answer).as_deref(), Some("RESPONSE_TOO_LARGE"), "{:?}", answer.errors);
        let nested = Value::from_json(serde_json::json!({ "a": [{ "b": "xyz" }, 1] })).expect("a value");
        // {} + "a" + [] + {} + "b" + "xyz" + 1
        assert_eq!(value_bytes(&nested), 2 + (1 + 4) + 2 + (2 + (1 + 4) + 5) + 12);
        assert_eq!(leaf_bytes(&nested), None, "an object's members are counted as they resolve");
    }
}
