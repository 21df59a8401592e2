//! What the providers know about one user, fetched at most once per request however many fields ask, each provider
//! only when a field needs it, and the providers in parallel when a field needs several.

use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::OnceCell;

use super::Services;
use crate::directory::ProviderRefs;
use crate::domain::application::KycApplication;
use crate::domain::{Provider, ProviderProfile, VerificationCase};
use crate::providers::{ident, sila, sumsub, ProviderError};

type Loaded<T> = OnceCell<Result<T, ProviderError>>;

/// The providers that have verification cases.
pub const CASE_PROVIDERS: [Provider; 3] = [Provider::Fractal, Provider::Sumsub, Provider::Sila];

#[derive(Default)]
pub struct UserData {
    refs: Loaded<ProviderRefs>,
    fractal: Loaded<Option<Arc<ProviderProfile>>>,
    sumsub: Loaded<Vec<VerificationCase>>,
    sila: Loaded<Vec<VerificationCase>>,
    ident: Loaded<Vec<KycApplication>>,
}

impl UserData {
    async fn refs(&self, s: &Services, id: &str) -> Result<ProviderRefs, ProviderError> {
        self.refs.get_or_init(|| async { Ok(s.directory.references(id).await?) }).await.clone()
    }

    /// The user's Fractal profile (emails, phones, wallets, cases); `None` when not linked or Fractal is off.
    pub async fn fractal(&self, s: &Services, id: &str) -> Result<Option<Arc<ProviderProfile>>, ProviderError> {
        self.fractal
            .get_or_init(|| async {
                match &s.fractal {
                    Some(client) => Ok(client.profile(id).await?.map(Arc::new)),
                    None => Ok(None),
                }
            })
            .await
            .clone()
    }

    async fn sumsub(&self, s: &Services, id: &str) -> Result<Vec<VerificationCase>, ProviderError> {
        self.sumsub
            .get_or_init(|| async {
                let Some(client) = &s.sumsub else { return Ok(Vec::new()) };
                let applicant = match self.refs(s, id).await?.sumsub_applicant_id {
                    Some(applicant_id) => client.applicant(&applicant_id).await?,
                    None => client.applicant_by_external_id(id).await?,
                };
                Ok(applicant.iter().map(|a| sumsub::case(a, &s.levels.sumsub)).collect())
            })
            .await
            .clone()
    }

    async fn sila(&self, s: &Services, id: &str) -> Result<Vec<VerificationCase>, ProviderError> {
        self.sila
            .get_or_init(|| async {
                let Some(client) = &s.sila else { return Ok(Vec::new()) };
                let handle = self.refs(s, id).await?.sila_user_handle.unwrap_or_else(|| client.user_handle(id));
                let answer = client.verifications(&handle).await?;
                Ok(answer
                    .iter()
                    .flat_map(|a| a.verifications.iter())
                    .map(|v| sila::case(&handle, v, &s.levels.sila))
                    .collect())
            })
            .await
            .clone()
    }

    /// The user's KYC applications at ident; none when ident is off.
    pub async fn applications(&self, s: &Services, id: &str) -> Result<Vec<KycApplication>, ProviderError> {
        self.ident
            .get_or_init(|| async {
                let Some(client) = &s.ident else { return Ok(Vec::new()) };
                let ident_user = self.refs(s, id).await?.ident_user_id.unwrap_or_else(|| id.to_owned());
                Ok(client.by_user(&ident_user).await?.into_iter().map(ident::application).collect())
            })
            .await
            .clone()
    }

    async fn cases_of(
        &self,
        s: &Services,
        id: &str,
        provider: Provider,
    ) -> Result<Vec<VerificationCase>, ProviderError> {
        match provider {
            Provider::Fractal => Ok(self.fractal(s, id).await?.map(|p| p.cases.clone()).unwrap_or_default()),
            Provider::Sumsub => self.sumsub(s, id).await,
            Provider::Sila => self.sila(s, id).await,
            Provider::Ident => Ok(Vec::new()),
        }
    }

    /// The cases of `providers`, fetched in parallel; a provider that fails is reported beside the others' cases.
    pub async fn cases(
        &self,
        s: &Services,
        id: &str,
        providers: &[Provider],
    ) -> (Vec<VerificationCase>, Vec<(Provider, ProviderError)>) {
        let answers = join_all(providers.iter().map(|&p| async move { (p, self.cases_of(s, id, p).await) })).await;
        let mut cases = Vec::new();
        let mut failures = Vec::new();
        for (provider, answer) in answers {
            match answer {
                Ok(found) => cases.extend(found),
                Err(e) => failures.push((provider, e)),
            }
        }
        (cases, failures)
    }
}
