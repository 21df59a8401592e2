//! No personal data anywhere but the answers: the whole sandbox population read through every query at full scopes,
//! with logging at its most verbose, leaves no personal value (and no token) in the logs or in the audit trail.

use std::collections::BTreeSet;
use std::time::Duration;

use kyc_gateway::auth::token::{mint_dev_token, Subject, DEFAULT_DEV_SECRET};
use kyc_gateway::secret::Secret;
use serde_json::{json, Value};

use crate::helpers::{mentions, sqlite_database, without_timestamps};

/// Every scope a caller can hold.
fn all_scopes() -> String {
    let mut scopes = vec![
        "uid:read".to_owned(),
        "contact:read".into(),
        "client.users:read".into(),
        "client.stats:read".into(),
        "kyc_application:read".into(),
        "review.internal:read".into(),
        "verification.wallet:read".into(),
    ];
    for item in kyc_gateway::domain::levels::LEVELS.iter().chain(kyc_gateway::domain::levels::ADD_ONS.iter()) {
        scopes.push(kyc_gateway::authz::verification_scope(item));
        scopes.push(kyc_gateway::authz::details_scope(item));
    }
    scopes.join(" ")
}

/// The keys under which answers hold personal data.
const PERSONAL: [&str; 10] = [
    "emails",
    "phones",
    "wallets",
    "details",
    "name",
    "params",
    "providerRepresentation",
    "clientComment",
    "reasons",
    "description",
];

/// Every text value under a personal key of `value`, long enough not to be a common word or code.
fn personal_values(value: &Value, under_personal: bool, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if under_personal && s.len() >= 6 => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| personal_values(v, under_personal, out)),
        Value::Object(fields) => {
            for (key, v) in fields {
                personal_values(v, under_personal || PERSONAL.contains(&key.as_str()), out);
            }
        }
        _ => {}
    }
}

#[test]
fn a_log_line_s_time_is_no_personal_value_but_a_logged_zip_code_is() {
    let line = r#"{"timestamp":"2026-12-07T16:12:34.160000Z","level":"DEBUG","fields":{"took_us":1600001}}"#;
    assert!(line.contains("160000"), "the check this replaces saw a leak here");
    assert!(!mentions(&without_timestamps(line), "160000"));
    let leak = r#"{"timestamp":"2026-12-07T16:12:34.5Z","fields":{"message":"zip 160000"}}"#;
    assert!(mentions(&without_timestamps(leak), "160000"));
    assert!(mentions(&without_timestamps(leak), "zip 160000") && mentions("a Jane Doe", "Jane Doe"));
}

#[tokio::test]
async fn no_personal_value_reaches_the_logs_or_the_audit_trail() {
    let db = sqlite_database();
    let dir = std::env::temp_dir().join(format!("kyc-gateway-privacy-{}", kyc_gateway::secret::random_token()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let (log, addr_file) = (dir.join("gateway.log"), dir.join("addr"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0", "--addr-file"])
        .arg(&addr_file)
        .env("RUST_LOG", "trace")
        .env("KYC_GATEWAY_DATABASE_URL", &db.url)
        .env("KYC_GATEWAY_SANDBOX_USERS", "60")
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(dir.join("gateway.err")).expect("log"))
        .spawn()
        .expect("the gateway starts");
    let addr = kyc_gateway::cli::wait_for_addr_file(&addr_file, Duration::from_secs(60)).expect("it listens");
    let url = format!("http://{addr}/graphql");
    let http = reqwest::Client::new();
    let token =
        mint_dev_token(&Secret::new(DEFAULT_DEV_SECRET), &Subject::Client("privacy".into()), &all_scopes(), 600);
    let ask = |query: String| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let answer = http
                .post(url)
                .bearer_auth(token)
                .header("X-Access-Purpose", "privacy test")
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("answer");
            answer.json::<Value>().await.expect("json")
        }
    };

    let details = ask("{ __type(name: \"VerificationDetails\") { fields { name } } }".into()).await;
    let detail_fields: Vec<String> = details["data"]["__type"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect();
    let stats = ask("{ verificationStats { users(first: 500) { edges { node { userId } } } } }".into()).await;
    let mut users: Vec<String> = stats["data"]["verificationStats"]["users"]["edges"]
        .as_array()
        .expect("users")
        .iter()
        .map(|e| e["node"]["userId"].as_str().expect("id").to_owned())
        .collect();
    users.extend(kyc_gateway::sandbox::ident::population::SEED_USERS.iter().map(|u| u.to_string()));
    assert!(users.len() > 50, "the population: {}", users.len());

    let mut values = BTreeSet::new();
    let selection = format!(
        "id emails {{ address }} phones {{ number }} wallets {{ address currency }} \
         verificationCases {{ level state details {{ {} }} review {{ clientComment moderationComment rejectLabels {{ code }} }} reasons }} \
         kycApplications {{ name params providerRepresentation description }}",
        detail_fields.join(" ")
    );
    for chunk in users.chunks(10) {
        let ids: Vec<String> = chunk.iter().map(|u| format!("\"{u}\"")).collect();
        let answer = ask(format!("{{ users(ids: [{}]) {{ {selection} }} }}", ids.join(", "))).await;
        assert!(answer["data"]["users"].is_array(), "{answer:#}");
        personal_values(&answer["data"], false, &mut values);
    }
    let applications =
        ask("{ kycApplications(first: 100) { edges { node { name params providerRepresentation } } } }".into()).await;
    personal_values(&applications["data"], false, &mut values);
    assert!(values.len() > 200, "the answers held personal data: {}", values.len());

    let _ = child.kill();
    let _ = child.wait();
    let logs =
        std::fs::read_to_string(&log).expect("logs") + &std::fs::read_to_string(dir.join("gateway.err")).expect("logs");
    assert!(logs.len() > 10_000 && logs.contains("TRACE"), "the most verbose logs were written ({} bytes)", logs.len());

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("the database");
    // Every text of the trail: the records' own, and the dictionaries' they refer to (migrations/*/0008_lean_audit.sql).
    let mut rows: Vec<String> = sqlx::query_scalar(
        "SELECT c.kind || c.caller || c.issuer || f.fields || COALESCE(o.name, '') || o.operation_type || \
         o.document_hash || r.subjects || COALESCE(r.purpose, '') || COALESCE(r.cause, '') FROM audit_records r \
         JOIN audit_callers c ON c.id = r.caller JOIN audit_operations o ON o.id = r.operation \
         JOIN audit_field_lists f ON f.id = r.fields",
    )
    .fetch_all(&pool)
    .await
    .expect("records");
    let users: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM audit_users").fetch_all(&pool).await.expect("the trail's users");
    pool.close().await;
    assert!(rows.len() >= 7, "the reads were recorded: {}", rows.len());
    rows.extend(users);
    let trail = rows.join("\n");

    let logs = without_timestamps(&logs);
    let leaked: Vec<&String> = values.iter().filter(|v| mentions(&logs, v)).collect();
    assert!(leaked.is_empty(), "personal values in the logs: {:?}", &leaked[..leaked.len().min(10)]);
    let recorded: Vec<&String> = values.iter().filter(|v| mentions(&trail, v)).collect();
    assert!(recorded.is_empty(), "personal values in the audit trail: {:?}", &recorded[..recorded.len().min(10)]);
    assert!(!logs.contains(&token), "the caller's token is in the logs");
    let _ = std::fs::remove_dir_all(&dir);
}
