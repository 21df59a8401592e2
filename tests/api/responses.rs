//! The response cache (`src/server/responses.rs`): whose answers it serves, what it drops, and the audit records of
//! its answers.

use std::time::Duration;

use kyc_gateway::audit::read::{events, Filter};
use kyc_gateway::audit::Entry;
use kyc_gateway::providers::cache::CacheConfig;
use kyc_gateway::sandbox::Faults;
use serde_json::{json, Value};

use crate::helpers::Expose as _;
use crate::helpers::{
    client_token, eventually, issuer_token, postgres_database, spawn, spawn_on, spawn_with, sqlite_database,
    user_token, TestApp, ALL_ITEMS, SEED,
};

/// Provider caches (and so answers) that live an hour: only an invalidation renews an answer within a test.
fn an_hour(config: &mut kyc_gateway::Config) {
    let hour = Duration::from_secs(3600);
    config.cache = CacheConfig { status_ttl: hour, negative_ttl: hour, bulk_ttl: hour, ..CacheConfig::default() };
}

/// `query` as `token`, twice: the second answer, and whether the cache served it.
async fn twice(app: &TestApp, token: &str, query: &str, variables: Value) -> (Value, bool) {
    let first = app.query_vars(token, query, variables.clone()).await.ok().body;
    let before = app.responses.served();
    let answer = app.query_vars(token, query, variables).await.ok().body;
    assert_eq!(answer, first, "a kept answer is the executed one, byte for byte as JSON");
    (answer, app.responses.served() == before + 1)
}

#[tokio::test]
async fn a_cached_answer_never_reaches_a_caller_whose_principal_scopes_or_variables_differ() {
    let app = spawn_with(an_hour).await;
    let cases = "query { me { id verificationCases { provider level } } }";
    let all = user_token(SEED, &format!("uid:read {ALL_ITEMS}"));
    let (mine, served) = twice(&app, &all, cases, json!({})).await;
    assert!(served, "the same caller's same query is served from the cache");

    // The same person with fewer case scopes sees fewer cases: never the cached answer.
    let basic = user_token(SEED, "uid:read verification.basic:read");
    let before = app.responses.served();
    let fewer = app.query(&basic, cases).await.ok().body;
    assert_eq!(app.responses.served(), before, "other scopes that matter: executed");
    assert_ne!(fewer, mine, "{fewer:#}");
    let cases_of = |answer: &Value| answer["data"]["me"]["verificationCases"].as_array().map_or(0, Vec::len);
    assert!(cases_of(&fewer) < cases_of(&mine), "{fewer:#}");

    // Another person with the same scopes gets their own answer.
    let other = app.sandbox().users()[3].clone();
    let theirs = app.query(&user_token(&other, &format!("uid:read {ALL_ITEMS}")), cases).await.ok().body;
    assert_eq!(app.responses.served(), before, "another principal: executed");
    assert_eq!(theirs["data"]["me"]["id"], other.as_str());

    // Scopes that cannot change this document's answer do not split the cache.
    let more = user_token(SEED, &format!("uid:read {ALL_ITEMS} contact:read audit:read"));
    let again = app.query(&more, cases).await.ok().body;
    assert_eq!(app.responses.served(), before + 1, "contact:read and audit:read cannot change it: served");
    assert_eq!(again, mine);

    // Variables are part of the key.
    let staff = client_token(&format!("uid:read client.users:read {ALL_ITEMS}"));
    let by_id = "query($id: ID!) { user(id: $id) { id verificationCases { provider } } }";
    let (seed, served) = twice(&app, &staff, by_id, json!({ "id": SEED })).await;
    assert!(served);
    let before = app.responses.served();
    let answer = app.query_vars(&staff, by_id, json!({ "id": other })).await.ok().body;
    assert_eq!(app.responses.served(), before, "other variables: executed");
    assert_eq!(answer["data"]["user"]["id"], other.as_str());
    assert_ne!(answer, seed);
}

/// A record as the test compares it: everything but its time, request and trace.
fn comparable(mut entry: Entry) -> Entry {
    entry.at = 0;
    entry.request_id = String::new();
    entry.trace_id = None;
    entry
}

/// `app`'s trail, oldest first, as compared.
async fn trail(app: &TestApp) -> Vec<Entry> {
    let mut records = events(&app.store, &Filter::default(), 1_000).await.expect("the trail");
    records.reverse();
    records.into_iter().map(|record| comparable(record.entry)).collect()
}

#[tokio::test]
async fn the_audit_trail_of_a_hundred_cached_answers_equals_that_of_a_hundred_executed_ones() {
    let (on, off) = (sqlite_database(), sqlite_database());
    let cached = spawn_on(&on, an_hour).await;
    let executed = spawn_on(&off, |c| {
        an_hour(c);
        c.cache.responses_max_bytes = 0;
    })
    .await;
    let token = user_token(SEED, &format!("uid:read contact:read {ALL_ITEMS}"));
    let query = "{ me { id emails { address } phones { number } verificationCases { provider level } } }";
    for app in [&cached, &executed] {
        for _ in 0..100 {
            let answer = app
                .http
                .post(app.url("/graphql"))
                .bearer_auth(&token)
                .header("X-Access-Purpose", "account page")
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("answer");
            let body: Value = answer.json().await.expect("json");
            assert!(body["errors"].is_null() && body["data"]["me"]["emails"].is_array(), "{body:#}");
        }
    }
    assert_eq!(cached.responses.served(), 99, "the first executed, the other 99 from the cache");
    assert_eq!(executed.responses.served(), 0);
    let (from_cache, from_execution) = (trail(&cached).await, trail(&executed).await);
    assert_eq!(from_cache.len(), 100);
    assert_eq!(from_cache, from_execution);
    let first = &from_cache[0];
    assert_eq!(
        (first.purpose.as_deref(), first.subjects.as_slice()),
        (Some("account page"), [SEED.to_owned()].as_slice())
    );
    assert!(first.fields.iter().any(|f| f.path == "me.emails"), "{first:?}");
}

#[tokio::test]
async fn a_cached_answer_is_withheld_in_strict_mode_when_its_record_cannot_be_written_and_counted_as_an_error() {
    use crate::operations::{sample, scrape};
    let db = sqlite_database();
    let app = spawn_on(&db, an_hour).await;
    let token = user_token(SEED, "uid:read contact:read");
    let query = "query WithheldWhenCached { me { id emails { address } } }";
    let outcome = |text: &str, outcome: &str| {
        let labels = [("operation", "WithheldWhenCached"), ("type", "query"), ("outcome", outcome)];
        sample(text, "kyc_gateway_graphql_operations_total", &labels)
    };
    let start = scrape(&app.http, app.url("/metrics")).await;
    app.query(&token, query).await.ok();
    crate::audit::refuse_records(&app, &db).await;
    let before = app.responses.served();
    let answer = app.query(&token, query).await;
    assert_eq!(app.responses.served(), before + 1, "served from the cache");
    assert_eq!(answer.data("me.id"), SEED);
    assert_eq!(answer.data("me.emails"), &Value::Null, "{:#}", answer.body);
    assert_eq!(answer.codes(), ["AUDIT_UNAVAILABLE"]);
    // An executed answer withheld is an error too (its variables differ: not the kept one).
    let executed = app.query_vars(&token, query, json!({ "unused": 1 })).await;
    assert_eq!(app.responses.served(), before + 1, "executed");
    assert_eq!(executed.codes(), ["AUDIT_UNAVAILABLE"]);
    let end = scrape(&app.http, app.url("/metrics")).await;
    assert_eq!(outcome(&end, "ok") - outcome(&start, "ok"), 1.0, "only the first answer was whole");
    assert_eq!(outcome(&end, "error") - outcome(&start, "error"), 2.0, "{end}");
}

#[tokio::test]
async fn a_kept_answer_is_dropped_when_the_first_provider_entry_it_was_built_from_expires() {
    let lifetime = Duration::from_secs(4);
    let app = spawn_with(|c| {
        let ttl = lifetime;
        c.cache = CacheConfig { status_ttl: ttl, negative_ttl: ttl, bulk_ttl: ttl, ..CacheConfig::default() };
    })
    .await;
    let token = user_token(SEED, "uid:read contact:read");
    // The providers' entries are made by a first read; the answer kept is built from them half their life later.
    app.query(&token, "{ me { emails { address } } }").await.ok();
    let made = tokio::time::Instant::now();
    tokio::time::sleep(lifetime / 2).await;
    let query = "{ me { id emails { address } } }";
    let (_, served) = twice(&app, &token, query, json!({})).await;
    assert!(served, "kept while its entries live");
    // Past the entries' expiry (they were made before `made`), well before the kept answer's own lifetime ends.
    tokio::time::sleep_until(made + lifetime + Duration::from_millis(100)).await;
    let before = app.responses.served();
    app.query(&token, query).await.ok();
    assert_eq!(app.responses.served(), before, "executed again: the entries it was built from expired");
}

#[tokio::test]
async fn a_partial_answer_is_never_cached() {
    let app = spawn_with(an_hour).await;
    let staff = client_token(&format!("uid:read client.users:read {ALL_ITEMS}"));
    let query = format!(r#"{{ user(id: "{SEED}") {{ verificationCases {{ provider }} }} }}"#);
    app.sandbox().sila().faults().set(Faults { error_rate: 1.0, ..Faults::default() });
    for _ in 0..2 {
        let answer = app.query(&staff, &query).await;
        assert!(!answer.errors().is_empty(), "Sila fails: {:#}", answer.body);
    }
    assert_eq!(app.responses.served(), 0, "an answer with an error is not kept");
    app.sandbox().sila().faults().set(Faults::default());
    eventually("Sila answers again", || async { app.query(&staff, &query).await.errors().is_empty() }).await;
    let (_, served) = twice(&app, &staff, &query, json!({})).await;
    assert!(served, "the complete answer is");
}

#[tokio::test]
async fn a_change_to_a_user_drops_their_cached_answers_at_once() {
    let app = spawn_with(an_hour).await;
    let token = user_token(SEED, &format!("fractal.link:write {ALL_ITEMS}"));
    let query = "{ me { verificationCases { provider } } }";
    let (before, served) = twice(&app, &token, query, json!({})).await;
    assert!(served);
    assert!(before.to_string().contains("FRACTAL"), "{before:#}");
    assert_eq!(app.query(&token, "mutation { unlinkFractal }").await.ok().data("unlinkFractal"), true);
    let served = app.responses.served();
    let after = app.query(&token, query).await.ok().body;
    assert_eq!(app.responses.served(), served, "executed again");
    assert!(!after.to_string().contains("FRACTAL"), "{after:#}");
    // Another user's cached answer stays.
    let other = app.sandbox().users()[3].clone();
    let other_token = user_token(&other, &format!("uid:read {ALL_ITEMS}"));
    let (_, served) = twice(&app, &other_token, query, json!({})).await;
    assert!(served);
    app.cache.invalidate_user(SEED).await;
    let (_, served) = twice(&app, &other_token, query, json!({})).await;
    assert!(served, "the seed person's change keeps the other user's answer");
}

#[tokio::test]
async fn a_user_asked_for_by_id_and_unknown_is_not_kept_unknown_once_they_change() {
    let app = spawn_with(an_hour).await;
    let staff = client_token(&format!("uid:read client.users:read {ALL_ITEMS}"));
    let query = r#"{ users(ids: ["someone-new"]) { id } }"#;
    let (answer, served) = twice(&app, &staff, query, json!({})).await;
    assert!(served);
    assert_eq!(answer["data"]["users"], json!([null]));
    app.cache.invalidate_user("someone-new").await;
    let served = app.responses.served();
    app.query(&staff, query).await.ok();
    assert_eq!(app.responses.served(), served, "the change to the id asked for dropped the answer");
}

#[tokio::test]
async fn with_the_response_cache_off_every_answer_is_executed() {
    let app = spawn_with(|c| c.cache.responses_max_bytes = 0).await;
    let token = user_token(SEED, &format!("uid:read {ALL_ITEMS}"));
    let (_, served) = twice(&app, &token, "{ me { id } }", json!({})).await;
    assert!(!served);
    let app = spawn().await;
    let (_, served) = twice(&app, &token, "{ me { id } }", json!({})).await;
    assert!(served, "on by default");
    let (_, served) = twice(&app, &token, "{ me { id } } ", json!({})).await;
    assert!(served, "another text is another entry");
    let applications = user_token(SEED, "kyc_application:read");
    let (answer, served) = twice(&app, &applications, "{ kycApplications { totalCount } }", json!({})).await;
    assert!(answer["errors"].is_null(), "{answer:#}");
    assert!(!served, "only queries of users asked for by id or token are kept");
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn a_change_on_one_replica_drops_the_cached_answers_of_the_other() {
    let db = postgres_database().await;
    let sandbox_app = spawn().await;
    let a = crate::store::replica(&sandbox_app, &db, an_hour).await;
    let b = crate::store::replica(&sandbox_app, &db, an_hour).await;
    let user = sandbox_app.sandbox().fractal().population().users[6].uid.clone();
    let refresh = sandbox_app.sandbox().fractal().link_user(&user);
    let entry = json!({ "user_id": user, "fractal": { "uid": user, "refresh_token": refresh.expose() } });
    crate::helpers::import(&a, vec![entry]).await;
    let staff = issuer_token("staff", &format!("client.users:read {ALL_ITEMS}"), true);
    let query = format!(r#"{{ user(id: "{user}") {{ verificationCases {{ provider }} }} }}"#);
    let (_, served) = twice(&b, &staff, &query, json!({})).await;
    assert!(served, "B serves it from its cache");
    let reads = || sandbox_app.sandbox().sumsub().counts().get("applicant_by_external_id");
    let cached = reads();
    a.query(&issuer_token(&user, "fractal.link:write", false), "mutation { unlinkFractal }").await.ok();
    eventually("B dropped the answer and asked the provider again", || async {
        let served = b.responses.served();
        b.query(&staff, &query).await.ok();
        b.responses.served() == served && reads() > cached
    })
    .await;
}
