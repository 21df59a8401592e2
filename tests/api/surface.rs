//! The HTTP surface: health, GraphiQL, GET and POST /graphql.

use reqwest::StatusCode;

use crate::helpers::{spawn, user_token, SEED};

#[tokio::test]
async fn health_check_answers_200() {
    let app = spawn().await;
    let response = app.http.get(app.url("/healthz")).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn graphiql_is_served_at_the_root_and_at_graphiql_pointing_at_graphql() {
    let app = spawn().await;
    for path in ["/", "/graphiql"] {
        let response = app.http.get(app.url(path)).send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
        let html = response.text().await.expect("body");
        assert!(html.contains("graphiql"), "{path} is not GraphiQL");
        // The page's script (served by the gateway, see graphiql.rs) holds the fetchers.
        let start = html.find("/graphiql/assets/app-").unwrap_or_else(|| panic!("{path} has no script of its own"));
        let script = &html[start..start + html[start..].find('"').expect("a closing quote")];
        let script = app.http.get(app.url(script)).send().await.expect("answer").text().await.expect("body");
        assert!(script.contains("'/graphql'") && script.contains("'/graphql/ws'"), "{path} does not point at /graphql");
    }
}

#[tokio::test]
async fn get_graphql_runs_a_query() {
    let app = spawn().await;
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { id } }")])
        .bearer_auth(user_token(SEED, "uid:read"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["data"]["me"]["id"], SEED);
}

#[tokio::test]
async fn get_graphql_refuses_a_mutation() {
    let app = spawn().await;
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { anything }")])
        .bearer_auth(user_token(SEED, "uid:read"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn an_unknown_path_is_a_json_404() {
    let app = spawn().await;
    let response = app.http.get(app.url("/nope")).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_batch_answers_each_operation_and_is_bounded() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read");
    let batch = serde_json::json!([{ "query": "{ me { id } }" }, { "query": "{ a: me { id } }" }]);
    let response = app.http.post(app.url("/graphql")).bearer_auth(&token).json(&batch).send().await.expect("answer");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body[0]["data"]["me"]["id"], SEED);
    assert_eq!(body[1]["data"]["a"]["id"], SEED);

    let too_many: Vec<_> = (0..21).map(|_| serde_json::json!({ "query": "{ me { id } }" })).collect();
    let response = app.http.post(app.url("/graphql")).bearer_auth(&token).json(&too_many).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn pathologically_deep_queries_are_refused_before_anything_runs() {
    let app = spawn().await;
    let mut query = String::from("{ __schema { types { fields { type ");
    query.push_str(&"{ ofType ".repeat(16));
    query.push_str("{ name }");
    query.push_str(&" }".repeat(20));
    let answer = app.query(&user_token(SEED, "uid:read"), &query).await;
    assert!(answer.body["data"].is_null());
    assert_eq!(answer.codes(), ["DEPTH_LIMIT_EXCEEDED"], "{:#}", answer.body);
    assert_eq!(answer.errors()[0]["extensions"]["limit"], 15);
}
