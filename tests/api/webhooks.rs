//! Providers' webhooks over real HTTP: signatures, bounds, the inbox (nothing lost, each event once, in order), and
//! the worker surviving a restart. Events are signed here with this file's own HMAC code, as the providers would.

use base64::Engine as _;
use kyc_gateway::Config;
use reqwest::StatusCode;
use ring::hmac;
use serde_json::{json, Value};
use sqlx::Row;

use crate::helpers::{
    eventually, on_both_engines, postgres_database, production_app, spawn, spawn_on, spawn_with, sqlite_database,
    user_token, TestApp, TestDatabase,
};
use crate::ws::Ws;

/// The webhook secrets of the test apps (each provider's, as configured).
pub const FRACTAL_SECRET: &str = "fractal-webhook-secret-for-tests";
pub const SUMSUB_SECRET: &str = "sumsub-webhook-secret-for-tests";
pub const SILA_SECRET: &str = "sila-webhook-secret-for-tests";
pub const IDENT_SECRET: &str = "ident-webhook-secret-for-tests";

/// Configures the test secrets (beside the sandbox's own).
pub fn with_secrets(config: &mut Config) {
    for (provider, secret) in
        [("FRACTAL", FRACTAL_SECRET), ("SUMSUB", SUMSUB_SECRET), ("SILA", SILA_SECRET), ("IDENT", IDENT_SECRET)]
    {
        config.vars.set(&format!("KYC_GATEWAY_{provider}_WEBHOOK_SECRETS"), secret);
    }
}

fn mac(algorithm: hmac::Algorithm, secret: &str, message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(algorithm, secret.as_bytes()), message).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A delivery: the provider's path, its headers and its body.
pub struct Delivery {
    pub provider: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub fn fractal(secret: &str, body: &Value) -> Delivery {
    let body = body.to_string().into_bytes();
    let signature = format!("sha1={}", hex(&mac(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret, &body)));
    Delivery { provider: "fractal", headers: vec![("X-Fractal-Signature", signature)], body }
}

pub fn sumsub(secret: &str, body: &Value) -> Delivery {
    let body = body.to_string().into_bytes();
    let digest = hex(&mac(hmac::HMAC_SHA512, secret, &body));
    Delivery {
        provider: "sumsub",
        headers: vec![("X-Payload-Digest", digest), ("X-Payload-Digest-Alg", "HMAC_SHA512_HEX".into())],
        body,
    }
}

pub fn sila(secret: &str, body: &Value) -> Delivery {
    let body = body.to_string().into_bytes();
    let signature = base64::engine::general_purpose::STANDARD.encode(mac(hmac::HMAC_SHA256, secret, &body));
    Delivery { provider: "sila", headers: vec![("SILA-SIGNATURE", signature)], body }
}

pub fn ident(secret: &str, body: &Value, sent_at: i64) -> Delivery {
    let body = body.to_string().into_bytes();
    let signed = [format!("{sent_at}.").into_bytes(), body.clone()].concat();
    let header = format!("t={sent_at},s={}", hex(&mac(hmac::HMAC_SHA256, secret, &signed)));
    Delivery { provider: "ident", headers: vec![("X-Request-Signature", header)], body }
}

impl Delivery {
    /// Posts it to `app`: the status and the JSON answer.
    pub async fn post(&self, app: &TestApp) -> (StatusCode, Value) {
        let mut request = app.http.post(app.url(&format!("/webhooks/{}", self.provider))).body(self.body.clone());
        request = request.header("content-type", "application/json");
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// A Sumsub review event about `applicant` of `user` at `created_at_ms` (Sumsub's time format).
pub fn sumsub_review(applicant: &str, user: &str, status: &str, answer: Option<&str>, created_at: &str) -> Value {
    let mut body = json!({
        "applicantId": applicant, "inspectionId": "insp", "correlationId": format!("req-{created_at}"),
        "externalUserId": user, "levelName": "basic-kyc-level",
        "type": if status == "completed" { "applicantReviewed" } else { "applicantPending" },
        "reviewStatus": status, "createdAtMs": created_at,
    });
    if let Some(answer) = answer {
        body["reviewResult"] = json!({ "reviewAnswer": answer });
    }
    body
}

/// The Sumsub applicant id of a sandbox user.
pub fn applicant_of(app: &TestApp, user: &str) -> String {
    app.sandbox().sumsub().applicant_of(user).map(|a| a.id.clone()).expect("the user has a Sumsub applicant")
}

/// The inbox rows: (provider, status).
pub async fn inbox(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query("SELECT provider, status FROM webhook_inbox ORDER BY id")
        .fetch_all(app.store.pool())
        .await
        .expect("the inbox")
        .iter()
        .map(|r| (r.get::<String, _>("provider"), r.get::<String, _>("status")))
        .collect()
}

/// A Sumsub PENDING sandbox user (README's table).
pub const SUMSUB_PENDING: &str = "5246b314-ecd5-4fca-95a0-99069c7d64aa";
/// Reads Sumsub's `basic-kyc-level` cases.
pub const BASIC_LEVEL: &str = "uid:read verification.basic:read verification.selfie:read verification.liveness:read";

const SUBSCRIBE: &str =
    "subscription { verificationChanged { userId provider level levelItems state providerStatus occurredAt } }";

#[tokio::test]
async fn each_provider_s_signed_event_is_accepted_once_and_a_redelivery_is_acknowledged() {
    let app = spawn_with(|c| {
        with_secrets(c);
        c.webhooks.worker = false;
    })
    .await;
    let now = kyc_gateway::clock::unix_seconds();
    let deliveries = [
        fractal(
            FRACTAL_SECRET,
            &json!({"type": "verification_approved", "data": {"level": "basic", "user_id": "u1", "timestamp": "2026-01-01T00:00:00Z"}}),
        ),
        sumsub(SUMSUB_SECRET, &sumsub_review("a1", "u1", "completed", Some("GREEN"), "2026-01-01 00:00:00.000")),
        sila(
            SILA_SECRET,
            &json!({"event_time": "2026-01-01T00:00:00Z", "event_type": "kyc", "event_uuid": "e1", "event_details": {"entity": "u1", "outcome": "passed", "kyc_level": "f"}}),
        ),
        ident(IDENT_SECRET, &json!({"id": "app1", "user_id": "u1", "type": "kyc", "status": "accepted"}), now),
    ];
    for delivery in &deliveries {
        assert_eq!(
            delivery.post(&app).await,
            (StatusCode::OK, json!({ "status": "accepted" })),
            "{}",
            delivery.provider
        );
        assert_eq!(
            delivery.post(&app).await,
            (StatusCode::OK, json!({ "status": "duplicate" })),
            "{}",
            delivery.provider
        );
    }
    // ident signs each attempt anew: a redelivery with a fresh timestamp is still the same event.
    let again =
        ident(IDENT_SECRET, &json!({"id": "app1", "user_id": "u1", "type": "kyc", "status": "accepted"}), now + 1);
    assert_eq!(again.post(&app).await.1, json!({ "status": "duplicate" }));
    let rows = inbox(&app).await;
    let providers: Vec<&str> = rows.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(providers, ["FRACTAL", "SUMSUB", "SILA", "IDENT"]);
    assert!(rows.iter().all(|(_, s)| s == "pending"), "no worker here: {rows:?}");
}

#[tokio::test]
async fn a_missing_or_wrong_signature_a_tampered_body_or_a_stale_ident_timestamp_is_401_and_stores_nothing() {
    let app = spawn_with(with_secrets).await;
    let event = sumsub_review("a1", "u1", "completed", Some("GREEN"), "2026-01-01 00:00:00.000");
    let mut tampered = sumsub(SUMSUB_SECRET, &event);
    tampered.body = tampered.body.iter().map(|b| if *b == b'1' { b'2' } else { *b }).collect();
    let mut unsigned = sila(SILA_SECRET, &json!({"event_type": "kyc"}));
    unsigned.headers.clear();
    let now = kyc_gateway::clock::unix_seconds();
    let refused = [
        tampered,
        fractal(
            "not-the-fractal-secret",
            &json!({"type": "verification_approved", "data": {"level": "basic", "user_id": "u1"}}),
        ),
        unsigned,
        ident(IDENT_SECRET, &json!({"id": "a", "user_id": "u1", "status": "accepted"}), now - 301),
        ident(SUMSUB_SECRET, &json!({"id": "a", "user_id": "u1", "status": "accepted"}), now),
    ];
    for delivery in &refused {
        let (status, body) = delivery.post(&app).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}: {body}", delivery.provider);
        assert_eq!(body, json!({ "error": "invalid signature" }));
    }
    assert!(inbox(&app).await.is_empty(), "nothing recorded");
}

#[tokio::test]
async fn a_malformed_body_is_400_an_unused_type_is_ignored_and_an_oversized_body_is_413() {
    let app = spawn_with(|c| {
        with_secrets(c);
        c.webhooks.max_body_bytes = 4096;
    })
    .await;
    let (status, body) =
        sumsub(SUMSUB_SECRET, &json!({"type": "applicantReviewed", "levelName": "l"})).post(&app).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("applicantId")), "{body}");
    let mut not_json = fractal(FRACTAL_SECRET, &json!(null));
    not_json.body = b"{not json".to_vec();
    not_json.headers = fractal_headers(&not_json.body);
    assert_eq!(not_json.post(&app).await.0, StatusCode::BAD_REQUEST);
    let unused = fractal(FRACTAL_SECRET, &json!({"type": "wallet_added", "data": {"user_id": "u1"}}));
    assert_eq!(unused.post(&app).await, (StatusCode::OK, json!({ "status": "ignored" })));
    let huge = sila(SILA_SECRET, &json!({"event_type": "kyc", "padding": "x".repeat(5000)}));
    assert_eq!(huge.post(&app).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(inbox(&app).await.is_empty());
    let unknown = app.http.post(app.url("/webhooks/onfido")).body("{}").send().await.expect("answers");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

fn fractal_headers(body: &[u8]) -> Vec<(&'static str, String)> {
    vec![(
        "X-Fractal-Signature",
        format!("sha1={}", hex(&mac(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, FRACTAL_SECRET, body))),
    )]
}

#[tokio::test]
async fn a_provider_without_secrets_has_no_webhook_endpoint() {
    let sandbox_app = spawn().await;
    let app = production_app(&sandbox_app, &[], |c| {
        with_secrets(c);
        c.vars.remove("KYC_GATEWAY_SILA_WEBHOOK_SECRETS");
        // Fractal is not configured here: its secrets alone would be refused.
        c.vars.remove("KYC_GATEWAY_FRACTAL_WEBHOOK_SECRETS");
    })
    .await;
    let (status, body) = sila(SILA_SECRET, &json!({"event_type": "kyc"})).post(&app).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body, json!({ "error": "webhooks of this provider are not configured" }));
}

on_both_engines!(a_store_that_cannot_take_the_event_answers_503_so_the_provider_retries);

async fn a_store_that_cannot_take_the_event_answers_503_so_the_provider_retries(db: TestDatabase) {
    let app = spawn_on(&db, with_secrets).await;
    let (create, drop): (&[&str], &str) = match db.engine {
        "sqlite" => (
            &["CREATE TRIGGER refuse BEFORE INSERT ON webhook_inbox BEGIN SELECT RAISE(ABORT, 'injected'); END"],
            "DROP TRIGGER refuse",
        ),
        _ => (
            &[
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse BEFORE INSERT ON webhook_inbox FOR EACH ROW EXECUTE FUNCTION refuse()",
            ],
            "DROP TRIGGER refuse ON webhook_inbox",
        ),
    };
    for statement in create {
        sqlx::query(statement).execute(app.store.pool()).await.expect("the trigger");
    }
    let event =
        sumsub(SUMSUB_SECRET, &sumsub_review("a1", "u1", "completed", Some("GREEN"), "2026-01-01 00:00:00.000"));
    assert_eq!(event.post(&app).await.0, StatusCode::SERVICE_UNAVAILABLE, "{}", db.engine);
    sqlx::query(drop).execute(app.store.pool()).await.expect("dropped");
    assert_eq!(event.post(&app).await, (StatusCode::OK, json!({ "status": "accepted" })), "the retry is taken");
}

on_both_engines!(an_older_event_delivered_after_a_newer_one_never_replaces_it);

async fn an_older_event_delivered_after_a_newer_one_never_replaces_it(db: TestDatabase) {
    older_after_newer(spawn_on(&db, with_secrets).await).await;
}

async fn older_after_newer(app: TestApp) {
    let user = SUMSUB_PENDING;
    let applicant = applicant_of(&app, user);
    let mut ws = Ws::ready(&app, &user_token(user, BASIC_LEVEL)).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    let newer =
        sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "completed", Some("GREEN"), "2026-03-01 10:00:00.500"));
    let older = sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "pending", None, "2026-03-01 10:00:00.400"));
    assert_eq!(newer.post(&app).await.0, StatusCode::OK);
    let event = ws.event("1").await;
    assert_eq!(event["data"]["verificationChanged"]["state"], "APPROVED", "{event}");
    assert_eq!(older.post(&app).await.0, StatusCode::OK);
    eventually("the older event was handled", || async { inbox(&app).await.iter().all(|(_, s)| s != "pending") }).await;
    assert_eq!(
        inbox(&app).await.into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        ["processed", "stale"],
        "the older one is acknowledged and left alone"
    );
    let known: String = sqlx::query_scalar("SELECT state FROM verification_versions WHERE user_id = $1")
        .bind(user)
        .fetch_one(app.store.pool())
        .await
        .expect("a version");
    assert_eq!(known, "APPROVED");
    // A later event does arrive, and it is the next one the subscriber sees: the stale one was never sent.
    let later = sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "onHold", None, "2026-03-01 10:00:01.000"));
    later.post(&app).await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "IN_REVIEW");
}

#[tokio::test]
async fn an_event_accepted_while_no_worker_runs_is_processed_after_a_restart() {
    let db = sqlite_database();
    let first = spawn_on(&db, |c| {
        with_secrets(c);
        c.webhooks.worker = false;
    })
    .await;
    let applicant = applicant_of(&first, SUMSUB_PENDING);
    let event = sumsub(
        SUMSUB_SECRET,
        &sumsub_review(&applicant, SUMSUB_PENDING, "completed", Some("GREEN"), "2026-03-01 10:00:00.000"),
    );
    assert_eq!(event.post(&first).await.1, json!({ "status": "accepted" }));
    assert_eq!(inbox(&first).await, [("SUMSUB".to_owned(), "pending".to_owned())]);
    first.stop().await;

    let second = spawn_on(&db, with_secrets).await;
    eventually("the event accepted before the restart is processed", || async {
        inbox(&second).await == [("SUMSUB".to_owned(), "processed".to_owned())]
    })
    .await;
    let state: String = sqlx::query_scalar("SELECT state FROM verification_versions WHERE user_id = $1")
        .bind(SUMSUB_PENDING)
        .fetch_one(second.store.pool())
        .await
        .expect("applied");
    assert_eq!(state, "APPROVED");
    // The redelivery Sumsub may still send is recognised across the restart.
    assert_eq!(event.post(&second).await.1, json!({ "status": "duplicate" }));
}

/// Changes the sandbox Sumsub's review of `user` (its admin endpoint), which then delivers the signed webhook.
pub async fn review(app: &TestApp, user: &str, body: Value) {
    let url = format!("{}/_sandbox/applicants/{user}/review", app.sandbox().sumsub().base_url());
    let answer = app.http.post(url).json(&body).send().await.expect("the sandbox answers");
    assert!(answer.status().is_success(), "{}", answer.status());
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn a_webhook_at_one_replica_reaches_a_subscriber_of_the_other_and_a_double_delivery_is_applied_once() {
    let db = postgres_database().await;
    let sandbox_app = spawn().await;
    let sandbox = sandbox_app.sandbox().clone();
    let secret = secrecy::ExposeSecret::expose_secret(&sandbox.sumsub().webhook_secret()).to_owned();
    let secrets = |c: &mut Config| c.vars.set("KYC_GATEWAY_SUMSUB_WEBHOOK_SECRETS", secret.clone());
    let a = crate::store::replica(&sandbox_app, &db, secrets).await;
    let b = crate::store::replica(&sandbox_app, &db, secrets).await;
    let user = SUMSUB_PENDING;
    let mut ws = Ws::ready(&b, &crate::helpers::issuer_token(user, BASIC_LEVEL, false)).await;
    ws.subscribe("1", SUBSCRIBE).await;
    b.subscribed(1).await;

    // Delivered to A only; B's subscriber hears it.
    sandbox.set_webhook_targets(&[a.url("")]);
    review(&sandbox_app, user, json!({ "reviewAnswer": "GREEN" })).await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "APPROVED");

    // Delivered to both: one row, applied once, one event.
    sandbox.set_webhook_targets(&[a.url(""), b.url("")]);
    review(
        &sandbox_app,
        user,
        json!({ "reviewAnswer": "RED", "rejectLabels": ["FORGERY"], "reviewRejectType": "FINAL" }),
    )
    .await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "REJECTED");
    sandbox.webhooks_idle().await;
    assert_eq!(sandbox.sumsub().webhooks().counts().delivered, 3, "the second change reached both replicas");

    // The next event B's subscriber gets is the next change, not the second delivery of the last one.
    sandbox.set_webhook_targets(&[a.url("")]);
    review(
        &sandbox_app,
        user,
        json!({ "reviewAnswer": "RED", "rejectLabels": ["BAD_PROOF_OF_ADDRESS"], "reviewRejectType": "RETRY" }),
    )
    .await;
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "ACTION_REQUIRED");
    let statuses: Vec<String> = inbox(&a).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["processed", "processed", "processed"]);
}

#[tokio::test]
async fn the_sandbox_s_duplicated_and_reordered_deliveries_are_applied_once_and_the_newer_state_wins() {
    let app = spawn_with(|c| {
        c.sandbox.webhooks.duplicate = true;
        // Both changes fall in one window, however long the second takes to be made on a loaded machine.
        c.sandbox.webhooks.reorder_window = std::time::Duration::from_secs(2);
    })
    .await;
    let user = SUMSUB_PENDING;
    let token = user_token(user, BASIC_LEVEL);
    let mut ws = Ws::ready(&app, &token).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    review(&app, user, json!({ "reviewAnswer": "GREEN" })).await;
    // Sumsub's event times are in milliseconds: the second change must be made in a later one.
    let first = kyc_gateway::clock::unix_millis();
    while kyc_gateway::clock::unix_millis() <= first {
        tokio::task::yield_now().await;
    }
    review(&app, user, json!({ "reviewAnswer": "RED", "rejectLabels": ["FORGERY"], "reviewRejectType": "FINAL" }))
        .await;
    app.sandbox().webhooks_idle().await;
    assert_eq!(app.sandbox().sumsub().webhooks().counts().delivered, 4, "each change delivered twice");
    eventually("both events were handled", || async {
        let rows = inbox(&app).await;
        rows.len() == 2 && rows.iter().all(|(_, s)| s != "pending")
    })
    .await;
    // The newer change arrived first and was applied; the older one, arriving after it, is stale.
    let statuses: Vec<String> = inbox(&app).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["processed", "stale"]);
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "REJECTED");
    let now = app.query(&token, "{ me { verificationCases(provider: SUMSUB) { state } } }").await.ok();
    assert_eq!(now.data("me.verificationCases.0.state"), "REJECTED");
}

#[tokio::test]
async fn a_retried_old_ident_delivery_cannot_undo_a_newer_status() {
    use kyc_gateway::sandbox::ident::population::JOHN_SMITH;
    let app = spawn_with(with_secrets).await;
    let owner = "9a253758-197a-4308-8d2d-61cfe9317644";
    let mut ws = Ws::ready(&app, &user_token(owner, "uid:read kyc_application:read")).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    let settle =
        format!(r#"mutation {{ updateKycApplicationStatus(id: "{JOHN_SMITH}", status: ACCEPTED) {{ status }} }}"#);
    app.query(&crate::helpers::client_token("kyc_application:write client.users:read"), &settle).await.ok();
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "APPROVED");
    // ident retries an older delivery (`remediate`), signed anew: a later `t` than the accepted one's.
    let old = json!({"id": JOHN_SMITH, "user_id": owner, "type": "kyc", "status": "remediate"});
    let retried = ident(IDENT_SECRET, &old, kyc_gateway::clock::unix_seconds() + 60);
    assert_eq!(retried.post(&app).await.0, StatusCode::OK);
    let again = ws.event("1").await;
    assert_eq!(again["data"]["verificationChanged"]["state"], "APPROVED", "what ident says now: {again}");
    let known: String = sqlx::query_scalar("SELECT state FROM verification_versions WHERE ordering_key = $1")
        .bind(JOHN_SMITH)
        .fetch_one(app.store.pool())
        .await
        .expect("a version");
    assert_eq!(known, "APPROVED");
}

#[tokio::test]
async fn an_event_about_another_applicant_of_a_user_with_a_stored_one_reaches_no_one() {
    let app = spawn_with(with_secrets).await;
    crate::helpers::import(&app, vec![json!({ "user_id": "u-stored", "sumsub_applicant_id": "applicant-stored" })])
        .await;
    let mut ws = Ws::ready(&app, &user_token("u-stored", BASIC_LEVEL)).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    let other = sumsub(
        SUMSUB_SECRET,
        &sumsub_review("applicant-other", "u-stored", "completed", Some("GREEN"), "2026-03-01 10:00:00.000"),
    );
    assert_eq!(other.post(&app).await.0, StatusCode::OK);
    let own = sumsub(
        SUMSUB_SECRET,
        &sumsub_review("applicant-stored", "u-stored", "completed", Some("RED"), "2026-03-01 10:00:01.000"),
    );
    assert_eq!(own.post(&app).await.0, StatusCode::OK);
    let event = ws.event("1").await;
    assert_eq!(event["data"]["verificationChanged"]["state"], "REJECTED", "only the stored applicant's: {event}");
    assert_eq!(inbox(&app).await.into_iter().map(|(_, s)| s).collect::<Vec<_>>(), ["unmatched", "processed"]);
}

#[tokio::test]
async fn an_event_field_longer_than_a_notification_can_carry_is_refused() {
    let app = spawn_with(with_secrets).await;
    let mut event = sumsub_review("a1", "u1", "completed", Some("GREEN"), "2026-03-01 10:00:00.000");
    event["levelName"] = json!("l".repeat(300));
    let (status, body) = sumsub(SUMSUB_SECRET, &event).post(&app).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(inbox(&app).await.is_empty());
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn workers_of_several_replicas_apply_each_event_once() {
    let db = postgres_database().await;
    let sandbox_app = spawn().await;
    // The replicas' providers are the sandbox's Fractal and Sumsub: their secrets only.
    let secrets = |c: &mut Config| {
        c.vars.set("KYC_GATEWAY_FRACTAL_WEBHOOK_SECRETS", FRACTAL_SECRET);
        c.vars.set("KYC_GATEWAY_SUMSUB_WEBHOOK_SECRETS", SUMSUB_SECRET);
    };
    // A accepts and never works; B and C compete for its events.
    let a = crate::store::replica(&sandbox_app, &db, |c| {
        secrets(c);
        c.webhooks.worker = false;
    })
    .await;
    let b = crate::store::replica(&sandbox_app, &db, secrets).await;
    let _c = crate::store::replica(&sandbox_app, &db, secrets).await;
    let mut ws = Ws::ready(
        &b,
        &crate::helpers::issuer_token("watcher", "client.users:read uid:read verification.basic:read", true),
    )
    .await;
    ws.subscribe("1", SUBSCRIBE).await;
    b.subscribed(1).await;
    let count = 40;
    for i in 0..count {
        let body = json!({"type": "verification_approved", "data": {"level": "basic", "user_id": format!("f-{i}"), "timestamp": "2026-03-01T10:00:00Z"}});
        crate::helpers::import(
            &a,
            vec![json!({ "user_id": format!("u-{i}"), "fractal": { "uid": format!("f-{i}"), "refresh_token": "r" } })],
        )
        .await;
        assert_eq!(fractal(FRACTAL_SECRET, &body).post(&a).await.0, StatusCode::OK);
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..count {
        let event = ws.event("1").await;
        let user = event["data"]["verificationChanged"]["userId"].as_str().expect("user").to_owned();
        assert!(seen.insert(user.clone()), "{user} announced twice");
    }
    assert_eq!(seen.len(), count);
    eventually("every event was applied", || async { inbox(&a).await.iter().all(|(_, s)| s == "processed") }).await;
    let rows = inbox(&a).await;
    assert_eq!(rows.len(), count);
}

on_both_engines!(a_replay_of_a_delivery_after_the_inbox_purge_publishes_nothing_and_changes_nothing);

/// The version kept for `user`: (state, provider status, inbox row).
async fn version_of(app: &TestApp, user: &str) -> (String, String, i64) {
    let row = sqlx::query("SELECT state, provider_status, inbox_id FROM verification_versions WHERE user_id = $1")
        .bind(user)
        .fetch_one(app.store.pool())
        .await
        .expect("a version");
    (row.get("state"), row.get("provider_status"), row.get("inbox_id"))
}

async fn a_replay_of_a_delivery_after_the_inbox_purge_publishes_nothing_and_changes_nothing(db: TestDatabase) {
    let clock = kyc_gateway::clock::Clock::manual(kyc_gateway::clock::unix_millis());
    let app = spawn_on(&db, |c| {
        with_secrets(c);
        c.webhooks.clock = clock.clone();
    })
    .await;
    let user = SUMSUB_PENDING;
    let applicant = applicant_of(&app, user);
    let mut ws = Ws::ready(&app, &user_token(user, BASIC_LEVEL)).await;
    ws.subscribe("1", SUBSCRIBE).await;
    app.subscribed(1).await;
    let earlier = sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "onHold", None, "2026-03-01 10:00:00.400"));
    let latest =
        sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "completed", Some("GREEN"), "2026-03-01 10:00:00.500"));
    assert_eq!(earlier.post(&app).await.1, json!({ "status": "accepted" }));
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "IN_REVIEW");
    assert_eq!(latest.post(&app).await.1, json!({ "status": "accepted" }));
    assert_eq!(ws.event("1").await["data"]["verificationChanged"]["state"], "APPROVED");
    eventually("both events were applied", || async {
        inbox(&app).await.iter().filter(|(_, s)| s == "processed").count() == 2
    })
    .await;
    let applied = version_of(&app, user).await;

    // Eight days later the worker's purge has run: the superseded event's key is gone, the latest one's is kept.
    clock.advance(std::time::Duration::from_secs(8 * 24 * 3600));
    eventually("the purge ran", || async { inbox(&app).await.len() < 2 }).await;
    assert_eq!(latest.post(&app).await.1, json!({ "status": "duplicate" }), "the latest delivery, replayed");
    assert_eq!(earlier.post(&app).await.1, json!({ "status": "accepted" }), "a superseded one, replayed");
    eventually("the replays were handled", || async { inbox(&app).await.iter().all(|(_, s)| s != "pending") }).await;
    assert_eq!(
        inbox(&app).await.into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        ["processed", "stale"],
        "the replayed superseded event is stale"
    );
    assert_eq!(version_of(&app, user).await, applied, "no state changed");
    // The next event the subscriber sees is a genuinely new one: neither replay was published.
    let later = sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "onHold", None, "2026-03-01 10:00:01.000"));
    assert_eq!(later.post(&app).await.1, json!({ "status": "accepted" }));
    let next = ws.event("1").await;
    assert_eq!(next["data"]["verificationChanged"]["state"], "IN_REVIEW", "{next}");
}

on_both_engines!(two_deliveries_of_one_event_time_end_in_the_same_state_whichever_arrives_first);

async fn two_deliveries_of_one_event_time_end_in_the_same_state_whichever_arrives_first(db: TestDatabase) {
    let other = match db.engine {
        "sqlite" => sqlite_database(),
        _ => postgres_database().await,
    };
    let mut ends = Vec::new();
    for (db, order) in [(&db, [0, 1]), (&other, [1, 0])] {
        let app = spawn_on(db, with_secrets).await;
        let user = SUMSUB_PENDING;
        let applicant = applicant_of(&app, user);
        let at = "2026-03-01 10:00:00.500";
        let deliveries = [
            sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "completed", Some("GREEN"), at)),
            sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "completed", Some("RED"), at)),
        ];
        for i in order {
            assert_eq!(deliveries[i].post(&app).await.1, json!({ "status": "accepted" }));
        }
        eventually("both events were handled", || async {
            let rows = inbox(&app).await;
            rows.len() == 2 && rows.iter().all(|(_, s)| s != "pending")
        })
        .await;
        let (state, status, _) = version_of(&app, user).await;
        ends.push((state, status));
        app.stop().await;
    }
    assert_eq!(ends[0], ends[1], "the same pair of deliveries, in either order");
}
