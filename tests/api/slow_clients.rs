//! Clients that hold connections without finishing with them: a body that trickles in, many of them, and WebSocket
//! connections that never say who they are. None of them may lock real callers out or take the process past its
//! bound on open connections.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{client_token, eventually, spawn_with, user_token, TestApp, SEED};
use crate::ws::{Ws, TRANSPORT_WS};

/// Opens a connection and sends a POST's headers (with `token`, if any) announcing `length` bytes of body, and
/// `sent` of them (as far as the server takes them: it may close the connection).
async fn body_in_progress(app: &TestApp, token: Option<&str>, length: usize, sent: &[u8]) -> TcpStream {
    let mut socket = TcpStream::connect(app.addr).await.expect("connects");
    let authorization = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: kyc\r\n{authorization}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    if socket.write_all(head.as_bytes()).await.is_ok() {
        let _ = socket.write_all(sent).await;
    }
    socket
}

/// A health check on a connection of its own.
async fn healthy(app: &TestApp) -> Result<StatusCode, String> {
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(3)).build().expect("client");
    http.get(app.url("/healthz")).send().await.map(|r| r.status()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_body_that_keeps_trickling_in_is_cut_at_the_body_deadline_with_408() {
    let app = spawn_with(|c| c.connections.body_timeout = Duration::from_millis(500)).await;
    let token = user_token(SEED, "uid:read");
    let mut socket = body_in_progress(&app, Some(&token), 100_000, b"{").await;
    let (mut read, mut write) = socket.split();
    // One byte every 50 ms: each arrives well within any per-read timeout, the whole would take over an hour.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if write.write_all(b" ").await.is_err() {
                return;
            }
        }
    };
    let answer = async {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answer = tokio::select! {
        answer = answer => answer,
        _ = trickle => panic!("the connection stopped taking bytes before answering"),
        _ = tokio::time::sleep(Duration::from_secs(15)) => panic!("no answer while the body kept trickling in"),
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
}

#[tokio::test]
async fn connections_still_receiving_their_body_make_room_for_new_callers() {
    // A long body deadline: only making room can keep the health check answering.
    let app = spawn_with(|c| {
        c.connections.max_connections = Some(8);
        c.connections.body_timeout = Duration::from_secs(60);
    })
    .await;
    // Callers with a valid token (a request without one is refused before its body is read).
    let token = user_token(SEED, "uid:read");
    let mut attackers = Vec::new();
    for _ in 0..24 {
        attackers.push(body_in_progress(&app, Some(&token), 100_000, b"{\"query\":").await);
    }
    for round in 0..10 {
        assert_eq!(healthy(&app).await, Ok(StatusCode::OK), "health check {round}");
    }
    // A real caller's request, whose body arrives at once, is served too.
    assert_eq!(app.query(&token, "{ me { id } }").await.body["data"]["me"]["id"], SEED);
    drop(attackers);
}

#[tokio::test]
async fn websocket_connections_count_against_the_connection_bound_and_unidentified_ones_make_room() {
    let max = 6;
    let app = spawn_with(|c| c.connections.max_connections = Some(max)).await;
    let token = user_token(SEED, "uid:read");
    let mut callers = Vec::new();
    for _ in 0..3 {
        callers.push(Ws::ready(&app, &token).await);
    }
    // Upgrades that never send `connection_init`: each new connection past the bound closes the oldest of them.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(Ws::connect(&app, TRANSPORT_WS).await);
    }
    assert_eq!(healthy(&app).await, Ok(StatusCode::OK));
    // Waited for together: the evicted ones close at once, the others stay quiet for the whole wait.
    let outcomes = futures_util::future::join_all(silent.iter_mut().map(|ws| ws.closed_within(Duration::from_secs(3))));
    let mut open = 0;
    for outcome in outcomes.await {
        match outcome {
            None => open += 1,
            Some(closed) => assert_eq!(closed.code, 1013, "{closed:?}"),
        }
    }
    assert!(open <= max - callers.len(), "{open} unidentified WebSocket connections stayed open past the bound");
    // The callers who identified themselves kept their connections.
    for ws in &mut callers {
        assert_eq!(ws.closed_within(Duration::from_millis(100)).await, None);
    }
}

#[tokio::test]
async fn a_request_without_a_valid_token_is_refused_before_its_body_is_read() {
    // A body deadline far beyond the test's patience: only answering before the body can pass.
    let app = spawn_with(|c| c.connections.body_timeout = Duration::from_secs(120)).await;
    let mut socket = body_in_progress(&app, None, 100_000, b"{\"query\":").await;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let read = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("an answer before the body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn an_operation_that_runs_on_after_its_client_left_still_counts_against_the_callers_in_flight_bound() {
    let app = spawn_with(|c| c.connections.max_in_flight_per_caller = 1).await;
    // ident answers after a minute: the mutation runs on long after its client left, and past this test's end.
    app.sandbox().ident().faults().set(kyc_gateway::sandbox::Faults { latency_ms: 60_000, ..Default::default() });
    let token = client_token("kyc_application:write client.users:read");
    let settle = format!(
        r#"mutation {{ updateKycApplicationStatus(id: "{}", status: ACCEPTED) {{ status }} }}"#,
        kyc_gateway::sandbox::ident::population::JOHN_SMITH
    );
    let (http, url, bearer) = (app.http.clone(), app.url("/graphql"), token.clone());
    let abandoned = tokio::spawn(async move {
        http.post(url).bearer_auth(bearer).json(&serde_json::json!({ "query": settle })).send().await
    });
    eventually("the mutation is under way at ident", || async { app.sandbox().ident().faults().in_progress() >= 1 })
        .await;
    abandoned.abort();
    // While it runs, the caller is at its bound: every one more is 429.
    for asked in 0..5 {
        let answer = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS, "request {asked} got past the caller's bound");
    }
    assert!(app.sandbox().ident().faults().in_progress() >= 1, "the mutation was still running");
}
