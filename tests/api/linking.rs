//! Linking Fractal end to end against the sandbox Fractal: start, approve at its authorize page, complete; and every
//! way a state can be wrong, each with its own code and nothing stored.

use kyc_gateway::directory::{Directory as _, Link, LinkState, LinkTokens};
use kyc_gateway::domain::Provider;
use kyc_gateway::sandbox::ident::population::SEED_USERS;
use kyc_gateway::secret::Secret;
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

/// Every Fractal level's case and details scopes: what a token needs to read someone's Fractal details as `me`.
const READ_DETAILS: &str = "uid:read verification.basic:read verification.basic.details:read verification.plus:read \
                            verification.plus.details:read verification.liveness:read verification.liveness.details:read";

#[tokio::test]
async fn a_code_presented_with_another_flows_verifier_is_refused_by_the_binary_and_nothing_is_linked() {
    let gateway = crate::helpers::Process::start(4096, &[]);
    let http = reqwest::Client::new();
    let gql = |token: String, query: &'static str, variables: serde_json::Value| {
        let body = json!({ "query": query, "variables": variables });
        let request = http.post(gateway.url("/graphql")).bearer_auth(token).json(&body);
        async move { request.send().await.expect("answer").json::<serde_json::Value>().await.expect("JSON") }
    };
    const START: &str = "mutation($r: String!) { startFractalLink(redirectUri: $r) { authorizeUrl state } }";
    const COMPLETE: &str =
        "mutation($s: String!, $c: String) { completeFractalLink(state: $s, code: $c) { grantedScopes } }";
    const ME: &str = "{ me { verificationCases(provider: FRACTAL) { level details { fullName dateOfBirth } } } }";
    let (victim, attacker) = (SEED, "attacker-of-the-seed-person");

    // The victim re-links their Fractal account: the code their browser carries back leaks.
    let unlinked = gql(user_token(victim, LINK), "mutation { unlinkFractal }", json!({})).await;
    assert_eq!(unlinked["data"]["unlinkFractal"], true, "{unlinked:#}");
    let started = gql(user_token(victim, LINK), START, json!({ "r": CALLBACK })).await;
    let url = started["data"]["startFractalLink"]["authorizeUrl"].as_str().expect("url").to_owned();
    assert!(url.contains("code_challenge_method=S256") && url.contains("code_challenge="), "{url}");
    let leaked = approve(&url, victim).await;

    // The attacker completes a link of their own with it.
    let own = gql(user_token(attacker, LINK), START, json!({ "r": CALLBACK })).await;
    let state = own["data"]["startFractalLink"]["state"].as_str().expect("state").to_owned();
    let attack = gql(user_token(attacker, LINK), COMPLETE, json!({ "s": state, "c": leaked })).await;
    assert!(attack["data"]["completeFractalLink"].is_null(), "{attack:#}");
    assert_eq!(attack["errors"][0]["extensions"]["code"], "PROVIDER_UNAUTHORIZED", "Fractal refused: {attack:#}");
    let seen = gql(user_token(attacker, READ_DETAILS), ME, json!({})).await;
    assert_eq!(seen["data"]["me"]["verificationCases"], json!([]), "the attacker sees nothing: {seen:#}");
    assert!(!seen.to_string().contains("David Muller"), "{seen:#}");
}

#[tokio::test]
async fn four_hundred_starts_in_one_request_leave_at_most_five_open_states_for_the_user() {
    let app = spawn().await;
    let joe = SEED_USERS[2];
    let aliases: String =
        (0..20).map(|i| format!(r#"a{i}: startFractalLink(redirectUri: "{CALLBACK}") {{ state }} "#)).collect();
    let batch: Vec<serde_json::Value> =
        (0..20).map(|_| json!({ "query": format!("mutation {{ {aliases} }}") })).collect();
    let answers: serde_json::Value = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(user_token(joe, LINK))
        .json(&batch)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let states = answers.as_array().expect("a batch answer");
    assert_eq!(states.len(), 20, "{answers:#}");
    assert!(states.iter().all(|a| a["errors"].is_null()), "{:#}", states[0]);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM link_states WHERE user_id = $1")
        .bind(joe)
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    assert!(rows <= 5, "{rows} states stored for one user");

    // The newest state still completes: the oldest were the ones replaced.
    let (url, state) = started(&app, joe).await;
    let uid = app.sandbox().fractal().population().users[14].uid.clone();
    app.query(&user_token(&uid, LINK), "mutation { unlinkFractal }").await.ok();
    complete(&app, joe, &state, Some(&approve(&url, &uid).await), None).await.ok();
    assert_eq!(linked_uid(&app, joe).await.as_deref(), Some(uid.as_str()));
}

fn tokens(refresh: &str) -> LinkTokens {
    LinkTokens { access_token: None, access_renew_at: None, refresh_token: Secret::new(refresh) }
}

fn link_to(subject: &str, refresh: &str) -> Link {
    Link { subject: subject.into(), scopes: String::new(), tokens: tokens(refresh) }
}

on_both_engines!(a_re_link_during_a_token_refresh_leaves_the_link_on_the_new_account_with_its_own_tokens);

async fn a_re_link_during_a_token_refresh_leaves_the_link_on_the_new_account_with_its_own_tokens(db: TestDatabase) {
    let app = spawn_on(&db, |_| {}).await;
    let user = crate::helpers::uid("a-user-who-links-again");
    app.sql.store_link(&user, Provider::Fractal, &link_to("account-one", "one")).await.expect("linked");
    let held = app.sql.begin_refresh(&user, Provider::Fractal).await.expect("directory").expect("a link");

    // The user links another account while the refresh waits for Fractal (PostgreSQL's row lock holds it back).
    let (sql, relinked) = (app.sql.clone(), user.clone());
    let mut relink =
        tokio::spawn(async move { sql.store_link(&relinked, Provider::Fractal, &link_to("account-two", "two")).await });
    let _ = tokio::time::timeout(std::time::Duration::from_millis(300), &mut relink).await;
    let _ = held.commit(tokens("one, rotated")).await;
    if !relink.is_finished() {
        relink.await.expect("the task").expect("linked");
    }

    let link = app.sql.link(&user, Provider::Fractal).await.expect("directory").expect("a link");
    assert_eq!(link.subject, "account-two", "{}", db.engine);
    assert!(link.tokens.refresh_token == Secret::new("two"), "{}: account two holds account one's tokens", db.engine);
}

on_both_engines!(unlinking_one_user_keeps_every_other_users_reverse_lookups_cached);

async fn unlinking_one_user_keeps_every_other_users_reverse_lookups_cached(db: TestDatabase) {
    let app = spawn_on(&db, |_| {}).await;
    let (a, b) = (crate::helpers::uid("user-a-unlinks"), crate::helpers::uid("user-b-stays"));
    app.directory.store_link(&a, Provider::Fractal, &link_to("account-of-a", "a")).await.expect("linked");
    app.directory.store_link(&b, Provider::Fractal, &link_to("account-of-b", "b")).await.expect("linked");
    let lookup = |subject: &'static str| app.directory.user_for_link(Provider::Fractal, subject);
    assert_eq!(lookup("account-of-a").await.expect("directory"), Some(a.clone()));
    assert_eq!(lookup("account-of-b").await.expect("directory"), Some(b.clone()));
    // B's row goes behind the cache's back: only a cleared lookup would notice.
    app.sql.remove_link(&b, Provider::Fractal).await.expect("removed");

    let unlinked = app.query(&user_token(&a, LINK), "mutation { unlinkFractal }").await.ok();
    assert_eq!(unlinked.data("unlinkFractal"), true);
    assert_eq!(lookup("account-of-a").await.expect("directory"), None, "A's own lookup is forgotten");
    assert_eq!(lookup("account-of-b").await.expect("directory"), Some(b), "B's lookup was cleared by A's unlink");
}

on_both_engines!(the_background_purge_forgets_states_a_day_past_their_expiry_and_keeps_the_rest);

async fn the_background_purge_forgets_states_a_day_past_their_expiry_and_keeps_the_rest(db: TestDatabase) {
    let app = spawn_on(&db, |_| {}).await;
    let (now, day) = (kyc_gateway::clock::unix_millis(), 24 * 3600 * 1000);
    let state = |nonce: &str, expires_at: i64| LinkState {
        nonce: nonce.into(),
        user_id: crate::helpers::uid("a-user-with-old-states"),
        provider: Provider::Fractal,
        redirect_uri: CALLBACK.into(),
        expires_at,
        code_verifier: None,
    };
    let nonces = || async {
        let mut nonces: Vec<String> = sqlx::query_scalar("SELECT nonce FROM link_states WHERE user_id = $1")
            .bind("a-user-with-old-states")
            .fetch_all(app.store.pool())
            .await
            .expect("states");
        nonces.sort();
        nonces
    };
    for (nonce, expires_at) in [("long-gone", now - 2 * day), ("just-expired", now - 60_000), ("open", now + 600_000)] {
        app.sql.save_link_state(&state(nonce, expires_at), 5).await.expect("saved");
    }
    kyc_gateway::directory::linking::purge(app.directory.as_ref(), now).await.expect("purged");
    assert_eq!(nonces().await, ["just-expired", "open"], "{}: a replay of a recent state is still told", db.engine);

    // The task the app starts runs that purge at once, then every hour.
    app.sql.save_link_state(&state("gone-again", now - 2 * day), 5).await.expect("saved");
    let task = kyc_gateway::directory::linking::spawn_purge(app.directory.clone());
    crate::helpers::eventually("the task purged the old state", || async {
        nonces().await == ["just-expired", "open"]
    })
    .await;
    task.abort();
}
