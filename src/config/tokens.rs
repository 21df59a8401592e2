//! Who may call in production mode: the issuers of callers' tokens and what their tokens must say
//! (`KYC_GATEWAY_JWT_*`). The verifier itself is `auth/`.

use std::time::Duration;

use anyhow::bail;
use jsonwebtoken::Algorithm;

use crate::auth::claims::{ClaimRules, ClientRule};
use crate::auth::jwks::{algorithm_named, check_fetch_url, discovery_url, ASYMMETRIC_ALGORITHMS};
use crate::auth::token::{
    IssuerSettings, SecretIssuer, TokenSettings, DEFAULT_DEV_SECRET, DEV_ISSUER, MIN_HS256_SECRET_BYTES,
};
use crate::auth::ScopeGrants;
use crate::env::Env;
use crate::secret::Secret;

/// The largest clock leeway accepted: a few minutes of skew is a broken clock, not a leeway (RFC 7519 §4.1.4 speaks
/// of "no more than a few minutes").
const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The longest a key document may take to arrive.
const MAX_JWKS_TIMEOUT: Duration = Duration::from_secs(60);

/// A comma-separated list, entries trimmed, empty ones dropped.
fn list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `KYC_GATEWAY_JWT_ISSUERS`: `ISSUER` (its keys through OpenID Connect Discovery) or `ISSUER=JWKS_URL`, comma
/// separated. An issuer identifier holds no `=` or `,` (OpenID Connect Discovery §2: a URL with no query).
fn issuers(value: Option<String>) -> anyhow::Result<Vec<IssuerSettings>> {
    list(value)
        .into_iter()
        .map(|entry| {
            let (issuer, jwks_url) = match entry.split_once('=') {
                Some((issuer, url)) => (issuer.trim().to_owned(), Some(url.trim().to_owned())),
                None => (entry, None),
            };
            if issuer.is_empty() || jwks_url.as_ref().is_some_and(String::is_empty) {
                bail!("KYC_GATEWAY_JWT_ISSUERS: every entry is ISSUER or ISSUER=JWKS_URL");
            }
            Ok(IssuerSettings { issuer, jwks_url })
        })
        .collect()
}

/// `KYC_GATEWAY_JWT_ISSUER_SCOPES`: `ISSUER=SCOPE SCOPE ...`, comma separated; a scope ending in `*` grants every
/// scope it begins. An issuer listed grants only these; one not listed, any.
fn issuer_scopes(value: Option<String>) -> anyhow::Result<Vec<(String, ScopeGrants)>> {
    list(value)
        .into_iter()
        .map(|entry| match entry.split_once('=') {
            Some((issuer, scopes)) if !issuer.trim().is_empty() => {
                Ok((issuer.trim().to_owned(), ScopeGrants::parse(scopes)))
            }
            _ => bail!("KYC_GATEWAY_JWT_ISSUER_SCOPES: every entry is ISSUER=SCOPE SCOPE ..."),
        })
        .collect()
}

fn algorithms(value: Option<String>) -> anyhow::Result<Vec<Algorithm>> {
    let names = list(value);
    if names.is_empty() {
        return Ok(ASYMMETRIC_ALGORITHMS.to_vec());
    }
    let mut algorithms = Vec::new();
    for name in names {
        let Some(alg) = algorithm_named(&name) else {
            bail!(
                "KYC_GATEWAY_JWT_ALGORITHMS: {name:?} is not allowed; choose among RS256, PS256, ES256, EdDSA (HS256 \
                 only through KYC_GATEWAY_JWT_SECRET)"
            );
        };
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    Ok(algorithms)
}

pub(super) fn tokens(env: &Env<'_>) -> anyhow::Result<TokenSettings> {
    let d = TokenSettings::default();
    let secret_issuer = match (env.get("KYC_GATEWAY_JWT_SECRET"), env.get("KYC_GATEWAY_JWT_ISSUER")) {
        (None, None) => None,
        (Some(secret), Some(issuer)) => Some(SecretIssuer { issuer, secret: Secret::new(secret) }),
        _ => bail!("KYC_GATEWAY_JWT_SECRET and KYC_GATEWAY_JWT_ISSUER go together"),
    };
    let scope_claims = match list(env.get("KYC_GATEWAY_JWT_SCOPE_CLAIMS")) {
        claims if claims.is_empty() => d.claims.scope_claims,
        claims => claims,
    };
    let client_rule = match env.get("KYC_GATEWAY_JWT_CLIENT_RULE") {
        None => d.claims.client_rule,
        Some(rule) => rule
            .parse::<ClientRule>()
            .map_err(|e| anyhow::anyhow!("KYC_GATEWAY_JWT_CLIENT_RULE={rule:?} is not valid: {e}"))?,
    };
    let settings = TokenSettings {
        secret_issuer,
        issuers: issuers(env.get("KYC_GATEWAY_JWT_ISSUERS"))?,
        audiences: list(env.get("KYC_GATEWAY_JWT_AUDIENCE")),
        algorithms: algorithms(env.get("KYC_GATEWAY_JWT_ALGORITHMS"))?,
        leeway: env.secs("KYC_GATEWAY_JWT_LEEWAY_SECS", d.leeway)?,
        jwks_refresh: env.secs("KYC_GATEWAY_JWT_JWKS_REFRESH_SECS", d.jwks_refresh)?,
        jwks_refetch: env.secs("KYC_GATEWAY_JWT_JWKS_REFETCH_SECS", d.jwks_refetch)?,
        jwks_timeout: env.millis("KYC_GATEWAY_JWT_JWKS_TIMEOUT_MS", d.jwks_timeout)?,
        claims: ClaimRules { scope_claims, client_rule },
        user_issuer: env.get("KYC_GATEWAY_JWT_USER_ISSUER"),
        issuer_scopes: issuer_scopes(env.get("KYC_GATEWAY_JWT_ISSUER_SCOPES"))?,
    };
    check_limits(&settings)?;
    Ok(settings)
}

/// The bounds of the timing settings, in either mode.
fn check_limits(t: &TokenSettings) -> anyhow::Result<()> {
    if t.leeway > MAX_LEEWAY {
        bail!("KYC_GATEWAY_JWT_LEEWAY_SECS must be at most {}", MAX_LEEWAY.as_secs());
    }
    if t.jwks_refresh.is_zero() || t.jwks_refetch.is_zero() {
        bail!("KYC_GATEWAY_JWT_JWKS_REFRESH_SECS and KYC_GATEWAY_JWT_JWKS_REFETCH_SECS must be at least 1");
    }
    if t.jwks_timeout.is_zero() || t.jwks_timeout > MAX_JWKS_TIMEOUT {
        bail!("KYC_GATEWAY_JWT_JWKS_TIMEOUT_MS must be between 1 and {}", MAX_JWKS_TIMEOUT.as_millis());
    }
    if t.algorithms.is_empty() || t.algorithms.iter().any(|alg| !ASYMMETRIC_ALGORITHMS.contains(alg)) {
        bail!("KYC_GATEWAY_JWT_ALGORITHMS: choose among RS256, PS256, ES256, EdDSA");
    }
    if t.claims.scope_claims.is_empty() {
        bail!("KYC_GATEWAY_JWT_SCOPE_CLAIMS names no claim");
    }
    Ok(())
}

/// Whether any issuer is configured (which only production mode may have).
pub(super) fn any_issuer(t: &TokenSettings) -> bool {
    t.secret_issuer.is_some() || !t.issuers.is_empty()
}

/// The start-up checks of production mode: an issuer of its own, no dev secret, a strong shared secret, key URLs that
/// cannot be spoofed, each issuer once.
pub(super) fn check_production(t: &TokenSettings, dev_secret: &Secret) -> anyhow::Result<()> {
    check_limits(t)?;
    if !any_issuer(t) {
        bail!(
            "refusing to start: a real provider is configured but no token issuer; dev tokens are accepted only in \
             sandbox mode. Set KYC_GATEWAY_JWT_ISSUERS (issuers that publish their keys), or KYC_GATEWAY_JWT_SECRET \
             and KYC_GATEWAY_JWT_ISSUER."
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    if let Some(s) = &t.secret_issuer {
        if s.secret.expose() == DEFAULT_DEV_SECRET || &s.secret == dev_secret {
            bail!(
                "refusing to start: KYC_GATEWAY_JWT_SECRET is the dev secret (the documented default or \
                 KYC_GATEWAY_DEV_SECRET), so anyone could mint tokens"
            );
        }
        let bytes = s.secret.expose().len();
        if bytes < MIN_HS256_SECRET_BYTES {
            bail!(
                "refusing to start: KYC_GATEWAY_JWT_SECRET holds {bytes} bytes; an HS256 secret needs at least \
                 {MIN_HS256_SECRET_BYTES} random bytes (e.g. `openssl rand -base64 48`), or let the issuer publish its \
                 keys (KYC_GATEWAY_JWT_ISSUERS)"
            );
        }
        seen.push(&s.issuer);
    }
    for i in &t.issuers {
        let source = match &i.jwks_url {
            Some(url) => check_fetch_url(url),
            None => {
                check_fetch_url(&i.issuer).and_then(|url| match url.query().is_some() || url.fragment().is_some() {
                    true => Err(format!("{:?} has a query or fragment, which an issuer identifier may not", i.issuer)),
                    false => check_fetch_url(&discovery_url(&i.issuer)),
                })
            }
        };
        if let Err(e) = source {
            bail!("refusing to start: KYC_GATEWAY_JWT_ISSUERS: {e}");
        }
        seen.push(&i.issuer);
    }
    if !t.issuers.is_empty() && t.audiences.is_empty() {
        // An identity provider that publishes its keys signs tokens for every API and app it serves (ID tokens too);
        // without an audience this gateway would take any of them as its own.
        bail!(
            "refusing to start: KYC_GATEWAY_JWT_ISSUERS is set without KYC_GATEWAY_JWT_AUDIENCE; set the audience your \
             identity provider gives this API, so that tokens it issued for other APIs are refused"
        );
    }
    if seen.contains(&DEV_ISSUER) {
        bail!("refusing to start: the dev token issuer {DEV_ISSUER:?} is configured as a production issuer");
    }
    if let Some(twice) = seen.iter().enumerate().find_map(|(n, i)| seen[..n].contains(i).then_some(i)) {
        bail!("refusing to start: the issuer {twice:?} is configured twice");
    }
    if let Err(e) = t.check_issuer_roles() {
        bail!("refusing to start: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> anyhow::Result<TokenSettings> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let var = |k: &str| map.get(k).cloned();
        tokens(&Env::new(&var))
    }

    const STRONG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn issuers_use_discovery_unless_a_jwks_url_is_given() {
        let t = read(&[
            (
                "KYC_GATEWAY_JWT_ISSUERS",
                "https://id.example.com/, https://login.partner.example/tenant=https://keys.partner.example/jwks.json",
            ),
            ("KYC_GATEWAY_JWT_AUDIENCE", "kyc-gateway"),
            ("KYC_GATEWAY_JWT_USER_ISSUER", "https://id.example.com/"),
        ])
        .expect("valid");
        assert_eq!(
            t.issuers,
            [
                IssuerSettings { issuer: "https://id.example.com/".into(), jwks_url: None },
                IssuerSettings {
                    issuer: "https://login.partner.example/tenant".into(),
                    jwks_url: Some("https://keys.partner.example/jwks.json".into())
                },
            ]
        );
        assert!(check_production(&t, &Secret::new(DEFAULT_DEV_SECRET)).is_ok());
        assert!(read(&[("KYC_GATEWAY_JWT_ISSUERS", "=https://keys")]).is_err());
    }

    #[test]
    fn the_defaults_are_the_four_asymmetric_algorithms_scope_then_scp_and_client_id_equal_to_sub() {
        let t = read(&[]).expect("valid");
        assert_eq!(t.algorithms, ASYMMETRIC_ALGORITHMS);
        assert_eq!(t.claims, ClaimRules::default());
        assert_eq!(t.leeway, Duration::from_secs(30));
        assert_eq!((t.jwks_refresh, t.jwks_refetch), (Duration::from_secs(300), Duration::from_secs(60)));
        assert!(t.audiences.is_empty() && t.issuers.is_empty() && t.secret_issuer.is_none());
    }

    #[test]
    fn every_setting_is_read() {
        let t = read(&[
            ("KYC_GATEWAY_JWT_AUDIENCE", "kyc-gateway, kyc-gateway-staging"),
            ("KYC_GATEWAY_JWT_ALGORITHMS", "ES256,EdDSA,ES256"),
            ("KYC_GATEWAY_JWT_LEEWAY_SECS", "10"),
            ("KYC_GATEWAY_JWT_JWKS_REFRESH_SECS", "600"),
            ("KYC_GATEWAY_JWT_JWKS_REFETCH_SECS", "30"),
            ("KYC_GATEWAY_JWT_JWKS_TIMEOUT_MS", "2000"),
            ("KYC_GATEWAY_JWT_SCOPE_CLAIMS", "permissions"),
            ("KYC_GATEWAY_JWT_CLIENT_RULE", "claim:gty=client-credentials"),
        ])
        .expect("valid");
        assert_eq!(t.audiences, ["kyc-gateway", "kyc-gateway-staging"]);
        assert_eq!(t.algorithms, [Algorithm::ES256, Algorithm::EdDSA]);
        assert_eq!(t.leeway, Duration::from_secs(10));
        assert_eq!((t.jwks_refresh, t.jwks_refetch), (Duration::from_secs(600), Duration::from_secs(30)));
        assert_eq!(t.jwks_timeout, Duration::from_millis(2000));
        assert_eq!(t.claims.scope_claims, ["permissions"]);
        assert_eq!(
            t.claims.client_rule,
            ClientRule::ClaimIs { claim: "gty".into(), value: "client-credentials".into() }
        );
    }

    #[test]
    fn a_bad_setting_names_its_variable() {
        for (name, value) in [
            ("KYC_GATEWAY_JWT_ALGORITHMS", "HS256"),
            ("KYC_GATEWAY_JWT_ALGORITHMS", "none"),
            ("KYC_GATEWAY_JWT_ALGORITHMS", "RS384"),
            ("KYC_GATEWAY_JWT_LEEWAY_SECS", "3600"),
            ("KYC_GATEWAY_JWT_JWKS_REFRESH_SECS", "0"),
            ("KYC_GATEWAY_JWT_JWKS_REFETCH_SECS", "0"),
            ("KYC_GATEWAY_JWT_JWKS_TIMEOUT_MS", "0"),
            ("KYC_GATEWAY_JWT_CLIENT_RULE", "client_id=sub"),
        ] {
            let err = read(&[(name, value)]).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn production_refuses_a_short_shared_secret_without_echoing_it() {
        let with = |secret: &str| TokenSettings {
            secret_issuer: Some(SecretIssuer { issuer: "https://id.example.com/".into(), secret: Secret::new(secret) }),
            ..TokenSettings::default()
        };
        let dev = Secret::new(DEFAULT_DEV_SECRET);
        let err = check_production(&with("x"), &dev).expect_err("1 byte").to_string();
        assert!(err.contains("holds 1 bytes") && err.contains("at least 32"), "{err}");
        let err = check_production(&with(&STRONG[1..]), &dev).expect_err("31 bytes").to_string();
        assert!(err.contains("holds 31 bytes") && !err.contains(&STRONG[1..]), "the secret is not echoed: {err}");
        assert!(check_production(&with(STRONG), &dev).is_ok());
    }

    #[test]
    fn production_refuses_key_urls_that_could_be_spoofed_the_dev_issuer_an_issuer_twice_and_no_audience() {
        let dev = Secret::new(DEFAULT_DEV_SECRET);
        let with = |entries: &str| {
            let t = read(&[("KYC_GATEWAY_JWT_ISSUERS", entries), ("KYC_GATEWAY_JWT_AUDIENCE", "kyc-gateway")])
                .expect("read");
            check_production(&t, &dev).map_err(|e| e.to_string())
        };
        assert!(with("http://id.example.com/").is_err(), "discovery over plain http");
        assert!(with("https://id.example.com/=http://keys.example.com/jwks").is_err(), "keys over plain http");
        assert!(with("https://id.example.com/?tenant=1").is_err(), "an issuer with a query");
        assert!(with("kyc-gateway-dev=https://keys.example.com/jwks").is_err());
        assert!(with("https://id.example.com/, https://id.example.com/").expect_err("twice").contains("twice"));
        assert!(with("urn:example:issuer=https://keys.example.com/jwks").is_ok(), "any issuer with a JWKS URL");
        assert!(with("http://127.0.0.1:8080").is_ok(), "a local identity provider");
        let no_audience = read(&[("KYC_GATEWAY_JWT_ISSUERS", "https://id.example.com/")]).expect("read");
        let err = check_production(&no_audience, &dev).expect_err("no audience").to_string();
        assert!(err.contains("KYC_GATEWAY_JWT_AUDIENCE"), "{err}");
        let mut both =
            read(&[("KYC_GATEWAY_JWT_ISSUERS", "https://id.example.com/"), ("KYC_GATEWAY_JWT_AUDIENCE", "a")])
                .expect("read");
        both.secret_issuer =
            Some(SecretIssuer { issuer: "https://id.example.com/".into(), secret: Secret::new(STRONG) });
        assert!(check_production(&both, &dev).is_err(), "one issuer, two ways to verify it");
    }

    #[test]
    fn several_issuers_need_the_one_that_names_users_and_scope_grants_name_known_issuers() {
        let dev = Secret::new(DEFAULT_DEV_SECRET);
        let two = [
            ("KYC_GATEWAY_JWT_ISSUERS", "https://id.example.com/, https://partner.example.com/"),
            ("KYC_GATEWAY_JWT_AUDIENCE", "a"),
        ];
        let err = check_production(&read(&two).expect("read"), &dev).expect_err("which names users?").to_string();
        assert!(err.contains("KYC_GATEWAY_JWT_USER_ISSUER"), "{err}");
        let named = [two[0], two[1], ("KYC_GATEWAY_JWT_USER_ISSUER", "https://id.example.com/")];
        let t = read(&named).expect("read");
        assert!(check_production(&t, &dev).is_ok());
        assert_eq!(t.users_issuer(), Some("https://id.example.com/"));
        let unknown = [two[0], two[1], ("KYC_GATEWAY_JWT_USER_ISSUER", "https://other/")];
        assert!(check_production(&read(&unknown).expect("read"), &dev).is_err(), "an issuer not configured");
        let grants = [
            named[0],
            named[1],
            named[2],
            ("KYC_GATEWAY_JWT_ISSUER_SCOPES", "https://partner.example.com/=uid:read verification.*"),
        ];
        let t = read(&grants).expect("read");
        assert!(check_production(&t, &dev).is_ok());
        assert!(t.issuer_scopes[0].1.allows("verification.plus:read") && !t.issuer_scopes[0].1.allows("email:read"));
        let stray = [named[0], named[1], named[2], ("KYC_GATEWAY_JWT_ISSUER_SCOPES", "https://other/=uid:read")];
        assert!(check_production(&read(&stray).expect("read"), &dev).is_err(), "grants of an issuer not configured");
        assert!(read(&[("KYC_GATEWAY_JWT_ISSUER_SCOPES", "uid:read")]).is_err(), "no issuer");
        let one = read(&[("KYC_GATEWAY_JWT_ISSUERS", "https://id.example.com/")]).expect("read");
        assert_eq!(one.users_issuer(), Some("https://id.example.com/"), "the only issuer names users");
    }
}
