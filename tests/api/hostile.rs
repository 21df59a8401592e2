//! What an attacker can make the gateway do: hostile documents refused with their codes before they cost anything,
//! abandoned requests dropped with their provider calls, half-sent requests unable to lock anyone out, and callers
//! bounded in what they hold.

use std::time::Duration;

use kyc_gateway::sandbox::Faults;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{client_token, eventually, spawn, spawn_with, user_token, Process, SEED};

/// The fragment bomb: `kycApplications { user { ... } }` ten times per level, six levels deep, under the
/// depth limit.
pub fn fragment_bomb() -> String {
    let mut query = String::from("{ me { ...U0 } }\n");
    for level in 0..6 {
        let spreads: String =
            (0..10).map(|i| format!(" a{i}: kycApplications {{ user {{ ...U{} }} }}", level + 1)).collect();
        query.push_str(&format!("fragment U{level} on User {{{spreads} }}\n"));
    }
    query.push_str("fragment U6 on User { id }\n");
    query
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn hostile_documents_are_refused_with_their_own_codes_before_anything_runs() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read kyc_application:read verification.basic:read");
    let before = app.sandbox().requests();
    let bomb = app.query(&token, &fragment_bomb()).await;
    assert_eq!(code(&bomb.body), "ALIAS_LIMIT_EXCEEDED", "{:#}", bomb.body);
    // With aliases allowed, the cost refuses it, and says what it computed.
    let roomy = spawn_with(|c| c.limits.max_aliases = 1000).await;
    let costly = roomy.query(&token, &fragment_bomb()).await;
    assert_eq!(code(&costly.body), "COST_LIMIT_EXCEEDED", "{:#}", costly.body);
    assert!(costly.body["errors"][0]["extensions"]["cost"].as_u64().is_some_and(|c| c > 20_000), "{:#}", costly.body);
    assert_eq!(costly.body["errors"][0]["extensions"]["limit"], 20_000);

    let aliases: String =
        (0..10_000).map(|i| format!(" a{i}: me {{ verificationCases {{ details {{ fullName }} }} }}")).collect();
    let many = app.query(&token, &format!("{{{aliases} }}")).await;
    assert_eq!(code(&many.body), "QUERY_TOO_LARGE", "{:#}", many.body);
    let fewer: String = (0..2_000).map(|i| format!(" a{i}: me {{ id }}")).collect();
    assert_eq!(code(&app.query(&token, &format!("{{{fewer} }}")).await.body), "ALIAS_LIMIT_EXCEEDED");
    let directives = format!("{{ me {{ id{} }} }}", "@a".repeat(100_000));
    assert_eq!(code(&app.query(&token, &directives).await.body), "DIRECTIVE_LIMIT_EXCEEDED");
    assert_eq!(app.sandbox().requests(), before, "no provider was asked anything");
}

#[tokio::test]
async fn a_connections_first_and_a_variables_value_or_default_size_the_cost() {
    let app = spawn_with(|c| c.limits.max_cost = 300).await;
    let staff = client_token("client.users:read uid:read kyc_application:read");
    let cost = |answer: &crate::helpers::Gql| answer.body["errors"][0]["extensions"]["cost"].clone();
    // kycApplications 1 + edges 1 + first x (node 1 + id 1 + user 1 + id 1)
    let page =
        |first: &str| format!("{{ kycApplications(first: {first}) {{ edges {{ node {{ id user {{ id }} }} }} }} }}");
    let few = app.query(&staff, &page("10")).await;
    assert!(!few.codes().contains(&"COST_LIMIT_EXCEEDED".to_owned()), "{:#}", few.body);
    let many = app.query(&staff, &page("100")).await;
    assert_eq!((many.codes(), cost(&many)), (vec!["COST_LIMIT_EXCEEDED".to_owned()], json!(402)), "{:#}", many.body);

    let by_variable = format!("query($n: Int) {}", page("$n"));
    let supplied = app.query_vars(&staff, &by_variable, json!({ "n": 100 })).await;
    assert_eq!(cost(&supplied), json!(402), "{:#}", supplied.body);
    let by_default = format!("query($n: Int = 100) {}", page("$n"));
    let defaulted = app.query(&staff, &by_default).await;
    assert_eq!(cost(&defaulted), json!(402), "{:#}", defaulted.body);

    // users 1 + 400 x id 1, whether the ids are written inline or are a variable's default.
    let ids: Vec<String> = (0..400).map(|i| format!("\"u{i}\"")).collect();
    let inline = format!("{{ users(ids: [{}]) {{ id }} }}", ids.join(","));
    let by_default = format!("query($ids: [ID!]! = [{}]) {{ users(ids: $ids) {{ id }} }}", ids.join(","));
    for document in [inline, by_default] {
        let answer = app.query(&staff, &document).await;
        assert_eq!(cost(&answer), json!(401), "{:#}", answer.body);
    }
}

#[tokio::test]
async fn an_answer_past_its_size_bound_is_one_error_and_errors_are_counted_past_theirs() {
    let app = spawn_with(|c| {
        c.limits.max_response_bytes = 120;
        c.limits.max_errors = 3;
    })
    .await;
    let token = user_token(SEED, "uid:read contact:read verification.plus:read verification.plus.details:read");
    let big = app
        .query(&token, "{ me { id emails { address } verificationCases { level details { fullName dateOfBirth } } } }")
        .await;
    assert_eq!(big.body["data"], Value::Null, "{:#}", big.body);
    assert_eq!(big.codes(), ["RESPONSE_TOO_LARGE"]);
    let denied: String = (0..6).map(|i| format!(" a{i}: me {{ phones {{ number }} }}")).collect();
    let many = app.query(&user_token(SEED, "uid:read"), &format!("{{{denied} }}")).await;
    assert_eq!(many.codes(), ["UNAUTHORIZED_FIELD_OR_TYPE", "UNAUTHORIZED_FIELD_OR_TYPE", "TOO_MANY_ERRORS"]);
    assert!(many.errors()[2]["message"].as_str().is_some_and(|m| m.starts_with("4 more errors")), "{:#}", many.body);
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_provider_calls_it_started() {
    let app = spawn().await;
    // Every provider answers after a minute: only a cancelled call ends sooner.
    app.sandbox().set_faults(&Faults { latency_ms: 60_000, ..Faults::default() });
    let token = user_token(SEED, &format!("uid:read {}", crate::helpers::ALL_ITEMS));
    let (http, url) = (app.http.clone(), app.url("/graphql"));
    let query = json!({ "query": "{ me { verificationCases { level state } } }" });
    let abandoned = tokio::spawn(async move { http.post(url).bearer_auth(token).json(&query).send().await });
    let in_progress = || {
        let s = app.sandbox();
        s.fractal().faults().in_progress()
            + s.sumsub().faults().in_progress()
            + s.sila().faults().in_progress()
            + s.ident().faults().in_progress()
    };
    eventually("the providers are being called", || async { in_progress() >= 2 }).await;
    abandoned.abort();
    eventually("the provider calls ended with the request (well before the minute)", || async { in_progress() == 0 })
        .await;
}

#[tokio::test]
async fn a_caller_has_a_bounded_number_of_requests_in_flight() {
    let app = spawn_with(|c| c.connections.max_in_flight_per_caller = 1).await;
    app.sandbox().sumsub().faults().set(Faults { latency_ms: 60_000, ..Faults::default() });
    let token = user_token(SEED, crate::helpers::ALL_ITEMS);
    let (http, url, slow_token) = (app.http.clone(), app.url("/graphql"), token.clone());
    let query = json!({ "query": "{ me { verificationCases(provider: SUMSUB) { level } } }" });
    let slow = tokio::spawn(async move { http.post(url).bearer_auth(slow_token).json(&query).send().await });
    eventually("the first request is in flight", || async { app.sandbox().sumsub().faults().in_progress() == 1 }).await;
    let second = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["retry-after"], "1");
    let body: Value = second.json().await.expect("json");
    assert_eq!(code(&body), "RATE_LIMITED");
    // Another caller is not affected.
    let other = app.query(&user_token("someone-else", "uid:read"), "{ me { id } }").await;
    assert_eq!(other.status, StatusCode::OK);
    slow.abort();
    eventually("the slot is freed", || async {
        app.http
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ me { id } }" }))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
}

#[tokio::test]
async fn json_values_count_toward_the_answers_size_bound() {
    let app = spawn_with(|c| c.limits.max_response_bytes = 12_000).await;
    let staff = client_token(
        "client.users:read kyc_application:read verification.basic.details:read verification.plus.details:read",
    );
    let ids = app.query(&staff, "{ kycApplications(first: 100) { edges { node { id } } } }").await.ok();
    let applications = ids.data("kycApplications.edges").as_array().expect("edges").len();
    assert!(applications >= 50, "{applications} applications");
    let params = app.query(&staff, "{ kycApplications(first: 100) { edges { node { params } } } }").await;
    assert_eq!(params.codes(), ["RESPONSE_TOO_LARGE"], "{} bytes answered", params.body.to_string().len());
    assert_eq!(params.body["data"], Value::Null);
}

#[tokio::test]
async fn only_listed_origins_get_cors_answers_and_preflights_are_answered() {
    let app = spawn_with(|c| c.cors.origins = vec!["https://app.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.expect("answer");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");
    let headers = allowed.headers()["access-control-allow-headers"].to_str().expect("ascii").to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    assert!(allowed.headers().get("access-control-allow-credentials").is_none(), "no credentials mode");
    assert!(allowed.headers().contains_key("access-control-max-age"));
    let refused = preflight("https://evil.example.com").await.expect("answer");
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    // Sandbox mode also lets a frontend on any localhost port call.
    let local = app
        .http
        .post(app.url("/graphql"))
        .header("Origin", "http://localhost:5173")
        .bearer_auth(user_token(SEED, "uid:read"))
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(local.headers()["access-control-allow-origin"], "http://localhost:5173");
}

#[tokio::test]
async fn the_fragment_bomb_costs_the_server_a_few_milliseconds_and_no_lasting_memory() {
    let gateway = Process::start(4096, &[("KYC_GATEWAY_MAX_ALIASES", "1000")]);
    let http = reqwest::Client::new();
    let token = user_token(SEED, "uid:read kyc_application:read verification.basic:read");
    let send =
        |query: String| http.post(gateway.url("/graphql")).bearer_auth(&token).json(&json!({ "query": query })).send();
    // Warm up (first request, allocator pools), then measure.
    let warm: Value = send("{ me { id } }".into()).await.expect("answer").json().await.expect("json");
    assert_eq!(warm["data"]["me"]["id"], SEED);
    let (cpu_before, rss_before) = gateway.usage();
    let rounds = 20u32;
    for _ in 0..rounds {
        let refused: Value = send(fragment_bomb()).await.expect("answer").json().await.expect("json");
        assert_eq!(code(&refused), "COST_LIMIT_EXCEEDED", "{refused:#}");
    }
    let (cpu_after, rss_after) = gateway.usage();
    let per_bomb = (cpu_after - cpu_before) / rounds;
    assert!(per_bomb < Duration::from_millis(50), "the bomb cost {per_bomb:?} of server time");
    let grown = rss_after.saturating_sub(rss_before);
    assert!(grown < 16 << 20, "the process grew by {} KB", grown >> 10);
}

/// This process's soft limit of open files.
fn own_open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("a line");
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).unwrap_or(1024)
}

#[tokio::test]
async fn half_sent_requests_beyond_the_open_files_limit_never_lock_out_the_health_check() {
    use tokio::io::AsyncWriteExt;
    // The figures: 2,000 sockets against a limit of 1,024, scaled down if this process may open fewer.
    let attackers = 2000.min(own_open_files_limit().saturating_sub(200));
    let limit = 1024.min(attackers / 2);
    let gateway = Process::start(limit, &[]);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let health = gateway.url("/healthz");
    let made = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = made.clone();
    let checks = tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(3))
            .build()
            .expect("client");
        let (mut ok, mut failed) = (0u32, Vec::new());
        while !*stopped.borrow() {
            match http.get(&health).send().await {
                Ok(answer) if answer.status() == StatusCode::OK => ok += 1,
                Ok(answer) => failed.push(answer.status().to_string()),
                Err(error) => failed.push(error.to_string()),
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (ok, failed)
    });
    let mut sockets = Vec::new();
    for _ in 0..attackers {
        if let Ok(mut socket) = tokio::net::TcpStream::connect(gateway.addr).await {
            // A request that never finishes its headers.
            let _ = socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: kyc\r\n").await;
            sockets.push(socket);
        }
    }
    assert!(sockets.len() > limit, "only {} sockets opened against a limit of {limit}", sockets.len());
    // The attack holds its sockets open while ten more health checks are made; every one must be answered.
    let before = made.load(std::sync::atomic::Ordering::SeqCst);
    crate::helpers::eventually("ten health checks were made while the sockets were held", || async {
        made.load(std::sync::atomic::Ordering::SeqCst) >= before + 10
    })
    .await;
    let _ = stop.send(true);
    let (ok, failed) = checks.await.expect("the checker");
    assert!(
        failed.is_empty(),
        "{} health checks failed of {}: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok >= 10, "only {ok} health checks ran");
    drop(sockets);
}

#[tokio::test]
async fn a_document_seen_before_is_costed_again_with_each_request_s_variables() {
    // Parsed documents are kept by their text (src/graphql/documents.rs); the cost depends on the variables too.
    let app = spawn_with(|c| c.limits.max_cost = 300).await;
    let staff = client_token("client.users:read uid:read kyc_application:read");
    let query = "query($n: Int) { kycApplications(first: $n) { edges { node { id user { id } } } } }";
    for _ in 0..2 {
        let small = app.query_vars(&staff, query, json!({ "n": 10 })).await;
        assert!(small.codes().is_empty(), "{:#}", small.body);
    }
    let large = app.query_vars(&staff, query, json!({ "n": 100 })).await;
    assert_eq!(large.codes(), ["COST_LIMIT_EXCEEDED"], "{:#}", large.body);
    // A document that failed validation is refused again (and a kept one still validates against its variables).
    let invalid = "query($n: Int) { kycApplications(first: $n) { edges { node { nope } } } }";
    for _ in 0..2 {
        let refused = app.query_vars(&staff, invalid, json!({ "n": 1 })).await;
        assert_eq!(refused.codes(), ["GRAPHQL_VALIDATION_FAILED"], "{:#}", refused.body);
    }
    let mistyped = app.query_vars(&staff, query, json!({ "n": "ten" })).await;
    assert_eq!(mistyped.codes(), ["BAD_USER_INPUT"], "{:#}", mistyped.body);
}

#[tokio::test]
async fn a_document_the_pre_scan_refused_is_refused_again_by_it() {
    // Only documents that passed validation are kept (src/graphql/documents.rs): a refused one meets the pre-scan again.
    let app = spawn().await;
    let token = user_token(SEED, "uid:read");
    let directives = format!("{{ me {{ id{} }} }}", "@a".repeat(100_000));
    for _ in 0..2 {
        assert_eq!(code(&app.query(&token, &directives).await.body), "DIRECTIVE_LIMIT_EXCEEDED");
    }
}
