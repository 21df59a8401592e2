//! Every provider behind one User: the federated answer, the scope rules on each provider's fields, aggregation,
//! and each client's error mapping.

use kyc_gateway::sandbox::ident::population::SEED_USERS;
use kyc_gateway::sandbox::sumsub::population::UNKNOWN_LABEL;
use serde_json::{json, Value};

use crate::helpers::{
    assert_denied, client_token, issuer_token, production_app, providers, spawn, spawn_with, user_token, ALL_ITEMS,
    SEED,
};

#[tokio::test]
async fn one_query_answers_cases_from_fractal_sumsub_and_sila_and_applications_from_ident() {
    let app = spawn().await;
    let token = client_token(&format!("client.users:read kyc_application:read {ALL_ITEMS}"));
    let q = format!(
        r#"{{ user(id: "{SEED}") {{ verificationCases {{ provider level state providerStatus review {{ answer rejectLabels {{ code final }} }} }} kycApplications {{ status state }} kycState(level: "basic") }} }}"#
    );
    let answer = app.query(&token, &q).await.ok();
    assert_eq!(providers(answer.data("user.verificationCases")), ["FRACTAL", "SUMSUB", "SILA", "VERIFF"]);
    let cases = answer.data("user.verificationCases").as_array().expect("cases").clone();
    let sumsub = cases.iter().find(|c| c["provider"] == "SUMSUB").expect("a Sumsub case");
    assert_eq!(sumsub["state"], "REJECTED");
    assert_eq!(sumsub["review"]["answer"], "RED");
    let labels = &sumsub["review"]["rejectLabels"];
    assert_eq!(labels[2], json!({ "code": "FORGERY", "final": true }));
    assert_eq!(labels[0], json!({ "code": "UNSATISFACTORY_PHOTOS", "final": false }));
    let sila = cases.iter().find(|c| c["provider"] == "SILA").expect("a Sila case");
    assert_eq!((sila["state"].clone(), sila["providerStatus"].clone()), (json!("APPROVED"), json!("passed")));
    assert_eq!(answer.data("user.kycApplications.0.state"), "PENDING");
    assert_eq!(answer.data("user.kycState"), "APPROVED", "Fractal and Sila approved basic");
}

#[tokio::test]
async fn a_sumsub_case_needs_the_read_scope_of_every_item_its_level_maps_to() {
    let app = spawn().await;
    let q = "{ me { verificationCases(provider: SUMSUB) { level levelItems } } }";
    let partial = app.query(&user_token(SEED, "verification.basic:read verification.selfie:read"), q).await.ok();
    assert_eq!(partial.data("me.verificationCases"), &json!([]));
    let full = app
        .query(&user_token(SEED, "verification.basic:read verification.selfie:read verification.liveness:read"), q)
        .await
        .ok();
    assert_eq!(full.data("me.verificationCases.0.levelItems"), &json!(["basic", "selfie", "liveness"]));
}

#[tokio::test]
async fn sumsub_info_fills_the_same_details_fields_under_the_same_rule() {
    let app = spawn().await;
    let reads = "verification.basic:read verification.selfie:read verification.liveness:read";
    let q = "{ me { verificationCases(provider: SUMSUB) { details { fullName dateOfBirth identificationDocumentNumber identificationDocumentCountry } } } }";
    let allowed = app.query(&user_token(SEED, &format!("{reads} verification.basic.details:read")), q).await.ok();
    assert_eq!(allowed.data("me.verificationCases.0.details.fullName"), "David Muller");
    assert_eq!(allowed.data("me.verificationCases.0.details.identificationDocumentNumber"), "123456789");
    assert_eq!(allowed.data("me.verificationCases.0.details.identificationDocumentCountry"), "DE");
    let denied = app.query(&user_token(SEED, &format!("{reads} verification.liveness.details:read")), q).await;
    assert!(denied.data("me.verificationCases.0.details.fullName").is_null());
    assert_denied(denied.error_at("me.verificationCases.0.details.fullName"), "verification.basic.details:read");
    // The document type belongs to `plus` alone in the documentation's table: a `basic` case never shows it.
    let plus_only = "{ me { verificationCases(provider: SUMSUB) { details { identificationDocumentType } } } }";
    let answer = app
        .query(
            &user_token(SEED, &format!("{reads} verification.basic.details:read verification.plus.details:read")),
            plus_only,
        )
        .await;
    assert_denied(
        answer.error_at("me.verificationCases.0.details.identificationDocumentType"),
        "verification.plus.details:read",
    );
}

#[tokio::test]
async fn the_client_comment_needs_review_internal_read_and_the_moderation_comment_does_not() {
    let app = spawn().await;
    let reads = "verification.basic:read verification.selfie:read verification.liveness:read";
    let q = "{ me { verificationCases(provider: SUMSUB) { retryable review { rejectType moderationComment clientComment } } } }";
    let applicant = app.query(&user_token(SEED, reads), q).await;
    let path = "me.verificationCases.0.review.clientComment";
    assert!(applicant.data(path).is_null());
    assert_denied(applicant.error_at(path), "review.internal:read");
    assert!(applicant
        .data("me.verificationCases.0.review.moderationComment")
        .as_str()
        .expect("shown")
        .starts_with("We could not verify"));
    assert_eq!(applicant.data("me.verificationCases.0.review.rejectType"), "FINAL");
    assert_eq!(applicant.data("me.verificationCases.0.retryable"), false);
    let staff = app.query(&user_token(SEED, &format!("{reads} review.internal:read")), q).await.ok();
    assert_eq!(staff.data(path), " Suspected fraudulent account.");
}

#[tokio::test]
async fn a_label_unknown_to_seed_003_passes_through_without_a_description() {
    let app = spawn().await;
    let sumsub = &app.sandbox().sumsub();
    let owner = app
        .sandbox()
        .users()
        .iter()
        .filter_map(|u| sumsub.applicant_of(u))
        .find(|a| {
            a.review
                .as_ref()
                .and_then(|r| r.review_result.as_ref())
                .is_some_and(|r| r.reject_labels.iter().any(|l| l == UNKNOWN_LABEL))
        })
        .and_then(|a| a.external_user_id.clone())
        .expect("an applicant with an unknown label");
    let token = client_token("client.users:read verification.basic:read verification.selfie:read verification.liveness:read verification.plus:read");
    let q = format!(
        r#"{{ user(id: "{owner}") {{ verificationCases(provider: SUMSUB) {{ retryable review {{ rejectType rejectLabels {{ code description final }} }} }} }} }}"#
    );
    let answer = app.query(&token, &q).await.ok();
    let labels = answer.data("user.verificationCases.0.review.rejectLabels").as_array().expect("labels").clone();
    let unknown = labels.iter().find(|l| l["code"] == UNKNOWN_LABEL).expect("passed through");
    assert!(unknown["description"].is_null() && unknown["final"].is_null());
    assert!(labels.iter().any(|l| l["description"].is_string() && l["final"] == false));
    assert_eq!(answer.data("user.verificationCases.0.review.rejectType"), "RETRY");
    assert_eq!(answer.data("user.verificationCases.0.retryable"), true);
}

#[tokio::test]
async fn sila_reason_tags_need_review_internal_read() {
    let app = spawn().await;
    let q = "{ me { verificationCases(provider: SILA) { levelItems reasons } } }";
    let reads = "verification.basic:read verification.ssn:read";
    let before = app.sandbox().sila().counts().get("get_verification");
    let applicant = app.query(&user_token(SEED, reads), q).await;
    assert!(applicant.data("me.verificationCases.0.reasons").is_null());
    assert_denied(applicant.error_at("me.verificationCases.0.reasons"), "review.internal:read");
    assert_eq!(app.sandbox().sila().counts().get("get_verification"), before, "nothing fetched for a denied field");
    let staff = app.query(&user_token(SEED, &format!("{reads} review.internal:read")), q).await.ok();
    let expected = &app.sandbox().sila().entity(SEED).expect("entity").verifications[0].reasons.for_kyc_response;
    assert_eq!(staff.data("me.verificationCases.0.reasons"), &json!(expected));
    assert_eq!(staff.data("me.verificationCases.0.levelItems"), &json!(["basic", "ssn"]));
}

#[tokio::test]
async fn a_sila_case_asking_for_documents_is_retryable() {
    let app = spawn().await;
    let entity = app
        .sandbox()
        .sila()
        .entities()
        .find(|e| e.verifications.len() == 1 && e.verifications[0].verification_status == "documents_required")
        .expect("such an entity")
        .user_handle
        .clone();
    let token = client_token("client.users:read verification.basic:read verification.ssn:read");
    let q = format!(
        r#"{{ user(id: "{entity}") {{ verificationCases(provider: SILA) {{ state retryable providerStatus }} }} }}"#
    );
    let answer = app.query(&token, &q).await.ok();
    assert_eq!(answer.data("user.verificationCases.0.state"), "ACTION_REQUIRED");
    assert_eq!(answer.data("user.verificationCases.0.retryable"), true);
}

#[tokio::test]
async fn kyc_state_counts_an_accepted_ident_application_for_callers_who_may_read_applications() {
    let app = spawn().await;
    let joe = SEED_USERS[2];
    let q = format!(r#"{{ user(id: "{joe}") {{ kycState(level: "basic") }} }}"#);
    let with =
        app.query(&client_token("client.users:read verification.basic:read kyc_application:read"), &q).await.ok();
    assert_eq!(with.data("user.kycState"), "APPROVED");
    let without = app.query(&client_token("client.users:read verification.basic:read"), &q).await.ok();
    assert_eq!(without.data("user.kycState"), "NOT_STARTED");
}

#[tokio::test]
async fn a_user_without_a_sumsub_applicant_or_sila_entity_has_no_cases_there_and_no_error() {
    let app = spawn().await;
    let lonely = &app.sandbox().users()[1];
    assert!(app.sandbox().sumsub().applicant_of(lonely).is_none() && app.sandbox().sila().entity(lonely).is_none());
    let token = client_token(&format!("client.users:read {ALL_ITEMS}"));
    let q = format!(
        r#"{{ user(id: "{lonely}") {{ sumsub: verificationCases(provider: SUMSUB) {{ id }} sila: verificationCases(provider: SILA) {{ id }} }} }}"#
    );
    let answer = app.query(&token, &q).await.ok();
    assert_eq!((answer.data("user.sumsub"), answer.data("user.sila")), (&json!([]), &json!([])));
}

#[tokio::test]
async fn a_provider_refusing_the_gateway_takes_only_its_own_cases_away() {
    let sandbox = spawn().await;
    let app = production_app(&sandbox, &[SEED], |c| {
        c.vars.set("KYC_GATEWAY_SUMSUB_SECRET_KEY", "a-wrong-secret");
    })
    .await;
    let token = issuer_token(SEED, ALL_ITEMS, false);
    let answer = app.query(&token, "{ me { verificationCases { provider } } }").await;
    assert_eq!(providers(answer.data("me.verificationCases")), ["SILA"]);
    let error = answer.error_at("me.verificationCases").expect("the Sumsub error");
    assert_eq!(error["extensions"], json!({ "code": "PROVIDER_UNAUTHORIZED", "provider": "SUMSUB" }));
}

#[tokio::test]
async fn wrong_sila_or_ident_credentials_map_to_provider_unauthorized() {
    let sandbox = spawn().await;
    let app = production_app(&sandbox, &[SEED], |c| {
        c.vars.set("KYC_GATEWAY_SILA_CLIENT_SECRET", "wrong");
        c.vars.set("KYC_GATEWAY_IDENT_TOKEN", "wrong");
    })
    .await;
    let token = issuer_token(SEED, &format!("{ALL_ITEMS} kyc_application:read"), false);
    let answer = app.query(&token, "{ me { verificationCases(provider: SILA) { id } kycApplications { id } } }").await;
    let sila = answer.error_at("me.verificationCases").expect("Sila");
    assert_eq!(sila["extensions"], json!({ "code": "PROVIDER_UNAUTHORIZED", "provider": "SILA" }));
    assert_eq!(answer.error_at("me.kycApplications").expect("ident")["extensions"]["code"], "PROVIDER_UNAUTHORIZED");
    assert!(answer.data("me.kycApplications").is_null());
}

#[tokio::test]
async fn sumsub_rate_limiting_maps_to_provider_rate_limited_with_the_retry_after() {
    // No client-side limit and no retries: the sandbox's 429 reaches the caller.
    let app = spawn_with(|c| {
        c.sandbox.sumsub_get_limit = 1;
        c.vars.set("KYC_GATEWAY_SUMSUB_RATE_LIMIT", "off");
        c.vars.set("KYC_GATEWAY_SUMSUB_RETRIES", "0");
    })
    .await;
    let users = app.sandbox().users();
    let with_applicants: Vec<&String> =
        users.iter().filter(|u| app.sandbox().sumsub().applicant_of(u).is_some()).take(2).collect();
    let token = client_token(&format!("client.users:read {ALL_ITEMS}"));
    let q = format!(
        r#"{{ users(ids: ["{}", "{}"]) {{ verificationCases(provider: SUMSUB) {{ id }} }} }}"#,
        with_applicants[0], with_applicants[1]
    );
    let answer = app.query(&token, &q).await;
    let limited: Vec<Value> =
        answer.errors().into_iter().filter(|e| e["extensions"]["code"] == "PROVIDER_RATE_LIMITED").collect();
    assert_eq!(limited.len(), 1, "{:#}", answer.body);
    assert_eq!(limited[0]["extensions"]["provider"], "SUMSUB");
    assert!(limited[0]["extensions"]["retryAfterSeconds"].as_u64().is_some_and(|s| (1..=5).contains(&s)));
}

#[tokio::test]
async fn an_unreachable_sila_is_provider_unavailable() {
    let sandbox = spawn().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let app = production_app(&sandbox, &[SEED], |c| c.vars.set("KYC_GATEWAY_SILA_BASE_URL", url)).await;
    let answer = app.query(&issuer_token(SEED, ALL_ITEMS, false), "{ me { verificationCases { provider } } }").await;
    assert_eq!(providers(answer.data("me.verificationCases")), ["SUMSUB"]);
    assert_eq!(answer.error_at("me.verificationCases").expect("Sila")["extensions"]["code"], "PROVIDER_UNAVAILABLE");
}

#[tokio::test]
async fn the_sila_bearer_token_is_fetched_once_for_many_users() {
    let app = spawn_with(|c| c.cache.enabled = false).await;
    let token = client_token(&format!("client.users:read {ALL_ITEMS}"));
    for user in app.sandbox().users().iter().step_by(2).take(4) {
        app.query(&token, &format!(r#"{{ user(id: "{user}") {{ verificationCases(provider: SILA) {{ id }} }} }}"#))
            .await
            .ok();
    }
    assert_eq!(app.sandbox().sila().counts().get("auth_token"), 1);
    assert_eq!(app.sandbox().sila().counts().get("get_verifications"), 4);
}

#[tokio::test]
async fn kyc_state_ignores_the_cases_the_caller_cannot_see() {
    let sandbox = spawn().await;
    let app = production_app(&sandbox, &[SEED], |c| {
        crate::helpers::without(c, "SILA");
        crate::helpers::without(c, "IDENT");
    })
    .await;
    let q = r#"{ me { kycState(level: "basic") } }"#;
    let hidden = app.query(&issuer_token(SEED, "verification.basic:read", false), q).await.ok();
    assert_eq!(hidden.data("me.kycState"), "NOT_STARTED", "the Sumsub case needs selfie and liveness too");
    let all = "verification.basic:read verification.selfie:read verification.liveness:read";
    let seen = app.query(&issuer_token(SEED, all, false), q).await.ok();
    assert_eq!(seen.data("me.kycState"), "REJECTED");
}
