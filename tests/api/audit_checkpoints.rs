//! Signed audit checkpoints: the gateway signs the chain's head with a key outside the database, and
//! `kyc-gateway audit verify --key` (the real binary) catches a trail rewritten consistently by someone without it,
//! a checkpoint signed by another key, and stays quiet on a live trail with appends and retention running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kyc_gateway::audit::chain::{hash_of, record_of, select};
use kyc_gateway::audit::checkpoint::{Checkpoint, PublicKeys, SigningKey};
use kyc_gateway::audit::layout::link_of;
use kyc_gateway::Config;
use serde_json::Value;

use crate::helpers::{on_both_engines, spawn_on, sqlite_database, user_token, TestApp, TestDatabase, SEED};

/// A new key pair from `kyc-gateway audit keygen --id ID`: the signing key, and the `ID=PUBLIC` value of `--key`.
fn keygen(id: &str) -> (SigningKey, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["audit", "keygen", "--id", id])
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let value = |prefix: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {text}"))
            .to_owned()
    };
    assert_eq!(value("KYC_GATEWAY_AUDIT_SIGNING_KEY_ID="), id);
    let key = SigningKey::from_seed_base64(id, &value("KYC_GATEWAY_AUDIT_SIGNING_KEY=")).expect("a signing key");
    let public = format!("{id}={}", value(&format!("{id}=")));
    assert_eq!(public, format!("{id}={}", key.public_base64()), "the printed public key is the key's");
    (key, public)
}

/// Signs checkpoints with `key` every `records` records (and hourly), appending them to `witness`.
fn signing(config: &mut Config, key: &SigningKey, records: u64, witness: Option<&Path>) {
    let checkpoints = &mut config.audit.checkpoints;
    checkpoints.key = Some(key.clone());
    checkpoints.every_records = records;
    checkpoints.every = Duration::from_secs(3600);
    checkpoints.witness = witness.map(Path::to_path_buf);
}

/// `kyc-gateway audit verify ARGS` on `db`: whether it passed, and what it printed.
fn verify(db: &TestDatabase, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["audit", "verify"])
        .args(args)
        .env("KYC_GATEWAY_DATABASE_URL", &db.url)
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn witness_file() -> PathBuf {
    std::env::temp_dir().join(format!("kyc-gateway-witness-{}.jsonl", kyc_gateway::secret::random_token()))
}

async fn read_me(app: &TestApp) {
    app.query(&user_token(SEED, "contact:read"), "{ me { emails { address } } }").await.ok();
}

async fn pool(db: &TestDatabase) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&db.url).await.expect("the database")
}

async fn stored_checkpoints(db: &TestDatabase) -> Vec<i64> {
    let pool = pool(db).await;
    let seqs = sqlx::query_scalar("SELECT seq FROM audit_signed_checkpoints ORDER BY seq")
        .fetch_all(&pool)
        .await
        .expect("checkpoints");
    pool.close().await;
    seqs
}

/// What someone who can write the database but has no key does: edits record `seq`'s purpose, then recomputes every
/// hash from there on with the chain's public (unkeyed) algorithm and moves the head along.
async fn rewrite_consistently(db: &TestDatabase, seq: i64) {
    let pool = pool(db).await;
    let engine =
        if db.engine == "sqlite" { kyc_gateway::store::Engine::Sqlite } else { kyc_gateway::store::Engine::Postgres };
    let rows = sqlx::query(&format!("{} ORDER BY r.seq", select(engine))).fetch_all(&pool).await.expect("records");
    let mut prev: Option<String> = None;
    for row in &rows {
        let mut record = record_of(row).expect("a record");
        if record.seq < seq {
            prev = Some(record.hash);
            continue;
        }
        if record.seq == seq {
            record.entry.purpose = Some("nothing to see here".into());
        }
        record.prev_hash = prev.take().unwrap_or(record.prev_hash);
        record.hash = hash_of(record.seq, &record.prev_hash, &record.entry);
        // The stored layout (migrations/*/0008_lean_audit.sql): the hash as bytes, and the link to the one before.
        sqlx::query("UPDATE audit_records SET purpose = $1, hash = $2, link = $3 WHERE seq = $4")
            .bind(record.entry.purpose.as_deref())
            .bind(hex::decode(&record.hash).expect("hex"))
            .bind(link_of(&record.prev_hash))
            .bind(record.seq)
            .execute(&pool)
            .await
            .expect("rewritten");
        prev = Some(record.hash);
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(prev.expect("a record"))
        .execute(&pool)
        .await
        .expect("head");
    pool.close().await;
}

/// A SQLite trail of 6 reads, signed with `key` every 2 records (checkpoints at records 2, 4 and 6).
async fn signed_trail(key: &SigningKey, witness: Option<&Path>) -> TestDatabase {
    let db = sqlite_database();
    let app = spawn_on(&db, |c| signing(c, key, 2, witness)).await;
    for _ in 0..6 {
        read_me(&app).await;
    }
    app.stop().await;
    assert_eq!(stored_checkpoints(&db).await, [2, 4, 6]);
    db
}

#[tokio::test]
async fn a_trail_rewritten_consistently_without_the_key_fails_verify_with_the_key_at_the_first_bad_checkpoint() {
    let (key, public) = keygen("k1");
    let witness = witness_file();
    let db = signed_trail(&key, Some(&witness)).await;
    let (ok, text) = verify(&db, &["--key", &public]);
    assert!(ok && text.contains("intact: 6 records, 1 to 6; 3 signed checkpoints verified (keys k1)"), "{text}");

    rewrite_consistently(&db, 3).await;
    // The unkeyed chain alone cannot tell: the rewrite is consistent.
    let (ok, text) = verify(&db, &[]);
    assert!(ok && text.contains("intact: 6 records"), "the unkeyed verify passes on the rewritten trail: {text}");
    // The checkpoint at record 2 still holds; the one at record 4 is the first the rewrite broke.
    let (ok, text) = verify(&db, &["--key", &public]);
    assert!(!ok && text.contains("the signed checkpoint at record 4 (key id k1) does not match the records"), "{text}");

    // Deleting the stored checkpoints too leaves the records unsigned (said so), and the witness still has them.
    let pool = pool(&db).await;
    sqlx::query("DELETE FROM audit_signed_checkpoints").execute(&pool).await.expect("deleted");
    pool.close().await;
    let (ok, text) = verify(&db, &["--key", &public]);
    assert!(!ok && text.contains("no signed checkpoint covers any of its 6 records"), "{text}");
    let (ok, text) = verify(&db, &["--key", &public, "--allow-unsigned"]);
    assert!(ok && text.contains("records 1 to 6 are not covered by a signed checkpoint yet"), "{text}");
    let witness_text = std::fs::read_to_string(&witness).expect("the witness file");
    assert_eq!(witness_text.lines().count(), 3, "{witness_text}");
    let (ok, text) = verify(&db, &["--key", &public, "--witness", witness.to_str().expect("a path")]);
    assert!(!ok && text.contains("the signed checkpoint at record 4 (key id k1) does not match the records"), "{text}");
    let _ = std::fs::remove_file(&witness);
}

async fn head(db: &TestDatabase) -> i64 {
    let pool = pool(db).await;
    let seq = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1").fetch_one(&pool).await.expect("head");
    pool.close().await;
    seq
}

#[tokio::test]
async fn a_running_gateway_refuses_to_sign_a_trail_rewritten_after_its_checkpoints_were_deleted() {
    let (key, public) = keygen("k1");
    let db = sqlite_database();
    let app = spawn_on(&db, |c| signing(c, &key, 2, None)).await;
    for _ in 0..2 {
        read_me(&app).await;
    }
    crate::helpers::eventually("the first two records are signed", || async { stored_checkpoints(&db).await == [2] })
        .await;
    // Someone with write access to the database: deletes the checkpoints, rewrites records 1 and 2 and the head.
    let pool = pool(&db).await;
    sqlx::query("DELETE FROM audit_signed_checkpoints").execute(&pool).await.expect("deleted");
    pool.close().await;
    rewrite_consistently(&db, 1).await;
    // Two more records: the count triggers a checkpoint, of the head that now follows the forged records.
    for _ in 0..2 {
        read_me(&app).await;
    }
    crate::helpers::eventually("the next records are written", || async { head(&db).await >= 4 }).await;
    // Stopping signs once more: every signing this gateway would do is done.
    app.stop().await;
    assert_eq!(stored_checkpoints(&db).await, Vec::<i64>::new(), "the gateway signed the forged records");
    let (ok, text) = verify(&db, &["--key", &public]);
    assert!(!ok && text.contains("no signed checkpoint covers any of its"), "{text}");
}

#[tokio::test]
async fn verify_with_a_key_fails_on_records_no_checkpoint_covers_unless_unsigned_records_are_allowed() {
    let (_, public) = keygen("k1");
    let db = sqlite_database();
    let app = spawn_on(&db, |_| {}).await;
    for _ in 0..3 {
        read_me(&app).await;
    }
    app.stop().await;
    // A sandbox gateway signs with a key of its own: its checkpoints go, as if the trail were written unsigned.
    let pool = pool(&db).await;
    sqlx::query("DELETE FROM audit_signed_checkpoints").execute(&pool).await.expect("deleted");
    pool.close().await;
    let (ok, text) = verify(&db, &["--key", &public]);
    assert!(
        !ok && text.contains("no signed checkpoint covers any of its 3 records (1 to 3)")
            && text.contains("--allow-unsigned"),
        "{text}"
    );
    let (ok, text) = verify(&db, &["--key", &public, "--allow-unsigned"]);
    assert!(ok && text.contains("records 1 to 3 are not covered by a signed checkpoint yet"), "{text}");
    // No records: nothing to cover.
    let empty = sqlite_database();
    spawn_on(&empty, |_| {}).await.stop().await;
    let (ok, text) = verify(&empty, &["--key", &public]);
    assert!(ok && text.contains("it holds no records"), "{text}");
}

#[tokio::test]
async fn a_checkpoint_signed_by_another_key_or_an_unknown_key_id_fails_verification() {
    let (key, public) = keygen("k1");
    let db = signed_trail(&key, None).await;
    // Another key under the same id: the signatures are not its.
    let (_, impostor) = keygen("k1");
    let (ok, text) = verify(&db, &["--key", &impostor]);
    assert!(
        !ok && text.contains("the signed checkpoint at record 2 (key id k1) has a signature that does not verify"),
        "{text}"
    );
    // The right key under another id: k1 is not named.
    let renamed = public.replacen("k1=", "k2=", 1);
    let (ok, text) = verify(&db, &["--key", &renamed]);
    assert!(!ok && text.contains("is signed with key id k1, which no --key names"), "{text}");
    // A checkpoint someone without the key added, over the real head: its signature is not k1's.
    let (forger, _) = keygen("k1");
    let pool = pool(&db).await;
    // Stored as its 32 bytes (migrations/*/0008_lean_audit.sql).
    let head: Vec<u8> =
        sqlx::query_scalar("SELECT hash FROM audit_records WHERE seq = 5").fetch_one(&pool).await.expect("hash");
    let head = hex::encode(head);
    let forged = forger.sign(5, &head, 1);
    sqlx::query("INSERT INTO audit_signed_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)")
        .bind(forged.seq)
        .bind(&forged.hash)
        .bind(forged.at)
        .bind(&forged.key_id)
        .bind(&forged.signature)
        .execute(&pool)
        .await
        .expect("inserted");
    pool.close().await;
    let (ok, text) = verify(&db, &["--key", &public]);
    assert!(
        !ok && text.contains("the signed checkpoint at record 5 (key id k1) has a signature that does not verify"),
        "{text}"
    );
}

#[tokio::test]
async fn after_a_key_rotation_verify_takes_the_old_and_the_new_public_keys_from_a_keys_file() {
    let (old, old_public) = keygen("2026-01");
    let (new, new_public) = keygen("2026-02");
    let db = signed_trail(&old, None).await;
    let app = spawn_on(&db, |c| signing(c, &new, 2, None)).await;
    for _ in 0..2 {
        read_me(&app).await;
    }
    app.stop().await;
    assert_eq!(stored_checkpoints(&db).await, [2, 4, 6, 8]);
    let (ok, text) = verify(&db, &["--key", &new_public]);
    assert!(!ok && text.contains("is signed with key id 2026-01, which no --key names"), "{text}");
    let keys = witness_file().with_extension("keys");
    std::fs::write(&keys, format!("# kept after the rotation\n{old_public}\n\n{new_public}\n")).expect("written");
    let (ok, text) = verify(&db, &["--keys-file", keys.to_str().expect("a path")]);
    assert!(ok && text.contains("4 signed checkpoints verified (keys 2026-01, 2026-02)"), "{text}");
    let _ = std::fs::remove_file(&keys);
}

#[tokio::test]
async fn the_export_carries_each_checkpoint_after_its_record_and_verify_reads_it_as_a_witness() {
    let (key, public) = keygen("k1");
    let db = signed_trail(&key, None).await;
    let output = Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["audit", "export", "--since", "2020-01-01T00:00:00Z"])
        .env("KYC_GATEWAY_DATABASE_URL", &db.url)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let export = String::from_utf8(output.stdout).expect("utf-8");
    let kinds: Vec<String> = export
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).expect("a JSON line");
            match line.get("checkpoint") {
                Some(c) => format!("checkpoint {}", c["seq"]),
                None => format!("record {}", line["seq"]),
            }
        })
        .collect();
    let expected = [
        "record 1",
        "record 2",
        "checkpoint 2",
        "record 3",
        "record 4",
        "checkpoint 4",
        "record 5",
        "record 6",
        "checkpoint 6",
    ];
    assert_eq!(kinds, expected);
    let exported = witness_file();
    std::fs::write(&exported, &export).expect("written");
    let pool = pool(&db).await;
    sqlx::query("DELETE FROM audit_signed_checkpoints").execute(&pool).await.expect("deleted");
    pool.close().await;
    rewrite_consistently(&db, 5).await;
    let (ok, text) = verify(&db, &["--key", &public, "--witness", exported.to_str().expect("a path")]);
    assert!(!ok && text.contains("the signed checkpoint at record 6 (key id k1) does not match the records"), "{text}");
    let _ = std::fs::remove_file(&exported);
}

on_both_engines!(audit_verify_with_the_key_passes_on_a_live_trail_while_records_are_appended_and_retention_runs);

async fn audit_verify_with_the_key_passes_on_a_live_trail_while_records_are_appended_and_retention_runs(
    db: TestDatabase,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (key, public) = keygen("live");
    let witness = witness_file();
    let app = spawn_on(&db, |c| {
        signing(c, &key, 5, Some(&witness));
        c.audit.checkpoints.every = Duration::from_millis(50);
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, url, stop) = (app.http.clone(), app.url("/graphql"), stop.clone());
        let token = user_token(SEED, "contact:read");
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let body = serde_json::json!({ "query": "{ me { emails { address } } }" });
                let _ = http.post(&url).bearer_auth(&token).json(&body).send().await;
            }
        }));
    }
    // Retention removing what is older than a few milliseconds, over and over.
    let (store, retention_stop) = (app.store.clone(), stop.clone());
    load.push(tokio::spawn(async move {
        while !retention_stop.load(Ordering::Relaxed) {
            let _ = kyc_gateway::audit::chain::purge(
                &store,
                kyc_gateway::audit::chain::Cutoff::Before(kyc_gateway::clock::unix_millis() - 5),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }));
    // Retention removes the stored checkpoints before its start: the witness keeps them all.
    crate::helpers::eventually("checkpoints are signed, and retention removed some", || async {
        let pruned: Option<i64> = sqlx::query_scalar("SELECT seq FROM audit_checkpoint")
            .fetch_optional(app.store.pool())
            .await
            .expect("the retained start");
        let signed = std::fs::read_to_string(&witness).unwrap_or_default().lines().count();
        pruned.is_some() && signed >= 3
    })
    .await;
    let mut keys = PublicKeys::default();
    keys.add(&public).expect("the key");
    let (mut failures, mut checked, mut skipped) = (Vec::new(), 0, 0);
    let runs = 30;
    for _ in 0..runs {
        let witnessed: Vec<Checkpoint> = std::fs::read_to_string(&witness)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| Checkpoint::from_line(line)?.ok())
            .collect();
        match kyc_gateway::audit::chain::verify_signed(&app.store, &keys, &witnessed).await {
            Ok(v) => {
                checked += v.checked;
                skipped += v.skipped;
            }
            Err(broken) => failures.push(broken.to_string()),
        }
    }
    // The binary too, beside the running gateway (retention keeps only a few milliseconds of records here: the
    // retained ones may all be younger than the newest checkpoint).
    let witness_path = witness.to_str().expect("a path");
    let (ok, text) = verify(&db, &["--key", &public, "--witness", witness_path, "--allow-unsigned"]);
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {runs} signed verifications of a live, untouched trail failed, e.g. {:?}",
        db.engine,
        failures.len(),
        failures.first()
    );
    assert!(ok && text.contains("signed checkpoints verified"), "{}: {text}", db.engine);
    assert!(checked > 0 && skipped > 0, "{}: {checked} checkpoints checked, {skipped} skipped", db.engine);
    app.stop().await;
    let (ok, text) = verify(&db, &["--key", &public, "--witness", witness.to_str().expect("a path")]);
    assert!(ok && !text.contains("not covered"), "{}: the last records are signed at shutdown: {text}", db.engine);
    let _ = std::fs::remove_file(&witness);
}
