//! Linking Fractal end to end against the sandbox Fractal: start, approve at its authorize page, complete; and every
//! way a state can be wrong, each with its own code and nothing stored.

use kyc_gateway::sandbox::ident::population::SEED_USERS;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{on_both_engines, spawn, spawn_on, user_token, Gql, TestApp, TestDatabase, SEED};

/// The redirect URI sandbox mode allows by default.
const CALLBACK: &str = "http://localhost:3000/fractal/callback";
const LINK: &str = "fractal.link:write";

/// Answers Fractal's authorize page as the sandbox user `uid` would (approving): the `code` it redirects with.
pub async fn approve(authorize_url: &str, uid: &str) -> String {
    let location = decide(authorize_url, uid, "approve").await;
    let query = location.split_once('?').expect("a query").1;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("form encoded");
    params.into_iter().find(|(k, _)| k == "code").map(|(_, v)| v).unwrap_or_else(|| panic!("no code in {location}"))
}

/// Where the sandbox Fractal's authorize page sends the user after `decision`.
async fn decide(authorize_url: &str, uid: &str, decision: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let response = http
        .get(authorize_url)
        .query(&[("uid", uid), ("decision", decision)])
        .send()
        .await
        .expect("the authorize page answers");
    assert_eq!(response.status(), StatusCode::FOUND);
    response.headers()["location"].to_str().expect("ascii").to_owned()
}

async fn start(app: &TestApp, user: &str, redirect: &str) -> Gql {
    let q = format!(r#"mutation {{ startFractalLink(redirectUri: "{redirect}") {{ authorizeUrl state expiresAt }} }}"#);
    app.query(&user_token(user, LINK), &q).await
}

async fn complete(app: &TestApp, user: &str, state: &str, code: Option<&str>, error: Option<&str>) -> Gql {
    let q = "mutation($state: String!, $code: String, $error: String) { completeFractalLink(state: $state, code: $code, error: $error) { grantedScopes } }";
    app.query_vars(&user_token(user, LINK), q, json!({ "state": state, "code": code, "error": error })).await
}

/// A started authorization: (authorize URL, state).
async fn started(app: &TestApp, user: &str) -> (String, String) {
    let answer = start(app, user, CALLBACK).await.ok();
    let url = answer.data("startFractalLink.authorizeUrl").as_str().expect("url").to_owned();
    (url, answer.data("startFractalLink.state").as_str().expect("state").to_owned())
}

async fn linked_uid(app: &TestApp, user: &str) -> Option<String> {
    app.directory
        .link_subject(&crate::helpers::uid(user), kyc_gateway::domain::Provider::Fractal)
        .await
        .expect("directory")
}

on_both_engines!(a_user_links_fractal_and_then_sees_that_accounts_verifications);

async fn a_user_links_fractal_and_then_sees_that_accounts_verifications(db: TestDatabase) {
    links_and_sees(spawn_on(&db, |_| {}).await).await;
}

async fn links_and_sees(app: TestApp) {
    let joe = SEED_USERS[2];
    let population = app.sandbox().fractal().population();
    let (fractal_user, someone_else) = (population.users[12].clone(), population.users[15].uid.clone());
    assert_eq!(linked_uid(&app, joe).await, None, "ident's Joe Lubin has no Fractal link yet");

    // An account linked to another gateway user is not taken over.
    let (url, state) = started(&app, joe).await;
    let taken = complete(&app, joe, &state, Some(&approve(&url, &someone_else).await), None).await;
    assert_eq!(taken.codes(), ["FRACTAL_ACCOUNT_TAKEN"], "{:#}", taken.body);
    assert_eq!(linked_uid(&app, joe).await, None);
    assert_eq!(linked_uid(&app, &someone_else).await.as_deref(), Some(someone_else.as_str()));

    // The sandbox user of that account unlinks it; Joe links it.
    app.query(&user_token(&fractal_user.uid, LINK), "mutation { unlinkFractal }").await.ok();
    let (url, state) = started(&app, joe).await;
    assert!(url.starts_with(&format!("{}/authorize?", app.sandbox().fractal().base_url())), "{url}");
    assert!(url.contains("response_type=code") && url.contains("scope=uid%3Aread"), "{url}");
    let code = approve(&url, &fractal_user.uid).await;
    let done = complete(&app, joe, &state, Some(&code), None).await.ok();
    let granted = done.data("completeFractalLink.grantedScopes").as_array().expect("scopes").clone();
    assert!(granted.contains(&json!("verification.basic:read")), "{granted:?}");
    assert_eq!(linked_uid(&app, joe).await.as_deref(), Some(fractal_user.uid.as_str()));

    let levels: Vec<String> = fractal_user.cases.iter().map(|c| c.wire.level.clone()).collect();
    let reads: Vec<String> =
        fractal_user.cases.iter().flat_map(|c| c.items()).map(|i| format!("verification.{i}:read")).collect();
    let answer = app
        .query(&user_token(joe, &reads.join(" ")), "{ me { verificationCases(provider: FRACTAL) { level } } }")
        .await
        .ok();
    let mut seen: Vec<String> = answer
        .data("me.verificationCases")
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["level"].as_str().expect("level").to_owned())
        .collect();
    let mut expected = levels;
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "the linked account's cases");

    let unlinked = app.query(&user_token(joe, LINK), "mutation { unlinkFractal }").await.ok();
    assert_eq!(unlinked.data("unlinkFractal"), true);
    assert_eq!(linked_uid(&app, joe).await, None);
    let again = app.query(&user_token(joe, LINK), "mutation { unlinkFractal }").await.ok();
    assert_eq!(again.data("unlinkFractal"), false);
}

on_both_engines!(a_replayed_foreign_forged_or_refused_state_has_its_own_code_and_stores_nothing);

async fn a_replayed_foreign_forged_or_refused_state_has_its_own_code_and_stores_nothing(db: TestDatabase) {
    wrong_states(spawn_on(&db, |_| {}).await).await;
}

async fn wrong_states(app: TestApp) {
    let (joe, tim) = (SEED_USERS[2], SEED_USERS[0]);
    let uid = app.sandbox().fractal().population().users[13].uid.clone();
    app.query(&user_token(&uid, LINK), "mutation { unlinkFractal }").await.ok();

    // Foreign: Tim completes what Joe started. The state stays good for Joe.
    let (url, state) = started(&app, joe).await;
    let code = approve(&url, &uid).await;
    let foreign = complete(&app, tim, &state, Some(&code), None).await;
    assert_eq!(foreign.codes(), ["LINK_STATE_FOREIGN"], "{:#}", foreign.body);
    assert_eq!(linked_uid(&app, tim).await, None);

    // Replayed: Joe completes it twice.
    complete(&app, joe, &state, Some(&code), None).await.ok();
    app.query(&user_token(joe, LINK), "mutation { unlinkFractal }").await.ok();
    let replayed = complete(&app, joe, &state, Some(&code), None).await;
    assert_eq!(replayed.codes(), ["LINK_STATE_REPLAYED"], "{:#}", replayed.body);
    assert_eq!(linked_uid(&app, joe).await, None, "the replay stored nothing");

    // Forged: not a state of this gateway.
    let forged = complete(&app, joe, "v1.eyJuIjoieCJ9.c2lnbmF0dXJl", Some(&code), None).await;
    assert_eq!(forged.codes(), ["LINK_STATE_INVALID"], "{:#}", forged.body);

    // Refused at Fractal.
    let (url, state) = started(&app, joe).await;
    let location = decide(&url, &uid, "deny").await;
    assert!(location.contains("error=access_denied"), "{location}");
    let denied = complete(&app, joe, &state, None, Some("access_denied")).await;
    assert_eq!(denied.codes(), ["FRACTAL_ACCESS_DENIED"], "{:#}", denied.body);
    assert_eq!(linked_uid(&app, joe).await, None);
}

on_both_engines!(a_redirect_uri_off_the_allow_list_is_refused_before_anything_is_stored);

async fn a_redirect_uri_off_the_allow_list_is_refused_before_anything_is_stored(db: TestDatabase) {
    let app = spawn_on(&db, |_| {}).await;
    let answer = start(&app, SEED_USERS[2], "https://attacker.example/steal").await;
    assert_eq!(answer.codes(), ["REDIRECT_URI_NOT_ALLOWED"], "{}: {:#}", db.engine, answer.body);
    assert!(answer.data("startFractalLink").is_null());
    let states: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM link_states").fetch_one(app.store.pool()).await.expect("count");
    assert_eq!(states, 0, "no state remembered");
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    // A state lives for its TTL: with none, it is dead the moment it is made.
    let app = crate::helpers::spawn_with(|c| c.vars.set("KYC_GATEWAY_FRACTAL_LINK_STATE_TTL_SECS", "0")).await;
    let joe = SEED_USERS[2];
    let (url, state) = started(&app, joe).await;
    let code = approve(&url, &app.sandbox().fractal().population().users[14].uid).await;
    let expired = complete(&app, joe, &state, Some(&code), None).await;
    assert_eq!(expired.codes(), ["LINK_STATE_EXPIRED"], "{:#}", expired.body);
    assert_eq!(linked_uid(&app, joe).await, None);
}

#[tokio::test]
async fn linking_needs_a_user_token_with_the_link_scope() {
    let app = spawn().await;
    let q = format!(r#"mutation {{ startFractalLink(redirectUri: "{CALLBACK}") {{ state }} }}"#);
    let without = app.query(&user_token(SEED, "uid:read"), &q).await;
    assert_eq!(without.codes(), ["UNAUTHORIZED_FIELD_OR_TYPE"]);
    let client = app.query(&crate::helpers::client_token(LINK), &q).await;
    assert_eq!(client.codes(), ["NOT_A_USER_TOKEN"]);
}

#[tokio::test]
async fn the_sandbox_authorize_page_asks_which_user_signs_in_and_posts_the_answer() {
    let app = spawn().await;
    let (url, state) = started(&app, SEED_USERS[2]).await;
    let page = reqwest::get(&url).await.expect("the page").text().await.expect("html");
    assert!(page.contains("<form method=\"post\" action=\"/authorize\">") && page.contains("Approve"), "{page}");
    assert!(page.contains(&format!("value=\"{state}\"")), "the state travels in the form");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let query = url.split_once('?').expect("query").1;
    let mut form: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("form");
    form.push(("uid".into(), SEED.into()));
    form.push(("decision".into(), "approve".into()));
    let posted = http
        .post(format!("{}/authorize", app.sandbox().fractal().base_url()))
        .form(&form)
        .send()
        .await
        .expect("posted");
    assert_eq!(posted.status(), StatusCode::FOUND);
    assert!(posted.headers()["location"].to_str().expect("ascii").starts_with(&format!("{CALLBACK}?code=")));
}
