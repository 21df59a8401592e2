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

/// A database as the release before the provider axis left it: migrations 0001 to 0003 applied by its migrator
/// (`schema_migrations`, each file's SHA-256), one user with a reference at three providers and a Fractal link whose
/// refresh token is sealed as that release sealed it, and a started link.
async fn legacy_database(db: &TestDatabase) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = if db.engine == "sqlite" { format!("{}?mode=rwc", db.url) } else { db.url.clone() };
    let pool = sqlx::AnyPool::connect(&url).await.expect("the database");
    let dialect = if db.engine == "sqlite" { "sqlite" } else { "postgres" };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
    pool.execute(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
         applied_at BIGINT NOT NULL)",
    )
    .await
    .expect("the earlier migrator's table");
    for (version, name) in [(1i64, "0001_directory"), (2, "0002_webhooks"), (3, "0003_audit")] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.sql"))).expect("a migration");
        sqlx::raw_sql(&text).execute(&pool).await.expect("applied");
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, 0)")
            .bind(version)
            .bind(name)
            .bind(kyc_gateway::digest::sha256_hex(text.as_bytes()))
            .execute(&pool)
            .await
            .expect("recorded");
    }
    pool.execute(
        "INSERT INTO users (user_id, sumsub_applicant_id, sila_user_handle, ident_user_id, created_at) VALUES \
         ('u1', 'applicant-1', 'handle-1', 'ident-1', 0), ('u2', NULL, NULL, NULL, 0)",
    )
    .await
    .expect("users");
    let keys = test_encryption();
    let cipher = kyc_gateway::store::crypto::TokenCipher::new(&keys.current, &keys.older);
    let (key_id, sealed) = cipher.seal(&Secret::new("refresh-token-1"), "fractal_links/u1/refresh");
    sqlx::query(
        "INSERT INTO fractal_links (user_id, fractal_uid, scopes, refresh_key_id, refresh_sealed, version, linked_at, \
         updated_at) VALUES ('u1', 'fractal-uid-1', 'uid:read', $1, $2, 3, 0, 0)",
    )
    .bind(key_id)
    .bind(sealed)
    .execute(&pool)
    .await
    .expect("a link");
    pool.execute(
        "INSERT INTO link_states (nonce, user_id, redirect_uri, expires_at) VALUES ('n-1', 'u1', 'https://app', 0)",
    )
    .await
    .expect("a started link");
    // An applied webhook whose inbox row is kept, and one whose row was purged.
    pool.execute(
        "INSERT INTO webhook_inbox (provider, event_key, event_type, event, received_at, status, attempts, \
         next_attempt_at) VALUES ('SUMSUB', 'sha256:kept', 'applicantReviewed', '{}', 0, 'processed', 1, 0)",
    )
    .await
    .expect("an inbox row");
    pool.execute(
        "INSERT INTO verification_versions (provider, user_id, ordering_key, occurred_at, state, provider_status, \
         inbox_id) VALUES ('SUMSUB', 'u1', 'basic', 5, 'APPROVED', 'completed', 1), \
         ('SUMSUB', 'u1', 'plus', 6, 'REJECTED', 'completed', 99)",
    )
    .await
    .expect("applied webhooks");
    pool
}

fn on(db: &TestDatabase) -> Config {
    Config {
        database: Some(StoreSettings { url: Secret::new(db.url.clone()), ..StoreSettings::memory() }),
        encryption: Some(test_encryption()),
        ..Config::default()
    }
}

on_both_engines!(a_database_of_the_earlier_release_keeps_every_reference_and_link_through_the_upgrade);

async fn a_database_of_the_earlier_release_keeps_every_reference_and_link_through_the_upgrade(db: TestDatabase) {
    use kyc_gateway::directory::Directory;
    use kyc_gateway::domain::Provider;
    let legacy = legacy_database(&db).await;
    let config = on(&db);
    let (store, directory) = kyc_gateway::open_store(&config, &test_encryption()).await.expect("upgraded");
    let u1 = crate::helpers::uid("u1");
    for (provider, reference) in
        [(Provider::Sumsub, "applicant-1"), (Provider::Sila, "handle-1"), (Provider::Ident, "ident-1")]
    {
        assert_eq!(directory.references(&u1, provider).await.expect("read"), [reference], "{}", db.engine);
        assert_eq!(directory.user_for_reference(provider, reference).await.expect("read"), Some(u1.clone()));
    }
    let link = directory.link(&u1, Provider::Fractal).await.expect("read").expect("linked");
    assert_eq!((link.subject.as_str(), link.tokens.refresh_token.expose()), ("fractal-uid-1", "refresh-token-1"));
    assert!(directory.knows(&crate::helpers::uid("u2")).await.expect("read"), "{}", db.engine);
    let state: String = sqlx::query_scalar("SELECT provider FROM link_states WHERE nonce = 'n-1'")
        .fetch_one(store.pool())
        .await
        .expect("the started link");
    assert_eq!(state, "FRACTAL");
    // The earlier migrator's table is kept current: that release, started again, refuses the database as newer.
    let mirrored: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&legacy)
        .await
        .expect("the earlier migrator's table");
    // Every migration of this version (the files' numbers).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join("sqlite");
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .expect("the migrations")
        .filter_map(|entry| entry.expect("an entry").file_name().to_str()?.split('_').next()?.parse().ok())
        .collect();
    versions.sort();
    assert_eq!(mirrored, versions, "{}", db.engine);
    // Applied webhooks keep their state and gain the event key of their inbox row where it is still kept.
    let versions: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT ordering_key, state, event_key FROM verification_versions WHERE user_id = 'u1' ORDER BY ordering_key",
    )
    .fetch_all(store.pool())
    .await
    .expect("the versions");
    let expected = [("basic", "APPROVED", "sha256:kept"), ("plus", "REJECTED", "")]
        .map(|(a, b, c)| (a.into(), b.into(), c.into()));
    assert_eq!(versions, expected, "{}", db.engine);
    legacy.close().await;
    store.close().await;
}

on_both_engines!(an_import_adds_to_a_user_s_list_of_references_and_a_user_keeps_the_newest_hundred);

async fn an_import_adds_to_a_user_s_list_of_references_and_a_user_keeps_the_newest_hundred(db: TestDatabase) {
    use kyc_gateway::directory::{import, Directory};
    use kyc_gateway::domain::Provider;
    let (store, directory) = kyc_gateway::open_store(&on(&db), &test_encryption()).await.expect("a store");
    let fields = kyc_gateway::providers::registry::import_fields();
    let file = json!([{ "user_id": "u1", "veriff_session_ids": ["s-000"] }]);
    let entries = import::entries(&file, &fields).expect("valid");
    import::import(&directory, &entries, false).await.expect("imported");
    let user = crate::helpers::uid("u1");
    // As a decision webhook adds a session.
    directory.add_reference(&user, Provider::Veriff, "s-001").await.expect("added");
    import::import(&directory, &entries, false).await.expect("imported again");
    let mut held = directory.references(&user, Provider::Veriff).await.expect("read");
    held.sort();
    assert_eq!(held, ["s-000", "s-001"], "{}: the import kept the session added since", db.engine);
    for i in 2..=105 {
        directory.add_reference(&user, Provider::Veriff, &format!("s-{i:03}")).await.expect("added");
    }
    let held = directory.references(&user, Provider::Veriff).await.expect("read");
    assert_eq!(held.len(), 100, "{}", db.engine);
    assert_eq!(held[0], "s-105", "{}: newest first", db.engine);
    assert!(
        !held.contains(&"s-005".to_owned()) && held.contains(&"s-006".to_owned()),
        "{}: the oldest dropped",
        db.engine
    );
    store.close().await;
}

on_both_engines!(references_added_in_one_millisecond_are_read_in_the_order_they_are_kept);

async fn references_added_in_one_millisecond_are_read_in_the_order_they_are_kept(db: TestDatabase) {
    use kyc_gateway::directory::Directory;
    use kyc_gateway::domain::Provider;
    let (store, directory) = kyc_gateway::open_store(&on(&db), &test_encryption()).await.expect("a store");
    let fields = kyc_gateway::providers::registry::import_fields();
    let file = json!([{ "user_id": "u1", "veriff_session_ids": ["s-001", "s-002", "s-003"] }]);
    let entries = kyc_gateway::directory::import::entries(&file, &fields).expect("valid");
    kyc_gateway::directory::import::import(&directory, &entries, false).await.expect("imported");
    sqlx::query("UPDATE provider_refs SET added_at = 1000 WHERE user_id = 'u1'")
        .execute(store.pool())
        .await
        .expect("one millisecond");
    // The trim keeps the greatest references of a millisecond as its newest; the read must agree.
    let held = directory.references(&crate::helpers::uid("u1"), Provider::Veriff).await.expect("read");
    assert_eq!(held, ["s-003", "s-002", "s-001"], "{}: newest first, as the trim ranks them", db.engine);
    store.close().await;
}

on_both_engines!(a_list_of_users_is_read_in_one_pass_exactly_as_each_user_alone);

async fn a_list_of_users_is_read_in_one_pass_exactly_as_each_user_alone(db: TestDatabase) {
    use kyc_gateway::directory::{CachedDirectory, Directory, Link, LinkTokens};
    use kyc_gateway::domain::Provider;
    let (store, directory) = kyc_gateway::open_store(&on(&db), &test_encryption()).await.expect("a store");
    let fields = kyc_gateway::providers::registry::import_fields();
    let file = json!([
        { "user_id": "u1", "veriff_session_ids": ["s-001", "s-002"] },
        { "user_id": "u2", "veriff_session_ids": ["s-003"] },
    ]);
    let entries = kyc_gateway::directory::import::entries(&file, &fields).expect("valid");
    kyc_gateway::directory::import::import(&directory, &entries, false).await.expect("imported");
    sqlx::query("UPDATE provider_refs SET added_at = 1000").execute(store.pool()).await.expect("one millisecond");
    let tokens = LinkTokens { access_token: None, access_renew_at: None, refresh_token: Secret::new("r") };
    let link = Link { subject: "f-2".into(), scopes: "uid:read".into(), tokens };
    directory.store_link(&crate::helpers::uid("u2"), Provider::Fractal, &link).await.expect("linked");
    let users: Vec<_> = ["u2", "nobody", "u1"].map(crate::helpers::uid).into();
    let mut alone = Vec::new();
    for user in &users {
        alone.push(directory.entry(user).await.expect("read"));
    }
    assert_eq!(directory.entries(&users).await.expect("read"), alone, "{}", db.engine);
    let cached = CachedDirectory::new(directory.clone());
    // Once from the store (every user missing), once from the cache.
    for _ in 0..2 {
        assert_eq!(cached.entries(&users).await.expect("read"), alone, "{}", db.engine);
        assert_eq!(cached.knows_all(&users).await.expect("read"), [true, false, true], "{}", db.engine);
        let subjects = ["f-2".to_owned(), "f-none".to_owned()];
        let linked = cached.users_for_links(Provider::Fractal, &subjects).await.expect("read");
        assert_eq!(linked, [Some(crate::helpers::uid("u2")), None], "{}", db.engine);
    }
    store.close().await;
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn a_refresh_token_rotated_by_an_earlier_replica_while_the_upgrade_runs_is_kept() {
    let db = postgres_database().await;
    let legacy = legacy_database(&db).await;
    // A replica of the earlier release refreshing u1's link: the row is locked while it calls Fractal.
    let mut refreshing = legacy.begin().await.expect("a transaction");
    sqlx::query("SELECT refresh_sealed FROM fractal_links WHERE user_id = 'u1' FOR UPDATE")
        .fetch_one(&mut *refreshing)
        .await
        .expect("locked");
    let config = on(&db);
    let upgrade = tokio::spawn(async move { kyc_gateway::open_store(&config, &test_encryption()).await.map(|s| s.0) });
    eventually("the upgrade waits for the refresh", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&legacy)
        .await
        .expect("activity");
        waiting > 0
    })
    .await;
    // Fractal rotated the token: the earlier release stores the new one and commits.
    let keys = test_encryption();
    let cipher = kyc_gateway::store::crypto::TokenCipher::new(&keys.current, &keys.older);
    let (key_id, sealed) = cipher.seal(&Secret::new("refresh-token-2"), "fractal_links/u1/refresh");
    sqlx::query(
        "UPDATE fractal_links SET refresh_key_id = $1, refresh_sealed = $2, version = version + 1 WHERE user_id = 'u1'",
    )
    .bind(key_id)
    .bind(sealed)
    .execute(&mut *refreshing)
    .await
    .expect("rotated");
    refreshing.commit().await.expect("committed");
    let store = upgrade.await.expect("joined").expect("upgraded");
    let keys = test_encryption();
    let directory = kyc_gateway::directory::sql::SqlDirectory::new(
        store.clone(),
        std::sync::Arc::new(kyc_gateway::store::crypto::TokenCipher::new(&keys.current, &keys.older)),
    );
    use kyc_gateway::directory::Directory;
    let link = directory
        .link(&crate::helpers::uid("u1"), kyc_gateway::domain::Provider::Fractal)
        .await
        .expect("read")
        .expect("linked");
    assert_eq!(link.tokens.refresh_token.expose(), "refresh-token-2", "the rotated token survived the upgrade");
    legacy.close().await;
    store.close().await;
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn replicas_starting_together_on_a_new_database_migrate_it_once_between_them() {
    // The race was narrow (one statement's width): many replicas, connected first, then migrating at one moment.
    for _ in 0..20 {
        let db = postgres_database().await;
        let settings = StoreSettings { url: Secret::new(db.url.clone()), ..StoreSettings::memory() };
        let mut stores = Vec::new();
        for _ in 0..6 {
            stores.push(kyc_gateway::store::Store::connect(&settings).await.expect("connected"));
        }
        let together = std::sync::Arc::new(tokio::sync::Barrier::new(stores.len()));
        let starts: Vec<_> = stores
            .into_iter()
            .map(|store| {
                let together = together.clone();
                tokio::spawn(async move {
                    together.wait().await;
                    let migrated = store.migrate().await;
                    store.close().await;
                    migrated
                })
            })
            .collect();
        for start in starts {
            start.await.expect("joined").expect("every replica migrates or finds it migrated");
        }
        let config = on(&db);
        let store = kyc_gateway::open_database(&config).await.expect("migrated");
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(store.pool()).await.expect("applied");
        let files = std::fs::read_dir("migrations/postgres").expect("the migrations").count();
        assert_eq!(applied, files as i64, "every migration, once");
        store.close().await;
    }
}
