//! The GraphQL endpoint: GraphQL over HTTP as its specification words it (media types, status codes, GET for queries
//! only; docs/api.md, "GraphQL over HTTP"), after authentication, so a request without a valid token learns nothing
//! (401). Every operation runs through `audited::execute`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, ServerError, Value};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::audited::{self, Answered, RequestMeta};
use super::connections::{caller_key, CallerSlot};
use super::observe::RequestContext;
use super::{error_body, AppState};
use crate::auth::token::{AuthError, Verified};
use crate::graphql::errors::ErrorCode;
use crate::graphql::Loaders;

/// The most operations one batched POST may carry: each may fan out to every provider.
const MAX_BATCH: usize = 20;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type of an answer, which decides its status codes (GraphQL over HTTP, "Status Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    /// `application/graphql-response+json`: a request error is a 4xx, so a client can tell it from a proxy's 200.
    GraphqlResponse,
    /// `application/json`, for clients older than the specification: every well-formed request answers 200.
    Json,
}

impl MediaType {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        })
    }
}

/// How well a client's `Accept` takes one media type: its quality, and whether the range that gave it names the
/// type exactly (not `application/*` or `*/*`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Acceptance {
    q: f32,
    exact: bool,
}

/// The acceptance of `media` under the `Accept` ranges: the most specific matching range decides (RFC 9110
/// §12.5.1), `None` when no range matches or it says `q=0`. A range asking for another charset than UTF-8 (the only
/// one served) does not match.
fn acceptance(ranges: &[(String, f32, bool)], media: &str) -> Option<Acceptance> {
    let (kind, _) = media.split_once('/').expect("a media type");
    let specificity = |range: &str| match range {
        r if r == media => Some(2),
        r if r.strip_suffix("/*") == Some(kind) => Some(1),
        "*/*" => Some(0),
        _ => None,
    };
    let best = ranges
        .iter()
        .filter(|(_, _, utf8)| *utf8)
        .filter_map(|(range, q, _)| specificity(range).map(|s| (s, *q)))
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))?;
    (best.1 > 0.0).then_some(Acceptance { q: best.1, exact: best.0 == 2 })
}

/// The answer's media type, from the request's `Accept`; `None` when it accepts neither (406). No `Accept` at all is
/// `application/graphql-response+json` (the specification's "Legacy watershed"); the higher quality wins.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return Some(MediaType::GraphqlResponse);
    }
    let mut ranges = Vec::new();
    for value in values {
        let Ok(value) = value.to_str() else { return None };
        for range in value.split(',').filter(|r| !r.trim().is_empty()) {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let (mut q, mut utf8) = (Some(1.0_f32), true);
            for parameter in parts {
                let Some((name, value)) = parameter.split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)),
                    "charset" => utf8 = value.eq_ignore_ascii_case("utf-8"),
                    _ => {}
                }
            }
            // A quality that does not parse makes the range unreadable: it accepts nothing.
            ranges.push((media, q.unwrap_or(0.0), utf8));
        }
    }
    if ranges.is_empty() {
        // `Accept:` with no value: as if none was sent.
        return Some(MediaType::GraphqlResponse);
    }
    match (acceptance(&ranges, GRAPHQL_RESPONSE_JSON), acceptance(&ranges, JSON)) {
        (None, None) => None,
        (Some(_), None) => Some(MediaType::GraphqlResponse),
        (None, Some(_)) => Some(MediaType::Json),
        (Some(graphql), Some(json)) if graphql.q > json.q || (graphql.q == json.q && graphql.exact) => {
            Some(MediaType::GraphqlResponse)
        }
        // A tie, and the client named no GraphQL media type (`*/*`, `application/*`): answered as the legacy clients
        // that send those are, which is what the `graphql-http` audit (47DE) expects of `*/*`.
        (Some(_), Some(_)) => Some(MediaType::Json),
    }
}

/// Whether a POST body is declared as JSON in UTF-8: `application/json`, with no charset or `utf-8`.
fn json_body(headers: &HeaderMap) -> bool {
    let Some(Ok(value)) = headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) else { return false };
    let mut parts = value.split(';');
    parts.next().is_some_and(|media| media.trim().eq_ignore_ascii_case(JSON))
        && parts.all(|parameter| match parameter.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            }
            _ => true,
        })
}

fn unauthenticated(error: AuthError) -> Response {
    let challenge = match error {
        AuthError::Missing | AuthError::NotBearer => "Bearer",
        AuthError::Expired | AuthError::Invalid | AuthError::NotUsersIssuer => "Bearer error=\"invalid_token\"",
    };
    let mut response =
        (StatusCode::UNAUTHORIZED, error_body(&error.to_string(), ErrorCode::Unauthenticated)).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// A refusal of the HTTP request itself (`BAD_REQUEST`), in the negotiated media type.
fn bad_request(status: StatusCode, media: MediaType, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": ErrorCode::BadRequest.as_str() } }] });
    (status, [(header::CONTENT_TYPE, media.content_type())], body.to_string()).into_response()
}

/// 406: the client accepts neither media type (answered in `application/json`, the one every client reads).
fn not_acceptable() -> Response {
    let message = "Accept must allow application/graphql-response+json or application/json";
    bad_request(StatusCode::NOT_ACCEPTABLE, MediaType::Json, message)
}

/// 415, with the one request media type there is (`Accept-Post`, RFC 9110's companion registered by W3C LDP).
fn unsupported_media_type(media: MediaType) -> Response {
    let message = "a GraphQL POST body must be application/json (UTF-8); send Content-Type: application/json";
    let mut response = bad_request(StatusCode::UNSUPPORTED_MEDIA_TYPE, media, message);
    response.headers_mut().insert(HeaderName::from_static("accept-post"), HeaderValue::from_static(JSON));
    response
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
    let meta = RequestMeta::new(context, headers)
        .map_err(|message| (StatusCode::BAD_REQUEST, error_body(&message, ErrorCode::BadRequest)).into_response())?;
    let slot =
        state.in_flight.admit(&caller_key(&verified.principal)).ok_or_else(|| rate_limited(state.in_flight.max()))?;
    Ok((verified, slot, meta))
}

/// One operation's answer on the wire: as executed, or (a request error) its errors without `data`.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Wire<'a> {
    Executed(&'a async_graphql::Response),
    /// From the response cache: its data as kept.
    Kept {
        data: &'a serde_json::value::RawValue,
    },
    Refused {
        errors: &'a [ServerError],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        extensions: &'a BTreeMap<String, Value>,
    },
}

impl<'a> From<&'a Answered> for Wire<'a> {
    fn from(answered: &'a Answered) -> Self {
        if let Some(kept) = &answered.kept {
            return Wire::Kept { data: &kept.data };
        }
        match answered.executed {
            true => Wire::Executed(&answered.response),
            false => Wire::Refused { errors: &answered.response.errors, extensions: &answered.response.extensions },
        }
    }
}

/// One operation's answer, in the negotiated media type: refused before execution, it is 400 under
/// `application/graphql-response+json`.
fn answered(answer: Answered, media: MediaType) -> Response {
    let refused = !answer.executed && media == MediaType::GraphqlResponse;
    let status = if refused { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    respond(status, serde_json::to_vec(&Wire::from(&answer)), media)
}

/// A batch's answers, in order. Batches are outside the specification: the batch is 200, each of its answers shaped
/// as it would be alone.
fn answered_batch(answers: Vec<Answered>, media: MediaType) -> Response {
    let wire: Vec<Wire<'_>> = answers.iter().map(Wire::from).collect();
    respond(StatusCode::OK, serde_json::to_vec(&wire), media)
}

/// The answer in its media type (its `X-Request-Id`, the id its audit record carries, is set by `observe.rs`).
fn respond(status: StatusCode, body: serde_json::Result<Vec<u8>>, media: MediaType) -> Response {
    let body = body.expect("a GraphQL answer serializes to JSON");
    (status, [(header::CONTENT_TYPE, media.content_type())], body).into_response()
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
    // GraphQL over HTTP: an empty `operationName` is the same as none.
    request.operation_name = parameters.operation_name.filter(|name| !name.is_empty());
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
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let (caller, slot, meta) = match admit(&state, &context, headers).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let Some(media) = negotiate(headers) else { return not_acceptable() };
    if !json_body(headers) {
        return unsupported_media_type(media);
    }
    // The body is read only now, within the route's size limit: a caller without a valid token costs no reading
    // (and cannot hold a connection open by sending it slowly).
    let request = axum::extract::Request::from_parts(parts, body);
    let body = match <Bytes as axum::extract::FromRequest<AppState>>::from_request(request, &state).await {
        Ok(body) => body,
        Err(rejection) => return bad_request(rejection.status(), media, &rejection.body_text()),
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => {
            let message = format!("the body is not a GraphQL request in JSON: {e}");
            return bad_request(StatusCode::BAD_REQUEST, media, &message);
        }
    };
    if let BatchRequest::Batch(requests) = &batch {
        if requests.len() > MAX_BATCH {
            let message = format!("a batch holds at most {MAX_BATCH} operations, got {}", requests.len());
            return bad_request(StatusCode::BAD_REQUEST, media, &message);
        }
    }
    // A persisted query may come without its text (APQ); anything else needs one. (`query` defaults to "" in
    // async-graphql's `Request`, so a missing or misspelt one arrives empty.)
    let missing =
        |r: &async_graphql::Request| r.query.trim().is_empty() && !r.extensions.contains_key("persistedQuery");
    let empty = match &batch {
        BatchRequest::Single(r) => missing(r),
        BatchRequest::Batch(rs) => rs.is_empty() || rs.iter().any(missing),
    };
    if empty {
        let message = "the body is not a GraphQL request in JSON: `query` is missing";
        return bad_request(StatusCode::BAD_REQUEST, media, message);
    }
    let loaders = Arc::new(Loaders::new(&state.services));
    // The slot goes with the operations (each of a batch holds it): one that runs on after its client left still
    // counts against the caller's bound.
    let slot = Arc::new(slot);
    let run = |request| audited::execute(&state, &caller, &meta, slot.clone(), loaders.clone(), request);
    match batch {
        BatchRequest::Single(request) => answered(run(request).await, media),
        BatchRequest::Batch(requests) => {
            answered_batch(futures_util::future::join_all(requests.into_iter().map(run)).await, media)
        }
    }
}

/// `GET /graphql?query=...`: queries only, since a GET must not change anything.
pub async fn get(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, slot, meta) = match admit(&state, &context, &headers).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let Some(media) = negotiate(&headers) else { return not_acceptable() };
    let mut request = match get_request(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(e) => return bad_request(StatusCode::BAD_REQUEST, media, &format!("not a GraphQL GET request: {e}")),
    };
    if request.query.trim().is_empty() && !request.extensions.contains_key("persistedQuery") {
        return bad_request(StatusCode::BAD_REQUEST, media, "not a GraphQL GET request: `query` is missing");
    }
    // A persisted query's text is needed to see whether it is a query. Refused, it is a request error like any other.
    if let Err((code, message)) = state.bounds.trusted.resolve(&mut request).await {
        let mut error = ServerError::new(message, None);
        error.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
        let refused = Answered::new(async_graphql::Response::from_errors(vec![error]), false);
        return answered(refused, media);
    }
    // The method decides before anything runs: a GET that would change something is refused (405). The document is
    // pre-scanned first so that a hostile one never reaches the parser here; the policy refuses it with its code.
    let scanned = crate::graphql::prescan(&request.query, &state.bounds.limits).is_ok();
    if let Some(doc) = scanned.then(|| async_graphql::parser::parse_query(&request.query).ok()).flatten() {
        // The operation that would run, chosen as the pipeline chooses it: a lone named mutation is that mutation.
        let ty = crate::graphql::chosen_type(&doc, request.operation_name.as_deref());
        if matches!(ty, Some(OperationType::Mutation | OperationType::Subscription)) {
            let message = "only queries may be sent with GET; use POST";
            let mut response = bad_request(StatusCode::METHOD_NOT_ALLOWED, media, message);
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
    }
    // The pipeline refuses anything but a query too, however the operation was chosen.
    let request = request.data(crate::graphql::ReadOnly);
    let loaders = Arc::new(Loaders::new(&state.services));
    answered(audited::execute(&state, &caller, &meta, Arc::new(slot), loaders, request).await, media)
}

/// Any other method on `/graphql`: 405 naming the two there are, with a body that says so (axum's own 405 has
/// none, and no content type).
pub async fn other_method() -> Response {
    let mut response = bad_request(
        StatusCode::METHOD_NOT_ALLOWED,
        MediaType::Json,
        "GraphQL is served over POST (and GET for queries)",
    );
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(values: &[&str]) -> Option<MediaType> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).expect("header"));
        }
        negotiate(&headers)
    }

    #[test]
    fn accept_chooses_the_media_type_by_quality_then_by_what_the_client_names() {
        use MediaType::{GraphqlResponse as Gr, Json};
        assert_eq!(accepting(&[]), Some(Gr), "no Accept: the specification's default since 2025");
        assert_eq!(accepting(&[""]), Some(Gr));
        assert_eq!(accepting(&["application/graphql-response+json"]), Some(Gr));
        assert_eq!(accepting(&["application/json"]), Some(Json));
        assert_eq!(accepting(&["*/*"]), Some(Json), "a wildcard is a legacy client (graphql-http audit 47DE)");
        assert_eq!(accepting(&["application/*"]), Some(Json));
        assert_eq!(accepting(&["application/graphql-response+json, application/json"]), Some(Gr));
        assert_eq!(accepting(&["application/json, application/graphql-response+json"]), Some(Gr));
        assert_eq!(accepting(&["application/json", "application/graphql-response+json"]), Some(Gr));
        assert_eq!(accepting(&["application/graphql-response+json;q=0.5, application/json"]), Some(Json));
        assert_eq!(accepting(&["application/graphql-response+json;q=0.5, */*"]), Some(Json));
        assert_eq!(accepting(&["application/graphql-response+json, */*"]), Some(Gr));
        assert_eq!(accepting(&["application/json;q=0, */*"]), Some(Gr), "the exact range decides for json");
        assert_eq!(accepting(&["APPLICATION/JSON; charset=UTF-8"]), Some(Json));
        assert_eq!(accepting(&["application/json; charset=iso-8859-1"]), None);
        assert_eq!(accepting(&["text/html"]), None);
        assert_eq!(accepting(&["application/json;q=0"]), None);
        assert_eq!(accepting(&["application/json;q=lots"]), None);
    }

    #[test]
    fn a_post_body_is_json_in_utf_8() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).expect("header"));
            json_body(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=\"UTF-8\""));
        assert!(!with("application/json; charset=latin1"));
        assert!(!with("text/plain;charset=UTF-8"));
        assert!(!with("application/graphql"));
        assert!(!json_body(&HeaderMap::new()));
    }
}
