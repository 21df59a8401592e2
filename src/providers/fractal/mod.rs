//! Fractal ID: users link their Fractal account (the OAuth authorization-code flow the gateway drives), whose
//! rotating tokens read `GET /v2/users/me`; the gateway's own client-credentials token reads the `/v2/stats/*`
//! statistics, which also answer `kycState` for many users at once; signed verification webhooks.

mod client;
mod mapping;
pub mod models;
mod states;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::directory::import::{FieldKind, ImportField};
use crate::directory::{Directory, DirectoryError};
use crate::domain::stats::{LevelVerification, StatusCounts};
use crate::domain::{level_items, Provider, ProviderProfile, UserId, VerificationCase};
use crate::providers::connector::{
    AccountLinking, BulkStates, ByReference, CaseSource, Connector, LinkSettings, LinkedAccount, Outcome,
    StatisticsSource, WebhookReader,
};
use crate::providers::registry::{Capability, ProviderModule, ProviderSettings};
use crate::providers::section::Section;
use crate::providers::UpstreamPolicy;
use crate::secret::Secret;

pub use client::FractalClient;

crate::id_type!(
    /// A Fractal user id (`uid`): the account a user linked.
    FractalUid
);

/// The registry's entry.
pub static MODULE: Module = Module;

pub struct Module;

impl ProviderModule for Module {
    fn provider(&self) -> Provider {
        Provider::Fractal
    }

    fn variables(&self) -> &'static [&'static str] {
        &[
            "KYC_GATEWAY_FRACTAL_CLIENT_ID",
            "KYC_GATEWAY_FRACTAL_CLIENT_SECRET",
            "KYC_GATEWAY_FRACTAL_AUTH_URL",
            "KYC_GATEWAY_FRACTAL_RESOURCE_URL",
            "KYC_GATEWAY_FRACTAL_FRONTEND_URL",
            "KYC_GATEWAY_FRACTAL_REDIRECT_URIS",
            "KYC_GATEWAY_FRACTAL_LINK_SCOPES",
            "KYC_GATEWAY_FRACTAL_LINK_STATE_TTL_SECS",
            "KYC_GATEWAY_FRACTAL_LINK_STATES_PER_USER",
        ]
    }

    fn configure(&self, section: &Section<'_>) -> anyhow::Result<Option<Arc<dyn ProviderSettings>>> {
        if !section.any(&["CLIENT_ID", "CLIENT_SECRET", "AUTH_URL", "RESOURCE_URL", "FRONTEND_URL"]) {
            return Ok(None);
        }
        let redirect_uris = section
            .get("REDIRECT_URIS")
            .map(|v| v.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Some(Arc::new(Settings {
            frontend_url: section.or("FRONTEND_URL", "https://fractal.id"),
            auth_url: section.or("AUTH_URL", "https://auth.fractal.id"),
            resource_url: section.or("RESOURCE_URL", "https://resource.fractal.id"),
            client_id: section.required("CLIENT_ID")?,
            client_secret: section.secret("CLIENT_SECRET")?,
            policy: section.policy(&UpstreamPolicy::default())?,
            webhook_secrets: section.webhook_secrets()?,
            linking: LinkSettings {
                redirect_uris,
                scopes: section.get("LINK_SCOPES").unwrap_or_else(kyc_vocabulary::scopes::all_user_scopes),
                // Fractal's codes live 10 minutes; so do states.
                state_ttl: section.secs("LINK_STATE_TTL_SECS", Duration::from_secs(600))?,
                open_states: match section.parse("LINK_STATES_PER_USER", 5usize)? {
                    0 => anyhow::bail!("{} must be at least 1", section.name("LINK_STATES_PER_USER")),
                    n => n,
                },
            },
        })))
    }

    fn offers(&self) -> &'static [Capability] {
        &[Capability::Cases, Capability::Statistics, Capability::Linking]
    }

    fn import_fields(&self) -> &'static [ImportField] {
        &[ImportField { name: "fractal", provider: Provider::Fractal, kind: FieldKind::Link }]
    }
}

/// A real Fractal.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where users authorize (`/authorize`): `https://fractal.id`, staging `https://next.fractal.id`.
    pub frontend_url: String,
    /// Token endpoint host.
    pub auth_url: String,
    /// Resource API host.
    pub resource_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub policy: UpstreamPolicy,
    pub webhook_secrets: Vec<Secret>,
    /// How users link their Fractal accounts.
    pub linking: LinkSettings,
}

impl ProviderSettings for Settings {
    fn provider(&self) -> Provider {
        Provider::Fractal
    }

    fn connect(&self, directory: Arc<dyn Directory>) -> Arc<dyn Connector> {
        Arc::new(Fractal {
            client: FractalClient::new(self, directory.clone()),
            webhooks: webhook::Reader { secrets: self.webhook_secrets.clone() },
            linking: self.linking.clone(),
            directory,
        })
    }
}

/// Fractal, connected.
pub struct Fractal {
    client: FractalClient,
    webhooks: webhook::Reader,
    linking: LinkSettings,
    directory: Arc<dyn Directory>,
}

impl Connector for Fractal {
    fn provider(&self) -> Provider {
        Provider::Fractal
    }

    /// Fractal's levels are items already: `plus+selfie` covers `plus` and `selfie`.
    fn items(&self, level: &str) -> Vec<String> {
        level_items(level)
    }

    fn cases(&self) -> Option<&dyn CaseSource> {
        Some(self)
    }

    fn statistics(&self) -> Option<&dyn StatisticsSource> {
        Some(self)
    }

    fn linking(&self) -> Option<&dyn AccountLinking> {
        Some(self)
    }

    fn webhooks(&self) -> Option<&dyn WebhookReader> {
        Some(&self.webhooks)
    }
}

#[async_trait]
impl CaseSource for Fractal {
    /// The user's Fractal data; `None` when the user never linked Fractal.
    async fn profile(&self, user: &UserId) -> Outcome<Option<ProviderProfile>> {
        self.client.profile(user).await
    }

    fn has_contacts(&self) -> bool {
        true
    }

    fn bulk_states(&self) -> Option<&dyn BulkStates> {
        Some(self)
    }
}

#[async_trait]
impl BulkStates for Fractal {
    /// Every user's verification of every level, from the statistics.
    async fn all(&self) -> Outcome<ByReference<VerificationCase>> {
        self.client.cases_by_uid().await
    }

    async fn reference(&self, user: &UserId) -> Result<Option<String>, DirectoryError> {
        self.directory.link_subject(user, Provider::Fractal).await
    }
}

#[async_trait]
impl StatisticsSource for Fractal {
    async fn total(&self) -> Outcome<StatusCounts> {
        self.client.total_verifications().await
    }

    async fn by_country(&self) -> Outcome<Vec<(String, StatusCounts)>> {
        self.client.country_verifications().await
    }

    async fn level_verifications(&self) -> Outcome<Vec<LevelVerification>> {
        self.client.level_verifications().await
    }

    async fn user_of(&self, reference: &str) -> Result<Option<UserId>, DirectoryError> {
        self.directory.user_for_link(Provider::Fractal, reference).await
    }

    async fn users_of(&self, references: &[String]) -> Result<Vec<Option<UserId>>, DirectoryError> {
        self.directory.users_for_links(Provider::Fractal, references).await
    }
}

#[async_trait]
impl AccountLinking for Fractal {
    fn settings(&self) -> &LinkSettings {
        &self.linking
    }

    fn authorize_url(&self, redirect_uri: &str, scope: &str, state: &str, code_challenge: &str) -> String {
        self.client.authorize_url(redirect_uri, scope, state, code_challenge)
    }

    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&Secret>,
    ) -> Outcome<LinkedAccount> {
        self.client.exchange_code(code, redirect_uri, code_verifier).await
    }
}
