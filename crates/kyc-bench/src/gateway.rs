//! The gateway under test: a child process configured against this process's sandbox providers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use kyc_gateway::config::EncryptionSettings;
use kyc_gateway::directory::import;
use kyc_gateway::providers::registry;
use kyc_gateway::sandbox::Sandbox;
use kyc_gateway::secret::Secret;
use kyc_gateway::store::crypto::EncryptionKey;
use kyc_gateway::store::StoreSettings;
use kyc_gateway::Config;

/// How a mode configures the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Cache and batching: the gateway as it ships.
    Full,
    /// Batching, no cache.
    NoCache,
    /// The naive baseline: no cache, no batching, providers one after the other.
    NoBatch,
}

pub struct Gateway {
    child: Child,
    pub url: String,
    /// The child's own SQLite database, removed with it (none in sandbox mode: in memory).
    database: Option<PathBuf>,
}

pub const ISSUER: &str = "https://bench.kyc-gateway.invalid/";

/// Registers every sandbox user in the database at `url`, linked to the sandbox providers that link users.
async fn import_users(sandbox: &Sandbox, url: &str, key: &str) -> anyhow::Result<()> {
    let entries = import::entries(&sandbox.directory_entries(), &registry::import_fields())?;
    let config = Config {
        database: Some(StoreSettings { url: Secret::new(url), ..StoreSettings::memory() }),
        encryption: Some(EncryptionSettings {
            current: EncryptionKey::from_base64(key).map_err(anyhow::Error::msg)?,
            older: Vec::new(),
        }),
        ..Config::default()
    };
    let keys = kyc_gateway::configured_keys(&config)?;
    let (store, directory) = kyc_gateway::open_store(&config, &keys).await?;
    import::import(&directory, &entries, false).await?;
    store.close().await;
    Ok(())
}

/// A database with every sandbox user imported, and the encryption key its gateways share.
pub struct Store {
    pub url: Secret,
    key: String,
}

impl Store {
    /// Imports the sandbox's users into the database at `url` (SQLite or PostgreSQL) under a new key.
    pub async fn prepare(sandbox: &Sandbox, url: &str) -> anyhow::Result<Store> {
        let key = kyc_gateway::secret::random_key_base64();
        import_users(sandbox, url, &key).await.context("preparing the gateway's database")?;
        Ok(Store { url: Secret::new(url), key })
    }
}

impl Gateway {
    /// Starts the gateway in `mode` against `sandbox`; `extra` adds or overrides environment variables.
    pub async fn start(
        sandbox: &Sandbox,
        mode: Mode,
        secret: &str,
        extra: &[(&str, String)],
    ) -> anyhow::Result<Gateway> {
        Gateway::start_from(&std::env::current_exe()?, sandbox, mode, secret, extra).await
    }

    /// Like [`Gateway::start`], the gateway of the kyc-bench binary at `exe` (a build with other features).
    pub async fn start_from(
        exe: &Path,
        sandbox: &Sandbox,
        mode: Mode,
        secret: &str,
        extra: &[(&str, String)],
    ) -> anyhow::Result<Gateway> {
        // A database of its own for every child, with fresh Fractal links: refresh tokens rotate, so another child's
        // are gone.
        let database = std::env::temp_dir().join(format!(
            "kyc-bench-{}-{}.db",
            std::process::id(),
            kyc_gateway::secret::random_token()
        ));
        let store = Store::prepare(sandbox, &format!("sqlite://{}", database.display())).await?;
        let mut gateway = Gateway::start_on(exe, sandbox, &store, mode, secret, extra)?;
        gateway.database = Some(database);
        Ok(gateway)
    }

    /// The gateway of `exe` in `mode` on `store`, prepared by [`Store::prepare`]: replicas share one.
    pub fn start_on(
        exe: &Path,
        sandbox: &Sandbox,
        store: &Store,
        mode: Mode,
        secret: &str,
        extra: &[(&str, String)],
    ) -> anyhow::Result<Gateway> {
        // The sandbox's own variables, as `kyc-gateway sandbox` prints them.
        let provided: Vec<(String, String)> = sandbox.environment().into_iter().map(|v| (v.name, v.value)).collect();
        let mut env: Vec<(&str, String)> =
            provided.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
        env.extend([
            // The benchmark measures the engine, not a provider's quota: the sandbox lifts its limit, so does the
            // client.
            ("KYC_GATEWAY_SUMSUB_RATE_LIMIT", "off".into()),
            ("KYC_GATEWAY_JWT_SECRET", secret.into()),
            ("KYC_GATEWAY_JWT_ISSUER", ISSUER.into()),
            ("KYC_GATEWAY_DATABASE_URL", store.url.expose().to_owned()),
            ("KYC_GATEWAY_ENCRYPTION_KEY", store.key.clone()),
            // `/metrics` on a listener of its own (production mode), on a free port: children never collide.
            ("KYC_GATEWAY_METRICS_LISTEN", "127.0.0.1:0".into()),
            ("KYC_GATEWAY_CACHE", if mode == Mode::Full { "on" } else { "off" }.into()),
            ("KYC_GATEWAY_FANOUT", if mode == Mode::NoBatch { "naive" } else { "batched" }.into()),
            ("RUST_LOG", "info".into()),
        ]);
        env.extend(extra.iter().cloned());
        Gateway::spawn(exe, &env, None)
    }

    /// The gateway of the kyc-bench binary at `exe` in sandbox mode, as `cargo run` starts it (its own sandbox
    /// providers, its in-memory database), accepting dev tokens signed with `secret`.
    pub fn sandbox_mode(exe: &Path, secret: &str) -> anyhow::Result<Gateway> {
        let env = [
            ("KYC_GATEWAY_MODE", "sandbox".to_owned()),
            ("KYC_GATEWAY_DEV_SECRET", secret.to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        Gateway::spawn(exe, &env, None)
    }

    fn spawn(exe: &Path, env: &[(&str, String)], database: Option<PathBuf>) -> anyhow::Result<Gateway> {
        let addr_file = std::env::temp_dir().join(format!(
            "kyc-bench-addr-{}-{}",
            std::process::id(),
            kyc_gateway::secret::random_token()
        ));
        let mut child = Command::new(exe)
            .arg("--gateway-child")
            .arg(&addr_file)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the gateway ({})", exe.display()))?;
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ERROR") {
                    eprintln!("gateway: {line}");
                }
            }
        });
        let addr = kyc_gateway::cli::wait_for_addr_file(&addr_file, Duration::from_secs(30));
        let _ = std::fs::remove_file(&addr_file);
        let Some(addr) = addr else {
            let _ = child.kill();
            bail!("the gateway did not start");
        };
        Ok(Gateway { child, url: format!("http://{addr}"), database })
    }

    /// The child's own SQLite database file, if it has one.
    pub fn database(&self) -> Option<&Path> {
        self.database.as_deref()
    }

    /// Stops the gateway, keeping its database file (removed with the [`Gateway`]).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The gateway's process id, for its CPU time (`kyc-bench --peers`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gateway's peak resident set (VmHWM), in MiB (with any descendants': it has none).
    pub fn peak_rss_mb(&self) -> Option<f64> {
        crate::procfs::peak_rss_mb(self.child.id())
    }

    /// The gateway's resident set now (VmRSS), in MiB.
    pub fn rss_mb(&self) -> Option<f64> {
        crate::procfs::rss_mb(self.child.id())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(database) = &self.database {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
            }
        }
    }
}
