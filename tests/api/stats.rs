//! `verificationStats`: Fractal's statistics with the gateway's client-credentials token.

use std::collections::BTreeMap;

use crate::helpers::{assert_denied, client_token, spawn, user_token, SEED};

const TOTAL: &str = "{ verificationStats { total { approved rejected pending contacted expired } } }";

#[tokio::test]
async fn stats_need_client_stats_read() {
    let app = spawn().await;
    for token in [client_token("client.users:read"), user_token(SEED, "uid:read")] {
        let answer = app.query(&token, TOTAL).await;
        assert!(answer.data("verificationStats").is_null());
        assert_denied(answer.error_at("verificationStats"), "client.stats:read");
    }
    assert_eq!(app.sandbox().fractal().counts().get("stats_total"), 0, "nothing is asked upstream for a denied caller");
}

#[tokio::test]
async fn stats_totals_and_countries_match_the_sandbox_population() {
    let app = spawn().await;
    let mut total: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_country: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for user in &app.sandbox().fractal().population().users {
        for case in &user.cases {
            *total.entry(case.stats_status()).or_default() += 1;
            *by_country.entry(user.country).or_default().entry(case.stats_status()).or_default() += 1;
        }
    }
    let q = "{ verificationStats { total { approved rejected pending contacted expired } byCountry { country counts { approved rejected pending contacted expired } } } }";
    let answer = app.query(&client_token("client.stats:read"), q).await.ok();
    for status in ["approved", "rejected", "pending", "contacted", "expired"] {
        assert_eq!(answer.data(&format!("verificationStats.total.{status}")), total.get(status).copied().unwrap_or(0));
    }
    let countries = answer.data("verificationStats.byCountry").as_array().expect("list").clone();
    assert_eq!(countries.len(), by_country.len());
    for row in countries {
        let counts = &by_country[row["country"].as_str().expect("country")];
        for status in ["approved", "rejected", "pending", "contacted", "expired"] {
            assert_eq!(row["counts"][status], counts.get(status).copied().unwrap_or(0));
        }
    }
}

#[tokio::test]
async fn stats_users_pages_through_every_verification_with_cursors() {
    let app = spawn().await;
    let expected: usize = app.sandbox().fractal().population().users.iter().map(|u| u.cases.len()).sum();
    let token = client_token("client.stats:read client.users:read uid:read");
    let q = "query($after: String) { verificationStats { users(first: 500, after: $after) { totalCount edges { cursor node { userId level providerStatus state } } pageInfo { hasNextPage hasPreviousPage endCursor } } } }";
    let (mut after, mut seen, mut pages) = (serde_json::Value::Null, 0, 0);
    loop {
        let answer = app.query_vars(&token, q, serde_json::json!({ "after": after })).await.ok();
        let page = answer.data("verificationStats.users").clone();
        assert_eq!(page["totalCount"], expected);
        assert_eq!(page["pageInfo"]["hasPreviousPage"], pages > 0);
        seen += page["edges"].as_array().expect("edges").len();
        pages += 1;
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, expected.div_ceil(500));
    let first = app
        .query(&token, "{ verificationStats { users(first: 1) { edges { node { userId level state } } } } }")
        .await
        .ok();
    assert_eq!(first.data("verificationStats.users.edges.0.node.userId"), SEED, "gateway user ids, from the directory");
}

#[tokio::test]
async fn stats_users_refuses_a_bad_cursor_and_an_oversized_page() {
    let app = spawn().await;
    let token = client_token("client.stats:read client.users:read");
    for args in [r#"after: "bm9wZQ""#, "first: 501", "first: -1"] {
        let answer = app.query(&token, &format!("{{ verificationStats {{ users({args}) {{ totalCount }} }} }}")).await;
        assert!(answer.codes().contains(&"BAD_USER_INPUT".to_string()), "{args}: {:#}", answer.body);
    }
}

#[tokio::test]
async fn concurrent_stats_requests_fetch_one_client_credentials_token() {
    let app = spawn().await;
    let token = client_token("client.stats:read");
    let requests = (0..20).map(|_| app.query(&token, TOTAL));
    for answer in futures_util::future::join_all(requests).await {
        answer.ok();
    }
    let counts = app.sandbox().fractal().counts();
    assert_eq!(counts.get("token_client_credentials"), 1);
    assert_eq!(counts.get("stats_total"), 20);
}

#[tokio::test]
async fn stats_users_lists_other_users_only_with_users_read_and_their_ids_only_with_uid_read() {
    let app = spawn().await;
    let q = "{ verificationStats { total { approved } users(first: 3) { edges { node { userId level } } } } }";
    let stats_only = app.query(&client_token("client.stats:read"), q).await;
    assert!(stats_only.data("verificationStats.total.approved").is_u64(), "totals stay readable");
    assert!(stats_only.data("verificationStats.users").is_null());
    assert_denied(stats_only.error_at("verificationStats.users"), "client.users:read");
    let no_ids = app.query(&client_token("client.stats:read client.users:read"), q).await.ok();
    assert!(no_ids.data("verificationStats.users.edges.0.node.userId").is_null());
    assert!(no_ids.data("verificationStats.users.edges.0.node.level").is_string());
}
