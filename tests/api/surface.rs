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
        assert!(html.contains("graphiql") && html.contains("/graphql"), "{path} is not GraphiQL");
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
