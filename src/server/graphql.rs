//! The GraphQL endpoint: authenticate, parse, execute.
//!
//! Authentication happens before anything else, so a request without a valid token learns nothing (HTTP 401 with
//! `WWW-Authenticate: Bearer`; HTTP 400 for several `Authorization` headers). A body that is not a GraphQL request is HTTP 400 with a message; everything after
//! that is a GraphQL response with HTTP 200 and coded errors.

use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, BatchResponse};
use async_graphql_axum::GraphQLResponse;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::audited::{self, RequestMeta};
use super::connections::{caller_key, CallerSlot};
use super::observe::RequestContext;
use super::{error_body, AppState};
use crate::auth::token::{AuthError, Verified};
use crate::graphql::errors::ErrorCode;
use crate::graphql::Loaders;

/// The most operations one batched POST may carry: each may fan out to every provider.
const MAX_BATCH: usize = 20;

fn unauthenticated(error: AuthError) -> Response {
    let challenge = match error {
        AuthError::Missing | AuthError::NotBearer => "Bearer",
        AuthError::Expired | AuthError::Invalid => "Bearer error=\"invalid_token\"",
    };
    let mut response =
        (StatusCode::UNAUTHORIZED, error_body(&error.to_string(), ErrorCode::Unauthenticated)).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

fn bad_request(status: StatusCode, message: &str) -> Response {
    (status, error_body(message, ErrorCode::BadRequest)).into_response()
}

/// 429 for a caller with as many requests in flight as it may have.
fn rate_limited(max: usize) -> Response {
    let message = format!("at most {max} requests of one caller may be in flight; retry shortly");
    let mut response = (StatusCode::TOO_MANY_REQUESTS, error_body(&message, ErrorCode::RateLimited)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The caller, and its slot among its requests in flight (held until the answer is made). The error is the finished
/// answer, returned at once.
#[allow(clippy::result_large_err)]
async fn admit(
    state: &AppState,
    context: &RequestContext,
    headers: &HeaderMap,
) -> Result<(Verified, CallerSlot, RequestMeta), Response> {
    let verified = authenticate(state, headers).await?;
    let meta = RequestMeta::new(context, headers).map_err(|message| bad_request(StatusCode::BAD_REQUEST, &message))?;
    let slot =
        state.in_flight.admit(&caller_key(&verified.principal)).ok_or_else(|| rate_limited(state.in_flight.max()))?;
    Ok((verified, slot, meta))
}

/// The answer (its `X-Request-Id`, the id its audit record carries, is set by `observe.rs`).
fn answered(batch: BatchResponse) -> Response {
    GraphQLResponse(batch).into_response()
}

/// `GET /graphql`'s parameters (GraphQL over HTTP: `query`, `operationName`, and JSON-encoded `variables` and
/// `extensions`).
#[derive(serde::Deserialize)]
struct GetParameters {
    #[serde(default)]
    query: String,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

fn get_request(query_string: &str) -> Result<async_graphql::Request, String> {
    let parameters: GetParameters =
        serde_urlencoded::from_str(query_string).map_err(|e| format!("the query string cannot be read: {e}"))?;
    let mut request = async_graphql::Request::new(parameters.query);
    request.operation_name = parameters.operation_name;
    if let Some(variables) = parameters.variables {
        request.variables =
            serde_json::from_str(&variables).map_err(|_| "`variables` is not a JSON object".to_owned())?;
    }
    if let Some(extensions) = parameters.extensions {
        request.extensions =
            serde_json::from_str(&extensions).map_err(|_| "`extensions` is not a JSON object".to_owned())?;
    }
    Ok(request)
}

/// The caller, or the answer that refuses the request: 400 for several `Authorization` headers, 401 for a missing
/// or refused token.
#[allow(clippy::result_large_err)]
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Verified, Response> {
    let header = super::authorization(headers).map_err(IntoResponse::into_response)?;
    state.verifier.verify_header_fully(header).await.map_err(unauthenticated)
}

pub async fn post(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (caller, _slot, meta) = match admit(&state, &context, &headers).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            let message = format!("the body is not a GraphQL request in JSON: {e}");
            return bad_request(StatusCode::BAD_REQUEST, &message);
        }
    };
    if let BatchRequest::Batch(requests) = &batch {
        if requests.len() > MAX_BATCH {
            let message = format!("a batch holds at most {MAX_BATCH} operations, got {}", requests.len());
            return bad_request(StatusCode::BAD_REQUEST, &message);
        }
    }
    // A persisted query may come without its text (APQ); anything else needs one.
    let missing =
        |r: &async_graphql::Request| r.query.trim().is_empty() && !r.extensions.contains_key("persistedQuery");
    let empty = match &batch {
        BatchRequest::Single(r) => missing(r),
        BatchRequest::Batch(rs) => rs.is_empty() || rs.iter().any(missing),
    };
    if empty {
        return bad_request(StatusCode::BAD_REQUEST, "the body is not a GraphQL request in JSON: `query` is missing");
    }
    let loaders = Arc::new(Loaders::new(&state.services));
    let run = |request| audited::execute(&state, &caller, &meta, loaders.clone(), request);
    let answer = match batch {
        BatchRequest::Single(request) => BatchResponse::Single(run(request).await),
        BatchRequest::Batch(requests) => {
            BatchResponse::Batch(futures_util::future::join_all(requests.into_iter().map(run)).await)
        }
    };
    answered(answer)
}

/// `GET /graphql?query=...`: queries only, since a GET must not change anything.
pub async fn get(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, _slot, meta) = match admit(&state, &context, &headers).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let mut request = match get_request(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(e) => return bad_request(StatusCode::BAD_REQUEST, &format!("not a GraphQL GET request: {e}")),
    };
    // A persisted query's text is needed to see whether it is a query.
    if let Err((code, message)) = state.bounds.trusted.resolve(&mut request).await {
        return (StatusCode::OK, error_body(&message, code)).into_response();
    }
    // The method decides before anything runs: a GET that would change something is refused (405). The document is
    // pre-scanned first so that a hostile one never reaches the parser here; the policy refuses it with its code.
    let scanned = crate::graphql::prescan(&request.query, &state.bounds.limits).is_ok();
    if let Some(doc) = scanned.then(|| async_graphql::parser::parse_query(&request.query).ok()).flatten() {
        let ty = match (&doc.operations, request.operation_name.as_deref()) {
            (DocumentOperations::Single(op), _) => Some(op.node.ty),
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
            (DocumentOperations::Multiple(_), None) => None,
        };
        if matches!(ty, Some(OperationType::Mutation | OperationType::Subscription)) {
            let mut response =
                bad_request(StatusCode::METHOD_NOT_ALLOWED, "only queries may be sent with GET; use POST");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
    }
    let loaders = Arc::new(Loaders::new(&state.services));
    answered(BatchResponse::Single(audited::execute(&state, &caller, &meta, loaders, request).await))
}
