//! kyc-gateway: one GraphQL API in front of several KYC providers, with field-level OAuth scopes. [`App::build`] (the
//! composition root, `app/`) turns a [`Config`] into a ready-to-serve application for `main.rs` and the integration
//! tests alike; ARCHITECTURE.md maps the modules and their layers.

pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod digest;
pub mod directory;
pub mod domain;
pub mod env;
pub mod freshness;
pub mod graphql;
pub mod providers;
pub mod rate_limit;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod webhooks;

/// The sandbox providers (the `sandbox` feature, on by default; never in the production image).
#[cfg(feature = "sandbox")]
pub use kyc_sandbox as sandbox;

pub use app::{configured_keys, open_database, open_store, App};
pub use config::Config;
