//! Sandbox or production, decided once (`Config::mode`), logged at start and shown on `/readyz`.

/// What the gateway runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The sandbox providers, dev tokens, an embedded store.
    Sandbox,
    /// Configured providers, configured token issuers, a configured store and key.
    Production,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sandbox => "sandbox",
            Mode::Production => "production",
        }
    }
}

/// `KYC_GATEWAY_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModeSetting {
    /// Sandbox exactly when no provider is configured and the build has the sandbox.
    #[default]
    Auto,
    Sandbox,
    Production,
}

/// Why production mode cannot start without a provider.
pub const NO_PROVIDER: &str = "refusing to start in production mode: no provider is configured. Configure at least \
    one provider (KYC_GATEWAY_<PROVIDER>_... variables, see docs/configuration.md), or run the sandbox providers for it \
    to use: `kyc-gateway sandbox`, from a build with the `sandbox` cargo feature, prints their variables.";

/// The mode `setting` asks for, given whether a provider is configured.
pub fn decide(setting: ModeSetting, any_provider: bool) -> Mode {
    match setting {
        ModeSetting::Sandbox if cfg!(feature = "sandbox") => Mode::Sandbox,
        ModeSetting::Auto if !any_provider && cfg!(feature = "sandbox") => Mode::Sandbox,
        _ => Mode::Production,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_provider_means_production_unless_sandbox_is_forced() {
        assert_eq!(decide(ModeSetting::Auto, true), Mode::Production);
        assert_eq!(decide(ModeSetting::Production, false), Mode::Production);
        let sandbox = if cfg!(feature = "sandbox") { Mode::Sandbox } else { Mode::Production };
        assert_eq!(decide(ModeSetting::Auto, false), sandbox);
        assert_eq!(decide(ModeSetting::Sandbox, true), sandbox);
    }
}
