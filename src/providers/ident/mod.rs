//! `ident` (Provide's KYC-application service): KYC applications it dispatches to Vouched or IdentityMind, listed,
//! created and settled through its REST API with an application-scoped bearer token; signed webhooks carrying the
//! application. An application's owner is ident's `user_id`: the gateway user id unless the directory stores one.

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
use crate::domain::application::{KycApplication, KycApplicationStatus, NewKycApplication};
use crate::domain::levels::LevelMap;
use crate::domain::{Provider, UserId};
use crate::providers::connector::{ApplicationSource, ByReference, Connector, Outcome, WebhookReader};
use crate::providers::registry::{Capability, ProviderModule, ProviderSettings};
use crate::providers::section::Section;
use crate::providers::UpstreamPolicy;
use crate::secret::Secret;

pub use client::IdentClient;

crate::id_type!(
    /// An ident user id: the owner of KYC applications.
    IdentUserId
);

/// ident's two application types, and the items each counts toward in `kycState`.
pub const DEFAULT_TYPES: &str = "kyc=basic; kyb=plus";

/// From this many users on, one pass over ident's whole list beats one call per user.
const BULK_FROM: usize = 25;

/// The registry's entry.
pub static MODULE: Module = Module;

pub struct Module;

impl ProviderModule for Module {
    fn provider(&self) -> Provider {
        Provider::Ident
    }

    fn variables(&self) -> &'static [&'static str] {
        &[
            "KYC_GATEWAY_IDENT_BASE_URL",
            "KYC_GATEWAY_IDENT_TOKEN",
            "KYC_GATEWAY_IDENT_TYPES",
            "KYC_GATEWAY_IDENT_WEBHOOK_TOLERANCE_SECS",
        ]
    }

    fn configure(&self, section: &Section<'_>) -> anyhow::Result<Option<Arc<dyn ProviderSettings>>> {
        if !section.any(&["BASE_URL", "TOKEN"]) {
            return Ok(None);
        }
        Ok(Some(Arc::new(Settings {
            base_url: section.or("BASE_URL", "https://ident.provide.services/api/v1"),
            token: section.secret("TOKEN")?,
            types: section.levels("TYPES", DEFAULT_TYPES)?,
            policy: section.policy(&UpstreamPolicy::default())?,
            webhook_secrets: section.webhook_secrets()?,
            webhook_tolerance: section.secs("WEBHOOK_TOLERANCE_SECS", Duration::from_secs(300))?,
        })))
    }

    fn offers(&self) -> &'static [Capability] {
        &[Capability::Applications]
    }

    fn import_fields(&self) -> &'static [ImportField] {
        &[ImportField { name: "ident_user_id", provider: Provider::Ident, kind: FieldKind::Reference }]
    }
}

/// A real ident.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The API root, ending in `/api/v1`.
    pub base_url: String,
    /// The gateway's application-scoped bearer JWT (issued by ident; opaque to the gateway).
    pub token: Secret,
    /// Application types (`kyc`, `kyb`) -> the items a decision counts toward in `kycState`, and the details
    /// scope that guards an application's `params`.
    pub types: LevelMap,
    pub policy: UpstreamPolicy,
    pub webhook_secrets: Vec<Secret>,
    /// How far a webhook's signed timestamp may be from the clock.
    pub webhook_tolerance: Duration,
}

impl ProviderSettings for Settings {
    fn provider(&self) -> Provider {
        Provider::Ident
    }

    fn connect(&self, directory: Arc<dyn Directory>) -> Arc<dyn Connector> {
        let client = Arc::new(IdentClient::new(self));
        Arc::new(Ident {
            webhooks: webhook::Reader {
                secrets: self.webhook_secrets.clone(),
                tolerance: self.webhook_tolerance,
                client: client.clone(),
            },
            client,
            types: self.types.clone(),
            directory,
        })
    }
}

/// ident, connected.
pub struct Ident {
    client: Arc<IdentClient>,
    types: LevelMap,
    webhooks: webhook::Reader,
    directory: Arc<dyn Directory>,
}

impl Connector for Ident {
    fn provider(&self) -> Provider {
        Provider::Ident
    }

    fn items(&self, level: &str) -> Vec<String> {
        self.types.items(level)
    }

    fn mapped_items(&self) -> Vec<String> {
        self.types.all_items().map(str::to_owned).collect()
    }

    fn applications(&self) -> Option<&dyn ApplicationSource> {
        Some(self)
    }

    fn webhooks(&self) -> Option<&dyn WebhookReader> {
        Some(&self.webhooks)
    }
}

/// The gateway user behind an ident user id: the user whose stored reference it is, else the known user of that id
/// who has no ident reference of their own.
async fn user_for_ident(directory: &dyn Directory, ident_user: &str) -> Result<Option<UserId>, DirectoryError> {
    if let Some(user) = directory.user_for_reference(Provider::Ident, ident_user).await? {
        return Ok(Some(user));
    }
    let Ok(user) = UserId::parse(ident_user) else { return Ok(None) };
    let entry = directory.entry(&user).await?;
    let unclaimed = entry.known && !entry.references.contains_key(&Provider::Ident);
    Ok(unclaimed.then_some(user))
}

#[async_trait]
impl ApplicationSource for Ident {
    /// The stored reference, else the user's own id unless another user's stored reference claims that id (then the
    /// user has none: they must not see that user's applications).
    async fn applicant(&self, user: &UserId) -> Result<Option<String>, DirectoryError> {
        if let Some(stored) = self.directory.references(user, Provider::Ident).await?.into_iter().next() {
            return Ok(Some(stored));
        }
        match self.directory.user_for_reference(Provider::Ident, user).await? {
            Some(owner) if owner != *user => Ok(None),
            _ => Ok(Some(user.to_string())),
        }
    }

    async fn user_of_applicant(&self, applicant: &str) -> Result<Option<UserId>, DirectoryError> {
        user_for_ident(self.directory.as_ref(), applicant).await
    }

    async fn by_applicant(&self, applicant: &str) -> Outcome<Vec<KycApplication>> {
        self.client.by_user(&IdentUserId::trusted(applicant)).await
    }

    async fn all_by_applicant(&self, max_pages: u64) -> Outcome<Option<ByReference<KycApplication>>> {
        self.client.all_by_user(max_pages).await
    }

    fn bulk_from(&self) -> usize {
        BULK_FROM
    }

    async fn window(
        &self,
        status: Option<KycApplicationStatus>,
        offset: usize,
        limit: usize,
    ) -> Outcome<(Vec<KycApplication>, u64)> {
        self.client.window(status, offset, limit).await
    }

    async fn get(&self, id: &str) -> Outcome<Option<KycApplication>> {
        self.client.get(id).await
    }

    async fn create(&self, new: &NewKycApplication) -> Outcome<KycApplication> {
        self.client.create(new).await
    }

    async fn update_status(&self, id: &str, status: KycApplicationStatus) -> Outcome<Option<KycApplication>> {
        self.client.update_status(id, status).await
    }

    fn verifiers(&self) -> &'static [&'static str] {
        &["vouched", "identitymind"]
    }
}
