//! The composition root: configuration -> providers (the registry) -> store -> server. `main.rs` (through
//! `cli.rs`), every integration test and the benchmark build the gateway through [`App::build`].

mod changes;
#[cfg(feature = "sandbox")]
pub mod sandbox;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{broadcast, watch, Notify};

pub use store::{configured_keys, open_database, open_store};

use crate::audit::{self, Audit};
use crate::auth::token::{TokenVerifier, DEV_ISSUER};
use crate::config::{self, Config, Mode};
use crate::directory::linking::StateSigner;
use crate::directory::{CachedDirectory, Directory, SqlDirectory};
use crate::graphql;
use crate::providers::cache::ProviderCache;
use crate::providers::{ProviderSet, Providers};
use crate::server;
use crate::store::changes::Changes;
use crate::store::Store;
use crate::telemetry;
use crate::webhooks::inbox::Inbox;
use crate::webhooks::worker::Worker;
use crate::webhooks::Webhooks;

/// How many audit records a sandbox-mode gateway keeps in its in-memory database: the newest, so that it stays as
/// small under load as at rest (a production gateway keeps its trail for the retention period).
pub const SANDBOX_AUDIT_RECORDS: u64 = 10_000;

/// A gateway bound to its address, not yet serving.
pub struct App {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mode: Mode,
    #[cfg(feature = "sandbox")]
    sandbox: Option<crate::sandbox::Sandbox>,
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
    /// The response cache (its count of answers served).
    responses: Arc<server::responses::Responses>,
    /// `/metrics` alone, when configured apart from the API.
    metrics_listener: Option<tokio::net::TcpListener>,
    /// How long requests in flight have to finish once the listener closes.
    shutdown_deadline: std::time::Duration,
}

/// How long a shutdown waits for WebSocket connections to finish their closing handshake.
const WEBSOCKET_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Binds `addr`; the error names the setting and the cause.
async fn bind(addr: SocketAddr, setting: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(": something else listens there; choose another with {setting}"),
            _ => String::new(),
        };
        anyhow::anyhow!("cannot listen on {addr} ({e}){hint}")
    })
}

/// The audit checkpoints' key: sandbox mode without one signs with a key of its own, made at start (its public key
/// logged, for `audit verify --key`); production mode without one signs nothing, and says so.
fn signing_key(audit: &mut crate::audit::AuditSettings, mode: Mode) -> anyhow::Result<()> {
    if audit.mode == crate::audit::Mode::Off || audit.checkpoints.key.is_some() {
        return Ok(());
    }
    match mode {
        Mode::Sandbox => {
            // An id of its own: a database kept across restarts holds checkpoints of several such keys.
            let id = format!("sandbox-{}", &crate::secret::random_token()[..8]);
            let (key, _) = crate::audit::checkpoint::SigningKey::generate(&id).map_err(anyhow::Error::msg)?;
            tracing::info!(
                "audit checkpoints are signed with a key made at start (set KYC_GATEWAY_AUDIT_SIGNING_KEY to keep one); \
                 verify with: kyc-gateway audit verify --key {id}={}",
                key.public_base64()
            );
            audit.checkpoints.key = Some(key);
        }
        Mode::Production => tracing::warn!(
            "audit checkpoints are NOT signed: anyone who can write the database can rewrite the audit trail \
             undetected; set KYC_GATEWAY_AUDIT_SIGNING_KEY and KYC_GATEWAY_AUDIT_SIGNING_KEY_ID (see \
             docs/operations.md, \"Signed checkpoints\")"
        ),
    }
    Ok(())
}

impl App {
    /// Checks the configuration, starts the sandbox providers in sandbox mode, and binds the listener.
    pub async fn build(mut config: Config) -> anyhow::Result<App> {
        config.validate()?;
        // The metrics recorder first: nothing recorded while building is lost.
        telemetry::metrics::handle();
        let mode = config.mode();
        #[cfg(feature = "sandbox")]
        let (sandbox, vars) = match mode {
            Mode::Sandbox => {
                let (sandbox, vars) = sandbox::start(&config).await?;
                (Some(sandbox), vars)
            }
            Mode::Production => (None, config.vars.clone()),
        };
        #[cfg(not(feature = "sandbox"))]
        let vars = config.vars.clone();
        if mode == Mode::Sandbox && config.database.is_none() {
            config.audit.keep_last.get_or_insert(SANDBOX_AUDIT_RECORDS);
        }
        signing_key(&mut config.audit, mode)?;
        let provider_settings = config::provider_settings(&vars).context("configuring the providers")?;
        let keys = store::serving_keys(&config, mode)?;
        let (store, sql) = open_store(&config, &keys).await?;
        #[cfg(feature = "sandbox")]
        if let Some(sandbox) = &sandbox {
            sandbox::seed(sandbox, &sql).await?;
        }
        let verifier = match mode {
            Mode::Sandbox => TokenVerifier::hs256(&config.dev_secret, DEV_ISSUER, None),
            Mode::Production => TokenVerifier::new(&config.tokens).context("setting up token verification")?,
        };
        let directory: Arc<dyn Directory> = Arc::new(CachedDirectory::new(sql.clone()));
        let (changes, listener) = Changes::start(&store).await.context("listening for changes")?;
        let set = ProviderSet::connect(&provider_settings, &directory);
        let providers = Providers {
            set: set.clone(),
            directory,
            cache: ProviderCache::new(&config.cache),
            changes: changes.clone(),
            link_states: Arc::new(StateSigner::new(&keys.current)),
        };
        let (events, _) = broadcast::channel(config.subscriptions.buffer);
        let mut tasks: Vec<tokio::task::AbortHandle> = listener.into_iter().collect();
        tasks.push(telemetry::metrics::spawn_upkeep());
        tasks.push(crate::directory::linking::spawn_purge(providers.directory.clone()));
        let (audit, audit_writer) = Audit::start(&store, &config.audit);
        tasks.push(changes::follow(&changes, providers.clone(), events.clone()));
        // Issuers' keys: fetched from now on; a request that comes before the first fetch ends waits for it.
        tasks.extend(verifier.start());
        let wake = Arc::new(Notify::new());
        let inbox = Inbox::new(store.clone(), config.webhooks.clock.clone());
        if config.webhooks.worker {
            let worker = Worker {
                inbox: inbox.clone(),
                changes: changes.clone(),
                directory: providers.directory.clone(),
                providers: set.clone(),
                wake: wake.clone(),
                poll_interval: config.webhooks.poll_interval,
                audit: audit.clone(),
            };
            tasks.push(worker.spawn());
        }
        let services = graphql::Services {
            providers: providers.clone(),
            fan_out: config.fan_out,
            loader_delay: config.loader_delay,
            max_user_ids: config.max_user_ids,
            events: events.clone(),
            store: store.clone(),
            caller_names: Arc::new(caller_names(&config.audit.caller_names, verifier.users_issuer())),
        };
        let bounds = Arc::new(graphql::Bounds {
            limits: config.limits.clone(),
            trusted: graphql::TrustedDocuments::load(&config.documents)?,
            require_purpose: config.audit.require_purpose,
        });
        // Introspection and suggestions help a developer; in production they map the schema for an attacker.
        let sandboxed = mode == Mode::Sandbox;
        let exposure = graphql::Exposure {
            introspection: config.documents.introspection.unwrap_or(sandboxed),
            suggestions: config.documents.suggestions.unwrap_or(sandboxed),
        };
        let schema = graphql::schema(services.clone(), bounds.clone(), exposure);
        let introspection = Arc::new(graphql::introspection(exposure, config.documents.introspection_scope.clone()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let connections = server::connections::Connections::new(
            config.subscriptions.max_connections_per_caller,
            config.subscriptions.max_connections,
        );
        let responses =
            Arc::new(server::responses::Responses::new(&config.cache, providers.cache.clone(), graphql::declared()));
        let state = server::AppState::new(server::Shared {
            schema,
            introspection,
            verifier: verifier.clone(),
            services,
            webhooks: Webhooks::new(config.webhooks.clone(), set, inbox, wake),
            subscriptions: Arc::new(config.subscriptions.clone()),
            connections: connections.clone(),
            in_flight: server::connections::PerCaller::new(config.connections.max_in_flight_per_caller),
            bounds,
            audit,
            responses: responses.clone(),
            shutdown: shutdown_rx,
            readiness: server::health::Readiness::default(),
            mode,
        });
        let readiness = state.readiness.clone();
        // Production mode never serves `/metrics` beside the API: on its own listener, by default on loopback.
        let metrics_addr = config.operations.metrics_address(mode);
        let router = server::router(
            state,
            server::RouterSettings {
                connections: &config.connections,
                cors: &config.cors,
                sandbox: sandboxed,
                metrics: metrics_addr.is_none(),
                graphiql_sign_in: config.graphiql_sign_in.as_ref().filter(|_| !sandboxed),
                #[cfg(feature = "sandbox")]
                sandbox_sign_in: sandboxed.then(|| config.dev_secret.clone()),
            },
        );
        let listener = bind(config.listen, "--listen or KYC_GATEWAY_LISTEN").await?;
        let metrics_listener = match metrics_addr {
            Some(addr) => Some(bind(addr, "KYC_GATEWAY_METRICS_LISTEN").await?),
            None => None,
        };
        #[cfg(feature = "sandbox")]
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
            mode,
            #[cfg(feature = "sandbox")]
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
            responses,
            metrics_listener,
            shutdown_deadline: config.operations.shutdown_deadline,
        })
    }

    /// Sandbox or production.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The address the gateway listens on (with port 0 configured, the one the system chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The sandbox providers, in sandbox mode.
    #[cfg(feature = "sandbox")]
    pub fn sandbox(&self) -> Option<&crate::sandbox::Sandbox> {
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

    /// The response cache.
    pub fn responses(&self) -> Arc<server::responses::Responses> {
        self.responses.clone()
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

    /// Serves until `shutdown` completes, then drains: closes the listener and the WebSockets (1001), lets requests in
    /// flight finish within the shutdown deadline, stops the background tasks, lets the audit writer write what it
    /// holds and closes the database. The drain delay before it is `server::health::on_shutdown_signal`'s.
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

/// Display names by `(issuer, client id)`; a name configured without an issuer is for the issuer that names users.
fn caller_names(
    configured: &[(Option<String>, String, String)],
    users_issuer: Option<&str>,
) -> std::collections::HashMap<(String, String), String> {
    configured
        .iter()
        .filter_map(|(issuer, id, name)| {
            let issuer = issuer.as_deref().or(users_issuer)?;
            Some(((issuer.to_owned(), id.clone()), name.clone()))
        })
        .collect()
}
