//! Sila Advanced KYC: an 8-hour bearer token from `/0.2/auth_token`, then `/0.2/get_verifications` per user handle,
//! every call carrying a fresh `header`; signed `kyc` webhooks. A user's handle is stored in the directory, or made
//! from the user id by `KYC_GATEWAY_SILA_USER_HANDLE_TEMPLATE`.

mod client;
mod mapping;
pub mod models;
mod states;
mod webhook;

use std::sync::Arc;

use anyhow::bail;
use async_trait::async_trait;

use crate::directory::import::{FieldKind, ImportField};
use crate::directory::Directory;
use crate::domain::levels::LevelMap;
use crate::domain::{Provider, ProviderProfile, UserId};
use crate::providers::connector::{CaseSource, Connector, Outcome, ReasonSource, WebhookReader};
use crate::providers::registry::{Capability, ProviderModule, ProviderSettings};
use crate::providers::section::Section;
use crate::providers::UpstreamPolicy;
use crate::secret::Secret;

pub use client::SilaClient;

crate::id_type!(
    /// A Sila user handle.
    SilaHandle
);

/// The registry's entry.
pub static MODULE: Module = Module;

pub struct Module;

impl ProviderModule for Module {
    fn provider(&self) -> Provider {
        Provider::Sila
    }

    fn variables(&self) -> &'static [&'static str] {
        &[
            "KYC_GATEWAY_SILA_BASE_URL",
            "KYC_GATEWAY_SILA_APP_HANDLE",
            "KYC_GATEWAY_SILA_CLIENT_ID",
            "KYC_GATEWAY_SILA_CLIENT_SECRET",
            "KYC_GATEWAY_SILA_USER_HANDLE_TEMPLATE",
            "KYC_GATEWAY_SILA_FLOWS",
        ]
    }

    fn configure(&self, section: &Section<'_>) -> anyhow::Result<Option<Arc<dyn ProviderSettings>>> {
        if !section.any(&["BASE_URL", "APP_HANDLE", "CLIENT_ID", "CLIENT_SECRET"]) {
            return Ok(None);
        }
        let template = section.or("USER_HANDLE_TEMPLATE", "{user_id}");
        if !template.contains("{user_id}") {
            bail!("{} must contain {{user_id}}", section.name("USER_HANDLE_TEMPLATE"));
        }
        Ok(Some(Arc::new(Settings {
            base_url: section.or("BASE_URL", "https://api.silamoney.com"),
            app_handle: section.required("APP_HANDLE")?,
            client_id: section.required("CLIENT_ID")?,
            client_secret: section.secret("CLIENT_SECRET")?,
            user_handle_template: template,
            // Sila KYC flows are uuids of the company's own flows: no default.
            flows: section.levels("FLOWS", "")?,
            policy: section.policy(&UpstreamPolicy::default())?,
            webhook_secrets: section.webhook_secrets()?,
        })))
    }

    fn offers(&self) -> &'static [Capability] {
        &[Capability::Cases]
    }

    fn import_fields(&self) -> &'static [ImportField] {
        &[ImportField { name: "sila_user_handle", provider: Provider::Sila, kind: FieldKind::Reference }]
    }
}

/// A real Sila.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://sandbox.silamoney.com` or `https://api.silamoney.com`.
    pub base_url: String,
    pub app_handle: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// How a gateway user id becomes a Sila user handle: `{user_id}` is replaced.
    pub user_handle_template: String,
    /// Sila KYC flow ids -> items.
    pub flows: LevelMap,
    pub policy: UpstreamPolicy,
    pub webhook_secrets: Vec<Secret>,
}

impl ProviderSettings for Settings {
    fn provider(&self) -> Provider {
        Provider::Sila
    }

    fn connect(&self, directory: Arc<dyn Directory>) -> Arc<dyn Connector> {
        Arc::new(Sila {
            client: SilaClient::new(self),
            template: self.user_handle_template.clone(),
            flows: self.flows.clone(),
            webhooks: webhook::Reader {
                secrets: self.webhook_secrets.clone(),
                template: self.user_handle_template.clone(),
            },
            directory,
        })
    }
}

/// Sila, connected.
pub struct Sila {
    client: SilaClient,
    template: String,
    flows: LevelMap,
    webhooks: webhook::Reader,
    directory: Arc<dyn Directory>,
}

impl Sila {
    /// The handle of a gateway user: the one stored in the directory, else the template's.
    async fn handle(&self, user: &UserId) -> Outcome<SilaHandle> {
        let stored = self.directory.references(user, Provider::Sila).await?;
        Ok(match stored.into_iter().next() {
            Some(handle) => SilaHandle::trusted(handle),
            None => SilaHandle::trusted(self.template.replace("{user_id}", user)),
        })
    }
}

impl Connector for Sila {
    fn provider(&self) -> Provider {
        Provider::Sila
    }

    fn items(&self, level: &str) -> Vec<String> {
        self.flows.items(level)
    }

    fn mapped_items(&self) -> Vec<String> {
        self.flows.all_items().map(str::to_owned).collect()
    }

    fn cases(&self) -> Option<&dyn CaseSource> {
        Some(self)
    }

    fn reasons(&self) -> Option<&dyn ReasonSource> {
        Some(self)
    }

    fn webhooks(&self) -> Option<&dyn WebhookReader> {
        Some(&self.webhooks)
    }
}

#[async_trait]
impl CaseSource for Sila {
    async fn profile(&self, user: &UserId) -> Outcome<Option<ProviderProfile>> {
        let handle = self.handle(user).await?;
        let cases = self.client.cases(&handle, &self.flows).await?;
        Ok((!cases.is_empty()).then(|| ProviderProfile { cases, ..ProviderProfile::default() }))
    }
}

#[async_trait]
impl ReasonSource for Sila {
    async fn reasons(&self, subject: &str, case_id: &str) -> Outcome<Option<Vec<String>>> {
        self.client.reasons(&SilaHandle::trusted(subject), case_id).await
    }
}
