//! The command line: `serve` (the default), `sandbox`, `token`, `sdl`, `migrate`, `directory import`, `audit verify`,
//! `audit export` and `audit keygen`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::audit::checkpoint::{Checkpoint, PublicKeys};
use crate::auth::token::{mint_dev_token, mint_hs256, Subject, DEFAULT_DEV_SECRET};
use crate::config::Mode;
use crate::secret::Secret;
use crate::{App, Config};

#[derive(Parser)]
#[command(name = "kyc-gateway", version, about = "One GraphQL API in front of several KYC providers")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (what a bare `kyc-gateway` does). Without a configured provider, starts the sandbox.
    Serve {
        /// Address to listen on [env: KYC_GATEWAY_LISTEN; default 127.0.0.1:8080].
        #[arg(long, value_parser = crate::config::socket_addr)]
        listen: Option<SocketAddr>,
        /// Write the bound address to this file once listening (for scripts and tests that start it on port 0).
        #[arg(long)]
        addr_file: Option<PathBuf>,
    },
    /// Serve only the sandbox providers, and print the variables a production-mode gateway needs to use them.
    #[cfg(feature = "sandbox")]
    Sandbox(SandboxArgs),
    /// Print a token: a dev token that a sandbox-mode server accepts (signed with KYC_GATEWAY_DEV_SECRET), or, when
    /// KYC_GATEWAY_JWT_ISSUER and KYC_GATEWAY_JWT_SECRET are set, one of that shared-secret issuer.
    Token {
        /// The user id the token speaks for (a user token).
        #[arg(long, required_unless_present = "client", conflicts_with = "client")]
        sub: Option<String>,
        /// Mint a client (service) token for this client name instead of a user token.
        #[arg(long)]
        client: Option<String>,
        /// Space-separated scopes, e.g. "uid:read contact:read verification.plus:read".
        #[arg(long, default_value = "")]
        scope: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Print the schema SDL (the checked-in schema.graphql).
    Sdl,
    /// Bring the database (KYC_GATEWAY_DATABASE_URL) up to this version's schema, and nothing else.
    Migrate,
    /// The directory of users and their provider links.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// The audit trail (KYC_GATEWAY_DATABASE_URL).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit trail's hash chain; names the first record that was altered, removed or moved. With --key,
    /// also checks every signed checkpoint (its signature, and that the records hash to its head).
    Verify(VerifyArgs),
    /// Print a new Ed25519 key pair for signing checkpoints: the signing key's variables, and the public key for
    /// `audit verify --key`.
    Keygen {
        /// The key id checkpoints name the key by (1 to 64 of A-Z a-z 0-9 . _ -), e.g. `2026-01`.
        #[arg(long)]
        id: String,
    },
    /// Write the records from a time on as JSON lines (for a SIEM).
    Export {
        /// RFC 3339 (`2026-01-01T00:00:00Z`) or unix seconds.
        #[arg(long)]
        since: String,
    },
}

/// `kyc-gateway audit verify`'s options.
#[derive(clap::Args)]
struct VerifyArgs {
    /// A checkpoint public key, `ID=BASE64` (repeatable: every key id the retained trail was signed with).
    #[arg(long = "key")]
    keys: Vec<String>,
    /// A file of public keys, one `ID=BASE64` a line (`#` comments and blank lines ignored).
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// The witness file (or an `audit export`): its checkpoints are checked too, also those gone from the database.
    #[arg(long = "witness")]
    witnesses: Vec<PathBuf>,
    /// With keys, pass a trail no signed checkpoint covers yet (younger than its first checkpoint).
    #[arg(long)]
    allow_unsigned: bool,
}

/// The longest keys or witness file `audit verify` reads.
const VERIFY_FILE_MAX: u64 = 1 << 30;

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Import users and provider references from a JSON file; idempotent (a stored link is never overwritten).
    Import {
        /// `[{"user_id": "...", <each provider's fields>}]`; the fields are listed in docs/configuration.md.
        file: PathBuf,
    },
}

/// `kyc-gateway sandbox`'s options.
#[cfg(feature = "sandbox")]
#[derive(clap::Args)]
struct SandboxArgs {
    /// The address the providers listen on (`0.0.0.0` to be reached from other machines).
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// The host name in the base URLs it prints, when other machines reach it by another name.
    #[arg(long)]
    advertise: Option<String>,
    /// A provider's port, `PROVIDER=PORT` (repeatable, e.g. `--port <provider>=9001`); free ports for the others.
    #[arg(long = "port", value_parser = provider_port)]
    ports: Vec<(String, u16)>,
    /// Where the providers deliver their webhooks: a gateway's base URL (repeatable; none: they are dropped).
    #[arg(long = "webhook-target")]
    webhook_targets: Vec<String>,
    /// Also write the variables to this file (`NAME=value` lines, for `set -a; . FILE`).
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Write the sandbox users as a `directory import` file, linked to these providers.
    #[arg(long)]
    directory_file: Option<PathBuf>,
}

#[cfg(feature = "sandbox")]
fn provider_port(text: &str) -> Result<(String, u16), String> {
    let (provider, port) = text.split_once('=').ok_or("give PROVIDER=PORT, a provider's name and a port")?;
    let port = port.parse().map_err(|_| format!("{port:?} is not a port"))?;
    Ok((provider.trim().to_ascii_lowercase(), port))
}

/// Runs the command line; what `main` does.
pub fn main() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve { listen: None, addr_file: None }) {
        Command::Sdl => {
            print!("{}", crate::graphql::sdl());
            ExitCode::SUCCESS
        }
        Command::Token { sub, client, scope, ttl } => {
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let subject = match (sub, client) {
                (_, Some(name)) => Subject::Client(name),
                (Some(id), None) => Subject::User(id),
                (None, None) => unreachable!("clap requires --sub or --client"),
            };
            let token = match (var("KYC_GATEWAY_JWT_ISSUER"), var("KYC_GATEWAY_JWT_SECRET")) {
                (Some(issuer), Some(secret)) => mint_hs256(&Secret::new(secret), &issuer, &subject, &scope, ttl),
                _ => {
                    let secret = var("KYC_GATEWAY_DEV_SECRET").unwrap_or_else(|| DEFAULT_DEV_SECRET.to_owned());
                    mint_dev_token(&Secret::new(secret), &subject, &scope, ttl)
                }
            };
            println!("{token}");
            ExitCode::SUCCESS
        }
        Command::Serve { listen, addr_file } => serve(listen, addr_file.as_deref()),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => run_once(sandbox(args)),
        Command::Migrate => run_once(migrate()),
        Command::Directory { command: DirectoryCommand::Import { file } } => run_once(import(file)),
        Command::Audit { command: AuditCommand::Verify(args) } => run_once(audit_verify(args)),
        Command::Audit { command: AuditCommand::Keygen { id } } => match audit_keygen(&id) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kyc-gateway: {}", report(&e));
                ExitCode::FAILURE
            }
        },
        Command::Audit { command: AuditCommand::Export { since } } => run_once(audit_export(since)),
    }
}

/// Runs a one-shot command with logs on stderr: its report on stdout, or its error on stderr and a failure.
fn run_once(command: impl std::future::Future<Output = anyhow::Result<String>>) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    runtime.block_on(async {
        let Some(telemetry) = start_telemetry(false) else { return ExitCode::FAILURE };
        let code = match command.await {
            Ok(report) => {
                if !report.is_empty() {
                    println!("{report}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("{}", report(&e));
                ExitCode::FAILURE
            }
        };
        telemetry.shutdown().await;
        code
    })
}

/// An error and its causes, each once: a cause whose text already ends the message before it (an error that shows
/// its source in its own text, as `#[error("database: {0}")]` does, and also reports it as its source) is left out.
fn report(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Logs (in `KYC_GATEWAY_LOG_FORMAT`), and for `serve` traces when an OTLP endpoint is configured; `None` after
/// printing why not.
fn start_telemetry(traces: bool) -> Option<crate::telemetry::Telemetry> {
    let started = crate::config::log_format_from_env().and_then(|format| {
        let endpoint = if traces { crate::telemetry::otlp_endpoint() } else { None };
        crate::telemetry::init(format, endpoint.as_deref())
    });
    match started {
        Ok(telemetry) => Some(telemetry),
        Err(e) => {
            eprintln!("kyc-gateway: {}", report(&e));
            None
        }
    }
}

/// The configuration of a command that works on the database: one must be named (an in-memory one would vanish).
fn database_config() -> anyhow::Result<Config> {
    let config = Config::from_env()?;
    if config.database.is_none() {
        anyhow::bail!("set KYC_GATEWAY_DATABASE_URL to the database to work on");
    }
    Ok(config)
}

/// Migrates the configured database; what it applied, by name.
async fn migrate() -> anyhow::Result<String> {
    use anyhow::Context as _;
    let config = database_config()?;
    let settings = config.database.as_ref().context("set KYC_GATEWAY_DATABASE_URL")?;
    let store = crate::store::Store::connect(settings).await.context("connecting to the database")?;
    let applied = store.migrate().await;
    store.close().await;
    Ok(match applied?.as_slice() {
        [] => "the database is up to date: no migration to apply".into(),
        [one] => format!("applied 1 migration: {one}"),
        all => format!("applied {} migrations: {}", all.len(), all.join(", ")),
    })
}

async fn import(file: PathBuf) -> anyhow::Result<String> {
    let config = database_config()?;
    let keys = crate::configured_keys(&config)?;
    let entries = crate::directory::import::read(&file, &crate::providers::registry::import_fields())?;
    let (store, directory) = crate::open_store(&config, &keys).await?;
    let imported = crate::directory::import::import(&directory, &entries, false).await?;
    store.close().await;
    Ok(format!("imported {} users; stored {} new links", imported.users, imported.links))
}

/// Writes `text` to a new file only its owner may read (it holds secrets or tokens), replacing any file there.
#[cfg(feature = "sandbox")]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", path.display());
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).and_then(|mut file| file.write_all(text.as_bytes())).map_err(failed)
}

/// `kyc-gateway sandbox`: the sandbox providers alone, until interrupted.
#[cfg(feature = "sandbox")]
async fn sandbox(args: SandboxArgs) -> anyhow::Result<String> {
    let config = Config::from_env()?;
    let mut settings = config.sandbox.clone();
    settings.host = args.host;
    settings.advertise = args.advertise;
    let names = crate::config::sandbox_providers();
    if let Some((unknown, _)) = args.ports.iter().find(|(name, _)| !names.contains(&name.as_str())) {
        anyhow::bail!("--port {unknown}=...: no sandbox provider of that name; the names are {}", names.join(", "));
    }
    settings.ports = args.ports.into_iter().collect();
    let sandbox = crate::sandbox::Sandbox::start(&settings).await?;
    sandbox.set_webhook_targets(&args.webhook_targets);
    let block = sandbox.environment_block();
    if let Some(path) = &args.env_file {
        write_private(path, &block)?;
    }
    if let Some(path) = &args.directory_file {
        let entries = serde_json::to_string_pretty(&sandbox.directory_entries()).expect("entries serialise");
        write_private(path, &entries)?;
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "# The sandbox providers' variables: give them to a production-mode gateway.")?;
        write!(out, "{block}")?;
        out.flush()?;
    }
    tracing::info!(users = sandbox.users().len(), "sandbox providers serving until interrupted");
    let _ = tokio::signal::ctrl_c().await;
    Ok(String::new())
}

/// The text of a file `audit verify` reads, bounded.
fn read_bounded(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(VERIFY_FILE_MAX + 1).read_to_string(&mut text))
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > VERIFY_FILE_MAX {
        anyhow::bail!("{} is larger than {VERIFY_FILE_MAX} bytes", path.display());
    }
    Ok(text)
}

/// The public keys of `--key` and `--keys-file`, and the checkpoints of the `--witness` files.
fn verify_inputs(args: &VerifyArgs) -> anyhow::Result<(PublicKeys, Vec<Checkpoint>)> {
    let mut keys = PublicKeys::default();
    for key in &args.keys {
        keys.add(key).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
    }
    if let Some(path) = &args.keys_file {
        for (n, line) in read_bounded(path)?.lines().enumerate() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                keys.add(line).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), n + 1))?;
            }
        }
    }
    let mut witnessed = Vec::new();
    for path in &args.witnesses {
        for (n, line) in read_bounded(path)?.lines().enumerate() {
            match Checkpoint::from_line(line) {
                Some(Ok(checkpoint)) => witnessed.push(checkpoint),
                Some(Err(e)) => anyhow::bail!("{} line {}: {e}", path.display(), n + 1),
                None => {}
            }
        }
    }
    if keys.is_empty() && !args.witnesses.is_empty() {
        anyhow::bail!("--witness needs the public keys (--key or --keys-file) to check its checkpoints with");
    }
    Ok((keys, witnessed))
}

async fn audit_verify(args: VerifyArgs) -> anyhow::Result<String> {
    let (keys, witnessed) = verify_inputs(&args)?;
    let config = database_config()?;
    let store = crate::open_database(&config).await?;
    if keys.is_empty() {
        let verified = crate::audit::chain::verify(&store).await;
        store.close().await;
        return match verified {
            Ok(v) if v.records == 0 => Ok("the audit trail is intact: it holds no records".into()),
            Ok(v) => Ok(format!("the audit trail is intact: {} records, {} to {}", v.records, v.first, v.last)),
            Err(broken) => anyhow::bail!("the audit trail is broken: {broken}"),
        };
    }
    let verified = crate::audit::chain::verify_signed(&store, &keys, &witnessed).await;
    store.close().await;
    let v = verified.map_err(|broken| anyhow::anyhow!("the audit trail is broken: {broken}"))?;
    let mut text = match v.chain.records {
        0 => "the audit trail is intact: it holds no records".to_owned(),
        n => format!("the audit trail is intact: {n} records, {} to {}", v.chain.first, v.chain.last),
    };
    text.push_str(&format!(
        "; {} signed checkpoints verified (keys {})",
        v.checked,
        keys.ids().collect::<Vec<_>>().join(", ")
    ));
    if v.skipped > 0 {
        text.push_str(&format!(", {} before the retained start skipped", v.skipped));
    }
    if v.chain.records > 0 && v.last_signed.is_none() && !args.allow_unsigned {
        anyhow::bail!(
            "the audit trail is not signed: no signed checkpoint covers any of its {} records ({} to {}); its \
             checkpoints were deleted, or signing was off (--allow-unsigned passes a trail younger than its first \
             checkpoint)",
            v.chain.records,
            v.chain.first,
            v.chain.last
        );
    }
    let unsigned_from = v.last_signed.map_or(v.chain.first, |last| last + 1);
    if v.chain.records > 0 && unsigned_from <= v.chain.last {
        text.push_str(&format!(
            "; records {unsigned_from} to {} are not covered by a signed checkpoint yet",
            v.chain.last
        ));
    }
    Ok(text)
}

/// `audit keygen`: a new checkpoint key pair, as variables and a `--key` value.
fn audit_keygen(id: &str) -> anyhow::Result<String> {
    let (key, seed) = crate::audit::checkpoint::SigningKey::generate(id).map_err(anyhow::Error::msg)?;
    let public = key.public_base64();
    Ok(format!(
        "# The checkpoint signing key: keep it secret and out of the database (this variable, or the seed alone in a\n\
         # file named by KYC_GATEWAY_AUDIT_SIGNING_KEY_FILE).\n\
         KYC_GATEWAY_AUDIT_SIGNING_KEY_ID={id}\n\
         KYC_GATEWAY_AUDIT_SIGNING_KEY={seed}\n\
         # The public key, for `kyc-gateway audit verify --key` (or a line of its --keys-file); keep it after a rotation.\n\
         {id}={public}\n"
    ))
}

/// `--since`: RFC 3339 or unix seconds, as unix milliseconds.
fn since_millis(text: &str) -> anyhow::Result<i64> {
    if let Ok(seconds) = text.trim().parse::<i64>() {
        return Ok(seconds * 1000);
    }
    crate::domain::events::rfc3339_millis(text)
        .ok_or_else(|| anyhow::anyhow!("--since must be RFC 3339 (2026-01-01T00:00:00Z) or unix seconds"))
}

async fn audit_export(since: String) -> anyhow::Result<String> {
    use std::io::Write;
    let since = since_millis(&since)?;
    let config = database_config()?;
    let store = crate::open_database(&config).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    let exported = crate::audit::read::export(&store, since, |item| {
        let line = item.line();
        if let Err(e) = writeln!(out, "{line}") {
            failed.get_or_insert(e);
        }
    })
    .await;
    store.close().await;
    out.flush()?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    // The report goes to stderr: stdout is the export.
    tracing::info!(records = exported?, "audit records exported");
    Ok(String::new())
}

/// `kyc-gateway serve`: configuration from the environment, `listen` overriding its address; the bound address is
/// written to `addr_file` when given. The benchmark runs the gateway through this too.
pub fn serve(listen: Option<SocketAddr>, addr_file: Option<&Path>) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    runtime.block_on(async {
        let Some(telemetry) = start_telemetry(true) else { return ExitCode::FAILURE };
        let code = match run(listen, addr_file).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{}", report(&e));
                ExitCode::FAILURE
            }
        };
        // The last spans go out before the process ends.
        telemetry.shutdown().await;
        code
    })
}

/// Writes `addr` to `path` whole: to a neighbour first, then renamed, so a reader never sees half of it.
fn write_addr_file(path: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, addr.to_string())?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// Waits until a gateway started with `--addr-file path` has written its address (polling: the process is another
/// one), or `timeout` passes.
pub fn wait_for_addr_file(path: &Path, timeout: std::time::Duration) -> Option<SocketAddr> {
    let started = std::time::Instant::now();
    loop {
        if let Some(addr) = std::fs::read_to_string(path).ok().and_then(|text| text.trim().parse().ok()) {
            return Some(addr);
        }
        if started.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

async fn run(listen: Option<SocketAddr>, addr_file: Option<&Path>) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    for (name, nearest) in crate::config::variables::unknown(config.vars.names()) {
        match nearest {
            Some(nearest) => tracing::warn!("{name} is not a variable kyc-gateway reads; did you mean {nearest}?"),
            None => tracing::warn!("{name} is not a variable kyc-gateway reads; it is ignored"),
        }
    }
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let drain_delay = config.operations.drain_delay;
    let app = App::build(config).await?;
    let (graceful, at_once) =
        crate::server::health::on_shutdown_signal(app.readiness(), drain_delay, app.mode() == Mode::Sandbox);
    if let Some(path) = addr_file {
        write_addr_file(path, app.local_addr())
            .map_err(|e| anyhow::anyhow!("cannot write the address file {}: {e}", path.display()))?;
    }
    let url = format!("http://{}", app.local_addr());
    let version = env!("CARGO_PKG_VERSION");
    match app.mode() {
        Mode::Sandbox => {
            tracing::info!(
                "kyc-gateway {version} listening on {url} in SANDBOX mode: no provider is configured, so the sandbox \
                 providers serve a generated population (set KYC_GATEWAY_MODE=production to refuse this)"
            );
            #[cfg(feature = "sandbox")]
            if let Some(sandbox) = app.sandbox() {
                let bases: Vec<String> =
                    sandbox.providers().map(|p| format!("{} {}", p.name(), p.base_url())).collect();
                tracing::info!(
                    "sandbox providers (admin endpoints under /_sandbox/, see docs/operations.md): {}; their webhooks \
                     go to {url}/webhooks/<provider>",
                    bases.join(", ")
                );
            }
            tracing::info!("GraphiQL: {url}/  (send the header Authorization: Bearer <token>)");
            tracing::info!(
                "get a token: cargo run -q -- token --sub b76ab44d-b71e-4d19-b6f9-f6e88cd73946 --scope \"uid:read \
                 contact:read verification.plus:read verification.plus.details:read\""
            );
        }
        Mode::Production => tracing::info!("kyc-gateway {version} listening on {url} in PRODUCTION mode"),
    }
    tokio::select! {
        served = app.serve(graceful) => served?,
        () = at_once => anyhow::bail!("stopped at once by a second signal: requests in flight were cut"),
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_an_error_already_shows_is_reported_once() {
        let sql = sqlx::Error::PoolTimedOut;
        let error = anyhow::Error::from(crate::store::StoreError::Sql(sql)).context("reading the trail");
        assert_eq!(report(&error), "reading the trail: database: pool timed out while waiting for an open connection");
        let plain = anyhow::anyhow!("the cause").context("the outer").context("the outermost");
        assert_eq!(report(&plain), "the outermost: the outer: the cause");
    }
}
