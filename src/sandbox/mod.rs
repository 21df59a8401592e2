//! The embedded sandbox providers: real HTTP servers on loopback that speak each provider's API over a deterministic
//! population, check credentials and signatures like the real services, and count the requests they serve.
//! `kyc-gateway serve` starts them when no real provider is configured; the tests and benchmarks use the same servers.
//!
//! The sandbox users are the Fractal population (their gateway id is their Fractal uid) plus the users of ident's seed
//! records. The other providers draw from the same list, so one user has data at several providers at once: the
//! seed person of Fractal's documentation has Fractal cases, the RED/FINAL applicant of Sumsub's review documentation, a passed Sila
//! verification and an ident application.
//!
//! Each sandbox also changes a user's state through an admin endpoint and then delivers its provider's signed webhook
//! (see [`webhooks`]) to the targets set with [`Sandbox::set_webhook_targets`].

// Sandbox handlers return a finished provider error response early (`Result<_, Response>`); a large error variant
// costs nothing on these test servers and keeps each handler a straight line.
#![allow(clippy::result_large_err)]

pub mod faults;
pub mod fractal;
pub mod ident;
pub mod rng;
pub mod sila;
pub mod sumsub;
mod support;
pub mod webhooks;

pub use support::Counts;
pub use webhooks::{WebhookCounts, WebhookSender};

use fractal::FractalSandbox;
use ident::IdentSandbox;
use sila::SilaSandbox;
use sumsub::SumsubSandbox;

use crate::config::{Faults, PerProvider, SandboxSettings};
use crate::domain::levels::LevelMap;
use crate::secret::Secret;

/// The running sandbox providers.
#[derive(Clone)]
pub struct Sandbox {
    pub fractal: FractalSandbox,
    pub sumsub: SumsubSandbox,
    pub sila: SilaSandbox,
    pub ident: IdentSandbox,
    users: Vec<String>,
}

impl Sandbox {
    pub async fn start(settings: &SandboxSettings) -> std::io::Result<Self> {
        let fractal = FractalSandbox::start(settings).await?;
        let mut users: Vec<String> = fractal.population().users.iter().map(|u| u.uid.clone()).collect();
        let sumsub = SumsubSandbox::start(settings, &users).await?;
        let sila = SilaSandbox::start(settings, &users).await?;
        let ident = IdentSandbox::start(settings, &users).await?;
        users.extend(ident::population::SEED_USERS.iter().map(|u| u.to_string()));
        Ok(Sandbox { fractal, sumsub, sila, ident, users })
    }

    /// The faults of every sandbox provider, to change them together (the benchmark's injected latency).
    pub fn set_faults(&self, faults: &Faults) {
        for injector in [self.fractal.faults(), self.sumsub.faults(), self.sila.faults(), self.ident.faults()] {
            injector.set(faults.clone());
        }
    }

    /// Requests served by every sandbox provider together.
    pub fn requests(&self) -> u64 {
        [self.fractal.faults(), self.sumsub.faults(), self.sila.faults(), self.ident.faults()]
            .iter()
            .map(|f| f.requests())
            .sum()
    }

    /// Sends every provider's webhooks to `{base}/webhooks/{fractal|sumsub|sila|ident}` for each of
    /// `gateway_base_urls` (an empty list drops them).
    pub fn set_webhook_targets(&self, gateway_base_urls: &[String]) {
        for sender in self.webhook_senders() {
            let targets = gateway_base_urls
                .iter()
                .map(|base| format!("{}/webhooks/{}", base.trim_end_matches('/'), sender.provider()))
                .collect();
            sender.set_targets(targets);
        }
    }

    /// The secret each provider signs its webhooks with: what the gateway checks them against.
    pub fn webhook_secrets(&self) -> PerProvider<Secret> {
        PerProvider {
            fractal: self.fractal.webhook_secret(),
            sumsub: self.sumsub.webhook_secret(),
            sila: self.sila.webhook_secret(),
            ident: self.ident.webhook_secret(),
        }
    }

    /// Resolves once no provider has a webhook delivery under way, waiting for a retry or held for reordering.
    pub async fn webhooks_idle(&self) {
        for sender in self.webhook_senders() {
            sender.idle().await;
        }
    }

    fn webhook_senders(&self) -> [&WebhookSender; 4] {
        [self.fractal.webhooks(), self.sumsub.webhooks(), self.sila.webhooks(), self.ident.webhooks()]
    }

    /// Every sandbox user's gateway id: the Fractal population, then the users of ident's seed records.
    pub fn users(&self) -> &[String] {
        &self.users
    }

    /// How the sandbox providers' own levels map to items: Sumsub's `plus-kyc-level` and the two Sila flows exist only
    /// here, so sandbox mode adds them under whatever the configuration maps.
    pub fn levels() -> (LevelMap, LevelMap) {
        let sumsub = LevelMap::parse("plus-kyc-level=plus+selfie+liveness").expect("valid");
        let sila = LevelMap::parse(&format!(
            "{}=basic+ssn; {}=plus+selfie",
            sila::population::FLOW_STANDARD,
            sila::population::FLOW_DOCUMENTS
        ))
        .expect("valid");
        (sumsub, sila)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::sandbox::fractal::SEED_PERSON_UID;
    use crate::sandbox::webhooks::receiver::{quick_settings, Receiver};

    #[tokio::test]
    async fn each_provider_delivers_to_the_gateways_route_of_its_own_name() {
        let sandbox = Sandbox::start(&quick_settings()).await.expect("sandbox");
        sandbox.set_webhook_targets(&["http://gateway-a:8080/".into(), "http://gateway-b".into()]);
        assert_eq!(
            sandbox.sila.webhooks().targets(),
            ["http://gateway-a:8080/webhooks/sila", "http://gateway-b/webhooks/sila"]
        );
        assert_eq!(sandbox.ident.webhooks().targets()[1], "http://gateway-b/webhooks/ident");
        let secrets = sandbox.webhook_secrets();
        assert_eq!(secrets.sumsub, sandbox.sumsub.webhook_secret());
        let distinct: BTreeSet<&str> =
            [&secrets.fractal, &secrets.sumsub, &secrets.sila, &secrets.ident].iter().map(|s| s.expose()).collect();
        assert_eq!(distinct.len(), 4);

        let receiver = Receiver::start(0).await;
        sandbox.set_webhook_targets(&[receiver.url().to_owned()]);
        let http = reqwest::Client::new();
        let ident_root = sandbox.ident.base_url().trim_end_matches("/api/v1").to_owned();
        let application = sandbox.ident.records().into_iter().find(|r| r.user_id.as_deref() == Some(SEED_PERSON_UID));
        let changes = [
            (
                format!("{}/_sandbox/verifications", sandbox.fractal.base_url()),
                json!({ "uid": SEED_PERSON_UID, "level": "plus", "status": "rejected" }),
            ),
            (
                format!("{}/_sandbox/applicants/{SEED_PERSON_UID}/review", sandbox.sumsub.base_url()),
                json!({ "reviewAnswer": "GREEN" }),
            ),
            (
                format!("{}/_sandbox/verifications", sandbox.sila.base_url()),
                json!({ "user_handle": SEED_PERSON_UID, "status": "review" }),
            ),
            (
                format!("{ident_root}/_sandbox/applications/{}/status", application.expect("an application").id),
                json!({ "status": "review" }),
            ),
        ];
        for (url, body) in changes {
            let answer = http.post(&url).json(&body).send().await.expect("answer");
            assert!(answer.status().is_success(), "{url}: {}", answer.status());
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), sandbox.webhooks_idle()).await.expect("settled");
        let paths: BTreeSet<String> = receiver.received().into_iter().map(|r| r.path).collect();
        let expected: BTreeSet<String> =
            ["fractal", "sumsub", "sila", "ident"].iter().map(|p| format!("/webhooks/{p}")).collect();
        assert_eq!(paths, expected);
        assert_eq!(sandbox.requests(), 0, "the admin routes are not provider traffic");
    }
}
