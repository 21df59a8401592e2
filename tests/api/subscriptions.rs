//! `verificationChanged` over real WebSocket connections: the loop from a provider's change to a subscriber and the
//! next query, the same authorization as queries, both protocols, the bounds, and closing (token expiry, a slow
//! subscriber, shutdown).

use std::time::Duration;

use kyc_gateway::auth::token::{mint_dev_token, Subject, DEFAULT_DEV_SECRET};
use kyc_gateway::config::TrustedMode;
use kyc_gateway::domain::events::VerificationEvent;
use kyc_gateway::domain::{level_items, KycState, Provider};
use kyc_gateway::graphql::sha256_hex;
use kyc_gateway::secret::Secret;
use kyc_gateway::store::changes::Change;
use serde_json::{json, Value};

use crate::helpers::{client_token, spawn, spawn_with, user_token, TestApp, SEED};
use crate::webhooks::{
    applicant_of, fractal, sumsub, sumsub_review, with_secrets, BASIC_LEVEL, FRACTAL_SECRET, SUMSUB_PENDING,
    SUMSUB_SECRET,
};
use crate::ws::{Closed, Ws, LEGACY_WS, TRANSPORT_WS};

const EVENTS: &str = "subscription { verificationChanged { userId provider level state providerStatus } }";

/// Publishes a verification event on the app's change channel, as the webhook worker does.
pub async fn publish(app: &TestApp, user: &str, level: &str, status: &str) {
    let event = VerificationEvent {
        user_id: crate::helpers::uid(user),
        kind: kyc_gateway::domain::events::EventKind::Case,
        provider: Provider::Sumsub,
        level: level.into(),
        level_items: level_items(level),
        state: KycState::Pending,
        provider_status: status.into(),
        occurred_at: kyc_gateway::clock::unix_millis(),
    };
    app.changes.publish(&Change::Verification { event }).await.expect("published");
}

fn changed(payload: &Value) -> &Value {
    &payload["data"]["verificationChanged"]
}

/// The errors of a refused subscribe, whether the server answered with `error` or with `next` and errors.
async fn refusal(ws: &mut Ws, id: &str) -> Vec<String> {
    let message = ws.message().await;
    assert_eq!(message["id"], id, "{message}");
    let errors = match message["type"].as_str() {
        Some("error") => message["payload"].clone(),
        Some("next") => message["payload"]["errors"].clone(),
        other => panic!("expected a refusal, got {other:?}: {message}"),
    };
    errors
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn a_subscriber_hears_the_sandbox_s_approval_and_the_next_query_sees_it() {
    // The worker polls its inbox only hourly: the event arrives because the webhook woke it, not by a poll.
    let app = spawn_with(|c| {
        c.cache.status_ttl = Duration::from_secs(3600);
        c.webhooks.poll_interval = Duration::from_secs(3600);
    })
    .await;
    let user = SUMSUB_PENDING;
    let token = user_token(user, BASIC_LEVEL);
    let state = "{ me { verificationCases(provider: SUMSUB) { state } } }";
    let before = app.query(&token, state).await.ok();
    assert_eq!(before.data("me.verificationCases.0.state"), "PENDING");

    let mut ws = Ws::ready(&app, &token).await;
    ws.subscribe("1", EVENTS).await;
    app.subscribed(1).await;
    let sumsub = app.sandbox().sumsub().base_url().to_owned();
    let answer = app
        .http
        .post(format!("{sumsub}/_sandbox/applicants/{user}/review"))
        .json(&json!({ "reviewAnswer": "GREEN" }))
        .send()
        .await
        .expect("the sandbox answers");
    assert!(answer.status().is_success(), "{}", answer.status());
    let event = ws.event("1").await;
    assert_eq!(
        changed(&event),
        &json!({ "userId": user, "provider": "SUMSUB", "level": "basic-kyc-level", "state": "APPROVED", "providerStatus": "completed" }),
        "{event}"
    );
    // The cached PENDING (an hour to live) was dropped: the next query reads the provider again.
    let after = app.query(&token, state).await.ok();
    assert_eq!(after.data("me.verificationCases.0.state"), "APPROVED");
}

#[tokio::test]
async fn a_user_token_cannot_watch_another_user_and_a_client_needs_users_read() {
    let app = spawn().await;
    let mut ws = Ws::ready(&app, &user_token(SUMSUB_PENDING, BASIC_LEVEL)).await;
    ws.subscribe("1", r#"subscription { verificationChanged(userId: "someone-else") { state } }"#).await;
    assert_eq!(refusal(&mut ws, "1").await, ["UNAUTHORIZED_FIELD_OR_TYPE"]);
    let mut client = Ws::ready(&app, &client_token(BASIC_LEVEL)).await;
    client.subscribe("1", EVENTS).await;
    assert_eq!(refusal(&mut client, "1").await, ["UNAUTHORIZED_FIELD_OR_TYPE"]);
}

#[tokio::test]
async fn events_pass_the_same_scope_rules_as_queries() {
    let app = spawn_with(with_secrets).await;
    let user = SUMSUB_PENDING;
    // `verification.basic:read` alone: Sumsub's basic-kyc-level is basic+selfie+liveness, so its events are not
    // this token's; Fractal's `basic` ones are, but without `uid:read` their `userId` is denied as `User.id` is.
    let mut ws = Ws::ready(&app, &user_token(user, "verification.basic:read")).await;
    ws.subscribe("1", EVENTS).await;
    app.subscribed(1).await;
    let applicant = applicant_of(&app, user);
    let hidden =
        sumsub(SUMSUB_SECRET, &sumsub_review(&applicant, user, "completed", Some("GREEN"), "2026-03-01 10:00:00.000"));
    assert_eq!(hidden.post(&app).await.0, reqwest::StatusCode::OK);
    let visible = fractal(
        FRACTAL_SECRET,
        &json!({"type": "verification_rejected", "data": {"level": "basic", "user_id": user, "timestamp": "2026-03-01T10:00:01Z"}}),
    );
    assert_eq!(visible.post(&app).await.0, reqwest::StatusCode::OK);
    let event = ws.event("1").await;
    assert_eq!(changed(&event)["provider"], "FRACTAL", "the Sumsub event never arrives: {event}");
    assert_eq!(changed(&event)["state"], "REJECTED");
    assert_eq!(changed(&event)["userId"], Value::Null);
    assert_eq!(event["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{event}");
    assert_eq!(event["errors"][0]["path"], json!(["verificationChanged", "userId"]));
}

#[tokio::test]
async fn a_slow_subscriber_is_closed_without_holding_up_a_fast_one() {
    let app = spawn_with(|c| {
        c.subscriptions.buffer = 64;
        c.subscriptions.send_timeout = Duration::from_secs(30);
    })
    .await;
    let token = client_token("client.users:read uid:read verification.basic:read");
    let mut fast = Ws::ready(&app, &token).await;
    fast.subscribe("f", EVENTS).await;
    let mut slow = Ws::connect_small(&app, TRANSPORT_WS).await;
    assert_eq!(slow.init(&token).await.expect("ack")["type"], "connection_ack");
    slow.subscribe("s", EVENTS).await;
    app.subscribed(2).await;
    publish(&app, "warm-up", "basic", "x").await;
    assert_eq!(changed(&fast.event("f").await)["userId"], "warm-up");
    assert_eq!(changed(&slow.event("s").await)["userId"], "warm-up");

    // The slow one stops reading. Each event carries a kilobyte, so its socket buffers fill after a few thousand.
    let padding = "p".repeat(1024);
    let (bursts, per_burst) = (300, 20);
    for burst in 0..bursts {
        for i in 0..per_burst {
            publish(&app, &format!("u{burst}-{i}"), "basic", &padding).await;
        }
        for i in 0..per_burst {
            let event = fast.event("f").await;
            assert_eq!(changed(&event)["userId"], format!("u{burst}-{i}"), "the fast one gets every event, in order");
        }
    }
    // Now it reads: what its buffers held, then the close.
    let mut received = 0;
    let closed = loop {
        match slow.next().await {
            Ok(message) if message["type"] == "next" => received += 1,
            Ok(message) => panic!("unexpected {message}"),
            Err(closed) => break closed,
        }
    };
    assert!(received < bursts * per_burst, "it was closed before the end ({received} events)");
    assert_eq!(closed, Closed { code: 1013, reason: "subscriber too slow: it fell behind its buffer".into() });
    // The fast one is still open.
    publish(&app, "after", "basic", "x").await;
    assert_eq!(changed(&fast.event("f").await)["userId"], "after");
}

#[tokio::test]
async fn a_connection_ends_when_its_token_expires() {
    let app = spawn().await;
    let token = mint_dev_token(&Secret::new(DEFAULT_DEV_SECRET), &Subject::User("u1".into()), "uid:read", 2);
    let mut ws = Ws::ready(&app, &token).await;
    ws.subscribe("1", EVENTS).await;
    assert_eq!(ws.closed().await, Closed { code: 4403, reason: "token expired".into() });
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_is_served_too() {
    let app = spawn().await;
    let mut ws = Ws::connect(&app, LEGACY_WS).await;
    assert_eq!(
        ws.init(&user_token("u1", "uid:read verification.basic:read")).await.expect("ack")["type"],
        "connection_ack"
    );
    ws.subscribe("1", EVENTS).await;
    app.subscribed(1).await;
    publish(&app, "u1", "basic", "pending").await;
    assert_eq!(changed(&ws.event("1").await)["userId"], "u1");
}

#[tokio::test]
async fn misuse_of_the_protocol_gets_its_own_close_code_or_error() {
    let app = spawn_with(|c| {
        c.subscriptions.max_per_connection = 2;
        c.subscriptions.max_connections_per_caller = 1;
        c.subscriptions.init_timeout = Duration::from_millis(300);
    })
    .await;
    let token = user_token("u1", "uid:read verification.basic:read");

    let mut bad = Ws::connect(&app, TRANSPORT_WS).await;
    assert_eq!(bad.init("not-a-token").await.expect_err("closed").code, 4403);
    let mut early = Ws::connect(&app, TRANSPORT_WS).await;
    early.subscribe("1", EVENTS).await;
    assert_eq!(early.closed().await.code, 4401);
    let mut silent = Ws::connect(&app, TRANSPORT_WS).await;
    assert_eq!(silent.closed().await, Closed { code: 4408, reason: "Connection initialisation timeout".into() });

    let mut ws = Ws::ready(&app, &token).await;
    let mut second = Ws::connect(&app, TRANSPORT_WS).await;
    let refused = second.init(&token).await.expect_err("one connection per caller here");
    assert_eq!(refused.code, 4429, "{refused:?}");
    ws.send(json!({ "type": "subscribe", "id": "q", "payload": { "query": "{ me { id } }" } })).await;
    assert_eq!(refusal(&mut ws, "q").await, ["BAD_REQUEST"], "queries go over HTTP");
    ws.subscribe("1", EVENTS).await;
    ws.subscribe("2", EVENTS).await;
    ws.subscribe("3", EVENTS).await;
    assert_eq!(refusal(&mut ws, "3").await, ["TOO_MANY_SUBSCRIPTIONS"]);
    ws.subscribe("1", EVENTS).await;
    assert_eq!(ws.closed().await, Closed { code: 4409, reason: "Subscriber for 1 already exists".into() });
}

/// The answer to a `subscribe` (or legacy `start`) sent by hash alone: a persisted document's text is looked up before
/// the gateway decides whether it may run over WebSocket.
async fn subscribe_by_hash(ws: &mut Ws, id: &str, hash: &str) -> Value {
    let kind = if ws.protocol == TRANSPORT_WS { "subscribe" } else { "start" };
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    ws.send(json!({ "type": kind, "id": id, "payload": { "extensions": extensions } })).await;
    ws.message().await
}

/// The `extensions.code` of a refused operation's answer, in either protocol.
fn refused_code(message: &Value) -> &str {
    let error = match (message["type"].as_str(), &message["payload"]) {
        (Some("error"), Value::Array(errors)) => &errors[0],
        (Some("error"), error) => error,
        _ => &message["payload"]["errors"][0],
    };
    error["extensions"]["code"].as_str().unwrap_or("<none>")
}

async fn audit_records(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_records").fetch_one(app.store.pool()).await.expect("count")
}

#[tokio::test]
async fn a_persisted_query_or_mutation_sent_by_hash_over_websocket_is_refused_and_reads_nothing() {
    let app = spawn().await;
    let staff = client_token("client.users:read contact:read");
    let user = user_token(SEED, "fractal.link:write");
    let query = format!(r#"{{ user(id: "{SEED}") {{ emails {{ address }} }} }}"#);
    let mutation = "mutation { unlinkFractal }";
    for (token, document) in [(&staff, query.as_str()), (&user, mutation)] {
        let hash = sha256_hex(document);
        let body =
            json!({ "query": document, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
        let registered: Value = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert!(registered["errors"].is_null(), "registered over HTTP: {registered:#}");
    }
    let recorded = audit_records(&app).await;

    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        for (token, document) in [(&staff, query.as_str()), (&user, mutation)] {
            let mut ws = Ws::connect(&app, protocol).await;
            assert_eq!(ws.init(token).await.expect("ack")["type"], "connection_ack");
            let answer = subscribe_by_hash(&mut ws, "1", &sha256_hex(document)).await;
            assert_eq!(refused_code(&answer), "BAD_REQUEST", "{protocol}, {document}: {answer}");
            assert!(answer["payload"]["data"].is_null(), "nothing ran: {answer}");
        }
    }
    assert_eq!(audit_records(&app).await, recorded, "nothing was read or written unrecorded");
}

#[tokio::test]
async fn a_safelisted_query_sent_by_hash_over_websocket_is_refused_and_a_safelisted_subscription_runs() {
    let query = format!(r#"{{ user(id: "{SEED}") {{ emails {{ address }} }} }}"#);
    let manifest =
        std::env::temp_dir().join(format!("kyc-gateway-safelist-{}.json", kyc_gateway::secret::random_token()));
    let operations: Vec<Value> =
        [query.as_str(), EVENTS].iter().map(|body| json!({ "id": sha256_hex(body), "body": body })).collect();
    let listed = json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": operations });
    std::fs::write(&manifest, listed.to_string()).expect("written");
    let app = spawn_with(|c| {
        c.documents.mode = TrustedMode::Safelist;
        c.documents.safelist = Some(manifest.clone());
    })
    .await;
    let _ = std::fs::remove_file(&manifest);
    let token = client_token("client.users:read contact:read uid:read verification.basic:read");

    let mut ws = Ws::ready(&app, &token).await;
    let answer = subscribe_by_hash(&mut ws, "q", &sha256_hex(&query)).await;
    assert_eq!(refused_code(&answer), "BAD_REQUEST", "{answer}");
    assert!(answer["payload"]["data"].is_null(), "nothing ran: {answer}");
    assert_eq!(audit_records(&app).await, 0);

    let kind = "subscribe";
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(EVENTS) } });
    ws.send(json!({ "type": kind, "id": "s", "payload": { "extensions": extensions } })).await;
    app.subscribed(1).await;
    publish(&app, "u1", "basic", "pending").await;
    assert_eq!(changed(&ws.event("s").await)["userId"], "u1");
}

#[tokio::test]
async fn shutting_down_closes_subscribers_with_going_away() {
    let app = spawn().await;
    let mut ws = Ws::ready(&app, &user_token("u1", "uid:read")).await;
    ws.subscribe("1", EVENTS).await;
    let stopped = tokio::spawn(app.stop());
    assert_eq!(ws.closed().await, Closed { code: 1001, reason: "server shutting down".into() });
    stopped.await.expect("stopped");
}

#[tokio::test]
async fn an_application_s_new_status_reaches_its_owner_through_ident_s_webhook() {
    use kyc_gateway::sandbox::ident::population::JOHN_SMITH;
    let app = spawn().await;
    let owner = "9a253758-197a-4308-8d2d-61cfe9317644";
    let mut ws = Ws::ready(&app, &user_token(owner, "uid:read kyc_application:read")).await;
    ws.subscribe("1", EVENTS).await;
    app.subscribed(1).await;
    let settle =
        format!(r#"mutation {{ updateKycApplicationStatus(id: "{JOHN_SMITH}", status: ACCEPTED) {{ status }} }}"#);
    app.query(&client_token("kyc_application:write client.users:read"), &settle).await.ok();
    let event = ws.event("1").await;
    assert_eq!(
        changed(&event),
        &json!({ "userId": owner, "provider": "IDENT", "level": "kyc", "state": "APPROVED", "providerStatus": "accepted" }),
        "{event}"
    );
}

#[tokio::test]
async fn completing_and_resubscribing_an_id_does_not_slip_past_the_subscription_limit() {
    let app = spawn_with(|c| c.subscriptions.max_per_connection = 2).await;
    let mut ws = Ws::ready(&app, &user_token("u1", "uid:read")).await;
    for i in 0..5 {
        let id = format!("x{i}");
        ws.subscribe(&id, EVENTS).await;
        ws.send(json!({ "type": "complete", "id": id })).await;
        ws.subscribe(&id, EVENTS).await;
    }
    // A ping after them: its pong comes once everything before it was handled.
    ws.send(json!({ "type": "ping" })).await;
    let mut refused = 0;
    loop {
        let message = ws.message().await;
        match message["type"].as_str() {
            Some("pong") => break,
            Some("error") => {
                assert_eq!(message["payload"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS", "{message}");
                refused += 1;
            }
            _ => panic!("unexpected {message}"),
        }
    }
    // Ten subscribes, at most two streams at a time: x0 and x1 run (each completed once and subscribed again), the
    // six subscribes of x2, x3 and x4 are refused. The engine handles messages in order, so a completed stream has
    // ended before the next subscribe starts one, however late its confirmation comes back: the count is exact.
    assert_eq!(refused, 6);
    app.subscribed(2).await;
}

#[tokio::test]
async fn a_client_at_its_limit_may_complete_a_subscription_and_start_another_at_once() {
    let app = spawn_with(|c| c.subscriptions.max_per_connection = 1).await;
    let mut ws = Ws::ready(&app, &user_token("u1", "uid:read verification.basic:read")).await;
    for i in 0..20 {
        let id = format!("x{i}");
        ws.subscribe(&id, EVENTS).await;
        ws.send(json!({ "type": "complete", "id": id })).await;
    }
    ws.subscribe("last", EVENTS).await;
    ws.send(json!({ "type": "ping" })).await;
    let message = ws.message().await;
    assert_eq!(message["type"], "pong", "no subscribe was refused: {message}");
    app.subscribed(1).await;
    publish(&app, "u1", "basic", "pending").await;
    assert_eq!(changed(&ws.event("last").await)["userId"], "u1");
}

#[tokio::test]
async fn an_id_too_long_for_a_close_frame_is_refused_and_the_replica_bounds_its_sockets() {
    let app = spawn().await;
    let mut ws = Ws::ready(&app, &user_token("u1", "uid:read")).await;
    ws.subscribe(&"i".repeat(100), EVENTS).await;
    assert_eq!(ws.closed().await.code, 4400);
    let app = spawn_with(|c| c.subscriptions.max_connections = 2).await;
    let _first = Ws::connect(&app, TRANSPORT_WS).await;
    let _second = Ws::connect(&app, TRANSPORT_WS).await;
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/graphql/ws",
        app.addr
    ))
    .expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", TRANSPORT_WS.parse().expect("header"));
    let refused = tokio_tungstenite::connect_async(request).await.expect_err("a third socket is refused");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
}
