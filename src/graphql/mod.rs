//! The GraphQL schema: types, scope guards and error codes. Resolvers ask the provider clients in [`Services`]; they
//! never see HTTP.

mod application;
mod case;
mod connection;
mod details;
pub mod errors;
mod extension;
mod loaders;
mod mutation;
mod query;
mod review;
mod scope;
mod stats;
mod user;
mod user_data;

pub use loaders::{Loaders, DELAY as LOADER_DELAY};
pub use user_data::FanOut;

use std::sync::Arc;

use async_graphql::{EmptySubscription, SDLExportOptions, Schema};

use crate::config::LevelSettings;
use crate::directory::Directory;
use crate::domain::Provider;
use crate::providers::cache::ProviderCache;
use crate::providers::fractal::FractalClient;
use crate::providers::ident::IdentClient;
use crate::providers::sila::SilaClient;
use crate::providers::sumsub::SumsubClient;
use crate::providers::ProviderError;

pub type GatewaySchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// What resolvers use, shared by every request. A provider the gateway is not configured for is `None` and
/// contributes nothing.
#[derive(Clone)]
pub struct Services {
    pub fractal: Option<Arc<FractalClient>>,
    pub sumsub: Option<Arc<SumsubClient>>,
    pub sila: Option<Arc<SilaClient>>,
    pub ident: Option<Arc<IdentClient>>,
    pub directory: Arc<dyn Directory>,
    pub levels: Arc<LevelSettings>,
    /// The cache across requests (shared with the webhook handlers' invalidation).
    pub cache: ProviderCache,
    pub fan_out: FanOut,
    /// The DataLoaders' batching window (see `loaders.rs`).
    pub loader_delay: std::time::Duration,
    /// The most ids `users(ids:)` takes.
    pub max_user_ids: usize,
}

fn not_configured(provider: Provider) -> async_graphql::Error {
    errors::provider(provider, &ProviderError::NotConfigured)
}

impl Services {
    /// Fractal, for the fields only it answers (statistics).
    pub fn fractal(&self) -> async_graphql::Result<&FractalClient> {
        self.fractal.as_deref().ok_or_else(|| not_configured(Provider::Fractal))
    }

    /// ident, for the fields only it answers (KYC applications).
    pub fn ident(&self) -> async_graphql::Result<&IdentClient> {
        self.ident.as_deref().ok_or_else(|| not_configured(Provider::Ident))
    }
}

fn builder() -> async_graphql::SchemaBuilder<query::Query, mutation::Mutation, EmptySubscription> {
    // The deepest real query (users -> kycApplications -> user -> verificationCases -> review -> rejectLabels) is
    // under 10 levels; 15 leaves room for fragments and introspection while refusing pathological nesting before any
    // resolver runs.
    Schema::build(query::Query, mutation::Mutation, EmptySubscription).extension(extension::ErrorPolicy).limit_depth(15)
}

/// The schema with its services.
pub fn schema(services: Services) -> GatewaySchema {
    builder().data(services).finish()
}

/// The SDL the server serves, with federation directives (`@requiresScopes`) so a supergraph router can enforce the
/// static scope requirements too. `schema.graphql` at the repository root is this text.
pub fn sdl() -> String {
    builder().finish().sdl_with_options(SDLExportOptions::new().federation())
}
