//! Fractal credentials against the sandbox: per-user tokens refreshed with rotation, expiry, the client-credentials
//! token's lifetime, and the sandbox's own OAuth behaviour. The gateway runs without its cache here, so that every
//! query reaches the Fractal client.

use std::time::Duration;

use std::sync::Arc;

use kyc_gateway::directory::{
    Consumed, Directory, DirectoryError, Link, LinkRefresh, LinkState, LinkTokens, Linked, References, SqlDirectory,
    UserEntry,
};
use kyc_gateway::domain::{Provider, UserId};
use kyc_gateway::sandbox::fractal::FractalSandbox;
use kyc_gateway::secret::Secret;
use kyc_gateway::store::crypto::TokenCipher;
use kyc_gateway::store::{Store, StoreSettings};
use reqwest::StatusCode;

use crate::helpers::Expose as _;
use crate::helpers::{client_token, eventually, spawn_with, uid, TestApp};

async fn spawn() -> TestApp {
    spawn_with(|c| c.cache.enabled = false).await
}

const EMAILS: &str = "{ me { emails { address } } }";

async fn refresh_token(app: &TestApp, user: &str) -> Secret {
    app.directory.link(&uid(user), Provider::Fractal).await.expect("directory").expect("linked").tokens.refresh_token
}

fn user_of(app: &TestApp, index: usize) -> String {
    app.sandbox().fractal().population().users[index].uid.clone()
}

#[tokio::test]
async fn the_first_read_refreshes_the_link_once_and_stores_the_rotated_refresh_token() {
    let app = spawn().await;
    let user = user_of(&app, 3);
    let r0 = refresh_token(&app, &user).await;
    app.query(&crate::helpers::user_token(&user, "contact:read"), EMAILS).await.ok();
    let r1 = refresh_token(&app, &user).await;
    assert_ne!(r0, r1, "the rotated refresh token is stored");
    assert!(
        !app.sandbox().fractal().refresh_token_is_valid(r0.expose()),
        "the old pair died when the new access token was used"
    );
    assert!(app.sandbox().fractal().refresh_token_is_valid(r1.expose()));
    assert_eq!(app.sandbox().fractal().counts().get("token_refresh"), 1);

    app.query(&crate::helpers::user_token(&user, "contact:read"), EMAILS).await.ok();
    assert_eq!(app.sandbox().fractal().counts().get("token_refresh"), 1, "a valid access token is reused");
}

#[tokio::test]
async fn an_access_token_refused_with_401_is_refreshed_and_the_read_retried() {
    let app = spawn().await;
    let user = user_of(&app, 4);
    let token = crate::helpers::user_token(&user, "contact:read");
    app.query(&token, EMAILS).await.ok();
    app.sandbox().fractal().expire_access_tokens();
    app.query(&token, EMAILS).await.ok();
    let counts = app.sandbox().fractal().counts();
    assert_eq!(counts.get("token_refresh"), 2);
    assert_eq!(counts.get("users_me"), 3, "first read, the refused read, the retry");
    assert_eq!(counts.get("resource_refused"), 1);
}

#[tokio::test]
async fn concurrent_reads_of_one_user_refresh_once() {
    let app = spawn().await;
    let user = user_of(&app, 5);
    let token = crate::helpers::user_token(&user, "contact:read");
    let reads = (0..20).map(|_| app.query(&token, EMAILS));
    for answer in futures_util::future::join_all(reads).await {
        answer.ok();
    }
    assert_eq!(app.sandbox().fractal().counts().get("token_refresh"), 1);
}

#[tokio::test]
async fn tokens_are_renewed_when_they_near_expiry() {
    // Six-second tokens are renewed three seconds before they expire (half their lifetime, at most a minute): the
    // four queries before the renewal never race it, however loaded the machine is.
    let app = spawn_with(|c| {
        c.sandbox.fractal_token_ttl = Duration::from_secs(6);
        c.cache.enabled = false;
    })
    .await;
    let user = user_of(&app, 6);
    let token = crate::helpers::user_token(&user, "contact:read");
    let stats = client_token("client.stats:read");
    let q = "{ verificationStats { total { approved } } }";
    let refreshes = || {
        let counts = app.sandbox().fractal().counts();
        (counts.get("token_refresh"), counts.get("token_client_credentials"))
    };
    app.query(&token, EMAILS).await.ok();
    app.query(&stats, q).await.ok();
    app.query(&token, EMAILS).await.ok();
    app.query(&stats, q).await.ok();
    assert_eq!(refreshes(), (1, 1), "fresh tokens are reused");
    eventually("both tokens were renewed", || async {
        app.query(&token, EMAILS).await.ok();
        app.query(&stats, q).await.ok();
        refreshes() == (2, 2)
    })
    .await;
    assert_eq!(app.sandbox().fractal().counts().get("resource_refused"), 0, "renewed before the provider refused them");
}

#[tokio::test]
async fn a_revoked_link_nulls_the_fractal_fields_with_provider_unauthorized() {
    let app = spawn().await;
    let user = user_of(&app, 7);
    let revoked = LinkTokens { access_token: None, access_renew_at: None, refresh_token: Secret::new("revoked") };
    let link = Link { subject: user.clone(), scopes: String::new(), tokens: revoked };
    app.directory.store_link(&uid(&user), Provider::Fractal, &link).await.expect("stored");
    let q = "{ me { emails { address } verificationCases { level } } }";
    let answer = app.query(&crate::helpers::user_token(&user, "contact:read verification.basic:read"), q).await;
    assert!(answer.data("me.emails").is_null());
    assert_eq!(answer.data("me.verificationCases"), &serde_json::json!([]));
    for error in answer.errors() {
        assert_eq!(error["extensions"]["code"], "PROVIDER_UNAUTHORIZED");
        assert_eq!(error["extensions"]["provider"], "FRACTAL");
        assert!(!error["message"].as_str().expect("message").contains("revoked"), "no upstream detail");
    }
    assert_eq!(answer.errors().len(), 2);
}

#[tokio::test]
async fn the_sandbox_runs_the_authorization_code_flow_once_per_code() {
    let app = spawn().await;
    let fractal = app.sandbox().fractal().clone();
    let uid = user_of(&app, 8);
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let authorize = format!("{}/authorize", fractal.base_url());
    let params = [
        ("client_id", fractal.client_id()),
        ("redirect_uri", "https://app.example.com/cb"),
        ("response_type", "code"),
        ("scope", "uid:read contact:read"),
        ("state", "xyz"),
        ("uid", uid.as_str()),
    ];
    let response = no_redirect.get(&authorize).query(&params).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(location.starts_with("https://app.example.com/cb?code=") && location.ends_with("&state=xyz"), "{location}");
    let code = location.split("code=").nth(1).and_then(|s| s.split('&').next()).expect("code").to_owned();
    let secret = fractal.client_secret();
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", fractal.client_id()),
        ("client_secret", secret.expose()),
        ("redirect_uri", "https://app.example.com/cb"),
    ];
    let token_url = format!("{}/oauth/token", fractal.base_url());
    let first = no_redirect.post(&token_url).form(&exchange).send().await.expect("answer");
    assert_eq!(first.status(), StatusCode::OK);
    let body: serde_json::Value = first.json().await.expect("json");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "uid:read contact:read");
    let me: serde_json::Value = no_redirect
        .get(format!("{}/v2/users/me", fractal.base_url()))
        .bearer_auth(body["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(me["uid"], uid.as_str());
    assert!(me.get("emails").is_some() && me.get("wallets").is_none(), "Fractal filters by scope: {me}");
    let again = no_redirect.post(&token_url).form(&exchange).send().await.expect("answer");
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "a code is single use");

    let denied =
        no_redirect.get(&authorize).query(&[&params[..5], &[("uid", "nobody")]].concat()).send().await.expect("answer");
    assert!(denied.headers()["location"].to_str().expect("ascii").contains("error=access_denied"));
}

#[tokio::test]
async fn the_sandbox_refuses_wrong_credentials_like_fractal() {
    let app = spawn().await;
    let fractal = app.sandbox().fractal().clone();
    let http = reqwest::Client::new();
    let token_url = format!("{}/oauth/token", fractal.base_url());
    let wrong_secret = http
        .post(&token_url)
        .form(&[("grant_type", "client_credentials"), ("client_id", fractal.client_id()), ("client_secret", "wrong")])
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    let secret = fractal.client_secret();
    let bad_refresh = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "nope"),
            ("client_id", fractal.client_id()),
            ("client_secret", secret.expose()),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(bad_refresh.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = bad_refresh.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    let me = http.get(format!("{}/v2/users/me", fractal.base_url())).bearer_auth("nope").send().await.expect("answer");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert!(me.headers().contains_key("www-authenticate"));
    // A client-credentials token reads statistics, not users; and the query-string form of the token request works.
    let client: serde_json::Value = http
        .post(format!(
            "{token_url}?grant_type=client_credentials&client_id={}&client_secret={}&scope=client.stats:read",
            fractal.client_id(),
            secret.expose()
        ))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(client["token_type"], "Bearer");
    assert!(client.get("refresh_token").is_none());
    let bearer = client["access_token"].as_str().expect("token");
    let me = http.get(format!("{}/v2/users/me", fractal.base_url())).bearer_auth(bearer).send().await.expect("answer");
    assert_eq!(me.status(), StatusCode::FORBIDDEN);
    let stats = http
        .get(format!("{}/v2/stats/total-verifications", fractal.base_url()))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("answer");
    assert_eq!(stats.status(), StatusCode::OK);
}

/// Who saw what when rotated tokens were committed: whether the old refresh token was still valid at the sandbox,
/// and how many reads of the user it had served.
type Seen = Arc<std::sync::Mutex<Vec<(bool, u64)>>>;

/// A directory (the real one, on an in-memory database) whose refreshes report what the sandbox had seen when they
/// commit.
struct Watching {
    inner: Arc<SqlDirectory>,
    sandbox: FractalSandbox,
    old_refresh: Secret,
    seen: Seen,
}

struct WatchedRefresh {
    inner: Box<dyn LinkRefresh>,
    sandbox: FractalSandbox,
    old_refresh: Secret,
    seen: Seen,
}

#[async_trait::async_trait]
impl LinkRefresh for WatchedRefresh {
    fn link(&self) -> &Link {
        self.inner.link()
    }
    async fn commit(self: Box<Self>, tokens: LinkTokens) -> Result<(), DirectoryError> {
        let old_still_valid = self.sandbox.refresh_token_is_valid(self.old_refresh.expose());
        self.seen.lock().expect("lock").push((old_still_valid, self.sandbox.counts().get("users_me")));
        self.inner.commit(tokens).await
    }
}

// Every call but the refresh goes to the real directory (written out: async_trait does not see into macros).
#[async_trait::async_trait]
impl Directory for Watching {
    async fn entry(&self, user: &UserId) -> Result<UserEntry, DirectoryError> {
        self.inner.entry(user).await
    }
    async fn user_for_reference(&self, provider: Provider, reference: &str) -> Result<Option<UserId>, DirectoryError> {
        self.inner.user_for_reference(provider, reference).await
    }
    async fn register(&self, user: &UserId, refs: &References) -> Result<(), DirectoryError> {
        self.inner.register(user, refs).await
    }
    async fn add_reference(&self, user: &UserId, provider: Provider, reference: &str) -> Result<bool, DirectoryError> {
        self.inner.add_reference(user, provider, reference).await
    }
    async fn link(&self, user: &UserId, provider: Provider) -> Result<Option<Link>, DirectoryError> {
        self.inner.link(user, provider).await
    }
    async fn user_for_link(&self, provider: Provider, subject: &str) -> Result<Option<UserId>, DirectoryError> {
        self.inner.user_for_link(provider, subject).await
    }
    async fn store_link(&self, user: &UserId, provider: Provider, link: &Link) -> Result<Linked, DirectoryError> {
        self.inner.store_link(user, provider, link).await
    }
    async fn remove_link(&self, user: &UserId, provider: Provider) -> Result<bool, DirectoryError> {
        self.inner.remove_link(user, provider).await
    }
    async fn save_link_state(&self, state: &LinkState, open_per_user: usize) -> Result<(), DirectoryError> {
        self.inner.save_link_state(state, open_per_user).await
    }
    async fn purge_link_states(&self, expired_before: i64) -> Result<u64, DirectoryError> {
        self.inner.purge_link_states(expired_before).await
    }
    async fn consume_link_state(&self, nonce: &str) -> Result<Consumed, DirectoryError> {
        self.inner.consume_link_state(nonce).await
    }
    async fn begin_refresh(
        &self,
        user: &UserId,
        provider: Provider,
    ) -> Result<Option<Box<dyn LinkRefresh>>, DirectoryError> {
        let Some(inner) = self.inner.begin_refresh(user, provider).await? else { return Ok(None) };
        Ok(Some(Box::new(WatchedRefresh {
            inner,
            sandbox: self.sandbox.clone(),
            old_refresh: self.old_refresh.clone(),
            seen: self.seen.clone(),
        })))
    }
}

#[tokio::test]
async fn the_rotated_refresh_token_is_stored_before_the_new_access_token_is_used() {
    use kyc_gateway::providers::fractal::{FractalClient, Settings};
    let sandbox = FractalSandbox::start(&Default::default()).await.expect("sandbox");
    let uid = sandbox.population().users[10].uid.clone();
    let old_refresh = sandbox.link_user(&uid);
    let store = Store::connect(&StoreSettings::memory()).await.expect("store");
    store.migrate().await.expect("migrated");
    let cipher = Arc::new(TokenCipher::new(&crate::helpers::test_encryption().current, &[]));
    let inner = Arc::new(SqlDirectory::new(store, cipher));
    let old_refresh = Secret::from(old_refresh);
    let tokens = LinkTokens { access_token: None, access_renew_at: None, refresh_token: old_refresh.clone() };
    let link = Link { subject: uid.clone(), scopes: String::new(), tokens };
    inner.store_link(&crate::helpers::uid(&uid), Provider::Fractal, &link).await.expect("linked");
    let seen = Seen::default();
    let directory =
        Arc::new(Watching { inner, sandbox: sandbox.clone(), old_refresh: old_refresh.clone(), seen: seen.clone() });
    let settings = Settings {
        frontend_url: sandbox.base_url().into(),
        auth_url: sandbox.base_url().into(),
        resource_url: sandbox.base_url().into(),
        client_id: sandbox.client_id().into(),
        client_secret: sandbox.client_secret().into(),
        policy: Default::default(),
        webhook_secrets: Vec::new(),
        linking: kyc_gateway::providers::connector::LinkSettings {
            redirect_uris: Vec::new(),
            scopes: String::new(),
            state_ttl: Duration::from_secs(600),
            open_states: 5,
        },
    };
    let client = FractalClient::new(&settings, directory);
    let profile = client.profile(&crate::helpers::uid(&uid)).await.expect("read").expect("linked");
    assert!(!profile.cases.is_empty());
    assert_eq!(*seen.lock().expect("lock"), [(true, 0)], "stored while the old pair lived, before any read");
    assert!(!sandbox.refresh_token_is_valid(old_refresh.expose()), "and the read then retired the old pair");
}
