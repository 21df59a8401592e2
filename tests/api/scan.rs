//! The graphql-cop scan, as a test: every check graphql-cop (github.com/dolevf/graphql-cop) makes, run against a
//! production-mode gateway with a valid token, and what each must find. Batching (at most 20 operations) and GET
//! queries answer by design; mutations over GET, field suggestions, introspection, GraphiQL without a CSP,
//! form-encoded POSTs, trace mode, unhandled errors and the overloading documents are refused.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{issuer_token, production_app, spawn, TestApp, SEED};

/// What GraphQL-over-HTTP clients send: a request error is then a 400.
const ACCEPT: &str = "application/graphql-response+json, application/json";

/// POSTs `body` as JSON with the scan's token: the status and the JSON answer.
async fn post(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    let request = app.http.post(app.url("/graphql")).bearer_auth(token).header("accept", ACCEPT);
    let answer = request.json(body).send().await.expect("answer");
    (answer.status(), answer.json().await.expect("a JSON answer"))
}

fn codes(body: &Value) -> Vec<String> {
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    errors.iter().map(|e| e["extensions"]["code"].as_str().unwrap_or("<none>").to_owned()).collect()
}

/// What no answer of the scan may hold: internal error text, stack traces, tracing data.
fn assert_nothing_internal(what: &str, text: &str) {
    for leak in ["stacktrace", "exception", "panicked", ".rs:", "RUST_BACKTRACE", "tracing", "ftv1", "sqlx", "tokio"] {
        assert!(!text.contains(leak), "{what}: the answer holds {leak:?}: {text}");
    }
}

#[tokio::test]
async fn a_graphql_cop_scan_of_production_mode_finds_only_what_is_by_design() {
    let sandbox = spawn().await;
    let app = production_app(&sandbox, &[SEED], |_| {}).await;
    let token = issuer_token(SEED, "uid:read contact:read fractal.link:write", false);

    // Without a token, nothing is GraphQL: 401.
    let anonymous = app.http.post(app.url("/graphql")).json(&json!({ "query": "query cop { __typename }" }));
    assert_eq!(anonymous.send().await.expect("answer").status(), StatusCode::UNAUTHORIZED);

    // By design: batching, at most 20 operations.
    let batch: Vec<Value> = (0..20).map(|_| json!({ "query": "query cop { __typename }" })).collect();
    let (status, answers) = post(&app, &token, &json!(batch)).await;
    assert_eq!(status, StatusCode::OK, "{answers:#}");
    assert_eq!(answers.as_array().map(Vec::len), Some(20), "{answers:#}");
    assert!(answers.as_array().expect("answers").iter().all(|a| a["data"]["__typename"] == "Query"), "{answers:#}");
    let batch: Vec<Value> = (0..21).map(|_| json!({ "query": "query cop { __typename }" })).collect();
    let (status, refused) = post(&app, &token, &json!(batch)).await;
    assert_eq!((status, codes(&refused)), (StatusCode::BAD_REQUEST, vec!["BAD_REQUEST".to_owned()]), "{refused:#}");

    // By design: a query over GET.
    let get = app.http.get(app.url("/graphql")).query(&[("query", "query cop { __typename }")]).bearer_auth(&token);
    let get = get.send().await.expect("answer");
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.json::<Value>().await.expect("json")["data"]["__typename"], "Query");

    // Refused: a mutation over GET (graphql-cop's own, and a named one alone in its document).
    for mutation in ["mutation cop { __typename }", "mutation M { unlinkFractal }"] {
        let get = app.http.get(app.url("/graphql")).query(&[("query", mutation)]).bearer_auth(&token);
        let get = get.send().await.expect("answer");
        assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED, "{mutation}");
        assert!(get.json::<Value>().await.expect("json").get("data").is_none(), "{mutation}");
    }

    // Refused: field suggestions.
    let (_, typo) = post(&app, &token, &json!({ "query": "query cop { __schema { directive } me { emals } }" })).await;
    assert!(!typo.to_string().contains("Did you mean"), "{typo:#}");
    assert!(!codes(&typo).is_empty(), "{typo:#}");

    // Refused: introspection (`__schema`, `__type`, and graphql-cop's circular introspection query).
    let introspection = [
        "query cop { __schema { types { name fields { name } } } }",
        r#"query cop { __type(name: "Query") { name fields { name } } }"#,
        "query cop { __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }",
    ];
    for query in introspection {
        let (_, answer) = post(&app, &token, &json!({ "query": query })).await;
        let data = &answer["data"];
        // Answered as if the schema had no introspection: `null`, nothing of the schema.
        assert!(data.is_null() || data.as_object().is_some_and(|d| d.values().all(Value::is_null)), "{answer:#}");
        assert!(!answer.to_string().contains("\"fields\""), "{query}: {answer:#}");
    }

    // GraphiQL is served, under a Content-Security-Policy.
    for path in ["/", "/graphiql"] {
        let page = app.http.get(app.url(path)).header("accept", "text/html").send().await.expect("answer");
        if page.status() == StatusCode::OK {
            let csp = page.headers().get("content-security-policy").map(|v| v.to_str().expect("ascii").to_owned());
            let csp = csp.unwrap_or_else(|| panic!("GraphiQL at {path} without a Content-Security-Policy"));
            assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
        }
    }

    // Refused: a form-encoded POST (a cross-site form could send it), whatever it holds.
    for body in ["query=query+cop+%7B__typename%7D", "query=mutation+cop+%7B__typename%7D"] {
        let form = app.http.post(app.url("/graphql")).bearer_auth(&token);
        let form = form.header("content-type", "application/x-www-form-urlencoded").body(body);
        let form = form.send().await.expect("answer");
        assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        assert!(form.json::<Value>().await.expect("json").get("data").is_none(), "{body}");
    }

    // Refused: trace mode (no Apollo tracing, no federated trace even when asked for one).
    let traced =
        app.http.post(app.url("/graphql")).bearer_auth(&token).header("apollo-federation-include-trace", "ftv1");
    let traced = traced.json(&json!({ "query": "query cop { __typename }" })).send().await.expect("answer");
    let traced: Value = traced.json().await.expect("json");
    assert_eq!(traced["data"]["__typename"], "Query");
    assert!(traced["extensions"]["tracing"].is_null() && traced["extensions"]["ftv1"].is_null(), "{traced:#}");
    assert_nothing_internal("trace mode", &traced.to_string());

    // Refused: unhandled errors (graphql-cop's malformed document, a malformed body, a wrong type).
    let (status, malformed) = post(&app, &token, &json!({ "query": "qwerty cop { abc }" })).await;
    assert_eq!((status, codes(&malformed)), (StatusCode::BAD_REQUEST, vec!["GRAPHQL_PARSE_FAILED".to_owned()]));
    assert_nothing_internal("a malformed document", &malformed.to_string());
    let broken = app.http.post(app.url("/graphql")).bearer_auth(&token).header("accept", ACCEPT);
    let broken = broken.header("content-type", "application/json");
    let broken = broken.body(r#"{"query": "query cop { __typename }", "variables": [1"#).send().await.expect("answer");
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert_nothing_internal("a malformed body", &broken.text().await.expect("text"));
    let (_, wrong) = post(
        &app,
        &token,
        &json!({ "query": "query cop($id: ID!) { user(id: $id) { id } }", "variables": { "id": [1] } }),
    )
    .await;
    assert_eq!(codes(&wrong), ["BAD_USER_INPUT"], "{wrong:#}");
    assert_nothing_internal("a wrong variable", &wrong.to_string());

    // Refused: graphql-cop's overloading documents (aliases, directives, a duplicated field).
    let aliases: String = (0..101).map(|i| format!(" a{i}: __typename")).collect();
    let directives = format!("query cop {{ __typename {} }}", "@aa".repeat(50));
    let duplicated = format!("query cop {{ {} }}", "__typename ".repeat(500));
    for (query, code) in [
        (format!("query cop {{{aliases} }}"), "ALIAS_LIMIT_EXCEEDED"),
        (directives, "DIRECTIVE_LIMIT_EXCEEDED"),
        (duplicated, "ROOT_FIELD_LIMIT_EXCEEDED"),
    ] {
        let (status, answer) = post(&app, &token, &json!({ "query": query })).await;
        assert_eq!((status, codes(&answer)), (StatusCode::BAD_REQUEST, vec![code.to_owned()]), "{answer:#}");
    }
}
