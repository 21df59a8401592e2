//! kyc-gateway: one GraphQL API in front of several KYC providers, with field-level OAuth scopes.
//!
//! [`App::build`] turns a [`Config`] into a bound, ready-to-serve application. `main.rs` and the integration tests
//! use the same builder, so the tests exercise what runs in production. ARCHITECTURE.md maps the modules.

pub mod auth;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod directory;
pub mod domain;
pub mod graphql;
pub mod providers;
pub mod rate_limit;
pub mod sandbox;
pub mod secret;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

pub use config::Config;

use auth::token::{TokenVerifier, DEV_ISSUER};
use config::LevelSettings;
use directory::{Directory, FractalTokens, InMemoryDirectory, ProviderRefs};
use providers::cache::ProviderCache;
use providers::fractal::{FractalClient, FractalConfig};
use providers::ident::{IdentClient, IdentConfig};
use providers::sila::{SilaClient, SilaConfig};
use providers::sumsub::{SumsubClient, SumsubConfig};
use providers::Providers;
use sandbox::Sandbox;

/// A gateway bound to its address, not yet serving.
pub struct App {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    sandbox: Option<Sandbox>,
    providers: Providers,
}

/// The provider clients' configurations: the sandbox's, or the configured real ones.
#[derive(Default)]
struct Upstreams {
    fractal: Option<FractalConfig>,
    sumsub: Option<SumsubConfig>,
    sila: Option<SilaConfig>,
    ident: Option<IdentConfig>,
}

/// Points every provider at its sandbox and makes every sandbox user known, linked to Fractal where they are in
/// the Fractal population (their gateway id is their Fractal uid). The sandbox's own levels are mapped under the
/// configured ones.
fn sandbox_upstreams(config: &Config, sandbox: &Sandbox, directory: &InMemoryDirectory) -> (Upstreams, LevelSettings) {
    for user in sandbox.users() {
        directory.register(user, ProviderRefs::default());
    }
    for user in &sandbox.fractal.population().users {
        let refresh_token = sandbox.fractal.link_user(&user.uid);
        let tokens = FractalTokens { access_token: None, access_renew_at: None, refresh_token };
        directory.link_fractal(&user.uid, &user.uid, tokens);
    }
    let (sumsub_levels, sila_flows) = Sandbox::levels();
    let levels = LevelSettings {
        sumsub: config.levels.sumsub.clone().under(sumsub_levels),
        sila: config.levels.sila.clone().under(sila_flows),
        ident: config.levels.ident.clone(),
    };
    let p = &config.policies;
    let upstreams = Upstreams {
        fractal: Some(FractalConfig {
            auth_url: sandbox.fractal.base_url().to_owned(),
            resource_url: sandbox.fractal.base_url().to_owned(),
            client_id: sandbox.fractal.client_id().to_owned(),
            client_secret: sandbox.fractal.client_secret(),
            policy: p.fractal.clone(),
        }),
        sumsub: Some(SumsubConfig {
            base_url: sandbox.sumsub.base_url().to_owned(),
            app_token: sandbox.sumsub.app_token(),
            secret_key: sandbox.sumsub.secret_key(),
            levels: levels.sumsub.clone(),
            policy: p.sumsub.clone(),
        }),
        sila: Some(SilaConfig {
            base_url: sandbox.sila.base_url().to_owned(),
            app_handle: sandbox.sila.app_handle().to_owned(),
            client_id: sandbox.sila.client_id().to_owned(),
            client_secret: sandbox.sila.client_secret(),
            user_handle_template: config.sila_user_handle_template.clone(),
            flows: levels.sila.clone(),
            policy: p.sila.clone(),
        }),
        ident: Some(IdentConfig {
            base_url: sandbox.ident.base_url(),
            token: sandbox.ident.application_token(),
            policy: p.ident.clone(),
        }),
    };
    (upstreams, levels)
}

/// The configured real providers.
fn real_upstreams(config: &Config) -> Upstreams {
    let p = &config.policies;
    Upstreams {
        fractal: config.fractal.as_ref().map(|f| FractalConfig {
            auth_url: f.auth_url.clone(),
            resource_url: f.resource_url.clone(),
            client_id: f.client_id.clone(),
            client_secret: f.client_secret.clone(),
            policy: p.fractal.clone(),
        }),
        sumsub: config.sumsub.as_ref().map(|s| SumsubConfig {
            base_url: s.base_url.clone(),
            app_token: s.app_token.clone(),
            secret_key: s.secret_key.clone(),
            levels: config.levels.sumsub.clone(),
            policy: p.sumsub.clone(),
        }),
        sila: config.sila.as_ref().map(|s| SilaConfig {
            base_url: s.base_url.clone(),
            app_handle: s.app_handle.clone(),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.clone(),
            user_handle_template: config.sila_user_handle_template.clone(),
            flows: config.levels.sila.clone(),
            policy: p.sila.clone(),
        }),
        ident: config.ident.as_ref().map(|i| IdentConfig {
            base_url: i.base_url.clone(),
            token: i.token.clone(),
            policy: p.ident.clone(),
        }),
    }
}

impl App {
    /// Checks the configuration, starts the sandbox providers when no real one is configured, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        config.validate()?;
        let (directory, sandbox, upstreams, levels, verifier) = if config.is_sandbox() {
            let sandbox = Sandbox::start(&config.sandbox).await.context("starting the sandbox providers")?;
            let directory = InMemoryDirectory::new();
            let (upstreams, levels) = sandbox_upstreams(&config, &sandbox, &directory);
            let verifier = TokenVerifier::hs256(&config.dev_secret, DEV_ISSUER, None);
            (directory, Some(sandbox), upstreams, levels, verifier)
        } else {
            let directory = match &config.directory_file {
                Some(path) => InMemoryDirectory::from_json_file(path)?,
                None => InMemoryDirectory::new(),
            };
            let jwt = config.jwt.as_ref().context("production mode needs a token issuer")?;
            let verifier = TokenVerifier::hs256(&jwt.secret, &jwt.issuer, jwt.audience.as_deref());
            (directory, None, real_upstreams(&config), config.levels.clone(), verifier)
        };
        let directory: Arc<dyn Directory> = Arc::new(directory);
        let providers = Providers {
            fractal: upstreams.fractal.map(|c| Arc::new(FractalClient::new(c, directory.clone()))),
            sumsub: upstreams.sumsub.map(|c| Arc::new(SumsubClient::new(c))),
            sila: upstreams.sila.map(|c| Arc::new(SilaClient::new(c))),
            ident: upstreams.ident.map(|c| Arc::new(IdentClient::new(c))),
            directory,
            cache: ProviderCache::new(&config.cache),
        };
        let services = graphql::Services {
            providers: providers.clone(),
            levels: Arc::new(levels),
            fan_out: config.fan_out,
            loader_delay: config.loader_delay,
            max_user_ids: config.max_user_ids,
        };
        let schema = graphql::schema(services.clone());
        let router = server::router(server::AppState { schema, verifier, services });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(App { listener, router, sandbox, providers })
    }

    /// The address the gateway listens on (with port 0 configured, the one the system chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The sandbox providers, in sandbox mode.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// The providers' facade: the directory, the cache across requests (for invalidation) and the clients.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}
