//! The embedded sandbox providers: real HTTP servers on loopback that speak each provider's API over a deterministic
//! population, check credentials like the real services, and count the requests they serve. `kyc-gateway serve`
//! starts them when no real provider is configured; the tests and benchmarks use the same servers.

pub mod fractal;
pub mod rng;

use fractal::{FractalSandbox, FractalSandboxConfig};

/// Settings of every sandbox provider.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    pub fractal: FractalSandboxConfig,
}

/// The running sandbox providers.
#[derive(Clone)]
pub struct Sandbox {
    pub fractal: FractalSandbox,
}

impl Sandbox {
    pub async fn start(config: &SandboxConfig) -> std::io::Result<Self> {
        Ok(Sandbox { fractal: FractalSandbox::start(&config.fractal).await? })
    }
}
