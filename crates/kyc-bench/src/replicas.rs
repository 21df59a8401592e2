//! `audit-replicas`: 1, 2 and 4 production-mode gateways appending to one audit chain in one PostgreSQL database,
//! loaded with `me` reads, audit `off` then `strict`: reads per second in all and per replica, strict ÷ off, and the
//! trail's bytes per record. Needs `KYC_BENCH_POSTGRES_URL`, a role that may create databases (`.ci/postgres.sh`
//! starts one); without it the scenario says so and is skipped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kyc_gateway::sandbox::Sandbox;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

use crate::audit_size::AuditSize;
use crate::gateway::{Gateway, Mode, Store};
use crate::load::drive;
use crate::scenarios::{graphql, token, Allowed, ITEMS, ME};
use crate::{ms, Args};

/// The variable naming the PostgreSQL server.
pub const POSTGRES_URL: &str = "KYC_BENCH_POSTGRES_URL";
/// How many replicas each row runs.
const REPLICAS: [usize; 3] = [1, 2, 4];

/// The report, and how many answers failed.
pub async fn run(
    args: &Args,
    sandbox: &Sandbox,
    secret: &str,
    users: &[String],
    concurrency: usize,
) -> anyhow::Result<(String, u64)> {
    let mut out = format!(
        "\n### audit-replicas: `me` reads (audit off, then strict; cache on) from 1, 2 and 4 replicas on one PostgreSQL \
         database (concurrency {concurrency} in all)\n\n"
    );
    let Some(admin_url) = std::env::var(POSTGRES_URL).ok().filter(|u| !u.is_empty()) else {
        let _ = writeln!(
            out,
            "skipped: {POSTGRES_URL} is not set (a PostgreSQL role that may create databases, e.g. from \
             `source .ci/postgres.sh && postgres_start`: KYC_GATEWAY_TEST_DATABASE_URL)."
        );
        return Ok((out, 0));
    };
    let mut admin = PgConnection::connect(&admin_url).await.with_context(|| format!("connecting to {POSTGRES_URL}"))?;
    let exe = std::env::current_exe()?;
    let scope = format!("contact:read kyc_application:read {ITEMS}");
    let tokens: Arc<Vec<String>> = Arc::new(users.iter().map(|u| token(secret, u, &scope, false)).collect());
    out.push_str(
        "| replicas | audit | reads/s in all | per replica | p50 ms | p99 ms | records added | audit bytes per record \
         | per added record | strict ÷ off | failed |\n",
    );
    out.push_str("| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let mut failed = 0;
    for replicas in REPLICAS {
        // The same replicas recording nothing first: what the machine gives them, for the trail's share of the cost.
        let mut off_rate = None;
        for audit in ["off", "strict"] {
            let name = format!("kyc_bench_{}_{}_{replicas}", std::process::id(), kyc_gateway::secret::random_token());
            let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(60).collect();
            sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await?;
            let mut url = reqwest::Url::parse(&admin_url).context("parsing the PostgreSQL URL")?;
            url.set_path(&format!("/{name}"));
            let run = Run { replicas, audit, off_rate };
            let measured = measure(args, sandbox, secret, url.as_str(), &exe, run, &tokens, concurrency).await;
            let dropped =
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut admin).await;
            let (row, rate, row_failed) = measured?;
            dropped?;
            off_rate = Some(rate);
            out.push_str(&row);
            failed += row_failed;
        }
    }
    admin.close().await?;
    let _ = writeln!(
        out,
        "\nbytes per record: every `audit*` table with its indexes (`pg_total_relation_size`) over the rows of \
         `audit_records`, warm-up and the empty tables' pages included; per added record: what the tables grew by \
         during the measured load, over the records it added."
    );
    Ok((out, failed))
}

/// One row's gateways: how many, their audit mode, and the rate of the same ones with audit off (for a strict row).
struct Run {
    replicas: usize,
    audit: &'static str,
    off_rate: Option<f64>,
}

/// One row: `run.replicas` gateways on the database at `url`, warmed, then loaded together; the row and its rate.
#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &Args,
    sandbox: &Sandbox,
    secret: &str,
    url: &str,
    exe: &std::path::Path,
    Run { replicas, audit, off_rate }: Run,
    tokens: &Arc<Vec<String>>,
    concurrency: usize,
) -> anyhow::Result<(String, f64, u64)> {
    let store = Store::prepare(sandbox, url).await?;
    let mode = [("KYC_GATEWAY_AUDIT", audit.to_string())];
    let gateways = (0..replicas)
        .map(|_| Gateway::start_on(exe, sandbox, &store, Mode::Full, secret, &mode))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    for gateway in &gateways {
        for token in tokens.iter() {
            graphql(&http, &gateway.url, token, ME, Allowed::None)
                .await
                .map_err(|e| anyhow::anyhow!("warming a replica: {}", e.chars().take(400).collect::<String>()))?;
        }
    }
    let mut db = PgConnection::connect(url).await?;
    let before = crate::audit_size::postgres(&mut db).await?;
    let urls: Arc<Vec<String>> = Arc::new(gateways.iter().map(|g| g.url.clone()).collect());
    let answered: Arc<Vec<AtomicU64>> = Arc::new((0..replicas).map(|_| AtomicU64::new(0)).collect());
    let (tokens, counts) = (tokens.clone(), answered.clone());
    let measured = drive(concurrency, Duration::from_secs_f64(args.duration), args.max_requests, move |n| {
        let (http, urls, tokens, counts) = (http.clone(), urls.clone(), tokens.clone(), counts.clone());
        async move {
            let replica = n as usize % urls.len();
            let token = &tokens[(n as usize / urls.len()) % tokens.len()];
            graphql(&http, &urls[replica], token, ME, Allowed::None).await?;
            counts[replica].fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    })
    .await;
    drop(gateways);
    let after: AuditSize = crate::audit_size::postgres(&mut db).await?;
    db.close().await?;
    if let Some(failure) = &measured.first_failure {
        eprintln!("kyc-bench: audit-replicas ({replicas}): {} failed requests, first: {failure}", measured.failures);
    }
    let seconds = measured.elapsed.as_secs_f64();
    let each: Vec<String> =
        answered.iter().map(|c| format!("{:.0}", c.load(Ordering::Relaxed) as f64 / seconds)).collect();
    let added = after.records - before.records;
    let per_added = (added > 0).then(|| (after.bytes - before.bytes) as f64 / added as f64);
    let ratio = off_rate.filter(|off| *off > 0.0).map_or("-".into(), |off| format!("{:.2}", measured.rate() / off));
    let row = format!(
        "| {replicas} | {audit} | {:.0} | {} | {} | {} | {} | {} | {} | {ratio} | {} |\n",
        measured.rate(),
        each.join(", "),
        ms(measured.percentile(0.5)),
        ms(measured.percentile(0.99)),
        added,
        after.per_record().map_or("-".into(), |b| format!("{b:.0}")),
        per_added.map_or("-".into(), |b| format!("{b:.0}")),
        measured.failures,
    );
    Ok((row, measured.rate(), measured.failures))
}
