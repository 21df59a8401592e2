//! The gateway as an Apollo Federation v2 subgraph: `_service { sdl }` and `User @key(fields: "id")` through
//! `_entities`, under exactly the rules of `user(id:)`. (`federation.rs` is about the providers behind one `User`.)
//! `tests/conformance/` composes `schema.graphql` with another subgraph.

use kyc_gateway::sandbox::ident::population::SEED_USERS;
use serde_json::{json, Value};

use crate::helpers::{
    client_token, issuer_token, production_app, spawn, spawn_on, spawn_with, sqlite_database, user_token, Gql, TestApp,
    SEED,
};

/// `_entities` for these user ids, selecting `fields` on each.
async fn entities(app: &TestApp, token: &str, ids: &[&str], fields: &str) -> Gql {
    let representations: Vec<Value> = ids.iter().map(|id| json!({ "__typename": "User", "id": id })).collect();
    let query = format!("query ($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on User {{ {fields} }} }} }}");
    app.query_vars(token, &query, json!({ "r": representations })).await
}

/// An error without its path and locations: what a denial says, wherever it is.
fn said(error: Option<Value>) -> Value {
    let mut error = error.expect("an error there");
    let object = error.as_object_mut().expect("an object");
    object.remove("path");
    object.remove("locations");
    error
}

#[tokio::test]
async fn entities_resolves_a_user_for_a_token_allowed_to_read_it() {
    let app = spawn().await;
    let own = entities(&app, &user_token(SEED, "uid:read"), &[SEED], "id").await.ok();
    assert_eq!(own.data("_entities"), &json!([{ "id": SEED }]));
    let other = SEED_USERS[2];
    let client = client_token("client.users:read uid:read");
    let both = entities(&app, &client, &[SEED, other], "__typename id").await.ok();
    assert_eq!(
        both.data("_entities"),
        &json!([{ "__typename": "User", "id": SEED }, { "__typename": "User", "id": other }])
    );
}

#[tokio::test]
async fn a_user_token_cannot_read_another_user_through_entities_and_is_told_what_user_id_tells_it() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read contact:read");
    let other = SEED_USERS[2];
    let by_user = app.query(&token, &format!(r#"{{ user(id: "{other}") {{ id }} }}"#)).await;
    assert!(by_user.data("user").is_null());
    let answer = entities(&app, &token, &[other, SEED, other, "no-such-user"], "id emails { address }").await;
    // Each representation answers for itself: the own user arrives, every other one is null with the denial.
    assert_eq!(answer.data("_entities.1.id"), SEED);
    for at in [0, 2, 3] {
        assert!(answer.data(&format!("_entities.{at}")).is_null(), "{:#}", answer.body);
        assert_eq!(
            said(answer.error_at(&format!("_entities.{at}"))),
            said(by_user.error_at("user")),
            "the same denial, whether or not the user exists"
        );
    }
    assert_eq!(answer.errors().len(), 3, "one error per denied representation: {:#}", answer.body);
}

#[tokio::test]
async fn field_scopes_apply_under_entities_as_under_user() {
    let app = spawn().await;
    let without = user_token(SEED, "uid:read");
    let by_user = app.query(&without, &format!(r#"{{ user(id: "{SEED}") {{ id emails {{ address }} }} }}"#)).await;
    let answer = entities(&app, &without, &[SEED], "id emails { address }").await;
    assert_eq!(answer.data("_entities.0.id"), SEED);
    assert!(answer.data("_entities.0.emails").is_null(), "{:#}", answer.body);
    let denial = said(answer.error_at("_entities.0.emails"));
    assert_eq!(
        denial["extensions"],
        json!({ "code": "UNAUTHORIZED_FIELD_OR_TYPE", "requiredScopes": [["contact:read"]] })
    );
    assert_eq!(denial, said(by_user.error_at("user.emails")));

    let with = user_token(SEED, "uid:read contact:read");
    let answer = entities(&app, &with, &[SEED], "emails { address }").await.ok();
    assert_eq!(answer.data("_entities.0.emails.0.address"), "david.muller@example.com");
}

#[tokio::test]
async fn an_unknown_id_is_null_without_an_error_through_entities_as_through_user() {
    let app = spawn().await;
    let client = client_token("client.users:read uid:read");
    let answer = entities(&app, &client, &["no-such-user", SEED], "id").await.ok();
    assert_eq!(answer.data("_entities"), &json!([null, { "id": SEED }]));
}

#[tokio::test]
async fn entities_takes_no_more_representations_than_users_takes_ids() {
    let app = spawn_with(|c| c.max_user_ids = 2).await;
    let client = client_token("client.users:read uid:read");
    let answer = entities(&app, &client, &[SEED, SEED, SEED], "id").await;
    assert_eq!(answer.codes(), ["BAD_USER_INPUT"], "{:#}", answer.body);
    let users = app.query(&client, &format!(r#"{{ users(ids: ["{SEED}", "{SEED}", "{SEED}"]) {{ id }} }}"#)).await;
    assert_eq!(users.codes(), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn the_cost_of_entities_counts_its_representations_as_users_counts_its_ids() {
    // Each representation, like each id, multiplies what is selected under it: 1 + 12 x 1 = 13 over a bound of 10.
    let app = spawn_with(|c| c.limits.max_cost = 10).await;
    let client = client_token("client.users:read uid:read");
    let before = app.sandbox().requests();
    let twelve = vec![SEED; 12];
    let answer = entities(&app, &client, &twelve, "id").await;
    assert_eq!(answer.codes(), ["COST_LIMIT_EXCEEDED"], "{:#}", answer.body);
    assert_eq!(answer.body["errors"][0]["extensions"]["cost"], 13, "{:#}", answer.body);
    let ids = serde_json::to_string(&twelve).expect("json");
    let users = app.query(&client, &format!("{{ users(ids: {ids}) {{ id }} }}")).await;
    assert_eq!(users.body["errors"][0]["extensions"], answer.body["errors"][0]["extensions"]);
    assert_eq!(app.sandbox().requests(), before, "nothing ran");
    let nine = entities(&app, &client, &[SEED; 9], "id").await.ok();
    assert_eq!(nine.data("_entities.8.id"), SEED);
}

#[tokio::test]
async fn a_read_through_entities_is_in_the_audit_trail_like_any_query() {
    let app = spawn().await;
    let other = SEED_USERS[2];
    let staff = client_token("client.users:read uid:read contact:read");
    // Aliases change nothing in the record: it holds the path of field names.
    let query = format!(
        r#"{{ found: _entities(representations: [{{__typename: "User", id: "{SEED}"}}, {{__typename: "User", id: "{other}"}}]) {{ ... on User {{ mail: emails {{ address }} }} }} }}"#
    );
    app.query(&staff, &query).await.ok();
    let trail = app
        .query(
            &client_token("audit:read"),
            &format!(r#"{{ auditEvents(userId: "{SEED}") {{ edges {{ node {{ caller subjects fields {{ path outcome subjects }} }} }} }} }}"#),
        )
        .await
        .ok();
    let event = trail.data("auditEvents.edges.0.node");
    let mut both = vec![SEED, other];
    both.sort();
    assert_eq!(event["caller"], "test-client");
    assert_eq!(event["subjects"], json!(both));
    assert_eq!(event["fields"], json!([{ "path": "_entities.emails", "outcome": "RETURNED", "subjects": both }]));
    // Each person's access log shows the read of their own fields (and the seed person's, the read of their trail).
    for (user, newest) in [(SEED, Some("auditEvents")), (other, None)] {
        let log = app.query(&user_token(user, "uid:read"), "{ me { accessLog { edges { node { fields } } } } }").await;
        let read = json!({ "node": { "fields": ["_entities.emails"] } });
        let expected = match newest {
            Some(field) => json!([{ "node": { "fields": [field] } }, read]),
            None => json!([read]),
        };
        assert_eq!(log.ok().data("me.accessLog.edges"), &expected);
    }
}

#[tokio::test]
async fn each_representation_is_answered_at_its_own_position_even_when_repeated() {
    let app = spawn().await;
    let other = SEED_USERS[2];
    let client = client_token("client.users:read uid:read");
    let answer = entities(&app, &client, &[other, SEED, other], "id emails { address }").await;
    for (at, id) in [(0, other), (1, SEED), (2, other)] {
        assert_eq!(answer.data(&format!("_entities.{at}.id")), id, "{:#}", answer.body);
        // Without contact:read: a denial at this position's path, none without one.
        let error = answer.error_at(&format!("_entities.{at}.emails")).expect("a denial at its position");
        assert_eq!(error["extensions"]["requiredScopes"], json!([["contact:read"]]));
    }
    assert_eq!(answer.errors().len(), 3, "{:#}", answer.body);
}

#[tokio::test]
async fn strict_audit_mode_withholds_what_entities_read_when_the_trail_cannot_record_it() {
    let db = sqlite_database();
    let app = spawn_on(&db, |_| {}).await;
    crate::audit::refuse_records(&app, &db).await;
    let other = SEED_USERS[2];
    let staff = client_token("client.users:read uid:read contact:read");
    let answer = entities(&app, &staff, &[SEED, other, SEED], "id emails { address }").await;
    for at in 0..3 {
        assert!(answer.data(&format!("_entities.{at}.id")).is_string(), "{:#}", answer.body);
        assert!(answer.data(&format!("_entities.{at}.emails")).is_null(), "withheld at {at}: {:#}", answer.body);
        let error = answer.error_at(&format!("_entities.{at}.emails")).expect("withheld with an error");
        assert_eq!(error["extensions"]["code"], "AUDIT_UNAVAILABLE");
    }
    assert!(!answer.body.to_string().contains("@example.com"), "{:#}", answer.body);
}

#[tokio::test]
async fn service_sdl_is_the_checked_in_schema() {
    let app = spawn().await;
    let answer = app.query(&user_token(SEED, "uid:read"), "{ _service { sdl } }").await.ok();
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql");
    let served = answer.data("_service.sdl").as_str().expect("the SDL");
    assert!(served == checked_in, "`_service.sdl` differs from schema.graphql");
    assert!(served.contains(r#"type User @key(fields: "id") {"#));
    assert!(served.contains(r#"id: ID @requiresScopes(scopes: [["uid:read"]])"#));
}

#[tokio::test]
async fn service_is_refused_where_introspection_is_off() {
    let sandbox = spawn().await;
    let app = production_app(&sandbox, &[SEED], |_| {}).await;
    let answer = app.query(&issuer_token(SEED, "uid:read", false), "{ _service { sdl } }").await;
    assert!(answer.data("_service").is_null(), "{:#}", answer.body);
    assert_eq!(answer.codes(), ["GRAPHQL_VALIDATION_FAILED"]);
    assert!(!answer.body.to_string().contains("requiresScopes"), "no SDL in the answer");
}
