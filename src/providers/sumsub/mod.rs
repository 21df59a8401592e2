//! Sumsub: signed requests (`X-App-Access-Sig`), one applicant per user (by the applicant id stored in the
//! directory, else by `externalUserId` = the gateway user id), and signed review webhooks.

mod client;
mod mapping;
pub mod models;
mod states;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::directory::import::{FieldKind, ImportField};
use crate::directory::Directory;
use crate::domain::levels::LevelMap;
use crate::domain::{Provider, ProviderProfile, UserId};
use crate::providers::connector::{CaseSource, Connector, Outcome, WebhookReader};
use crate::providers::registry::{Capability, ProviderModule, ProviderSettings};
use crate::providers::section::Section;
use crate::providers::UpstreamPolicy;
use crate::secret::Secret;

pub use client::{signature, SumsubClient};

crate::id_type!(
    /// A Sumsub applicant id.
    SumsubApplicantId
);

/// Sumsub's documented level names (its API reference and the `applicantReviewed` examples use `basic-kyc-level`).
pub const DEFAULT_LEVELS: &str = "basic-kyc-level=basic+selfie+liveness; id-and-liveness=basic+liveness";

/// The registry's entry.
pub static MODULE: Module = Module;

pub struct Module;

impl ProviderModule for Module {
    fn provider(&self) -> Provider {
        Provider::Sumsub
    }

    fn variables(&self) -> &'static [&'static str] {
        &[
            "KYC_GATEWAY_SUMSUB_BASE_URL",
            "KYC_GATEWAY_SUMSUB_APP_TOKEN",
            "KYC_GATEWAY_SUMSUB_SECRET_KEY",
            "KYC_GATEWAY_SUMSUB_LEVELS",
        ]
    }

    fn configure(&self, section: &Section<'_>) -> anyhow::Result<Option<Arc<dyn ProviderSettings>>> {
        if !section.any(&["BASE_URL", "APP_TOKEN", "SECRET_KEY"]) {
            return Ok(None);
        }
        // Sumsub documents 300 GET requests per 5 seconds (its API reference, "Rate limits"): staying under it
        // avoids its 429s.
        let base = UpstreamPolicy { rate_limit: Some((300, Duration::from_secs(5))), ..UpstreamPolicy::default() };
        Ok(Some(Arc::new(Settings {
            base_url: section.or("BASE_URL", "https://api.sumsub.com"),
            app_token: section.secret("APP_TOKEN")?,
            secret_key: section.secret("SECRET_KEY")?,
            levels: section.levels("LEVELS", DEFAULT_LEVELS)?,
            policy: section.policy(&base)?,
            webhook_secrets: section.webhook_secrets()?,
        })))
    }

    fn offers(&self) -> &'static [Capability] {
        &[Capability::Cases]
    }

    fn import_fields(&self) -> &'static [ImportField] {
        &[ImportField { name: "sumsub_applicant_id", provider: Provider::Sumsub, kind: FieldKind::Reference }]
    }
}

/// A real Sumsub.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://api.sumsub.com` (the app token's `sbx:` or `prd:` prefix picks the environment).
    pub base_url: String,
    pub app_token: Secret,
    pub secret_key: Secret,
    /// Sumsub level names -> items.
    pub levels: LevelMap,
    pub policy: UpstreamPolicy,
    pub webhook_secrets: Vec<Secret>,
}

impl ProviderSettings for Settings {
    fn provider(&self) -> Provider {
        Provider::Sumsub
    }

    fn connect(&self, directory: Arc<dyn Directory>) -> Arc<dyn Connector> {
        Arc::new(Sumsub {
            client: SumsubClient::new(self),
            levels: self.levels.clone(),
            webhooks: webhook::Reader { secrets: self.webhook_secrets.clone() },
            directory,
        })
    }
}

/// Sumsub, connected.
pub struct Sumsub {
    client: SumsubClient,
    levels: LevelMap,
    webhooks: webhook::Reader,
    directory: Arc<dyn Directory>,
}

impl Connector for Sumsub {
    fn provider(&self) -> Provider {
        Provider::Sumsub
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
impl CaseSource for Sumsub {
    /// The user's applicant: by the applicant id stored in the directory, else by `externalUserId` = the user id.
    async fn profile(&self, user: &UserId) -> Outcome<Option<ProviderProfile>> {
        let stored = self.directory.references(user, Provider::Sumsub).await?.into_iter().next();
        let applicant = match stored {
            Some(id) => self.client.applicant(&SumsubApplicantId::trusted(id)).await?,
            None => self.client.applicant_by_external_id(user).await?,
        };
        let cases: Vec<_> = applicant.iter().map(|a| mapping::case(a, &self.levels)).collect();
        Ok((!cases.is_empty()).then(|| ProviderProfile { cases, ..ProviderProfile::default() }))
    }
}
