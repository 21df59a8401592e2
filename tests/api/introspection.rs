//! Introspection per token in production mode: a token holding `schema:read` introspects the schema cut down to what
//! its scopes can ever read; the walk below checks each cut against what the token can actually query.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::helpers::{issuer_token, production_app, spawn, user_token, TestApp, SEED};

/// GraphiQL's introspection query, in short: every type with its fields and their types.
const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } \
    subscriptionType { name } types { kind name fields(includeDeprecated: true) { name args { name type { ...T } } \
    type { ...T } } inputFields { name type { ...T } } enumValues(includeDeprecated: true) { name } } } } \
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// Object type -> its field names, as a schema answers introspection.
fn objects(schema: &Value) -> HashMap<String, BTreeSet<String>> {
    let types = schema["data"]["__schema"]["types"].as_array().unwrap_or_else(|| panic!("types: {schema:#}"));
    types
        .iter()
        .filter(|t| t["kind"] == "OBJECT" && !t["name"].as_str().is_some_and(|n| n.starts_with('_')))
        .map(|t| {
            let fields = t["fields"].as_array().expect("fields").iter();
            let names = fields.filter_map(|f| f["name"].as_str()).filter(|n| !n.starts_with('_')).map(str::to_owned);
            (t["name"].as_str().expect("a name").to_owned(), names.collect())
        })
        .collect()
}

/// Every type name that a field, argument or input field of the schema refers to is one of its types.
fn assert_closed(schema: &Value) {
    let types = schema["data"]["__schema"]["types"].as_array().expect("types");
    let names: BTreeSet<&str> = types.iter().filter_map(|t| t["name"].as_str()).collect();
    let mut refs = Vec::new();
    for t in types {
        for f in t["fields"].as_array().into_iter().flatten().chain(t["inputFields"].as_array().into_iter().flatten()) {
            refs.push(&f["type"]);
            refs.extend(f["args"].as_array().into_iter().flatten().map(|a| &a["type"]));
        }
    }
    for mut r in refs {
        while r["name"].is_null() {
            r = &r["ofType"];
        }
        let name = r["name"].as_str().expect("a named type");
        assert!(names.contains(name), "{name} is referred to but not in the schema");
    }
}

/// The full schema, as sandbox mode's open introspection answers it.
async fn full_schema() -> HashMap<String, BTreeSet<String>> {
    let app = spawn().await;
    objects(&app.query(&user_token(SEED, ""), INTROSPECTION).await.ok().body)
}

async fn gateway() -> (TestApp, TestApp) {
    let sandbox = spawn().await;
    let app = production_app(&sandbox, &[], |_| {}).await;
    (sandbox, app)
}

/// Whether `field` of `parent` (reached from `me`) answers without a scope denial for this token.
async fn readable_on_me(app: &TestApp, token: &str, field: &str, leaf: bool) -> bool {
    let selection = if leaf { field.to_owned() } else { format!("{field} {{ __typename }}") };
    let answer = app.query(token, &format!("{{ me {{ {selection} }} }}")).await;
    !answer.codes().iter().any(|c| c == "UNAUTHORIZED_FIELD_OR_TYPE")
}

#[tokio::test]
async fn each_token_introspects_exactly_the_fields_it_can_read() {
    let full = full_schema().await;
    let (_sandbox, app) = gateway().await;

    // A person with only `uid:read`: `me`, its id, no contact data, no cases, no mutations, no trail.
    let person = issuer_token("u-1", "schema:read uid:read", false);
    let cut_answer = app.query(&person, INTROSPECTION).await.ok().body;
    assert_closed(&cut_answer);
    let cut = objects(&cut_answer);
    let query: Vec<&str> = cut["Query"].iter().map(String::as_str).collect();
    assert_eq!(query, ["me", "user", "users"], "{cut:?}");
    assert!(!cut.contains_key("Mutation") && !cut.contains_key("AuditEvent") && !cut.contains_key("VerificationCase"));
    assert!(cut_answer["data"]["__schema"]["mutationType"].is_null());
    // Walk every field of `User` in the full schema: shown exactly when `me { field }` is not denied for this token.
    let user_fields = &full["User"];
    for field in user_fields {
        let shown = cut["User"].contains(field);
        match field.as_str() {
            "verificationCases" => assert!(!shown, "User.{field}: no case scope, no cases"),
            "kycState" => assert!(shown, "User.{field}: its rule depends on the level asked"),
            _ => {
                let readable = readable_on_me(&app, &person, field, field == "id").await;
                assert_eq!(shown, readable, "User.{field}: shown {shown}, readable {readable}");
            }
        }
    }

    // An auditor's client token: the trail, and nothing about users.
    let auditor = issuer_token("auditor", "schema:read audit:read", true);
    let cut_answer = app.query(&auditor, INTROSPECTION).await.ok().body;
    assert_closed(&cut_answer);
    let cut = objects(&cut_answer);
    assert_eq!(cut["Query"].iter().collect::<Vec<_>>(), ["auditEvents"]);
    assert!(!cut.contains_key("User") && !cut.contains_key("Subscription"), "{cut:?}");
    let answer = app.query(&auditor, "{ auditEvents(first: 1) { edges { cursor } } }").await;
    assert!(answer.codes().is_empty(), "{:?}", answer.body);
    let answer = app.query(&auditor, r#"{ user(id: "u-1") { id } }"#).await;
    assert!(!answer.codes().is_empty(), "a hidden field is refused: {:?}", answer.body);

    // A service reading basic cases with their details: only the details fields of `basic`.
    let scopes = "schema:read client.users:read contact:read verification.basic:read verification.basic.details:read";
    let service = issuer_token("kyc-service", scopes, true);
    let cut_answer = app.query(&service, INTROSPECTION).await.ok().body;
    assert_closed(&cut_answer);
    let cut = objects(&cut_answer);
    assert!(cut["User"].contains("emails") && cut["User"].contains("verificationCases"), "{:?}", cut["User"]);
    assert!(!cut["User"].contains("id") && !cut["User"].contains("accessLog"), "{:?}", cut["User"]);
    assert!(!cut["Query"].contains("me"), "a client has no `me`");
    let details = &cut["VerificationDetails"];
    assert!(details.contains("fullName") && details.contains("dateOfBirth"), "basic's own fields");
    assert!(
        !details.contains("placeOfBirth") && !details.contains("identificationDocumentSelfieFile"),
        "plus's and selfie's"
    );
    assert!(details.len() < full["VerificationDetails"].len());
}

#[tokio::test]
async fn introspection_stays_refused_without_its_scope_anonymously_and_mixed_with_data() {
    let (_sandbox, app) = gateway().await;
    let without = issuer_token("u-1", "uid:read", false);
    let answer = app.query(&without, "{ __schema { queryType { name } } }").await;
    assert!(answer.body["data"]["__schema"].is_null(), "nothing of the schema: {:?}", answer.body);
    let sdl = app.query(&without, "{ _service { sdl } }").await;
    assert!(!sdl.errors().is_empty(), "{:?}", sdl.body);

    let anonymous =
        app.http.post(app.url("/graphql")).json(&serde_json::json!({ "query": "{ __schema { types { name } } }" }));
    assert_eq!(anonymous.send().await.expect("answer").status(), 401);

    let holder = issuer_token("u-1", "schema:read uid:read", false);
    let mixed = app.query(&holder, "{ __schema { types { name } } me { id } }").await;
    assert_eq!(mixed.codes(), ["BAD_REQUEST"], "{:?}", mixed.body);
    // `_service` answers the cut SDL: no field the token cannot read.
    let sdl = app.query(&holder, "{ _service { sdl } }").await.ok();
    let text = sdl.data("_service.sdl").as_str().expect("an SDL");
    assert!(text.contains("me: User") && !text.contains("auditEvents") && !text.contains("emails"), "{text}");
}

#[tokio::test]
async fn a_token_s_introspection_keeps_the_safelist_the_pre_scan_and_the_alias_bound() {
    let listed = "{ __schema { queryType { name } } }";
    let manifest =
        std::env::temp_dir().join(format!("kyc-gateway-safelist-{}.json", kyc_gateway::secret::random_token()));
    let operations = serde_json::json!({
        "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{ "id": kyc_gateway::graphql::sha256_hex(listed), "name": "Listed", "type": "query", "body": listed }]
    });
    std::fs::write(&manifest, operations.to_string()).expect("written");
    let sandbox = spawn().await;
    let app = production_app(&sandbox, &[], |c| {
        c.documents.mode = kyc_gateway::config::TrustedMode::Safelist;
        c.documents.safelist = Some(manifest.clone());
    })
    .await;
    let holder = issuer_token("u-1", "schema:read uid:read", false);
    assert_eq!(app.query(&holder, listed).await.ok().data("__schema.queryType.name"), "Query");
    let unlisted = app.query(&holder, "{ __schema { types { name } } }").await;
    assert_eq!(unlisted.codes(), ["PERSISTED_QUERY_NOT_IN_LIST"], "{:?}", unlisted.body);
    std::fs::remove_file(&manifest).ok();

    let (_sandbox, app) = gateway().await;
    let aliased: String = (0..31).map(|i| format!(" a{i}: __schema {{ queryType {{ name }} }}")).collect();
    let answer = app.query(&holder, &format!("{{{aliased} }}")).await;
    assert_eq!(answer.codes(), ["ALIAS_LIMIT_EXCEEDED"], "{:?}", answer.body);
    let deep = format!("{{ __schema {}", "{ types ".repeat(70)) + &"}".repeat(71);
    let answer = app.query(&holder, &deep).await;
    assert_eq!(answer.codes(), ["DEPTH_LIMIT_EXCEEDED"], "the pre-scan's refusal: {:?}", answer.body);
}
