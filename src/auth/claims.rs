//! What a token says once its signature holds: the registered claims every token must pass (`iss`, `aud`, `exp`, `nbf`;
//! RFC 7519 §4.1), and the caller it names (scopes, user or client). Pure functions over the decoded claims, so every
//! rule is tested without keys or clocks.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::token::AuthError;
use super::{Principal, Scopes};
use crate::domain::UserId;

/// The claims a token's scopes are read from by default: `scope` (space separated, RFC 8693 §4.2) or `scp` (an
/// array, or a string, as some identity providers issue it).
pub const DEFAULT_SCOPE_CLAIMS: [&str; 2] = ["scope", "scp"];

/// How a client (service) token is told from a user's token. Identity providers mark client-credentials tokens
/// differently; the rule is configuration (`KYC_GATEWAY_JWT_CLIENT_RULE`), the default the one RFC 9068 §2.2
/// describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRule {
    /// The claim equals `sub`: a client-credentials token is about the client itself (`client_id` = `sub`, RFC 9068;
    /// Okta's `cid`). A user's token names its client too, with the user as `sub`. Written `equals-sub:CLAIM`.
    ClaimEqualsSub(String),
    /// The claim holds this string (Auth0's `gty` = `client-credentials`). Written `claim:CLAIM=VALUE`.
    ClaimIs { claim: String, value: String },
    /// `sub` starts with this (a naming convention for service accounts). Written `sub-prefix:PREFIX`.
    SubPrefix(String),
    /// `sub` ends with this (Auth0's `<client-id>@clients`). Written `sub-suffix:SUFFIX`.
    SubSuffix(String),
}

impl Default for ClientRule {
    fn default() -> Self {
        ClientRule::ClaimEqualsSub("client_id".into())
    }
}

impl ClientRule {
    /// Whether the token with these claims and this (non-empty) `sub` is a client's.
    pub fn is_client(&self, claims: &Map<String, Value>, sub: &str) -> bool {
        match self {
            ClientRule::ClaimEqualsSub(claim) => claims.get(claim).and_then(Value::as_str) == Some(sub),
            ClientRule::ClaimIs { claim, value } => claims.get(claim).and_then(Value::as_str) == Some(value),
            ClientRule::SubPrefix(prefix) => sub.starts_with(prefix.as_str()),
            ClientRule::SubSuffix(suffix) => sub.ends_with(suffix.as_str()),
        }
    }
}

impl FromStr for ClientRule {
    type Err = String;

    fn from_str(rule: &str) -> Result<Self, String> {
        let expected = "equals-sub:CLAIM, claim:CLAIM=VALUE, sub-prefix:PREFIX or sub-suffix:SUFFIX";
        let (kind, rest) = rule.trim().split_once(':').ok_or_else(|| format!("expected {expected}"))?;
        let nonempty = |what: &str, s: &str| match s.is_empty() {
            true => Err(format!("{kind}: the {what} is empty")),
            false => Ok(s.to_owned()),
        };
        match kind {
            "equals-sub" => Ok(ClientRule::ClaimEqualsSub(nonempty("claim", rest)?)),
            "claim" => {
                let (claim, value) = rest.split_once('=').ok_or_else(|| "claim: expected CLAIM=VALUE".to_owned())?;
                Ok(ClientRule::ClaimIs { claim: nonempty("claim", claim)?, value: nonempty("value", value)? })
            }
            "sub-prefix" => Ok(ClientRule::SubPrefix(nonempty("prefix", rest)?)),
            "sub-suffix" => Ok(ClientRule::SubSuffix(nonempty("suffix", rest)?)),
            _ => Err(format!("unknown rule {kind:?}: expected {expected}")),
        }
    }
}

impl fmt::Display for ClientRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientRule::ClaimEqualsSub(claim) => write!(f, "equals-sub:{claim}"),
            ClientRule::ClaimIs { claim, value } => write!(f, "claim:{claim}={value}"),
            ClientRule::SubPrefix(prefix) => write!(f, "sub-prefix:{prefix}"),
            ClientRule::SubSuffix(suffix) => write!(f, "sub-suffix:{suffix}"),
        }
    }
}

/// How a verified token's claims become a [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// The claims scopes are read from, in order: the first one present is the token's scopes.
    pub scope_claims: Vec<String>,
    pub client_rule: ClientRule,
}

impl Default for ClaimRules {
    fn default() -> Self {
        ClaimRules {
            scope_claims: DEFAULT_SCOPE_CLAIMS.map(str::to_owned).to_vec(),
            client_rule: ClientRule::default(),
        }
    }
}

impl ClaimRules {
    /// The caller the claims of `issuer`'s token name. `sub` must be a non-empty string: the company's user id or
    /// the client.
    pub fn principal(&self, issuer: &Arc<str>, claims: &Map<String, Value>) -> Result<Principal, AuthError> {
        let sub = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(AuthError::Invalid)?;
        let scopes = self.scopes(claims);
        let issuer = Arc::clone(issuer);
        Ok(match self.client_rule.is_client(claims, sub) {
            true => Principal::Client { issuer, name: sub.to_owned(), scopes },
            false => Principal::User { issuer, id: UserId::parse(sub).map_err(|_| AuthError::Invalid)?, scopes },
        })
    }

    /// The scopes of the first configured claim present: a space-separated string or an array of strings. Anything
    /// else grants nothing (fewer scopes is never a wider access).
    pub fn scopes(&self, claims: &Map<String, Value>) -> Scopes {
        let value = self.scope_claims.iter().find_map(|name| claims.get(name).filter(|v| !v.is_null()));
        match value {
            Some(Value::String(list)) => Scopes::parse(list),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Scopes::default(),
        }
    }
}

/// What every token of one issuer must say besides being signed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected<'a> {
    /// `iss`, compared exactly (RFC 7519 §4.1.1; no normalisation: OpenID Connect Core §3.1.3.7 step 2).
    pub issuer: &'a str,
    /// When not empty, `aud` is required and must name one of these (RFC 7519 §4.1.3).
    pub audiences: &'a [String],
    /// Seconds of clock difference allowed on `exp` and `nbf` (RFC 7519 §4.1.4: "some small leeway").
    pub leeway: u64,
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, integer or not; fractions are dropped.
fn numeric_date(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64)),
        _ => None,
    }
}

impl Expected<'_> {
    /// Checks `iss`, `aud`, `exp` (required) and `nbf` (when present) at `now` (unix seconds); answers `exp`. `aud` is
    /// checked here, not by the JWT library: with an audience configured, a token without `aud` (or with `aud: null`)
    /// must be refused, and a library that checks `aud` only when present accepts it.
    pub fn check(&self, claims: &Map<String, Value>, now: i64) -> Result<i64, AuthError> {
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer) {
            return Err(AuthError::Invalid);
        }
        if !self.audiences.is_empty() {
            let ours = |aud: &Value| aud.as_str().is_some_and(|a| self.audiences.iter().any(|o| o == a));
            let accepted = match claims.get("aud") {
                Some(aud @ Value::String(_)) => ours(aud),
                Some(Value::Array(list)) => list.iter().all(Value::is_string) && list.iter().any(ours),
                _ => false,
            };
            if !accepted {
                return Err(AuthError::Invalid);
            }
        }
        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        let exp = claims.get("exp").and_then(numeric_date).ok_or(AuthError::Invalid)?;
        if now >= exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = numeric_date(nbf).ok_or(AuthError::Invalid)?;
            if nbf > now.saturating_add(leeway) {
                return Err(AuthError::Invalid);
            }
        }
        Ok(exp)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn iss() -> Arc<str> {
        Arc::from("https://id.example.com/")
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    const NOW: i64 = 1_700_000_000;

    fn expect<'a>(audiences: &'a [String]) -> Expected<'a> {
        Expected { issuer: "https://id.example.com/", audiences, leeway: 30 }
    }

    fn base() -> Value {
        json!({ "iss": "https://id.example.com/", "sub": "u1", "exp": NOW + 60 })
    }

    #[test]
    fn a_token_of_the_issuer_within_its_lifetime_passes_and_answers_its_expiry() {
        assert_eq!(expect(&[]).check(&claims(base()), NOW), Ok(NOW + 60));
        let mut fractional = base();
        fractional["exp"] = json!(NOW as f64 + 60.9);
        fractional["nbf"] = json!(NOW as f64 - 0.5);
        assert_eq!(expect(&[]).check(&claims(fractional), NOW), Ok(NOW + 60));
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        for iss in [json!("https://id.example.com"), json!("HTTPS://id.example.com/"), json!(null), json!(["x"])] {
            let mut c = base();
            c["iss"] = iss.clone();
            assert_eq!(expect(&[]).check(&claims(c), NOW), Err(AuthError::Invalid), "{iss}");
        }
        let mut c = base();
        c.as_object_mut().expect("object").remove("iss");
        assert_eq!(expect(&[]).check(&claims(c), NOW), Err(AuthError::Invalid));
    }

    #[test]
    fn with_an_audience_configured_aud_is_required_and_must_name_it() {
        let ours = ["kyc-gateway".to_owned(), "kyc-gateway-staging".to_owned()];
        let refused = [json!(null), json!("other"), json!(["other"]), json!([]), json!(7), json!(["kyc-gateway", 7])];
        for aud in refused {
            let mut c = base();
            c["aud"] = aud.clone();
            assert_eq!(expect(&ours).check(&claims(c), NOW), Err(AuthError::Invalid), "aud {aud}");
        }
        assert_eq!(expect(&ours).check(&claims(base()), NOW), Err(AuthError::Invalid), "no aud at all");
        for aud in [json!("kyc-gateway"), json!(["other", "kyc-gateway-staging"])] {
            let mut c = base();
            c["aud"] = aud.clone();
            assert!(expect(&ours).check(&claims(c), NOW).is_ok(), "aud {aud}");
        }
    }

    #[test]
    fn without_an_audience_configured_aud_is_not_looked_at() {
        let mut c = base();
        c["aud"] = json!("anything");
        assert!(expect(&[]).check(&claims(c), NOW).is_ok());
    }

    #[test]
    fn exp_is_required_and_the_leeway_applies_to_exp_and_nbf() {
        let with = |key: &str, value: Value| {
            let mut c = base();
            c[key] = value;
            expect(&[]).check(&claims(c), NOW)
        };
        assert_eq!(with("exp", json!(NOW - 29)), Ok(NOW - 29), "within the leeway");
        assert_eq!(with("exp", json!(NOW - 30)), Err(AuthError::Expired));
        assert_eq!(with("exp", json!("soon")), Err(AuthError::Invalid));
        assert!(with("nbf", json!(NOW + 30)).is_ok(), "within the leeway");
        assert_eq!(with("nbf", json!(NOW + 31)), Err(AuthError::Invalid), "not yet valid");
        assert_eq!(with("nbf", json!("now")), Err(AuthError::Invalid), "a malformed nbf is no nbf to ignore");
        let mut c = base();
        c.as_object_mut().expect("object").remove("exp");
        assert_eq!(expect(&[]).check(&claims(c), NOW), Err(AuthError::Invalid), "exp is required");
    }

    #[test]
    fn scopes_come_from_the_first_configured_claim_present() {
        let rules = ClaimRules::default();
        let p = rules.principal(&iss(), &claims(json!({ "sub": "u1", "scope": "uid:read contact:read" }))).expect("ok");
        assert!(p.has("uid:read") && p.has("contact:read"));
        let p = rules.principal(&iss(), &claims(json!({ "sub": "u1", "scp": ["uid:read", 7] }))).expect("ok");
        assert!(p.has("uid:read") && !p.has("7"));
        let p = rules.principal(&iss(), &claims(json!({ "sub": "u1", "scp": "uid:read contact:read" }))).expect("ok");
        assert!(p.has("contact:read"), "scp as a string");
        let p =
            rules.principal(&iss(), &claims(json!({ "sub": "u1", "scope": null, "scp": ["uid:read"] }))).expect("ok");
        assert!(p.has("uid:read"), "a null claim is an absent one");
        let p =
            rules.principal(&iss(), &claims(json!({ "sub": "u1", "scope": "a", "scp": ["uid:read"] }))).expect("ok");
        assert!(!p.has("uid:read"), "scope wins over scp");
        let custom = ClaimRules { scope_claims: vec!["permissions".into()], ..ClaimRules::default() };
        let p =
            custom.principal(&iss(), &claims(json!({ "sub": "u1", "scope": "a", "permissions": ["b"] }))).expect("ok");
        assert!(p.has("b") && !p.has("a"));
        let p = rules.principal(&iss(), &claims(json!({ "sub": "u1", "scope": { "a": 1 } }))).expect("ok");
        assert_eq!(p.scopes(), &Scopes::default(), "a scope claim of another type grants nothing");
    }

    #[test]
    fn sub_must_be_a_non_empty_string() {
        let rules = ClaimRules::default();
        for sub in [json!(""), json!(null), json!(42)] {
            assert_eq!(rules.principal(&iss(), &claims(json!({ "sub": sub }))), Err(AuthError::Invalid), "{sub}");
        }
        assert_eq!(rules.principal(&iss(), &claims(json!({}))), Err(AuthError::Invalid));
    }

    #[test]
    fn by_default_a_token_whose_client_id_is_its_sub_is_a_client_token() {
        let rules = ClaimRules::default();
        let client = rules.principal(&iss(), &claims(json!({ "sub": "mesh", "client_id": "mesh" }))).expect("ok");
        assert_eq!(client, Principal::Client { issuer: iss(), name: "mesh".into(), scopes: Scopes::default() });
        let user = rules.principal(&iss(), &claims(json!({ "sub": "u1", "client_id": "web-app" }))).expect("ok");
        assert_eq!(user.user_id().map(|u| u.as_str()), Some("u1"), "a user's token names its client too");
    }

    #[test]
    fn the_client_rules_parse_print_and_decide() {
        let is_client = |rule: &str, c: Value| {
            let rule: ClientRule = rule.parse().expect("a rule");
            assert_eq!(rule.to_string().parse::<ClientRule>(), Ok(rule.clone()), "{rule} round-trips");
            let c = claims(c);
            let sub = c["sub"].as_str().expect("sub").to_owned();
            rule.is_client(&c, &sub)
        };
        assert!(is_client("equals-sub:cid", json!({ "sub": "svc", "cid": "svc" })));
        assert!(!is_client("equals-sub:cid", json!({ "sub": "svc", "client_id": "svc" })));
        assert!(is_client("claim:gty=client-credentials", json!({ "sub": "x@clients", "gty": "client-credentials" })));
        assert!(!is_client("claim:gty=client-credentials", json!({ "sub": "u1", "gty": "password" })));
        assert!(is_client("sub-prefix:service:", json!({ "sub": "service:mesh" })));
        assert!(!is_client("sub-prefix:service:", json!({ "sub": "u1" })));
        assert!(is_client("sub-suffix:@clients", json!({ "sub": "abc@clients" })));
        assert!(!is_client("sub-suffix:@clients", json!({ "sub": "abc" })));
        for bad in ["", "client_id=sub", "equals-sub:", "claim:gty", "claim:=x", "sub-prefix:", "nonsense:x"] {
            assert!(bad.parse::<ClientRule>().is_err(), "{bad:?} is refused");
        }
        assert_eq!(ClientRule::default().to_string(), "equals-sub:client_id");
    }
}
