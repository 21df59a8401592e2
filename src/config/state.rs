//! Where the gateway keeps its state, and how its secrets at rest are sealed.

use std::time::Duration;

use anyhow::bail;

use crate::env::Env;
use crate::secret::Secret;
use crate::store::crypto::EncryptionKey;
use crate::store::StoreSettings;

/// The keys of secrets at rest: new values are sealed under `current`; values sealed under `older` keys are still
/// read (a key rotation adds the new key and keeps the old one until every row was rewritten).
#[derive(Debug, Clone)]
pub struct EncryptionSettings {
    pub current: EncryptionKey,
    pub older: Vec<EncryptionKey>,
}

pub(super) fn database(env: &Env<'_>) -> anyhow::Result<Option<StoreSettings>> {
    let Some(url) = env.get("KYC_GATEWAY_DATABASE_URL") else { return Ok(None) };
    if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("KYC_GATEWAY_DATABASE_URL must be sqlite://PATH, sqlite::memory: or postgres://...");
    }
    Ok(Some(StoreSettings {
        url: Secret::new(url),
        max_connections: env.parse("KYC_GATEWAY_DATABASE_MAX_CONNECTIONS", 10)?,
        acquire_timeout: env.millis("KYC_GATEWAY_DATABASE_ACQUIRE_TIMEOUT_MS", Duration::from_secs(5))?,
        idle_timeout: env.secs("KYC_GATEWAY_DATABASE_IDLE_TIMEOUT_SECS", Duration::from_secs(600))?,
    }))
}

pub(super) fn encryption(env: &Env<'_>) -> anyhow::Result<Option<EncryptionSettings>> {
    let key = |name: &str, text: &str| {
        EncryptionKey::from_base64(text).map_err(|why| anyhow::anyhow!("{name}: a key {why}; give 32 bytes in base64"))
    };
    let current = match env.get("KYC_GATEWAY_ENCRYPTION_KEY") {
        Some(text) => key("KYC_GATEWAY_ENCRYPTION_KEY", &text)?,
        None if env.get("KYC_GATEWAY_ENCRYPTION_OLD_KEYS").is_some() => {
            bail!(
                "KYC_GATEWAY_ENCRYPTION_OLD_KEYS needs KYC_GATEWAY_ENCRYPTION_KEY (the key new values are sealed with)"
            )
        }
        None => return Ok(None),
    };
    let older = env
        .get("KYC_GATEWAY_ENCRYPTION_OLD_KEYS")
        .map(|list| {
            list.split(',')
                .filter(|k| !k.trim().is_empty())
                .map(|k| key("KYC_GATEWAY_ENCRYPTION_OLD_KEYS", k))
                .collect()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Some(EncryptionSettings { current, older }))
}
