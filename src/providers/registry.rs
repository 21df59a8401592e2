//! The registry: every provider the gateway knows (the one line `providers!(...)` in `providers/mod.rs`), and the
//! set of those configured. Outside that line, its folder and the `Provider` enum, no code names a provider.

use std::fmt::Debug;
use std::sync::Arc;

use super::connector::{AccountLinking, ApplicationSource, CaseSource, Connector, StatisticsSource};
use super::section::Section;
use super::ProviderError;
use crate::directory::import::ImportField;
use crate::directory::Directory;
use crate::domain::Provider;

/// Declares the provider folders and lists their modules in [`MODULES`], in the order given.
macro_rules! providers {
    ($($name:ident),+ $(,)?) => {
        $(pub mod $name;)+
        /// Every provider the gateway can be configured for, in the order they answer.
        pub const MODULES: &[&dyn registry::ProviderModule] = &[$(&$name::MODULE),+];
    };
}

pub use super::MODULES;

/// A provider's folder, as the registry sees it: its configuration section, and how to connect to it.
pub trait ProviderModule: Sync {
    fn provider(&self) -> Provider;
    /// The variables of its own section beyond the common ones ([`Section::COMMON`]).
    fn variables(&self) -> &'static [&'static str];
    /// Reads its section; `None` when none of the variables that configure it is set. A half-configured provider
    /// is an error naming the missing variable, never a fallback.
    fn configure(&self, section: &Section<'_>) -> anyhow::Result<Option<Arc<dyn ProviderSettings>>>;
    /// What it can do, whether or not it is configured here.
    fn offers(&self) -> &'static [Capability];
    /// The fields of a directory import entry it reads.
    fn import_fields(&self) -> &'static [ImportField] {
        &[]
    }
}

/// Every provider's directory import fields.
pub fn import_fields() -> Vec<ImportField> {
    MODULES.iter().flat_map(|m| m.import_fields().iter().copied()).collect()
}

/// A capability of a provider (see `connector.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Cases,
    Applications,
    Statistics,
    Linking,
}

/// A capability no configured provider has: the provider that would have it, if the registry holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing(pub Option<Provider>);

impl Missing {
    fn of(capability: Capability) -> Self {
        Missing(MODULES.iter().find(|m| m.offers().contains(&capability)).map(|m| m.provider()))
    }

    /// As a provider error (`NotConfigured`), with the provider it names.
    pub fn error(self) -> (Option<Provider>, ProviderError) {
        (self.0, ProviderError::NotConfigured)
    }
}

/// A provider's parsed section, ready to connect.
pub trait ProviderSettings: Debug + Send + Sync {
    fn provider(&self) -> Provider;
    /// A client of the provider, finding users through `directory`.
    fn connect(&self, directory: Arc<dyn Directory>) -> Arc<dyn Connector>;
}

/// The module of `provider`.
pub fn module(provider: Provider) -> &'static dyn ProviderModule {
    *MODULES.iter().find(|m| m.provider() == provider).expect("every provider has a module in the registry")
}

/// The configured providers, connected.
#[derive(Clone, Default)]
pub struct ProviderSet {
    connectors: Arc<Vec<Arc<dyn Connector>>>,
}

impl ProviderSet {
    /// Connects every configured provider.
    pub fn connect(settings: &[Arc<dyn ProviderSettings>], directory: &Arc<dyn Directory>) -> Self {
        let mut connectors: Vec<Arc<dyn Connector>> = settings.iter().map(|s| s.connect(directory.clone())).collect();
        connectors.sort_by_key(|c| c.provider());
        ProviderSet { connectors: Arc::new(connectors) }
    }

    /// A configured provider.
    pub fn get(&self, provider: Provider) -> Option<&dyn Connector> {
        self.connectors.iter().find(|c| c.provider() == provider).map(|c| c.as_ref())
    }

    /// Every configured provider, in the registry's order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Connector> {
        self.connectors.iter().map(|c| c.as_ref())
    }

    /// The configured providers of verification cases.
    pub fn case_sources(&self) -> impl Iterator<Item = (Provider, &dyn CaseSource)> {
        self.iter().filter_map(|c| Some((c.provider(), c.cases()?)))
    }

    /// The provider of KYC applications.
    pub fn applications(&self) -> Result<(Provider, &dyn ApplicationSource), Missing> {
        self.iter().find_map(|c| Some((c.provider(), c.applications()?))).ok_or(Missing::of(Capability::Applications))
    }

    /// The provider of the client's verification statistics.
    pub fn statistics(&self) -> Result<(Provider, &dyn StatisticsSource), Missing> {
        self.iter().find_map(|c| Some((c.provider(), c.statistics()?))).ok_or(Missing::of(Capability::Statistics))
    }

    /// The provider users link their accounts at.
    pub fn linking(&self) -> Result<(Provider, &dyn AccountLinking), Missing> {
        self.iter().find_map(|c| Some((c.provider(), c.linking()?))).ok_or(Missing::of(Capability::Linking))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_holds_every_provider_once() {
        let mut listed: Vec<Provider> = MODULES.iter().map(|m| m.provider()).collect();
        listed.sort();
        assert_eq!(listed, Provider::ALL);
    }
}
