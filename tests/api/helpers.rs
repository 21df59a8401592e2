//! Shared helpers: start an app, mint tokens, send GraphQL, read answers.

use std::net::SocketAddr;
use std::sync::Arc;

use kyc_gateway::auth::token::{mint_dev_token, mint_hs256, Subject, DEFAULT_DEV_SECRET};
use kyc_gateway::directory::Directory;
use kyc_gateway::sandbox::Sandbox;
use kyc_gateway::secret::Secret;
use kyc_gateway::{App, Config};
use reqwest::StatusCode;
use serde_json::{json, Value};

pub use kyc_gateway::sandbox::fractal::SEED_PERSON_UID as SEED;

/// Read scopes for the items of every sandbox level the tests look at.
pub const ALL_ITEMS: &str = "verification.basic:read verification.selfie:read verification.liveness:read \
    verification.ssn:read verification.plus:read verification.wallet-eth:read";

/// The providers of a list of cases, in order, each once in a row.
pub fn providers(cases: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        cases.as_array().expect("cases").iter().map(|c| c["provider"].as_str().expect("provider").to_owned()).collect();
    out.dedup();
    out
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub sandbox: Option<Sandbox>,
    pub directory: Arc<dyn Directory>,
    pub cache: kyc_gateway::providers::cache::ProviderCache,
    /// The directory on the database itself (imports).
    pub sql: Arc<kyc_gateway::directory::SqlDirectory>,
    pub store: kyc_gateway::store::Store,
    /// The change channel (what every replica hears).
    pub changes: kyc_gateway::store::changes::Changes,
    /// The replica's verification events (its subscriptions are its receivers).
    pub events: tokio::sync::broadcast::Sender<kyc_gateway::graphql::Pushed>,
    pub http: reqwest::Client,
    /// Stops serving (then the app's tasks stop and its database closes).
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serving task: done once the app has stopped.
    pub served: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The app's verifier of callers' tokens (readiness).
    pub verifier: kyc_gateway::auth::token::TokenVerifier,
    /// Takes the app out of rotation, as the shutdown signal does.
    pub readiness: kyc_gateway::server::health::Readiness,
    /// The metrics listener's address, when `/metrics` is served apart.
    pub metrics: Option<SocketAddr>,
    /// The response cache (how many answers it served).
    pub responses: Arc<kyc_gateway::server::responses::Responses>,
}

/// A sandbox-mode app with the default population.
pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

/// An app on `127.0.0.1:0` after `adjust` has changed the sandbox-mode defaults.
pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..Config::default() };
    adjust(&mut config);
    let app = App::build(config).await.expect("the app builds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    TestApp {
        addr: app.local_addr(),
        sandbox: app.sandbox().cloned(),
        directory: app.providers().directory.clone(),
        cache: app.providers().cache.clone(),
        sql: app.sql_directory(),
        store: app.store().clone(),
        changes: app.providers().changes.clone(),
        events: app.verification_events(),
        http: reqwest::Client::new(),
        verifier: app.token_verifier(),
        readiness: app.readiness(),
        metrics: app.metrics_addr(),
        responses: app.responses(),
        stop: Some(stop),
        served: tokio::spawn(app.serve(async {
            let _ = stopped.await;
        })),
    }
}

/// A sandbox-mode app on the database `db` (instead of the default SQLite in memory).
pub async fn spawn_on(db: &TestDatabase, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_with(|c| {
        c.database = Some(kyc_gateway::store::StoreSettings {
            url: kyc_gateway::secret::Secret::new(db.url.clone()),
            ..kyc_gateway::store::StoreSettings::memory()
        });
        adjust(c);
    })
    .await
}

/// The key of production-mode test apps' secrets at rest, in base64.
pub const TEST_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A key for production-mode test apps' secrets at rest.
pub fn test_encryption() -> kyc_gateway::config::EncryptionSettings {
    kyc_gateway::config::EncryptionSettings {
        current: kyc_gateway::store::crypto::EncryptionKey::from_base64(TEST_KEY).expect("a test key"),
        older: Vec::new(),
    }
}

/// What production mode needs besides a provider and an issuer: a database (in memory here) and a key.
pub fn production_state(config: &mut Config) {
    config.database = Some(kyc_gateway::store::StoreSettings::memory());
    config.encryption = Some(test_encryption());
    // Production mode serves `/metrics` on a listener of its own: a free port, so test apps do not collide.
    config.operations.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
}

/// Imports directory entries (the JSON of `kyc-gateway directory import`) into an app's database.
pub async fn import(app: &TestApp, entries: Vec<Value>) {
    let fields = kyc_gateway::providers::registry::import_fields();
    let entries = kyc_gateway::directory::import::entries(&Value::Array(entries), &fields).expect("directory entries");
    kyc_gateway::directory::import::import(&app.sql, &entries, false).await.expect("imported");
}

pub fn user_token(sub: &str, scope: &str) -> String {
    mint_dev_token(&Secret::new(DEFAULT_DEV_SECRET), &Subject::User(sub.into()), scope, 300)
}

pub fn client_token(scope: &str) -> String {
    mint_dev_token(&Secret::new(DEFAULT_DEV_SECRET), &Subject::Client("test-client".into()), scope, 300)
}

/// A GraphQL answer.
#[derive(Debug)]
pub struct Gql {
    pub status: StatusCode,
    pub body: Value,
}

impl Gql {
    /// The value at a `data` path such as `"me.verificationCases.0.level"`.
    pub fn data(&self, path: &str) -> &Value {
        let mut v = &self.body["data"];
        for part in path.split('.') {
            v = match part.parse::<usize>() {
                Ok(i) => &v[i],
                Err(_) => &v[part],
            };
        }
        v
    }

    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    /// The error whose path is `path` (dot-separated, as in [`Gql::data`]).
    pub fn error_at(&self, path: &str) -> Option<Value> {
        self.errors().into_iter().find(|e| {
            let p: Vec<String> = e["path"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().map(str::to_owned).unwrap_or_else(|| s.to_string())).collect())
                .unwrap_or_default();
            p.join(".") == path
        })
    }

    /// The `extensions.code` of every error.
    pub fn codes(&self) -> Vec<String> {
        self.errors().iter().map(|e| e["extensions"]["code"].as_str().unwrap_or("<none>").to_owned()).collect()
    }

    /// Asserts the answer has no errors.
    pub fn ok(self) -> Self {
        assert_eq!(self.status, StatusCode::OK, "{:#}", self.body);
        assert!(self.errors().is_empty(), "unexpected errors: {:#}", self.body);
        self
    }
}

/// Polls `check` every 25 ms until it holds, for at most 10 s: tests wait for a condition, never for a fixed time.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Asserts that `error` is a scope denial naming `scope` among its required scopes.
pub fn assert_denied(error: Option<Value>, scope: &str) {
    let error = error.expect("a denial error at that path");
    assert_eq!(error["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{error:#}");
    assert_eq!(error["message"], "Unauthorized field or type");
    let required = error["extensions"]["requiredScopes"].to_string();
    assert!(required.contains(scope), "requiredScopes {required} should name {scope}");
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("a sandbox-mode app")
    }

    pub async fn query(&self, token: &str, query: &str) -> Gql {
        self.query_vars(token, query, json!({})).await
    }

    pub async fn query_vars(&self, token: &str, query: &str, variables: Value) -> Gql {
        let response = self
            .http
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("the gateway answers");
        let status = response.status();
        let body = response.json().await.expect("a JSON body");
        Gql { status, body }
    }
}

/// The token issuer of production-mode test apps.
pub const ISSUER: &str = "https://id.example.com/";
/// Production mode takes shared secrets of 32 bytes or more.
pub const ISSUER_SECRET: &str = "production-issuer-secret-32-bytes-or-more";

/// The production-mode test issuer, as `Config::tokens.secret_issuer`.
pub fn secret_issuer() -> kyc_gateway::config::SecretIssuer {
    kyc_gateway::config::SecretIssuer { issuer: ISSUER.into(), secret: Secret::new(ISSUER_SECRET) }
}

/// A token of the production-mode test issuer; a client token when `client` is set.
pub fn issuer_token(sub: &str, scope: &str, client: bool) -> String {
    let subject = if client { Subject::Client(sub.into()) } else { Subject::User(sub.into()) };
    mint_hs256(&Secret::new(ISSUER_SECRET), ISSUER, &subject, scope, 300)
}

/// A production-mode app whose real providers are the sandboxes of `sandbox_app`, knowing `users`, after `adjust`
/// (to break a credential, say).
pub async fn production_app(sandbox_app: &TestApp, users: &[&str], adjust: impl FnOnce(&mut Config)) -> TestApp {
    let entries: Vec<Value> = users.iter().map(|u| json!({ "user_id": u })).collect();
    production_app_with(sandbox_app, entries, adjust).await
}

/// Like [`production_app`], with these directory entries imported.
pub async fn production_app_with(
    sandbox_app: &TestApp,
    entries: Vec<Value>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let app = spawn_with(|c| {
        point_at(c, sandbox_app.sandbox(), &["SUMSUB", "SILA", "IDENT"]);
        c.tokens.secret_issuer = Some(secret_issuer());
        production_state(c);
        adjust(c);
    })
    .await;
    import(&app, entries).await;
    app
}

/// Configures the providers of `prefixes` (`SUMSUB`, ...) as real ones at `sandbox`: its variables, as
/// `kyc-gateway sandbox` prints them, without its webhook secrets.
pub fn point_at(config: &mut Config, sandbox: &Sandbox, prefixes: &[&str]) {
    for variable in sandbox.environment() {
        let ours = prefixes.iter().any(|p| variable.name.starts_with(&format!("KYC_GATEWAY_{p}_")));
        if ours && !variable.name.ends_with("_WEBHOOK_SECRETS") {
            config.vars.set(&variable.name, variable.value);
        }
    }
}

/// Removes a provider's section (every `KYC_GATEWAY_<prefix>_` variable).
pub fn without(config: &mut Config, prefix: &str) {
    let names: Vec<String> =
        config.vars.names().filter(|n| n.starts_with(&format!("KYC_GATEWAY_{prefix}_"))).map(str::to_owned).collect();
    for name in names {
        config.vars.remove(&name);
    }
}

/// A user id, checked.
pub fn uid(id: &str) -> kyc_gateway::domain::UserId {
    kyc_gateway::domain::UserId::parse(id).expect("a user id")
}

impl TestApp {
    /// Waits until `n` subscriptions follow this replica's events (a subscription starts a moment after its
    /// `subscribe` message).
    pub async fn subscribed(&self, n: usize) {
        eventually(&format!("{n} subscriptions are active"), || async { self.events.receiver_count() == n }).await;
    }

    /// Stops serving and waits until the app has let go of its database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.served).await;
    }
}

/// A database for a test: a file SQLite database, or a PostgreSQL one.
pub struct TestDatabase {
    pub engine: &'static str,
    pub url: String,
    /// PostgreSQL: the server to drop the database on, when the test is done.
    admin: Option<(String, String)>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.admin.take() {
            // A test's runtime is going away: drop the database from a thread of its own (best effort).
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async {
                    sqlx::any::install_default_drivers();
                    if let Ok(pool) = sqlx::AnyPool::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await;
                        pool.close().await;
                    }
                });
            })
            .join();
        } else if let Some(path) = self.url.strip_prefix("sqlite://") {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
    }
}

/// A new SQLite database in a file of its own.
pub fn sqlite_database() -> TestDatabase {
    let path = std::env::temp_dir().join(format!("kyc-gateway-test-{}.db", kyc_gateway::secret::random_token()));
    TestDatabase { engine: "sqlite", url: format!("sqlite://{}", path.display()), admin: None }
}

/// A new PostgreSQL database on the server of `KYC_GATEWAY_TEST_DATABASE_URL` (a role that may create databases). Its
/// tests are `#[ignore]`d (see [`on_both_engines!`]), so a run without the variable lists them as ignored, and fail
/// here when run without it; `.ci/run` runs them (CONTRIBUTING.md, "Commands").
pub async fn postgres_database() -> TestDatabase {
    let admin = std::env::var("KYC_GATEWAY_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()).expect(
        "set KYC_GATEWAY_TEST_DATABASE_URL to a PostgreSQL role that may create databases (`source .ci/postgres.sh \
         && postgres_start` starts a throwaway one)",
    );
    sqlx::any::install_default_drivers();
    let name = format!("kyc_test_{}", &kyc_gateway::secret::random_token()[..16]);
    let pool = sqlx::AnyPool::connect(&admin).await.expect("the PostgreSQL test server answers");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("a test database");
    pool.close().await;
    let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
    TestDatabase { engine: "postgres", url: format!("{base}/{name}"), admin: Some((admin, name)) }
}

/// The test `$name`, an `async fn(TestDatabase)` beside the call, as two tests: `$name::on_sqlite`, on a SQLite file,
/// and `$name::on_postgresql`, ignored unless asked for (see [`postgres_database`]).
macro_rules! on_both_engines {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_sqlite() {
                super::$name(crate::helpers::sqlite_database()).await
            }

            #[tokio::test]
            #[ignore = "needs KYC_GATEWAY_TEST_DATABASE_URL (see .ci/postgres.sh)"]
            async fn on_postgresql() {
                super::$name(crate::helpers::postgres_database().await).await
            }
        }
    };
}
pub(crate) use on_both_engines;

/// The gateway binary in sandbox mode, with at most `open_files` file descriptors, until dropped.
pub struct Process {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// Its stderr (the logs), line by line as they come.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    pub fn start(open_files: usize, env: &[(&str, &str)]) -> Process {
        let addr_file = std::env::temp_dir().join(format!("kyc-gateway-addr-{}", kyc_gateway::secret::random_token()));
        let mut command = std::process::Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" serve --listen 127.0.0.1:0 --addr-file \"$1\""))
            .arg(env!("CARGO_BIN_EXE_kyc-gateway"))
            .arg(&addr_file)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the gateway starts");
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped");
        let lines = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().expect("log lock").push(line);
            }
        });
        let addr =
            kyc_gateway::cli::wait_for_addr_file(&addr_file, std::time::Duration::from_secs(60)).expect("it listens");
        let _ = std::fs::remove_file(&addr_file);
        Process { child, addr, log }
    }

    /// `(CPU time used so far, resident set size)` of the process, from `/proc`.
    pub fn usage(&self) -> (std::time::Duration, u64) {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        // The fields after the command name (which may hold spaces, so split after its closing parenthesis).
        let fields: Vec<&str> = stat.rsplit_once(')').expect("comm").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        // Linux counts CPU time in clock ticks of 10 ms (USER_HZ = 100).
        (std::time::Duration::from_millis(ticks * 10), rss_kb * 1024)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Its logs so far, one line each.
    pub fn logs(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sandbox secret's text (the sandbox hands out `secrecy` strings).
pub trait Expose {
    fn expose(&self) -> &str;
}

impl Expose for secrecy::SecretString {
    fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(self)
    }
}

/// The log lines without their `timestamp` values, whose microseconds can spell a short number (`.160000Z`).
pub fn without_timestamps(logs: &str) -> String {
    const KEY: &str = "\"timestamp\":\"";
    let (mut out, mut rest) = (String::with_capacity(logs.len()), logs);
    while let Some(at) = rest.find(KEY) {
        out.push_str(&rest[..at]);
        let value = &rest[at + KEY.len()..];
        rest = value.find('"').map_or("", |end| &value[end + 1..]);
    }
    out + rest
}

/// Whether `text` holds `value`; a number (a zip code, say) only where no digit adjoins it.
pub fn mentions(text: &str, value: &str) -> bool {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return text.contains(value);
    }
    let digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
    text.match_indices(value)
        .any(|(at, _)| !digit(text[..at].bytes().next_back()) && !digit(text[at + value.len()..].bytes().next()))
}
