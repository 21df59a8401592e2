//! Settings of the audit trail (`crate::audit`).

use std::time::Duration;

use anyhow::bail;

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
    })
}
