//! Security headers on every answer of the gateway, set in one place so that no route can forget them; why each is set
//! is beside it (<https://owasp.org/www-project-secure-headers/> and MDN's pages on each header).

use axum::extract::Request;
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Answers to these paths carry what a token may read or what a provider reported about a person.
fn holds_personal_data(path: &str) -> bool {
    path == "/graphql" || path.starts_with("/graphql/") || path.starts_with("/webhooks/")
}

/// The middleware (`axum::middleware::from_fn`, applied to the whole router in `server::router`).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let personal = holds_personal_data(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A browser renders an answer only as its declared type: a JSON answer echoing input is never sniffed into HTML.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // A link followed from GraphiQL (it renders the schema's descriptions as Markdown) does not tell another site which
    // gateway it came from.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Personal data read with a caller's token: neither a browser's cache nor a shared proxy may keep it, whatever the
    // handler set. Other answers too, unless their handler chose (GraphiQL's page revalidates, its assets are
    // immutable).
    if personal || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    // GraphiQL, where staff paste tokens, is never framed by another page (clickjacking); its Content-Security-Policy
    // says `frame-ancestors 'none'` too, for browsers that read that.
    if html {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::holds_personal_data;

    #[test]
    fn graphql_and_webhook_paths_hold_personal_data_and_pages_do_not() {
        for path in ["/graphql", "/graphql/ws", "/webhooks/sumsub"] {
            assert!(holds_personal_data(path), "{path}");
        }
        for path in ["/", "/graphiql", "/graphiql/assets/app.js", "/graphqlx", "/healthz"] {
            assert!(!holds_personal_data(path), "{path}");
        }
    }
}
