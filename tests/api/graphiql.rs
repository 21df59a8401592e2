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
