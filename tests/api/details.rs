//! The details rule, field by field from the one details table: a token with exactly one matching details scope sees
//! a field, a token with every other details scope of the case does not.

use kyc_gateway::authz::{details_scope, verification_scope};
use kyc_gateway::domain::details::DETAIL_FIELDS;
use kyc_gateway::domain::level_items;

use crate::helpers::{assert_denied, client_token, spawn, user_token, SEED};

#[tokio::test]
async fn every_details_field_is_visible_with_one_matching_details_scope_and_denied_without() {
    let app = spawn().await;
    let pop = app.sandbox().fractal().population();
    let mut checked = 0;
    for field in DETAIL_FIELDS {
        for &item in field.items {
            // A case that includes `item` and holds a value for the field.
            let (user, case) = pop
                .users
                .iter()
                .flat_map(|u| u.cases.iter().map(move |c| (u, c)))
                .find(|(_, c)| {
                    c.items().iter().any(|i| i == item)
                        && c.wire.details.as_ref().is_some_and(|d| d.contains_key(field.name))
                })
                .unwrap_or_else(|| panic!("the sandbox has no {item} case with {}", field.name));
            let items = level_items(&case.wire.level);
            let reads: Vec<String> = items.iter().map(|i| verification_scope(i)).collect();
            let case_id = case.wire.id.clone().expect("sandbox cases have ids");
            let query = format!(
                r#"{{ user(id: "{}") {{ verificationCases {{ id details {{ {} }} }} }} }}"#,
                user.uid,
                field.graphql_name()
            );
            let find_case = |answer: &crate::helpers::Gql| {
                let cases = answer.data("user.verificationCases").as_array().expect("cases").clone();
                cases.iter().position(|c| c["id"] == case_id.as_str()).expect("the case is visible")
            };

            let allowed = format!("client.users:read {} {}", reads.join(" "), details_scope(item));
            let answer = app.query(&client_token(&allowed), &query).await;
            let index = find_case(&answer);
            let expected = &case.wire.details.as_ref().expect("details")[field.name];
            assert_eq!(
                answer.data(&format!("user.verificationCases.{index}.details.{}", field.graphql_name())),
                expected,
                "{} with {}",
                field.name,
                details_scope(item)
            );

            // Every details scope of the case except those the field belongs to.
            let others: Vec<String> =
                items.iter().filter(|i| !field.items.contains(&i.as_str())).map(|i| details_scope(i)).collect();
            let denied = format!("client.users:read {} {}", reads.join(" "), others.join(" "));
            let answer = app.query(&client_token(&denied), &query).await;
            let index = find_case(&answer);
            let path = format!("user.verificationCases.{index}.details.{}", field.graphql_name());
            assert!(answer.data(&path).is_null(), "{} leaked without {}", field.name, details_scope(item));
            assert_denied(answer.error_at(&path), &details_scope(item));
            checked += 1;
        }
    }
    assert!(checked >= DETAIL_FIELDS.len(), "every field with every item it belongs to");
}

#[tokio::test]
async fn the_seed_person_sees_plus_details_but_not_the_selfie_file_on_the_plus_case() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read contact:read verification.plus:read verification.plus.details:read");
    let q = "{ me { id emails { address } verificationCases { level credential details { fullName dateOfBirth identificationDocumentSelfieFile } } } }";
    let answer = app.query(&token, q).await;
    assert_eq!(answer.data("me.id"), SEED);
    assert_eq!(answer.data("me.emails.0.address"), "david.muller@example.com");
    assert_eq!(answer.data("me.verificationCases").as_array().expect("list").len(), 1);
    assert_eq!(answer.data("me.verificationCases.0.level"), "plus");
    assert_eq!(answer.data("me.verificationCases.0.credential"), "APPROVED");
    assert_eq!(answer.data("me.verificationCases.0.details.fullName"), "David Muller");
    assert_eq!(answer.data("me.verificationCases.0.details.dateOfBirth"), "1967-08-16");
    let path = "me.verificationCases.0.details.identificationDocumentSelfieFile";
    assert!(answer.data(path).is_null());
    assert_denied(answer.error_at(path), "verification.selfie.details:read");
    assert_eq!(answer.errors().len(), 1);
}

#[tokio::test]
async fn on_a_multi_item_case_each_field_follows_its_own_items() {
    let app = spawn().await;
    let pop = app.sandbox().fractal().population();
    let (user, case) = pop
        .users
        .iter()
        .flat_map(|u| u.cases.iter().map(move |c| (u, c)))
        .find(|(_, c)| {
            let items = c.items();
            items.contains(&"plus".to_string())
                && items.contains(&"selfie".to_string())
                && c.wire.details.as_ref().is_some_and(|d| d.contains_key("identification_document_selfie_file"))
        })
        .expect("a plus+selfie case with details");
    let reads: Vec<String> = case.items().iter().map(|i| verification_scope(i)).collect();
    let token = client_token(&format!("client.users:read {} verification.plus.details:read", reads.join(" ")));
    let q = format!(
        r#"{{ user(id: "{}") {{ verificationCases(level: "{}") {{ details {{ fullName identificationDocumentSelfieFile identificationDocumentFrontFile }} }} }} }}"#,
        user.uid, case.wire.level
    );
    let answer = app.query(&token, &q).await;
    let details = case.wire.details.as_ref().expect("details");
    assert_eq!(answer.data("user.verificationCases.0.details.fullName"), &details["full_name"]);
    assert_denied(
        answer.error_at("user.verificationCases.0.details.identificationDocumentSelfieFile"),
        "verification.selfie.details:read",
    );
    // The front file belongs to selfie and basic; on a plus+selfie case only selfie can unlock it.
    let front = answer.error_at("user.verificationCases.0.details.identificationDocumentFrontFile").expect("denied");
    assert_eq!(front["extensions"]["requiredScopes"], serde_json::json!([["verification.selfie.details:read"]]));
}

#[tokio::test]
async fn a_case_without_details_has_null_details_and_no_error() {
    let app = spawn().await;
    let token = user_token(SEED, "verification.basic:read verification.liveness:read verification.basic.details:read");
    let answer = app.query(&token, "{ me { verificationCases { level details { fullName } } } }").await.ok();
    assert_eq!(answer.data("me.verificationCases.0.level"), "basic+liveness");
    assert!(answer.data("me.verificationCases.0.details").is_null());
}
