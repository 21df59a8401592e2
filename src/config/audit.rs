//! Settings of the audit trail (`crate::audit`).

use std::time::Duration;

use anyhow::bail;

use crate::audit::checkpoint::{CheckpointSettings, SigningKey};
use crate::audit::{AuditSettings, Mode};
use crate::env::Env;

pub(super) fn audit(env: &Env<'_>) -> anyhow::Result<AuditSettings> {
    let d = AuditSettings::default();
    let mode = env.choice(
        "KYC_GATEWAY_AUDIT",
        &[("strict", Mode::Strict), ("buffered", Mode::Buffered), ("off", Mode::Off)],
        d.mode,
    )?;
    let days: u64 = env.parse("KYC_GATEWAY_AUDIT_RETENTION_DAYS", d.retention.as_secs() / 86_400)?;
    if days == 0 {
        bail!("KYC_GATEWAY_AUDIT_RETENTION_DAYS must be at least 1");
    }
    let mut caller_names = Vec::new();
    for pair in env.get("KYC_GATEWAY_AUDIT_CALLER_NAMES").unwrap_or_default().split(';').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        match pair.split_once('=') {
            Some((id, name)) if !id.trim().is_empty() && !name.trim().is_empty() && name.len() <= 100 => {
                let (issuer, id) = match id.trim().rsplit_once(char::is_whitespace) {
                    Some((issuer, id)) => (Some(issuer.trim().to_owned()), id),
                    None => (None, id.trim()),
                };
                caller_names.push((issuer, id.to_owned(), name.trim().to_owned()))
            }
            _ => bail!(
                "KYC_GATEWAY_AUDIT_CALLER_NAMES: {pair:?} is not `client-id=Display name` or `ISSUER client-id=Display \
                 name` (names up to 100 bytes)"
            ),
        }
    }
    Ok(AuditSettings {
        mode,
        retention: Duration::from_secs(days * 86_400),
        keep_last: d.keep_last,
        queue: env.parse("KYC_GATEWAY_AUDIT_QUEUE", d.queue)?.max(1),
        commit_timeout: env.millis("KYC_GATEWAY_AUDIT_COMMIT_TIMEOUT_MS", d.commit_timeout)?,
        require_purpose: env.switch("KYC_GATEWAY_REQUIRE_PURPOSE", d.require_purpose)?,
        caller_names,
        checkpoints: checkpoints(env)?,
    })
}

/// The checkpoint signing key (from the variable or its file), how often, and the witness file.
fn checkpoints(env: &Env<'_>) -> anyhow::Result<CheckpointSettings> {
    let d = CheckpointSettings::default();
    let seed = match (env.get("KYC_GATEWAY_AUDIT_SIGNING_KEY"), env.get("KYC_GATEWAY_AUDIT_SIGNING_KEY_FILE")) {
        (Some(_), Some(_)) => {
            bail!("set KYC_GATEWAY_AUDIT_SIGNING_KEY or KYC_GATEWAY_AUDIT_SIGNING_KEY_FILE, not both")
        }
        (Some(seed), None) => Some(crate::secret::Secret::new(seed)),
        (None, Some(path)) => Some(crate::secret::Secret::new(
            std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("KYC_GATEWAY_AUDIT_SIGNING_KEY_FILE: cannot read {path}: {e}"))?,
        )),
        (None, None) => None,
    };
    let key = match (seed, env.get("KYC_GATEWAY_AUDIT_SIGNING_KEY_ID")) {
        (Some(seed), Some(id)) => Some(
            SigningKey::from_seed_base64(id.trim(), seed.expose())
                .map_err(|e| anyhow::anyhow!("KYC_GATEWAY_AUDIT_SIGNING_KEY: {e}"))?,
        ),
        (Some(_), None) => bail!(
            "KYC_GATEWAY_AUDIT_SIGNING_KEY needs KYC_GATEWAY_AUDIT_SIGNING_KEY_ID (the id `audit verify --key` names \
             its public key by)"
        ),
        (None, Some(_)) => {
            bail!("KYC_GATEWAY_AUDIT_SIGNING_KEY_ID is set without a key (KYC_GATEWAY_AUDIT_SIGNING_KEY)")
        }
        (None, None) => None,
    };
    let every_records: u64 = env.parse("KYC_GATEWAY_AUDIT_CHECKPOINT_RECORDS", d.every_records)?;
    let every = env.secs("KYC_GATEWAY_AUDIT_CHECKPOINT_SECS", d.every)?;
    if every_records == 0 || every.is_zero() {
        bail!("KYC_GATEWAY_AUDIT_CHECKPOINT_RECORDS and KYC_GATEWAY_AUDIT_CHECKPOINT_SECS must be at least 1");
    }
    let witness = env.get("KYC_GATEWAY_AUDIT_WITNESS_FILE").map(std::path::PathBuf::from);
    Ok(CheckpointSettings { key, every_records, every, witness })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn from(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        Config::from_pairs(pairs.iter().copied())
    }

    /// The RFC 8032 test seed, in base64.
    const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

    #[test]
    fn the_checkpoint_key_comes_with_its_id_from_the_variable_or_its_file_never_both() {
        let none = from(&[]).expect("valid");
        assert!(none.audit.checkpoints.key.is_none());
        assert_eq!((none.audit.checkpoints.every_records, none.audit.checkpoints.every.as_secs()), (1_000, 60));
        let c = from(&[("KYC_GATEWAY_AUDIT_SIGNING_KEY", SEED), ("KYC_GATEWAY_AUDIT_SIGNING_KEY_ID", "2026-01")])
            .expect("valid");
        let key = c.audit.checkpoints.key.expect("a key");
        assert_eq!(
            (key.id(), key.public_base64().as_str()),
            ("2026-01", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
        );
        let file = std::env::temp_dir().join(format!("kyc-gateway-key-{}", crate::secret::random_token()));
        std::fs::write(&file, format!("{SEED}\n")).expect("written");
        let path = file.to_str().expect("a path");
        let c = from(&[("KYC_GATEWAY_AUDIT_SIGNING_KEY_FILE", path), ("KYC_GATEWAY_AUDIT_SIGNING_KEY_ID", "k")]);
        assert_eq!(c.expect("valid").audit.checkpoints.key.expect("a key").public_base64(), key.public_base64());
        let both = [
            ("KYC_GATEWAY_AUDIT_SIGNING_KEY", SEED),
            ("KYC_GATEWAY_AUDIT_SIGNING_KEY_FILE", path),
            ("KYC_GATEWAY_AUDIT_SIGNING_KEY_ID", "k"),
        ];
        assert!(from(&both).is_err());
        let _ = std::fs::remove_file(&file);
        let err = from(&[("KYC_GATEWAY_AUDIT_SIGNING_KEY", SEED)]).expect_err("no id").to_string();
        assert!(err.contains("KYC_GATEWAY_AUDIT_SIGNING_KEY_ID"), "{err}");
        let err = from(&[("KYC_GATEWAY_AUDIT_SIGNING_KEY", "c2hvcnQ="), ("KYC_GATEWAY_AUDIT_SIGNING_KEY_ID", "k")])
            .expect_err("not a seed")
            .to_string();
        assert!(err.contains("32 bytes") && !err.contains("c2hvcnQ"), "the key is never shown: {err}");
        assert!(from(&[("KYC_GATEWAY_AUDIT_CHECKPOINT_RECORDS", "0")]).is_err());
    }
}
