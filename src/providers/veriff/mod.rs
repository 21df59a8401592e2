//! Veriff: a user's verification sessions (their ids stored in the directory, learned from decision webhooks whose
//! `vendorData` names the user), each read through `GET /v1/sessions/{id}/decision` signed with the shared secret,
//! and signed decision webhooks.

mod client;
mod mapping;
pub mod models;
mod states;
mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::try_join_all;

use crate::directory::import::{FieldKind, ImportField};
use crate::directory::Directory;
use crate::domain::levels::LevelMap;
use crate::domain::{Provider, ProviderProfile, UserId};
use crate::providers::connector::{CaseSource, Connector, Outcome, WebhookReader};
use crate::providers::registry::{Capability, ProviderModule, ProviderSettings};
use crate::providers::section::Section;
use crate::providers::UpstreamPolicy;
use crate::secret::Secret;

pub use client::{signature, VeriffClient};
pub use webhook::check_signature;

crate::id_type!(
    /// A Veriff verification session id (a UUID).
    VeriffSessionId
);

/// The level of every Veriff case: a decision names none, so a session counts as the integration's identity
/// verification, which `KYC_GATEWAY_VERIFF_LEVELS` maps to items.
pub const LEVEL: &str = "idv";

/// A document, a selfie matched to it and Veriff's liveness checks: Fractal's `basic` with `selfie` and `liveness`
/// (Veriff verifies no proof of address, which `plus` needs).
pub const DEFAULT_LEVELS: &str = "idv=basic+selfie+liveness";

/// The most sessions read for one user at once; past it the rest are left out (and logged), so one user cannot
/// cost unbounded calls.
const MAX_SESSIONS: usize = 50;

/// The registry's entry.
pub static MODULE: Module = Module;

pub struct Module;

impl ProviderModule for Module {
    fn provider(&self) -> Provider {
        Provider::Veriff
    }

    fn variables(&self) -> &'static [&'static str] {
        &[
            "KYC_GATEWAY_VERIFF_BASE_URL",
            "KYC_GATEWAY_VERIFF_API_KEY",
            "KYC_GATEWAY_VERIFF_SHARED_SECRET",
            "KYC_GATEWAY_VERIFF_LEVELS",
            "KYC_GATEWAY_VERIFF_LEARN_SESSIONS",
        ]
    }

    fn configure(&self, section: &Section<'_>) -> anyhow::Result<Option<Arc<dyn ProviderSettings>>> {
        if !section.any(&["BASE_URL", "API_KEY", "SHARED_SECRET"]) {
            return Ok(None);
        }
        Ok(Some(Arc::new(Settings {
            base_url: section.or("BASE_URL", "https://stationapi.veriff.com"),
            api_key: section.secret("API_KEY")?,
            shared_secret: section.secret("SHARED_SECRET")?,
            levels: section.levels("LEVELS", DEFAULT_LEVELS)?,
            learn_sessions: section.switch("LEARN_SESSIONS", false)?,
            policy: section.policy(&UpstreamPolicy::default())?,
            webhook_secrets: section.webhook_secrets()?,
        })))
    }

    fn offers(&self) -> &'static [Capability] {
        &[Capability::Cases]
    }

    fn import_fields(&self) -> &'static [ImportField] {
        &[ImportField { name: "veriff_session_ids", provider: Provider::Veriff, kind: FieldKind::References }]
    }
}

/// A real Veriff.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The integration's base URL (`https://stationapi.veriff.com`; the Customer Portal shows it).
    pub base_url: String,
    /// `X-AUTH-CLIENT`.
    pub api_key: Secret,
    /// Signs requests (`X-HMAC-SIGNATURE`).
    pub shared_secret: Secret,
    /// Veriff's level (`idv`) -> items.
    pub levels: LevelMap,
    /// Whether a decision webhook's `vendorData` may add its session to that user. Off: anyone holding the public
    /// API key can create a session naming any `vendorData`, so only sessions the directory holds count.
    pub learn_sessions: bool,
    pub policy: UpstreamPolicy,
    /// The shared secret keys Veriff signs its webhooks with (several while one is rotated).
    pub webhook_secrets: Vec<Secret>,
}

impl ProviderSettings for Settings {
    fn provider(&self) -> Provider {
        Provider::Veriff
    }

    fn connect(&self, directory: Arc<dyn Directory>) -> Arc<dyn Connector> {
        Arc::new(Veriff {
            client: VeriffClient::new(self),
            levels: self.levels.clone(),
            webhooks: webhook::Reader { secrets: self.webhook_secrets.clone(), learn_sessions: self.learn_sessions },
            directory,
        })
    }
}

/// Veriff, connected.
pub struct Veriff {
    client: VeriffClient,
    levels: LevelMap,
    webhooks: webhook::Reader,
    directory: Arc<dyn Directory>,
}

impl Connector for Veriff {
    fn provider(&self) -> Provider {
        Provider::Veriff
    }

    fn items(&self, level: &str) -> Vec<String> {
        self.levels.items(level)
    }

    fn mapped_items(&self) -> Vec<String> {
        self.levels.all_items().map(str::to_owned).collect()
    }

    fn cases(&self) -> Option<&dyn CaseSource> {
        Some(self)
    }

    fn webhooks(&self) -> Option<&dyn WebhookReader> {
        Some(&self.webhooks)
    }
}

#[async_trait]
impl CaseSource for Veriff {
    /// One case per stored session, newest first; a session Veriff does not know is left out.
    async fn profile(&self, user: &UserId) -> Outcome<Option<ProviderProfile>> {
        let mut sessions = self.directory.references(user, Provider::Veriff).await?;
        if sessions.len() > MAX_SESSIONS {
            tracing::warn!(provider = "veriff", sessions = sessions.len(), "a user has more sessions than are read");
            sessions.truncate(MAX_SESSIONS);
        }
        let reads = sessions.into_iter().map(|id| async move {
            let session = VeriffSessionId::trusted(id);
            let answer = self.client.decision(&session).await?;
            Ok::<_, crate::providers::ProviderError>(answer.map(|a| match &a.verification {
                Some(decision) => mapping::case(decision, &self.levels),
                None => mapping::undecided(&session, &self.levels),
            }))
        });
        let mut cases: Vec<_> = try_join_all(reads).await?.into_iter().flatten().collect();
        cases.sort_by(|a, b| b.requested_at.cmp(&a.requested_at).then_with(|| a.id.cmp(&b.id)));
        Ok((!cases.is_empty()).then(|| ProviderProfile { cases, ..ProviderProfile::default() }))
    }
}
