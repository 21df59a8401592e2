//! The request pipeline: every GraphQL request passes these stages, in order, one file each (ARCHITECTURE.md,
//! `src/graphql/`, lists them). [`PolicyExtension`] runs them at async-graphql's six extension points, top to bottom.

mod audit;
mod authorization;
mod documents;
pub mod limits;
mod operation;
mod response;
mod trusted;
mod validation;
mod variables;

pub use operation::{bounded_name, chosen_type, ReadOnly, MAX_OPERATION_NAME};
pub use trusted::{sha256_hex, TrustedDocuments};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest, NextRequest,
    NextResolve, NextValidation, ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    PathSegment, QueryPathSegment, Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};

use crate::authz::Declared;
use crate::config::QueryLimits;
use crate::graphql::errors::ErrorCode;
use documents::Documents;
use response::with_code;
use trusted::Registration;

/// What bounds every operation.
pub struct Bounds {
    pub limits: QueryLimits,
    pub trusted: TrustedDocuments,
    /// A client token reading personal data must state a purpose (`PURPOSE_REQUIRED`).
    pub require_purpose: bool,
}

/// Whether an operation's execution started, put in the request's data by the HTTP layer and set by the pipeline's
/// `execute` hook (async-graphql calls it only once the request was parsed, validated and coerced): an unset flag means
/// request errors only, answered 400 with no `data` (<https://graphql.github.io/graphql-over-http/draft/>).
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

/// What the stages of one request hand each other.
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

/// One request's pipeline.
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

#[async_trait::async_trait]
impl Extension for PolicyExtension {
    /// Stages 1 and 2.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        operation::check_requested(request.operation_name.as_deref())?;
        self.state().operation_name = request.operation_name.clone();
        let resolved = documents::resolve(&mut request, &self.bounds, &self.documents).await?;
        let variables = request.variables.clone();
        let document = request.parsed_query().map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))?;
        limits::analyze(document, &variables, &ctx.schema_env.registry, &self.bounds.limits)
            .map_err(limits::refused)?;
        // Registered and kept after validation (stage 5): a document that fails anything before is never kept.
        {
            let mut state = self.state();
            state.registration = resolved.registration;
            state.parsed = resolved.parsed;
        }
        next.run(ctx, request).await
    }

    /// Stages 3 and 4.
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await.map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))?;
        let name = self.state().operation_name.clone();
        let definitions = operation::choose(ctx, &doc, name.as_deref(), query)?;
        self.state().coercion = variables::coerce(&ctx.schema_env.registry, &definitions, variables)
            .into_iter()
            .map(|e| with_code(e, ErrorCode::BadUserInput))
            .collect();
        Ok(doc)
    }

    /// Stage 5 (the variables' errors of stage 4 first).
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let coercion = std::mem::take(&mut self.state().coercion);
        if !coercion.is_empty() {
            return Err(coercion);
        }
        let validated = next.run(ctx).await.map_err(validation::coded)?;
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

    /// Stage 8 for an executed operation.
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
        // The nulled fields' errors go back here, not in `request`: `execute` runs for every query and for every
        // event of a subscription, `request` never runs over WebSocket.
        response::executed(self, next.run(ctx, operation_name).await)
    }

    /// Stages 6, 7 and 8 for each field.
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let shape = response::Shape::of(ctx, &info);
        let noted = audit::noted(self, ctx, &info);
        authorization::service(self.serve_sdl, &info)?;
        if let Some(denial) = authorization::declared(&self.declared, ctx, &info) {
            if let Some(noted) = &noted {
                noted.denied();
            }
            return response::refused(self, &shape, denial);
        }
        if let Some(error) = noted.as_ref().and_then(|noted| audit::purpose(self, ctx, &info, noted)) {
            return response::nulled(self, error);
        }
        if response::too_large(self) {
            return Ok(Some(Value::Null));
        }
        let alias = audit::enter_alias(self, ctx, &info, shape.leaf);
        let resolved = next.run(ctx, info).await;
        audit::leave_alias(self, alias);
        if let Some(noted) = noted {
            noted.resolved(&resolved);
        }
        response::resolved(self, &shape, resolved)
    }

    /// Stage 8 for the request.
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        response::requested(self, next.run(ctx).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DocumentSettings;
    use crate::graphql::access::Access;
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
        assert_eq!(response::value_bytes(&nested), 2 + (1 + 4) + 2 + (2 + (1 + 4) + 5) + 12);
        assert_eq!(response::leaf_bytes(&nested), None, "an object's members are counted as they resolve");
    }
}
