//! The scenarios, their modes, and the report.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kyc_gateway::auth::token::{mint_hs256, Subject};
use kyc_gateway::sandbox::Sandbox;
use kyc_gateway::sandbox::{Faults, SandboxSettings};
use kyc_gateway::secret::Secret;
use serde_json::{json, Value};

use crate::gateway::{Gateway, Mode, ISSUER};
use crate::load::{drive, Measured};
use crate::raw::Raw;
use crate::{ms, Args};

pub(crate) const ITEMS: &str = "verification.uniqueness:read verification.basic:read verification.plus:read \
    verification.liveness:read verification.selfie:read verification.sow:read verification.ssn:read \
    verification.wallet-eth:read";
pub(crate) const ME: &str =
    "{ me { emails { address } verificationCases { provider level state } kycApplications { status state } } }";

pub fn token(secret: &str, sub: &str, scope: &str, client: bool) -> String {
    let subject = if client { Subject::Client(sub.into()) } else { Subject::User(sub.into()) };
    mint_hs256(&Secret::new(secret), ISSUER, &subject, scope, 24 * 3600)
}

/// Which errors an answer may carry: none, or only those of one provider that is down on purpose.
#[derive(Clone, Copy)]
pub(crate) enum Allowed {
    None,
    Provider(&'static str),
}

pub(crate) async fn graphql(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    allowed: Allowed,
) -> Result<(), String> {
    let response = http
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if !body.windows(8).any(|w| w == b"\"errors\"") {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let errors = value["errors"].as_array().cloned().unwrap_or_default();
    match allowed {
        Allowed::Provider(p) if errors.iter().all(|e| e["extensions"]["provider"] == p) => Ok(()),
        _ => Err(format!("GraphQL errors: {}", Value::Array(errors))),
    }
}

struct Row {
    mode: String,
    measured: Option<Measured>,
    upstream_per_query: Option<f64>,
    rss_mb: Option<f64>,
}

/// Failed answers of a scenario's rows.
fn failures(rows: &[Row]) -> u64 {
    rows.iter().filter_map(|r| r.measured.as_ref()).map(|m| m.failures).sum()
}

fn table(title: &str, concurrency: usize, rows: &[Row], ideal: Duration) -> String {
    let mut out = format!("\n### {title} (concurrency {concurrency})\n\n");
    out.push_str("| mode | req/s | p50 ms | p99 ms | upstream calls/query | gateway peak RSS MB | failed |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for row in rows {
        let cell = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let m = row.measured.as_ref();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.mode,
            cell(m.map(|m| format!("{:.0}", m.rate()))),
            cell(m.map(|m| ms(m.percentile(0.5)))),
            cell(m.map(|m| ms(m.percentile(0.99)))),
            cell(row.upstream_per_query.map(|u| format!("{u:.2}"))),
            cell(row.rss_mb.map(|r| format!("{r:.1}"))),
            cell(m.map(|m| m.failures.to_string())),
        );
    }
    let _ = writeln!(
        out,
        "| ideal (slowest provider's injected latency) | - | {} | {} | - | - | - |",
        ms(ideal),
        ms(ideal)
    );
    out
}

/// A fault that starts after the warm-up, and the queries that run under it before measuring (to open a breaker).
struct Then<'a> {
    sila: Faults,
    queries: &'a [(String, String)],
}

/// How one gateway mode of a scenario runs.
struct ModeSpec<'a> {
    mode: Mode,
    /// The kyc-bench binary whose gateway runs (this one when absent).
    exe: Option<&'a std::path::Path>,
    label: &'a str,
    /// Environment for the gateway beyond the mode's own.
    extra: &'a [(&'a str, String)],
    allowed: Allowed,
    /// Queries sent before measuring (their errors ignored).
    warm: &'a [(String, String)],
    then: Option<Then<'a>>,
}

impl<'a> ModeSpec<'a> {
    fn new(mode: Mode, label: &'a str) -> Self {
        ModeSpec { mode, exe: None, label, extra: &[], allowed: Allowed::None, warm: &[], then: None }
    }
}

type RawFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// What every measurement of one run shares.
struct Bench<'a> {
    sandbox: &'a Sandbox,
    secret: &'a str,
    args: &'a Args,
}

impl Bench<'_> {
    /// One gateway mode: start, warm up, measure, stop.
    async fn mode<Q>(&self, spec: ModeSpec<'_>, concurrency: usize, request: Q) -> anyhow::Result<Row>
    where
        Q: Fn(u64) -> (String, String) + Send + Sync + 'static,
    {
        let gateway = match spec.exe {
            Some(exe) => Gateway::start_from(exe, self.sandbox, spec.mode, self.secret, spec.extra).await?,
            None => Gateway::start(self.sandbox, spec.mode, self.secret, spec.extra).await?,
        };
        let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
        for (token, query) in spec.warm {
            let _ = graphql(&http, &gateway.url, token, query, Allowed::None).await;
        }
        let allowed = spec.allowed;
        if let Some(then) = &spec.then {
            self.sandbox.sila().faults().set(then.sila.clone());
            let trips = then.queries.iter().map(|(token, query)| graphql(&http, &gateway.url, token, query, allowed));
            futures_util::future::join_all(trips).await;
        }
        let before = self.sandbox.requests();
        let url = gateway.url.clone();
        let request = Arc::new(request);
        let measured = drive(concurrency, self.duration(), self.args.max_requests, move |n| {
            let (http, url, request) = (http.clone(), url.clone(), request.clone());
            async move {
                let (token, query) = request(n);
                graphql(&http, &url, &token, &query, allowed).await
            }
        })
        .await;
        let upstream = (self.sandbox.requests() - before) as f64 / measured.latencies.len().max(1) as f64;
        if let Some(failure) = &measured.first_failure {
            eprintln!("kyc-bench: {}: {} failed requests, first: {failure}", spec.label, measured.failures);
        }
        Ok(Row {
            mode: spec.label.into(),
            rss_mb: gateway.peak_rss_mb(),
            upstream_per_query: Some(upstream),
            measured: Some(measured),
        })
    }

    /// The sandboxes' own REST rate for the same data.
    async fn raw<F, Fut>(&self, concurrency: usize, request: F) -> Row
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send,
    {
        let before = self.sandbox.requests();
        let measured = drive(concurrency, self.duration(), self.args.max_requests, request).await;
        let upstream = (self.sandbox.requests() - before) as f64 / measured.latencies.len().max(1) as f64;
        Row {
            mode: "raw (sandbox REST)".into(),
            measured: Some(measured),
            upstream_per_query: Some(upstream),
            rss_mb: None,
        }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.args.duration)
    }

    /// A list scenario (`mesh-100`, `n-plus-one`): `queries` cycled by one service token in every gateway mode (the
    /// cache warmed with them in `full`), then `raw` for the same data.
    async fn list<R>(&self, token: &str, queries: &[String], concurrency: usize, raw: R) -> anyhow::Result<Vec<Row>>
    where
        R: Fn(u64) -> RawFuture + Send + Sync + 'static,
    {
        let warm: Vec<(String, String)> = queries.iter().map(|q| (token.to_owned(), q.clone())).collect();
        let mut rows = Vec::new();
        for (mode, label) in
            [(Mode::Full, "full"), (Mode::NoCache, "no-cache"), (Mode::NoBatch, "no-batch (naive, sequential)")]
        {
            let spec = ModeSpec { warm: if mode == Mode::Full { &warm } else { &[] }, ..ModeSpec::new(mode, label) };
            let (token, queries) = (token.to_owned(), queries.to_vec());
            rows.push(
                self.mode(spec, concurrency, move |n| (token.clone(), queries[n as usize % queries.len()].clone()))
                    .await?,
            );
        }
        rows.push(self.raw(concurrency, raw).await);
        Ok(rows)
    }
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem}")
}

/// The report, and how many answers failed in all.
pub async fn run(args: Args) -> anyhow::Result<(String, u64)> {
    let settings = SandboxSettings { sumsub_get_limit: u32::MAX, ..SandboxSettings::default() };
    let sandbox = Sandbox::start(&settings).await.context("starting the sandbox providers")?;
    let latency = Duration::from_millis(args.latency_ms);
    let secret = kyc_gateway::secret::random_token();
    let users: Vec<String> = sandbox.fractal().population().users.iter().map(|u| u.uid.clone()).collect();
    // Users with data at every provider (Veriff's: every third user).
    let everywhere: Vec<String> = users.iter().step_by(30).cloned().collect();
    let me_tokens: Vec<String> = everywhere
        .iter()
        .map(|u| token(&secret, u, &format!("contact:read kyc_application:read {ITEMS}"), false))
        .collect();
    let service = token(&secret, "mesh", &format!("client.users:read verification.basic.details:read {ITEMS}"), true);
    let id_list = |from: usize, n: usize| -> String {
        users.iter().cycle().skip(from).take(n).map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", ")
    };
    let mesh: Vec<String> = (0..10)
        .map(|w| format!(r#"{{ users(ids: [{}]) {{ kycState(level: "basic") }} }}"#, id_list(w * 100, 100)))
        .collect();
    let n1: Vec<String> = (0..20)
        .map(|w| {
            format!(
                r#"{{ users(ids: [{}]) {{ verificationCases(level: "basic") {{ provider level details {{ fullName dateOfBirth }} }} }} }}"#,
                id_list(w * 50, 50)
            )
        })
        .collect();
    // The burst's large queries: 300 users with their state and their cases' details (cost 18,900 of the default
    // bound of 20,000).
    let large: Vec<String> = (0..4)
        .map(|w| {
            format!(
                r#"{{ users(ids: [{}]) {{ kycState(level: "basic") verificationCases(level: "basic") {{ provider level state details {{ fullName dateOfBirth }} }} }} }}"#,
                id_list(w * 300, 300)
            )
        })
        .collect();
    let raw = Arc::new(Raw::setup(&sandbox, &users).await?);
    // Latency from here on: the setup above (a token per user) is not part of any measurement.
    sandbox.set_faults(&Faults { latency_ms: args.latency_ms, ..Faults::default() });
    let wanted = |name: &str| match &args.scenario {
        Some(chosen) => chosen.iter().any(|s| s == name),
        None => name != "soak",
    };
    let variants = crate::variants(&args)?;
    // me-hot measures throughput and memory at 256 connections; the other scenarios measure latency, at a
    // concurrency that does not saturate the two cores the gateway shares with the sandboxes and the load driver.
    let concurrency = |default: usize| args.concurrency.unwrap_or(default);

    let mut failed = 0;
    let mut report = String::from("## kyc-bench\n\n");
    let _ = writeln!(report, "machine: {}", machine());
    let _ = writeln!(
        report,
        "injected provider latency: {} ms on each sandbox provider; {} s per mode, at most {} requests",
        args.latency_ms, args.duration, args.max_requests
    );

    let bench = Bench { sandbox: &sandbox, secret: &secret, args: &args };
    let me_request = |tokens: Vec<String>| move |n: u64| (tokens[n as usize % tokens.len()].clone(), ME.to_owned());
    let raw_me = || {
        let (raw, users) = (raw.clone(), everywhere.clone());
        move |n: u64| {
            let (raw, user) = (raw.clone(), users[n as usize % users.len()].clone());
            async move { raw.me(&user).await }
        }
    };
    let me_warm: Vec<(String, String)> = me_tokens.iter().map(|t| (t.clone(), ME.to_owned())).collect();
    let mut scenario = |title: &str, c: usize, rows: Vec<Row>| {
        failed += failures(&rows);
        report.push_str(&table(title, c, &rows, latency));
    };
    // The `i`-th window of `size` users, `windows` windows in a cycle.
    let window = |users: &[String], i: u64, size: usize, windows: usize| -> Vec<String> {
        users.iter().cycle().skip((i as usize % windows) * size).take(size).cloned().collect()
    };

    if wanted("me-hot") {
        let c = concurrency(256);
        let mut rows = Vec::new();
        for (label, exe) in &variants {
            let label = crate::labelled("full (cache warm)", label);
            let spec = ModeSpec { warm: &me_warm, exe: Some(exe), ..ModeSpec::new(Mode::Full, &label) };
            rows.push(bench.mode(spec, c, me_request(me_tokens.clone())).await?);
        }
        rows.push(bench.raw(c, raw_me()).await);
        scenario("me-hot: one user's profile from every provider, cache warm", c, rows);
    }
    if wanted("audit") {
        // me-hot answers emails, personal data: every answer leaves an audit record.
        let c = concurrency(256);
        let mut rows = Vec::new();
        for (label, setting) in [
            ("audit strict (each answer waits for its record's commit)", "strict"),
            ("audit buffered (records queued, answers at once)", "buffered"),
            ("audit off (nothing recorded)", "off"),
        ] {
            let extra = vec![("KYC_GATEWAY_AUDIT", setting.to_string())];
            let spec = ModeSpec { warm: &me_warm, extra: &extra, ..ModeSpec::new(Mode::Full, label) };
            rows.push(bench.mode(spec, c, me_request(me_tokens.clone())).await?);
        }
        scenario("audit: me-hot under each audit mode (every answer holds personal data)", c, rows);
    }
    if wanted("me-cold") {
        let c = concurrency(8);
        let cold = ModeSpec::new(Mode::NoCache, "full (cache off: every query cold)");
        let naive = ModeSpec::new(Mode::NoBatch, "no-batch (naive, sequential)");
        let rows = vec![
            bench.mode(cold, c, me_request(me_tokens.clone())).await?,
            bench.mode(naive, c, me_request(me_tokens.clone())).await?,
            bench.raw(c, raw_me()).await,
        ];
        scenario("me-cold: one user's profile from every provider, nothing cached", c, rows);
    }
    if wanted("mesh-100") {
        let c = concurrency(8);
        let (r, u) = (raw.clone(), users.clone());
        let raw_mesh = move |n: u64| -> RawFuture {
            let (raw, ids) = (r.clone(), window(&u, n, 100, 10));
            Box::pin(async move { raw.mesh(&ids).await })
        };
        let rows = bench.list(&service, &mesh, c, raw_mesh).await?;
        scenario("mesh-100: users(ids:) with 100 ids asking kycState", c, rows);
    }
    if wanted("n-plus-one") {
        let c = concurrency(8);
        let (r, u) = (raw.clone(), users.clone());
        let raw_cases = move |n: u64| -> RawFuture {
            let (raw, ids) = (r.clone(), window(&u, n, 50, 20));
            Box::pin(async move { raw.cases(&ids).await })
        };
        let rows = bench.list(&service, &n1, c, raw_cases).await?;
        scenario("n-plus-one: users -> verificationCases -> details for 50 users", c, rows);
    }
    if wanted("provider-down") {
        let c = concurrency(8);
        let timeouts = vec![
            ("KYC_GATEWAY_SILA_TIMEOUT_MS", "250".to_string()),
            ("KYC_GATEWAY_SILA_DEADLINE_MS", "300".to_string()),
        ];
        let mut no_breaker = timeouts.clone();
        no_breaker.push(("KYC_GATEWAY_SILA_BREAKER_THRESHOLD", "1000000000".into()));
        // Sila goes down after the warm-up, while the gateway holds its token: then every Sila call hangs until
        // Sila's timeout, and the breaker (if on) opens during the trip queries.
        let trip: Vec<(String, String)> = me_warm.iter().take(8).cloned().collect();
        let hang = Faults { latency_ms: args.latency_ms, timeout_rate: 1.0, ..Faults::default() };
        let healthy = Faults { latency_ms: args.latency_ms, ..Faults::default() };
        let mut rows = Vec::new();
        for (label, extra, down) in [
            ("healthy", &timeouts, false),
            ("Sila hangs, breaker off: each query waits for Sila's timeout", &no_breaker, true),
            ("Sila hangs, breaker on (measured after it opened)", &timeouts, true),
        ] {
            sandbox.sila().faults().set(healthy.clone());
            let spec = ModeSpec {
                extra,
                allowed: if down { Allowed::Provider("SILA") } else { Allowed::None },
                warm: &me_warm,
                then: down.then(|| Then { sila: hang.clone(), queries: &trip }),
                ..ModeSpec::new(Mode::NoCache, label)
            };
            rows.push(bench.mode(spec, c, me_request(me_tokens.clone())).await?);
        }
        sandbox.sila().faults().set(healthy);
        scenario("provider-down: me-cold while Sila hangs on every call (Sila timeout 250 ms)", c, rows);
    }
    if wanted("burst") {
        for (label, exe) in &variants {
            let (text, burst_failed) =
                crate::burst::run(&sandbox, &secret, &args, (label, exe), &service, &large, concurrency(32)).await?;
            failed += burst_failed;
            report.push_str(&text);
        }
    }
    if wanted("soak") {
        for (label, exe) in &variants {
            let (text, soak_failed) = crate::soak::run(&args, (label, exe), &sandbox, &secret, &everywhere).await?;
            failed += soak_failed;
            report.push_str(&text);
        }
    }
    if wanted("audit-replicas") {
        let (text, replicas_failed) =
            crate::replicas::run(&args, &sandbox, &secret, &everywhere, concurrency(256)).await?;
        failed += replicas_failed;
        report.push_str(&text);
    }
    Ok((report, failed))
}
