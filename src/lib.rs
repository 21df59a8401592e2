//! kyc-gateway: one GraphQL API in front of several KYC providers, with field-level OAuth scopes.
//!
//! [`App::build`] turns a [`Config`] into a bound, ready-to-serve application. `main.rs` and the integration tests
//! use the same builder, so the tests exercise what runs in production.

pub mod auth;
pub mod cli;
pub mod config;
pub mod directory;
pub mod domain;
pub mod graphql;
pub mod providers;
pub mod sandbox;
pub mod secret;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

pub use config::Config;

use auth::token::{TokenVerifier, DEV_ISSUER};
use directory::{Directory, FractalTokens, InMemoryDirectory};
use providers::fractal::{FractalClient, FractalConfig};
use sandbox::Sandbox;

/// A gateway bound to its address, not yet serving.
pub struct App {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    sandbox: Option<Sandbox>,
    directory: Arc<dyn Directory>,
}

impl App {
    /// Checks the configuration, starts the sandbox providers when no real one is configured, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        config.validate()?;
        let (fractal, directory, sandbox, verifier) = match &config.fractal {
            None => {
                let sandbox = Sandbox::start(&config.sandbox).await.context("starting the sandbox providers")?;
                let directory = InMemoryDirectory::new();
                // Every sandbox user has linked Fractal; their gateway user id is their Fractal uid.
                for user in &sandbox.fractal.population().users {
                    let tokens = FractalTokens {
                        access_token: None,
                        access_renew_at: None,
                        refresh_token: sandbox.fractal.link_user(&user.uid),
                    };
                    directory.link_fractal(&user.uid, &user.uid, tokens);
                }
                let fractal = FractalConfig {
                    auth_url: sandbox.fractal.base_url().to_owned(),
                    resource_url: sandbox.fractal.base_url().to_owned(),
                    client_id: sandbox.fractal.client_id().to_owned(),
                    client_secret: sandbox.fractal.client_secret(),
                    http: config.http.clone(),
                };
                let verifier = TokenVerifier::hs256(&config.dev_secret, DEV_ISSUER, None);
                (fractal, directory, Some(sandbox), verifier)
            }
            Some(real) => {
                let directory = match &config.directory_file {
                    Some(path) => InMemoryDirectory::from_json_file(path)?,
                    None => InMemoryDirectory::new(),
                };
                let fractal = FractalConfig {
                    auth_url: real.auth_url.clone(),
                    resource_url: real.resource_url.clone(),
                    client_id: real.client_id.clone(),
                    client_secret: real.client_secret.clone(),
                    http: config.http.clone(),
                };
                let jwt = config.jwt.as_ref().context("production mode needs a token issuer")?;
                let verifier = TokenVerifier::hs256(&jwt.secret, &jwt.issuer, jwt.audience.as_deref());
                (fractal, directory, None, verifier)
            }
        };
        let directory: Arc<dyn Directory> = Arc::new(directory);
        let services = graphql::Services {
            fractal: Arc::new(FractalClient::new(fractal, directory.clone())),
            directory: directory.clone(),
            max_user_ids: config.max_user_ids,
        };
        let router = server::router(server::AppState { schema: graphql::schema(services), verifier });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(App { listener, router, sandbox, directory })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The sandbox providers, in sandbox mode.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    pub fn directory(&self) -> Arc<dyn Directory> {
        self.directory.clone()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}
