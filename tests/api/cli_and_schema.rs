//! The command line and the checked-in schema.

use std::process::Command;

use crate::helpers::{spawn, SEED};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
}

#[test]
fn the_checked_in_schema_is_the_sdl_the_server_prints() {
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql");
    let printed = kyc_gateway::graphql::sdl();
    assert!(checked_in == printed, "schema.graphql is stale: run `cargo run -q -- sdl > schema.graphql`");
    let output = bin().arg("sdl").output().expect("the binary runs");
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).expect("utf-8"), printed);
}

#[test]
fn the_sdl_marks_static_scope_requirements() {
    let sdl = kyc_gateway::graphql::sdl();
    assert!(sdl.contains(r#"verificationStats: VerificationStats @requiresScopes(scopes: [["client.stats:read"]])"#));
    assert!(sdl.contains(r#"emails: [Email!] @requiresScopes(scopes: [["contact:read"]])"#));
    assert!(sdl.contains(r#"id: ID @requiresScopes(scopes: [["uid:read"]])"#));
}

#[tokio::test]
async fn the_token_command_mints_tokens_the_sandbox_server_accepts() {
    let app = spawn().await;
    let user = bin().args(["token", "--sub", SEED, "--scope", "uid:read contact:read"]).output().expect("runs");
    assert!(user.status.success());
    let token = String::from_utf8(user.stdout).expect("utf-8").trim().to_owned();
    let answer = app.query(&token, "{ me { id } }").await.ok();
    assert_eq!(answer.data("me.id"), SEED);

    let client =
        bin().args(["token", "--client", "mesh", "--scope", "client.users:read uid:read"]).output().expect("runs");
    let token = String::from_utf8(client.stdout).expect("utf-8").trim().to_owned();
    let answer = app.query(&token, &format!(r#"{{ user(id: "{SEED}") {{ id }} me {{ id }} }}"#)).await;
    assert_eq!(answer.data("user.id"), SEED);
    assert_eq!(answer.codes(), ["NOT_A_USER_TOKEN"], "a client token speaks for no user");
}

#[test]
fn the_token_command_needs_a_subject() {
    let output = bin().args(["token", "--scope", "uid:read"]).output().expect("runs");
    assert!(!output.status.success());
}

/// Runs the binary with a database of its own: (success, stdout, stderr).
fn run(args: &[&str], database: &str) -> (bool, String, String) {
    let output = bin().args(args).env("KYC_GATEWAY_DATABASE_URL", database).output().expect("the binary runs");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (output.status.success(), text(output.stdout), text(output.stderr))
}

/// [`run`] with the test key of the gateway (`helpers::test_encryption`).
fn run_keyed(args: &[&str], database: &str) -> (bool, String, String) {
    let output = bin()
        .args(args)
        .env("KYC_GATEWAY_DATABASE_URL", database)
        .env("KYC_GATEWAY_ENCRYPTION_KEY", crate::helpers::TEST_KEY)
        .output()
        .expect("the binary runs");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (output.status.success(), text(output.stdout), text(output.stderr))
}

#[tokio::test]
async fn migrate_and_directory_import_work_on_a_named_database_and_an_import_is_idempotent() {
    let db = crate::helpers::sqlite_database();
    let (ok, out, err) = run(&["migrate"], &db.url);
    assert!(ok && out.contains("up to date"), "{out}{err}");
    let file = std::env::temp_dir().join(format!("kyc-gateway-import-{}.json", kyc_gateway::secret::random_token()));
    let entries = serde_json::json!([
        { "user_id": "u-1", "fractal": { "uid": "f-1", "refresh_token": "first-refresh-token" } },
        { "user_id": "u-2", "sumsub_applicant_id": "applicant-2" }
    ]);
    std::fs::write(&file, entries.to_string()).expect("written");
    let path = file.display().to_string();
    // Without the gateway's key the import refuses: it would seal the tokens under a key anyone can derive.
    let (ok, _, err) = run(&["directory", "import", &path], &db.url);
    assert!(!ok && err.contains("KYC_GATEWAY_ENCRYPTION_KEY"), "{err}");
    let (ok, out, err) = run_keyed(&["directory", "import", &path], &db.url);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "imported 2 users; stored 1 new links");
    let (ok, out, _) = run_keyed(&["directory", "import", &path], &db.url);
    assert!(ok);
    assert_eq!(out.trim(), "imported 2 users; stored 0 new links", "the stored link is kept");
    // What the import stored is what a gateway on that database reads.
    let config = kyc_gateway::Config {
        database: Some(kyc_gateway::store::StoreSettings {
            url: kyc_gateway::secret::Secret::new(db.url.clone()),
            ..kyc_gateway::store::StoreSettings::memory()
        }),
        ..kyc_gateway::Config::default()
    };
    let (store, directory) =
        kyc_gateway::open_store(&config, &crate::helpers::test_encryption()).await.expect("opened");
    use kyc_gateway::directory::Directory;
    use kyc_gateway::domain::Provider;
    let link = directory.link(&crate::helpers::uid("u-1"), Provider::Fractal).await.expect("read").expect("linked");
    assert_eq!((link.subject.as_str(), link.tokens.refresh_token.expose()), ("f-1", "first-refresh-token"));
    let refs = directory.references(&crate::helpers::uid("u-2"), Provider::Sumsub).await.expect("read");
    assert_eq!(refs, ["applicant-2"]);
    store.close().await;
    let _ = std::fs::remove_file(&file);

    let (ok, _, err) = run_keyed(&["directory", "import", "/nonexistent/file.json"], &db.url);
    assert!(!ok && err.contains("cannot read directory file"), "{err}");
    let output = bin().arg("migrate").output().expect("runs");
    assert!(!output.status.success(), "migrate needs a named database");
}
