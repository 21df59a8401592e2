//! kyc-gateway: one GraphQL API in front of several KYC providers, with field-level OAuth scopes.
//!
//! [`App::build`] turns a [`Config`] into a bound, ready-to-serve application. `main.rs` and the integration tests
//! use the same builder, so the tests exercise what runs in production. ARCHITECTURE.md maps the modules.

pub mod audit;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod digest;
pub mod directory;
pub mod domain;
pub mod freshness;
pub mod graphql;
pub mod providers;
pub mod rate_limit;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{broadcast, watch, Notify};

pub use config::Config;

use audit::Audit;
use auth::token::{TokenVerifier, DEV_ISSUER};
use config::{EncryptionSettings, LevelSettings, WebhookSettings};
use directory::import::{Entry, FractalEntry};
use directory::linking::StateSigner;
use directory::{CachedDirectory, Directory, SqlDirectory};
use providers::cache::ProviderCache;
use providers::fractal::{FractalClient, FractalConfig};
use providers::ident::{IdentClient, IdentConfig};
use providers::linking::Linking;
use providers::sila::{SilaClient, SilaConfig};
use providers::sumsub::{SumsubClient, SumsubConfig};
use providers::Providers;
use sandbox::Sandbox;
use store::changes::{Change, Changes};
use store::crypto::{EncryptionKey, TokenCipher};
use store::{Store, StoreSettings};
use webhooks::inbox::Inbox;
use webhooks::worker::Worker;
use webhooks::Webhooks;

/// A gateway bound to its address, not yet serving.
pub struct App {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    sandbox: Option<Sandbox>,
    providers: Providers,
    store: Store,
    directory: Arc<SqlDirectory>,
    /// Background tasks (the change listener and its subscriber, the webhook worker), stopped when serving ends.
    tasks: Vec<tokio::task::AbortHandle>,
    /// The audit writer, stopped last: what it still holds is written first.
    audit_writer: Option<audit::Writer>,
    /// Tells WebSocket connections the server is shutting down.
    shutdown: watch::Sender<bool>,
    connections: Arc<server::connections::Connections>,
    /// This replica's verification events, which subscriptions follow.
    events: broadcast::Sender<graphql::Pushed>,
    /// Timeouts and bounds of connections (the accept loop).
    connection_settings: config::ConnectionSettings,
    /// Callers' tokens: its readiness is whether every issuer's keys are at hand.
    verifier: TokenVerifier,
    /// Not ready from the shutdown signal on.
    readiness: server::health::Readiness,
    /// `/metrics` alone, when configured apart from the API.
    metrics_listener: Option<tokio::net::TcpListener>,
    /// How long requests in flight have to finish once the listener closes.
    shutdown_deadline: std::time::Duration,
}

/// How long a shutdown waits for WebSocket connections to finish their closing handshake.
const WEBSOCKET_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Where sandbox users come back after approving at the sandbox Fractal, unless configured: a frontend's callback.
pub const SANDBOX_REDIRECT_URI: &str = "http://localhost:3000/fractal/callback";

/// The provider clients' configurations: the sandbox's, or the configured real ones.
#[derive(Default)]
struct Upstreams {
    fractal: Option<FractalConfig>,
    sumsub: Option<SumsubConfig>,
    sila: Option<SilaConfig>,
    ident: Option<IdentConfig>,
}

/// Makes every sandbox user known, linked to the (new) sandbox Fractal where they are in its population (their
/// gateway id is their Fractal uid).
async fn seed_sandbox_users(sandbox: &Sandbox, directory: &SqlDirectory) -> anyhow::Result<()> {
    let entries: Vec<Entry> = sandbox
        .users()
        .iter()
        .map(|user| Entry {
            user_id: user.clone(),
            fractal: sandbox
                .fractal
                .population()
                .get(user)
                .map(|u| FractalEntry { uid: u.uid.clone(), refresh_token: sandbox.fractal.link_user(&u.uid) }),
            sumsub_applicant_id: None,
            sila_user_handle: None,
            ident_user_id: None,
        })
        .collect();
    // The sandbox Fractal is new at every start: links a file database kept from a former one are replaced.
    directory::import::import(directory, &entries, true).await?;
    Ok(())
}

/// The webhook settings, with the sandbox providers' signing secrets added in sandbox mode.
fn webhook_settings(config: &Config, sandbox: Option<&Sandbox>) -> WebhookSettings {
    let mut settings = config.webhooks.clone();
    if let Some(sandbox) = sandbox {
        let own = sandbox.webhook_secrets();
        settings.secrets.fractal.push(own.fractal);
        settings.secrets.sumsub.push(own.sumsub);
        settings.secrets.sila.push(own.sila);
        settings.secrets.ident.push(own.ident);
    }
    settings
}

/// Points every provider at its sandbox. The sandbox's own levels are mapped under the configured ones.
fn sandbox_upstreams(config: &Config, sandbox: &Sandbox) -> (Upstreams, LevelSettings) {
    let (sumsub_levels, sila_flows) = Sandbox::levels();
    let levels = LevelSettings {
        sumsub: config.levels.sumsub.clone().under(sumsub_levels),
        sila: config.levels.sila.clone().under(sila_flows),
        ident: config.levels.ident.clone(),
    };
    let p = &config.policies;
    let upstreams = Upstreams {
        fractal: Some(FractalConfig {
            frontend_url: sandbox.fractal.base_url().to_owned(),
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
            frontend_url: f.frontend_url.clone(),
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

/// The keys secrets at rest are sealed with: the configured ones, or, for a sandbox-mode gateway only, one derived
/// from the dev secret (so a sandbox file database survives restarts). Commands that write a production database
/// (`directory import`) never get the derived key: see [`configured_keys`].
fn serving_keys(config: &Config) -> EncryptionSettings {
    config.encryption.clone().unwrap_or_else(|| EncryptionSettings {
        current: EncryptionKey::derived("kyc-gateway sandbox encryption key", &config.dev_secret),
        older: Vec::new(),
    })
}

/// The configured keys, required: a tool that writes sealed tokens must seal them with the key the gateway reads
/// them with, never a key anyone can derive.
pub fn configured_keys(config: &Config) -> anyhow::Result<EncryptionSettings> {
    config.encryption.clone().context(
        "set KYC_GATEWAY_ENCRYPTION_KEY (and KYC_GATEWAY_ENCRYPTION_OLD_KEYS) to the keys the gateway runs with: \
         Fractal tokens are sealed with it",
    )
}

/// Connects to the configured database (sandbox mode: a new in-memory one) and brings its schema up to date. What
/// `App::build` and the `migrate` command share.
pub async fn open_database(config: &Config) -> anyhow::Result<Store> {
    let store_settings = config.database.clone().unwrap_or_else(StoreSettings::memory);
    let store = Store::connect(&store_settings).await.context("connecting to the database")?;
    let applied = store.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "migrated the database");
    }
    Ok(store)
}

/// [`open_database`], and the directory on it with tokens sealed under `keys`.
pub async fn open_store(config: &Config, keys: &EncryptionSettings) -> anyhow::Result<(Store, Arc<SqlDirectory>)> {
    let store = open_database(config).await?;
    let cipher = Arc::new(TokenCipher::new(&keys.current, &keys.older));
    Ok((store.clone(), Arc::new(SqlDirectory::new(store, cipher))))
}

/// Applies every change published on the channel to this replica's caches, then hands verification events to this
/// replica's subscribers (so a subscriber's next query already sees the change), until aborted.
fn follow_changes(
    changes: &Changes,
    providers: Providers,
    events: broadcast::Sender<graphql::Pushed>,
) -> tokio::task::AbortHandle {
    let mut receiver = changes.subscribe();
    tokio::spawn(async move {
        loop {
            match receiver.recv().await {
                Ok(change) => {
                    providers.apply(&change).await;
                    // No subscriber is no error.
                    match change {
                        Change::Verification { event } => {
                            let _ = events.send(graphql::Pushed::Event(Arc::new(event)));
                        }
                        Change::Resync => {
                            let _ = events.send(graphql::Pushed::Gap);
                        }
                        Change::UserChanged { .. } => {}
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    providers.apply(&Change::Resync).await;
                    let _ = events.send(graphql::Pushed::Gap);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    })
    .abort_handle()
}

impl App {
    /// Checks the configuration, starts the sandbox providers when no real one is configured, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        config.validate()?;
        // The metrics recorder first: nothing recorded while building is lost.
        telemetry::metrics::handle();
        let keys = serving_keys(&config);
        let (store, sql) = open_store(&config, &keys).await?;
        let (sandbox, upstreams, levels, verifier) = if config.is_sandbox() {
            let sandbox = Sandbox::start(&config.sandbox).await.context("starting the sandbox providers")?;
            seed_sandbox_users(&sandbox, &sql).await.context("registering the sandbox users")?;
            let (upstreams, levels) = sandbox_upstreams(&config, &sandbox);
            let verifier = TokenVerifier::hs256(&config.dev_secret, DEV_ISSUER, None);
            (Some(sandbox), upstreams, levels, verifier)
        } else {
            let verifier = TokenVerifier::new(&config.tokens).context("setting up token verification")?;
            (None, real_upstreams(&config), config.levels.clone(), verifier)
        };
        let directory: Arc<dyn Directory> = Arc::new(CachedDirectory::new(sql.clone()));
        let (changes, listener) = Changes::start(&store).await.context("listening for changes")?;
        let redirect_uris = match (&sandbox, config.linking.redirect_uris.is_empty()) {
            (Some(_), true) => vec![SANDBOX_REDIRECT_URI.to_owned()],
            _ => config.linking.redirect_uris.clone(),
        };
        let linking = Linking {
            signer: StateSigner::new(&keys.current),
            redirect_uris,
            scopes: config.linking.scopes.clone().unwrap_or_else(authz::all_user_scopes),
            state_ttl: config.linking.state_ttl,
        };
        let providers = Providers {
            fractal: upstreams.fractal.map(|c| Arc::new(FractalClient::new(c, directory.clone()))),
            sumsub: upstreams.sumsub.map(|c| Arc::new(SumsubClient::new(c))),
            sila: upstreams.sila.map(|c| Arc::new(SilaClient::new(c))),
            ident: upstreams.ident.map(|c| Arc::new(IdentClient::new(c))),
            directory,
            cache: ProviderCache::new(&config.cache),
            changes: changes.clone(),
            linking: Some(Arc::new(linking)),
        };
        let levels = Arc::new(levels);
        let (events, _) = broadcast::channel(config.subscriptions.buffer);
        let mut tasks: Vec<tokio::task::AbortHandle> = listener.into_iter().collect();
        tasks.push(telemetry::metrics::spawn_upkeep());
        let (audit, audit_writer) = Audit::start(&store, &config.audit);
        tasks.push(follow_changes(&changes, providers.clone(), events.clone()));
        // Issuers' keys: fetched from now on; a request that comes before the first fetch ends waits for it.
        tasks.extend(verifier.start());
        let wake = Arc::new(Notify::new());
        let inbox = Inbox::new(store.clone());
        let webhook_settings = webhook_settings(&config, sandbox.as_ref());
        if webhook_settings.worker {
            let worker = Worker {
                inbox: inbox.clone(),
                changes: changes.clone(),
                directory: providers.directory.clone(),
                sila: providers.sila.clone(),
                ident: providers.ident.clone(),
                levels: levels.clone(),
                wake: wake.clone(),
                poll_interval: webhook_settings.poll_interval,
                audit: audit.clone(),
            };
            tasks.push(worker.spawn());
        }
        let services = graphql::Services {
            providers: providers.clone(),
            levels,
            fan_out: config.fan_out,
            loader_delay: config.loader_delay,
            max_user_ids: config.max_user_ids,
            events: events.clone(),
            store: store.clone(),
            caller_names: Arc::new(config.audit.caller_names.iter().cloned().collect()),
        };
        let bounds = Arc::new(graphql::Bounds {
            limits: config.limits.clone(),
            trusted: graphql::TrustedDocuments::load(&config.documents)?,
            require_purpose: config.audit.require_purpose,
        });
        // Introspection and suggestions help a developer; in production they map the schema for an attacker.
        let exposure = graphql::Exposure {
            introspection: config.documents.introspection.unwrap_or(sandbox.is_some()),
            suggestions: config.documents.suggestions.unwrap_or(sandbox.is_some()),
        };
        let schema = graphql::schema(services.clone(), bounds.clone(), exposure);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let connections = server::connections::Connections::new(
            config.subscriptions.max_connections_per_caller,
            config.subscriptions.max_connections,
        );
        let state = server::AppState::new(server::Shared {
            schema,
            verifier: verifier.clone(),
            services,
            webhooks: Webhooks::new(webhook_settings, inbox, wake),
            subscriptions: Arc::new(config.subscriptions.clone()),
            connections: connections.clone(),
            in_flight: server::connections::PerCaller::new(config.connections.max_in_flight_per_caller),
            bounds,
            audit,
            shutdown: shutdown_rx,
            readiness: server::health::Readiness::default(),
        });
        let readiness = state.readiness.clone();
        let router = server::router(
            state,
            server::RouterSettings {
                connections: &config.connections,
                cors: &config.cors,
                sandbox: sandbox.is_some(),
                metrics: config.operations.metrics_listen.is_none(),
            },
        );
        let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| {
            format!("cannot listen on {} (choose another with --listen or KYC_GATEWAY_LISTEN)", config.listen)
        })?;
        let metrics_listener = match config.operations.metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (KYC_GATEWAY_METRICS_LISTEN)"))?,
            ),
            None => None,
        };
        if let Some(sandbox) = &sandbox {
            // The sandbox providers deliver their webhooks to this gateway.
            // Listening on every interface (`0.0.0.0`, in a container), it is reached on loopback.
            let mut target = listener.local_addr()?;
            if target.ip().is_unspecified() {
                target.set_ip(match target {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            sandbox.set_webhook_targets(&[format!("http://{target}")]);
        }
        Ok(App {
            listener,
            router,
            sandbox,
            providers,
            store,
            directory: sql,
            tasks,
            audit_writer,
            shutdown,
            connections,
            events,
            connection_settings: config.connections.clone(),
            verifier,
            readiness,
            metrics_listener,
            shutdown_deadline: config.operations.shutdown_deadline,
        })
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

    /// This replica's verification events: what subscriptions follow (`receiver_count` is the number of active
    /// subscriptions).
    pub fn verification_events(&self) -> broadcast::Sender<graphql::Pushed> {
        self.events.clone()
    }

    /// The verifier of callers' tokens (`ready()`: every configured issuer's keys have been fetched).
    pub fn token_verifier(&self) -> TokenVerifier {
        self.verifier.clone()
    }

    /// Whether this replica should get traffic; [`server::health::Readiness::drain`] takes it out of rotation
    /// (`/readyz` answers 503) while it still serves.
    pub fn readiness(&self) -> server::health::Readiness {
        self.readiness.clone()
    }

    /// The address of the metrics listener, when `/metrics` is served apart from the API.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The directory on the database itself (imports; tests).
    pub fn sql_directory(&self) -> Arc<SqlDirectory> {
        self.directory.clone()
    }

    /// Serves until `shutdown` completes, then closes the listener, closes WebSocket connections (1001, going away),
    /// lets the requests in flight finish within the shutdown deadline, stops the background tasks, lets the audit
    /// writer write what it still holds (within what is left of the deadline, at least 2 s) and closes the database.
    /// (The drain delay before, when the process got its signal, is `server::health::on_shutdown_signal`.)
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let (stopping, readiness) = (self.shutdown.clone(), self.readiness.clone());
        let signalled = Arc::new(std::sync::OnceLock::new());
        let signal_at = signalled.clone();
        let signal = async move {
            shutdown.await;
            let _ = signal_at.set(tokio::time::Instant::now());
            readiness.drain();
            let _ = stopping.send(true);
        };
        // The metrics listener serves until the end: the drain is worth watching.
        let metrics = self.metrics_listener.map(|listener| {
            tokio::spawn(async move { axum::serve(listener, server::observe::metrics_router()).await }).abort_handle()
        });
        let served =
            server::serve::serve(self.listener, self.router, &self.connection_settings, signal, self.shutdown_deadline)
                .await;
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(WEBSOCKET_CLOSE_GRACE, self.connections.closed()).await;
        for task in &self.tasks {
            task.abort();
        }
        if let Some(writer) = self.audit_writer {
            let deadline = signalled.get().map_or_else(tokio::time::Instant::now, |at| *at + self.shutdown_deadline);
            writer.finish(deadline).await;
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        self.store.close().await;
        served
    }
}
