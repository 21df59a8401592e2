//! What a configured provider offers the gateway: a [`Connector`] and its capabilities, the only way the hub, the
//! loaders, `kycState`, the webhook worker and linking reach a provider. Per-user calls answer one user at a time; a
//! bulk endpoint answers a whole batch ([`BulkStates`], [`ApplicationSource::all_by_applicant`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::ProviderError;
use crate::directory::{Directory, DirectoryError};
use crate::domain::application::{KycApplication, KycApplicationStatus, NewKycApplication};
use crate::domain::events::{EventKind, Incoming, Reported, WebhookError};
use crate::domain::stats::{LevelVerification, StatusCounts};
use crate::domain::{Provider, ProviderProfile, UserId, VerificationCase};
use crate::secret::Secret;

/// One user's answer: each user carries its own error, so one user's failure does not fail a batch.
pub type Outcome<T> = Result<T, ProviderError>;

/// A configured provider: which it is, how its levels map to items, and what it can do.
pub trait Connector: Send + Sync + 'static {
    fn provider(&self) -> Provider;
    /// The items one of this provider's levels covers (its level map; a level it does not map is its own item).
    fn items(&self, level: &str) -> Vec<String>;
    /// Every item its level map gives (none without one).
    fn mapped_items(&self) -> Vec<String> {
        Vec::new()
    }
    /// Verification cases (and contacts, where the provider has them) per user.
    fn cases(&self) -> Option<&dyn CaseSource> {
        None
    }
    /// Internal reason tags of a case, fetched only when asked for.
    fn reasons(&self) -> Option<&dyn ReasonSource> {
        None
    }
    /// KYC applications.
    fn applications(&self) -> Option<&dyn ApplicationSource> {
        None
    }
    /// The client's verification statistics.
    fn statistics(&self) -> Option<&dyn StatisticsSource> {
        None
    }
    /// Users link their account at the provider through an OAuth authorization-code flow.
    fn linking(&self) -> Option<&dyn AccountLinking> {
        None
    }
    /// Signed webhooks.
    fn webhooks(&self) -> Option<&dyn WebhookReader> {
        None
    }
}

/// A provider that knows users' verification cases.
#[async_trait]
pub trait CaseSource: Send + Sync {
    /// What the provider knows about `user`: contacts where it has them, and cases; `None` for a user it does not
    /// know (no link, no applicant).
    async fn profile(&self, user: &UserId) -> Outcome<Option<ProviderProfile>>;
    /// Whether its profiles hold contacts (emails, phones, wallets), which `User.emails` and the like read.
    fn has_contacts(&self) -> bool {
        false
    }
    /// Every user's verification states in one call, for `kycState` over many users, where the provider has one.
    fn bulk_states(&self) -> Option<&dyn BulkStates> {
        None
    }
}

/// A bulk answer keyed by the provider's own reference to each user.
pub type ByReference<T> = HashMap<String, Vec<T>>;

/// Every user's verification states from one call (a statistics endpoint).
#[async_trait]
pub trait BulkStates: Send + Sync {
    /// Every user's cases, by the provider's reference to the user.
    async fn all(&self) -> Outcome<ByReference<VerificationCase>>;
    /// The provider's reference to `user` in [`BulkStates::all`]'s answer; `None` when the provider has none.
    async fn reference(&self, user: &UserId) -> Result<Option<String>, DirectoryError>;
}

/// A provider whose cases carry internal reason tags fetched on their own.
#[async_trait]
pub trait ReasonSource: Send + Sync {
    /// The reason tags of case `case_id` of `subject` (the provider's reference, from the case's `ReasonsRef`);
    /// `None` when the provider does not know it.
    async fn reasons(&self, subject: &str, case_id: &str) -> Outcome<Option<Vec<String>>>;
}

/// A provider of KYC applications.
#[async_trait]
pub trait ApplicationSource: Send + Sync {
    /// The provider's reference to `user`'s applications; `None` when the user has none of their own.
    async fn applicant(&self, user: &UserId) -> Result<Option<String>, DirectoryError>;
    /// The gateway user an application's applicant reference belongs to.
    async fn user_of_applicant(&self, applicant: &str) -> Result<Option<UserId>, DirectoryError>;
    /// Every application of one applicant.
    async fn by_applicant(&self, applicant: &str) -> Outcome<Vec<KycApplication>>;
    /// Every application, by applicant, in at most `max_pages` pages; `None` when there are more.
    async fn all_by_applicant(&self, max_pages: u64) -> Outcome<Option<ByReference<KycApplication>>>;
    /// From how many users on a batch reads every application at once rather than per user.
    fn bulk_from(&self) -> usize;
    /// A window of the applications, newest first, optionally of one status; and how many there are in all.
    async fn window(
        &self,
        status: Option<KycApplicationStatus>,
        offset: usize,
        limit: usize,
    ) -> Outcome<(Vec<KycApplication>, u64)>;
    /// One application, re-read from its third party.
    async fn get(&self, id: &str) -> Outcome<Option<KycApplication>>;
    /// Creates an application (never retried).
    async fn create(&self, new: &NewKycApplication) -> Outcome<KycApplication>;
    /// Sets an application's status (never retried).
    async fn update_status(&self, id: &str, status: KycApplicationStatus) -> Outcome<Option<KycApplication>>;
    /// The third parties applications may go to, the first the default.
    fn verifiers(&self) -> &'static [&'static str];
}

/// The client's verification statistics.
#[async_trait]
pub trait StatisticsSource: Send + Sync {
    /// Counts per status over every user and level.
    async fn total(&self) -> Outcome<StatusCounts>;
    /// Counts per ISO country code, in code order.
    async fn by_country(&self) -> Outcome<Vec<(String, StatusCounts)>>;
    /// Every user's verification of every level.
    async fn level_verifications(&self) -> Outcome<Vec<LevelVerification>>;
    /// The gateway user behind a statistics row's user reference.
    async fn user_of(&self, reference: &str) -> Result<Option<UserId>, DirectoryError>;
    /// [`Self::user_of`] of every reference of a page, in their order (a directory reads them in one pass).
    async fn users_of(&self, references: &[String]) -> Result<Vec<Option<UserId>>, DirectoryError> {
        let mut users = Vec::with_capacity(references.len());
        for reference in references {
            users.push(self.user_of(reference).await?);
        }
        Ok(users)
    }
}

/// A user's account at a provider, as an authorization-code exchange gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedAccount {
    /// The provider's id of the account.
    pub subject: String,
    /// The scopes the user granted (space separated).
    pub scopes: String,
    /// The tokens the exchange gave.
    pub tokens: crate::directory::LinkTokens,
}

/// How users link their accounts at a provider.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Where the provider may send users back after its authorize page: exact URIs.
    pub redirect_uris: Vec<String>,
    /// The scopes asked of the user (space separated).
    pub scopes: String,
    /// How long a started authorization may take.
    pub state_ttl: std::time::Duration,
    /// How many started authorizations a user may have open at once: a new one replaces the oldest.
    pub open_states: usize,
}

/// Linking users' accounts through the OAuth 2.0 authorization-code flow the gateway drives.
#[async_trait]
pub trait AccountLinking: Send + Sync {
    /// Its redirect allow-list, scopes and state lifetime.
    fn settings(&self) -> &LinkSettings;
    /// The provider's authorize page for a user linking, returning to `redirect_uri` with `state`; the code it
    /// issues is bound to `code_challenge` (PKCE, S256).
    fn authorize_url(&self, redirect_uri: &str, scope: &str, state: &str, code_challenge: &str) -> String;
    /// Exchanges an authorization code, with the flow's PKCE `code_verifier` (if it had one), for the user's tokens
    /// and reads which account they are for.
    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&Secret>,
    ) -> Outcome<LinkedAccount>;
}

/// An event read back for the worker: what it reports as far as it can be believed, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub reported: Reported,
    /// When it happened, unix milliseconds: the order between events of one user and level.
    pub occurred_at: i64,
}

/// A provider's signed webhooks.
#[async_trait]
pub trait WebhookReader: Send + Sync {
    /// Whether a signing secret is configured (without one the provider has no webhook endpoint).
    fn configured(&self) -> bool;
    /// Checks the signature over the raw body (constant time), then reads the body; `header` looks a header up by
    /// name and `now` is unix milliseconds.
    fn read(&self, header: &dyn Fn(&str) -> Option<String>, body: &[u8], now: i64) -> Result<Incoming, WebhookError>;
    /// The gateway user an event's subject names, through the directory and the provider's own defaults.
    async fn user_of(
        &self,
        subject: &serde_json::Value,
        directory: &dyn Directory,
    ) -> Result<Option<UserId>, DirectoryError>;
    /// What the event reports, as far as it can be believed when it is applied (a provider whose deliveries carry
    /// no time of their own is read again).
    async fn confirm(&self, reported: &Reported, occurred_at: i64) -> Outcome<Confirmed> {
        Ok(Confirmed { reported: reported.clone(), occurred_at })
    }
    /// What this provider's events are about.
    fn kind(&self) -> EventKind {
        EventKind::Case
    }
    /// A reference of the provider's that an event about a user names and the directory should keep for that user
    /// (a new verification session, say), so that the user's next reads find it.
    fn reference_to_keep(&self, _subject: &serde_json::Value) -> Option<String> {
        None
    }
}

/// Secrets a section names: a comma-separated list, several while one is rotated.
pub type Secrets = Arc<Vec<Secret>>;
