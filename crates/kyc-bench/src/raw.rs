//! The `raw` reference: the same data read straight from the sandboxes' REST APIs, each logical query's calls in
//! parallel over keep-alive connections, with the credentials each provider wants.

use futures_util::future::{join_all, try_join_all};
use kyc_gateway::providers::sumsub::signature;
use kyc_gateway::providers::veriff::signature as veriff_signature;
use kyc_gateway::sandbox::Sandbox;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::HashMap;

pub struct Raw {
    http: reqwest::Client,
    sandbox: Sandbox,
    fractal: HashMap<String, String>,
    stats_token: String,
    sila_token: String,
}

fn now() -> i64 {
    kyc_gateway::clock::unix_seconds()
}

/// Fine answers: success, and the "nothing there" statuses (no Sumsub applicant, no Sila handle).
fn check(response: reqwest::Response) -> Result<(), String> {
    match response.status().as_u16() {
        200..=299 | 403 | 404 => Ok(()),
        other => Err(format!("raw call answered {other}")),
    }
}

impl Raw {
    /// Obtains the tokens every provider wants, once: users' Fractal access tokens, the statistics token, Sila's.
    pub async fn setup(sandbox: &Sandbox, users: &[String]) -> anyhow::Result<Raw> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(512).build()?;
        let f = &sandbox.fractal();
        let token_url = format!("{}/oauth/token", f.base_url());
        let secret = f.client_secret();
        let mut fractal = HashMap::new();
        for user in users {
            let refresh = f.link_user(user);
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose_secret()),
                ("client_id", f.client_id()),
                ("client_secret", secret.expose_secret()),
            ];
            let answer: Value = http.post(&token_url).form(&form).send().await?.json().await?;
            fractal.insert(user.clone(), answer["access_token"].as_str().unwrap_or_default().to_owned());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", f.client_id()),
            ("client_secret", secret.expose_secret()),
        ];
        let stats: Value = http.post(&token_url).form(&form).send().await?.json().await?;
        let s = &sandbox.sila();
        let header = json!({ "header": { "created": now(), "app_handle": s.app_handle() } });
        let sila: Value = http
            .post(format!("{}/0.2/auth_token", s.base_url()))
            .basic_auth(s.client_id(), Some(s.client_secret().expose_secret()))
            .json(&header)
            .send()
            .await?
            .json()
            .await?;
        Ok(Raw {
            http,
            sandbox: sandbox.clone(),
            fractal,
            stats_token: stats["access_token"].as_str().unwrap_or_default().to_owned(),
            sila_token: sila["access_token"]["token"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// `user`'s Fractal access token: what the peers of `kyc-bench --peers` pass on to Fractal for `me`.
    pub fn fractal_token(&self, user: &str) -> Option<&str> {
        self.fractal.get(user).map(String::as_str)
    }

    async fn fractal_me(&self, user: &str) -> Result<(), String> {
        let token = self.fractal.get(user).ok_or("no Fractal token")?;
        let url = format!("{}/v2/users/me", self.sandbox.fractal().base_url());
        check(self.http.get(url).bearer_auth(token).send().await.map_err(|e| e.to_string())?)
    }

    async fn sumsub(&self, user: &str) -> Result<(), String> {
        let s = &self.sandbox.sumsub();
        let path = format!("/resources/applicants/-;externalUserId={user}/one");
        let ts = now().to_string();
        let sig = signature(s.secret_key().expose_secret().as_bytes(), &ts, "GET", &path, b"");
        let request = self
            .http
            .get(format!("{}{path}", s.base_url()))
            .header("X-App-Token", s.app_token().expose_secret())
            .header("X-App-Access-Ts", ts)
            .header("X-App-Access-Sig", sig);
        check(request.send().await.map_err(|e| e.to_string())?)
    }

    async fn sila(&self, user: &str) -> Result<(), String> {
        let s = &self.sandbox.sila();
        let body = json!({ "header": { "created": now(), "app_handle": s.app_handle(), "user_handle": user } });
        let request =
            self.http.post(format!("{}/0.2/get_verifications", s.base_url())).bearer_auth(&self.sila_token).json(&body);
        check(request.send().await.map_err(|e| e.to_string())?)
    }

    async fn ident(&self, user: &str) -> Result<(), String> {
        let i = &self.sandbox.ident();
        let url = format!("{}/users/{user}/kyc_applications", i.base_url());
        check(
            self.http
                .get(url)
                .bearer_auth(i.application_token().expose_secret())
                .send()
                .await
                .map_err(|e| e.to_string())?,
        )
    }

    /// The decision of each of the user's Veriff sessions, signed over the session id.
    async fn veriff(&self, user: &str) -> Result<(), String> {
        let v = &self.sandbox.veriff();
        let answers = try_join_all(v.sessions_of(user).into_iter().map(|id| async move {
            let sig = veriff_signature(v.shared_secret().expose_secret().as_bytes(), id.as_bytes());
            let request = self
                .http
                .get(format!("{}/v1/sessions/{id}/decision", v.base_url()))
                .header("X-AUTH-CLIENT", v.api_key().expose_secret())
                .header("X-HMAC-SIGNATURE", sig);
            check(request.send().await.map_err(|e| e.to_string())?)
        }));
        answers.await.map(|_| ())
    }

    async fn stats(&self) -> Result<(), String> {
        let url = format!("{}/v2/stats/user-verifications", self.sandbox.fractal().base_url());
        check(self.http.get(url).bearer_auth(&self.stats_token).send().await.map_err(|e| e.to_string())?)
    }

    /// One user's profile from every provider (`me-*`).
    pub async fn me(&self, user: &str) -> Result<(), String> {
        let (a, b, c, d, e) = tokio::join!(
            self.fractal_me(user),
            self.sumsub(user),
            self.sila(user),
            self.ident(user),
            self.veriff(user)
        );
        a.and(b).and(c).and(d).and(e)
    }

    /// Many users' states (`mesh-100`): Fractal's statistics once, Sumsub, Sila and Veriff per user.
    pub async fn mesh(&self, users: &[String]) -> Result<(), String> {
        let per_user = try_join_all(users.iter().map(|u| async move {
            let (a, b, c) = tokio::join!(self.sumsub(u), self.sila(u), self.veriff(u));
            a.and(b).and(c)
        }));
        let (stats, users) = tokio::join!(self.stats(), per_user);
        stats.and(users.map(|_| ()))
    }

    /// Many users' cases with details (`n-plus-one`): Fractal, Sumsub and Sila per user.
    pub async fn cases(&self, users: &[String]) -> Result<(), String> {
        let answers = join_all(users.iter().map(|u| async move {
            let (a, b, c) = tokio::join!(self.fractal_me(u), self.sumsub(u), self.sila(u));
            a.and(b).and(c)
        }))
        .await;
        answers.into_iter().collect()
    }
}
