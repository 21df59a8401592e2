//! The scope table of docs/api.md, row by row, allowed and denied.

use serde_json::Value;

use crate::helpers::{assert_denied, client_token, spawn, user_token, SEED};

fn levels(cases: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        cases.as_array().expect("a list").iter().map(|c| c["level"].as_str().expect("level").to_owned()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn uid_read_grants_the_user_id() {
    let app = spawn().await;
    let answer = app.query(&user_token(SEED, "uid:read"), "{ me { id } }").await.ok();
    assert_eq!(answer.data("me.id"), SEED);
}

#[tokio::test]
async fn without_uid_read_the_id_is_null_with_a_denial_and_the_user_survives() {
    let app = spawn().await;
    let answer = app.query(&user_token(SEED, "contact:read"), "{ me { id phones { number } } }").await;
    assert!(answer.data("me.id").is_null());
    assert_eq!(answer.data("me.phones.0.number"), "+44000000000", "a denial never wipes the parent");
    assert_denied(answer.error_at("me.id"), "uid:read");
}

#[tokio::test]
async fn a_user_whose_every_asked_field_is_denied_is_still_an_object() {
    let app = spawn().await;
    let answer = app.query(&user_token(SEED, ""), "{ me { id emails { address } } }").await;
    assert!(answer.data("me").is_object(), "{:#}", answer.body);
    assert_eq!(answer.codes(), ["UNAUTHORIZED_FIELD_OR_TYPE", "UNAUTHORIZED_FIELD_OR_TYPE"]);
}

#[tokio::test]
async fn contact_read_grants_emails_and_phones() {
    let app = spawn().await;
    let answer = app
        .query(&user_token(SEED, "contact:read"), "{ me { emails { address sourceType } phones { number } } }")
        .await
        .ok();
    assert_eq!(answer.data("me.emails.0.address"), "david.muller@example.com");
    assert_eq!(answer.data("me.emails.0.sourceType"), "registration");
    assert_eq!(answer.data("me.phones.0.number"), "+44000000000");
}

#[tokio::test]
async fn without_contact_read_emails_and_phones_are_denied() {
    let app = spawn().await;
    let answer = app.query(&user_token(SEED, "uid:read"), "{ me { emails { address } phones { number } } }").await;
    assert!(answer.data("me.emails").is_null() && answer.data("me.phones").is_null());
    assert_denied(answer.error_at("me.emails"), "contact:read");
    assert_denied(answer.error_at("me.phones"), "contact:read");
}

#[tokio::test]
async fn a_case_is_visible_only_with_the_read_scope_of_every_item_of_its_level() {
    let app = spawn().await;
    let q = "{ me { verificationCases { level levelItems provider state } } }";
    let table: [(&str, &[&str]); 6] = [
        ("", &[]),
        ("verification.plus:read", &["plus"]),
        ("verification.selfie:read", &["selfie"]),
        ("verification.plus:read verification.selfie:read", &["plus", "plus+selfie", "selfie"]),
        ("verification.basic:read verification.liveness:read", &["basic+liveness"]),
        (
            "verification.basic:read verification.liveness:read verification.wallet-eth:read",
            &["basic+liveness", "basic+liveness+wallet-eth"],
        ),
    ];
    for (scopes, expected) in table {
        let answer = app.query(&user_token(SEED, scopes), q).await.ok();
        assert_eq!(levels(answer.data("me.verificationCases")), expected, "scopes {scopes:?}");
    }
}

#[tokio::test]
async fn a_multi_item_case_lists_its_items_and_maps_its_state() {
    let app = spawn().await;
    let token = user_token(SEED, "verification.plus:read verification.selfie:read");
    let answer = app.query(&token, r#"{ me { verificationCases(level: "plus+selfie") { level levelItems state providerStatus credential } } }"#).await.ok();
    let cases = answer.data("me.verificationCases").as_array().expect("list").clone();
    assert_eq!(cases.len(), 1, "only the case holding both items: {cases:?}");
    assert_eq!(cases[0]["levelItems"], serde_json::json!(["plus", "selfie"]));
    assert_eq!(cases[0]["state"], "PENDING");
    assert_eq!(cases[0]["credential"], "PENDING");
}

#[tokio::test]
async fn verification_cases_filter_by_provider_and_level() {
    let app = spawn().await;
    let token = user_token(SEED, "verification.plus:read verification.selfie:read");
    let answer = app.query(&token, r#"{ me { all: verificationCases(provider: FRACTAL) { level } plus: verificationCases(level: "plus") { level } } }"#).await.ok();
    assert_eq!(levels(answer.data("me.all")), ["plus", "plus+selfie", "selfie"]);
    assert_eq!(levels(answer.data("me.plus")), ["plus", "plus+selfie"]);
}

#[tokio::test]
async fn wallet_read_grants_every_wallet_and_a_currency_scope_only_its_own() {
    let app = spawn().await;
    let q = "{ me { wallets { address currency verified } } }";
    let all = app.query(&user_token(SEED, "verification.wallet:read"), q).await.ok();
    assert_eq!(all.data("me.wallets.0.address"), "0x2003");
    assert_eq!(all.data("me.wallets.0.currency"), "ETH");
    let eth = app.query(&user_token(SEED, "verification.wallet-eth:read"), q).await.ok();
    assert_eq!(eth.data("me.wallets").as_array().expect("list").len(), 1);
    let btc = app.query(&user_token(SEED, "verification.wallet-btc:read"), q).await.ok();
    assert_eq!(btc.data("me.wallets"), &serde_json::json!([]), "the seed person has no BTC wallet");
    let none = app.query(&user_token(SEED, "uid:read"), q).await;
    assert!(none.data("me.wallets").is_null());
    assert_denied(none.error_at("me.wallets"), "verification.wallet:read");
}

#[tokio::test]
async fn a_currency_scope_filters_a_user_with_wallets_of_several_currencies() {
    let app = spawn().await;
    let user =
        app.sandbox().fractal().population().users.iter().find(|u| u.wallets.len() >= 2).expect("such a user").clone();
    let currency = user.wallets[0].currency.clone();
    let token = client_token(&format!("client.users:read verification.wallet-{currency}:read"));
    let answer =
        app.query(&token, &format!(r#"{{ user(id: "{}") {{ wallets {{ currency }} }} }}"#, user.uid)).await.ok();
    let got = answer.data("user.wallets").as_array().expect("list").clone();
    let expected = user.wallets.iter().filter(|w| w.currency == currency).count();
    assert_eq!(got.len(), expected);
    assert!(got.iter().all(|w| w["currency"] == currency.to_uppercase()));
}

#[tokio::test]
async fn a_user_token_reads_itself_but_not_another_user_known_or_not() {
    let app = spawn().await;
    let other = app.sandbox().fractal().population().users[5].uid.clone();
    let token = user_token(SEED, "uid:read contact:read verification.plus:read verification.plus.details:read");
    let own = app.query(&token, &format!(r#"{{ user(id: "{SEED}") {{ id }} }}"#)).await.ok();
    assert_eq!(own.data("user.id"), SEED);
    let known = app.query(&token, &format!(r#"{{ user(id: "{other}") {{ id }} }}"#)).await;
    let unknown = app.query(&token, r#"{ user(id: "no-such-user") { id } }"#).await;
    for answer in [&known, &unknown] {
        assert!(answer.data("user").is_null());
        assert_denied(answer.error_at("user"), "client.users:read");
    }
    assert_eq!(known.body, unknown.body, "a user token cannot tell whether another id exists");
}

#[tokio::test]
async fn a_client_token_with_users_read_reads_any_user_and_gets_null_for_an_unknown_one() {
    let app = spawn().await;
    let other = app.sandbox().fractal().population().users[5].uid.clone();
    let token = client_token("client.users:read uid:read");
    let answer = app
        .query(&token, &format!(r#"{{ user(id: "{other}") {{ id }} unknown: user(id: "no-such-user") {{ id }} }}"#))
        .await
        .ok();
    assert_eq!(answer.data("user.id"), other.as_str());
    assert!(answer.data("unknown").is_null());
}

#[tokio::test]
async fn a_client_token_without_users_read_reads_nobody() {
    let app = spawn().await;
    let answer = app.query(&client_token("uid:read"), &format!(r#"{{ user(id: "{SEED}") {{ id }} }}"#)).await;
    assert!(answer.data("user").is_null());
    assert_denied(answer.error_at("user"), "client.users:read");
}

#[tokio::test]
async fn me_with_a_client_token_is_null_with_its_own_code() {
    let app = spawn().await;
    let answer = app.query(&client_token("client.users:read uid:read"), "{ me { id } }").await;
    assert!(answer.data("me").is_null());
    assert_eq!(answer.codes(), ["NOT_A_USER_TOKEN"]);
}

#[tokio::test]
async fn users_answers_in_order_with_null_for_unreadable_ids_and_fetches_a_repeated_id_once() {
    let app = spawn().await;
    let pop = app.sandbox().fractal().population();
    let (a, b) = (pop.users[1].uid.clone(), pop.users[2].uid.clone());
    let before = app.sandbox().fractal().counts().get("users_me");
    let q = format!(r#"{{ users(ids: ["{a}", "unknown", "{b}", "{a}"]) {{ id emails {{ address }} }} }}"#);
    let answer = app.query(&client_token("client.users:read uid:read contact:read"), &q).await.ok();
    assert_eq!(answer.data("users.0.id"), a.as_str());
    assert!(answer.data("users.1").is_null());
    assert_eq!(answer.data("users.2.id"), b.as_str());
    assert_eq!(answer.data("users.3.id"), a.as_str());
    assert_eq!(app.sandbox().fractal().counts().get("users_me") - before, 2, "two distinct users, two upstream reads");

    let mine =
        app.query(&user_token(SEED, "uid:read"), &format!(r#"{{ users(ids: ["{SEED}", "{a}"]) {{ id }} }}"#)).await;
    assert_eq!(mine.data("users.0.id"), SEED);
    assert!(mine.data("users.1").is_null());
    assert_denied(mine.error_at("users.1"), "client.users:read");
}

#[tokio::test]
async fn users_refuses_more_ids_than_the_bound() {
    let app = crate::helpers::spawn_with(|c| c.max_user_ids = 3).await;
    let answer = app.query(&client_token("client.users:read"), r#"{ users(ids: ["a", "b", "c", "d"]) { id } }"#).await;
    assert_eq!(answer.codes(), ["BAD_USER_INPUT"]);
    assert!(answer.errors()[0]["message"].as_str().expect("message").contains("at most 3"));
}

#[tokio::test]
async fn kyc_state_needs_the_read_scope_of_every_item_of_the_level() {
    let app = spawn().await;
    let q = r#"{ me { plus: kycState(level: "plus") basicLiveness: kycState(level: "basic+liveness") plusSelfie: kycState(level: "plus+selfie") } }"#;
    let token = user_token(SEED, "verification.plus:read verification.selfie:read");
    let answer = app.query(&token, q).await;
    assert_eq!(answer.data("me.plus"), "APPROVED");
    assert_eq!(answer.data("me.plusSelfie"), "APPROVED", "plus and selfie are both approved");
    assert!(answer.data("me.basicLiveness").is_null());
    assert_denied(answer.error_at("me.basicLiveness"), "verification.liveness:read");
}

#[tokio::test]
async fn kyc_state_refuses_an_empty_level() {
    let app = spawn().await;
    let answer = app.query(&user_token(SEED, "verification.plus:read"), r#"{ me { kycState(level: " + ") } }"#).await;
    assert_eq!(answer.codes(), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn a_repeated_denied_id_is_denied_at_each_of_its_positions() {
    let app = spawn().await;
    let other = app.sandbox().fractal().population().users[9].uid.clone();
    let q = format!(r#"{{ users(ids: ["{other}", "{SEED}", "{other}"]) {{ id }} }}"#);
    let answer = app.query(&user_token(SEED, "uid:read"), &q).await;
    assert_denied(answer.error_at("users.0"), "client.users:read");
    assert_denied(answer.error_at("users.2"), "client.users:read");
    assert_eq!(answer.data("users.1.id"), SEED);
}

#[tokio::test]
async fn aliases_ask_the_same_rules_field_by_field() {
    let app = spawn().await;
    let q = r#"{ a: me { id } b: me { mail: emails { address } } c: me { plus: verificationCases(level: "plus") { level } } }"#;
    let answer = app.query(&user_token(SEED, "uid:read verification.plus:read"), q).await;
    assert_eq!(answer.data("a.id"), SEED);
    assert!(answer.data("b.mail").is_null());
    assert_denied(answer.error_at("b.mail"), "contact:read");
    assert_eq!(answer.data("c.plus.0.level"), "plus");
}

#[tokio::test]
async fn kyc_state_reports_open_and_refused_states_from_visible_cases_only() {
    let app = spawn().await;
    let pop = app.sandbox().fractal().population();
    // A single-item case whose item no other case of its user covers: the level's state is that case's.
    let find = |status: &str| {
        pop.users
            .iter()
            .flat_map(|u| u.cases.iter().map(move |c| (u, c)))
            .find(|(u, c)| {
                let items = c.items();
                items.len() == 1
                    && c.stats_status() == status
                    && u.cases.iter().filter(|o| o.items().contains(&items[0])).count() == 1
            })
            .map(|(u, c)| (u.uid.clone(), c.wire.level.clone()))
            .unwrap_or_else(|| panic!("a user with a lone {status} single-item case"))
    };
    for (status, state) in [("pending", "PENDING"), ("contacted", "ACTION_REQUIRED"), ("rejected", "REJECTED")] {
        let (uid, level) = find(status);
        let token = client_token(&format!("client.users:read verification.{level}:read"));
        let q = format!(r#"{{ user(id: "{uid}") {{ kycState(level: "{level}") }} }}"#);
        assert_eq!(app.query(&token, &q).await.ok().data("user.kycState"), state, "{status} {level}");
    }
    // The seed person's `plus+selfie` case is pending, but a token reading only `plus` sees the approved `plus` case.
    let token = user_token(SEED, "verification.plus:read");
    let answer = app.query(&token, r#"{ me { kycState(level: "plus") } }"#).await.ok();
    assert_eq!(answer.data("me.kycState"), "APPROVED");
    let none = app.query(&user_token(SEED, "verification.sow:read"), r#"{ me { kycState(level: "sow") } }"#).await.ok();
    assert_eq!(none.data("me.kycState"), "NOT_STARTED");
}
