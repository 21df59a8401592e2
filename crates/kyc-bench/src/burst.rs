//! `burst`: whether the gateway gives its memory back after a burst of large queries (BENCHMARKS.md, "Targets"). Its
//! cache is warmed with the burst's queries first, so the idle level holds what the cache keeps by design and the burst
//! adds only the memory of the queries in flight, which a gateway should return.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::gateway::{Gateway, Mode};
use crate::load::drive;
use crate::scenarios::{graphql, Allowed};
use crate::{ms, Args};
use kyc_gateway::sandbox::Sandbox;

/// How long the gateway is watched after the burst.
const WATCH: Duration = Duration::from_secs(10);
/// How often its resident set is read meanwhile (every fourth reading is printed).
const EVERY: Duration = Duration::from_millis(500);
/// How long an idle gateway is left alone before its resident set counts as its idle level: long enough for the
/// allocator to return what the warm-up freed (`.cargo/config.toml`: jemalloc's decay), so that is not counted.
const SETTLE: Duration = Duration::from_secs(12);
/// The target: at most this multiple of the idle level at the end of `WATCH`.
const WITHIN: f64 = 2.0;

/// The burst's report, and how many of its answers failed.
pub async fn run(
    sandbox: &Sandbox,
    secret: &str,
    args: &Args,
    (label, exe): (&str, &std::path::Path),
    token: &str,
    queries: &[String],
    concurrency: usize,
) -> anyhow::Result<(String, u64)> {
    anyhow::ensure!(args.duration >= 1.0, "the burst needs --duration of at least 1 s");
    let gateway = Gateway::start_from(exe, sandbox, Mode::Full, secret, &[]).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    for query in queries {
        graphql(&http, &gateway.url, token, query, Allowed::None)
            .await
            .map_err(|e| anyhow::anyhow!("warming the burst's queries: {}", e.chars().take(400).collect::<String>()))?;
    }
    tokio::time::sleep(SETTLE).await;
    let idle = gateway.rss_mb().unwrap_or(0.0);
    let (url, token, list) = (gateway.url.clone(), token.to_owned(), queries.to_vec());
    let client = http.clone();
    let measured = drive(concurrency, Duration::from_secs_f64(args.duration), args.max_requests, move |n| {
        let (http, url, token, query) =
            (client.clone(), url.clone(), token.clone(), list[n as usize % list.len()].clone());
        async move { graphql(&http, &url, &token, &query, Allowed::None).await }
    })
    .await;
    if let Some(failure) = &measured.first_failure {
        eprintln!("kyc-bench: burst: {} failed requests, first: {failure}", measured.failures);
    }
    // The client's idle connections are the gateway's too: closed, as a burst's clients would go away.
    drop(http);
    let ended = Instant::now();
    let mut samples = vec![(Duration::ZERO, gateway.rss_mb().unwrap_or(0.0))];
    while ended.elapsed() < WATCH {
        tokio::time::sleep(EVERY).await;
        samples.push((ended.elapsed(), gateway.rss_mb().unwrap_or(0.0)));
    }
    // VmHWM is sampled by the kernel in steps (proc(5)); a reading of VmRSS may pass it.
    let peak = samples.iter().map(|(_, mb)| *mb).fold(gateway.peak_rss_mb().unwrap_or(0.0), f64::max);
    let ratio = |mb: f64| if idle > 0.0 { format!("{:.2}", mb / idle) } else { "-".into() };

    let mut out = format!(
        "\n### burst: memory after {} s of large queries{} (concurrency {concurrency})\n\n",
        args.duration,
        if label.is_empty() { String::new() } else { format!(" [{label}]") }
    );
    let _ = writeln!(
        out,
        "{} queries of {} users each at {:.0} req/s (p50 {} ms, p99 {} ms), {} failed; the cache warmed with every \
         query first.\n",
        measured.latencies.len(),
        queries.first().map_or(0, |q| q.matches("\", \"").count() + 1),
        measured.rate(),
        ms(measured.percentile(0.5)),
        ms(measured.percentile(0.99)),
        measured.failures,
    );
    out.push_str("| when | gateway RSS MB | ÷ idle |\n| --- | ---: | ---: |\n");
    let _ = writeln!(out, "| idle, before the burst | {idle:.1} | 1.00 |");
    let _ = writeln!(out, "| peak (VmHWM) | {peak:.1} | {} |", ratio(peak));
    for (i, (at, mb)) in samples.iter().enumerate() {
        if i % 4 == 0 || i + 1 == samples.len() {
            let _ = writeln!(out, "| {:.1} s after the burst | {mb:.1} | {} |", at.as_secs_f64(), ratio(*mb));
        }
    }
    let back = samples.iter().find(|(_, mb)| *mb <= idle * WITHIN).map(|(at, _)| *at);
    let last = samples.last().map_or(0.0, |(_, mb)| *mb);
    let _ = writeln!(
        out,
        "\nwithin {WITHIN}x of idle {} s after the burst: {} ({}).",
        WATCH.as_secs(),
        if last <= idle * WITHIN { "yes" } else { "no" },
        match back {
            Some(at) => format!("first sample within it: {:.1} s after", at.as_secs_f64()),
            None => "no sample within it".into(),
        }
    );
    Ok((out, measured.failures))
}
