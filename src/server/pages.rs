//! GraphiQL and its assets, health and the JSON 404. GraphiQL is where staff paste tokens, so everything it runs comes
//! from this binary (vendored, pinned by `scripts/vendor-graphiql.sh`; its own script a file, not inline), and its
//! Content-Security-Policy allows scripts from this origin only.

use std::sync::{Arc, LazyLock};

use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

/// The page's policy: scripts and everything they connect to from this origin only; no framing, no `<base>`, no form
/// posts. With sign-in configured, `connect-src` also names the issuer's origin ([`GraphiqlPage::new`]). The browser
/// test (`tests/browser/graphiql.mjs`) fails on any violation.
// `connect-src 'self'` covers `/graphql` and, in browsers implementing CSP Level 3, the WebSocket at `/graphql/ws`.
// Inline styles: CodeMirror and GraphiQL position their elements with `style` attributes. `data:` fonts and images:
// GraphiQL's stylesheet embeds its fonts and icons that way (and the favicon is `data:,`).
pub const GRAPHIQL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Asset answers may be kept for a year without revalidation: each name carries its version (the vendored files) or
/// a digest of its content (the page's script), so a changed asset has a new name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// An embedded file served at `/graphiql/assets/<name>`.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The vendored files, named with the version of the npm package they come from (`assets/vendor/README.md`).
pub const VENDORED: [Asset; 4] = [
    Asset {
        name: "react-18.3.1.production.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("assets/vendor/react.production.min.js"),
    },
    Asset {
        name: "react-dom-18.3.1.production.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("assets/vendor/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql-4.1.2.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("assets/vendor/graphiql.min.js"),
    },
    Asset { name: "graphiql-4.1.2.min.css", content_type: CSS, body: include_bytes!("assets/vendor/graphiql.min.css") },
];

/// The page's own script: the fetchers and the rendering (what used to be the page's inline script).
const APP_JS: &str = include_str!("assets/app.js");

/// `app-<first 8 bytes of its SHA-256, hex>.js`: a new name whenever the script changes, so the immutable
/// cache never serves an old one after a deploy.
static APP_JS_NAME: LazyLock<String> = LazyLock::new(|| {
    let digest = ring::digest::digest(&ring::digest::SHA256, APP_JS.as_bytes());
    let hex: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("app-{hex}.js")
});

/// The page, with its script's current name in place of `{app.js}`.
static PAGE: LazyLock<String> =
    LazyLock::new(|| include_str!("assets/graphiql.html").replace("{app.js}", &APP_JS_NAME));

/// The page's policy and what `GET /graphiql/config` tells its script about signing in; decided at start.
pub struct GraphiqlPage {
    csp: HeaderValue,
    config: serde_json::Value,
}

impl GraphiqlPage {
    /// With `sign_in` (production mode), the page signs in at that issuer: its origin joins `connect-src`, for the
    /// discovery document and the token endpoint (the authorization endpoint is a navigation, which `connect-src`
    /// does not govern). With `sandbox`, it signs in at the gateway's own sandbox issuer, under `'self'`.
    pub fn new(sign_in: Option<&crate::config::GraphiqlSignIn>, sandbox: bool) -> Self {
        let no_sign_in = serde_json::json!({ "signIn": null });
        let (csp, config) = match sign_in {
            Some(s) => (
                GRAPHIQL_CSP.replacen("connect-src 'self'", &format!("connect-src 'self' {}", s.origin), 1),
                serde_json::json!({
                    "signIn": { "issuer": s.issuer, "clientId": s.client_id, "scopes": s.scopes, "sandbox": false }
                }),
            ),
            #[cfg(feature = "sandbox")]
            None if sandbox => (GRAPHIQL_CSP.to_owned(), super::signin::page_config()),
            None => {
                let _ = sandbox;
                (GRAPHIQL_CSP.to_owned(), no_sign_in)
            }
        };
        let csp = HeaderValue::from_str(&csp).expect("an origin serialized as ASCII is a header value");
        GraphiqlPage { csp, config }
    }
}

/// GraphiQL, with a fetcher that sends subscriptions over `/graphql/ws` and the token (signed in, or the Headers
/// pane's) in `connection_init` (`assets/app.js`), under its policy. The page itself is revalidated on every load
/// (`no-cache`) so that a deploy's new asset names are seen; `server::headers` adds `X-Frame-Options`.
pub async fn graphiql(State(page): State<Arc<GraphiqlPage>>) -> Response {
    let mut response = Html(PAGE.as_str()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /graphiql/config`: where the page signs in (`{"signIn": null}` when it cannot), as JSON rather than in the
/// page, which holds no inline script.
pub async fn config(State(page): State<Arc<GraphiqlPage>>) -> Response {
    let mut response = Json(page.config.clone()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /graphiql/assets/<name>`: an embedded asset, or the JSON 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    let found = if name == *APP_JS_NAME {
        Some((JAVASCRIPT, APP_JS.as_bytes()))
    } else {
        VENDORED.iter().find(|a| a.name == name).map(|a| (a.content_type, a.body))
    };
    match found {
        Some((content_type, body)) => {
            let headers: [(HeaderName, HeaderValue); 2] = [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
            ];
            (headers, body).into_response()
        }
        None => not_found().await,
    }
}

/// Liveness: the process serves HTTP. It does not call providers, so a provider outage never restarts the gateway.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": "not found" }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_asset_under_the_assets_path() {
        for name in VENDORED.iter().map(|a| a.name).chain([APP_JS_NAME.as_str()]) {
            assert!(PAGE.contains(&format!("\"/graphiql/assets/{name}\"")), "the page does not load {name}");
        }
        assert!(!PAGE.contains("{app.js}"));
    }
}
