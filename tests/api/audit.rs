//! The audit trail over real HTTP: what is recorded, reading it back, strict mode when the store refuses records,
//! purposes, the hash chain caught out by edits in the database, restarts, replicas and retention.

use std::process::Command;

use kyc_gateway::audit::Mode;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    client_token, on_both_engines, postgres_database, spawn, spawn_on, spawn_with, sqlite_database, user_token,
    TestApp, TestDatabase, SEED,
};

const DOCUMENT: &str = r#"{ user(id: "b76ab44d-b71e-4d19-b6f9-f6e88cd73946") { verificationCases { level details { identificationDocumentNumber } } } }"#;
const DETAILS: &str = "verification.basic:read verification.basic.details:read verification.plus:read \
    verification.plus.details:read verification.selfie:read verification.liveness:read";

/// A query with an `X-Access-Purpose` header.
async fn query_for(app: &TestApp, token: &str, purpose: Option<&str>, query: &str) -> Value {
    let mut request = app.http.post(app.url("/graphql")).bearer_auth(token).json(&json!({ "query": query }));
    if let Some(purpose) = purpose {
        request = request.header("X-Access-Purpose", purpose);
    }
    let answer = request.send().await.expect("answer");
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.headers().contains_key("x-request-id"), "every answer names its request");
    answer.json().await.expect("json")
}

const EVENTS: &str = r#"{ auditEvents(userId: "b76ab44d-b71e-4d19-b6f9-f6e88cd73946") { edges { node {
    seq at requestId callerKind caller issuer subjects operationType documentHash purpose
    fields { path outcome } } } } }"#;

#[tokio::test]
async fn a_staff_read_with_a_purpose_is_in_the_trail_and_in_the_person_s_own_access_log() {
    let app =
        spawn_with(|c| c.audit.caller_names = vec![(None, "compliance".into(), "the compliance team".into())]).await;
    let staff = kyc_gateway::auth::token::mint_dev_token(
        &kyc_gateway::secret::Secret::new(kyc_gateway::auth::token::DEFAULT_DEV_SECRET),
        &kyc_gateway::auth::token::Subject::Client("compliance".into()),
        &format!("client.users:read {DETAILS}"),
        300,
    );
    let read = query_for(&app, &staff, Some("AML review 2026-114"), DOCUMENT).await;
    let cases = read["data"]["user"]["verificationCases"].as_array().expect("cases");
    let number = cases
        .iter()
        .map(|c| &c["details"]["identificationDocumentNumber"])
        .find(|n| n.is_string())
        .unwrap_or_else(|| panic!("a document number: {read:#}"));

    let auditor = client_token("audit:read");
    let trail = query_for(&app, &auditor, None, EVENTS).await;
    let events = trail["data"]["auditEvents"]["edges"].as_array().expect("events");
    let event = &events.first().expect("a record")["node"];
    assert_eq!(event["callerKind"], "client");
    assert_eq!(event["caller"], "compliance");
    assert_eq!(event["issuer"], "kyc-gateway-dev");
    assert_eq!(event["purpose"], "AML review 2026-114");
    assert_eq!(event["subjects"], json!([SEED]));
    assert_eq!(event["operationType"], "query");
    assert_eq!(event["documentHash"], kyc_gateway::digest::sha256_hex(DOCUMENT));
    let fields = event["fields"].as_array().expect("fields");
    assert!(
        fields.contains(
            &json!({ "path": "user.verificationCases.details.identificationDocumentNumber", "outcome": "RETURNED" })
        ),
        "{fields:?}"
    );
    assert!(!trail.to_string().contains(number.as_str().expect("text")), "the trail holds no value");

    let own = query_for(
        &app,
        &user_token(SEED, "uid:read"),
        None,
        "{ me { accessLog { edges { node { at caller purpose fields } } } } }",
    )
    .await;
    // Newest first: the auditor's read of this person's trail, then the compliance team's read of their data.
    let edges = own["data"]["me"]["accessLog"]["edges"].as_array().expect("edges");
    assert_eq!(edges[0]["node"]["caller"], "a service", "{own:#}");
    assert_eq!(edges[0]["node"]["fields"], json!(["auditEvents"]), "{own:#}");
    let log = &edges[1]["node"];
    assert_eq!(log["caller"], "the compliance team", "{own:#}");
    assert_eq!(log["purpose"], "AML review 2026-114");
    assert_eq!(log["fields"], json!(["user.verificationCases.details.identificationDocumentNumber"]));

    let refused = query_for(&app, &staff, None, EVENTS).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{refused:#}");
    let someone_else = query_for(
        &app,
        &client_token("client.users:read uid:read"),
        None,
        &format!(r#"{{ user(id: "{SEED}") {{ accessLog {{ edges {{ node {{ at }} }} }} }} }}"#),
    )
    .await;
    assert_eq!(someone_else["data"]["user"]["accessLog"], Value::Null, "an access log is its user's alone");
}

#[tokio::test]
async fn a_client_whose_id_is_the_person_s_id_is_still_in_the_person_s_access_log() {
    let app = spawn().await;
    // A service whose client id happens to be the person's user id: it is not the person, and its read is listed.
    let namesake = kyc_gateway::auth::token::mint_dev_token(
        &kyc_gateway::secret::Secret::new(kyc_gateway::auth::token::DEFAULT_DEV_SECRET),
        &kyc_gateway::auth::token::Subject::Client(SEED.into()),
        &format!("client.users:read {DETAILS}"),
        300,
    );
    let read = query_for(&app, &namesake, Some("a namesake"), DOCUMENT).await;
    assert!(read["data"]["user"]["verificationCases"].is_array(), "{read:#}");
    let own_read = query_for(&app, &user_token(SEED, DETAILS), None, "{ me { verificationCases { level } } }").await;
    assert!(own_read["errors"].is_null(), "{own_read:#}");
    let own = query_for(
        &app,
        &user_token(SEED, "uid:read"),
        None,
        "{ me { accessLog { edges { node { caller purpose } } } } }",
    )
    .await;
    let entries = own["data"]["me"]["accessLog"]["edges"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "the service's read, not the person's own: {own:#}");
    assert_eq!(entries[0]["node"]["caller"], "a service");
    assert_eq!(entries[0]["node"]["purpose"], "a namesake");
}

/// Makes the store refuse audit records (and nothing else).
pub async fn refuse_records(app: &TestApp, db: &TestDatabase) {
    let statements: &[&str] = match db.engine {
        "sqlite" => {
            &["CREATE TRIGGER refuse BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'injected'); END"]
        }
        _ => &[
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_records FOR EACH ROW EXECUTE FUNCTION refuse()",
        ],
    };
    for statement in statements {
        sqlx::query(statement).execute(app.store.pool()).await.expect("the trigger");
    }
}

on_both_engines!(strict_mode_withholds_personal_data_the_trail_cannot_record_and_answers_the_rest);

async fn strict_mode_withholds_personal_data_the_trail_cannot_record_and_answers_the_rest(db: TestDatabase) {
    let app = spawn_on(&db, |_| {}).await;
    refuse_records(&app, &db).await;
    let token = user_token(SEED, &format!("uid:read contact:read {DETAILS}"));
    let answer = query_for(
        &app,
        &token,
        None,
        "{ me { id emails { address } verificationCases { level details { fullName } } } }",
    )
    .await;
    assert_eq!(answer["data"]["me"]["id"], SEED, "{}: {answer:#}", db.engine);
    assert_eq!(answer["data"]["me"]["emails"], Value::Null);
    let cases = answer["data"]["me"]["verificationCases"].as_array().expect("cases");
    assert!(!cases.is_empty() && cases.iter().all(|c| c["level"].is_string() && c["details"]["fullName"].is_null()));
    // The seed person's selfie details stay denied (no selfie details scope); the rest was withheld.
    let codes: Vec<&str> = answer["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["extensions"]["code"].as_str())
        .filter(|c| *c != "UNAUTHORIZED_FIELD_OR_TYPE")
        .collect();
    assert!(!codes.is_empty() && codes.iter().all(|c| *c == "AUDIT_UNAVAILABLE"), "{codes:?}");
    assert!(answer["errors"].as_array().expect("errors").iter().any(|e| e["path"] == json!(["me", "emails"])));
    // Without personal data, nothing needs recording.
    let plain = query_for(&app, &token, None, "{ me { id verificationCases { level } } }").await;
    assert!(plain["errors"].is_null(), "{plain:#}");
}

#[tokio::test]
async fn the_trail_names_schema_fields_whatever_aliases_the_caller_chose() {
    let db = sqlite_database();
    let app = spawn_on(&db, |_| {}).await;
    let staff = client_token("client.users:read contact:read");
    let aliased = format!(r#"{{ harmless: user(id: "{SEED}") {{ nothing: emails {{ address }} }} }}"#);
    let read = query_for(&app, &staff, None, &aliased).await;
    assert!(read["data"]["harmless"]["nothing"].is_array(), "{read:#}");
    let trail = query_for(&app, &client_token("audit:read"), None, EVENTS).await;
    let fields = &trail["data"]["auditEvents"]["edges"][0]["node"]["fields"];
    assert_eq!(fields, &json!([{ "path": "user.emails", "outcome": "RETURNED" }]), "{trail:#}");
    // Withholding still finds each value where the caller asked for it.
    refuse_records(&app, &db).await;
    let withheld = query_for(&app, &staff, None, &aliased).await;
    assert_eq!(withheld["data"]["harmless"]["nothing"], Value::Null, "{withheld:#}");
    assert_eq!(withheld["errors"][0]["path"], json!(["harmless", "nothing"]), "{withheld:#}");
    assert_eq!(withheld["errors"][0]["extensions"]["code"], "AUDIT_UNAVAILABLE");
}

/// The fields of the newest entry of `user`'s own access log.
async fn logged_fields(app: &TestApp, user: &str) -> Value {
    let own =
        query_for(app, &user_token(user, "uid:read"), None, "{ me { accessLog { edges { node { fields } } } } }").await;
    own["data"]["me"]["accessLog"]["edges"][0]["node"]["fields"].clone()
}

#[tokio::test]
async fn a_person_s_access_log_lists_only_the_fields_read_of_them_not_those_of_others_in_the_same_operation() {
    let app = spawn().await;
    let other = app.sandbox().users()[3].clone();
    assert_ne!(other, SEED);
    let staff = client_token(&format!("client.users:read contact:read {DETAILS}"));
    let both = format!(
        r#"{{ a: user(id: "{other}") {{ emails {{ address }} }}
             b: user(id: "{SEED}") {{ verificationCases {{ details {{ identificationDocumentNumber }} }} }} }}"#
    );
    let read = query_for(&app, &staff, None, &both).await;
    assert!(read["data"]["a"]["emails"].is_array(), "{read:#}");
    let cases = read["data"]["b"]["verificationCases"].as_array().expect("cases");
    assert!(cases.iter().any(|c| c["details"]["identificationDocumentNumber"].is_string()), "{read:#}");

    let (others, seeds) = (logged_fields(&app, &other).await, logged_fields(&app, SEED).await);
    let mentions = |fields: &Value, word: &str| {
        fields.as_array().expect("fields").iter().any(|f| f.as_str().is_some_and(|f| f.contains(word)))
    };
    assert!(!mentions(&others, "details"), "another person's details are in this person's access log: {others}");
    assert!(!mentions(&seeds, "emails"), "another person's emails are in this person's access log: {seeds}");
    assert_eq!(others, json!(["user.emails"]));
    assert_eq!(seeds, json!(["user.verificationCases.details.identificationDocumentNumber"]));

    // The trail says whose each field was.
    let trail = query_for(
        &app,
        &client_token("audit:read"),
        None,
        "{ auditEvents { edges { node { cause subjects fields { path outcome subjects } } } } }",
    )
    .await;
    // The newest record that is not a read of the trail (the access logs just read are recorded too).
    let edges = trail["data"]["auditEvents"]["edges"].as_array().expect("edges");
    let event = &edges.iter().find(|e| e["node"]["cause"].is_null()).expect("the staff's read")["node"];
    let mut subjects = vec![other.clone(), SEED.to_owned()];
    subjects.sort();
    assert_eq!(event["subjects"], json!(subjects), "{trail:#}");
    // In the order the fields resolved: `a` and `b` run concurrently, so by path here.
    let mut returned: Vec<&Value> =
        event["fields"].as_array().expect("fields").iter().filter(|f| f["outcome"] == "RETURNED").collect();
    returned.sort_by_key(|f| f["path"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        json!(returned),
        json!([
            { "path": "user.emails", "outcome": "RETURNED", "subjects": [other] },
            { "path": "user.verificationCases.details.identificationDocumentNumber", "outcome": "RETURNED", "subjects": [SEED] },
        ]),
        "{trail:#}"
    );
}

#[tokio::test]
async fn buffered_mode_answers_at_once_and_records_later() {
    let app = spawn_with(|c| c.audit.mode = Mode::Buffered).await;
    let token = user_token(SEED, "uid:read contact:read");
    let answer = query_for(&app, &token, None, "{ me { emails { address } } }").await;
    assert!(answer["data"]["me"]["emails"].is_array(), "{answer:#}");
    crate::helpers::eventually("the buffered record is written", || async { records(&app).await >= 1 }).await;
}

async fn records(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_records").fetch_one(app.store.pool()).await.expect("count")
}

#[tokio::test]
async fn a_client_must_state_a_purpose_when_the_gateway_requires_one() {
    let app = spawn_with(|c| c.audit.require_purpose = true).await;
    let mesh = client_token("client.users:read uid:read contact:read");
    let q = format!(r#"{{ user(id: "{SEED}") {{ id emails {{ address }} }} }}"#);
    let without = query_for(&app, &mesh, None, &q).await;
    assert_eq!(without["data"]["user"]["id"], SEED, "non-personal fields answer: {without:#}");
    assert_eq!(without["data"]["user"]["emails"], Value::Null);
    assert_eq!(without["errors"][0]["extensions"]["code"], "PURPOSE_REQUIRED");
    let with = query_for(&app, &mesh, Some("onboarding check"), &q).await;
    assert!(with["data"]["user"]["emails"].is_array(), "{with:#}");
    let by_extension = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&mesh)
        .json(&json!({ "query": q, "extensions": { "purpose": "onboarding check" } }))
        .send()
        .await
        .expect("answer");
    let by_extension: Value = by_extension.json().await.expect("json");
    assert!(by_extension["data"]["user"]["emails"].is_array(), "{by_extension:#}");
    let own = query_for(&app, &user_token(SEED, "contact:read"), None, "{ me { emails { address } } }").await;
    assert!(own["data"]["me"]["emails"].is_array(), "a user reading itself needs no purpose: {own:#}");
}

fn verify(db: &TestDatabase) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["audit", "verify"])
        .env("KYC_GATEWAY_DATABASE_URL", &db.url)
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// A SQLite database holding `reads` audit records.
async fn trail_of(reads: usize) -> TestDatabase {
    let db = sqlite_database();
    let app = spawn_on(&db, |_| {}).await;
    for i in 0..reads {
        query_for(&app, &user_token(SEED, "contact:read"), Some(&format!("read {i}")), "{ me { emails { address } } }")
            .await;
    }
    app.stop().await;
    db
}

async fn tamper(db: &TestDatabase, statements: &[&str]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("the database");
    for statement in statements {
        sqlx::query(statement).execute(&pool).await.expect("tampered");
    }
    pool.close().await;
}

#[tokio::test]
async fn an_edited_removed_or_moved_record_breaks_the_chain_and_verify_names_it() {
    let db = trail_of(5).await;
    let (ok, text) = verify(&db);
    assert!(ok && text.contains("intact: 5 records"), "{text}");

    tamper(&db, &["UPDATE audit_records SET purpose = 'nothing to see' WHERE seq = 3"]).await;
    let (ok, text) = verify(&db);
    assert!(!ok && text.contains("record 3 was altered"), "{text}");

    let db = trail_of(5).await;
    tamper(&db, &["DELETE FROM audit_records WHERE seq = 3"]).await;
    let (ok, text) = verify(&db);
    assert!(!ok && text.contains("record 3 is missing"), "{text}");

    let db = trail_of(5).await;
    tamper(
        &db,
        &[
            "UPDATE audit_records SET seq = 100 WHERE seq = 2",
            "UPDATE audit_records SET seq = 2 WHERE seq = 3",
            "UPDATE audit_records SET seq = 3 WHERE seq = 100",
        ],
    )
    .await;
    let (ok, text) = verify(&db);
    assert!(!ok && text.contains("record 2 does not follow record 1"), "{text}");

    let db = trail_of(5).await;
    tamper(&db, &["DELETE FROM audit_records WHERE seq = 5"]).await;
    let (ok, text) = verify(&db);
    assert!(!ok && text.contains("the last records were removed"), "{text}");
}

on_both_engines!(the_trail_survives_a_restart_and_replicas_on_one_database_keep_one_verifiable_chain);

async fn the_trail_survives_a_restart_and_replicas_on_one_database_keep_one_verifiable_chain(db: TestDatabase) {
    let token = user_token(SEED, "contact:read");
    let me = "{ me { emails { address } } }";
    let first = spawn_on(&db, |_| {}).await;
    query_for(&first, &token, None, me).await;
    first.stop().await;
    if db.engine == "sqlite" {
        // One process per SQLite database: the restart is what applies.
        let again = spawn_on(&db, |_| {}).await;
        query_for(&again, &token, None, me).await;
        assert_eq!(records(&again).await, 2);
        again.stop().await;
        let (ok, text) = verify(&db);
        assert!(ok && text.contains("intact: 2 records"), "{text}");
        return;
    }
    // Two production replicas on the same PostgreSQL database, both writing.
    let sandbox_app = spawn().await;
    let (a, b) = (
        crate::store::replica(&sandbox_app, &db, |_| {}).await,
        crate::store::replica(&sandbox_app, &db, |_| {}).await,
    );
    let staff = crate::helpers::issuer_token("staff", &format!("client.users:read {DETAILS}"), true);
    let sumsub =
        format!(r#"{{ user(id: "{SEED}") {{ verificationCases(provider: SUMSUB) {{ details {{ fullName }} }} }} }}"#);
    let reads = (0..10).map(|i| {
        let (app, token, q) = (if i % 2 == 0 { &a } else { &b }, staff.clone(), sumsub.clone());
        async move { query_for(app, &token, None, &q).await }
    });
    let answers = futures_util::future::join_all(reads).await;
    assert!(answers.iter().all(|a| a["errors"].is_null()), "{answers:#?}");
    assert_eq!(records(&a).await, 11, "{}", db.engine);
    let (ok, text) = verify(&db);
    assert!(ok && text.contains("intact: 11 records"), "{}: {text}", db.engine);
}

#[tokio::test]
async fn retention_removes_old_records_and_the_rest_of_the_chain_still_verifies() {
    let db = sqlite_database();
    let app = spawn_on(&db, |_| {}).await;
    let token = user_token(SEED, "contact:read");
    for _ in 0..3 {
        query_for(&app, &token, None, "{ me { emails { address } } }").await;
    }
    let removed = kyc_gateway::audit::chain::purge(
        &app.store,
        kyc_gateway::audit::chain::Cutoff::Before(kyc_gateway::clock::unix_millis() + 1),
    )
    .await
    .expect("purged");
    assert_eq!(removed, 3);
    query_for(&app, &token, None, "{ me { emails { address } } }").await;
    let checkpoint: i64 =
        sqlx::query_scalar("SELECT seq FROM audit_checkpoint").fetch_one(app.store.pool()).await.expect("checkpoint");
    assert_eq!(checkpoint, 3);
    let verified = kyc_gateway::audit::chain::verify(&app.store).await.expect("intact");
    assert_eq!((verified.first, verified.records), (4, 2), "the retention record and the read after it");
    let cause: String = sqlx::query_scalar("SELECT cause FROM audit_records WHERE seq = 4")
        .fetch_one(app.store.pool())
        .await
        .expect("record");
    assert!(cause.contains("removed 3 records"), "{cause}");
}

on_both_engines!(retention_forgets_a_person_s_id_and_their_caller_once_no_record_names_them_on_every_replica);

async fn retention_forgets_a_person_s_id_and_their_caller_once_no_record_names_them_on_every_replica(db: TestDatabase) {
    use kyc_gateway::audit::chain::{self, Cutoff};
    use kyc_gateway::audit::{dictionaries::LAST_SEQ_SLACK, Caller, Entry, FieldAccess, Outcome};
    let me = "{ me { emails { address } } }";
    let token = match db.engine {
        "sqlite" => user_token(SEED, "contact:read"),
        _ => crate::helpers::issuer_token(SEED, "contact:read", false),
    };
    // The reader's writer caches the person's dictionary ids; the purge runs elsewhere (another replica on PostgreSQL).
    let (sandbox_app, reader, purger);
    if db.engine == "sqlite" {
        reader = spawn_on(&db, |_| {}).await;
        purger = None;
    } else {
        sandbox_app = spawn().await;
        reader = crate::store::replica(&sandbox_app, &db, |_| {}).await;
        purger = Some(crate::store::replica(&sandbox_app, &db, |_| {}).await);
    }
    let purger = purger.as_ref().unwrap_or(&reader);
    let read = query_for(&reader, &token, None, me).await;
    assert!(read["errors"].is_null() && read["data"]["me"]["emails"].is_array(), "{}: {read}", db.engine);
    // Then enough records about someone else for the person's last record to fall out of a bounded trail.
    let filler = Entry {
        at: kyc_gateway::clock::unix_millis(),
        request_id: "filler".into(),
        trace_id: None,
        caller: Caller { kind: "client".into(), id: "filler".into(), issuer: "kyc-gateway-dev".into() },
        subjects: vec!["someone-else".into()],
        fields: vec![FieldAccess { path: "user.emails".into(), outcome: Outcome::Returned, subjects: Vec::new() }],
        operation_name: None,
        operation_type: "query".into(),
        document_hash: "00".repeat(32),
        purpose: None,
        cause: None,
    };
    // The filler's rows are first used early, so the writer must move their `last_seq` on for the purge to keep them.
    for count in [1, 2 * LAST_SEQ_SLACK as usize] {
        let mut tx = purger.store.begin_write().await.expect("a transaction");
        chain::append(&purger.store, &mut tx, &vec![&filler; count]).await.expect("appended");
        tx.commit().await.expect("committed");
    }
    chain::purge(&purger.store, Cutoff::KeepLast(10)).await.expect("purged");

    // No dictionary row is left that no retained record uses, and nothing names the person.
    let pool = purger.store.pool();
    let unused = [
        "SELECT COUNT(*) FROM audit_callers c WHERE NOT EXISTS (SELECT 1 FROM audit_records r WHERE r.caller = c.id)",
        "SELECT COUNT(*) FROM audit_operations o WHERE NOT EXISTS \
         (SELECT 1 FROM audit_records r WHERE r.operation = o.id)",
        "SELECT COUNT(*) FROM audit_field_lists f WHERE NOT EXISTS (SELECT 1 FROM audit_records r WHERE r.fields = f.id)",
        "SELECT COUNT(*) FROM audit_users WHERE user_id <> 'someone-else'",
    ];
    for sql in unused {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(pool).await.expect("counted");
        assert_eq!(count, 0, "{}: {sql}", db.engine);
    }
    let naming: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM audit_callers WHERE caller = '{SEED}'"))
        .fetch_one(pool)
        .await
        .expect("counted");
    assert_eq!(naming, 0, "{}", db.engine);

    // The reader's writer forgets the ids it cached: the person's next read is recorded whole and verifies.
    query_for(&reader, &token, None, me).await;
    let verified = chain::verify(&purger.store).await.expect("intact");
    assert_eq!(verified.records, 12, "{}: the last 10, the retention record and the new read", db.engine);
    let filler_callers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_callers WHERE caller = 'filler'")
        .fetch_one(pool)
        .await
        .expect("counted");
    assert_eq!(filler_callers, 1, "{}: a row retained records use stays", db.engine);
    let filter = kyc_gateway::audit::read::Filter { user_id: Some(SEED.into()), ..Default::default() };
    let theirs = kyc_gateway::audit::read::events(&purger.store, &filter, 10).await.expect("the trail");
    assert_eq!(theirs.len(), 1, "{}: {theirs:?}", db.engine);
    assert_eq!(theirs[0].entry.caller.id, SEED, "{}", db.engine);
    assert_eq!(theirs[0].entry.subjects, [SEED], "{}", db.engine);

    // A purge that removes their last record forgets them at once, however few records follow it.
    let mut tx = purger.store.begin_write().await.expect("a transaction");
    chain::append(&purger.store, &mut tx, &[&filler, &filler]).await.expect("appended");
    tx.commit().await.expect("committed");
    chain::purge(&purger.store, Cutoff::KeepLast(2)).await.expect("purged");
    let named: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM audit_users WHERE user_id = '{SEED}'"))
        .fetch_one(pool)
        .await
        .expect("counted");
    assert_eq!(named, 0, "{}: their last record is gone, and so is their id", db.engine);
    assert_eq!(chain::verify(&purger.store).await.expect("intact").records, 3, "{}", db.engine);
}

#[tokio::test]
async fn mutations_and_applied_webhooks_are_recorded_with_their_cause() {
    let app = spawn().await;
    let owner = "9a253758-197a-4308-8d2d-61cfe9317644";
    let settle = format!(
        r#"mutation {{ updateKycApplicationStatus(id: "{}", status: ACCEPTED) {{ status }} }}"#,
        kyc_gateway::sandbox::ident::population::JOHN_SMITH
    );
    query_for(&app, &client_token("kyc_application:write client.users:read"), None, &settle).await;
    crate::helpers::eventually("the mutation and the webhook it caused are recorded", || async {
        records(&app).await >= 2
    })
    .await;
    // The webhook may be applied before the mutation's own record is written: their order in the trail is not fixed.
    let mut causes: Vec<Option<String>> = sqlx::query_scalar("SELECT cause FROM audit_records ORDER BY seq")
        .fetch_all(app.store.pool())
        .await
        .expect("records");
    causes.sort();
    let expected = ["mutation updateKycApplicationStatus", "webhook IDENT kyc_application"].map(|c| Some(c.to_owned()));
    assert_eq!(causes, expected, "{causes:?}");
    let trail = kyc_gateway::audit::read::events(&app.store, &Default::default(), 10).await.expect("the trail");
    let webhook = trail.iter().find(|r| r.entry.cause.as_deref() == Some("webhook IDENT kyc_application"));
    assert_eq!(webhook.expect("the webhook's record").entry.subjects, [owner]);
}

/// Lets the store take audit records again (undoes [`refuse_records`]), from a connection of its own.
async fn allow_records(db: &TestDatabase) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("the database");
    let statement = match db.engine {
        "sqlite" => "DROP TRIGGER refuse",
        _ => "DROP TRIGGER refuse ON audit_records",
    };
    sqlx::query(statement).execute(&pool).await.expect("the trigger dropped");
    pool.close().await;
}

on_both_engines!(audit_verify_finds_a_live_trail_intact_while_records_are_appended_and_retention_runs);

async fn audit_verify_finds_a_live_trail_intact_while_records_are_appended_and_retention_runs(db: TestDatabase) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let app = spawn_on(&db, |_| {}).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    // Readers whose every answer appends a record...
    for _ in 0..6 {
        let (http, url, stop) = (app.http.clone(), app.url("/graphql"), stop.clone());
        let token = user_token(SEED, "contact:read");
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let body = json!({ "query": "{ me { emails { address } } }" });
                let _ = http.post(&url).bearer_auth(&token).json(&body).send().await;
            }
        }));
    }
    // ...and retention removing what is older than a few milliseconds, over and over.
    let (store, retention_stop) = (app.store.clone(), stop.clone());
    load.push(tokio::spawn(async move {
        while !retention_stop.load(Ordering::Relaxed) {
            let _ = kyc_gateway::audit::chain::purge(
                &store,
                kyc_gateway::audit::chain::Cutoff::Before(kyc_gateway::clock::unix_millis() - 5),
            )
            .await;
            tokio::task::yield_now().await;
        }
    }));
    crate::helpers::eventually("records are being appended", || async {
        let head: i64 =
            sqlx::query_scalar("SELECT seq FROM audit_head").fetch_one(app.store.pool()).await.expect("head");
        head >= 5
    })
    .await;
    let mut failures = Vec::new();
    let runs = 60;
    for _ in 0..runs {
        if let Err(broken) = kyc_gateway::audit::chain::verify(&app.store).await {
            failures.push(broken.to_string());
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {runs} verifications of a live, untouched trail reported tampering, e.g. {:?}",
        db.engine,
        failures.len(),
        failures.first()
    );
    kyc_gateway::audit::chain::verify(&app.store).await.expect("intact once the load stopped");
}

#[tokio::test]
async fn a_mutation_whose_client_disconnects_mid_way_still_leaves_its_audit_record() {
    let app = spawn().await;
    // ident answers after a second: the client is gone long before the mutation is done.
    app.sandbox().ident().faults().set(kyc_gateway::sandbox::Faults { latency_ms: 1_000, ..Default::default() });
    let settle = format!(
        r#"mutation {{ updateKycApplicationStatus(id: "{}", status: ACCEPTED) {{ status }} }}"#,
        kyc_gateway::sandbox::ident::population::JOHN_SMITH
    );
    let (http, url) = (app.http.clone(), app.url("/graphql"));
    let token = client_token("kyc_application:write client.users:read");
    let abandoned =
        tokio::spawn(async move { http.post(url).bearer_auth(token).json(&json!({ "query": settle })).send().await });
    crate::helpers::eventually("the mutation is under way at ident", || async {
        app.sandbox().ident().faults().in_progress() >= 1
    })
    .await;
    // The client goes away (its connection closes) while the mutation runs.
    abandoned.abort();
    crate::helpers::eventually("the abandoned mutation is recorded", || async {
        let recorded: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_records WHERE cause = 'mutation updateKycApplicationStatus'",
        )
        .fetch_one(app.store.pool())
        .await
        .expect("count");
        recorded == 1
    })
    .await;
}

on_both_engines!(buffered_records_still_queued_at_shutdown_are_written_before_the_gateway_stops);

async fn buffered_records_still_queued_at_shutdown_are_written_before_the_gateway_stops(db: TestDatabase) {
    let app = spawn_on(&db, |c| c.audit.mode = Mode::Buffered).await;
    // The store refuses records for now: buffered ones wait in the writer, to be retried.
    refuse_records(&app, &db).await;
    let token = user_token(SEED, "contact:read");
    let reads = 5;
    for _ in 0..reads {
        let answer = query_for(&app, &token, None, "{ me { emails { address } } }").await;
        assert!(answer["data"]["me"]["emails"].is_array(), "buffered mode answers at once: {answer:#}");
    }
    assert_eq!(records(&app).await, 0, "{}: nothing written yet", db.engine);
    // Shut down with the records still waiting; the store takes records again once the shutdown has begun.
    let readiness = app.readiness.clone();
    let stopping = tokio::spawn(app.stop());
    crate::helpers::eventually("the shutdown has begun", || async { readiness.is_draining() }).await;
    allow_records(&db).await;
    stopping.await.expect("stopped");
    let again = spawn_on(&db, |_| {}).await;
    assert_eq!(records(&again).await, reads as i64, "{}: every buffered record survived the shutdown", db.engine);
    let verified = kyc_gateway::audit::chain::verify(&again.store).await.expect("intact");
    assert_eq!(verified.records, reads);
    again.stop().await;
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn a_record_about_many_users_is_appended_in_one_statement_per_table_not_one_per_user() {
    let db = postgres_database().await;
    let app = spawn_on(&db, |_| {}).await;
    // PostgreSQL counts the statements (not the rows) that insert into the trail's tables.
    for statement in [
        "CREATE TABLE statements (tbl TEXT NOT NULL)",
        "CREATE FUNCTION count_statement() RETURNS trigger AS $$ BEGIN INSERT INTO statements VALUES (TG_TABLE_NAME); \
         RETURN NULL; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER count_records AFTER INSERT ON audit_records FOR EACH STATEMENT EXECUTE FUNCTION count_statement()",
    ] {
        sqlx::query(statement).execute(app.store.pool()).await.expect("statement counting");
    }
    let population = kyc_gateway::sandbox::fractal::Population::generate(
        kyc_gateway::sandbox::SandboxSettings::default().users,
        kyc_gateway::sandbox::SandboxSettings::default().seed,
    );
    let ids: Vec<String> = population.users.iter().take(200).map(|u| format!("\"{}\"", u.uid)).collect();
    let query = format!("{{ users(ids: [{}]) {{ emails {{ address }} }} }}", ids.join(", "));
    let started = std::time::Instant::now();
    let answer = query_for(&app, &client_token("client.users:read contact:read"), None, &query).await;
    eprintln!("200 users' emails, strict mode, on PostgreSQL: {:?}", started.elapsed());
    assert!(answer["errors"].is_null(), "{answer:#}");
    let trail = kyc_gateway::audit::read::events(&app.store, &Default::default(), 1).await.expect("the trail");
    let subjects = trail[0].entry.subjects.len();
    assert!(subjects >= 100, "the record is about many users: {subjects}");
    let counted: Vec<String> =
        sqlx::query_scalar("SELECT tbl FROM statements").fetch_all(app.store.pool()).await.expect("statements");
    let per_table = |table: &str| counted.iter().filter(|t| *t == table).count();
    // PostgreSQL finds a person's records through an index on the records' subjects: no table of subjects.
    assert_eq!(per_table("audit_records"), 1, "one INSERT for a record about {subjects} users");
    kyc_gateway::audit::chain::verify(&app.store).await.expect("intact");
}

on_both_engines!(a_batch_larger_than_one_statement_holds_is_appended_whole_and_still_verifies);

async fn a_batch_larger_than_one_statement_holds_is_appended_whole_and_still_verifies(db: TestDatabase) {
    use kyc_gateway::audit::{Caller, Entry, FieldAccess, Outcome};
    let app = spawn_on(&db, |_| {}).await;
    // 600 records about 20 users each: more records and more subject rows than one INSERT takes.
    let entries: Vec<Entry> = (0..600)
        .map(|i| Entry {
            at: kyc_gateway::clock::unix_millis(),
            request_id: format!("req-{i}"),
            trace_id: (i % 2 == 0).then(|| format!("{i:032x}")),
            caller: Caller { kind: "client".into(), id: "bulk".into(), issuer: "kyc-gateway-dev".into() },
            subjects: (0..20).map(|u| format!("user-{}", (i + u) % 600)).collect(),
            fields: vec![FieldAccess {
                path: "users.emails".into(),
                outcome: Outcome::Returned,
                subjects: (0..20).map(|u| format!("user-{}", (i + u) % 600)).collect(),
            }],
            operation_name: (i % 3 == 0).then(|| "Bulk".to_owned()),
            operation_type: "query".into(),
            document_hash: "0".repeat(64),
            purpose: (i % 5 == 0).then(|| format!("purpose {i}")),
            cause: None,
        })
        .collect();
    let mut tx = app.store.begin_write().await.expect("a transaction");
    let refs: Vec<&Entry> = entries.iter().collect();
    let written = kyc_gateway::audit::chain::append(&app.store, &mut tx, &refs).await.expect("appended");
    tx.commit().await.expect("committed");
    assert_eq!(written.len(), 600);
    let verified = kyc_gateway::audit::chain::verify(&app.store).await.expect("intact");
    assert_eq!((verified.first, verified.last, verified.records), (1, 600, 600), "{}", db.engine);
    if db.engine == "sqlite" {
        let subjects: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_subjects").fetch_one(app.store.pool()).await.expect("count");
        assert_eq!(subjects, 600 * 20, "{}", db.engine);
    }
    let read = kyc_gateway::audit::read::events(
        &app.store,
        &kyc_gateway::audit::read::Filter { user_id: Some("user-5".into()), ..Default::default() },
        1000,
    )
    .await
    .expect("read back");
    assert_eq!(read.len(), 20, "{}: each user is in 20 records", db.engine);
    for record in &read {
        assert_eq!(record.entry, entries[record.seq as usize - 1], "{}: read back as appended", db.engine);
    }
}

#[tokio::test]
async fn the_export_writes_times_as_rfc_3339_like_since_takes_them_and_the_chain_still_verifies() {
    let db = trail_of(2).await;
    let output = Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["audit", "export", "--since", "2020-01-01T00:00:00Z"])
        .env("KYC_GATEWAY_DATABASE_URL", &db.url)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        // The records (sandbox mode also signs checkpoints, exported after the record they sign).
        .filter(|line| line.get("checkpoint").is_none())
        .collect();
    assert_eq!(lines.len(), 2);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("the database");
    let stored: Vec<i64> =
        sqlx::query_scalar("SELECT at FROM audit_records ORDER BY seq").fetch_all(&pool).await.expect("times");
    pool.close().await;
    for (line, at) in lines.iter().zip(stored) {
        let text = line["at"].as_str().unwrap_or_else(|| panic!("a time as text: {line}"));
        // UTC, to the millisecond: `2026-01-01T00:00:00.123Z`.
        assert!(text.len() == 24 && text.ends_with('Z') && text.as_bytes()[19] == b'.', "{text}");
        assert_eq!(kyc_gateway::domain::events::rfc3339_millis(text), Some(at), "{text}");
        // What `--since` takes.
        let since = Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
            .args(["audit", "export", "--since", text])
            .env("KYC_GATEWAY_DATABASE_URL", &db.url)
            .output()
            .expect("the binary runs");
        assert!(since.status.success(), "{}", String::from_utf8_lossy(&since.stderr));
    }
    let (ok, text) = verify(&db);
    assert!(ok && text.contains("intact: 2 records"), "{text}");
}

#[tokio::test]
async fn an_operation_name_longer_than_128_characters_never_reaches_the_trail() {
    let app = spawn().await;
    let token = user_token(SEED, "contact:read");
    let name = "A".repeat(60_000);
    let document = format!("query {name} {{ me {{ emails {{ address }} }} }}");
    // Named in `operationName` and in the document, in the document alone, and an `operationName` that is no name.
    let refusals = [
        (json!({ "query": document, "operationName": name }), "OPERATION_NAME_TOO_LONG"),
        (json!({ "query": document }), "OPERATION_NAME_TOO_LONG"),
        (
            json!({ "query": "{ me { emails { address } } }", "operationName": "a name, not a Name" }),
            "OPERATION_RESOLUTION_FAILURE",
        ),
    ];
    for (body, code) in refusals {
        let request = app.http.post(app.url("/graphql")).bearer_auth(&token);
        let request = request.header("accept", "application/graphql-response+json").json(&body);
        let answer = request.send().await.expect("answer");
        let status = answer.status();
        let answer: Value = answer.json().await.expect("json");
        let shown = answer.to_string().chars().take(300).collect::<String>();
        assert_eq!(status, StatusCode::BAD_REQUEST, "refused before anything runs: {shown}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], code, "{answer:#}");
        assert!(answer.get("data").is_none(), "{answer:#}");
        assert!(
            !answer.to_string().contains(&name[..129]) && !answer.to_string().contains("a name, not"),
            "not echoed"
        );
    }
    // A name within the bound is kept as is, beside the document's hash.
    let short = "query MyEmails { me { emails { address } } }";
    let read = query_for(&app, &token, None, short).await;
    assert!(read.get("errors").is_none(), "{read:#}");
    let events =
        format!(r#"{{ auditEvents(userId: "{SEED}") {{ edges {{ node {{ operationName documentHash }} }} }} }}"#);
    let trail = query_for(&app, &client_token("audit:read"), None, &events).await;
    let edges = trail["data"]["auditEvents"]["edges"].as_array().expect("events").clone();
    assert!(!edges.is_empty(), "{trail:#}");
    for edge in &edges {
        let stored = edge["node"]["operationName"].as_str().unwrap_or("");
        assert!(stored.len() <= 128, "an operation name of {} characters in the trail", stored.len());
    }
    assert_eq!(edges[0]["node"]["operationName"], "MyEmails");
    assert_eq!(edges[0]["node"]["documentHash"], kyc_gateway::graphql::sha256_hex(short));
}

#[tokio::test]
async fn reading_the_trail_and_an_access_log_is_recorded_in_the_trail() {
    let app = spawn().await;
    let auditor = client_token("audit:read");
    let filtered = format!(
        r#"{{ auditEvents(userId: "{SEED}", since: "2020-01-01T00:00:00Z") {{ edges {{ node {{ seq }} }} }} }}"#
    );
    let read = query_for(&app, &auditor, Some("quarterly review"), &filtered).await;
    assert!(read.get("errors").is_none(), "{read:#}");
    let own =
        query_for(&app, &user_token(SEED, "uid:read"), None, "{ me { accessLog { edges { node { at } } } } }").await;
    assert!(own.get("errors").is_none(), "{own:#}");

    let reads = r#"{ auditEvents(since: "2020-01-01T00:00:00Z") { edges { node {
        callerKind caller subjects purpose cause fields { path outcome subjects } } } } }"#;
    let trail = query_for(&app, &auditor, None, reads).await;
    let events: Vec<Value> =
        trail["data"]["auditEvents"]["edges"].as_array().expect("events").iter().map(|e| e["node"].clone()).collect();
    let of_trail = |kind: &str| events.iter().find(|e| e["callerKind"] == kind).cloned();
    let staff = of_trail("client").unwrap_or_else(|| panic!("the auditor's read is recorded: {trail:#}"));
    assert_eq!(staff["caller"], "test-client");
    assert_eq!(staff["purpose"], "quarterly review");
    assert_eq!(staff["subjects"], json!([SEED]));
    assert_eq!(staff["cause"], "read of the audit trail: auditEvents(userId, since)");
    assert_eq!(staff["fields"], json!([{ "path": "auditEvents", "outcome": "RETURNED", "subjects": [SEED] }]));
    let person = of_trail("user").unwrap_or_else(|| panic!("the access log's read is recorded: {trail:#}"));
    assert_eq!(person["caller"], SEED);
    assert_eq!(person["cause"], "read of the audit trail: accessLog");
    assert_eq!(person["fields"], json!([{ "path": "me.accessLog", "outcome": "RETURNED", "subjects": [SEED] }]));
}

/// The tables that hold the trail on `engine` (migrations/*/0008_lean_audit.sql), for their size.
const TRAIL_TABLES: [&str; 6] =
    ["audit_records", "audit_subjects", "audit_callers", "audit_operations", "audit_field_lists", "audit_users"];

/// The bytes the trail's tables and their indexes take on `db`.
async fn trail_bytes(app: &TestApp, db: &TestDatabase) -> i64 {
    let pool = app.store.pool();
    if db.engine == "sqlite" {
        // The whole file, as SQLite lays it out (WAL frames included): what a disk holds.
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(pool).await.expect("pages");
        let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(pool).await.expect("page size");
        return pages * size;
    }
    let mut total = 0;
    for table in TRAIL_TABLES {
        let bytes: Option<i64> = sqlx::query_scalar("SELECT pg_total_relation_size(to_regclass($1))::bigint")
            .bind(table)
            .fetch_one(pool)
            .await
            .expect("a size");
        total += bytes.unwrap_or(0);
    }
    total
}

on_both_engines!(an_audited_read_takes_at_most_200_bytes_of_disk_with_its_indexes_and_subjects);

async fn an_audited_read_takes_at_most_200_bytes_of_disk_with_its_indexes_and_subjects(db: TestDatabase) {
    let app = spawn_on(&db, |_| {}).await;
    // One real `me` read, its record the model of the rest: same caller, fields and operation, new ids and times.
    let token = user_token(SEED, "contact:read");
    let read = query_for(&app, &token, None, "{ me { emails { address } } }").await;
    assert!(read["errors"].is_null(), "{read:#}");
    let model = kyc_gateway::audit::read::events(&app.store, &Default::default(), 1).await.expect("the trail");
    let model = model[0].entry.clone();
    assert_eq!(model.subjects, [SEED]);
    let before = trail_bytes(&app, &db).await;
    let records = 2_000;
    for batch in 0..records / 20 {
        let entries: Vec<kyc_gateway::audit::Entry> = (0..20)
            .map(|i| kyc_gateway::audit::Entry {
                at: model.at + batch * 20 + i,
                request_id: kyc_gateway::secret::random_token()[..32].to_owned(),
                trace_id: Some(kyc_gateway::secret::random_token()[..32].to_owned()),
                ..model.clone()
            })
            .collect();
        let mut tx = app.store.begin_write().await.expect("a transaction");
        kyc_gateway::audit::chain::append(&app.store, &mut tx, &entries.iter().collect::<Vec<_>>())
            .await
            .expect("appended");
        tx.commit().await.expect("committed");
    }
    let after = trail_bytes(&app, &db).await;
    let per_record = (after - before) as f64 / records as f64;
    eprintln!("{}: {per_record:.1} bytes of disk per `me` record ({} bytes for {records})", db.engine, after - before);
    assert!(per_record <= 200.0, "{}: {per_record:.1} bytes per record", db.engine);
    let verified = kyc_gateway::audit::chain::verify(&app.store).await.expect("intact");
    assert_eq!(verified.records, records as u64 + 1);
    app.stop().await;
}

on_both_engines!(records_written_before_the_lean_layout_keep_their_hashes_and_read_back_as_they_were);

async fn records_written_before_the_lean_layout_keep_their_hashes_and_read_back_as_they_were(db: TestDatabase) {
    use kyc_gateway::audit::chain::{hash_of, GENESIS};
    use kyc_gateway::audit::{Caller, Entry, FieldAccess, Outcome};
    // A database as migrations 0001 to 0007 left it, recorded by the earlier migrator (adopted at start).
    sqlx::any::install_default_drivers();
    let url = if db.engine == "sqlite" { format!("{}?mode=rwc", db.url) } else { db.url.clone() };
    let pool = sqlx::AnyPool::connect(&url).await.expect("the database");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(db.engine);
    sqlx::raw_sql(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
         applied_at BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("the earlier migrator's table");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("migrations")
        .map(|e| e.expect("a file").file_name().to_string_lossy().trim_end_matches(".sql").to_owned())
        .filter(|name| name.as_str() < "0008")
        .collect();
    names.sort();
    assert_eq!(names.len(), 7);
    for (i, name) in names.iter().enumerate() {
        let text = std::fs::read_to_string(dir.join(format!("{name}.sql"))).expect("a migration");
        sqlx::raw_sql(&text).execute(&pool).await.expect("applied");
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, 0)")
            .bind(i as i64 + 1)
            .bind(name)
            .bind(kyc_gateway::digest::sha256_hex(text.as_bytes()))
            .execute(&pool)
            .await
            .expect("recorded");
    }
    // Records in the older layout: every kind of id, subjects in and out of order, fields with and without subjects.
    let ids = ["b76ab44d-b71e-4d19-b6f9-f6e88cd73946", "0123456789abcdef0123456789abcdef", "req-7", "ABCDEF", ""];
    let entries: Vec<Entry> = (0..10)
        .map(|i| Entry {
            at: 1_767_225_600_000 + i,
            request_id: ids[i as usize % ids.len()].to_owned(),
            trace_id: (i % 3 != 0).then(|| ids[(i as usize + 1) % ids.len()].to_owned()),
            caller: Caller { kind: "client".into(), id: format!("c-{}", i % 2), issuer: "kyc-gateway-dev".into() },
            subjects: if i % 4 == 0 { Vec::new() } else { vec![format!("u-{i}"), "u-0".into(), format!("u-{i}")] },
            fields: vec![
                FieldAccess { path: "user.emails".into(), outcome: Outcome::Returned, subjects: Vec::new() },
                FieldAccess {
                    path: "user.phones".into(),
                    outcome: Outcome::Denied,
                    subjects: if i % 2 == 0 { vec!["u-0".into()] } else { Vec::new() },
                },
            ],
            operation_name: (i % 2 == 0).then(|| "Review".to_owned()),
            operation_type: "query".into(),
            document_hash: if i % 5 == 0 { String::new() } else { "ab".repeat(32) },
            purpose: (i % 3 == 0).then(|| format!("purpose {i}")),
            cause: (i == 4).then(|| "mutation x".to_owned()),
        })
        .collect();
    let mut prev = GENESIS.to_owned();
    let mut hashes = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let seq = i as i64 + 1;
        let hash = hash_of(seq, &prev, entry);
        sqlx::query(
            "INSERT INTO audit_records (seq, at, request_id, trace_id, caller_kind, caller, issuer, subjects, fields, \
             operation_name, operation_type, document_hash, purpose, cause, prev_hash, hash) VALUES ($1, $2, $3, $4, \
             $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(seq)
        .bind(entry.at)
        .bind(&entry.request_id)
        .bind(entry.trace_id.as_deref())
        .bind(&entry.caller.kind)
        .bind(&entry.caller.id)
        .bind(&entry.caller.issuer)
        .bind(serde_json::to_string(&entry.subjects).expect("json"))
        .bind(serde_json::to_string(&entry.fields).expect("json"))
        .bind(entry.operation_name.as_deref())
        .bind(&entry.operation_type)
        .bind(&entry.document_hash)
        .bind(entry.purpose.as_deref())
        .bind(entry.cause.as_deref())
        .bind(&prev)
        .bind(&hash)
        .execute(&pool)
        .await
        .expect("an older record");
        for subject in &entry.subjects {
            sqlx::query("INSERT INTO audit_subjects (user_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(subject)
                .bind(seq)
                .execute(&pool)
                .await
                .expect("a subject");
        }
        hashes.push(hash.clone());
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET seq = 10, hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(&pool)
        .await
        .expect("head");
    pool.close().await;

    let app = spawn_on(&db, |_| {}).await;
    let verified = kyc_gateway::audit::chain::verify(&app.store).await.expect("intact after the migration");
    assert_eq!((verified.first, verified.last), (1, 10), "{}", db.engine);
    let read =
        kyc_gateway::audit::read::events(&app.store, &Default::default(), 100).await.expect("the converted records");
    let older: Vec<_> = read.iter().filter(|r| r.seq <= 10).collect();
    assert_eq!(older.len(), 10);
    for record in older {
        let i = record.seq as usize - 1;
        assert_eq!(record.entry, entries[i], "{}: record {} reads back as written", db.engine, record.seq);
        assert_eq!(record.hash, hashes[i]);
        assert_eq!(record.prev_hash, if i == 0 { GENESIS.to_owned() } else { hashes[i - 1].clone() });
    }
    let of_user = kyc_gateway::audit::read::Filter { user_id: Some("u-0".into()), ..Default::default() };
    let about = kyc_gateway::audit::read::events(&app.store, &of_user, 100).await.expect("one person's records");
    assert_eq!(about.iter().filter(|r| r.seq <= 10).count(), 7, "{}", db.engine);
    // Each dictionary row knows the last record using it (migration 0009), for retention to forget it after.
    for (sql, last) in [
        ("SELECT last_seq FROM audit_users WHERE user_id = 'u-1'", 2),
        ("SELECT last_seq FROM audit_users WHERE user_id = 'u-0'", 10),
        ("SELECT last_seq FROM audit_callers WHERE caller = 'c-0'", 9),
        ("SELECT last_seq FROM audit_operations WHERE name = 'Review' AND document_hash = ''", 1),
        ("SELECT last_seq FROM audit_operations WHERE name IS NULL AND document_hash = ''", 6),
        ("SELECT last_seq FROM audit_operations WHERE name = 'Review' AND document_hash <> ''", 9),
        ("SELECT last_seq FROM audit_operations WHERE name IS NULL AND document_hash <> ''", 10),
        ("SELECT MIN(last_seq) FROM audit_field_lists", 9),
    ] {
        let found: i64 = sqlx::query_scalar(sql).fetch_one(app.store.pool()).await.expect("a row");
        assert_eq!(found, last, "{}: {sql}", db.engine);
    }
    // New records chain on from the converted ones.
    query_for(&app, &user_token(SEED, "contact:read"), None, "{ me { emails { address } } }").await;
    assert!(kyc_gateway::audit::chain::verify(&app.store).await.expect("intact").last > 10);
    app.stop().await;
}
