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
/// The migrations of this version, by name, in order (the files of `migrations/sqlite`).
fn migration_names() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join("sqlite");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the migrations")
        .filter_map(|entry| entry.expect("an entry").file_name().to_str()?.strip_suffix(".sql").map(str::to_owned))
        .collect();
    names.sort();
    names
}

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
    assert!(ok && out.starts_with(&format!("applied {} migrations", migration_names().len())), "{out}{err}");
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

/// The message of the error a command logged (JSON logs, as a log pipeline reads them).
fn logged_error(stderr: &str) -> String {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["level"] == "ERROR")
        .and_then(|line| line["fields"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no error logged: {stderr}"))
}

#[test]
fn a_database_that_cannot_be_reached_is_named_with_the_cause_once_and_no_password() {
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let url = format!("postgres://kyc:hunter2-secret@127.0.0.1:{port}/kyc_ledger");
    let output = bin()
        .arg("migrate")
        .env("KYC_GATEWAY_DATABASE_URL", &url)
        .env("KYC_GATEWAY_DATABASE_ACQUIRE_TIMEOUT_MS", "300")
        .env("KYC_GATEWAY_LOG_FORMAT", "json")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let error = logged_error(&String::from_utf8_lossy(&output.stderr));
    assert!(error.contains(&format!("127.0.0.1:{port}")) && error.contains("kyc_ledger"), "the target: {error}");
    assert_eq!(error.matches("connection refused").count(), 1, "the cause, once: {error}");
    assert!(!error.contains("hunter2-secret") && !error.contains("timed out"), "{error}");

    let output = bin()
        .arg("migrate")
        .env("KYC_GATEWAY_DATABASE_URL", "sqlite:///nonexistent-dir/x.db")
        .env("KYC_GATEWAY_LOG_FORMAT", "json")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let error = logged_error(&String::from_utf8_lossy(&output.stderr));
    assert!(error.contains("/nonexistent-dir/x.db"), "the target: {error}");
    assert_eq!(error.matches("the directory /nonexistent-dir does not exist").count(), 1, "the cause, once: {error}");
    assert!(error.matches("unable to open database file").count() <= 1, "{error}");
}

#[test]
fn a_host_name_given_to_listen_gets_a_hint_to_use_an_ip_address() {
    let output = bin().args(["serve", "--listen", "localhost:8081"]).output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("use an IP address such as 127.0.0.1:8081 or 0.0.0.0:8081"), "{stderr}");
}

#[test]
fn a_port_in_use_names_the_settings_that_choose_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = bin().args(["serve", "--listen", &addr]).env("KYC_GATEWAY_LOG_FORMAT", "json").output().expect("runs");
    assert!(!output.status.success());
    let error = logged_error(&String::from_utf8_lossy(&output.stderr));
    assert!(error.contains(&addr) && error.contains("in use"), "{error}");
    assert!(error.contains("--listen") && error.contains("KYC_GATEWAY_LISTEN"), "{error}");
}

#[test]
fn a_bad_directory_file_is_explained_by_entry_and_field_without_its_values() {
    let db = crate::helpers::sqlite_database();
    let file = std::env::temp_dir().join(format!("kyc-gateway-bad-{}.json", kyc_gateway::secret::random_token()));
    let path = file.display().to_string();
    let cases = [
        (r#"[{"user_id": "u-1"}, {"user_id": 987654321}]"#, "entry 2", "`user_id` must be a string"),
        (
            r#"[{"user_id": "u-1", "fractal": {"uid": "uid-of-a-person", "refresh_token": 987654321}}]"#,
            "entry 1",
            "`fractal.refresh_token` must be a non-empty string",
        ),
        (r#"[{"user_id": "u-1", "emial": "someone@example.com"}]"#, "entry 1", "a field the file format does not have"),
        (r#"[{"sumsub_applicant_id": "applicant-of-a-person"}]"#, "entry 1", "`user_id` is missing"),
        (r#"[{"user_id": "u-1",}]"#, "line 1", "not JSON: trailing comma"),
        (r#"{"user_id": "someone@example.com"}"#, "", "the file must hold a JSON list of entries"),
    ];
    for (text, place, what) in cases {
        std::fs::write(&file, text).expect("written");
        let (ok, _, err) = run_keyed(&["directory", "import", &path], &db.url);
        assert!(!ok, "{text}");
        assert!(err.contains(&path) && err.contains(place) && err.contains(what), "{text}: {err}");
        for value in ["987654321", "uid-of-a-person", "emial", "someone@example.com", "applicant-of-a-person"] {
            assert!(!err.contains(value), "{value} leaked: {err}");
        }
    }
    let _ = std::fs::remove_file(&file);
}

#[test]
fn migrate_reports_the_migrations_it_applied_and_up_to_date_only_when_there_were_none() {
    let db = crate::helpers::sqlite_database();
    let (ok, out, err) = run(&["migrate"], &db.url);
    assert!(ok, "{err}");
    let names = migration_names();
    assert_eq!(out.trim(), format!("applied {} migrations: {}", names.len(), names.join(", ")));
    assert_eq!(names[..4], ["0001_directory", "0002_webhooks", "0003_audit", "0004_provider_references"]);
    let (ok, out, err) = run(&["migrate"], &db.url);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "the database is up to date: no migration to apply");
}

#[test]
fn the_sandbox_command_refuses_a_port_for_a_provider_it_does_not_have() {
    let output = bin().args(["sandbox", "--port", "fractl=9001"]).output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("fractl") && stderr.contains("the names are fractal, sumsub"), "{stderr}");
}

/// The env file holds the providers' secrets and the directory file users' refresh tokens: only their owner reads them.
#[test]
fn the_sandbox_command_writes_its_files_for_their_owner_alone() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("kyc-sandbox-files-{}", kyc_gateway::secret::random_token()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let (env_file, directory_file) = (dir.join("sandbox.env"), dir.join("directory.json"));
    // An older file of the same name, readable by anyone, is replaced, not reused.
    std::fs::write(&env_file, "old").expect("written");
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut child = bin()
        .arg("sandbox")
        .arg("--env-file")
        .arg(&env_file)
        .arg("--directory-file")
        .arg(&directory_file)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("piped");
    let header = std::io::BufReader::new(stdout).lines().next().expect("a line").expect("text");
    let modes: Vec<u32> = [&env_file, &directory_file]
        .iter()
        .map(|f| std::fs::metadata(f).expect("written").permissions().mode() & 0o777)
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(header.starts_with("# The sandbox providers' variables"), "{header}");
    assert_eq!(modes, [0o600, 0o600]);
}
