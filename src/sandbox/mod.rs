//! The embedded sandbox providers: real HTTP servers on loopback that speak each provider's API over a deterministic
//! population, check credentials and signatures like the real services, and count the requests they serve.
//! `kyc-gateway serve` starts them when no real provider is configured; the tests and benchmarks use the same servers.
//!
//! The sandbox users are the Fractal population (their gateway id is their Fractal uid) plus the users of ident's seed
//! records. The other providers draw from the same list, so one user has data at several providers at once: the
//! seed person of Fractal's documentation has Fractal cases, the RED/FINAL applicant of Sumsub's review documentation, a passed Sila
//! verification and an ident application.

// Sandbox handlers return a finished provider error response early (`Result<_, Response>`); a large error variant
// costs nothing on these test servers and keeps each handler a straight line.
#![allow(clippy::result_large_err)]

pub mod faults;
pub mod fractal;
pub mod ident;
pub mod rng;
pub mod sila;
pub mod sumsub;
mod support;

pub use support::Counts;

use fractal::FractalSandbox;
use ident::IdentSandbox;
use sila::SilaSandbox;
use sumsub::SumsubSandbox;

use crate::config::{Faults, SandboxSettings};
use crate::domain::levels::LevelMap;

/// The running sandbox providers.
#[derive(Clone)]
pub struct Sandbox {
    pub fractal: FractalSandbox,
    pub sumsub: SumsubSandbox,
    pub sila: SilaSandbox,
    pub ident: IdentSandbox,
    users: Vec<String>,
}

impl Sandbox {
    pub async fn start(settings: &SandboxSettings) -> std::io::Result<Self> {
        let fractal = FractalSandbox::start(settings).await?;
        let mut users: Vec<String> = fractal.population().users.iter().map(|u| u.uid.clone()).collect();
        let sumsub = SumsubSandbox::start(settings, &users).await?;
        let sila = SilaSandbox::start(settings, &users).await?;
        let ident = IdentSandbox::start(settings, &users).await?;
        users.extend(ident::population::SEED_USERS.iter().map(|u| u.to_string()));
        Ok(Sandbox { fractal, sumsub, sila, ident, users })
    }

    /// The faults of every sandbox provider, to change them together (the benchmark's injected latency).
    pub fn set_faults(&self, faults: &Faults) {
        for injector in [self.fractal.faults(), self.sumsub.faults(), self.sila.faults(), self.ident.faults()] {
            injector.set(faults.clone());
        }
    }

    /// Requests served by every sandbox provider together.
    pub fn requests(&self) -> u64 {
        [self.fractal.faults(), self.sumsub.faults(), self.sila.faults(), self.ident.faults()]
            .iter()
            .map(|f| f.requests())
            .sum()
    }

    /// Every sandbox user's gateway id: the Fractal population, then the users of ident's seed records.
    pub fn users(&self) -> &[String] {
        &self.users
    }

    /// How the sandbox providers' own levels map to items: Sumsub's `plus-kyc-level` and the two Sila flows exist only
    /// here, so sandbox mode adds them under whatever the configuration maps.
    pub fn levels() -> (LevelMap, LevelMap) {
        let sumsub = LevelMap::parse("plus-kyc-level=plus+selfie+liveness").expect("valid");
        let sila = LevelMap::parse(&format!(
            "{}=basic+ssn; {}=plus+selfie",
            sila::population::FLOW_STANDARD,
            sila::population::FLOW_DOCUMENTS
        ))
        .expect("valid");
        (sumsub, sila)
    }
}
