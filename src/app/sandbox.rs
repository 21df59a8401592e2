//! Sandbox mode: the sandbox providers started in this process and used exactly as real ones are, through the
//! variables they print (`kyc-gateway sandbox`) and the directory file of their users.

use anyhow::Context as _;

use crate::config::{Config, Vars};
use crate::directory::{import, SqlDirectory};
use crate::providers::registry;
use crate::sandbox::{Merge, Sandbox, Variable};

/// The sandbox's variables under the operator's: an operator's variable wins, except lists (webhook secrets) and
/// level maps, where both count (the operator's level overriding the sandbox's of the same name).
pub fn overlay(sandbox: &[Variable], operator: &Vars) -> Vars {
    let mut vars = operator.clone();
    for variable in sandbox {
        let value = match (variable.merge, operator.get(&variable.name)) {
            (_, None) => variable.value.clone(),
            (Merge::Replace, Some(own)) => own,
            (Merge::Append(separator), Some(own)) => format!("{}{separator}{own}", variable.value),
        };
        vars.set(&variable.name, value);
    }
    vars
}

/// Starts the sandbox providers; the variables that configure the gateway for them.
pub async fn start(config: &Config) -> anyhow::Result<(Sandbox, Vars)> {
    let sandbox = Sandbox::start(&config.sandbox).await.context("starting the sandbox providers")?;
    let vars = overlay(&sandbox.environment(), &config.vars);
    Ok((sandbox, vars))
}

/// Makes every sandbox user known, with their links to the (new) sandbox providers: a file database kept from an
/// earlier start has its links replaced.
pub async fn seed(sandbox: &Sandbox, directory: &SqlDirectory) -> anyhow::Result<()> {
    let entries = import::entries(&sandbox.directory_entries(), &registry::import_fields())
        .context("reading the sandbox's directory entries")?;
    import::import(directory, &entries, true).await.context("registering the sandbox users")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_s_variables_win_and_lists_combine() {
        let sandbox = [
            Variable { name: "KYC_GATEWAY_A".into(), value: "sandbox".into(), merge: Merge::Replace },
            Variable { name: "KYC_GATEWAY_B".into(), value: "s1".into(), merge: Merge::Append(",") },
            Variable { name: "KYC_GATEWAY_C".into(), value: "c".into(), merge: Merge::Append(",") },
        ];
        let operator = Vars::new([("KYC_GATEWAY_A", "own"), ("KYC_GATEWAY_B", "o1")]);
        let vars = overlay(&sandbox, &operator);
        assert_eq!(vars.get("KYC_GATEWAY_A").as_deref(), Some("own"));
        assert_eq!(vars.get("KYC_GATEWAY_B").as_deref(), Some("s1,o1"));
        assert_eq!(vars.get("KYC_GATEWAY_C").as_deref(), Some("c"));
    }
}
