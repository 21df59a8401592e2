//! Opening the database and the directory on it, with the keys secrets at rest are sealed under: what `App::build`
//! and the commands that work on a database (`migrate`, `directory import`, `audit`) share.

use std::sync::Arc;

use anyhow::Context as _;

use crate::config::{Config, EncryptionSettings, Mode};
use crate::directory::SqlDirectory;
use crate::store::crypto::{EncryptionKey, TokenCipher};
use crate::store::{Store, StoreSettings};

/// The keys secrets at rest are sealed with: the configured ones, or, for a sandbox-mode gateway only, one derived
/// from the dev secret. Commands that write a production database never get the derived key: see
/// [`configured_keys`].
pub fn serving_keys(config: &Config, mode: Mode) -> anyhow::Result<EncryptionSettings> {
    match (&config.encryption, mode) {
        (Some(keys), _) => Ok(keys.clone()),
        (None, Mode::Sandbox) => Ok(EncryptionSettings {
            current: EncryptionKey::derived("kyc-gateway sandbox encryption key", &config.dev_secret),
            older: Vec::new(),
        }),
        (None, Mode::Production) => configured_keys(config),
    }
}

/// The configured keys, required: a tool that writes sealed tokens must seal them with the key the gateway reads
/// them with, never a key anyone can derive.
pub fn configured_keys(config: &Config) -> anyhow::Result<EncryptionSettings> {
    config.encryption.clone().context(
        "set KYC_GATEWAY_ENCRYPTION_KEY (and KYC_GATEWAY_ENCRYPTION_OLD_KEYS) to the keys the gateway runs with: \
         tokens of linked accounts are sealed with it",
    )
}

/// Connects to the configured database (none configured: a new in-memory one) and brings its schema up to date.
pub async fn open_database(config: &Config) -> anyhow::Result<Store> {
    let store_settings = config.database.clone().unwrap_or_else(StoreSettings::memory);
    let store = Store::connect(&store_settings).await?;
    let applied = store.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "migrated the database");
    }
    Ok(store)
}

/// [`open_database`], and the directory on it with tokens sealed under `keys`.
pub async fn open_store(config: &Config, keys: &EncryptionSettings) -> anyhow::Result<(Store, Arc<SqlDirectory>)> {
    let store = open_database(config).await?;
    let cipher = Arc::new(TokenCipher::new(&keys.current, &keys.older));
    Ok((store.clone(), Arc::new(SqlDirectory::new(store, cipher))))
}
