//! The typed ident client.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::join_all;

use super::mapping::{application, create_wire};
use super::models::{KycApplicationWire, UpdateWire};
use super::Settings;
use crate::domain::application::{KycApplication, KycApplicationStatus, NewKycApplication};
use crate::domain::Provider;
use crate::providers::{encode_path_segment, join_url, json, Call, ProviderError, Upstream};

/// One page of ident's list, with its `x-total-results-count`.
struct Page {
    items: Vec<KycApplicationWire>,
    total: u64,
}

/// ident's largest page (`rpp`).
const MAX_PAGE: u64 = 100;

pub struct IdentClient {
    config: Settings,
    upstream: Upstream,
    /// How many pages the last pass over the whole list read ([`IdentClient::all_by_user`] asks that many at once).
    bulk_pages: AtomicU64,
}

/// ident's error body (its API documentation: `{"message": ...}`).
#[derive(serde::Deserialize)]
struct ErrorMessage {
    #[allow(dead_code)]
    message: serde_json::Value,
}

/// `None` for ident's own 404, the body otherwise. A 404 that is not ident's JSON error (an HTML page from a proxy,
/// or a base URL that points elsewhere) says nothing about the record: it is an error, never "nothing there".
async fn optional<T: DeserializeOwned>(mut response: reqwest::Response) -> Result<Option<T>, ProviderError> {
    if response.status() == StatusCode::NOT_FOUND {
        let json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > 64 * 1024 {
                return Err(ProviderError::Decode("a 404 with an oversized body".into()));
            }
            body.extend_from_slice(&chunk);
        }
        return match serde_json::from_slice::<ErrorMessage>(&body) {
            Ok(_) if json => Ok(None),
            _ => Err(ProviderError::Decode("a 404 that is not ident's JSON error".into())),
        };
    }
    json(response).await.map(Some)
}

impl IdentClient {
    pub fn new(settings: &Settings) -> Self {
        IdentClient {
            upstream: Upstream::new(Provider::Ident, settings.policy.clone()),
            config: settings.clone(),
            bulk_pages: AtomicU64::new(1),
        }
    }

    fn url(&self, path: &str) -> String {
        join_url(&self.config.base_url, path)
    }

    async fn send(
        &self,
        call: Call,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
        route: &'static str,
        path: &str,
    ) -> Result<reqwest::Response, ProviderError> {
        let url = self.url(path);
        self.upstream.send(call, route, |http| build(http, &url).bearer_auth(self.config.token.expose())).await
    }

    /// Applications, newest first: page `page` (from 1) of `rpp`, optionally of one status.
    async fn list(&self, status: Option<KycApplicationStatus>, page: u64, rpp: u64) -> Result<Page, ProviderError> {
        let mut query = vec![("page", page.to_string()), ("rpp", rpp.to_string())];
        if let Some(status) = status {
            query.push(("status", status.as_str().to_owned()));
        }
        let response = self
            .send(Call::Read, |http, url| http.get(url).query(&query), "/kyc_applications", "/kyc_applications")
            .await?;
        let total = response
            .headers()
            .get("x-total-results-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let items: Vec<KycApplicationWire> = json(response).await?;
        let before = (page.saturating_sub(1)) * rpp;
        // Without the header, a full page means there may be more.
        let total = total.unwrap_or(before + items.len() as u64 + u64::from(items.len() as u64 == rpp));
        Ok(Page { total, items })
    }

    /// A window of the applications, newest first, optionally of one status: skip `offset`, take `limit`; and how
    /// many there are in all. ident pages by `page`/`rpp`, so an unaligned window spans two of its pages.
    pub async fn window(
        &self,
        status: Option<KycApplicationStatus>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<KycApplication>, u64), ProviderError> {
        if limit == 0 {
            return Ok((Vec::new(), self.list(status, 1, 1).await?.total));
        }
        // The window starts inside ident page `first_page` (pages of `limit`); it spans a second page unless aligned.
        let rpp = limit as u64;
        let first_page = (offset / limit) as u64 + 1;
        let mut page = self.list(status, first_page, rpp).await?;
        let skip = offset % limit;
        if skip > 0 && (first_page * rpp) < page.total {
            page.items.extend(self.list(status, first_page + 1, rpp).await?.items);
        }
        let apps = page.items.into_iter().skip(skip).take(limit).map(application).collect();
        Ok((apps, page.total))
    }

    /// Every application, grouped by ident user id, in pages of 100; `None` when there are more than
    /// `max_pages` pages (then asking per user is cheaper than reading them all).
    pub async fn all_by_user(
        &self,
        max_pages: u64,
    ) -> Result<Option<HashMap<String, Vec<KycApplication>>>, ProviderError> {
        let pages_from = |first: u64, last: u64| async move {
            let answers = join_all((first..=last).map(|page| self.list(None, page, MAX_PAGE))).await;
            let mut pages = Vec::with_capacity(answers.len());
            for (page, answer) in (first..).zip(answers) {
                pages.push(match answer {
                    Ok(read) => read,
                    // Refused by the gateway's own upstream policy while the others went out (a half-open breaker
                    // lets one call through, a rate limit some): asked again alone, once the others answered.
                    Err(ProviderError::CircuitOpen | ProviderError::RateLimited { .. } | ProviderError::Overloaded) => {
                        self.list(None, page, MAX_PAGE).await?
                    }
                    Err(e) => return Err(e),
                });
            }
            Ok::<_, ProviderError>(pages)
        };
        // As many pages as the last pass read, at once: while the list keeps its size a pass is one round trip, not
        // one per page (BENCHMARKS.md, "What changed, measured step by step", step 1).
        let mut pages = pages_from(1, self.bulk_pages.load(Ordering::Relaxed).clamp(1, max_pages)).await?;
        loop {
            // The list ends at the first page that is empty or reaches its total; pages read past it are dropped.
            let end = pages.iter().zip(1..).position(|(p, n)| p.items.is_empty() || n * MAX_PAGE >= p.total);
            if let Some(end) = end {
                pages.truncate(end + 1);
                self.bulk_pages.store(pages.len() as u64, Ordering::Relaxed);
                let mut by_user: HashMap<String, Vec<KycApplication>> = HashMap::new();
                for app in pages.into_iter().flat_map(|p| p.items).map(application) {
                    by_user.entry(app.user_id.clone().unwrap_or_default()).or_default().push(app);
                }
                return Ok(Some(by_user));
            }
            let read = pages.len() as u64;
            let announced = pages.last().map_or(0, |p| p.total.div_ceil(MAX_PAGE));
            if read >= max_pages || announced > max_pages {
                self.bulk_pages.store(1, Ordering::Relaxed);
                return Ok(None);
            }
            // Longer than the last pass: the rest its last page's total announces, at once.
            let last = announced.clamp(read + 1, max_pages);
            pages.extend(pages_from(read + 1, last).await?);
        }
    }

    /// Every application of one user (ident's user id). Records of anyone else are dropped, whatever ident answers.
    pub async fn by_user(&self, user_id: &super::IdentUserId) -> Result<Vec<KycApplication>, ProviderError> {
        let Some(segment) = encode_path_segment(user_id) else { return Ok(Vec::new()) };
        let path = format!("/users/{segment}/kyc_applications");
        let route = "/users/{id}/kyc_applications";
        let response = self.send(Call::Read, |http, url| http.get(url), route, &path).await?;
        let records: Vec<KycApplicationWire> = optional(response).await?.unwrap_or_default();
        Ok(records.into_iter().filter(|r| r.user_id.as_deref() == Some(user_id.as_str())).map(application).collect())
    }

    /// One application, re-read from its provider (`provider_representation` included).
    pub async fn get(&self, id: &str) -> Result<Option<KycApplication>, ProviderError> {
        let Some(segment) = encode_path_segment(id) else { return Ok(None) };
        let path = format!("/kyc_applications/{segment}");
        let record: Option<KycApplicationWire> =
            optional(self.send(Call::Read, |http, url| http.get(url), "/kyc_applications/{id}", &path).await?).await?;
        Ok(record.filter(|r| r.id == id).map(application))
    }

    /// Creates an application. Never retried: a create that timed out may have been applied.
    pub async fn create(&self, new: &NewKycApplication) -> Result<KycApplication, ProviderError> {
        let body = create_wire(new);
        let response = self
            .send(Call::Write, |http, url| http.post(url).json(&body), "/kyc_applications", "/kyc_applications")
            .await?;
        json::<KycApplicationWire>(response).await.map(application)
    }

    /// Sets an application's status. Never retried: a PUT that timed out may have been applied.
    pub async fn update_status(
        &self,
        id: &str,
        status: KycApplicationStatus,
    ) -> Result<Option<KycApplication>, ProviderError> {
        let Some(segment) = encode_path_segment(id) else { return Ok(None) };
        let body = UpdateWire { status: Some(status.as_str().to_owned()) };
        let path = format!("/kyc_applications/{segment}");
        let updated: Option<KycApplicationWire> = optional(
            self.send(Call::Write, |http, url| http.put(url).json(&body), "/kyc_applications/{id}", &path).await?,
        )
        .await?;
        Ok(updated.map(application))
    }
}
