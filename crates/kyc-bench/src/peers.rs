//! `kyc-bench --peers`: kyc-gateway beside Hive Gateway and Tailcall (installed by `bench/install.sh`, configured from
//! `bench/`) and a bare axum handler (the floor), on the same endpoints and load (BENCHMARKS.md, "Peers"). Each runs as
//! a child process per mode; a contender whose `data` differs from kyc-gateway's fails the run.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kyc_gateway::sandbox::Sandbox;
use kyc_gateway::sandbox::{Faults, SandboxSettings};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::gateway::{Gateway, Mode};
use crate::load::{drive, Measured};
use crate::raw::Raw;
use crate::scenarios::{machine, token};
use crate::{ms, procfs, Args};

/// The `me` shape: one Fractal call per uncached query in every contender.
const ME_QUERY: &str = "{ me { id emails { address } } }";
/// How long the peers' caches keep an answer: longer than any run, as kyc-gateway's cache holds a warm `me`.
const CACHE_MS: u64 = 600_000;

/// One distinct request of a shape, as each contender is asked it.
#[derive(Clone)]
struct Request {
    /// kyc-gateway's bearer token: its own JWT, with the scopes the query needs.
    gateway_token: String,
    /// The peers' bearer token: a Fractal user access token for `me`, which they pass on to Fractal; none for the
    /// N+1 shape, where their configuration holds ident's application token.
    peer_token: Option<String>,
    query: String,
}

struct Shape {
    name: &'static str,
    /// The query and how its requests vary, for the report.
    title: String,
    /// Who sends what to whom, for the report.
    how: &'static str,
    requests: Vec<Request>,
    concurrency: usize,
    /// Whether the peers can answer it (`mesh-100` asks kyc-gateway's own `kycState`, which they do not have).
    peers: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    KycGateway,
    Hive,
    Tailcall,
    Floor,
}

impl Contender {
    /// Its name in `--only`.
    fn key(self) -> &'static str {
        match self {
            Contender::KycGateway => "kyc-gateway",
            Contender::Hive => "hive",
            Contender::Tailcall => "tailcall",
            Contender::Floor => "floor",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Contender::KycGateway => "kyc-gateway",
            Contender::Hive => "Hive Gateway",
            Contender::Tailcall => "Tailcall",
            Contender::Floor => "floor (bare axum handler)",
        }
    }
}

struct Row {
    shape: &'static str,
    contender: Contender,
    cache: bool,
    measured: Measured,
    upstream_per_query: f64,
    cpu_per_query: Duration,
    rss_mb: Option<f64>,
    /// Distinct requests whose data differed from kyc-gateway's; `None` where not compared (the floor).
    differing: Option<usize>,
    /// Distinct requests compared.
    compared: usize,
}

/// A peer's (or the floor's) process: ended, with any process it started, when dropped.
struct Peer {
    child: Child,
    url: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        procfs::kill_descendants(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A contender while it runs.
enum Running {
    Gateway(Gateway),
    Process(Peer),
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Running::Gateway(g) => g.pid(),
            Running::Process(p) => p.child.id(),
        }
    }

    fn url(&self) -> &str {
        match self {
            Running::Gateway(g) => &g.url,
            Running::Process(p) => &p.url,
        }
    }
}

/// Sends one query; with `parse`, returns the answer's `data` (or an error naming what went wrong), else only
/// checks, as the load does, that the answer is a 200 without `errors`.
async fn post(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    query: &str,
    parse: bool,
) -> Result<Value, String> {
    let mut request = http.post(format!("{url}/graphql")).json(&json!({ "query": query }));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    if !parse {
        return match body.windows(8).any(|w| w == b"\"errors\"") {
            false => Ok(Value::Null),
            true => Err(format!("GraphQL errors: {}", String::from_utf8_lossy(&body))),
        };
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    if value.get("errors").is_some() {
        return Err(format!("GraphQL errors: {}", value["errors"]));
    }
    Ok(value["data"].clone())
}

/// The answer as compared across contenders: ident's status words are lower case at ident and in the peers, an enum
/// in kyc-gateway's schema (`PENDING`).
fn normalise(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("status", Value::String(s)) => (k.clone(), Value::String(s.to_lowercase())),
                    _ => (k.clone(), normalise(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        other => other.clone(),
    }
}

/// A port free on loopback now, for a peer that takes its port from its configuration.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last lines of a peer's log, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The `version` of an installed npm package.
fn version(bench: &Path, package: &str) -> String {
    std::fs::read_to_string(bench.join("node_modules").join(package).join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Runs a command to its end off the async workers (the sandboxes answer on them), its output on our stderr.
async fn run_blocking(mut command: Command, what: &'static str) -> anyhow::Result<()> {
    command.stdout(Stdio::from(std::io::stderr())).stderr(Stdio::from(std::io::stderr()));
    let status =
        tokio::task::spawn_blocking(move || command.status()).await?.with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// What every measurement of the run shares.
struct Bench<'a> {
    args: &'a Args,
    sandbox: &'a Sandbox,
    secret: &'a str,
    /// bench/: the configurations and node_modules.
    dir: PathBuf,
    /// This run's files: the composed supergraph, Tailcall's configurations, the peers' logs.
    work: PathBuf,
    http: reqwest::Client,
}

impl Bench<'_> {
    fn node_bin(&self, name: &str) -> PathBuf {
        self.dir.join("node_modules/.bin").join(name)
    }

    /// Composes the supergraph Hive Gateway serves (bench/hive/mesh.config.ts) for this run's sandbox.
    async fn compose(&self) -> anyhow::Result<PathBuf> {
        let out = self.work.join("supergraph.graphql");
        let mut command = Command::new(self.node_bin("mesh-compose"));
        command
            .args(["-c", "mesh.config.ts", "-o"])
            .arg(&out)
            .current_dir(self.dir.join("hive"))
            .env("KYC_BENCH_FRACTAL_URL", self.sandbox.fractal().base_url())
            .env("KYC_BENCH_IDENT_URL", self.sandbox.ident().base_url())
            .env("KYC_BENCH_IDENT_TOKEN", self.sandbox.ident().application_token().expose_secret());
        run_blocking(command, "mesh-compose (bench/hive/mesh.config.ts)").await?;
        Ok(out)
    }

    /// Starts a peer's process with its output in a log of this run, and waits until it answers GraphQL.
    async fn spawn(&self, mut command: Command, port: u16, log_name: &str) -> anyhow::Result<Peer> {
        let log = self.work.join(log_name);
        let file = File::create(&log)?;
        command.stdout(file.try_clone()?).stderr(file).stdin(Stdio::null());
        let child = command.spawn().with_context(|| format!("starting {log_name}"))?;
        let mut peer = Peer { child, url: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        loop {
            if let Some(status) = peer.child.try_wait()? {
                bail!("{log_name}: exited ({status}) before answering; its log:\n{}", tail(&log));
            }
            let probe = self.http.post(format!("{}/graphql", peer.url)).json(&json!({ "query": "{ __typename }" }));
            if probe.timeout(Duration::from_secs(2)).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(peer);
            }
            if started.elapsed() > Duration::from_secs(90) {
                bail!("{log_name}: not answering after 90 s; its log:\n{}", tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn hive(&self, supergraph: &Path, cache: bool) -> anyhow::Result<Peer> {
        let port = free_port()?;
        let mut command = Command::new(self.node_bin("hive-gateway"));
        command
            .arg("supergraph")
            .arg(supergraph)
            .args(["-c", "gateway.config.ts", "--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(self.dir.join("hive"))
            .env("KYC_BENCH_CACHE", if cache { "on" } else { "off" })
            // As it would be deployed: libraries skip their development-only checks.
            .env("NODE_ENV", "production");
        self.spawn(command, port, &format!("hive-cache-{}.log", on_off(cache))).await
    }

    async fn tailcall(&self, cache: bool) -> anyhow::Result<Peer> {
        let port = free_port()?;
        let template = std::fs::read_to_string(self.dir.join("tailcall/kyc.graphql"))?;
        let script = self.dir.join("tailcall/users-from-ids.js");
        let cache_directive = if cache { format!("@cache(maxAge: {CACHE_MS})") } else { String::new() };
        let config = template
            .replace("${PORT}", &port.to_string())
            .replace("${FRACTAL_URL}", self.sandbox.fractal().base_url())
            .replace("${IDENT_URL}", &self.sandbox.ident().base_url())
            .replace("${IDENT_TOKEN}", self.sandbox.ident().application_token().expose_secret())
            .replace("${SCRIPT}", &script.display().to_string())
            .replace("${CACHE}", &cache_directive);
        if let Some(at) = config.find("${") {
            let unknown: String = config[at..].chars().take(24).collect();
            bail!("bench/tailcall/kyc.graphql: a placeholder kyc-bench does not fill in: {unknown}");
        }
        let path = self.work.join(format!("tailcall-cache-{}.graphql", on_off(cache)));
        std::fs::write(&path, config)?;
        let mut command = Command::new(self.dir.join("node_modules/@tailcallhq/core-linux-x64-gnu/bin/tailcall"));
        command
            .arg("start")
            .arg(&path)
            // Tailcall reports usage to its makers unless told not to; and no log line per upstream request.
            .env("TAILCALL_TRACKER", "false")
            .env("TAILCALL_LOG_LEVEL", "warn");
        self.spawn(command, port, &format!("tailcall-cache-{}.log", on_off(cache))).await
    }

    async fn floor(&self, body: &str) -> anyhow::Result<Peer> {
        let addr_file = self.work.join("floor.addr");
        let log = self.work.join("floor.log");
        let child = Command::new(std::env::current_exe()?)
            .arg("--floor-child")
            .arg(&addr_file)
            .env(crate::floor::BODY_ENV, body)
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .context("starting the floor")?;
        let wait = addr_file.clone();
        let addr =
            tokio::task::spawn_blocking(move || kyc_gateway::cli::wait_for_addr_file(&wait, Duration::from_secs(30)))
                .await?;
        let mut peer = Peer { child, url: String::new() };
        let Some(addr) = addr else {
            bail!("the floor did not start: {}", tail(&log));
        };
        peer.url = format!("http://{addr}");
        Ok(peer)
    }

    /// Checks a contender's answers against `reference` (or records them there, for the first), warms it up, then
    /// measures it.
    async fn measure(
        &self,
        shape: &Shape,
        contender: Contender,
        cache: bool,
        running: Running,
        reference: &mut Vec<Value>,
    ) -> anyhow::Result<Row> {
        let url = running.url().to_owned();
        let bearer = move |r: &Request| match contender {
            Contender::KycGateway => Some(r.gateway_token.clone()),
            _ => r.peer_token.clone(),
        };
        let recording = reference.is_empty();
        let mut differing = 0;
        for (i, request) in shape.requests.iter().enumerate() {
            let data = post(&self.http, &url, bearer(request).as_deref(), &request.query, true).await;
            let data = data.map_err(|e| anyhow::anyhow!("{} ({}): {e}", contender.label(), shape.name))?;
            if recording {
                reference.push(data);
            } else if contender != Contender::Floor && normalise(&data) != normalise(&reference[i]) {
                if differing == 0 {
                    eprintln!(
                        "kyc-bench: {} answers other data than kyc-gateway ({}, request {i}):\n  {}: {}\n  kyc-gateway: {}",
                        contender.label(),
                        shape.name,
                        contender.label(),
                        data,
                        reference[i]
                    );
                }
                differing += 1;
            }
        }
        let requests = Arc::new(shape.requests.clone());
        let load = |http: reqwest::Client, url: String| {
            let requests = requests.clone();
            move |n: u64| {
                let (http, url, request) = (http.clone(), url.clone(), requests[n as usize % requests.len()].clone());
                async move {
                    let token = bearer(&request);
                    post(&http, &url, token.as_deref(), &request.query, false).await.map(|_| ())
                }
            }
        };
        let warmup = Duration::from_secs_f64(self.args.warmup);
        if !warmup.is_zero() {
            drive(shape.concurrency, warmup, self.args.max_requests, load(self.http.clone(), url.clone())).await;
        }
        let (calls, cpu) = (self.sandbox.requests(), procfs::cpu(running.pid()));
        let duration = Duration::from_secs_f64(self.args.duration);
        let measured = drive(shape.concurrency, duration, self.args.max_requests, load(self.http.clone(), url)).await;
        let answered = measured.latencies.len().max(1) as f64;
        let cpu = procfs::cpu(running.pid()).saturating_sub(cpu);
        if let Some(failure) = &measured.first_failure {
            eprintln!(
                "kyc-bench: {} ({}, caches {}): {} failed requests, first: {failure}",
                contender.label(),
                shape.name,
                on_off(cache),
                measured.failures
            );
        }
        Ok(Row {
            shape: shape.name,
            contender,
            cache,
            upstream_per_query: (self.sandbox.requests() - calls) as f64 / answered,
            cpu_per_query: cpu.div_f64(answered),
            rss_mb: procfs::peak_rss_mb(running.pid()),
            measured,
            differing: (contender != Contender::Floor && !recording).then_some(differing),
            compared: shape.requests.len(),
        })
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// Installs the peers (bench/install.sh: `npm ci` when bench/node_modules is missing or stale).
async fn install(dir: &Path) -> anyhow::Result<()> {
    let mut command = Command::new("bash");
    command.arg(dir.join("install.sh"));
    run_blocking(command, "bench/install.sh").await
}

/// One table for every row, with kyc-gateway's ratios to each: the targets are stated as such ratios.
fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| shape | gateway | caches | req/s | p50 ms | p99 ms | upstream calls/query | CPU µs/query | peak RSS MB \
         | same data as kyc-gateway | failed | kyc-gateway req/s ÷ this | kyc-gateway CPU/query ÷ this \
         | kyc-gateway RSS ÷ this |\n",
    );
    out.push_str("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
    for row in rows {
        // The floor stands beside the warm (cached) kyc-gateway; every other row beside kyc-gateway with the same
        // caches.
        let cache = row.cache || row.contender == Contender::Floor;
        let ours =
            rows.iter().find(|r| r.shape == row.shape && r.contender == Contender::KycGateway && r.cache == cache);
        let ratio = |f: &dyn Fn(&Row) -> Option<f64>| -> String {
            match (ours.and_then(f), f(row)) {
                (_, _) if row.contender == Contender::KycGateway => "-".into(),
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "-".into(),
            }
        };
        let m = &row.measured;
        let same = match row.differing {
            None if row.contender == Contender::Floor => "n/a (one fixed answer)".to_owned(),
            None => "reference".to_owned(),
            Some(0) => format!("yes ({} of {})", row.compared, row.compared),
            Some(d) => format!("NO ({d} of {} differ)", row.compared),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {:.2} | {:.0} | {} | {} | {} | {} | {} | {} |",
            row.shape,
            row.contender.label(),
            if row.contender == Contender::Floor { "-" } else { on_off(row.cache) },
            m.rate(),
            ms(m.percentile(0.5)),
            ms(m.percentile(0.99)),
            row.upstream_per_query,
            row.cpu_per_query.as_secs_f64() * 1e6,
            row.rss_mb.map(|r| format!("{r:.1}")).unwrap_or_else(|| "-".into()),
            same,
            m.failures,
            ratio(&|r| Some(r.measured.rate())),
            ratio(&|r| Some(r.cpu_per_query.as_secs_f64())),
            ratio(&|r| r.rss_mb),
        );
    }
    out
}

/// The report, and how many answers failed or differed from kyc-gateway's.
pub async fn run(args: Args) -> anyhow::Result<(String, u64)> {
    let dir = args.peers_dir.clone();
    install(&dir).await.context("installing the peers")?;
    let settings = SandboxSettings { sumsub_get_limit: u32::MAX, ..SandboxSettings::default() };
    let sandbox = Sandbox::start(&settings).await.context("starting the sandbox providers")?;
    let secret = kyc_gateway::secret::random_token();
    let users: Vec<String> = sandbox.fractal().population().users.iter().map(|u| u.uid.clone()).collect();
    // The users of the scenarios' `me` (scenarios.rs): data at every provider.
    let everywhere: Vec<String> = users.iter().step_by(30).cloned().collect();
    let raw = Raw::setup(&sandbox, &everywhere).await?;
    let me = Shape {
        name: "me",
        title: format!("`{ME_QUERY}`, {} users in turn", everywhere.len()),
        how: "kyc-gateway with the user's own JWT; the peers with the user's Fractal access token, which they pass on \
              to Fractal's `GET /v2/users/me`",
        requests: everywhere
            .iter()
            .map(|u| Request {
                gateway_token: token(&secret, u, "uid:read contact:read", false),
                peer_token: raw.fractal_token(u).map(str::to_owned),
                query: ME_QUERY.into(),
            })
            .collect(),
        concurrency: args.concurrency.unwrap_or(50),
        peers: true,
    };
    let service = token(&secret, "peers", "client.users:read kyc_application:read", true);
    let windows = 20;
    let n_plus_one = Shape {
        name: "n-plus-one",
        title: format!(
            "`{{ users(ids: [50 ids]) {{ kycApplications {{ id status }} }} }}`, {windows} windows of 50 users in turn"
        ),
        how: "kyc-gateway with a service JWT; the peers with ident's application token in their configuration: one \
              `GET /api/v1/users/{id}/kyc_applications` per user",
        requests: (0..windows)
            .map(|w| {
                let ids: Vec<String> = users.iter().cycle().skip(w * 50).take(50).map(|u| format!("\"{u}\"")).collect();
                Request {
                    gateway_token: service.clone(),
                    peer_token: None,
                    query: format!("{{ users(ids: [{}]) {{ kycApplications {{ id status }} }} }}", ids.join(", ")),
                }
            })
            .collect(),
        concurrency: args.concurrency.unwrap_or(16),
        peers: true,
    };
    // The scenarios' `mesh-100` (scenarios.rs), measured here for its CPU per user: kyc-gateway alone.
    let mesh_service = token(
        &secret,
        "mesh",
        &format!("client.users:read verification.basic.details:read {}", crate::scenarios::ITEMS),
        true,
    );
    let mesh = Shape {
        name: "mesh-100",
        title: "`{ users(ids: [100 ids]) { kycState(level: \"basic\") } }`, 10 windows of 100 users in turn".into(),
        how:
            "kyc-gateway alone (the peers have no `kycState`), with a service JWT; its CPU per query / 100 is its CPU \
              per user",
        requests: (0..10)
            .map(|w| {
                let ids: Vec<String> =
                    users.iter().cycle().skip(w * 100).take(100).map(|u| format!("\"{u}\"")).collect();
                Request {
                    gateway_token: mesh_service.clone(),
                    peer_token: None,
                    query: format!("{{ users(ids: [{}]) {{ kycState(level: \"basic\") }} }}", ids.join(", ")),
                }
            })
            .collect(),
        concurrency: args.concurrency.unwrap_or(8),
        peers: false,
    };
    // Latency from here on: the setup above is not part of any measurement.
    sandbox.set_faults(&Faults { latency_ms: args.latency_ms, ..Faults::default() });

    let work = std::env::temp_dir().join(format!("kyc-bench-peers-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let bench = Bench { args: &args, sandbox: &sandbox, secret: &secret, dir: dir.clone(), work: work.clone(), http };
    let shapes = [me, n_plus_one, mesh];
    let result = compare(&bench, &shapes).await;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("kyc-bench: the peers' logs and configurations are kept in {}", work.display());
    }
    let rows = result?;

    let mut failed = 0;
    for row in &rows {
        failed += row.measured.failures + row.differing.unwrap_or(0) as u64;
    }
    let mut report = String::from("## kyc-bench --peers\n\n");
    let _ = writeln!(report, "machine: {}", machine());
    let node = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let _ = writeln!(
        report,
        "peers: Hive Gateway {} over GraphQL Mesh compose {} (@omnigraph/json-schema {}), Node.js {}, {} worker(s); \
         Tailcall {} (@tailcallhq/core-linux-x64-gnu)",
        version(&dir, "@graphql-hive/gateway"),
        version(&dir, "@graphql-mesh/compose-cli"),
        version(&dir, "@omnigraph/json-schema"),
        node.unwrap_or_else(|| "?".into()),
        std::env::var("FORK").unwrap_or_else(|_| "1".into()),
        version(&dir, "@tailcallhq/core-linux-x64-gnu"),
    );
    let _ = writeln!(
        report,
        "injected provider latency: {} ms; {} s of warm-up load, then {} s measured per row, at most {} requests",
        args.latency_ms, args.warmup, args.duration, args.max_requests
    );
    let _ = writeln!(report, "\nshapes:");
    for shape in &shapes {
        let _ =
            writeln!(report, "- `{}` (concurrency {}): {}; {}.", shape.name, shape.concurrency, shape.title, shape.how);
    }
    report.push('\n');
    report.push_str(&table(&rows));
    Ok((report, failed))
}

async fn compare(bench: &Bench<'_>, shapes: &[Shape]) -> anyhow::Result<Vec<Row>> {
    // kyc-gateway is the reference every other answer is compared with: it always runs.
    let wanted = |c: Contender| {
        c == Contender::KycGateway || bench.args.only.as_ref().is_none_or(|only| only.iter().any(|o| o == c.key()))
    };
    let supergraph = match wanted(Contender::Hive) {
        true => Some(bench.compose().await?),
        false => None,
    };
    let mut rows = Vec::new();
    for shape in shapes {
        eprintln!("kyc-bench --peers: {}", shape.title);
        let mut reference = Vec::new();
        for cache in [false, true] {
            for contender in [Contender::KycGateway, Contender::Hive, Contender::Tailcall]
                .into_iter()
                .filter(|&c| wanted(c) && (shape.peers || c == Contender::KycGateway))
            {
                eprintln!("kyc-bench --peers:   {} (caches {})", contender.label(), on_off(cache));
                let running = match contender {
                    Contender::KycGateway => {
                        let mode = if cache { Mode::Full } else { Mode::NoCache };
                        Running::Gateway(Gateway::start(bench.sandbox, mode, bench.secret, &[]).await?)
                    }
                    Contender::Hive => {
                        let supergraph = supergraph.as_deref().expect("composed when Hive Gateway is wanted");
                        Running::Process(bench.hive(supergraph, cache).await?)
                    }
                    Contender::Tailcall => Running::Process(bench.tailcall(cache).await?),
                    Contender::Floor => unreachable!("the floor is measured below"),
                };
                rows.push(bench.measure(shape, contender, cache, running, &mut reference).await?);
            }
        }
        if shape.name == "me" && wanted(Contender::Floor) {
            eprintln!("kyc-bench --peers:   {}", Contender::Floor.label());
            let body = json!({ "data": reference[0] }).to_string();
            let floor = Running::Process(bench.floor(&body).await?);
            rows.push(bench.measure(shape, Contender::Floor, false, floor, &mut reference).await?);
        }
    }
    Ok(rows)
}
