//! The gateway under test: a child process configured against this process's sandbox providers.

use std::io::{BufRead, BufReader};
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
    /// The child's own SQLite database, removed with it.
    database: std::path::PathBuf,
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

impl Gateway {
    /// Starts the gateway in `mode` against `sandbox`; `extra` adds or overrides environment variables.
    pub async fn start(
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
        let database_url = format!("sqlite://{}", database.display());
        let key = kyc_gateway::secret::random_key_base64();
        import_users(sandbox, &database_url, &key).await.context("preparing the gateway's database")?;
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
            ("KYC_GATEWAY_DATABASE_URL", database_url),
            ("KYC_GATEWAY_ENCRYPTION_KEY", key),
            ("KYC_GATEWAY_CACHE", if mode == Mode::Full { "on" } else { "off" }.into()),
            ("KYC_GATEWAY_FANOUT", if mode == Mode::NoBatch { "naive" } else { "batched" }.into()),
            ("RUST_LOG", "info".into()),
        ]);
        env.extend(extra.iter().cloned());
        let addr_file = std::env::temp_dir().join(format!(
            "kyc-bench-addr-{}-{}",
            std::process::id(),
            kyc_gateway::secret::random_token()
        ));
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--gateway-child")
            .arg(&addr_file)
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the gateway")?;
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
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.database.display()));
        }
    }
}
