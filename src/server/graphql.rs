//! The GraphQL endpoint: authenticate, parse, execute.
//!
//! Authentication happens before anything else, so a request without a valid token learns nothing (HTTP 401 with
//! `WWW-Authenticate: Bearer`; HTTP 400 for several `Authorization` headers). A body that is not a GraphQL request is HTTP 400 with a message; everything after
//! that is a GraphQL response with HTTP 200 and coded errors.

use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::BatchRequest;
use async_graphql_axum::GraphQLResponse;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{error_body, AppState};
use crate::auth::token::AuthError;
use crate::auth::Principal;
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

/// The caller, or the answer that refuses the request: 400 for several `Authorization` headers, 401 for a missing
/// or refused token.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let header = super::authorization(headers).map_err(IntoResponse::into_response)?;
    state.verifier.verify_header(header).await.map_err(unauthenticated)
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let principal = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(refused) => return refused,
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
    let empty = match &batch {
        BatchRequest::Single(r) => r.query.trim().is_empty(),
        BatchRequest::Batch(rs) => rs.is_empty() || rs.iter().any(|r| r.query.trim().is_empty()),
    };
    if empty {
        return bad_request(StatusCode::BAD_REQUEST, "the body is not a GraphQL request in JSON: `query` is missing");
    }
    let loaders = Arc::new(Loaders::new(&state.services));
    GraphQLResponse(state.schema.execute_batch(batch.data(principal).data(loaders)).await).into_response()
}

/// `GET /graphql?query=...`: queries only, since a GET must not change anything.
pub async fn get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let principal = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let request = match async_graphql::http::parse_query_string(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(e) => return bad_request(StatusCode::BAD_REQUEST, &format!("not a GraphQL GET request: {e}")),
    };
    if let Ok(doc) = async_graphql::parser::parse_query(&request.query) {
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
    GraphQLResponse(state.schema.execute(request.data(principal).data(loaders)).await.into()).into_response()
}
