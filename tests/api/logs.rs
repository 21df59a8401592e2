//! Logs carry no personal data and no secrets, even at the most verbose level.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kyc_gateway::sandbox::fractal::Population;
use kyc_gateway::sandbox::SandboxSettings;
use serde_json::Value;

use crate::helpers::{client_token, mentions, user_token, without_timestamps, ALL_ITEMS, SEED};

/// Generated users besides the seed person, in the server under test and in the copy of its population here.
pub const USERS: usize = 20;

/// Every string inside a JSON value.
pub fn strings(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The personal values the sandbox holds about `users`: emails, phone numbers, wallet addresses, every details value
/// (names, dates of birth, document numbers, addresses), Sumsub's applicant data, ident's names and params. Words too
/// short or too common to identify anyone (country codes, document types, `true`) are left out.
pub fn personal_values(users: &[String]) -> BTreeSet<String> {
    let settings = SandboxSettings { users: USERS, ..SandboxSettings::default() };
    let population = Population::generate(settings.users, settings.seed);
    let all_users: Vec<String> = population.users.iter().map(|u| u.uid.clone()).collect();
    let applicants = kyc_gateway::sandbox::sumsub::population::generate(&all_users, settings.seed);
    let records = kyc_gateway::sandbox::ident::population::generate(&all_users, settings.seed);
    let mut out = BTreeSet::new();
    for user in population.users.iter().filter(|u| users.contains(&u.uid)) {
        out.extend(user.emails.iter().map(|e| e.address.clone()));
        out.extend(user.phones.iter().map(|p| p.number.clone()));
        out.extend(user.wallets.iter().map(|w| w.address.clone()));
        for details in user.cases.iter().filter_map(|c| c.wire.details.as_ref()) {
            strings(&Value::Object(details.clone()), &mut out);
        }
    }
    for applicant in applicants.iter().filter(|a| a.external_user_id.as_ref().is_some_and(|u| users.contains(u))) {
        let info = serde_json::to_value(&applicant.info).expect("plain data");
        strings(&info, &mut out);
    }
    for record in records.iter().filter(|r| r.user_id.as_ref().is_some_and(|u| users.contains(u))) {
        out.extend(record.name.clone());
        if let Some(params) = &record.params {
            strings(params, &mut out);
        }
    }
    let common = ["passport", "national_id", "drivers_license", "PASSPORT", "ID_CARD", "DRIVERS", "id-verification"];
    out.retain(|v| v.len() >= 5 && !common.contains(&v.as_str()));
    out
}

#[tokio::test]
async fn trace_logs_hold_no_personal_data_tokens_or_secrets() {
    let addr_file = std::env::temp_dir().join(format!("kyc-gateway-logs-{}", kyc_gateway::secret::random_token()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_kyc-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0", "--addr-file"])
        .arg(&addr_file)
        .env("RUST_LOG", "trace")
        .env("KYC_GATEWAY_SANDBOX_USERS", USERS.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = kyc_gateway::cli::wait_for_addr_file(&addr_file, Duration::from_secs(30)).expect("the server starts");
    let url = format!("http://{addr}");

    // The seed person reads themselves; a staff client reads three more users in full.
    let population = Population::generate(USERS, SandboxSettings::default().seed);
    let others: Vec<String> = population.users.iter().skip(1).take(3).map(|u| u.uid.clone()).collect();
    let details = "details { fullName dateOfBirth identificationDocumentNumber residentialAddress placeOfBirth \
        socialSecurityNumber }";
    let user = user_token(
        SEED,
        &format!(
            "uid:read contact:read verification.wallet:read kyc_application:read {ALL_ITEMS} \
            verification.plus.details:read verification.basic.details:read verification.selfie.details:read"
        ),
    );
    let scopes = format!(
        "client.stats:read client.users:read uid:read contact:read verification.wallet:read kyc_application:read \
         review.internal:read {ALL_ITEMS} verification.plus.details:read verification.basic.details:read \
         verification.ssn.details:read"
    );
    let client = client_token(&scopes);
    let me = format!(
        "{{ me {{ id emails {{ address }} phones {{ number }} wallets {{ address }} \
         verificationCases {{ reasons review {{ clientComment }} {details} }} kycApplications {{ name params }} }} }}"
    );
    let ids: Vec<String> = others.iter().map(|u| format!("\"{u}\"")).collect();
    let staff = format!(
        "{{ users(ids: [{}]) {{ id emails {{ address }} phones {{ number }} wallets {{ address }} \
         verificationCases {{ {details} }} kycApplications {{ name params }} }} \
         verificationStats {{ total {{ approved }} users(first: 5) {{ edges {{ node {{ userId }} }} }} }} }}",
        ids.join(", ")
    );
    let http = reqwest::Client::new();
    let queries = [(user.as_str(), me.as_str()), (client.as_str(), staff.as_str()), ("not-a-token", "{ me { id } }")];
    for (token, query) in queries {
        let response = http
            .post(format!("{url}/graphql"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .expect("answer");
        let body = response.text().await.expect("body");
        if token == user {
            assert!(body.contains("David Muller"), "the query itself worked: {body}");
        }
    }
    child.kill().expect("stops");
    let _ = child.wait();
    let _ = std::fs::remove_file(&addr_file);
    // Every line: the reader ends at the end of the stopped process's stderr.
    let log = rx.iter().collect::<Vec<_>>().join("\n");
    assert!(log.lines().count() > 10, "trace logging is on: {log}");

    let mut queried = others.clone();
    queried.push(SEED.to_owned());
    let personal = personal_values(&queried);
    assert!(personal.contains("David Muller") && personal.contains("1967-08-16") && personal.contains("+44000000000"));
    assert!(personal.len() > 40, "the check covers every kind of value: {personal:?}");
    let log = without_timestamps(&log);
    for value in &personal {
        assert!(!mentions(&log, value), "the log holds the personal value {value:?}");
    }
    for secret in
        [user.as_str(), client.as_str(), "not-a-token", "client_secret=", "refresh_token=", "access_token", "Bearer ey"]
    {
        assert!(!log.contains(secret), "the log holds {secret:?}");
    }
}
