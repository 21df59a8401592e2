//! The scenarios, their modes, and the report.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kyc_gateway::sandbox::faults::Faults;
use kyc_gateway::sandbox::{Sandbox, SandboxConfig};
use serde_json::{json, Value};

use crate::gateway::{Gateway, Mode, ISSUER};
use crate::load::{drive, Measured};
use crate::raw::Raw;
use crate::{ms, Args};

const ITEMS: &str = "verification.uniqueness:read verification.basic:read verification.plus:read \
    verification.liveness:read verification.selfie:read verification.sow:read verification.ssn:read \
    verification.wallet-eth:read";
const ME: &str =
    "{ me { emails { address } verificationCases { provider level state } kycApplications { status state } } }";

fn token(secret: &str, sub: &str, scope: &str, client: bool) -> String {
    let mut claims = json!({ "iss": ISSUER, "sub": sub, "exp": 4_000_000_000u64, "scope": scope });
    if client {
        claims["client_id"] = sub.into();
    }
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("signs")
}

/// Which errors an answer may carry: none, or only those of one provider that is down on purpose.
#[derive(Clone, Copy)]
enum Allowed {
    None,
    Provider(&'static str),
}

async fn graphql(http: &reqwest::Client, url: &str, token: &str, query: &str, allowed: Allowed) -> Result<(), String> {
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

/// One gateway mode of a scenario: start, warm up, measure, stop.
#[allow(clippy::too_many_arguments)]
async fn measure_mode<Q>(
    sandbox: &Sandbox,
    secret: &str,
    mode: Mode,
    label: &str,
    extra: &[(&str, String)],
    args: &Args,
    concurrency: usize,
    allowed: Allowed,
    warm: &[(String, String)],
    request: Q,
) -> anyhow::Result<Row>
where
    Q: Fn(u64) -> (String, String) + Send + Sync + 'static,
{
    measure_mode_after(sandbox, secret, mode, label, extra, args, concurrency, allowed, warm, None, request).await
}

/// A fault that starts after the warm-up, and the queries that run under it before measuring (to open a breaker).
struct Then<'a> {
    sila: Faults,
    queries: &'a [(String, String)],
}

#[allow(clippy::too_many_arguments)]
async fn measure_mode_after<Q>(
    sandbox: &Sandbox,
    secret: &str,
    mode: Mode,
    label: &str,
    extra: &[(&str, String)],
    args: &Args,
    concurrency: usize,
    allowed: Allowed,
    warm: &[(String, String)],
    then: Option<Then<'_>>,
    request: Q,
) -> anyhow::Result<Row>
where
    Q: Fn(u64) -> (String, String) + Send + Sync + 'static,
{
    let gateway = Gateway::start(sandbox, mode, secret, extra)?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    for (token, query) in warm {
        let _ = graphql(&http, &gateway.url, token, query, Allowed::None).await;
    }
    if let Some(then) = &then {
        sandbox.sila.faults().set(then.sila.clone());
        let trips = then.queries.iter().map(|(token, query)| graphql(&http, &gateway.url, token, query, allowed));
        futures_util::future::join_all(trips).await;
    }
    let before = sandbox.requests();
    let url = gateway.url.clone();
    let request = Arc::new(request);
    let measured = drive(concurrency, Duration::from_secs_f64(args.duration), args.max_requests, move |n| {
        let (http, url, request) = (http.clone(), url.clone(), request.clone());
        async move {
            let (token, query) = request(n);
            graphql(&http, &url, &token, &query, allowed).await
        }
    })
    .await;
    let upstream = (sandbox.requests() - before) as f64 / measured.latencies.len().max(1) as f64;
    if let Some(failure) = &measured.first_failure {
        eprintln!("kyc-bench: {label}: {} failed requests, first: {failure}", measured.failures);
    }
    Ok(Row {
        mode: label.into(),
        rss_mb: gateway.peak_rss_mb(),
        upstream_per_query: Some(upstream),
        measured: Some(measured),
    })
}

async fn measure_raw<F, Fut>(sandbox: &Sandbox, args: &Args, concurrency: usize, request: F) -> Row
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let before = sandbox.requests();
    let measured = drive(concurrency, Duration::from_secs_f64(args.duration), args.max_requests, request).await;
    let upstream = (sandbox.requests() - before) as f64 / measured.latencies.len().max(1) as f64;
    Row {
        mode: "raw (sandbox REST)".into(),
        measured: Some(measured),
        upstream_per_query: Some(upstream),
        rss_mb: None,
    }
}

fn machine() -> String {
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
    let mut config = SandboxConfig::default();
    config.sumsub.get_limit = u32::MAX;
    let sandbox = Sandbox::start(&config).await.context("starting the sandbox providers")?;
    let latency = Duration::from_millis(args.latency_ms);
    let secret = kyc_gateway::secret::random_token();
    let users: Vec<String> = sandbox.fractal.population().users.iter().map(|u| u.uid.clone()).collect();
    // Users with data at all four providers.
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
    let raw = Arc::new(Raw::setup(&sandbox, &users).await?);
    // Latency from here on: the setup above (a token per user) is not part of any measurement.
    sandbox.set_faults(&Faults { latency_ms: args.latency_ms, ..Faults::default() });
    let wanted = |name: &str| args.scenario.as_deref().is_none_or(|s| s == name);
    // me-hot measures throughput and memory at 256 connections; the other scenarios measure latency, at a
    // concurrency that does not saturate the two cores the gateway shares with the sandboxes and the load driver.
    let concurrency = |default: usize| args.concurrency.unwrap_or(default);

    let mut failed = 0;
    let mut report = String::from("## kyc-bench\n\n");
    let _ = writeln!(report, "machine: {}", machine());
    let _ = writeln!(
        report,
        "injected provider latency: {} ms on each of the four sandbox providers; {} s per mode, at most {} requests",
        args.latency_ms, args.duration, args.max_requests
    );

    let me_request = |tokens: Vec<String>| move |n: u64| (tokens[n as usize % tokens.len()].clone(), ME.to_owned());
    let me_warm: Vec<(String, String)> = me_tokens.iter().map(|t| (t.clone(), ME.to_owned())).collect();

    if wanted("me-hot") {
        let c = concurrency(256);
        let mut rows = Vec::new();
        rows.push(
            measure_mode(
                &sandbox,
                &secret,
                Mode::Full,
                "full (cache warm)",
                &[],
                &args,
                c,
                Allowed::None,
                &me_warm,
                me_request(me_tokens.clone()),
            )
            .await?,
        );
        let (raw, users) = (raw.clone(), everywhere.clone());
        rows.push(
            measure_raw(&sandbox, &args, c, move |n| {
                let (raw, user) = (raw.clone(), users[n as usize % users.len()].clone());
                async move { raw.me(&user).await }
            })
            .await,
        );
        failed += failures(&rows);
        report.push_str(&table("me-hot: one user's profile from all four providers, cache warm", c, &rows, latency));
    }
    if wanted("me-cold") {
        let c = concurrency(8);
        let mut rows = Vec::new();
        rows.push(
            measure_mode(
                &sandbox,
                &secret,
                Mode::NoCache,
                "full (cache off: every query cold)",
                &[],
                &args,
                c,
                Allowed::None,
                &[],
                me_request(me_tokens.clone()),
            )
            .await?,
        );
        rows.push(
            measure_mode(
                &sandbox,
                &secret,
                Mode::NoBatch,
                "no-batch (naive, sequential)",
                &[],
                &args,
                c,
                Allowed::None,
                &[],
                me_request(me_tokens.clone()),
            )
            .await?,
        );
        let (raw, users) = (raw.clone(), everywhere.clone());
        rows.push(
            measure_raw(&sandbox, &args, c, move |n| {
                let (raw, user) = (raw.clone(), users[n as usize % users.len()].clone());
                async move { raw.me(&user).await }
            })
            .await,
        );
        failed += failures(&rows);
        report.push_str(&table(
            "me-cold: one user's profile from all four providers, nothing cached",
            c,
            &rows,
            latency,
        ));
    }
    if wanted("mesh-100") {
        let c = concurrency(8);
        let mut rows = Vec::new();
        for (mode, label) in
            [(Mode::Full, "full"), (Mode::NoCache, "no-cache"), (Mode::NoBatch, "no-batch (naive, sequential)")]
        {
            let (service, mesh) = (service.clone(), mesh.clone());
            let warm: Vec<(String, String)> = if mode == Mode::Full {
                mesh.iter().map(|q| (service.clone(), q.clone())).collect()
            } else {
                Vec::new()
            };
            rows.push(
                measure_mode(&sandbox, &secret, mode, label, &[], &args, c, Allowed::None, &warm, move |n| {
                    (service.clone(), mesh[n as usize % mesh.len()].clone())
                })
                .await?,
            );
        }
        let (raw, users) = (raw.clone(), users.clone());
        rows.push(
            measure_raw(&sandbox, &args, c, move |n| {
                let raw = raw.clone();
                let window: Vec<String> =
                    users.iter().cycle().skip((n as usize % 10) * 100).take(100).cloned().collect();
                async move { raw.mesh(&window).await }
            })
            .await,
        );
        failed += failures(&rows);
        report.push_str(&table("mesh-100: users(ids:) with 100 ids asking kycState", c, &rows, latency));
    }
    if wanted("n-plus-one") {
        let c = concurrency(8);
        let mut rows = Vec::new();
        for (mode, label) in
            [(Mode::Full, "full"), (Mode::NoCache, "no-cache"), (Mode::NoBatch, "no-batch (naive, sequential)")]
        {
            let (service, n1) = (service.clone(), n1.clone());
            let warm: Vec<(String, String)> =
                if mode == Mode::Full { n1.iter().map(|q| (service.clone(), q.clone())).collect() } else { Vec::new() };
            rows.push(
                measure_mode(&sandbox, &secret, mode, label, &[], &args, c, Allowed::None, &warm, move |n| {
                    (service.clone(), n1[n as usize % n1.len()].clone())
                })
                .await?,
            );
        }
        let (raw, users) = (raw.clone(), users.clone());
        rows.push(
            measure_raw(&sandbox, &args, c, move |n| {
                let raw = raw.clone();
                let window: Vec<String> = users.iter().cycle().skip((n as usize % 20) * 50).take(50).cloned().collect();
                async move { raw.cases(&window).await }
            })
            .await,
        );
        failed += failures(&rows);
        report.push_str(&table("n-plus-one: users -> verificationCases -> details for 50 users", c, &rows, latency));
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
        // Sila's timeout, and the breaker (if on) opens after the trip queries.
        let warm: Vec<(String, String)> = me_tokens.iter().map(|t| (t.clone(), ME.to_owned())).collect();
        let trip: Vec<(String, String)> = me_tokens.iter().take(8).map(|t| (t.clone(), ME.to_owned())).collect();
        let hang = Faults { latency_ms: args.latency_ms, timeout_rate: 1.0, ..Faults::default() };
        let healthy = Faults { latency_ms: args.latency_ms, ..Faults::default() };
        let mut rows = Vec::new();
        for (label, extra, down) in [
            ("healthy", &timeouts, false),
            ("Sila hangs, breaker off: each query waits for Sila's timeout", &no_breaker, true),
            ("Sila hangs, breaker on (measured after it opened)", &timeouts, true),
        ] {
            sandbox.sila.faults().set(healthy.clone());
            let then = down.then(|| Then { sila: hang.clone(), queries: &trip });
            let allowed = if down { Allowed::Provider("SILA") } else { Allowed::None };
            let request = me_request(me_tokens.clone());
            rows.push(
                measure_mode_after(
                    &sandbox,
                    &secret,
                    Mode::NoCache,
                    label,
                    extra,
                    &args,
                    c,
                    allowed,
                    &warm,
                    then,
                    request,
                )
                .await?,
            );
        }
        sandbox.sila.faults().set(healthy);
        failed += failures(&rows);
        report.push_str(&table(
            "provider-down: me-cold while Sila hangs on every call (Sila timeout 250 ms)",
            c,
            &rows,
            latency,
        ));
    }
    Ok((report, failed))
}
