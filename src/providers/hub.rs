//! Every configured provider behind one facade (the registry's connectors, the directory, the cache across requests):
//! the GraphQL layer asks here about a user; this module decides between the cache and the capability that answers, and
//! shares a bulk answer among a batch's users. It never names a provider.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::time::Instant;

use futures_util::future::join_all;

use super::cache::{BulkSnapshot, BulkView, Kind, Lifetime, ProviderCache};
use super::connector::{CaseSource, Outcome};
use super::registry::ProviderSet;
use super::ProviderError;
use crate::directory::linking::StateSigner;
use crate::directory::Directory;
use crate::domain::application::KycApplication;
use crate::domain::{Provider, ProviderProfile, ReasonsRef, UserId, VerificationCase};
use crate::store::changes::{Change, Changes};

/// The per-request memo of a bulk answer: one call per request however its users are batched, cache or not.
pub type BulkMemo<T> = tokio::sync::OnceCell<Outcome<Option<Arc<BulkSnapshot<T>>>>>;

/// The most pages of a provider's whole list of applications one bulk pass reads (100 each); past that, users are
/// asked one by one.
const BULK_MAX_PAGES: u64 = 50;

/// What a provider knows about a user (contacts, cases); `None` when it does not know the user.
pub struct Profiles;
/// The reason tags of one case (sub-key: the case's id).
pub struct Reasons;
/// A user's KYC applications.
pub struct Applications;
/// Every user's verification states from one bulk call, by the provider's reference to the user.
pub struct States;
/// Every application, by the provider's reference to the user; `None` when it is too long to read in one pass.
pub struct AllApplications;

const CASE: usize = 600;
const APPLICATION: usize = 800;

impl Kind for Profiles {
    type Value = Option<Arc<ProviderProfile>>;
    const NAME: &'static str = "profile";
    const LIFETIME: Lifetime = Lifetime::Status;
    fn weight(value: &Self::Value) -> usize {
        value.as_ref().map_or(64, |p| 256 + p.cases.len() * CASE + p.wallets.len() * 128)
    }
    fn is_negative(value: &Self::Value) -> bool {
        value.is_none()
    }
}

impl Kind for Reasons {
    type Value = Option<Arc<Vec<String>>>;
    const NAME: &'static str = "reasons";
    const LIFETIME: Lifetime = Lifetime::Status;
    fn weight(value: &Self::Value) -> usize {
        value.as_ref().map_or(64, |r| 64 + r.len() * 32)
    }
    fn is_negative(value: &Self::Value) -> bool {
        value.is_none()
    }
}

impl Kind for Applications {
    type Value = Arc<Vec<KycApplication>>;
    const NAME: &'static str = "applications";
    const LIFETIME: Lifetime = Lifetime::Status;
    fn weight(value: &Self::Value) -> usize {
        64 + value.len() * APPLICATION
    }
    fn is_negative(value: &Self::Value) -> bool {
        value.is_empty()
    }
}

impl Kind for States {
    type Value = Option<Arc<BulkSnapshot<VerificationCase>>>;
    const NAME: &'static str = "states";
    const LIFETIME: Lifetime = Lifetime::Bulk;
    fn weight(value: &Self::Value) -> usize {
        value.as_ref().map_or(64, |s| s.by_user.values().map(|c| 96 + c.len() * 160).sum())
    }
}

impl Kind for AllApplications {
    type Value = Option<Arc<BulkSnapshot<KycApplication>>>;
    const NAME: &'static str = "all";
    const LIFETIME: Lifetime = Lifetime::Bulk;
    fn weight(value: &Self::Value) -> usize {
        value.as_ref().map_or(64, |s| s.by_user.values().map(|a| 96 + a.len() * APPLICATION).sum())
    }
}

/// The configured providers, the directory and the cache.
#[derive(Clone)]
pub struct Providers {
    pub set: ProviderSet,
    pub directory: Arc<dyn Directory>,
    pub cache: ProviderCache,
    /// Tells every replica what changed (`store/changes.rs`).
    pub changes: Changes,
    /// Signs the `state` of account links.
    pub link_states: Arc<StateSigner>,
}

/// Runs `each` for every key concurrently, each key with its own outcome.
pub async fn per_key<T, F, Fut>(keys: &[UserId], each: F) -> HashMap<UserId, Outcome<T>>
where
    F: Fn(UserId) -> Fut,
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
fn fail_all<T>(keys: &[UserId], error: ProviderError) -> HashMap<UserId, Outcome<T>> {
    keys.iter().map(|k| (k.clone(), Err(error.clone()))).collect()
}

/// Every key answered with nothing.
fn none_for<T: Default>(keys: &[UserId]) -> HashMap<UserId, Outcome<T>> {
    keys.iter().map(|k| (k.clone(), Ok(T::default()))).collect()
}

impl Providers {
    /// Forgets what this replica holds about a user (after a change the gateway made or learned of). Other
    /// replicas learn of it through [`Providers::changed`].
    pub async fn invalidate_user(&self, user: &UserId) {
        // The directory first: an answer fetched after the cache's mark must read the user's new references.
        self.directory.forget(user).await;
        self.cache.invalidate_user(user).await;
    }

    /// Applies a change another replica (or this one) published.
    pub async fn apply(&self, change: &Change) {
        match change {
            Change::UserChanged { user_id } => self.invalidate_user(user_id).await,
            Change::Verification { event } => self.invalidate_user(&event.user_id).await,
            Change::Resync => {
                self.directory.forget_all();
                self.cache.invalidate_all();
            }
        }
    }

    /// After a change this replica made about a user: forgets it here at once, and tells every replica.
    pub async fn changed(&self, user: &UserId) {
        self.invalidate_user(user).await;
        let change = Change::UserChanged { user_id: user.clone() };
        if let Err(error) = self.changes.publish(&change).await {
            // Other replicas' caches expire on their own; this one is already right.
            tracing::warn!(%error, "could not tell other replicas about a change");
        }
    }

    fn case_source(&self, provider: Provider) -> Option<&dyn CaseSource> {
        self.set.get(provider)?.cases()
    }

    /// What `provider` knows about the user; `None` when it does not know them or is not configured.
    pub async fn profile(&self, provider: Provider, user: &UserId) -> Outcome<Option<Arc<ProviderProfile>>> {
        let Some(source) = self.case_source(provider) else { return Ok(None) };
        self.cache
            .get_or_fetch::<Profiles, _, _>(provider, user, "", || async {
                Ok(source.profile(user).await?.map(Arc::new))
            })
            .await
    }

    /// The reason tags of one of a user's cases.
    pub async fn reasons(&self, user: &UserId, case: &ReasonsRef) -> Outcome<Option<Arc<Vec<String>>>> {
        let Some(source) = self.set.get(case.provider).and_then(|c| c.reasons()) else { return Ok(None) };
        self.cache
            .get_or_fetch::<Reasons, _, _>(case.provider, user, &case.id, || async {
                Ok(source.reasons(&case.subject, &case.id).await?.map(Arc::new))
            })
            .await
    }

    /// The users' verification states at `provider`, for `kycState`: from one bulk call where the provider has one
    /// (a user who changed since that answer is read from their own profile), else each user's profile.
    pub async fn states(
        &self,
        provider: Provider,
        memo: &BulkMemo<VerificationCase>,
        users: &[UserId],
    ) -> HashMap<UserId, Outcome<Arc<Vec<VerificationCase>>>> {
        let Some(source) = self.case_source(provider) else { return none_for(users) };
        let cases_of = |user: UserId| async move {
            let profile = self.profile(provider, &user).await?;
            Ok(Arc::new(profile.map(|p| p.cases.clone()).unwrap_or_default()))
        };
        let Some(bulk) = source.bulk_states() else { return per_key(users, cases_of).await };
        let snapshot = memo
            .get_or_init(|| {
                self.cache.get_or_fetch::<States, _, _>(provider, "", "", || async {
                    let started = Instant::now();
                    Ok(Some(Arc::new(BulkSnapshot::new(started, bulk.all().await?))))
                })
            })
            .await
            .clone();
        let snapshot = match snapshot {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return none_for(users),
            Err(e) => return fail_all(users, e),
        };
        per_key(users, |user| {
            let snapshot = snapshot.clone();
            async move {
                let Some(reference) = bulk.reference(&user).await? else { return Ok(Arc::default()) };
                match self.cache.bulk_view(&snapshot, &user, &reference).await {
                    BulkView::Rows(rows) => Ok(rows),
                    BulkView::Stale => cases_of(user).await,
                }
            }
        })
        .await
    }

    /// The users' KYC applications: for a large batch from one pass over the provider's whole list (shared by the
    /// request and cached), else one call per user. None when no provider has applications.
    pub async fn applications(
        &self,
        memo: &BulkMemo<KycApplication>,
        users: &[UserId],
    ) -> HashMap<UserId, Outcome<Arc<Vec<KycApplication>>>> {
        let Ok((provider, source)) = self.set.applications() else { return none_for(users) };
        // A bulk answer already cached serves any batch; a large batch is worth fetching one.
        let cached = self.cache.get::<AllApplications>(provider, "", "").await.filter(Option::is_some);
        if users.len() >= source.bulk_from() || memo.initialized() || cached.is_some() {
            let snapshot = memo
                .get_or_init(|| async {
                    if let Some(cached) = cached {
                        return Ok(cached);
                    }
                    self.cache
                        .get_or_fetch::<AllApplications, _, _>(provider, "", "", || async {
                            let started = Instant::now();
                            let all = source.all_by_applicant(BULK_MAX_PAGES).await?;
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
                            let Some(applicant) = source.applicant(&user).await? else { return Ok(Arc::default()) };
                            match self.cache.bulk_view(&snapshot, &user, &applicant).await {
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

    /// One user's applications, asked of the provider on their own.
    pub async fn user_applications(&self, user: &UserId) -> Outcome<Arc<Vec<KycApplication>>> {
        let (provider, source) = self.set.applications().map_err(|m| m.error().1)?;
        self.cache
            .get_or_fetch::<Applications, _, _>(provider, user, "", || async {
                let Some(applicant) = source.applicant(user).await? else { return Ok(Arc::default()) };
                Ok(Arc::new(source.by_applicant(&applicant).await?))
            })
            .await
    }
}
