//! GraphiQL is self-hosted: the page loads only the gateway's own embedded assets, under a strict
//! Content-Security-Policy, and every answer of the gateway carries the security headers (src/server/headers.rs).
//! tests/browser/graphiql.mjs runs the page in a real browser with the network to anything else blocked.

use std::collections::BTreeMap;

use reqwest::StatusCode;

use crate::helpers::{spawn, user_token, SEED};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const VENDOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/server/assets/vendor");

/// The vendored files, by the name the page loads them under.
const VENDORED: [(&str, &str, &str); 4] = [
    ("react-18.3.1.production.min.js", "react.production.min.js", "text/javascript; charset=utf-8"),
    ("react-dom-18.3.1.production.min.js", "react-dom.production.min.js", "text/javascript; charset=utf-8"),
    ("graphiql-4.1.2.min.js", "graphiql.min.js", "text/javascript; charset=utf-8"),
    ("graphiql-4.1.2.min.css", "graphiql.min.css", "text/css; charset=utf-8"),
];

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The values of every `attribute="..."` in `html`.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest[..rest.find('"').expect("a closing quote")].to_owned()
        })
        .collect()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().expect("ascii")
}

async fn page(app: &crate::helpers::TestApp) -> String {
    app.http.get(app.url("/graphiql")).send().await.expect("answer").text().await.expect("body")
}

/// The hashes `scripts/vendor-graphiql.sh` pins, by file name (its `sha256sum --check` lines).
fn pinned_hashes() -> BTreeMap<String, String> {
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/vendor-graphiql.sh"))
        .expect("scripts/vendor-graphiql.sh");
    script
        .lines()
        .map(|line| line.trim_start_matches("PINNED='").trim_end_matches('\''))
        .filter_map(|line| line.split_once("  "))
        .filter(|(hash, _)| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(hash, file)| (file.to_owned(), hash.to_owned()))
        .collect()
}

#[tokio::test]
async fn graphiql_loads_only_from_the_gateway_under_a_strict_csp() {
    let app = spawn().await;
    for path in ["/", "/graphiql"] {
        let response = app.http.get(app.url(path)).send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-security-policy"), CSP, "{path}");
        assert_eq!(header(&response, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer", "{path}");
        let html = response.text().await.expect("body");
        assert!(!html.contains("http://") && !html.contains("https://"), "{path} names another site:\n{html}");
        assert_eq!(html.matches("<script").count(), html.matches("<script src=\"/graphiql/assets/").count());
        let links: Vec<String> =
            attribute_values(&html, "src").into_iter().chain(attribute_values(&html, "href")).collect();
        assert_eq!(links.len(), 6, "{links:?}");
        for link in &links {
            assert!(link.starts_with("/graphiql/assets/") || link == "data:,", "{path} loads {link}");
        }
    }

    let html = page(&app).await;
    let app_js = attribute_values(&html, "src").into_iter().find(|s| s.contains("/app-")).expect("the page's script");
    let script = app.http.get(app.url(&app_js)).send().await.expect("answer").text().await.expect("body");
    assert!(!script.contains("http://") && !script.contains("https://"), "{app_js} names another site");
    for part in ["'/graphql'", "'/graphql/ws'", "'graphql-transport-ws'", "connection_init", "defaultHeaders"] {
        assert!(script.contains(part), "{app_js} lacks {part}");
    }
}

#[tokio::test]
async fn each_graphiql_asset_is_the_vendored_file_with_its_type_and_an_immutable_cache() {
    let app = spawn().await;
    let html = page(&app).await;
    let app_js = attribute_values(&html, "src").into_iter().find(|s| s.contains("/app-")).expect("the page's script");
    let own = (app_js.trim_start_matches("/graphiql/assets/"), "../app.js", "text/javascript; charset=utf-8");
    for (name, file, content_type) in VENDORED.into_iter().chain([own]) {
        let url = format!("/graphiql/assets/{name}");
        assert!(html.contains(&format!("\"{url}\"")), "the page does not load {url}");
        let response = app.http.get(app.url(&url)).send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(header(&response, "content-type"), content_type, "{url}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{url}");
        assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable", "{url}");
        let served = response.bytes().await.expect("body");
        let vendored = std::fs::read(format!("{VENDOR}/{file}")).expect("the vendored file");
        assert_eq!(sha256_hex(&served), sha256_hex(&vendored), "{url} is not {file}");
    }

    let unknown = app.http.get(app.url("/graphiql/assets/graphiql-4.1.1.min.js")).send().await.expect("answer");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[test]
fn the_vendored_files_are_the_ones_pinned_in_the_vendor_script() {
    let pinned = pinned_hashes();
    let names: Vec<&str> = VENDORED.iter().map(|(_, file, _)| *file).collect();
    assert_eq!(pinned.len(), names.len(), "{pinned:?}");
    for file in names {
        let bytes = std::fs::read(format!("{VENDOR}/{file}")).expect("the vendored file");
        assert_eq!(Some(&sha256_hex(&bytes)), pinned.get(file), "{file} differs from the hash the script pins");
    }
}

#[tokio::test]
async fn graphql_and_webhook_answers_are_never_stored_and_never_sniffed() {
    let app = spawn().await;
    let token = user_token(SEED, "uid:read");
    let post = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("answer");
    let get = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { id } }")])
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    for response in [post, get] {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "cache-control"), "no-store");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
        // reqwest sends `Accept: */*`, answered as `application/json` (see http.rs).
        assert_eq!(header(&response, "content-type"), "application/json; charset=utf-8");
        assert!(response.headers().get("x-frame-options").is_none(), "X-Frame-Options is for HTML");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body, serde_json::json!({ "data": { "me": { "id": SEED } } }));
    }

    let refused = app.http.post(app.url("/graphql")).json(&serde_json::json!({ "query": "{ me { id } }" }));
    let webhook = app.http.post(app.url("/webhooks/sumsub")).body("{}");
    for response in [refused.send().await.expect("answer"), webhook.send().await.expect("answer")] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&response, "cache-control"), "no-store");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
    }

    for path in ["/healthz", "/nope"] {
        let response = app.http.get(app.url(path)).send().await.expect("answer");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&response, "cache-control"), "no-store", "{path}");
    }
}

/// RFC 7636's example verifier and its S256 challenge; another valid verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const OTHER_VERIFIER: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client")
}

/// The sandbox sign-in page's form, posted as a browser would for `SEED` with `uid:read`: the code it sends back to
/// GraphiQL (checked to come with the flow's state).
async fn sandbox_code(app: &crate::helpers::TestApp) -> String {
    let redirect_uri = app.url("/graphiql");
    let form = [
        ("client_id", "graphiql"),
        ("redirect_uri", redirect_uri.as_str()),
        ("state", "the-state"),
        ("code_challenge", CHALLENGE),
        ("subject", SEED),
        ("kind", "user"),
        ("scope", "uid:read"),
    ];
    let response = no_redirects().post(app.url("/_sandbox/signin/authorize")).form(&form).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = reqwest::Url::parse(&app.url(header(&response, "location"))).expect("a location");
    assert_eq!(location.path(), "/graphiql");
    let query: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), Some("the-state"));
    query.get("code").expect("a code").clone()
}

/// The sandbox token endpoint's answer to `form`.
async fn token_answer(app: &crate::helpers::TestApp, form: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let response = app.http.post(app.url("/_sandbox/signin/token")).form(form).send().await.expect("answer");
    assert_eq!(header(&response, "cache-control"), "no-store");
    (response.status(), response.json().await.expect("json"))
}

async fn exchange(
    app: &crate::helpers::TestApp,
    code: &str,
    verifier: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let redirect_uri = app.url("/graphiql");
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", "graphiql"),
        ("redirect_uri", redirect_uri.as_str()),
        ("code", code),
    ];
    form.extend(verifier.map(|v| ("code_verifier", v)));
    token_answer(app, &form).await
}

#[tokio::test]
async fn the_sandbox_sign_in_refuses_a_code_with_a_wrong_or_missing_verifier_and_spends_it() {
    let app = spawn().await;
    let code = sandbox_code(&app).await;
    let (status, body) = exchange(&app, &code, Some(OTHER_VERIFIER)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    assert!(body.get("access_token").is_none());
    let (status, body) = exchange(&app, &code, Some(VERIFIER)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "spent: {body}");

    let code = sandbox_code(&app).await;
    let (status, body) = exchange(&app, &code, None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "{body}");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_sandbox_sign_in_code_is_single_use_and_its_token_reads_as_the_chosen_subject() {
    let app = spawn().await;
    let code = sandbox_code(&app).await;
    let (status, body) = exchange(&app, &code, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "uid:read");
    assert!(body["expires_in"].as_i64().is_some_and(|s| s > 60), "{body}");
    let token = body["access_token"].as_str().expect("a token");
    assert_eq!(app.query(token, "{ me { id } }").await.data("me.id").as_str(), Some(SEED));

    let (status, again) = exchange(&app, &code, Some(VERIFIER)).await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{again}");

    let refresh = body["refresh_token"].as_str().expect("a refresh token");
    let renew = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, renewed) = token_answer(&app, &renew).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let renewed = renewed["access_token"].as_str().expect("a token");
    assert_eq!(app.query(renewed, "{ me { id } }").await.data("me.id").as_str(), Some(SEED));
    let (status, _) = token_answer(&app, &renew).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a refresh token is replaced when used");
}

#[tokio::test]
async fn the_sandbox_sign_in_page_requires_pkce_and_sends_codes_to_this_graphiql_only() {
    let app = spawn().await;
    let graphiql = app.url("/graphiql");
    let authorize = |redirect_uri: &str, method: &str, challenge: Option<&str>| {
        let mut query = vec![
            ("response_type", "code".to_owned()),
            ("client_id", "graphiql".to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("state", "s".to_owned()),
            ("code_challenge_method", method.to_owned()),
        ];
        query.extend(challenge.map(|c| ("code_challenge", c.to_owned())));
        app.http.get(app.url("/_sandbox/signin/authorize")).query(&query).send()
    };
    let page = authorize(&graphiql, "S256", Some(CHALLENGE)).await.expect("answer");
    assert_eq!(page.status(), StatusCode::OK);
    let csp = header(&page, "content-security-policy").to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    let html = page.text().await.expect("body");
    assert!(!html.contains("<script"), "the sign-in page runs no script");
    assert!(html.contains("name=\"subject\"") && html.contains("value=\"uid:read\""), "{html}");

    for (redirect_uri, method, challenge) in [
        (graphiql.as_str(), "plain", Some(CHALLENGE)),
        (graphiql.as_str(), "S256", None),
        ("http://evil.test/graphiql", "S256", Some(CHALLENGE)),
        (&app.url("/elsewhere"), "S256", Some(CHALLENGE)),
    ] {
        let refused = authorize(redirect_uri, method, challenge).await.expect("answer");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{redirect_uri} {method} {challenge:?}");
    }
}

async fn config(app: &crate::helpers::TestApp) -> serde_json::Value {
    app.http.get(app.url("/graphiql/config")).send().await.expect("answer").json().await.expect("json")
}

async fn csp_of(app: &crate::helpers::TestApp) -> String {
    header(&app.http.get(app.url("/graphiql")).send().await.expect("answer"), "content-security-policy").to_owned()
}

#[tokio::test]
async fn the_graphiql_csp_names_the_sign_in_issuer_origin_only_when_configured() {
    let sandbox = spawn().await;
    assert_eq!(csp_of(&sandbox).await, CSP, "sandbox mode signs in on its own origin");
    assert_eq!(config(&sandbox).await["signIn"]["issuer"], "/_sandbox/signin");

    let plain = crate::helpers::production_app(&sandbox, &[], |_| {}).await;
    assert_eq!(csp_of(&plain).await, CSP);
    assert_eq!(config(&plain).await, serde_json::json!({ "signIn": null }));

    let signing_in = crate::helpers::production_app(&sandbox, &[], |c| {
        c.graphiql_sign_in = Some(kyc_gateway::config::GraphiqlSignIn {
            issuer: crate::helpers::ISSUER.into(),
            client_id: "graphiql-staff".into(),
            scopes: "openid client.users:read".into(),
            origin: "https://id.example.com".into(),
        });
    })
    .await;
    assert_eq!(
        csp_of(&signing_in).await,
        CSP.replace("connect-src 'self'", "connect-src 'self' https://id.example.com")
    );
    assert_eq!(
        config(&signing_in).await,
        serde_json::json!({ "signIn": {
            "issuer": crate::helpers::ISSUER, "clientId": "graphiql-staff", "scopes": "openid client.users:read",
            "sandbox": false,
        } })
    );
}

#[tokio::test]
async fn production_mode_has_no_sandbox_sign_in() {
    let sandbox = spawn().await;
    let app = crate::helpers::production_app(&sandbox, &[], |_| {}).await;
    for path in ["/_sandbox/signin/.well-known/openid-configuration", "/_sandbox/signin/authorize"] {
        let response = app.http.get(app.url(path)).send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for path in ["/_sandbox/signin/authorize", "/_sandbox/signin/token"] {
        let response = app.http.post(app.url(path)).form(&[("grant_type", "authorization_code")]).send().await;
        assert_eq!(response.expect("answer").status(), StatusCode::NOT_FOUND, "{path}");
    }
}
