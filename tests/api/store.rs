//! Durable state over real databases (a SQLite file, and PostgreSQL when a test server is configured): restarts,
//! several replicas, failed commits, tokens sealed at rest, migrations, imports and the change channel.

use std::time::Duration;

use kyc_gateway::secret::Secret;
use kyc_gateway::store::StoreSettings;
use kyc_gateway::{App, Config};
use serde_json::json;
use sqlx::Executor;

use crate::helpers::Expose as _;
use crate::helpers::{
    eventually, import, issuer_token, on_both_engines, postgres_database, production_state, spawn, spawn_with,
    sqlite_database, test_encryption, TestApp, TestDatabase, ALL_ITEMS,
};

/// A production-mode replica on `db` whose providers are the sandboxes of `sandbox_app`.
pub async fn replica(sandbox_app: &TestApp, db: &TestDatabase, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_with(|c| {
        crate::helpers::point_at(c, sandbox_app.sandbox(), &["FRACTAL", "SUMSUB"]);
        c.tokens.secret_issuer = Some(crate::helpers::secret_issuer());
        production_state(c);
        // A small pool, as a replica would have: a refresh must not starve it.
        c.database =
            Some(StoreSettings { url: Secret::new(db.url.clone()), max_connections: 4, ..StoreSettings::memory() });
        adjust(c);
    })
    .await
}

/// A sandbox user linked to the sandbox Fractal through a fresh refresh token, imported into `app`'s database: the
/// user and that token.
async fn linked_user(sandbox_app: &TestApp, app: &TestApp, index: usize) -> (String, Secret) {
    let fractal = &sandbox_app.sandbox().fractal();
    let uid = fractal.population().users[index].uid.clone();
    let refresh = fractal.link_user(&uid);
    import(app, vec![json!({ "user_id": uid, "fractal": { "uid": uid, "refresh_token": refresh.expose() } })]).await;
    (uid, refresh.into())
}

const EMAILS: &str = "{ me { emails { address } } }";

#[test]
fn the_postgresql_tests_run_where_they_are_required() {
    // CI (`.ci/run`) sets KYC_GATEWAY_REQUIRE_POSTGRES: there, the ignored PostgreSQL tests must be run, not listed.
    if std::env::var_os("KYC_GATEWAY_REQUIRE_POSTGRES").is_none() {
        return;
    }
    let url = std::env::var("KYC_GATEWAY_TEST_DATABASE_URL").unwrap_or_default();
    assert!(!url.is_empty(), "KYC_GATEWAY_REQUIRE_POSTGRES is set but KYC_GATEWAY_TEST_DATABASE_URL is not");
    let included = std::env::args().any(|arg| arg == "--include-ignored" || arg == "--ignored");
    assert!(included, "KYC_GATEWAY_REQUIRE_POSTGRES is set: run `cargo test -- --include-ignored`");
}

on_both_engines!(a_rotated_refresh_token_survives_a_restart);

async fn a_rotated_refresh_token_survives_a_restart(db: TestDatabase) {
    let sandbox_app = spawn().await;
    let fractal = sandbox_app.sandbox().fractal().clone();
    let first = replica(&sandbox_app, &db, |c| c.cache.enabled = false).await;
    let (user, r0) = linked_user(&sandbox_app, &first, 20).await;
    let token = issuer_token(&user, "contact:read", false);
    first.query(&token, EMAILS).await.ok();
    let r1 = first
        .directory
        .link(&crate::helpers::uid(&user), kyc_gateway::domain::Provider::Fractal)
        .await
        .expect("directory")
        .expect("linked")
        .tokens
        .refresh_token;
    assert_ne!(r0, r1, "{}: rotated", db.engine);
    first.stop().await;

    let second = replica(&sandbox_app, &db, |c| c.cache.enabled = false).await;
    fractal.expire_access_tokens();
    let refreshes = fractal.counts().get("token_refresh");
    let answer = second.query(&token, EMAILS).await.ok();
    assert!(answer.data("me.emails").is_array(), "{}: works without relinking", db.engine);
    assert_eq!(fractal.counts().get("token_refresh"), refreshes + 1, "{}: refreshed with the stored token", db.engine);
    let r2 = second
        .directory
        .link(&crate::helpers::uid(&user), kyc_gateway::domain::Provider::Fractal)
        .await
        .expect("directory")
        .expect("linked")
        .tokens
        .refresh_token;
    assert!(
        fractal.refresh_token_is_valid(r2.expose()),
        "{}: the newest token is the one the sandbox knows",
        db.engine
    );
    assert!(
        !fractal.refresh_token_is_valid(r1.expose()) && !fractal.refresh_token_is_valid(r0.expose()),
        "{}",
        db.engine
    );
    second.stop().await;
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn two_replicas_refresh_an_expired_user_once_between_them() {
    let db = postgres_database().await;
    let sandbox_app = spawn().await;
    let fractal = sandbox_app.sandbox().fractal().clone();
    let a = replica(&sandbox_app, &db, |c| c.cache.enabled = false).await;
    let b = replica(&sandbox_app, &db, |c| c.cache.enabled = false).await;
    let (user, _) = linked_user(&sandbox_app, &a, 21).await;
    let token = issuer_token(&user, "contact:read", false);
    let before = fractal.counts().get("token_refresh");
    let queries = (0..20).map(|i| {
        let replica = if i % 2 == 0 { &a } else { &b };
        replica.query(&token, EMAILS)
    });
    for answer in futures_util::future::join_all(queries).await {
        answer.ok();
    }
    assert_eq!(fractal.counts().get("token_refresh") - before, 1, "one refresh across both replicas");
}

/// Makes every update of a Fractal link fail until `inject_failure` is emptied.
async fn fail_link_updates(app: &TestApp) {
    let sql = match app.store.engine() {
        kyc_gateway::store::Engine::Sqlite => {
            "CREATE TABLE inject_failure (x INTEGER); INSERT INTO inject_failure VALUES (1); \
             CREATE TRIGGER fail_link_update BEFORE UPDATE ON provider_links \
             WHEN (SELECT COUNT(*) FROM inject_failure) > 0 BEGIN SELECT RAISE(ABORT, 'injected'); END;"
        }
        kyc_gateway::store::Engine::Postgres => {
            "CREATE TABLE inject_failure (x INT); INSERT INTO inject_failure VALUES (1); \
             CREATE FUNCTION fail_link_update() RETURNS trigger AS $$ BEGIN \
             IF EXISTS (SELECT 1 FROM inject_failure) THEN RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END $$ \
             LANGUAGE plpgsql; CREATE TRIGGER fail_link_update BEFORE UPDATE ON provider_links FOR EACH ROW \
             EXECUTE FUNCTION fail_link_update();"
        }
    };
    app.store.pool().execute(sql).await.expect("the failure is armed");
}

on_both_engines!(a_failed_commit_after_a_refresh_never_uses_the_new_access_token_and_the_next_query_recovers);

async fn a_failed_commit_after_a_refresh_never_uses_the_new_access_token_and_the_next_query_recovers(db: TestDatabase) {
    let sandbox_app = spawn().await;
    let fractal = sandbox_app.sandbox().fractal().clone();
    let app = replica(&sandbox_app, &db, |c| c.cache.enabled = false).await;
    let (user, r0) = linked_user(&sandbox_app, &app, 22).await;
    fail_link_updates(&app).await;
    let token = issuer_token(&user, "contact:read", false);
    let (refreshes, reads) = (fractal.counts().get("token_refresh"), fractal.counts().get("users_me"));
    let failed = app.query(&token, EMAILS).await;
    assert!(failed.data("me.emails").is_null(), "{}: {:#}", db.engine, failed.body);
    let error = failed.error_at("me.emails").expect("the Fractal error");
    assert_eq!(error["extensions"]["code"], "PROVIDER_UNAVAILABLE", "{}", db.engine);
    assert_eq!(fractal.counts().get("token_refresh"), refreshes + 1, "{}: Fractal rotated", db.engine);
    assert_eq!(fractal.counts().get("users_me"), reads, "{}: the new access token was never used", db.engine);
    assert!(fractal.refresh_token_is_valid(r0.expose()), "{}: so the old pair still works", db.engine);
    let stored = app
        .directory
        .link(&crate::helpers::uid(&user), kyc_gateway::domain::Provider::Fractal)
        .await
        .expect("directory")
        .expect("linked");
    assert_eq!(stored.tokens.refresh_token, r0, "{}: nothing new was stored", db.engine);

    app.store.pool().execute("DELETE FROM inject_failure").await.expect("disarmed");
    let recovered = app.query(&token, EMAILS).await.ok();
    assert!(recovered.data("me.emails").is_array(), "{}", db.engine);
    assert!(!fractal.refresh_token_is_valid(r0.expose()), "{}: the old pair retired only now", db.engine);
    app.stop().await;
}

#[tokio::test]
async fn tokens_are_sealed_at_rest() {
    let sandbox_app = spawn().await;
    let db = sqlite_database();
    let app = replica(&sandbox_app, &db, |_| {}).await;
    let (user, _) = linked_user(&sandbox_app, &app, 23).await;
    app.query(&issuer_token(&user, "contact:read", false), EMAILS).await.ok();
    let link = app
        .directory
        .link(&crate::helpers::uid(&user), kyc_gateway::domain::Provider::Fractal)
        .await
        .expect("directory")
        .expect("linked");
    let access = link.tokens.access_token.expect("an access token after the refresh");
    let row = sqlx::query("SELECT * FROM provider_links WHERE user_id = $1")
        .bind(&user)
        .fetch_one(app.store.pool())
        .await
        .expect("the raw row");
    use sqlx::Row;
    let mut raw = Vec::new();
    for column in 0..row.len() {
        if let Ok(text) = row.try_get::<String, _>(column) {
            raw.extend(text.into_bytes());
        } else if let Ok(bytes) = row.try_get::<Vec<u8>, _>(column) {
            raw.extend(bytes);
        }
    }
    for secret in [link.tokens.refresh_token.expose(), access.expose()] {
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "a token in clear text in the row");
    }
    let key_id: String = row.try_get("refresh_key_id").expect("key id");
    assert_eq!(key_id, test_encryption().current.id(), "the key's id beside the value");
}

on_both_engines!(a_database_with_an_unknown_newer_migration_is_refused);

async fn a_database_with_an_unknown_newer_migration_is_refused(db: TestDatabase) {
    let config = Config {
        database: Some(StoreSettings { url: Secret::new(db.url.clone()), ..StoreSettings::memory() }),
        ..Config::default()
    };
    let store = kyc_gateway::open_database(&config).await.expect("migrated");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, TRUE, $3, 0)",
    )
    .bind(9999i64)
    .bind("from the future")
    .bind(vec![0u8; 48])
    .execute(store.pool())
    .await
    .expect("recorded");
    store.close().await;
    let error = App::build(config).await.err().expect("refused").to_string();
    assert!(error.contains("9999") && error.contains("newer"), "{}: {error}", db.engine);
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn invalidation_on_one_replica_reaches_the_other_through_the_change_channel() {
    let db = postgres_database().await;
    let sandbox_app = spawn().await;
    // Answers cached for an hour: B reads the provider again only because A's change reached it.
    let hour = |c: &mut kyc_gateway::Config| c.cache.status_ttl = Duration::from_secs(3600);
    let a = replica(&sandbox_app, &db, hour).await;
    let b = replica(&sandbox_app, &db, hour).await;
    let (user, _) = linked_user(&sandbox_app, &a, 6).await;
    assert!(sandbox_app.sandbox().sumsub().applicant_of(&user).is_some());
    let token = issuer_token("staff", &format!("client.users:read {ALL_ITEMS}"), true);
    let q = format!(r#"{{ user(id: "{user}") {{ verificationCases(provider: SUMSUB) {{ id }} }} }}"#);
    let reads = || sandbox_app.sandbox().sumsub().counts().get("applicant_by_external_id");
    b.query(&token, &q).await.ok();
    b.query(&token, &q).await.ok();
    let cached = reads();
    assert_eq!(
        b.query(&token, &q).await.ok().body["data"]["user"]["verificationCases"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(reads(), cached, "B answers from its cache");
    // A change made on A: the user unlinks Fractal.
    a.query(&issuer_token(&user, "fractal.link:write", false), "mutation { unlinkFractal }").await.ok();
    eventually("B dropped the user from its cache", || async {
        b.query(&token, &q).await.ok();
        reads() > cached
    })
    .await;
}
