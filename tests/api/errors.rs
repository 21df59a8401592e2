//! Every error has a stable code, and nothing internal leaks into messages.

use kyc_gateway::auth::token::{mint_hs256, Subject};
use kyc_gateway::config::SecretIssuer;
use kyc_gateway::secret::Secret;
use serde_json::json;

use crate::helpers::{client_token, import, production_state, spawn, spawn_with, user_token, SEED};

#[tokio::test]
async fn errors_are_coded_by_the_phase_they_come_from() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read");
    let create = "mutation($input: CreateKycApplicationInput!) { createKycApplication(input: $input) { id } }";
    let cases = [
        // Parsing.
        ("{ me { id }", json!({}), "GRAPHQL_PARSE_FAILED"),
        // Validation: the document does not fit the schema; an inline literal of the wrong type is the document's.
        ("{ me { nope } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        (r#"{ user(id: {not: "an id"}) { id } }"#, json!({}), "GRAPHQL_VALIDATION_FAILED"),
        ("query($a: ID) { me { id } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        // Coercing the variables the caller sent.
        ("query($id: ID!) { user(id: $id) { id } }", json!({ "id": {"not": "an id"} }), "BAD_USER_INPUT"),
        ("query($id: ID!) { user(id: $id) { id } }", json!({}), "BAD_USER_INPUT"),
        (
            "query($s: KycApplicationStatus) { kycApplications(status: $s) { totalCount } }",
            json!({ "s": "NOPE" }),
            "BAD_USER_INPUT",
        ),
        (create, json!({ "input": { "params": { "email": 7 } } }), "BAD_USER_INPUT"),
        (create, json!({ "input": { "unknownField": "x" } }), "BAD_USER_INPUT"),
    ];
    for (query, variables, code) in cases {
        let answer = app.query_vars(&token, query, variables).await;
        assert_eq!(answer.codes(), [code], "{query} {:#}", answer.body);
    }
}

#[tokio::test]
async fn an_unused_variable_is_a_validation_error_not_bad_input() {
    let app = spawn().await;
    let answer =
        app.query_vars(&user_token(SEED, "uid:read"), "query($a: ID) { me { id } }", json!({ "a": "x" })).await;
    assert_eq!(answer.codes(), ["GRAPHQL_VALIDATION_FAILED"], "{:#}", answer.body);
    assert!(answer.body["data"].is_null());
}

#[tokio::test]
async fn a_bad_variable_value_is_named_but_never_echoed() {
    let app = spawn().await;
    let query = "mutation($input: CreateKycApplicationInput!) { createKycApplication(input: $input) { id } }";
    let secret_value = json!({ "input": { "params": { "ssn": { "value": "123-45-6789" } } } });
    let answer = app.query_vars(&user_token(SEED, "kyc_application:write"), query, secret_value).await;
    assert_eq!(answer.codes(), ["BAD_USER_INPUT"], "{:#}", answer.body);
    let message = answer.errors()[0]["message"].as_str().expect("message").to_owned();
    assert!(message.contains("$input.params.ssn"), "{message}");
    assert!(!answer.body.to_string().contains("123-45-6789"), "the value is not repeated: {message}");
}

#[tokio::test]
async fn an_operation_that_cannot_be_chosen_has_its_own_code() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read");
    let two = "query A { me { id } } query B { me { id } }";
    let unnamed = app.query(&token, two).await;
    assert_eq!(unnamed.codes(), ["OPERATION_RESOLUTION_FAILURE"], "{:#}", unnamed.body);
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": two, "operationName": "C" }))
        .send()
        .await
        .expect("answer");
    let unknown: serde_json::Value = response.json().await.expect("json");
    assert_eq!(unknown["errors"][0]["extensions"]["code"], "OPERATION_RESOLUTION_FAILURE", "{unknown:#}");
    let chosen = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": two, "operationName": "B" }))
        .send()
        .await
        .expect("answer");
    let chosen: serde_json::Value = chosen.json().await.expect("json");
    assert_eq!(chosen["data"]["me"]["id"], SEED);
    // The same over GET: `operationName` is read from the query string, never ignored.
    let get = |name: Option<&'static str>| {
        let mut params = vec![("query", two)];
        params.extend(name.map(|n| ("operationName", n)));
        app.http.get(app.url("/graphql")).bearer_auth(&token).query(&params).send()
    };
    for name in [None, Some("C")] {
        let answer: serde_json::Value = get(name).await.expect("answer").json().await.expect("json");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "OPERATION_RESOLUTION_FAILURE", "{name:?}: {answer:#}");
    }
    let answer: serde_json::Value = get(Some("B")).await.expect("answer").json().await.expect("json");
    assert_eq!(answer["data"]["me"]["id"], SEED, "{answer:#}");
}

/// A production-mode app whose Fractal does not answer (a closed port) and whose directory links one user.
/// The production issuer's shared secret of these tests (32 bytes or more, as production mode requires).
const ISSUER_SECRET_OF_ERRORS: &str = "issuer-secret-of-the-error-tests-32b";

async fn app_with_fractal_down() -> crate::helpers::TestApp {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let app = spawn_with(|c| {
        for setting in ["FRONTEND_URL", "AUTH_URL", "RESOURCE_URL"] {
            c.vars.set(&format!("KYC_GATEWAY_FRACTAL_{setting}"), url.clone());
        }
        c.vars.set("KYC_GATEWAY_FRACTAL_CLIENT_ID", "id");
        c.vars.set("KYC_GATEWAY_FRACTAL_CLIENT_SECRET", "client-secret-value");
        c.tokens.secret_issuer = Some(SecretIssuer {
            issuer: "https://id.example.com/".into(),
            secret: Secret::new(ISSUER_SECRET_OF_ERRORS),
        });
        production_state(c);
    })
    .await;
    let link = json!({ "user_id": "user-1", "fractal": { "uid": "f-1", "refresh_token": "refresh-token-value" } });
    import(&app, vec![link]).await;
    app
}

#[tokio::test]
async fn an_unreachable_provider_nulls_its_fields_with_provider_unavailable_and_leaks_nothing() {
    let app = app_with_fractal_down().await;
    let scope = "uid:read contact:read verification.basic:read client.stats:read";
    let issuer = Secret::new(ISSUER_SECRET_OF_ERRORS);
    let token = mint_hs256(&issuer, "https://id.example.com/", &Subject::User("user-1".into()), scope, 60);
    let answer = app
        .query(
            &token,
            "{ me { id emails { address } verificationCases { level } } verificationStats { total { approved } } }",
        )
        .await;
    assert_eq!(answer.data("me.id"), "user-1", "the gateway's own data still arrives");
    assert!(answer.data("me.emails").is_null());
    assert_eq!(answer.data("me.verificationCases"), &json!([]));
    assert_eq!(answer.codes().len(), 3, "{:#}", answer.body);
    for error in answer.errors() {
        assert_eq!(error["extensions"]["code"], "PROVIDER_UNAVAILABLE", "{error:#}");
        assert_eq!(error["extensions"]["provider"], "FRACTAL");
    }
    let text = answer.body.to_string();
    for secret_or_internal in ["127.0.0.1", "http", "client-secret-value", "refresh-token-value", "refused"] {
        assert!(!text.contains(secret_or_internal), "{secret_or_internal} leaked: {text}");
    }
}

#[tokio::test]
async fn a_client_token_reading_an_unknown_user_gets_null_without_an_error() {
    let app = spawn().await;
    let answer = app.query(&client_token("client.users:read"), r#"{ user(id: "ghost") { id } }"#).await.ok();
    assert!(answer.data("user").is_null());
}

#[tokio::test]
async fn a_kyc_state_level_that_names_no_known_item_is_bad_input_listing_the_known_ones() {
    // A company level mapped to an item of its own: an item the configuration can produce is known too.
    let app = crate::helpers::spawn_with(|c| c.vars.set("KYC_GATEWAY_SUMSUB_LEVELS", "kyc-gold=gold")).await;
    let token = crate::helpers::user_token(crate::helpers::SEED, "verification.basic:read verification.gold:read");
    for level in ["platinum", "basic+platinum"] {
        let answer = app.query(&token, &format!(r#"{{ me {{ kycState(level: "{level}") }} }}"#)).await;
        assert_eq!(answer.codes(), ["BAD_USER_INPUT"], "{level}: {:#}", answer.body);
        let message = answer.errors()[0]["message"].as_str().expect("a message").to_owned();
        assert!(message.contains("\"platinum\""), "{message}");
        assert!(message.contains("uniqueness, basic, plus") && message.contains("liveness, selfie"), "{message}");
        assert!(message.contains("gold"), "the configured item is listed: {message}");
        assert!(answer.data("me.kycState").is_null());
    }
    let gold = app.query(&token, r#"{ me { kycState(level: "gold") } }"#).await;
    assert!(gold.codes().is_empty(), "a configured item is a level to ask about: {:#}", gold.body);
}
