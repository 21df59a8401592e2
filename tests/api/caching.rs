//! Batching and caching, read off the sandboxes' request counters: per-request dedupe, cross-request coalescing,
//! TTL expiry, invalidation and negative caching.

use std::time::Duration;

use kyc_gateway::providers::cache::CacheConfig;

use crate::helpers::{client_token, eventually, spawn_with, user_token, TestApp, ALL_ITEMS, SEED};

/// Upstream reads per provider so far: (Fractal users/me, Sumsub applicant, Sila verifications, Fractal stats).
fn reads(app: &TestApp) -> (u64, u64, u64, u64) {
    let s = app.sandbox();
    (
        s.fractal().counts().get("users_me"),
        s.sumsub().counts().get("applicant_by_external_id"),
        s.sila().counts().get("get_verifications"),
        s.fractal().counts().get("stats_users"),
    )
}

fn cache(ttl_ms: u64, negative_ms: u64) -> CacheConfig {
    CacheConfig {
        status_ttl: Duration::from_millis(ttl_ms),
        negative_ttl: Duration::from_millis(negative_ms),
        ..CacheConfig::default()
    }
}

#[tokio::test]
async fn one_request_asks_each_provider_once_per_user_however_many_fields_ask() {
    let app = spawn_with(|c| c.cache.enabled = false).await;
    let q = format!(
        r#"{{ me {{ emails {{ address }} verificationCases {{ id }} kycState(level: "basic") }}
             again: user(id: "{SEED}") {{ phones {{ number }} verificationCases {{ level }} }}
             users(ids: ["{SEED}", "{SEED}"]) {{ kycState(level: "plus") verificationCases(provider: SILA) {{ id }} }} }}"#
    );
    let token = user_token(SEED, &format!("contact:read {ALL_ITEMS}"));
    app.query(&token, &q).await.ok();
    assert_eq!(reads(&app), (1, 1, 1, 1), "(users/me, Sumsub, Sila, Fractal stats)");
}

#[tokio::test]
async fn concurrent_identical_queries_share_one_upstream_call_per_key() {
    let app = spawn_with(|c| c.cache = cache(30_000, 5_000)).await;
    let token = client_token(&format!("client.users:read contact:read {ALL_ITEMS}"));
    let q = format!(r#"{{ user(id: "{SEED}") {{ emails {{ address }} verificationCases {{ id }} }} }}"#);
    let queries = (0..50).map(|_| app.query(&token, &q));
    for answer in futures_util::future::join_all(queries).await {
        answer.ok();
    }
    let (me, sumsub, sila, _) = reads(&app);
    assert_eq!((me, sumsub, sila), (1, 1, 1));
}

#[tokio::test]
async fn cached_answers_expire_after_their_ttl_and_can_be_invalidated_per_user() {
    // Long enough that the second query never races the expiry, however loaded the machine is.
    let app = spawn_with(|c| c.cache = cache(3_000, 3_000)).await;
    let token = client_token(&format!("client.users:read {ALL_ITEMS}"));
    let q = format!(r#"{{ user(id: "{SEED}") {{ verificationCases {{ id }} }} }}"#);
    app.query(&token, &q).await.ok();
    app.query(&token, &q).await.ok();
    assert_eq!(reads(&app).1, 1, "the second query is served from the cache");
    eventually("the entry expired", || async {
        app.query(&token, &q).await.ok();
        reads(&app).1 == 2
    })
    .await;
    app.cache.invalidate_user(SEED).await;
    app.query(&token, &q).await.ok();
    assert_eq!(reads(&app).1, 3, "invalidated");
    let other = &app.sandbox().users()[3];
    app.cache.invalidate_user(other).await;
    app.query(&token, &q).await.ok();
    assert_eq!(reads(&app).1, 3, "another user's invalidation leaves this one cached");
}

#[tokio::test]
async fn not_found_is_cached_only_briefly() {
    // Long enough that the second query never races the expiry, however loaded the machine is.
    let app = spawn_with(|c| c.cache = cache(30_000, 3_000)).await;
    let lonely = app.sandbox().users()[1].clone();
    assert!(app.sandbox().sumsub().applicant_of(&lonely).is_none());
    let token = client_token(&format!("client.users:read {ALL_ITEMS}"));
    let q = format!(r#"{{ user(id: "{lonely}") {{ verificationCases(provider: SUMSUB) {{ id }} }} }}"#);
    app.query(&token, &q).await.ok();
    app.query(&token, &q).await.ok();
    let not_found = || app.sandbox().sumsub().counts().get("not_found");
    assert_eq!(not_found(), 1);
    eventually("the negative answer expired", || async {
        app.query(&token, &q).await.ok();
        not_found() == 2
    })
    .await;
}

#[tokio::test]
async fn a_hundred_users_cost_one_bulk_statistics_call_for_their_fractal_state() {
    let app = spawn_with(|c| c.cache.enabled = false).await;
    let ids: Vec<String> = app.sandbox().users().iter().take(100).map(|u| format!("\"{u}\"")).collect();
    let token = client_token(&format!("client.users:read {ALL_ITEMS}"));
    let q = format!(r#"{{ users(ids: [{}]) {{ kycState(level: "basic") }} }}"#, ids.join(", "));
    let answer = app.query(&token, &q).await.ok();
    assert_eq!(answer.data("users").as_array().map(Vec::len), Some(100));
    let (me, sumsub, sila, stats) = reads(&app);
    assert_eq!((me, stats), (0, 1), "Fractal: one bulk call, no per-user reads");
    assert_eq!((sumsub, sila), (100, 100), "exactly one Sumsub and one Sila call per user, found or not");
}

#[tokio::test]
async fn invalidating_one_user_keeps_the_bulk_answers_and_reads_that_user_alone() {
    let app = spawn_with(|c| c.cache = cache(30_000, 5_000)).await;
    let users: Vec<String> = app.sandbox().users().iter().take(40).cloned().collect();
    let ids: Vec<String> = users.iter().map(|u| format!("\"{u}\"")).collect();
    let token = client_token(&format!("client.users:read kyc_application:read {ALL_ITEMS}"));
    let q = format!(r#"{{ users(ids: [{}]) {{ kycState(level: "basic") }} }}"#, ids.join(", "));
    let bulk = |app: &TestApp| {
        let s = app.sandbox();
        (s.fractal().counts().get("stats_users"), s.ident().counts().get("list"))
    };
    let first = app.query(&token, &q).await.ok();
    let before = bulk(&app);
    assert_eq!(before.0, 1, "one statistics call for forty users");
    assert!(before.1 >= 1, "ident's list read in bulk for forty users");
    let changed = &users[0];
    app.cache.invalidate_user(changed).await;
    let (me, apps) =
        (app.sandbox().fractal().counts().get("users_me"), app.sandbox().ident().counts().get("user_list"));
    let second = app.query(&token, &q).await.ok();
    assert_eq!(bulk(&app), before, "the bulk answers stayed cached");
    assert_eq!(app.sandbox().fractal().counts().get("users_me"), me + 1, "the changed user's Fractal state read alone");
    assert_eq!(app.sandbox().ident().counts().get("user_list"), apps + 1, "and its applications");
    assert_eq!(first.body, second.body, "the same answers");
}

/// ident's reads so far: pages of its whole list, and one user's applications.
fn ident_reads(app: &TestApp) -> (u64, u64) {
    let s = app.sandbox();
    (s.ident().counts().get("list"), s.ident().counts().get("user_list"))
}

#[tokio::test]
async fn concurrent_lists_of_users_each_read_ident_s_list_once_and_no_user_alone() {
    // A list's applications are one batch however the requests interleave (src/graphql/user_data.rs), so each list of
    // 30 users takes ident's bulk path: one pass over its list, no per-user call.
    let app = spawn_with(|c| c.cache.enabled = false).await;
    let users: Vec<String> = app.sandbox().users().iter().take(30).cloned().collect();
    let ids: Vec<String> = users.iter().map(|u| format!("\"{u}\"")).collect();
    let token = client_token("client.users:read uid:read kyc_application:read");
    let q = format!("{{ users(ids: [{}]) {{ id kycApplications {{ id status }} }} }}", ids.join(", "));
    let first = app.query(&token, &q).await.ok();
    let (pages, alone) = ident_reads(&app);
    assert!(pages >= 1 && alone == 0, "one pass over the list: {pages} page(s), {alone} user(s) alone");
    let answers = futures_util::future::join_all((0..8).map(|_| app.query(&token, &q))).await;
    for answer in answers {
        assert_eq!(answer.ok().body, first.body, "the same answers");
    }
    assert_eq!(ident_reads(&app), (pages * 9, 0), "every list read the same pages, no user alone");
    // The bulk pass answers as one user's own call does.
    for user in users.iter().take(3) {
        let alone =
            app.query(&token, &format!(r#"{{ user(id: "{user}") {{ kycApplications {{ id status }} }} }}"#)).await;
        let position = users.iter().position(|u| u == user).expect("listed");
        assert_eq!(alone.ok().data("user")["kycApplications"], first.data("users")[position]["kycApplications"]);
    }
    assert_eq!(ident_reads(&app).1, 3, "asked alone, each user is one call");
}

#[tokio::test]
async fn a_list_of_users_without_kyc_application_read_fetches_no_applications() {
    let app = spawn_with(|c| c.cache.enabled = false).await;
    let ids: Vec<String> = app.sandbox().users().iter().take(30).map(|u| format!("\"{u}\"")).collect();
    let token = client_token("client.users:read uid:read");
    let q = format!("{{ users(ids: [{}]) {{ id kycApplications {{ id }} }} }}", ids.join(", "));
    let answer = app.query(&token, &q).await;
    assert_eq!(answer.data("users").as_array().map(Vec::len), Some(30), "{:#}", answer.body);
    assert!(answer.codes().iter().all(|c| c == "UNAUTHORIZED_FIELD_OR_TYPE"), "{:#}", answer.body);
    assert_eq!(answer.data("users")[0]["kycApplications"], serde_json::Value::Null);
    assert_eq!(ident_reads(&app), (0, 0), "a denied field fetches nothing, for the list either");
}
