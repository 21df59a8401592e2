//! GraphiQL's sign-in (`KYC_GATEWAY_GRAPHIQL_*`): the OpenID issuer staff sign in at, as a public client with PKCE.
//! The page itself is `server/pages.rs` and `server/assets/app.js`.

use anyhow::bail;

use crate::auth::jwks::check_fetch_url;
use crate::auth::token::TokenSettings;
use crate::env::Env;

/// The most scopes, and the longest scope, GraphiQL asks for.
const MAX_SCOPES: usize = 64;
const MAX_SCOPE_BYTES: usize = 128;

/// Production mode's sign-in: the page runs the authorization-code flow with PKCE against `issuer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphiqlSignIn {
    /// One of the configured token issuers; its discovery document names the endpoints.
    pub issuer: String,
    /// The public client registered at the issuer (no secret: the page cannot keep one).
    pub client_id: String,
    /// Space-separated scopes to ask for.
    pub scopes: String,
    /// The issuer's origin (`https://id.example.com`): the page's `connect-src` gains it, for discovery and tokens.
    pub origin: String,
}

pub(super) fn sign_in(env: &Env<'_>) -> anyhow::Result<Option<GraphiqlSignIn>> {
    let issuer = env.get("KYC_GATEWAY_GRAPHIQL_ISSUER");
    let client_id = env.get("KYC_GATEWAY_GRAPHIQL_CLIENT_ID");
    let scopes = env.get("KYC_GATEWAY_GRAPHIQL_SCOPES");
    let (issuer, client_id) = match (issuer, client_id) {
        (None, None) if scopes.is_none() => return Ok(None),
        (Some(issuer), Some(client_id)) => (issuer, client_id),
        _ => bail!("KYC_GATEWAY_GRAPHIQL_ISSUER and KYC_GATEWAY_GRAPHIQL_CLIENT_ID go together (SCOPES needs both)"),
    };
    let url = check_fetch_url(&issuer).map_err(|e| anyhow::anyhow!("KYC_GATEWAY_GRAPHIQL_ISSUER: {e}"))?;
    if client_id.is_empty() || client_id.len() > 256 || !client_id.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("KYC_GATEWAY_GRAPHIQL_CLIENT_ID must be 1 to 256 visible ASCII characters");
    }
    let scopes: Vec<&str> = scopes.as_deref().unwrap_or("").split_ascii_whitespace().collect();
    let scope_ok = |s: &&str| s.len() <= MAX_SCOPE_BYTES && s.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if scopes.len() > MAX_SCOPES || !scopes.iter().all(scope_ok) {
        bail!("KYC_GATEWAY_GRAPHIQL_SCOPES: at most {MAX_SCOPES} space-separated scopes of visible ASCII");
    }
    Ok(Some(GraphiqlSignIn { issuer, client_id, scopes: scopes.join(" "), origin: url.origin().ascii_serialization() }))
}

/// Production mode: the sign-in issuer must be one whose tokens the gateway accepts.
pub(super) fn check_production(sign_in: &GraphiqlSignIn, tokens: &TokenSettings) -> anyhow::Result<()> {
    let known =
        tokens.issuers.iter().map(|i| i.issuer.as_str()).chain(tokens.secret_issuer.iter().map(|s| s.issuer.as_str()));
    if !known.into_iter().any(|i| i == sign_in.issuer) {
        bail!(
            "KYC_GATEWAY_GRAPHIQL_ISSUER={:?} is not one of the token issuers (KYC_GATEWAY_JWT_ISSUERS, \
             KYC_GATEWAY_JWT_ISSUER): the gateway would refuse the tokens GraphiQL signs in for",
            sign_in.issuer
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::IssuerSettings;

    fn read(pairs: &[(&str, &str)]) -> anyhow::Result<Option<GraphiqlSignIn>> {
        let var = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        sign_in(&Env::new(&var))
    }

    #[test]
    fn the_sign_in_issuer_gives_the_origin_the_page_may_connect_to() {
        let read = read(&[
            ("KYC_GATEWAY_GRAPHIQL_ISSUER", "https://login.example.com:8443/realms/staff"),
            ("KYC_GATEWAY_GRAPHIQL_CLIENT_ID", "graphiql"),
            ("KYC_GATEWAY_GRAPHIQL_SCOPES", " openid  client.users:read "),
        ]);
        let sign_in = read.expect("valid").expect("configured");
        assert_eq!(sign_in.origin, "https://login.example.com:8443");
        assert_eq!(sign_in.scopes, "openid client.users:read");
        assert_eq!(self::read(&[]).expect("valid"), None);
    }

    #[test]
    fn a_sign_in_issuer_without_a_client_or_over_plain_http_or_not_a_token_issuer_is_refused() {
        assert!(read(&[("KYC_GATEWAY_GRAPHIQL_ISSUER", "https://login.example.com")]).is_err());
        assert!(read(&[("KYC_GATEWAY_GRAPHIQL_SCOPES", "openid")]).is_err());
        let plain =
            [("KYC_GATEWAY_GRAPHIQL_ISSUER", "http://login.example.com"), ("KYC_GATEWAY_GRAPHIQL_CLIENT_ID", "g")];
        assert!(read(&plain).is_err());
        let quoted = [
            ("KYC_GATEWAY_GRAPHIQL_ISSUER", "https://login.example.com"),
            ("KYC_GATEWAY_GRAPHIQL_CLIENT_ID", "g"),
            ("KYC_GATEWAY_GRAPHIQL_SCOPES", "a\"b"),
        ];
        assert!(read(&quoted).is_err());

        let sign_in = read(&[
            ("KYC_GATEWAY_GRAPHIQL_ISSUER", "https://login.example.com"),
            ("KYC_GATEWAY_GRAPHIQL_CLIENT_ID", "g"),
        ])
        .expect("valid")
        .expect("configured");
        let mut tokens = TokenSettings::default();
        tokens.issuers.push(IssuerSettings { issuer: "https://other.example.com".into(), jwks_url: None });
        let refused = check_production(&sign_in, &tokens).expect_err("not a token issuer");
        assert!(refused.to_string().contains("is not one of the token issuers"), "{refused}");
        tokens.issuers.push(IssuerSettings { issuer: "https://login.example.com".into(), jwks_url: None });
        check_production(&sign_in, &tokens).expect("a token issuer");
    }
}
