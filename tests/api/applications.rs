//! KYC applications (ident): reading, paging, field scopes, creating, and settling status through the transition
//! table.

use kyc_gateway::sandbox::ident::population::{JANICE_WAY, JOHN_SMITH, SEED_USERS, TIM_EVANS};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::helpers::{assert_denied, client_token, issuer_token, production_app_with, spawn, user_token};

const READ: &str = "client.users:read kyc_application:read";

#[tokio::test]
async fn applications_need_kyc_application_read() {
    let app = spawn().await;
    let answer = app.query(&client_token("client.users:read"), "{ kycApplications { totalCount } }").await;
    assert!(answer.data("kycApplications").is_null());
    assert_denied(answer.error_at("kycApplications"), "kyc_application:read");
    assert_eq!(app.sandbox().ident().counts().get("list"), 0);
}

#[tokio::test]
async fn a_client_pages_through_every_application_newest_first_with_any_page_size() {
    let app = spawn().await;
    let mut expected = app.sandbox().ident().records();
    let at = |r: &kyc_gateway::sandbox::ident::wire::KycApplicationWire| {
        OffsetDateTime::parse(&r.created_at, &Rfc3339).expect("time").unix_timestamp()
    };
    expected.sort_by_key(|r| std::cmp::Reverse(at(r)));
    let q = "query($first: Int, $after: String) { kycApplications(first: $first, after: $after) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
    let token = client_token(READ);
    let (mut ids, mut after, mut sizes) = (Vec::new(), Value::Null, [5, 7, 3].iter().cycle());
    for _ in 0..200 {
        let first = *sizes.next().expect("cycle");
        let answer = app.query_vars(&token, q, json!({ "first": first, "after": after })).await.ok();
        let page = answer.data("kycApplications").clone();
        assert_eq!(page["totalCount"], expected.len());
        ids.extend(
            page["edges"].as_array().expect("edges").iter().map(|e| e["node"]["id"].as_str().expect("id").to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let expected_ids: Vec<String> = expected.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, expected_ids, "every application once, in ident's order, across unaligned windows");
    let empty = app
        .query(&token, "{ kycApplications(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage } } }")
        .await
        .ok();
    assert_eq!(empty.data("kycApplications.totalCount"), expected.len());
    assert_eq!(empty.data("kycApplications.edges"), &json!([]));
    assert_eq!(empty.data("kycApplications.pageInfo.hasNextPage"), true);
}

#[tokio::test]
async fn a_kyb_applications_params_need_the_plus_details_scope() {
    let app = spawn().await;
    let kyb = app.sandbox().ident().records().into_iter().find(|r| r.kind == "kyb").expect("a kyb application");
    let q = format!(r#"{{ kycApplication(id: "{}") {{ type params }} }}"#, kyb.id);
    let basic = app.query(&client_token(&format!("{READ} verification.basic.details:read")), &q).await;
    assert_eq!(basic.data("kycApplication.type"), "KYB");
    assert_denied(basic.error_at("kycApplication.params"), "verification.plus.details:read");
    let plus = app.query(&client_token(&format!("{READ} verification.plus.details:read")), &q).await.ok();
    assert!(plus.data("kycApplication.params").is_object());
}

#[tokio::test]
async fn a_directory_mapping_of_ident_ids_is_followed_both_ways_and_shadows_the_default() {
    let sandbox = spawn().await;
    let john = SEED_USERS[1];
    let entries = vec![json!({ "user_id": "gw-john", "ident_user_id": john }), json!({ "user_id": john })];
    let app = production_app_with(&sandbox, entries, |_| {}).await;
    let q = "{ kycApplications { totalCount } me { kycApplications { id user { id } } } }";
    let mapped = app.query(&issuer_token("gw-john", "kyc_application:read uid:read", false), q).await.ok();
    assert_eq!(mapped.data("kycApplications.totalCount"), 2);
    assert_eq!(mapped.data("me.kycApplications.0.user.id"), "gw-john", "ident's user id maps back to the gateway's");
    let one = format!(r#"{{ kycApplication(id: "{JOHN_SMITH}") {{ id }} }}"#);
    let own = app.query(&issuer_token("gw-john", "kyc_application:read", false), &one).await.ok();
    assert_eq!(own.data("kycApplication.id"), JOHN_SMITH);
    // A user whose own id is John's ident id does not see John's applications: that id belongs to gw-john.
    let squatter = issuer_token(john, "kyc_application:read", false);
    let answer = app.query(&squatter, q).await.ok();
    assert_eq!(answer.data("kycApplications.totalCount"), 0);
    assert_eq!(answer.data("me.kycApplications"), &json!([]));
    assert!(app.query(&squatter, &one).await.ok().data("kycApplication").is_null());
}

#[tokio::test]
async fn dot_segment_ids_never_reach_ident() {
    let app = spawn().await;
    let before = app.sandbox().ident().counts();
    for id in ["..", ".", ""] {
        if !id.is_empty() {
            let q = "{ kycApplications { totalCount } me { kycApplications { id } } }";
            let answer = app.query(&user_token(id, "kyc_application:read"), q).await.ok();
            assert_eq!(answer.data("kycApplications.totalCount"), 0, "{id:?}");
        }
        let staff = app.query(&client_token(READ), &format!(r#"{{ kycApplication(id: "{id}") {{ id }} }}"#)).await.ok();
        assert!(staff.data("kycApplication").is_null());
    }
    assert_eq!(app.sandbox().ident().counts(), before, "nothing was asked upstream");
}

#[tokio::test]
async fn applications_filter_by_status() {
    let app = spawn().await;
    let q = "{ kycApplications(status: REMEDIATE, first: 100) { totalCount edges { node { id status state } } } }";
    let answer = app.query(&client_token(READ), q).await.ok();
    let nodes: Vec<Value> =
        answer.data("kycApplications.edges").as_array().expect("edges").iter().map(|e| e["node"].clone()).collect();
    assert!(nodes.iter().all(|n| n["status"] == "REMEDIATE" && n["state"] == "ACTION_REQUIRED"));
    assert!(nodes.iter().any(|n| n["id"] == JOHN_SMITH));
    let expected = app.sandbox().ident().records().iter().filter(|r| r.status == "remediate").count();
    assert_eq!(answer.data("kycApplications.totalCount"), expected);
}

#[tokio::test]
async fn a_user_token_sees_only_its_own_applications() {
    let app = spawn().await;
    let john = SEED_USERS[1];
    let token = user_token(john, "kyc_application:read");
    let answer = app
        .query(&token, "{ kycApplications { totalCount edges { node { id } } } me { kycApplications { id } } }")
        .await
        .ok();
    assert_eq!(answer.data("kycApplications.totalCount"), 2);
    assert_eq!(answer.data("me.kycApplications").as_array().expect("list").len(), 2);
    let own = app.query(&token, &format!(r#"{{ kycApplication(id: "{JOHN_SMITH}") {{ id }} }}"#)).await.ok();
    assert_eq!(own.data("kycApplication.id"), JOHN_SMITH);
    let other = app.query(&token, &format!(r#"{{ kycApplication(id: "{TIM_EVANS}") {{ id }} }}"#)).await.ok();
    let missing =
        app.query(&token, r#"{ kycApplication(id: "00000000-0000-4000-8000-000000000000") { id } }"#).await.ok();
    assert!(other.data("kycApplication").is_null());
    assert_eq!(other.body, missing.body, "another user's application looks like a missing one");
}

#[tokio::test]
async fn personal_and_internal_fields_of_an_application_need_their_scopes() {
    let app = spawn().await;
    let q = format!(
        r#"{{ kycApplication(id: "{JANICE_WAY}") {{ status name params providerRepresentation user {{ id }} }} }}"#
    );
    let bare = app.query(&client_token(READ), &q).await;
    assert_eq!(bare.data("kycApplication.status"), "SUBMITTED");
    assert_denied(bare.error_at("kycApplication.name"), "verification.basic.details:read");
    assert_denied(bare.error_at("kycApplication.params"), "verification.basic.details:read");
    assert_denied(bare.error_at("kycApplication.providerRepresentation"), "review.internal:read");
    let full = app
        .query(&client_token(&format!("{READ} uid:read verification.basic.details:read review.internal:read")), &q)
        .await
        .ok();
    assert!(full.data("kycApplication.name").is_null(), "ident's documented record of Janice Way has no name");
    assert_eq!(full.data("kycApplication.params.params.first_name"), "Janice");
    assert_eq!(full.data("kycApplication.providerRepresentation.errors.2.type"), "FaceMatchError");
    assert_eq!(full.data("kycApplication.user.id"), SEED_USERS[3]);
    let tim = app
        .query(
            &client_token(&format!("{READ} review.internal:read")),
            &format!(r#"{{ kycApplication(id: "{TIM_EVANS}") {{ state description }} }}"#),
        )
        .await
        .ok();
    assert_eq!(tim.data("kycApplication.state"), "ERROR");
    let john = format!(r#"{{ kycApplication(id: "{JOHN_SMITH}") {{ name }} }}"#);
    let named = app.query(&client_token(&format!("{READ} verification.basic.details:read")), &john).await.ok();
    assert_eq!(named.data("kycApplication.name"), "John Smith");
    assert!(tim.data("kycApplication.description").as_str().expect("text").contains("Social Security"));
}

#[tokio::test]
async fn a_listed_application_fetches_its_provider_representation_only_when_asked() {
    let app = spawn().await;
    let token = client_token(&format!("{READ} review.internal:read"));
    let before = app.sandbox().ident().counts().get("get");
    app.query(&token, "{ kycApplications(status: SUBMITTED, first: 3) { edges { node { id } } } }").await.ok();
    assert_eq!(app.sandbox().ident().counts().get("get"), before);
    let answer = app
        .query(
            &token,
            "{ kycApplications(status: SUBMITTED, first: 100) { edges { node { id providerRepresentation } } } }",
        )
        .await
        .ok();
    let janice = answer
        .data("kycApplications.edges")
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["node"]["id"] == JANICE_WAY)
        .cloned()
        .expect("Janice");
    assert_eq!(janice["node"]["providerRepresentation"]["id"], "hDj_HOv");
}

const CREATE: &str = "mutation($input: CreateKycApplicationInput!) { createKycApplication(input: $input) { id status state provider type } }";

#[tokio::test]
async fn a_user_creates_its_own_application() {
    let app = spawn().await;
    let user = &app.sandbox().users()[3];
    let token = user_token(user, "kyc_application:write kyc_application:read");
    let input = json!({ "params": { "firstName": "Ada", "lastName": "Lovelace", "dateOfBirth": "1990-12-10", "email": "ada@example.com" } });
    let answer = app.query_vars(&token, CREATE, json!({ "input": input })).await.ok();
    assert_eq!(answer.data("createKycApplication.status"), "PENDING");
    assert_eq!(answer.data("createKycApplication.provider"), "vouched");
    assert_eq!(answer.data("createKycApplication.type"), "KYC");
    let created = app
        .sandbox()
        .ident()
        .records()
        .into_iter()
        .find(|r| r.id == answer.data("createKycApplication.id").as_str().expect("id"))
        .expect("stored");
    assert_eq!(created.user_id.as_deref(), Some(user.as_str()));
    assert_eq!(created.params.expect("params")["date_of_birth"], "1990-12-10");
}

#[tokio::test]
async fn invalid_input_is_refused_field_by_field_and_nothing_is_sent() {
    let app = spawn().await;
    let token = client_token("client.users:read kyc_application:write");
    let input = json!({ "provider": "acme", "type": "kyx", "params": { "dateOfBirth": "1990-13-01", "email": "nope", "ssn": "12", "webhookUrl": "http://x" } });
    let answer = app.query_vars(&token, CREATE, json!({ "input": input })).await;
    assert_eq!(answer.codes(), ["BAD_USER_INPUT"]);
    let fields: Vec<String> = answer.errors()[0]["extensions"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].as_str().expect("field").to_owned())
        .collect();
    assert_eq!(
        fields,
        ["userId", "provider", "type", "params.dateOfBirth", "params.email", "params.ssn", "params.webhookUrl"]
    );
    assert!(!answer.errors()[0]["message"].as_str().expect("message").contains("nope"), "values are not echoed");
    assert_eq!(app.sandbox().ident().counts().get("create"), 0);
}

#[tokio::test]
async fn creating_for_another_user_needs_users_read_and_writing_needs_the_write_scope() {
    let app = spawn().await;
    let (me, other) = (&app.sandbox().users()[3], &app.sandbox().users()[4]);
    let input = json!({ "userId": other });
    let answer = app.query_vars(&user_token(me, "kyc_application:write"), CREATE, json!({ "input": input })).await;
    assert_denied(answer.error_at("createKycApplication"), "client.users:read");
    let answer = app.query_vars(&user_token(me, "kyc_application:read"), CREATE, json!({ "input": {} })).await;
    assert_denied(answer.error_at("createKycApplication"), "kyc_application:write");
    assert_eq!(app.sandbox().ident().counts().get("create"), 0);
}

const UPDATE: &str = "mutation($id: ID!, $status: KycApplicationStatus!) { updateKycApplicationStatus(id: $id, status: $status) { id status state } }";
const STAFF: &str = "client.users:read kyc_application:write";

#[tokio::test]
async fn settling_john_smiths_remediation_accepts_his_application() {
    let app = spawn().await;
    let answer =
        app.query_vars(&client_token(STAFF), UPDATE, json!({ "id": JOHN_SMITH, "status": "ACCEPTED" })).await.ok();
    assert_eq!(answer.data("updateKycApplicationStatus.status"), "ACCEPTED");
    assert_eq!(answer.data("updateKycApplicationStatus.state"), "APPROVED");
    let stored = app.sandbox().ident().records().into_iter().find(|r| r.id == JOHN_SMITH).expect("stored");
    assert_eq!(stored.status, "accepted");
    assert_eq!(app.sandbox().ident().counts().get("put"), 1);
}

#[tokio::test]
async fn an_invalid_transition_names_the_allowed_states_and_sends_no_put() {
    let app = spawn().await;
    let pending =
        app.sandbox().ident().records().into_iter().find(|r| r.status == "pending").expect("a pending application");
    let answer = app.query_vars(&client_token(STAFF), UPDATE, json!({ "id": pending.id, "status": "ACCEPTED" })).await;
    assert_eq!(answer.codes(), ["INVALID_TRANSITION"]);
    let error = &answer.errors()[0];
    assert_eq!(error["extensions"]["allowed"], json!(["SUBMITTED", "FAILED"]));
    assert_eq!(error["extensions"]["from"], "PENDING");
    assert!(error["message"].as_str().expect("message").contains("submitted or failed"));
    assert_eq!(app.sandbox().ident().counts().get("put"), 0, "nothing was sent upstream");
    let stored = app.sandbox().ident().records().into_iter().find(|r| r.id == pending.id).expect("stored");
    assert_eq!(stored.status, "pending", "nothing changed");
}

#[tokio::test]
async fn updates_need_staff_scopes_and_an_existing_application() {
    let app = spawn().await;
    let john = SEED_USERS[1];
    let own = app
        .query_vars(
            &user_token(john, "kyc_application:write"),
            UPDATE,
            json!({ "id": JOHN_SMITH, "status": "ACCEPTED" }),
        )
        .await;
    assert_denied(own.error_at("updateKycApplicationStatus"), "client.users:read");
    let missing = app
        .query_vars(
            &client_token(STAFF),
            UPDATE,
            json!({ "id": "00000000-0000-4000-8000-000000000000", "status": "ACCEPTED" }),
        )
        .await;
    assert_eq!(missing.codes(), ["NOT_FOUND"]);
    assert_eq!(app.sandbox().ident().counts().get("put"), 0);
}

#[tokio::test]
async fn a_status_update_is_visible_at_once_despite_the_cache() {
    let app = spawn().await;
    let john = SEED_USERS[1];
    let read = format!(r#"{{ user(id: "{john}") {{ kycApplications {{ id status }} }} }}"#);
    let token = client_token(&format!("{READ} kyc_application:write"));
    let status_of = |answer: &crate::helpers::Gql| {
        answer
            .data("user.kycApplications")
            .as_array()
            .expect("list")
            .iter()
            .find(|a| a["id"] == JOHN_SMITH)
            .map(|a| a["status"].clone())
    };
    assert_eq!(status_of(&app.query(&token, &read).await.ok()), Some(json!("REMEDIATE")), "now cached");
    app.query_vars(&token, UPDATE, json!({ "id": JOHN_SMITH, "status": "ACCEPTED" })).await.ok();
    assert_eq!(status_of(&app.query(&token, &read).await.ok()), Some(json!("ACCEPTED")), "the write invalidated it");
}
