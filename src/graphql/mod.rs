//! The GraphQL schema: types, scope guards and error codes. Resolvers ask the provider clients in [`Services`]; they
//! never see HTTP.

mod case;
mod details;
pub mod errors;
mod extension;
mod query;
mod scope;
mod stats;
mod user;

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, SDLExportOptions, Schema};

use crate::directory::Directory;
use crate::providers::fractal::FractalClient;

pub type GatewaySchema = Schema<query::Query, EmptyMutation, EmptySubscription>;

/// What resolvers use, shared by every request.
#[derive(Clone)]
pub struct Services {
    pub fractal: Arc<FractalClient>,
    pub directory: Arc<dyn Directory>,
    /// The most ids `users(ids:)` takes.
    pub max_user_ids: usize,
}

fn builder() -> async_graphql::SchemaBuilder<query::Query, EmptyMutation, EmptySubscription> {
    // The deepest real query (user -> verificationCases -> details -> field) is 5 levels; 15 leaves room for
    // fragments and introspection while refusing pathological nesting before any resolver runs.
    Schema::build(query::Query, EmptyMutation, EmptySubscription).extension(extension::ErrorPolicy).limit_depth(15)
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
