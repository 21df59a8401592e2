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

/// From this many users on, one pass over ident's whole list beats one call per user (BENCHMARKS.md, "Peers").
pub const DEFAULT_BULK_FROM: usize = 25;
/// The largest `KYC_GATEWAY_IDENT_BULK_FROM`: above it a batch always asks per user.
const MAX_BULK_FROM: usize = 100_000;

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
            "KYC_GATEWAY_IDENT_BULK_FROM",
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
            bulk_from: bulk_from(section)?,
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
    /// From this many users in one batch on, their applications come from one pass over the whole list.
    pub bulk_from: usize,
}

/// `KYC_GATEWAY_IDENT_BULK_FROM`: a batch size from 1 to [`MAX_BULK_FROM`].
fn bulk_from(section: &Section<'_>) -> anyhow::Result<usize> {
    let value = section.parse("BULK_FROM", DEFAULT_BULK_FROM)?;
    if !(1..=MAX_BULK_FROM).contains(&value) {
        anyhow::bail!("{} must be from 1 to {MAX_BULK_FROM}, not {value}", section.name("BULK_FROM"));
    }
    Ok(value)
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
            bulk_from: self.bulk_from,
            directory,
        })
    }
}

/// ident, connected.
pub struct Ident {
    client: Arc<IdentClient>,
    types: LevelMap,
    webhooks: webhook::Reader,
    bulk_from: usize,
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
        self.bulk_from
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

#[cfg(test)]
mod tests {
    use crate::Config;

    /// A production configuration with a real ident, plus `extra`.
    fn config(extra: &[(&'static str, &'static str)]) -> anyhow::Result<Config> {
        let mut vars = vec![
            ("KYC_GATEWAY_IDENT_TOKEN", "t"),
            ("KYC_GATEWAY_JWT_SECRET", "a-real-secret-of-at-least-32-bytes"),
            ("KYC_GATEWAY_JWT_ISSUER", "https://id.example.com/"),
            ("KYC_GATEWAY_DATABASE_URL", "postgres://u:p@db/kyc"),
            ("KYC_GATEWAY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ];
        vars.extend_from_slice(extra);
        Config::from_pairs(vars)
    }

    #[test]
    fn the_bulk_threshold_is_refused_by_name_outside_one_to_a_hundred_thousand() {
        for bad in ["0", "100001", "many"] {
            let err = config(&[("KYC_GATEWAY_IDENT_BULK_FROM", bad)]).expect_err(bad).to_string();
            assert!(err.contains("KYC_GATEWAY_IDENT_BULK_FROM"), "{bad}: {err}");
        }
        for good in ["1", "51", "100000"] {
            config(&[("KYC_GATEWAY_IDENT_BULK_FROM", good)]).expect(good);
        }
    }
}
