//! Trusted documents: automatic persisted queries (Apollo's protocol), safelist mode, and what the schema reveals.

use kyc_gateway::config::TrustedMode;
use kyc_gateway::graphql::sha256_hex;
use serde_json::{json, Value};

use crate::helpers::{issuer_token, production_app, spawn, spawn_with, user_token, SEED};

const ME: &str = "{ me { id } }";

async fn post(app: &crate::helpers::TestApp, token: &str, body: Value) -> Value {
    let answer = app.http.post(app.url("/graphql")).bearer_auth(token).json(&body).send().await.expect("answer");
    answer.json().await.expect("json")
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

#[tokio::test]
async fn an_automatic_persisted_query_is_registered_once_then_runs_by_its_hash() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read");
    let hash = sha256_hex(ME);
    let unknown = post(&app, &token, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(unknown["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{unknown:#}");
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound", "Apollo clients match the message");
    let registered = post(&app, &token, json!({ "query": ME, "extensions": persisted(&hash) })).await;
    assert_eq!(registered["data"]["me"]["id"], SEED, "{registered:#}");
    let by_hash = post(&app, &token, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(by_hash["data"]["me"]["id"], SEED, "{by_hash:#}");
    let get = app
        .http
        .get(app.url("/graphql"))
        .bearer_auth(&token)
        .query(&[("extensions", persisted(&hash).to_string())])
        .send()
        .await
        .expect("answer");
    let get: Value = get.json().await.expect("json");
    assert_eq!(get["data"]["me"]["id"], SEED, "{get:#}");
    let wrong = post(&app, &token, json!({ "query": "{ me { id } } ", "extensions": persisted(&hash) })).await;
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_HASH_MISMATCH", "{wrong:#}");
}

#[tokio::test]
async fn only_a_document_that_passed_the_size_check_and_validation_is_registered() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read");
    let refused = [
        (format!("{{ __typename }} # {}", "x".repeat(70_000)), "QUERY_TOO_LARGE"),
        (crate::hostile::fragment_bomb(), "ALIAS_LIMIT_EXCEEDED"),
        ("{ me { id".to_owned(), "GRAPHQL_PARSE_FAILED"),
        ("{ me { nickname } }".to_owned(), "GRAPHQL_VALIDATION_FAILED"),
    ];
    for (document, code) in refused {
        let hash = sha256_hex(&document);
        let answer = post(&app, &token, json!({ "query": document, "extensions": persisted(&hash) })).await;
        assert_eq!(answer["errors"][0]["extensions"]["code"], code, "{answer:#}");
        let by_hash = post(&app, &token, json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(
            by_hash["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
            "a document refused with {code} was registered: {by_hash:#}"
        );
    }
}

#[tokio::test]
async fn the_persisted_query_cache_holds_no_more_bytes_than_its_budget() {
    let app = spawn_with(|c| {
        let vars = [("KYC_GATEWAY_APQ_MAX_BYTES", "65536")];
        c.documents = kyc_gateway::Config::from_pairs(vars).expect("a configuration").documents;
    })
    .await;
    let token = user_token(SEED, "uid:read");
    // Eight documents of 15 KB: four fit in 64 KiB.
    let documents: Vec<String> = (0..8).map(|i| format!("{{ __typename }} # {i} {}", "x".repeat(15_000))).collect();
    for document in &documents {
        let registered =
            post(&app, &token, json!({ "query": document, "extensions": persisted(&sha256_hex(document)) })).await;
        assert_eq!(registered["data"]["__typename"], "Query", "{registered:#}");
    }
    let mut kept = 0;
    for document in &documents {
        let by_hash = post(&app, &token, json!({ "extensions": persisted(&sha256_hex(document)) })).await;
        if by_hash["data"]["__typename"] == "Query" {
            kept += 1;
        } else {
            assert_eq!(by_hash["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{by_hash:#}");
        }
    }
    assert!((1..=4).contains(&kept), "{kept} documents of 15 KB kept within 64 KiB");
}

#[tokio::test]
async fn a_persisted_mutation_is_still_refused_over_get() {
    let app = spawn().await;
    let token = user_token(SEED, "fractal.link:write");
    let mutation = "mutation { unlinkFractal }";
    let hash = sha256_hex(mutation);
    post(&app, &token, json!({ "query": "{ __typename }" })).await;
    let registered = post(&app, &token, json!({ "query": mutation, "extensions": persisted(&hash) })).await;
    assert!(registered["data"]["unlinkFractal"].is_boolean(), "{registered:#}");
    let get = app
        .http
        .get(app.url("/graphql"))
        .bearer_auth(&token)
        .query(&[("extensions", persisted(&hash).to_string())])
        .send()
        .await
        .expect("answer");
    assert_eq!(get.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn safelist_mode_runs_only_the_listed_documents() {
    let manifest =
        std::env::temp_dir().join(format!("kyc-gateway-safelist-{}.json", kyc_gateway::secret::random_token()));
    let listed = json!({
        "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{ "id": sha256_hex(ME), "name": "Me", "type": "query", "body": ME }]
    });
    std::fs::write(&manifest, listed.to_string()).expect("written");
    let app = spawn_with(|c| {
        c.documents.mode = TrustedMode::Safelist;
        c.documents.safelist = Some(manifest.clone());
    })
    .await;
    let token = user_token(SEED, "uid:read contact:read");
    assert_eq!(post(&app, &token, json!({ "query": ME })).await["data"]["me"]["id"], SEED);
    assert_eq!(post(&app, &token, json!({ "extensions": persisted(&sha256_hex(ME)) })).await["data"]["me"]["id"], SEED);
    let other = "{ me { emails { address } } }";
    let refused = post(&app, &token, json!({ "query": other })).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_IN_LIST", "{refused:#}");
    assert!(refused["data"].is_null());
    let registering = post(&app, &token, json!({ "query": other, "extensions": persisted(&sha256_hex(other)) })).await;
    assert_eq!(
        registering["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_IN_LIST",
        "nothing can be registered"
    );
    // A manifest whose id is not its body's hash is refused at start.
    let forged = json!({ "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{ "id": sha256_hex(ME), "body": other }] });
    std::fs::write(&manifest, forged.to_string()).expect("written");
    let mut config =
        kyc_gateway::Config { listen: "127.0.0.1:0".parse().expect("addr"), ..kyc_gateway::Config::default() };
    config.documents.mode = TrustedMode::Safelist;
    config.documents.safelist = Some(manifest.clone());
    let error = kyc_gateway::App::build(config).await.err().expect("refused").to_string();
    assert!(error.contains("not the hash of its body"), "{error}");
    let _ = std::fs::remove_file(&manifest);
}

#[tokio::test]
async fn production_mode_neither_answers_introspection_nor_suggests_field_names() {
    let sandbox_app = spawn().await;
    let sandbox =
        post(&sandbox_app, &user_token(SEED, "uid:read"), json!({ "query": "{ __schema { queryType { name } } }" }))
            .await;
    assert_eq!(sandbox["data"]["__schema"]["queryType"]["name"], "Query", "sandbox mode introspects: {sandbox:#}");
    let app = production_app(&sandbox_app, &[SEED], |_| {}).await;
    let token = issuer_token(SEED, "uid:read", false);
    let introspection = post(&app, &token, json!({ "query": "{ __schema { queryType { name } } }" })).await;
    assert_eq!(introspection["data"], json!({ "__schema": null }), "{introspection:#}");
    let typo = post(&app, &token, json!({ "query": "{ me { emals { address } } }" })).await;
    let message = typo["errors"][0]["message"].as_str().expect("message");
    assert!(!message.contains("Did you mean"), "{message}");
    let sandbox_typo =
        post(&sandbox_app, &user_token(SEED, "uid:read"), json!({ "query": "{ me { emals { address } } }" })).await;
    assert!(
        sandbox_typo["errors"][0]["message"].as_str().expect("message").contains("Did you mean"),
        "{sandbox_typo:#}"
    );
}
