//! Every provider behind one facade: the typed clients, the directory's references and the cache across requests.
//!
//! The GraphQL layer (its DataLoaders, and the naive baseline mode) asks here for what it needs about a user; this
//! module decides which client call answers it, whether the cache already has it, and how bulk answers (Fractal's
//! statistics, ident's whole list) are shared by every user of a batch.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;

use super::cache::{BulkSnapshot, BulkView, Kind, Lifetime, ProviderCache};
use super::fractal::FractalClient;
use super::ident::IdentClient;
use super::linking::Linking;
use super::sila::SilaClient;
use super::sumsub::SumsubClient;
use super::ProviderError;
use crate::directory::{Directory, DirectoryError, ProviderRefs};
use crate::domain::application::KycApplication;
use crate::domain::{ProviderProfile, ReasonsRef, VerificationCase};
use crate::store::changes::{Change, Changes};

/// One user's answer: each user carries its own error, so one user's failure does not fail a batch.
pub type Outcome<T> = Result<T, ProviderError>;

/// The per-request memo of a bulk answer: one call per request however its users are batched, cache or not.
pub type BulkMemo<T> = tokio::sync::OnceCell<Outcome<Option<Arc<BulkSnapshot<T>>>>>;

/// From this many users on, one pass over ident's whole list beats one call per user.
const IDENT_BULK_MIN: usize = 25;
/// The most pages of ident's list one bulk pass reads (100 applications each); past that, users are asked one by
/// one.
const IDENT_BULK_MAX_PAGES: u64 = 50;

/// A user's Fractal profile (emails, phones, wallets, cases); `None` when the user has no Fractal link.
pub struct FractalProfiles;
/// Sumsub's cases of a user (their applicant, if any).
pub struct SumsubCases;
/// Sila's cases of a user (their handle's verifications, if any).
pub struct SilaCases;
/// The reason tags of one Sila verification (sub-key: the verification's uuid).
pub struct SilaReasons;
/// A user's KYC applications at ident.
pub struct IdentApplications;
/// Fractal's statistics: every user's verification states, by Fractal uid.
pub struct FractalStates;
/// ident's whole list, by ident user id; `None` when it is too long to read in one pass.
pub struct IdentAll;

const CASE: usize = 600;
const APPLICATION: usize = 800;

impl Kind for FractalProfiles {
    type Value = Option<Arc<ProviderProfile>>;
    const NAME: &'static str = "fractal_profile";
    const LIFETIME: Lifetime = Lifetime::Status;
    fn weight(value: &Self::Value) -> usize {
        value.as_ref().map_or(64, |p| 256 + p.cases.len() * CASE + p.wallets.len() * 128)
    }
    fn is_negative(value: &Self::Value) -> bool {
        value.is_none()
    }
}

macro_rules! case_kind {
    ($kind:ident, $name:literal) => {
        impl Kind for $kind {
            type Value = Arc<Vec<VerificationCase>>;
            const NAME: &'static str = $name;
            const LIFETIME: Lifetime = Lifetime::Status;
            fn weight(value: &Self::Value) -> usize {
                64 + value.len() * CASE
            }
            fn is_negative(value: &Self::Value) -> bool {
                value.is_empty()
            }
        }
    };
}
case_kind!(SumsubCases, "sumsub_cases");
case_kind!(SilaCases, "sila_cases");

impl Kind for SilaReasons {
    type Value = Option<Arc<Vec<String>>>;
    const NAME: &'static str = "sila_reasons";
    const LIFETIME: Lifetime = Lifetime::Status;
    fn weight(value: &Self::Value) -> usize {
        value.as_ref().map_or(64, |r| 64 + r.len() * 32)
    }
    fn is_negative(value: &Self::Value) -> bool {
        value.is_none()
    }
}

impl Kind for IdentApplications {
    type Value = Arc<Vec<KycApplication>>;
    const NAME: &'static str = "ident_applications";
    const LIFETIME: Lifetime = Lifetime::Status;
    fn weight(value: &Self::Value) -> usize {
        64 + value.len() * APPLICATION
    }
    fn is_negative(value: &Self::Value) -> bool {
        value.is_empty()
    }
}

impl Kind for FractalStates {
    type Value = Option<Arc<BulkSnapshot<VerificationCase>>>;
    const NAME: &'static str = "fractal_states";
    const LIFETIME: Lifetime = Lifetime::Bulk;
    fn weight(value: &Self::Value) -> usize {
        value.as_ref().map_or(64, |s| s.by_user.values().map(|c| 96 + c.len() * 160).sum())
    }
}

impl Kind for IdentAll {
    type Value = Option<Arc<BulkSnapshot<KycApplication>>>;
    const NAME: &'static str = "ident_all";
    const LIFETIME: Lifetime = Lifetime::Bulk;
    fn weight(value: &Self::Value) -> usize {
        value.as_ref().map_or(64, |s| s.by_user.values().map(|a| 96 + a.len() * APPLICATION).sum())
    }
}

/// A provider whose cases of a user are found by the user's id and the directory's references to them.
pub trait CaseSource {
    fn cases(
        &self,
        user_id: &str,
        refs: &ProviderRefs,
    ) -> impl Future<Output = Result<Vec<VerificationCase>, ProviderError>> + Send;
}

impl CaseSource for SumsubClient {
    async fn cases(&self, user_id: &str, refs: &ProviderRefs) -> Result<Vec<VerificationCase>, ProviderError> {
        SumsubClient::cases(self, user_id, refs).await
    }
}

impl CaseSource for SilaClient {
    async fn cases(&self, user_id: &str, refs: &ProviderRefs) -> Result<Vec<VerificationCase>, ProviderError> {
        SilaClient::cases(self, user_id, refs).await
    }
}

/// The providers the gateway is configured for (`None`: off, contributing nothing), the directory and the cache.
#[derive(Clone)]
pub struct Providers {
    pub fractal: Option<Arc<FractalClient>>,
    pub sumsub: Option<Arc<SumsubClient>>,
    pub sila: Option<Arc<SilaClient>>,
    pub ident: Option<Arc<IdentClient>>,
    pub directory: Arc<dyn Directory>,
    pub cache: ProviderCache,
    /// Tells every replica what changed (`store/changes.rs`).
    pub changes: Changes,
    /// Linking users' Fractal accounts (with Fractal configured).
    pub linking: Option<Arc<Linking>>,
}

/// Runs `each` for every key concurrently, each key with its own outcome.
pub async fn per_key<T, F, Fut>(keys: &[String], each: F) -> HashMap<String, Outcome<T>>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Outcome<T>>,
{
    join_all(keys.iter().map(|k| {
        let fut = each(k.clone());
        async move { (k.clone(), fut.await) }
    }))
    .await
    .into_iter()
    .collect()
}

/// Every key answered with the same error.
fn fail_all<T>(keys: &[String], error: ProviderError) -> HashMap<String, Outcome<T>> {
    keys.iter().map(|k| (k.clone(), Err(error.clone()))).collect()
}

impl Providers {
    /// Fractal, for what only it answers (statistics).
    pub fn fractal(&self) -> Outcome<&FractalClient> {
        self.fractal.as_deref().ok_or(ProviderError::NotConfigured)
    }

    /// ident, for what only it answers (KYC applications).
    pub fn ident(&self) -> Outcome<&IdentClient> {
        self.ident.as_deref().ok_or(ProviderError::NotConfigured)
    }

    /// The ident user id of gateway user `user_id` (see [`crate::directory::ident_user_of`]).
    pub async fn ident_user(&self, user_id: &str) -> Result<Option<String>, DirectoryError> {
        crate::directory::ident_user_of(self.directory.as_ref(), user_id).await
    }

    /// Forgets what this replica holds about a user (after a change the gateway made or learned of). Other
    /// replicas learn of it through [`Providers::changed`].
    pub async fn invalidate_user(&self, user_id: &str) {
        self.cache.invalidate_user(user_id).await;
        self.directory.forget(user_id).await;
    }

    /// Applies a change another replica (or this one) published.
    pub async fn apply(&self, change: &Change) {
        match change {
            Change::UserChanged { user_id } => self.invalidate_user(user_id).await,
            Change::Verification { event } => self.invalidate_user(&event.user_id).await,
            Change::Resync => {
                self.cache.invalidate_all();
                self.directory.forget_all();
            }
        }
    }

    /// The user's Fractal profile; `None` when not linked or Fractal is off.
    pub async fn fractal_profile(&self, user: &str) -> Outcome<Option<Arc<ProviderProfile>>> {
        let Some(client) = &self.fractal else { return Ok(None) };
        self.cache
            .get_or_fetch::<FractalProfiles, _, _>(user, "", || async { Ok(client.profile(user).await?.map(Arc::new)) })
            .await
    }

    /// Sumsub's cases of the user.
    pub async fn sumsub_cases(&self, user: &str) -> Outcome<Arc<Vec<VerificationCase>>> {
        self.cases_at::<SumsubCases, _>(self.sumsub.as_deref(), user).await
    }

    /// Sila's cases of the user.
    pub async fn sila_cases(&self, user: &str) -> Outcome<Arc<Vec<VerificationCase>>> {
        self.cases_at::<SilaCases, _>(self.sila.as_deref(), user).await
    }

    /// A user's cases at a provider that finds users by the directory's references (none when it is off).
    async fn cases_at<K, C>(&self, client: Option<&C>, user: &str) -> Outcome<Arc<Vec<VerificationCase>>>
    where
        K: Kind<Value = Arc<Vec<VerificationCase>>>,
        C: CaseSource,
    {
        let Some(client) = client else { return Ok(Arc::default()) };
        self.cache
            .get_or_fetch::<K, _, _>(user, "", || async {
                let refs = self.directory.references(user).await?;
                Ok(Arc::new(client.cases(user, &refs).await?))
            })
            .await
    }

    /// The reason tags of one of the user's Sila cases.
    pub async fn sila_reasons(&self, user: &str, case: &ReasonsRef) -> Outcome<Option<Arc<Vec<String>>>> {
        let Some(client) = &self.sila else { return Ok(None) };
        self.cache
            .get_or_fetch::<SilaReasons, _, _>(user, &case.id, || async {
                Ok(client.reasons(&case.subject, &case.id).await?.map(Arc::new))
            })
            .await
    }

    /// Every user's Fractal verification states from one bulk statistics call; a user who changed since that answer
    /// is read from their own profile.
    pub async fn fractal_states(
        &self,
        memo: &BulkMemo<VerificationCase>,
        users: &[String],
    ) -> HashMap<String, Outcome<Arc<Vec<VerificationCase>>>> {
        let Some(client) = &self.fractal else { return per_key(users, |_| async { Ok(Arc::default()) }).await };
        let snapshot = memo
            .get_or_init(|| {
                self.cache.get_or_fetch::<FractalStates, _, _>("", "", || async {
                    let started = Instant::now();
                    Ok(Some(Arc::new(BulkSnapshot::new(started, client.cases_by_uid().await?))))
                })
            })
            .await
            .clone();
        let snapshot = match snapshot {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return per_key(users, |_| async { Ok(Arc::default()) }).await,
            Err(e) => return fail_all(users, e),
        };
        per_key(users, |user| {
            let snapshot = snapshot.clone();
            async move {
                let Some(uid) = self.directory.fractal_uid(&user).await? else { return Ok(Arc::default()) };
                match self.cache.bulk_view(&snapshot, &user, &uid).await {
                    BulkView::Rows(rows) => Ok(rows),
                    BulkView::Stale => {
                        let profile = self.fractal_profile(&user).await?;
                        Ok(Arc::new(profile.map(|p| p.cases.clone()).unwrap_or_default()))
                    }
                }
            }
        })
        .await
    }

    /// The users' KYC applications: for a large batch from one pass over ident's list (shared by the request and
    /// cached), else one call per user.
    pub async fn applications(
        &self,
        memo: &BulkMemo<KycApplication>,
        users: &[String],
    ) -> HashMap<String, Outcome<Arc<Vec<KycApplication>>>> {
        let Some(client) = &self.ident else { return per_key(users, |_| async { Ok(Arc::default()) }).await };
        // A bulk answer already cached serves any batch; a large batch is worth fetching one.
        let cached = self.cache.get::<IdentAll>("", "").await.filter(Option::is_some);
        if users.len() >= IDENT_BULK_MIN || memo.initialized() || cached.is_some() {
            let snapshot = memo
                .get_or_init(|| async {
                    if let Some(cached) = cached {
                        return Ok(cached);
                    }
                    self.cache
                        .get_or_fetch::<IdentAll, _, _>("", "", || async {
                            let started = Instant::now();
                            let all = client.all_by_user(IDENT_BULK_MAX_PAGES).await?;
                            Ok(all.map(|by_user| Arc::new(BulkSnapshot::new(started, by_user))))
                        })
                        .await
                })
                .await
                .clone();
            match snapshot {
                Ok(Some(snapshot)) => {
                    return per_key(users, |user| {
                        let snapshot = snapshot.clone();
                        async move {
                            let Some(ident_user) = self.ident_user(&user).await? else { return Ok(Arc::default()) };
                            match self.cache.bulk_view(&snapshot, &user, &ident_user).await {
                                BulkView::Rows(rows) => Ok(rows),
                                BulkView::Stale => self.user_applications(&user).await,
                            }
                        }
                    })
                    .await
                }
                // Too many to read at once: ask per user.
                Ok(None) => {}
                Err(e) => return fail_all(users, e),
            }
        }
        per_key(users, |user| async move { self.user_applications(&user).await }).await
    }

    /// One user's applications, asked of ident on their own.
    async fn user_applications(&self, user: &str) -> Outcome<Arc<Vec<KycApplication>>> {
        let client = self.ident()?;
        self.cache
            .get_or_fetch::<IdentApplications, _, _>(user, "", || async {
                let Some(ident_user) = self.ident_user(user).await? else { return Ok(Arc::default()) };
                Ok(Arc::new(client.by_user(&ident_user).await?))
            })
            .await
    }
}
