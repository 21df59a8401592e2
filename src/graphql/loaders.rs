//! Per-request DataLoaders (async-graphql's), one per provider and kind of key: within a request a key is fetched
//! once, and independent keys are fetched concurrently; each fetch goes through the cache across requests.
//! Fractal's per-user statistics and ident's application list are bulk endpoints: a batch of users costs one call.
//!
//! Batching window: async-graphql resolves the fields of a list concurrently, so every key of one list is queued
//! within the same scheduler pass. A short `delay` catches them without adding the default 1 ms to every request;
//! 100 µs measured best in `kyc-bench` (see BENCHMARKS.md), and 500 keys per batch matches the `users(ids:)` bound.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use futures_util::future::join_all;

use super::Services;
use crate::directory::ident_user_of;
use crate::domain::application::KycApplication;
use crate::domain::{level_items, Provider, ProviderProfile, VerificationCase};
use crate::providers::cache::{Key, Kind, Value};
use crate::providers::{ident, sila, sumsub, ProviderError};

/// The batching window; see the module documentation.
pub const DELAY: Duration = Duration::from_micros(100);
/// The most keys in one batch: the `users(ids:)` bound, so one list is one batch.
pub const MAX_BATCH: usize = 500;
/// From this many users on, one pass over ident's whole list beats one call per user.
const IDENT_BULK_MIN: usize = 25;

/// One key's answer: each key carries its own error, so one user's failure does not fail the batch.
pub type Outcome<T> = Result<T, ProviderError>;

macro_rules! loader {
    ($name:ident, $value:ty, $load:ident) => {
        pub struct $name(Services);

        impl Loader<String> for $name {
            type Value = Outcome<$value>;
            type Error = Infallible;

            async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Infallible> {
                Ok($load(&self.0, keys).await)
            }
        }
    };
}

loader!(FractalProfiles, Option<Arc<ProviderProfile>>, fractal_profiles);
/// The per-request memo of a bulk answer: one call per request however the keys are batched, cache or not.
pub type Bulk<T> = tokio::sync::OnceCell<Outcome<Arc<HashMap<String, Arc<Vec<T>>>>>>;

pub struct FractalStates(Services, Bulk<VerificationCase>);

impl Loader<String> for FractalStates {
    type Value = Outcome<Arc<Vec<VerificationCase>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Infallible> {
        Ok(fractal_states(&self.0, &self.1, keys).await)
    }
}

pub struct IdentApplications(Services, Bulk<KycApplication>);

impl Loader<String> for IdentApplications {
    type Value = Outcome<Arc<Vec<KycApplication>>>;
    type Error = Infallible;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Infallible> {
        Ok(ident_applications(&self.0, &self.1, keys).await)
    }
}
loader!(SumsubCases, Arc<Vec<VerificationCase>>, sumsub_cases);
loader!(SilaCases, Arc<Vec<VerificationCase>>, sila_cases);
loader!(SilaReasons, Option<Arc<Vec<String>>>, sila_reasons);

type Dl<T> = DataLoader<T, HashMapCache>;

/// The loaders of one request.
pub struct Loaders {
    pub fractal: Dl<FractalProfiles>,
    pub fractal_states: Dl<FractalStates>,
    pub sumsub: Dl<SumsubCases>,
    pub sila: Dl<SilaCases>,
    pub sila_reasons: Dl<SilaReasons>,
    pub ident: Dl<IdentApplications>,
}

fn dl<T: Loader<String>>(loader: T, delay: Duration) -> Dl<T> {
    DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default()).delay(delay).max_batch_size(MAX_BATCH)
}

impl Loaders {
    pub fn new(services: &Services) -> Self {
        let d = services.loader_delay;
        Loaders {
            fractal: dl(FractalProfiles(services.clone()), d),
            fractal_states: dl(FractalStates(services.clone(), Bulk::new()), d),
            sumsub: dl(SumsubCases(services.clone()), d),
            sila: dl(SilaCases(services.clone()), d),
            sila_reasons: dl(SilaReasons(services.clone()), d),
            ident: dl(IdentApplications(services.clone(), Bulk::new()), d),
        }
    }
}

/// Loads one key through its loader.
pub async fn one<T>(loader: &Dl<T>, key: &str) -> T::Value
where
    T: Loader<String, Error = Infallible>,
{
    match loader.load_one(key.to_owned()).await {
        Ok(Some(value)) => value,
        Ok(None) => unreachable!("every loader answers every key"),
        Err(never) => match never {},
    }
}

/// Runs `each` for every key concurrently.
async fn per_key<T, F, Fut>(keys: &[String], each: F) -> HashMap<String, Outcome<T>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Outcome<T>>,
{
    join_all(keys.iter().map(|k| {
        let fut = each(k.clone());
        async move { (k.clone(), fut.await) }
    }))
    .await
    .into_iter()
    .collect()
}

pub(super) async fn fractal_profiles(
    s: &Services,
    keys: &[String],
) -> HashMap<String, Outcome<Option<Arc<ProviderProfile>>>> {
    per_key(keys, |user| async move {
        let Some(client) = &s.fractal else { return Ok(None) };
        let value = s
            .cache
            .get_or_fetch(Key::new(Kind::FractalProfile, user.clone()), || async {
                Ok(Value::Profile(client.profile(&user).await?.map(Arc::new)))
            })
            .await?;
        match value {
            Value::Profile(p) => Ok(p),
            _ => unreachable!("FractalProfile keys hold profiles"),
        }
    })
    .await
}

/// A bulk answer grouped by user.
type ByUser<T> = Arc<HashMap<String, Arc<Vec<T>>>>;

/// A bulk answer: the request's memo, else the cache, else `fetch` (rows grouped by user). Whatever the batching,
/// one call per request at most.
async fn bulk_answer<T, F, Fut>(
    s: &Services,
    bulk: &Bulk<T>,
    kind: Kind,
    fetch: F,
    wrap: fn(ByUser<T>) -> Value,
    unwrap: fn(Value) -> Option<ByUser<T>>,
) -> Outcome<ByUser<T>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Outcome<HashMap<String, Vec<T>>>>,
{
    bulk.get_or_init(|| async {
        let value = s
            .cache
            .get_or_fetch(Key::new(kind, ""), || async {
                let grouped = fetch().await?;
                Ok(wrap(Arc::new(grouped.into_iter().map(|(user, rows)| (user, Arc::new(rows))).collect())))
            })
            .await?;
        Ok(unwrap(value).expect("a bulk key holds its own kind"))
    })
    .await
    .clone()
}

/// Every key answered with the same error.
fn fail_all<T>(keys: &[String], error: ProviderError) -> HashMap<String, Outcome<T>> {
    keys.iter().map(|k| (k.clone(), Err(error.clone()))).collect()
}

/// Every user's Fractal verifications from the statistics, one bulk call for any number of users.
pub(super) async fn fractal_states(
    s: &Services,
    bulk: &Bulk<VerificationCase>,
    keys: &[String],
) -> HashMap<String, Outcome<Arc<Vec<VerificationCase>>>> {
    let Some(client) = &s.fractal else {
        return keys.iter().map(|k| (k.clone(), Ok(Arc::new(Vec::new())))).collect();
    };
    let fetch = || async {
        let mut by_uid: HashMap<String, Vec<VerificationCase>> = HashMap::new();
        for row in client.user_verifications().await? {
            let items = level_items(&row.level);
            let case =
                VerificationCase::new(Provider::Fractal, row.level.clone(), row.level, items, row.state, row.status);
            by_uid.entry(row.fractal_uid).or_default().push(case);
        }
        Ok(by_uid)
    };
    let unwrap = |v| match v {
        Value::CasesByUser(map) => Some(map),
        _ => None,
    };
    let by_uid = match bulk_answer(s, bulk, Kind::FractalStates, fetch, Value::CasesByUser, unwrap).await {
        Ok(map) => map,
        Err(e) => return fail_all(keys, e),
    };
    per_key(keys, |user| {
        let by_uid = by_uid.clone();
        async move {
            let uid = s.directory.fractal_uid(&user).await?;
            Ok(uid.and_then(|uid| by_uid.get(&uid).cloned()).unwrap_or_default())
        }
    })
    .await
}

fn cases(value: Value) -> Arc<Vec<VerificationCase>> {
    match value {
        Value::Cases(c) => c,
        _ => unreachable!("case keys hold cases"),
    }
}

pub(super) async fn sumsub_cases(
    s: &Services,
    keys: &[String],
) -> HashMap<String, Outcome<Arc<Vec<VerificationCase>>>> {
    per_key(keys, |user| async move {
        let Some(client) = &s.sumsub else { return Ok(Arc::new(Vec::new())) };
        let value = s
            .cache
            .get_or_fetch(Key::new(Kind::SumsubCases, user.clone()), || async {
                let applicant = match s.directory.references(&user).await?.sumsub_applicant_id {
                    Some(id) => client.applicant(&id).await?,
                    None => client.applicant_by_external_id(&user).await?,
                };
                Ok(Value::Cases(Arc::new(applicant.iter().map(|a| sumsub::case(a, &s.levels.sumsub)).collect())))
            })
            .await?;
        Ok(cases(value))
    })
    .await
}

pub(super) async fn sila_cases(s: &Services, keys: &[String]) -> HashMap<String, Outcome<Arc<Vec<VerificationCase>>>> {
    per_key(keys, |user| async move {
        let Some(client) = &s.sila else { return Ok(Arc::new(Vec::new())) };
        let value = s
            .cache
            .get_or_fetch(Key::new(Kind::SilaCases, user.clone()), || async {
                let handle =
                    s.directory.references(&user).await?.sila_user_handle.unwrap_or_else(|| client.user_handle(&user));
                let answer = client.verifications(&handle).await?;
                let found =
                    answer.iter().flat_map(|a| a.verifications.iter()).map(|v| sila::case(&handle, v, &s.levels.sila));
                Ok(Value::Cases(Arc::new(found.collect())))
            })
            .await?;
        Ok(cases(value))
    })
    .await
}

/// Key: `handle` NUL `verification uuid`.
pub(super) async fn sila_reasons(s: &Services, keys: &[String]) -> HashMap<String, Outcome<Option<Arc<Vec<String>>>>> {
    per_key(keys, |key| async move {
        let Some(client) = &s.sila else { return Ok(None) };
        let (handle, uuid) = key.split_once('\0').unwrap_or((key.as_str(), ""));
        let value = s
            .cache
            .get_or_fetch(Key::new(Kind::SilaReasons, key.clone()), || async {
                let answer = client.verification(handle, uuid).await?;
                Ok(Value::Reasons(answer.map(|v| Arc::new(v.reasons.for_kyc_response))))
            })
            .await?;
        match value {
            Value::Reasons(r) => Ok(r),
            _ => unreachable!("SilaReasons keys hold reasons"),
        }
    })
    .await
}

/// The key of a Sila verification's reasons.
pub fn reasons_key(handle: &str, uuid: &str) -> String {
    format!("{handle}\0{uuid}")
}

pub(super) async fn ident_applications(
    s: &Services,
    bulk: &Bulk<KycApplication>,
    keys: &[String],
) -> HashMap<String, Outcome<Arc<Vec<KycApplication>>>> {
    let Some(client) = &s.ident else {
        return keys.iter().map(|k| (k.clone(), Ok(Arc::new(Vec::new())))).collect();
    };
    if keys.len() >= IDENT_BULK_MIN || bulk.initialized() {
        let fetch = || async {
            let mut by_user: HashMap<String, Vec<KycApplication>> = HashMap::new();
            let mut page = 1;
            loop {
                let answer = client.list(None, page, 100).await?;
                let done = answer.items.is_empty() || page * 100 >= answer.total;
                for app in answer.items.into_iter().map(ident::application) {
                    by_user.entry(app.user_id.clone().unwrap_or_default()).or_default().push(app);
                }
                if done {
                    return Ok(by_user);
                }
                page += 1;
            }
        };
        let unwrap = |v| match v {
            Value::ApplicationsByUser(map) => Some(map),
            _ => None,
        };
        let by_user = match bulk_answer(s, bulk, Kind::IdentAll, fetch, Value::ApplicationsByUser, unwrap).await {
            Ok(map) => map,
            Err(e) => return fail_all(keys, e),
        };
        return per_key(keys, |user| {
            let by_user = by_user.clone();
            async move {
                let ident_user = ident_user_of(s.directory.as_ref(), &user).await?;
                Ok(ident_user.and_then(|u| by_user.get(&u).cloned()).unwrap_or_default())
            }
        })
        .await;
    }
    per_key(keys, |user| async move {
        let value = s
            .cache
            .get_or_fetch(Key::new(Kind::IdentApplications, user.clone()), || async {
                let Some(ident_user) = ident_user_of(s.directory.as_ref(), &user).await? else {
                    return Ok(Value::Applications(Arc::new(Vec::new())));
                };
                let apps = client.by_user(&ident_user).await?.into_iter().map(ident::application).collect();
                Ok(Value::Applications(Arc::new(apps)))
            })
            .await?;
        match value {
            Value::Applications(a) => Ok(a),
            _ => unreachable!("IdentApplications keys hold applications"),
        }
    })
    .await
}
