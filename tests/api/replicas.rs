//! Several production-mode replicas on one PostgreSQL, sharing one `kyc-gateway sandbox`, set up as the "Several
//! replicas" section of docs/operations.md shows: the real binaries, their variables read by a shell from the sandbox's
//! `--env-file`, spoken to over HTTP.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{postgres_database, ISSUER, ISSUER_SECRET};

const BINARY: &str = env!("CARGO_BIN_EXE_kyc-gateway");

/// A child process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kyc-gateway sandbox` on free ports, with its Fractal's access tokens living `token_ttl` seconds: the process, its
/// `--env-file` and its `--directory-file`.
fn start_sandbox(dir: &Path, token_ttl: u64) -> (Running, PathBuf, PathBuf) {
    let (env_file, directory_file) = (dir.join("sandbox.env"), dir.join("directory.json"));
    let mut child = Command::new(BINARY)
        .arg("sandbox")
        .arg("--env-file")
        .arg(&env_file)
        .arg("--directory-file")
        .arg(&directory_file)
        .env("KYC_GATEWAY_SANDBOX_TOKEN_TTL_SECS", token_ttl.to_string())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("kyc-gateway sandbox starts");
    let stdout = child.stdout.take().expect("piped");
    let running = Running(child);
    // It writes both files, then prints its header and the block: once the header is out, the files are whole.
    let mut lines = std::io::BufReader::new(stdout).lines().map(|l| l.expect("a line of its output"));
    let header = lines.next().expect("its header");
    assert!(header.starts_with("# The sandbox providers' variables"), "{header}");
    let written = std::fs::read_to_string(&env_file).expect("the env file");
    let printed: Vec<String> = lines.by_ref().take(written.lines().count()).collect();
    assert_eq!(written.lines().collect::<Vec<_>>(), printed, "the env file holds what it printed");
    (running, env_file, directory_file)
}

/// `kyc-gateway ARGS` with the sandbox's variables read by `set -a; . FILE` (as the docs say to), then `env`.
fn gateway(env_file: &Path, env: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(r#"set -a; . "$0"; set +a; exec "$@""#).arg(env_file).arg(BINARY).args(args);
    command.envs(env.iter().map(|(n, v)| (n, v))).env("RUST_LOG", "error");
    command
}

/// A production-mode replica serving on a free port, its `/metrics` on another (production mode serves them apart
/// from the API): the process, its base URL and its metrics' base URL.
fn start_replica(env_file: &Path, env: &[(&str, String)], dir: &Path, n: usize) -> (Running, String, String) {
    let addr_file = dir.join(format!("replica-{n}.addr"));
    let addr_arg = addr_file.display().to_string();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let mut env = env.to_vec();
    env.push(("KYC_GATEWAY_METRICS_LISTEN", metrics.to_string()));
    let child = gateway(env_file, &env, &["serve", "--listen", "127.0.0.1:0", "--addr-file", &addr_arg])
        .stdout(Stdio::null())
        .spawn()
        .expect("a replica starts");
    let running = Running(child);
    let addr = kyc_gateway::cli::wait_for_addr_file(&addr_file, Duration::from_secs(60)).expect("it listens");
    (running, format!("http://{addr}"), format!("http://{metrics}"))
}

#[tokio::test]
#[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
async fn two_production_replicas_on_one_postgresql_share_one_sandbox_and_serve_the_seed_persons_fractal_data_under_load(
) {
    let db = postgres_database().await;
    let dir = std::env::temp_dir().join(format!("kyc-replicas-{}", kyc_gateway::secret::random_token()));
    std::fs::create_dir_all(&dir).expect("a folder");
    // Fractal's access tokens renew every second: under load, the replicas rotate each user's refresh token again and
    // again, and must never both use one.
    let (_sandbox, env_file, directory_file) = start_sandbox(&dir, 2);
    let env = [
        ("KYC_GATEWAY_DATABASE_URL", db.url.clone()),
        ("KYC_GATEWAY_ENCRYPTION_KEY", kyc_gateway::secret::random_key_base64()),
        ("KYC_GATEWAY_JWT_ISSUER", ISSUER.to_owned()),
        ("KYC_GATEWAY_JWT_SECRET", ISSUER_SECRET.to_owned()),
        // Every query reaches the sandbox Fractal with the user's access token.
        ("KYC_GATEWAY_CACHE", "off".to_owned()),
    ];
    let directory_arg = directory_file.display().to_string();
    let imported = gateway(&env_file, &env, &["directory", "import", &directory_arg]).output().expect("import runs");
    let said = String::from_utf8_lossy(&imported.stdout).into_owned() + &String::from_utf8_lossy(&imported.stderr);
    assert!(imported.status.success() && said.contains("new links"), "{said}");

    let replicas = [start_replica(&env_file, &env, &dir, 0), start_replica(&env_file, &env, &dir, 1)];
    let http = reqwest::Client::new();
    for (_, url, _) in &replicas {
        let ready: Value = http.get(format!("{url}/readyz")).send().await.expect("readyz").json().await.expect("JSON");
        assert_eq!(ready["mode"], "production", "{ready}");
    }
    // The caller's token from `kyc-gateway token`, signed for the replicas' shared-secret issuer.
    let seed = kyc_gateway::sandbox::fractal::SEED_PERSON_UID;
    let minted =
        gateway(&env_file, &env, &["token", "--sub", seed, "--scope", "contact:read"]).output().expect("token runs");
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let token = String::from_utf8(minted.stdout).expect("UTF-8").trim().to_owned();

    let query = serde_json::json!({ "query": "{ me { emails { address } } }" });
    let mut answers = [0u32; 2];
    let mut first_email = None;
    // Eight callers at a time across both replicas, until the replicas between them refreshed the seed person's tokens
    // at least three times (each refresh rotates the refresh token).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while refreshes(&http, &replicas).await < 3 {
        assert!(tokio::time::Instant::now() < deadline, "three refreshes within a minute of load");
        let round = (0..8).map(|i| {
            let (http, url, token, query) = (http.clone(), &replicas[i % 2].1, &token, &query);
            async move {
                let sent = http.post(format!("{url}/graphql")).bearer_auth(token).json(query).send().await;
                (i % 2, sent.expect("answered").json::<Value>().await.expect("JSON"))
            }
        });
        for (replica, answer) in futures_util::future::join_all(round).await {
            assert!(answer.get("errors").is_none(), "replica {replica} answered {answer}");
            let email = answer["data"]["me"]["emails"][0]["address"].as_str().expect("an email").to_owned();
            assert_eq!(first_email.get_or_insert_with(|| email.clone()), &email, "the same person on both replicas");
            answers[replica] += 1;
        }
    }
    assert!(answers.iter().all(|n| *n > 0), "both replicas answered: {answers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The successful token refreshes both replicas made at the sandbox Fractal, from their `/metrics`.
async fn refreshes(http: &reqwest::Client, replicas: &[(Running, String, String)]) -> u64 {
    let mut total = 0;
    for (_, _, url) in replicas {
        let text = http.get(format!("{url}/metrics")).send().await.expect("metrics").text().await.expect("text");
        total += text
            .lines()
            .filter(|l| {
                l.starts_with("kyc_gateway_provider_requests_total{")
                    && l.contains("provider=\"fractal\"")
                    && l.contains("route=\"/oauth/token\"")
                    && l.contains("outcome=\"2xx\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    total
}
