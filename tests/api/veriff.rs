//! Veriff, the fifth provider, end to end: its cases beside the other providers', its person data behind the details
//! scopes, its decision webhooks (signature, inbox, order, learned sessions, every replica) and `kycState` over all
//! five providers. Webhooks are signed here with this file's own HMAC code, as Veriff would sign them.

use kyc_gateway::Config;
use reqwest::StatusCode;
use ring::hmac;
use serde_json::{json, Value};

use crate::helpers::{
    assert_denied, client_token, eventually, import, point_at, production_app_with, providers, spawn, spawn_with, uid,
    user_token, Expose as _, TestApp, SEED,
};
use crate::webhooks::{inbox, Delivery};
use crate::ws::Ws;

/// The webhook secret of the test apps (a Veriff shared secret), besides the sandbox's own.
const VERIFF_SECRET: &str = "veriff-shared-secret-for-tests";

/// Reads the `idv` level's cases (basic, selfie, liveness).
const IDV: &str = "uid:read verification.basic:read verification.selfie:read verification.liveness:read";

const SUBSCRIBE: &str =
    "subscription { verificationChanged { userId provider level levelItems state providerStatus occurredAt } }";

fn with_secret(config: &mut Config) {
    config.vars.set("KYC_GATEWAY_VERIFF_WEBHOOK_SECRETS", VERIFF_SECRET);
}

/// A decision webhook as Veriff sends it: `X-HMAC-SIGNATURE`, the hex HMAC-SHA256 of the body under `secret`.
fn veriff(secret: &str, body: &Value) -> Delivery {
    let body = body.to_string().into_bytes();
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()), &body);
    Delivery { provider: "veriff", headers: vec![("X-HMAC-SIGNATURE", hex::encode(tag.as_ref()))], body }
}

/// A decision of `session` for `user` at `time` (RFC 3339).
fn decision(session: &str, user: &str, status: &str, time: &str) -> Value {
    json!({
        "status": "success",
        "verification": {
            "id": session, "attemptId": "a1c68aea-7f4d-478d-80ab-ca9356074f69", "code": 9001, "status": status,
            "reason": null, "reasonCode": null, "decisionTime": time, "acceptanceTime": "2026-03-01T09:00:00.000Z",
            "vendorData": user, "endUserId": null,
            "person": { "firstName": "SARAH", "lastName": "MORGAN" }, "document": { "type": "PASSPORT" }
        },
        "technicalData": { "ip": "192.0.2.1" }
    })
}

/// Gives a sandbox session a decision (its admin endpoint), which then delivers the signed decision webhook.
async fn decide(app: &TestApp, session: &str, body: Value) -> Value {
    let url = format!("{}/_sandbox/sessions/{session}/decision", app.sandbox().veriff().base_url());
    let answer = app.http.post(url).json(&body).send().await.expect("the sandbox answers");
    assert!(answer.status().is_success(), "{}", answer.status());
    answer.json().await.expect("json")
}

/// The first sandbox user (after the seed person) whose only Veriff session's decision is `status` (`None`: no
/// decision yet), and that session.
fn veriff_user(app: &TestApp, status: Option<&str>) -> (String, String) {
    let sandbox = app.sandbox().veriff();
    app.sandbox()
        .users()
        .iter()
        .skip(1)
        .find_map(|user| {
            let sessions = sandbox.sessions_of(user);
            let [session] = sessions.as_slice() else { return None };
            let decided = sandbox.session(session)?.decision.map(|d| d.status);
            (decided.as_deref() == status).then(|| (user.clone(), session.clone()))
        })
        .expect("the sandbox has such a user")
}

/// The Veriff cases of `user`, as `token` sees them.
async fn veriff_cases(app: &TestApp, token: &str, fields: &str) -> Value {
    let q = format!("{{ me {{ verificationCases(provider: VERIFF) {{ {fields} }} }} }}");
    app.query(token, &q).await.ok().data("me.verificationCases").clone()
}

#[tokio::test]
async fn a_staff_query_answers_the_seed_person_s_veriff_case_next_to_the_other_four_providers() {
    let app = spawn().await;
    let staff = client_token(
        "client.users:read kyc_application:read review.internal:read verification.basic:read \
         verification.selfie:read verification.liveness:read verification.ssn:read verification.plus:read \
         verification.basic.details:read",
    );
    let q = format!(
        r#"{{ user(id: "{SEED}") {{ verificationCases {{ id provider level levelItems state providerStatus credential
            retryable reasons }} kycApplications {{ state }} kycState(level: "basic") }} }}"#
    );
    let answer = app.query(&staff, &q).await.ok();
    let cases = answer.data("user.verificationCases");
    assert_eq!(providers(cases), ["FRACTAL", "SUMSUB", "SILA", "VERIFF"], "{cases:#}");
    assert!(!answer.data("user.kycApplications").as_array().expect("applications").is_empty(), "and ident");
    let veriff = cases.as_array().expect("cases").iter().find(|c| c["provider"] == "VERIFF").expect("a Veriff case");
    assert_eq!(veriff["id"], app.sandbox().veriff().sessions_of(SEED)[0].as_str());
    assert_eq!((&veriff["level"], &veriff["levelItems"]), (&json!("idv"), &json!(["basic", "selfie", "liveness"])));
    assert_eq!((&veriff["state"], &veriff["providerStatus"]), (&json!("APPROVED"), &json!("approved")));
    assert_eq!(
        (&veriff["credential"], &veriff["retryable"], &veriff["reasons"]),
        (&json!("APPROVED"), &json!(false), &Value::Null)
    );
    let details = format!(
        r#"{{ user(id: "{SEED}") {{ verificationCases(provider: VERIFF) {{ details {{ fullName dateOfBirth
            identificationDocumentNumber identificationDocumentCountry identificationDocumentDateOfExpiry }} }} }} }}"#
    );
    let person = app.query(&staff, &details).await.ok();
    assert_eq!(
        person.data("user.verificationCases.0.details"),
        &json!({ "fullName": "David Muller", "dateOfBirth": "1967-08-16", "identificationDocumentNumber": "123456789",
                 "identificationDocumentCountry": "DE", "identificationDocumentDateOfExpiry": "2025-03-01" })
    );
    assert_eq!(answer.data("user.kycState"), "APPROVED");
}

#[tokio::test]
async fn a_user_token_without_the_details_scopes_gets_no_veriff_person_data() {
    let app = spawn().await;
    let fields = "state details { fullName dateOfBirth identificationDocumentNumber placeOfBirth }";
    let q = format!("{{ me {{ verificationCases(provider: VERIFF) {{ {fields} }} }} }}");
    let answer = app.query(&user_token(SEED, IDV), &q).await;
    assert_eq!(answer.data("me.verificationCases.0.state"), "APPROVED");
    for field in ["fullName", "dateOfBirth", "identificationDocumentNumber"] {
        let path = format!("me.verificationCases.0.details.{field}");
        assert!(answer.data(&path).is_null(), "{field} leaked: {:#}", answer.body);
        assert_denied(answer.error_at(&path), "verification.basic.details:read");
    }
    // Place of birth belongs to `plus`, which a Veriff session does not cover: no details scope of its own shows it.
    let path = "me.verificationCases.0.details.placeOfBirth";
    assert_denied(answer.error_at(path), "verification.plus.details:read");
    let with_basic = app.query(&user_token(SEED, &format!("{IDV} verification.basic.details:read")), &q).await;
    assert_eq!(with_basic.data("me.verificationCases.0.details.fullName"), "David Muller");
    assert!(with_basic.data("me.verificationCases.0.details.placeOfBirth").is_null());
    // A case's reasons are internal: a user token never reads them.
    let reasons = app.query(&user_token(SEED, IDV), "{ me { verificationCases(provider: VERIFF) { reasons } } }").await;
    assert_denied(reasons.error_at("me.verificationCases.0.reasons"), "review.internal:read");
}

#[tokio::test]
async fn a_declined_session_s_reason_code_and_reason_reach_only_review_internal_read() {
    let app = spawn().await;
    let (user, session) = veriff_user(&app, Some("declined"));
    let expected = app.sandbox().veriff().session(&session).and_then(|s| s.decision?.reason).expect("a reason");
    let staff = client_token(&format!("client.users:read review.internal:read {IDV}"));
    let q =
        format!(r#"{{ user(id: "{user}") {{ verificationCases(provider: VERIFF) {{ state retryable reasons }} }} }}"#);
    let answer = app.query(&staff, &q).await.ok();
    assert_eq!(answer.data("user.verificationCases.0.state"), "REJECTED");
    assert_eq!(answer.data("user.verificationCases.0.retryable"), false);
    assert_eq!(answer.data("user.verificationCases.0.reasons"), &json!([format!("{}: {}", expected.0, expected.1)]));
    let without = client_token(&format!("client.users:read {IDV}"));
    let answer = app.query(&without, &q).await;
    assert!(answer.data("user.verificationCases.0.reasons").is_null());
    assert_denied(answer.error_at("user.verificationCases.0.reasons"), "review.internal:read");
}

#[tokio::test]
async fn every_decision_and_a_session_without_one_map_to_the_documented_states() {
    let app = spawn().await;
    for (status, state) in [
        (Some("approved"), "APPROVED"),
        (Some("declined"), "REJECTED"),
        (Some("resubmission_requested"), "ACTION_REQUIRED"),
        (Some("review"), "IN_REVIEW"),
        (Some("expired"), "EXPIRED"),
        (Some("abandoned"), "EXPIRED"),
        (None, "PENDING"),
    ] {
        let (user, _) = veriff_user(&app, status);
        let cases = veriff_cases(&app, &user_token(&user, IDV), "state providerStatus").await;
        let expected_status = status.unwrap_or("decision_pending");
        assert_eq!(cases, json!([{ "state": state, "providerStatus": expected_status }]), "{status:?}");
    }
}

#[tokio::test]
async fn a_veriff_webhook_with_a_wrong_signature_is_401_and_stores_nothing() {
    let app = spawn_with(with_secret).await;
    let body = decision("12df6045-3846-3e45-946a-14fa6136d78b", SEED, "approved", "2026-03-01T10:00:00.000Z");
    let mut tampered = veriff(VERIFF_SECRET, &body);
    tampered.body = tampered.body.iter().map(|b| if *b == b'1' { b'2' } else { *b }).collect();
    let mut unsigned = veriff(VERIFF_SECRET, &body);
    unsigned.headers.clear();
    // The legacy `X-SIGNATURE` (sha256 of body and secret) is not taken in place of the HMAC.
    let mut legacy = veriff(VERIFF_SECRET, &body);
    legacy.headers = vec![("X-SIGNATURE", legacy.headers[0].1.clone())];
    let mut not_hex = veriff(VERIFF_SECRET, &body);
    not_hex.headers = vec![("X-HMAC-SIGNATURE", "z".repeat(64))];
    for delivery in [veriff("not-the-shared-secret", &body), tampered, unsigned, legacy, not_hex] {
        let (status, answer) = delivery.post(&app).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer, json!({ "error": "invalid signature" }));
    }
    assert!(inbox(&app).await.is_empty(), "nothing recorded");
    let signed = veriff(VERIFF_SECRET, &body);
    assert_eq!(signed.post(&app).await, (StatusCode::OK, json!({ "status": "accepted" })));
    assert_eq!(signed.post(&app).await, (StatusCode::OK, json!({ "status": "duplicate" })), "a redelivery");
    let event =
        json!({"id": "f04bdb47-d3be-4b28-b028-a652feb060b5", "action": "submitted", "code": 7002, "vendorData": SEED});
    assert_eq!(veriff(VERIFF_SECRET, &event).post(&app).await, (StatusCode::OK, json!({ "status": "ignored" })));
    let no_id = json!({"status": "success", "verification": {"status": "approved"}});
    assert_eq!(veriff(VERIFF_SECRET, &no_id).post(&app).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_sandbox_decision_reaches_a_subscriber_and_the_next_query_sees_it() {
    let app = spawn().await;
    let (user, session) = veriff_user(&app, None);
    let token = user_token(&user, IDV);
    assert_eq!(veriff_cases(&app, &token, "state").await, json!([{ "state": "PENDING" }]), "cached from here on");
    let mut ws = Ws::ready(&app, &token).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    decide(
        &app,
        &session,
        json!({ "status": "resubmission_requested", "reasonCode": 204, "reason": "Poor image quality" }),
    )
    .await;
    let event = ws.event("1").await;
    let changed = &event["data"]["verificationChanged"];
    assert_eq!(
        (&changed["provider"], &changed["level"], &changed["state"], &changed["providerStatus"]),
        (&json!("VERIFF"), &json!("idv"), &json!("ACTION_REQUIRED"), &json!("resubmission_requested"))
    );
    assert_eq!(changed["levelItems"], json!(["basic", "selfie", "liveness"]));
    let now = veriff_cases(&app, &token, "state retryable").await;
    assert_eq!(now, json!([{ "state": "ACTION_REQUIRED", "retryable": true }]), "the cached answer was dropped");
    assert_eq!(inbox(&app).await, [("VERIFF".to_owned(), "processed".to_owned())]);
}

#[tokio::test]
async fn a_session_the_directory_does_not_hold_is_learned_from_its_decision_webhook() {
    let app = spawn().await;
    let veriff = app.sandbox().veriff().clone();
    // A sandbox user without a Veriff session yet.
    let user = app.sandbox().users().iter().find(|u| veriff.sessions_of(u).is_empty()).expect("a user").clone();
    let token = user_token(&user, IDV);
    assert_eq!(veriff_cases(&app, &token, "id").await, json!([]));
    let created: Value = app
        .http
        .post(format!("{}/v1/sessions", veriff.base_url()))
        .header("X-AUTH-CLIENT", veriff.api_key().expose())
        .json(&json!({ "verification": { "vendorData": user, "person": { "firstName": "Kemi", "lastName": "Ito" } } }))
        .send()
        .await
        .expect("created")
        .json()
        .await
        .expect("json");
    let session = created["verification"]["id"].as_str().expect("a session id").to_owned();
    let mut ws = Ws::ready(&app, &token).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    decide(&app, &session, json!({ "status": "approved" })).await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "APPROVED");
    let stored = app.directory.references(&uid(&user), kyc_gateway::domain::Provider::Veriff).await.expect("directory");
    assert_eq!(stored, [session.as_str()], "kept before the change was announced");
    let cases = veriff_cases(&app, &token, "id state").await;
    assert_eq!(cases, json!([{ "id": session, "state": "APPROVED" }]));
}

/// Anyone with the public API key can create a session naming any `vendorData`: unless the operator says sessions are
/// learned, such a session's decision reaches nobody's cases.
#[tokio::test]
async fn a_session_naming_another_user_s_vendor_data_is_nobody_s_unless_sessions_are_learned() {
    let app = spawn_with(|c| c.vars.set("KYC_GATEWAY_VERIFF_LEARN_SESSIONS", "off")).await;
    let veriff = app.sandbox().veriff().clone();
    let victim = app.sandbox().users().iter().find(|u| veriff.sessions_of(u).is_empty()).expect("a user").clone();
    let created: Value = app
        .http
        .post(format!("{}/v1/sessions", veriff.base_url()))
        .header("X-AUTH-CLIENT", veriff.api_key().expose())
        .json(&json!({ "verification": { "vendorData": victim, "person": { "firstName": "Eve", "lastName": "Ito" } } }))
        .send()
        .await
        .expect("created")
        .json()
        .await
        .expect("json");
    let session = created["verification"]["id"].as_str().expect("a session id").to_owned();
    decide(&app, &session, json!({ "status": "declined", "reasonCode": 102 })).await;
    app.sandbox().webhooks_idle().await;
    eventually("the decision was handled", || async {
        inbox(&app).await.iter().all(|(provider, status)| provider != "VERIFF" || status != "pending")
    })
    .await;
    assert!(inbox(&app).await.contains(&("VERIFF".to_owned(), "unmatched".to_owned())), "{:?}", inbox(&app).await);
    let stored = app.directory.references(&uid(&victim), kyc_gateway::domain::Provider::Veriff).await.expect("read");
    assert!(stored.is_empty(), "nothing kept for the user it names: {stored:?}");
    assert_eq!(veriff_cases(&app, &user_token(&victim, IDV), "id").await, json!([]));
}

#[tokio::test]
async fn an_older_decision_of_a_session_delivered_after_a_newer_one_never_replaces_it() {
    let app = spawn_with(with_secret).await;
    let (user, session) = veriff_user(&app, Some("review"));
    let mut ws = Ws::ready(&app, &user_token(&user, IDV)).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    let newer = veriff(VERIFF_SECRET, &decision(&session, &user, "approved", "2026-03-01T10:00:00.500Z"));
    let older = veriff(VERIFF_SECRET, &decision(&session, &user, "review", "2026-03-01T10:00:00.400Z"));
    assert_eq!(newer.post(&app).await.0, StatusCode::OK);
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "APPROVED");
    assert_eq!(older.post(&app).await.0, StatusCode::OK);
    eventually("the older decision was handled", || async { inbox(&app).await.iter().all(|(_, s)| s != "pending") })
        .await;
    let statuses: Vec<String> = inbox(&app).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["processed", "stale"], "ordered per session by decision time");
    // Another session of the same user is ordered on its own: an earlier time there is still news.
    let other = "4f0c5a3e-8d2b-4c1a-9e7f-3b2a1c0d9e8f";
    let first = veriff(VERIFF_SECRET, &decision(other, &user, "declined", "2026-03-01T09:00:00.000Z"));
    assert_eq!(first.post(&app).await.0, StatusCode::OK);
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "REJECTED");
}

#[tokio::test]
async fn kyc_state_aggregates_five_providers_and_counts_a_veriff_approval() {
    let app = spawn().await;
    let staff = client_token(&format!(
        "client.users:read kyc_application:read verification.ssn:read verification.plus:read {IDV}"
    ));
    let state = |user: String| {
        let (app, staff) = (&app, &staff);
        async move {
            let q =
                format!(r#"{{ user(id: "{user}") {{ kycState(level: "basic") verificationCases {{ provider }} }} }}"#);
            let answer = app.query(staff, &q).await.ok();
            (answer.data("user.kycState").clone(), providers(answer.data("user.verificationCases")))
        }
    };
    // Five providers answer for the seed person: four with cases, ident with an application.
    let (seed_state, seed_providers) = state(SEED.to_owned()).await;
    assert_eq!(seed_providers, ["FRACTAL", "SUMSUB", "SILA", "VERIFF"]);
    assert_eq!(seed_state, "APPROVED");
    // A user whose Veriff session is in review and whom no provider approved for `basic`.
    let veriff = app.sandbox().veriff().clone();
    let mut chosen = None;
    for user in app.sandbox().users().iter().skip(1) {
        let sessions = veriff.sessions_of(user);
        let [session] = sessions.as_slice() else { continue };
        if veriff.session(session).and_then(|s| s.decision).map(|d| d.status).as_deref() != Some("review") {
            continue;
        }
        if state(user.clone()).await.0 != json!("APPROVED") {
            chosen = Some((user.clone(), session.clone()));
            break;
        }
    }
    let (user, session) = chosen.expect("a user in review at Veriff and approved nowhere");
    let mut ws = Ws::ready(&app, &user_token(&user, IDV)).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    decide(&app, &session, json!({ "status": "approved" })).await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "APPROVED");
    assert_eq!(state(user).await.0, "APPROVED", "Veriff's approval of basic counts");
}

#[tokio::test]
async fn several_imported_sessions_are_several_cases_newest_first() {
    let sandbox_app = spawn().await;
    let veriff = sandbox_app.sandbox().veriff().clone();
    let user = sandbox_app.sandbox().users().iter().find(|u| veriff.sessions_of(u).len() == 2).expect("a user").clone();
    let sessions = veriff.sessions_of(&user);
    let entries = vec![json!({ "user_id": user, "veriff_session_ids": sessions })];
    let app = production_app_with(&sandbox_app, entries, |c| point_at(c, sandbox_app.sandbox(), &["VERIFF"])).await;
    let token = crate::helpers::issuer_token(&user, IDV, false);
    let cases = veriff_cases(&app, &token, "id providerStatus requestedAt").await;
    let listed: Vec<&str> = cases.as_array().expect("cases").iter().map(|c| c["id"].as_str().expect("id")).collect();
    assert_eq!(listed.len(), 2, "{cases:#}");
    assert_eq!(cases[1]["providerStatus"], "expired", "the older, expired session comes last");
    assert!(sessions.iter().all(|s| listed.contains(&s.as_str())));
}

#[tokio::test]
async fn a_wrong_shared_secret_fails_veriff_s_cases_alone() {
    let sandbox_app = spawn().await;
    let sessions = sandbox_app.sandbox().veriff().sessions_of(SEED);
    let entries = vec![json!({ "user_id": SEED, "veriff_session_ids": sessions })];
    let app = production_app_with(&sandbox_app, entries, |c| {
        point_at(c, sandbox_app.sandbox(), &["VERIFF"]);
        c.vars.set("KYC_GATEWAY_VERIFF_SHARED_SECRET", "00000000-0000-4000-8000-000000000000");
    })
    .await;
    let token = crate::helpers::issuer_token(SEED, &format!("{IDV} verification.ssn:read"), false);
    let answer = app.query(&token, "{ me { verificationCases { provider } } }").await;
    assert_eq!(providers(answer.data("me.verificationCases")), ["SUMSUB", "SILA"], "{:#}", answer.body);
    assert_eq!(answer.codes(), ["PROVIDER_UNAUTHORIZED"]);
    assert_eq!(answer.errors()[0]["extensions"]["provider"], "VERIFF");
    assert!(sandbox_app.sandbox().veriff().counts().get("unauthorized") >= 1, "Veriff refused it (1818)");
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn a_veriff_webhook_at_one_replica_reaches_a_subscriber_of_the_other_and_invalidates_its_cache() {
    let db = crate::helpers::postgres_database().await;
    let sandbox_app = spawn().await;
    let sandbox = sandbox_app.sandbox().clone();
    let secret = sandbox.veriff().shared_secret().expose().to_owned();
    let veriff_section = |c: &mut Config| {
        point_at(c, sandbox_app.sandbox(), &["VERIFF"]);
        c.vars.set("KYC_GATEWAY_VERIFF_WEBHOOK_SECRETS", secret.clone());
    };
    let a = crate::store::replica(&sandbox_app, &db, veriff_section).await;
    let b = crate::store::replica(&sandbox_app, &db, veriff_section).await;
    let (user, session) = veriff_user(&sandbox_app, None);
    import(&a, vec![json!({ "user_id": user, "veriff_session_ids": [session] })]).await;
    let token = crate::helpers::issuer_token(&user, IDV, false);
    // Both replicas cache the session without a decision.
    for replica in [&a, &b] {
        assert_eq!(veriff_cases(replica, &token, "state").await, json!([{ "state": "PENDING" }]));
    }
    let mut ws = Ws::ready(&b, &token).await;
    ws.subscribe("1", SUBSCRIBE).await;
    b.subscribed(1).await;

    // Delivered to A only; B's subscriber hears it and B's cache no longer answers the old state.
    sandbox.set_webhook_targets(&[a.url("")]);
    decide(&sandbox_app, &session, json!({ "status": "approved" })).await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "APPROVED");
    // B dropped the user's cache before telling its subscriber; A hears its own notification in its own time.
    assert_eq!(veriff_cases(&b, &token, "state").await, json!([{ "state": "APPROVED" }]));
    eventually("replica A dropped its cached answer", || async {
        veriff_cases(&a, &token, "state").await == json!([{ "state": "APPROVED" }])
    })
    .await;
    // Delivered to both: applied once, one event.
    sandbox.set_webhook_targets(&[a.url(""), b.url("")]);
    decide(&sandbox_app, &session, json!({ "status": "declined" })).await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "REJECTED");
    sandbox.webhooks_idle().await;
    sandbox.set_webhook_targets(&[a.url("")]);
    decide(&sandbox_app, &session, json!({ "status": "review" })).await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "IN_REVIEW", "not the double delivery");
    let statuses: Vec<String> = inbox(&a).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["processed", "processed", "processed"]);
}
