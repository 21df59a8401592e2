//! The sandbox providers: real HTTP servers speaking each provider's API over a deterministic population, checking
//! credentials and signatures, injecting faults and counting requests. One folder per provider (`registry.rs`); the
//! gateway reaches them only over HTTP, configured by [`Sandbox::environment`] and [`Sandbox::directory_entries`].

// Sandbox handlers return a finished provider error response early (`Result<_, Response>`); a large error variant
// costs nothing on these test servers and keeps each handler a straight line.
#![allow(clippy::result_large_err)]

pub mod faults;
pub mod fractal;
pub mod ident;
mod registry;
pub mod rng;
pub mod settings;
pub mod sila;
pub mod sumsub;
mod support;
pub mod veriff;
pub mod webhooks;

use std::any::Any;
use std::sync::Arc;

pub use settings::{Faults, SandboxSettings, SandboxWebhookSettings};
pub use support::Counts;
pub use webhooks::{WebhookCounts, WebhookSender};

use faults::FaultInjector;

/// How a sandbox variable combines with one the operator set too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The operator's value wins.
    Replace,
    /// Both: the sandbox's first, then the operator's, joined by this separator (lists of secrets and level maps,
    /// where a later entry overrides an earlier one of the same name).
    Append(&'static str),
}

/// One variable of the environment block a gateway needs to use the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: String,
    pub merge: Merge,
}

impl Variable {
    fn new(name: &str, value: impl Into<String>) -> Self {
        Variable { name: name.to_owned(), value: value.into(), merge: Merge::Replace }
    }

    fn append(name: &str, value: impl Into<String>, separator: &'static str) -> Self {
        Variable { name: name.to_owned(), value: value.into(), merge: Merge::Append(separator) }
    }
}

/// One running sandbox provider, as the sandbox as a whole handles it.
pub trait SandboxProvider: Send + Sync + 'static {
    /// The provider's name in routes and variables: the gateway's `/webhooks/<name>`, `KYC_GATEWAY_<NAME>_...`.
    fn name(&self) -> &'static str;
    /// Where its API is (a client's base URL).
    fn base_url(&self) -> String;
    /// Its fault injector and request count.
    fn faults(&self) -> &FaultInjector;
    /// How it delivers its webhooks.
    fn webhooks(&self) -> &WebhookSender;
    /// The variables a gateway needs to use it: base URLs, the credentials it drew, its webhook secret, its levels.
    fn environment(&self) -> Vec<Variable>;
    /// Users this provider adds to the population the providers after it draw from.
    fn users(&self) -> Vec<String> {
        Vec::new()
    }
    /// What a directory import entry of `user_id` holds for this provider (a link to it, say), if anything.
    fn directory_fields(&self, _user_id: &str) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }
    fn as_any(&self) -> &dyn Any;
}

/// The running sandbox providers.
#[derive(Clone)]
pub struct Sandbox {
    providers: Arc<Vec<Arc<dyn SandboxProvider>>>,
    users: Arc<Vec<String>>,
}

impl Sandbox {
    /// Starts every provider of the registry, each on its configured port or a free one.
    pub async fn start(settings: &SandboxSettings) -> std::io::Result<Self> {
        let mut providers = Vec::new();
        let mut users: Vec<String> = Vec::new();
        for start in registry::PROVIDERS {
            let provider = start(settings, &users).await?;
            users.extend(provider.users());
            providers.push(provider);
        }
        Ok(Sandbox { providers: Arc::new(providers), users: Arc::new(users) })
    }

    /// The provider of type `P`.
    pub fn get<P: SandboxProvider>(&self) -> &P {
        self.providers
            .iter()
            .find_map(|p| p.as_any().downcast_ref::<P>())
            .expect("every provider type of the registry is running")
    }

    /// Every running provider, in registry order.
    pub fn providers(&self) -> impl Iterator<Item = &dyn SandboxProvider> {
        self.providers.iter().map(|p| p.as_ref())
    }

    /// The faults of every sandbox provider, to change them together (the benchmark's injected latency).
    pub fn set_faults(&self, faults: &Faults) {
        for provider in self.providers() {
            provider.faults().set(faults.clone());
        }
    }

    /// Requests served by every sandbox provider together.
    pub fn requests(&self) -> u64 {
        self.providers().map(|p| p.faults().requests()).sum()
    }

    /// Sends every provider's webhooks to `{base}/webhooks/{name}` for each of `gateway_base_urls` (an empty list
    /// drops them).
    pub fn set_webhook_targets(&self, gateway_base_urls: &[String]) {
        for provider in self.providers() {
            let targets = gateway_base_urls
                .iter()
                .map(|base| format!("{}/webhooks/{}", base.trim_end_matches('/'), provider.name()))
                .collect();
            provider.webhooks().set_targets(targets);
        }
    }

    /// Resolves once no provider has a webhook delivery under way, waiting for a retry or held for reordering.
    pub async fn webhooks_idle(&self) {
        for provider in self.providers() {
            provider.webhooks().idle().await;
        }
    }

    /// Every sandbox user's gateway id, in the order the providers added them.
    pub fn users(&self) -> &[String] {
        &self.users
    }

    /// The variables a gateway needs to use these providers, provider by provider.
    pub fn environment(&self) -> Vec<Variable> {
        self.providers().flat_map(|p| p.environment()).collect()
    }

    /// The environment block as shell lines (`NAME=value`, quoted where the shell needs it), what `kyc-gateway
    /// sandbox` prints: `set -a; . FILE; set +a` reads it back.
    pub fn environment_block(&self) -> String {
        self.environment().iter().map(|v| format!("{}={}\n", v.name, shell_quoted(&v.value))).collect()
    }

    /// Every sandbox user as an entry of the gateway's directory import file (`kyc-gateway directory import`):
    /// `{"user_id": ..., <what each provider holds for the user>}`.
    pub fn directory_entries(&self) -> serde_json::Value {
        let entries = self.users.iter().map(|user| {
            let mut entry = serde_json::Map::new();
            entry.insert("user_id".into(), user.clone().into());
            for (field, value) in self.providers().flat_map(|p| p.directory_fields(user)) {
                entry.insert(field.into(), value);
            }
            serde_json::Value::Object(entry)
        });
        serde_json::Value::Array(entries.collect())
    }
}

/// `value` as one POSIX shell word: as it is when every character is plain, else in single quotes (a quote inside
/// written as `'\''`).
pub fn shell_quoted(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:,@+=%".contains(c);
    match !value.is_empty() && value.chars().all(plain) {
        true => value.to_owned(),
        false => format!("'{}'", value.replace('\'', r"'\''")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::fractal::SEED_PERSON_UID;
    use crate::webhooks::receiver::{quick_settings, Receiver};

    /// The block is what `set -a; . FILE` in a real shell turns back into the same variables, level maps with `; `
    /// and spaces included.
    #[tokio::test]
    async fn a_shell_reads_the_environment_block_back_into_the_same_variables() {
        let sandbox = Sandbox::start(&quick_settings()).await.expect("sandbox");
        let mut block = sandbox.environment_block();
        block.push_str(&format!("KYC_TEST_ODD={}\n", shell_quoted("it's a $HOME `x`; \"y\" z")));
        let file = std::env::temp_dir().join(format!("kyc-sandbox-env-{}", std::process::id()));
        std::fs::write(&file, &block).expect("written");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg("set -a; . \"$0\"; set +a; env -0")
            .arg(&file)
            .env_clear()
            .output()
            .expect("sh runs");
        let _ = std::fs::remove_file(&file);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let read: std::collections::BTreeMap<String, String> = String::from_utf8(output.stdout)
            .expect("UTF-8")
            .split('\0')
            .filter_map(|pair| pair.split_once('=').map(|(n, v)| (n.to_owned(), v.to_owned())))
            .collect();
        let mut expected: Vec<(String, String)> =
            sandbox.environment().into_iter().map(|v| (v.name, v.value)).collect();
        expected.push(("KYC_TEST_ODD".into(), "it's a $HOME `x`; \"y\" z".into()));
        assert!(expected.iter().any(|(_, v)| v.contains("; ")), "a level map with `; ` is among them");
        for (name, value) in expected {
            assert_eq!(read.get(&name), Some(&value), "{name}");
        }
    }

    #[tokio::test]
    async fn each_provider_delivers_to_the_gateways_route_of_its_own_name_and_signs_with_a_secret_of_its_own() {
        let sandbox = Sandbox::start(&quick_settings()).await.expect("sandbox");
        sandbox.set_webhook_targets(&["http://gateway-a:8080/".into(), "http://gateway-b".into()]);
        assert_eq!(
            sandbox.sila().webhooks().targets(),
            ["http://gateway-a:8080/webhooks/sila", "http://gateway-b/webhooks/sila"]
        );
        assert_eq!(sandbox.ident().webhooks().targets()[1], "http://gateway-b/webhooks/ident");
        let environment = sandbox.environment();
        let secrets: BTreeSet<&str> =
            environment.iter().filter(|v| v.name.ends_with("_WEBHOOK_SECRETS")).map(|v| v.value.as_str()).collect();
        assert_eq!(secrets.len(), sandbox.providers().count(), "one secret of its own per provider");
        assert!(environment.iter().any(|v| v.name == "KYC_GATEWAY_SUMSUB_WEBHOOK_SECRETS"
            && v.value == sandbox.sumsub().webhook_secret().expose_secret()));

        let receiver = Receiver::start(0).await;
        sandbox.set_webhook_targets(&[receiver.url().to_owned()]);
        let http = reqwest::Client::new();
        let ident_root = sandbox.ident().base_url().trim_end_matches("/api/v1").to_owned();
        let application = sandbox.ident().records().into_iter().find(|r| r.user_id.as_deref() == Some(SEED_PERSON_UID));
        let changes = [
            (
                format!("{}/_sandbox/verifications", sandbox.fractal().base_url()),
                json!({ "uid": SEED_PERSON_UID, "level": "plus", "status": "rejected" }),
            ),
            (
                format!("{}/_sandbox/applicants/{SEED_PERSON_UID}/review", sandbox.sumsub().base_url()),
                json!({ "reviewAnswer": "GREEN" }),
            ),
            (
                format!("{}/_sandbox/verifications", sandbox.sila().base_url()),
                json!({ "user_handle": SEED_PERSON_UID, "status": "review" }),
            ),
            (
                format!("{ident_root}/_sandbox/applications/{}/status", application.expect("an application").id),
                json!({ "status": "review" }),
            ),
            (
                format!(
                    "{}/_sandbox/sessions/{}/decision",
                    sandbox.veriff().base_url(),
                    sandbox.veriff().sessions_of(SEED_PERSON_UID)[0]
                ),
                json!({ "status": "review" }),
            ),
        ];
        for (url, body) in changes {
            let answer = http.post(&url).json(&body).send().await.expect("answer");
            assert!(answer.status().is_success(), "{url}: {}", answer.status());
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), sandbox.webhooks_idle()).await.expect("settled");
        let paths: BTreeSet<String> = receiver.received().into_iter().map(|r| r.path).collect();
        let expected: BTreeSet<String> = sandbox.providers().map(|p| format!("/webhooks/{}", p.name())).collect();
        assert_eq!(paths, expected);
        assert_eq!(sandbox.requests(), 0, "the admin routes are not provider traffic");
    }
}
