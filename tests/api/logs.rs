//! Logs carry no personal data and no secrets, even at the most verbose level.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::{client_token, user_token, SEED};

#[tokio::test]
async fn trace_logs_hold_no_personal_data_tokens_or_secrets() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace")
        .env("KYC_GATEWAY_SANDBOX_USERS", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let url = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the server logs its address");
        let found = line.split("listening on ").nth(1).and_then(|s| s.split_whitespace().next()).map(str::to_owned);
        log.push(line);
        if let Some(url) = found {
            break url;
        }
    };

    let user = user_token(
        SEED,
        "uid:read contact:read verification.plus:read verification.plus.details:read verification.wallet:read",
    );
    let client = client_token("client.stats:read client.users:read uid:read");
    let http = reqwest::Client::new();
    let queries = [
        (user.as_str(), "{ me { id emails { address } phones { number } wallets { address } verificationCases { details { fullName dateOfBirth identificationDocumentNumber } } } }"),
        (client.as_str(), "{ verificationStats { total { approved } users(first: 5) { edges { node { userId } } } } }"),
        ("not-a-token", "{ me { id } }"),
    ];
    for (token, query) in queries {
        let response = http
            .post(format!("{url}/graphql"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .expect("answer");
        let body = response.text().await.expect("body");
        if token == user {
            assert!(body.contains("David Muller"), "the query itself worked: {body}");
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().expect("stops");
    let _ = child.wait();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(log.lines().count() > 10, "trace logging is on: {log}");
    for needle in [
        "David Muller",
        "1967-08-16",
        "123456789",
        "+44000000000",
        "[email protected]",
        "0x2003",
        user.as_str(),
        client.as_str(),
        "not-a-token",
        "client_secret=",
        "refresh_token=",
        "access_token",
        "Bearer ey",
    ] {
        assert!(!log.contains(needle), "the log holds {needle:?}");
    }
}
