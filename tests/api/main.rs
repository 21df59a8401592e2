//! Integration tests: the gateway and its sandbox providers on port 0, spoken to over real HTTP.

mod helpers;
mod ws;

mod applications;
mod audit;
mod auth;
mod caching;
mod cli_and_schema;
mod contract;
mod declared;
mod details;
mod docs;
mod documents;
mod errors;
mod federation;
mod graphiql;
mod hostile;
mod http;
mod identity;
mod linking;
mod logs;
mod operations;
mod privacy;
mod readme_examples;
mod resilience;
mod sandboxes;
mod scopes;
mod slow_clients;
mod stats;
mod store;
mod subgraph;
mod subscriptions;
mod surface;
mod telemetry;
mod tokens;
mod webhooks;
