//! The GraphQL schema: types, resolvers, the request policy and error codes. Resolvers ask the providers' facade
//! ([`Providers`]) through the request's DataLoaders and the authorization rules in [`crate::authz`]; they never see
//! HTTP.

pub mod access;
mod application;
mod audit;
mod case;
mod connection;
mod details;
mod entity;
pub mod errors;
mod introspection;
mod linking;
mod loaders;
mod mutation;
mod pipeline;
mod query;
mod review;
mod stats;
mod subscription;
mod user;
mod user_data;

pub use entity::EntityPositions;
pub use introspection::Introspection;
pub use loaders::Loaders;
pub use pipeline::limits::prescan;
pub use pipeline::{
    bounded_name, chosen_type, sha256_hex, Bounds, Executed, ReadOnly, TrustedDocuments, MAX_OPERATION_NAME,
};
pub use subscription::Pushed;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::{Context, SDLExportOptions, Schema};

use crate::auth::Principal;
use crate::authz::Declared;
use crate::config::FanOut;
use crate::providers::Providers;

pub type GatewaySchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// What resolvers use, shared by every request.
#[derive(Clone)]
pub struct Services {
    pub providers: Providers,
    pub fan_out: FanOut,
    /// The DataLoaders' batching window.
    pub loader_delay: Duration,
    /// The most ids `users(ids:)` takes.
    pub max_user_ids: usize,
    /// This replica's verification events, for subscriptions (fed from the change channel).
    pub events: tokio::sync::broadcast::Sender<Pushed>,
    /// The store, for reading the audit trail back.
    pub store: crate::store::Store,
    /// Display names of clients in users' access logs, by `(issuer, client id)`.
    pub caller_names: Arc<std::collections::HashMap<(String, String), String>>,
}

/// The caller. The HTTP layer puts it on every request; a request without one is a bug, not a caller error.
fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    ctx.data_unchecked::<Principal>()
}

fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

fn builder() -> async_graphql::SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    // The deepest real query (users -> kycApplications -> user -> verificationCases -> review -> rejectLabels) is
    // under 10 levels; 15 leaves room for fragments and introspection while refusing pathological nesting before any
    // resolver runs.
    Schema::build(query::Query, mutation::Mutation::default(), subscription::Subscription)
        .limit_depth(15)
        // The subgraph's SDL shows the subscription too: a router that supports federated subscriptions routes it.
        .enable_subscription_in_federation()
}

/// What the schema reveals about itself.
#[derive(Debug, Clone, Copy)]
pub struct Exposure {
    pub introspection: bool,
    pub suggestions: bool,
}

/// The schema with its services and its request policy (static scope requirements read from its own SDL, the bounds
/// of every operation).
pub fn schema(services: Services, bounds: Arc<Bounds>, exposure: Exposure) -> GatewaySchema {
    let policy = pipeline::RequestPolicy::new(declared(), bounds, exposure.introspection);
    let mut builder = builder().extension(policy).data(services);
    if !exposure.introspection {
        builder = builder.disable_introspection();
    }
    if !exposure.suggestions {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// Introspection per token (its scope), where introspection is off for everyone else.
pub fn introspection(exposure: Exposure, scope: Option<String>) -> Introspection {
    let scope = scope.filter(|_| !exposure.introspection);
    Introspection::new(&sdl(), declared(), scope)
}

/// The schema's static scope requirements, read once from its SDL.
pub fn declared() -> Arc<Declared> {
    static DECLARED: OnceLock<Arc<Declared>> = OnceLock::new();
    DECLARED.get_or_init(|| Arc::new(Declared::from_sdl(&sdl()))).clone()
}

/// The SDL the server serves: the Apollo Federation v2 subgraph schema, with `@requiresScopes` so a supergraph router
/// can enforce the static scope requirements too. It is `schema.graphql` and `_service { sdl }`'s answer, byte for byte
/// (async-graphql prints `_service.sdl` with `federation().compose_directive()` too).
pub fn sdl() -> String {
    static SDL: OnceLock<String> = OnceLock::new();
    SDL.get_or_init(|| builder().finish().sdl_with_options(SDLExportOptions::new().federation().compose_directive()))
        .clone()
}
