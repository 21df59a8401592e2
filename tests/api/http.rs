//! GraphQL over HTTP as its specification words it (<https://graphql.github.io/graphql-over-http/draft/>): the
//! media type of the answer, the status codes of each, 406, 415 and 405. `tests/conformance/` runs the `graphql-http`
//! audit (61 checks) against the binary; these tests pin each rule here, over real HTTP.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn, user_token, TestApp, SEED};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

/// An answer: status, content type, JSON body.
struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_else(|| panic!("a {status} answer without a content type"));
        let body = response.json().await.expect("a JSON body");
        Answer { status, content_type, body }
    }

    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"].as_str().unwrap_or("<none>")
    }

    /// Asserts a request error: no `data` entry at all, and this code.
    fn assert_refused(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{:#}", self.body);
        assert!(self.body.get("data").is_none(), "a request error carries no data: {:#}", self.body);
        assert_eq!(self.code(), code, "{:#}", self.body);
    }
}

fn token() -> String {
    user_token(SEED, "uid:read")
}

/// POSTs `body` as JSON with this `Accept`.
async fn post(app: &TestApp, accept: &str, body: Value) -> Answer {
    let request = app.http.post(app.url("/graphql")).bearer_auth(token()).header("accept", accept).json(&body);
    Answer::of(request.send().await.expect("answer")).await
}

/// POSTs `body` with this `Content-Type` (none when `None`).
async fn post_as(app: &TestApp, content_type: Option<&str>, body: &str) -> Answer {
    let mut request = app.http.post(app.url("/graphql")).bearer_auth(token()).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Answer::of(request.send().await.expect("answer")).await
}

async fn get(app: &TestApp, accept: &str, query: &str) -> Answer {
    let request =
        app.http.get(app.url("/graphql")).query(&[("query", query)]).bearer_auth(token()).header("accept", accept);
    Answer::of(request.send().await.expect("answer")).await
}

const ME: &str = "{ me { id } }";

#[tokio::test]
async fn the_answer_is_graphql_response_json_when_the_client_names_it_and_json_for_json_or_a_wildcard() {
    let app = spawn().await;
    for (accept, expected) in [
        ("application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json; charset=utf-8, application/json; charset=utf-8", GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/json", JSON),
        ("application/graphql-response+json;q=0.5, application/json", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
    ] {
        let answer = post(&app, accept, json!({ "query": ME })).await;
        assert_eq!(answer.status, StatusCode::OK, "{accept}");
        assert_eq!(answer.content_type, expected, "{accept}");
        assert_eq!(answer.body, json!({ "data": { "me": { "id": SEED } } }), "{accept}");
        let answer = get(&app, accept, ME).await;
        assert_eq!((answer.status, answer.content_type.as_str()), (StatusCode::OK, expected), "GET {accept}");
    }
}

#[tokio::test]
async fn without_an_accept_header_the_answer_is_graphql_response_json() {
    let app = spawn().await;
    // reqwest always sends `Accept: */*`: this request is written by hand.
    let body = json!({ "query": ME }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        app.addr,
        token(),
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.expect("connects");
    socket.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.expect("read");
    let (head, rest) = answer.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("content-type: {GRAPHQL_RESPONSE}")), "{head}");
    assert!(rest.contains(SEED), "{rest}");
}

#[tokio::test]
async fn a_client_accepting_neither_media_type_gets_406_in_json() {
    let app = spawn().await;
    for accept in ["text/html", "application/xml, text/*", "application/json;q=0", "application/json; charset=latin1"] {
        let answer = post(&app, accept, json!({ "query": ME })).await;
        answer.assert_refused(StatusCode::NOT_ACCEPTABLE, "BAD_REQUEST");
        assert_eq!(answer.content_type, JSON, "{accept}");
        let answer = get(&app, accept, ME).await;
        answer.assert_refused(StatusCode::NOT_ACCEPTABLE, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn a_post_body_not_declared_as_json_in_utf_8_is_415_naming_the_type_there_is() {
    let app = spawn().await;
    let body = json!({ "query": ME }).to_string();
    for content_type in
        [None, Some("text/plain;charset=UTF-8"), Some("application/graphql"), Some("application/json; charset=latin1")]
    {
        let mut request = app.http.post(app.url("/graphql")).bearer_auth(token()).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("answer");
        assert_eq!(response.headers()["accept-post"], "application/json", "{content_type:?}");
        let answer = Answer::of(response).await;
        answer.assert_refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "BAD_REQUEST");
    }
    for accepted in ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=\"UTF-8\""] {
        let answer = post_as(&app, Some(accepted), &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{accepted}: {:#}", answer.body);
    }
}

/// Documents that fail before execution, each with its code (every phase the request policy codes).
fn request_errors() -> Vec<(Value, &'static str)> {
    vec![
        (json!({ "query": "{" }), "GRAPHQL_PARSE_FAILED"),
        (json!({ "query": "{ me { nope } }" }), "GRAPHQL_VALIDATION_FAILED"),
        (
            json!({ "query": "query Q($id: ID!) { user(id: $id) { id } }", "variables": { "id": null } }),
            "BAD_USER_INPUT",
        ),
        (json!({ "query": "query A { me { id } } query B { me { id } }" }), "OPERATION_RESOLUTION_FAILURE"),
        (json!({ "query": "query A { me { id } }", "operationName": "Z" }), "OPERATION_RESOLUTION_FAILURE"),
        (
            json!({ "query": format!("{{ me {{ {} }} }}", (0..31).map(|i| format!("a{i}: id")).collect::<Vec<_>>().join(" ")) }),
            "ALIAS_LIMIT_EXCEEDED",
        ),
        (
            json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "0".repeat(64) } } }),
            "PERSISTED_QUERY_NOT_FOUND",
        ),
        (json!({ "query": ME, "extensions": { "purpose": 7 } }), "BAD_REQUEST"),
    ]
}

#[tokio::test]
async fn under_graphql_response_json_an_error_before_execution_is_400_without_data() {
    let app = spawn().await;
    for (body, code) in request_errors() {
        let answer = post(&app, "application/graphql-response+json", body.clone()).await;
        answer.assert_refused(StatusCode::BAD_REQUEST, code);
        assert_eq!(answer.content_type, GRAPHQL_RESPONSE, "{body}");
    }
    let answer = get(&app, "application/graphql-response+json", "{ me { nope } }").await;
    answer.assert_refused(StatusCode::BAD_REQUEST, "GRAPHQL_VALIDATION_FAILED");
    let hash = json!({ "persistedQuery": { "version": 1, "sha256Hash": "0".repeat(64) } }).to_string();
    let request = app
        .http
        .get(app.url("/graphql"))
        .query(&[("extensions", hash.as_str())])
        .bearer_auth(token())
        .header("accept", "application/graphql-response+json");
    let answer = Answer::of(request.send().await.expect("answer")).await;
    answer.assert_refused(StatusCode::BAD_REQUEST, "PERSISTED_QUERY_NOT_FOUND");
}

#[tokio::test]
async fn under_json_an_error_before_execution_is_200_without_data() {
    let app = spawn().await;
    for (body, code) in request_errors() {
        let answer = post(&app, "application/json", body.clone()).await;
        answer.assert_refused(StatusCode::OK, code);
        assert_eq!(answer.content_type, JSON, "{body}");
    }
    get(&app, "application/json", "{").await.assert_refused(StatusCode::OK, "GRAPHQL_PARSE_FAILED");
}

#[tokio::test]
async fn once_execution_started_the_answer_is_200_with_data_under_both_media_types() {
    let app = spawn().await;
    for accept in ["application/graphql-response+json", "application/json"] {
        // A denied field: a field error, after execution started.
        let answer = post(&app, accept, json!({ "query": "{ me { id emails { address } } }" })).await;
        assert_eq!(answer.status, StatusCode::OK, "{accept}");
        assert_eq!(answer.body["data"], json!({ "me": { "id": SEED, "emails": null } }), "{accept}");
        assert_eq!(answer.code(), "UNAUTHORIZED_FIELD_OR_TYPE", "{accept}");
        // An argument a resolver refuses: `BAD_USER_INPUT` like a variable that cannot be coerced, but raised while
        // executing, so a field error.
        let answer = post(&app, accept, json!({ "query": r#"{ me { kycState(level: "") } }"# })).await;
        assert_eq!(answer.status, StatusCode::OK, "{accept}: {:#}", answer.body);
        assert_eq!(answer.body["data"], json!({ "me": { "kycState": null } }), "{accept}");
        assert_eq!(answer.code(), "BAD_USER_INPUT", "{accept}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_graphql_request_is_400_under_both_media_types() {
    let app = spawn().await;
    for accept in ["application/graphql-response+json", "application/json"] {
        for body in [
            r#"{ "not a JSON"#,
            "",
            r#"{"qeury": "{ me { id } }"}"#,
            r#"{"query": 0}"#,
            r#"{"query": ["array"]}"#,
            r#"{"query": "{ me { id } }", "variables": "string"}"#,
            r#"{"query": "{ me { id } }", "operationName": false}"#,
            r#"{"query": "{ me { id } }", "extensions": ["array"]}"#,
            "[]",
        ] {
            let request = app
                .http
                .post(app.url("/graphql"))
                .bearer_auth(token())
                .header("accept", accept)
                .header("content-type", "application/json")
                .body(body);
            let answer = Answer::of(request.send().await.expect("answer")).await;
            answer.assert_refused(StatusCode::BAD_REQUEST, "BAD_REQUEST");
            let expected = if accept == "application/json" { JSON } else { GRAPHQL_RESPONSE };
            assert_eq!(answer.content_type, expected, "{body}");
        }
    }
}

#[tokio::test]
async fn get_refuses_mutations_and_subscriptions_with_405_allow_post() {
    let app = spawn().await;
    for query in ["mutation { unlinkFractal }", "subscription { verificationChanged { state } }"] {
        for accept in ["application/graphql-response+json", "*/*"] {
            let request = app
                .http
                .get(app.url("/graphql"))
                .query(&[("query", query)])
                .bearer_auth(token())
                .header("accept", accept);
            let response = request.send().await.expect("answer");
            assert_eq!(response.headers()["allow"], "POST", "{query}");
            Answer::of(response).await.assert_refused(StatusCode::METHOD_NOT_ALLOWED, "BAD_REQUEST");
        }
    }
}

#[tokio::test]
async fn a_mutation_over_get_is_405_however_it_is_named_or_sent() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read fractal.link:write");
    let several = "query Q { me { id } } mutation M { unlinkFractal }";
    // A persisted named mutation, registered by POST (APQ), then sent by its hash alone.
    let persisted = "mutation Unlink { unlinkFractal }";
    let hash = kyc_gateway::graphql::sha256_hex(persisted);
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } }).to_string();
    let body = json!({ "query": persisted, "extensions": serde_json::from_str::<Value>(&extensions).expect("json") });
    let registered = app.http.post(app.url("/graphql")).bearer_auth(&token).json(&body).send().await.expect("answer");
    assert_eq!(registered.status(), StatusCode::OK);
    let forms: [&[(&str, &str)]; 5] = [
        &[("query", "mutation M { unlinkFractal }")],
        &[("query", several), ("operationName", "M")],
        &[("query", "mutation cop { __typename }")],
        &[("extensions", &extensions)],
        &[("extensions", &extensions), ("operationName", "Unlink")],
    ];
    for form in forms {
        let request = app.http.get(app.url("/graphql")).query(form).bearer_auth(&token);
        let response = request.send().await.expect("answer");
        assert_eq!(response.headers().get("allow").map(|v| v.to_str().expect("ascii")), Some("POST"), "{form:?}");
        let answer = Answer::of(response).await;
        assert!(
            answer.body["errors"][0]["message"].as_str().unwrap_or("").contains("GET"),
            "{form:?}: {:#}",
            answer.body
        );
        answer.assert_refused(StatusCode::METHOD_NOT_ALLOWED, "BAD_REQUEST");
    }
    // The query of that document still runs over GET.
    let request = app.http.get(app.url("/graphql")).query(&[("query", several), ("operationName", "Q")]);
    let answer = Answer::of(request.bearer_auth(&token).send().await.expect("answer")).await;
    assert_eq!(answer.status, StatusCode::OK, "{:#}", answer.body);
    assert_eq!(answer.body["data"]["me"]["id"], SEED);
}

#[tokio::test]
async fn other_methods_are_405_with_allow_and_a_json_body() {
    let app = spawn().await;
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let response = app.http.request(method.clone(), app.url("/graphql")).send().await.expect("answer");
        assert_eq!(response.headers()["allow"], "GET, POST", "{method}");
        Answer::of(response).await.assert_refused(StatusCode::METHOD_NOT_ALLOWED, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn the_token_is_checked_before_the_media_types_and_every_refusal_names_its_content_type() {
    let app = spawn().await;
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/html")
        .header("content-type", "text/plain")
        .body("{")
        .send()
        .await
        .expect("answer");
    let answer = Answer::of(response).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(answer.content_type, "application/json");
}

#[tokio::test]
async fn a_batch_is_200_and_each_of_its_operations_is_answered_as_alone() {
    let app = spawn().await;
    let batch = json!([{ "query": ME }, { "query": "{ me { nope } }" }]);
    let answer = post(&app, "application/graphql-response+json", batch).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type, GRAPHQL_RESPONSE);
    assert_eq!(answer.body[0], json!({ "data": { "me": { "id": SEED } } }));
    assert!(answer.body[1].get("data").is_none(), "{:#}", answer.body);
    assert_eq!(answer.body[1]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
}
