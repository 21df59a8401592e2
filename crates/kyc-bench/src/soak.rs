//! `soak`: the gateway's resident set over a long run of `me` queries, in both modes: sandbox mode as `cargo run`
//! starts it (its own sandbox providers, its in-memory database with bounded audit retention), and production mode as
//! the other scenarios run it (a SQLite file, audit `strict`). The resident set is read after every tenth of the run,
//! so growth per 100k requests shows whether anything is kept per request.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use kyc_gateway::auth::token::{mint_dev_token, Subject};
use kyc_gateway::sandbox::Sandbox;
use kyc_gateway::secret::Secret;

use crate::gateway::{Gateway, Mode};
use crate::load::drive;
use crate::scenarios::{graphql, token, Allowed, ITEMS, ME};
use crate::{ms, Args};

/// How far the resident set may move between the first tenth of the run and its end (BENCHMARKS.md, Targets).
const WITHIN_MB: f64 = 64.0;
/// How many readings the run is cut into.
const STEPS: u64 = 10;

/// The soak's reports for the gateway of `exe`, sandbox mode then production mode, and how many answers failed.
pub async fn run(
    args: &Args,
    (label, exe): (&str, &Path),
    sandbox: &Sandbox,
    secret: &str,
    users: &[String],
) -> anyhow::Result<(String, u64)> {
    let scope = format!("contact:read kyc_application:read {ITEMS}");

    let dev_secret = kyc_gateway::secret::random_token();
    let gateway = Gateway::sandbox_mode(exe, &dev_secret)?;
    let tokens: Vec<String> = users
        .iter()
        .map(|u| mint_dev_token(&Secret::new(dev_secret.as_str()), &Subject::User(u.clone()), &scope, 24 * 3600))
        .collect();
    let title = crate::labelled("a sandbox-mode gateway (in-memory database)", label);
    let (mut out, mut failed) = soak(args, &gateway, &tokens, &title).await?;
    drop(gateway);

    let strict = [("KYC_GATEWAY_AUDIT", "strict".to_string())];
    let mut gateway = Gateway::start_from(exe, sandbox, Mode::Full, secret, &strict).await?;
    let tokens: Vec<String> = users.iter().map(|u| token(secret, u, &scope, false)).collect();
    let title = crate::labelled("a production-mode gateway (SQLite file, audit strict, cache on)", label);
    let (text, production_failed) = soak(args, &gateway, &tokens, &title).await?;
    out.push_str(&text);
    failed += production_failed;
    gateway.stop();
    if let Some(database) = gateway.database() {
        match crate::audit_size::sqlite(database).await {
            Ok(size) => {
                let _ = writeln!(out, "\non disk (SQLite, after a checkpoint): {}.", size.describe("database + WAL"));
            }
            Err(e) => eprintln!("kyc-bench: soak: measuring the SQLite file: {e:#}"),
        }
    }
    Ok((out, failed))
}

/// One gateway's soak: warm every user, then `--soak-requests` queries in tenths, the resident set after each.
async fn soak(args: &Args, gateway: &Gateway, tokens: &[String], title: &str) -> anyhow::Result<(String, u64)> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    for token in tokens {
        graphql(&http, &gateway.url, token, ME, Allowed::None)
            .await
            .map_err(|e| anyhow::anyhow!("warming the soak's users: {}", e.chars().take(400).collect::<String>()))?;
    }
    let concurrency = args.concurrency.unwrap_or(64);
    let step = (args.soak_requests / STEPS).max(1);
    let start = gateway.rss_mb().unwrap_or(0.0);
    let mut out = format!("\n### soak: {} `me` queries to {title} (concurrency {concurrency})\n\n", step * STEPS);
    out.push_str("| requests | req/s | p50 ms | p99 ms | RSS MB | growth per 100k requests MB | failed |\n");
    out.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let _ = writeln!(out, "| 0 (warmed) | - | - | - | {start:.1} | - | 0 |");
    let (mut readings, mut failed) = (vec![(0u64, start)], 0);
    for i in 1..=STEPS {
        let (client, url, tokens) = (http.clone(), gateway.url.clone(), tokens.to_vec());
        let measured = drive(concurrency, Duration::from_secs(24 * 3600), step, move |n| {
            let (http, url, token) = (client.clone(), url.clone(), tokens[n as usize % tokens.len()].clone());
            async move { graphql(&http, &url, &token, ME, Allowed::None).await }
        })
        .await;
        if let Some(failure) = &measured.first_failure {
            eprintln!("kyc-bench: soak: {} failed requests, first: {failure}", measured.failures);
        }
        failed += measured.failures;
        let rss = gateway.rss_mb().unwrap_or(0.0);
        let previous = readings.last().map_or(start, |r| r.1);
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {rss:.1} | {:+.2} | {} |",
            i * step,
            measured.rate(),
            ms(measured.percentile(0.5)),
            ms(measured.percentile(0.99)),
            (rss - previous) * 100_000.0 / step as f64,
            measured.failures,
        );
        readings.push((i * step, rss));
    }
    let first = readings.get(1).map_or(start, |r| r.1);
    let last = readings.last().map_or(start, |r| r.1);
    let peak = gateway.peak_rss_mb().unwrap_or(0.0);
    let _ = writeln!(
        out,
        "\nafter {} requests: {last:.1} MB resident (peak {peak:.1} MB); after the first {step}: {first:.1} MB; \
         {:+.1} MB since, within {WITHIN_MB} MB: {}; growth over the last half: {:+.2} MB per 100k requests.",
        step * STEPS,
        last - first,
        if (last - first).abs() <= WITHIN_MB { "yes" } else { "no" },
        growth_of_last_half(&readings),
    );
    Ok((out, failed))
}

/// The resident set's growth per 100k requests over the second half of the readings (the first half includes the
/// growth of warming up: caches, pools and the audit trail filling to their bounds).
fn growth_of_last_half(readings: &[(u64, f64)]) -> f64 {
    let half = &readings[readings.len() / 2..];
    match (half.first(), half.last()) {
        (Some((r0, m0)), Some((r1, m1))) if r1 > r0 => (m1 - m0) * 100_000.0 / (r1 - r0) as f64,
        _ => 0.0,
    }
}
