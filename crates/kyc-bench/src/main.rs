//! `kyc-bench`: the gateway under load against the sandbox providers, in one run (what it reports: BENCHMARKS.md). The
//! sandboxes run in this process; the gateway runs as a child (this binary again, `gateway-child`) once per mode, so
//! its peak RSS is its own. `--peers` compares it with Hive Gateway and Tailcall instead (see `peers`).

mod audit_size;
mod burst;
mod floor;
mod gateway;
mod load;
mod peers;
mod procfs;
mod raw;
mod replicas;
mod scenarios;
mod soak;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(name = "kyc-bench", about = "Benchmarks the gateway against the sandbox providers")]
pub struct Args {
    /// Run these scenarios (comma-separated: me-hot, audit, me-cold, mesh-100, n-plus-one, provider-down, burst,
    /// soak, audit-replicas); all but soak when absent (audit-replicas needs KYC_BENCH_POSTGRES_URL).
    #[arg(long, value_delimiter = ',')]
    pub scenario: Option<Vec<String>>,
    /// `soak`: this many `me` queries to a sandbox-mode gateway, then as many to a production-mode one, each one's
    /// resident set read after every tenth of them.
    #[arg(long, default_value_t = 1_000_000)]
    pub soak_requests: u64,
    /// Also runs me-hot, burst and soak with the gateway of another kyc-bench binary, `LABEL=PATH` (repeatable), e.g.
    /// one built from another commit or with another allocator: a row or table each, in the same run.
    #[arg(long = "variant", value_parser = variant)]
    pub variants: Vec<(String, std::path::PathBuf)>,
    /// Seconds per mode.
    #[arg(long, default_value_t = 8.0)]
    pub duration: f64,
    /// Concurrent connections; each scenario's own default when absent (me-hot and audit 256, burst 32, others 8).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// At most this many requests per mode.
    #[arg(long, default_value_t = 200_000)]
    pub max_requests: u64,
    /// Injected provider latency, milliseconds.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Compares kyc-gateway with Hive Gateway and Tailcall (installed from bench/ with `npm ci`) and a bare axum
    /// handler, instead of running the scenarios; `--concurrency` then overrides both shapes' defaults (50 and 16).
    #[arg(long)]
    pub peers: bool,
    /// Where the peers' configurations and lock file are (`--peers`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench"))]
    pub peers_dir: std::path::PathBuf,
    /// Seconds of unmeasured load before each measured row (`--peers`: Node's JIT and every cache warm up).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// `--peers` measures only these peers besides kyc-gateway (comma-separated: hive, tailcall, floor), e.g. to
    /// measure an optimisation of the gateway against its floor without starting Node.js; all when absent.
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// Runs the gateway (internal: the benchmark starts itself this way), writing its address to this file.
    #[arg(long, hide = true)]
    pub gateway_child: Option<std::path::PathBuf>,
    /// Runs the floor of `--peers` (internal), writing its address to this file.
    #[arg(long, hide = true)]
    pub floor_child: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(addr_file) = &args.gateway_child {
        return kyc_gateway::cli::serve(Some("127.0.0.1:0".parse().expect("a socket address")), Some(addr_file));
    }
    if let Some(addr_file) = &args.floor_child {
        return floor::serve(addr_file);
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let run = async {
        match args.peers {
            true => peers::run(args).await,
            false => scenarios::run(args).await,
        }
    };
    match runtime.block_on(run) {
        Ok((report, failed)) => {
            println!("{report}");
            if failed > 0 {
                eprintln!("kyc-bench: {failed} answers failed (see above)");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kyc-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn variant(text: &str) -> Result<(String, std::path::PathBuf), String> {
    let (label, path) = text.split_once('=').ok_or("give LABEL=PATH, a name for the row and a kyc-bench binary")?;
    let path = std::path::PathBuf::from(path);
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    Ok((label.trim().to_owned(), path))
}

/// The gateways to measure: this binary's (unlabelled), then each `--variant`.
pub fn variants(args: &Args) -> anyhow::Result<Vec<(String, std::path::PathBuf)>> {
    let mut all = vec![(String::new(), std::env::current_exe()?)];
    all.extend(args.variants.iter().cloned());
    Ok(all)
}

/// `text`, then ` [label]` when a variant has one.
pub fn labelled(text: &str, label: &str) -> String {
    match label {
        "" => text.to_owned(),
        label => format!("{text} [{label}]"),
    }
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}
