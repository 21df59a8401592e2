//! Who is calling: bearer token -> [`Principal`] with its scopes (what it may read is decided in `authz/`). `token`
//! verifies (and, for the sandbox, mints) tokens, `jwks` holds the keys of issuers that publish them, `claims` checks
//! what a signed token says and reads the caller from it.

pub mod claims;
pub mod jwks;
pub mod token;

use crate::domain::UserId;
use std::collections::HashSet;
use std::sync::Arc;

/// The scopes a token carries (by default the `scope` claim, space separated, or `scp`; see [`claims::ClaimRules`]).
/// The items of `verification.X:read` and `verification.X.details:read` are indexed when the token is read: the scope
/// rules ask about every case of every user in a list, and must not build a string to ask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    all: HashSet<String>,
    items: HashSet<String>,
    details: HashSet<String>,
}

impl Scopes {
    pub fn parse(space_separated: &str) -> Self {
        space_separated.split_whitespace().map(str::to_owned).collect()
    }

    pub fn has(&self, scope: &str) -> bool {
        self.all.contains(scope)
    }

    /// Every scope, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.all.iter().map(String::as_str)
    }

    /// Only the scopes `grants` allows: what an issuer may grant bounds what its tokens say (`KYC_GATEWAY_JWT_ISSUER_SCOPES`).
    pub fn granted_by(self, grants: &ScopeGrants) -> Self {
        self.all.into_iter().filter(|scope| grants.allows(scope)).collect()
    }

    /// Whether the token may see cases of item X (`verification.X:read`).
    pub fn reads_item(&self, item: &str) -> bool {
        self.items.contains(item)
    }

    /// Whether the token may see cases of some item.
    pub fn reads_any_item(&self) -> bool {
        !self.items.is_empty()
    }

    /// Whether the token may see the details fields of some item.
    pub fn reads_any_details(&self) -> bool {
        !self.details.is_empty()
    }

    /// Whether the token may see the details fields of item X (`verification.X.details:read`).
    pub fn reads_details_of(&self, item: &str) -> bool {
        self.details.contains(item)
    }
}

/// The scopes an issuer may grant: exact names, and `prefix*` for every scope starting with `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeGrants {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl ScopeGrants {
    pub fn parse(space_separated: &str) -> Self {
        let mut grants = ScopeGrants::default();
        for scope in space_separated.split_whitespace() {
            match scope.strip_suffix('*') {
                Some(prefix) => grants.prefixes.push(prefix.to_owned()),
                None => {
                    grants.exact.insert(scope.to_owned());
                }
            }
        }
        grants
    }

    pub fn allows(&self, scope: &str) -> bool {
        self.exact.contains(scope) || self.prefixes.iter().any(|prefix| scope.starts_with(prefix.as_str()))
    }
}

impl FromIterator<String> for Scopes {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let all: HashSet<String> = iter.into_iter().collect();
        let inner = |scope: &String| scope.strip_prefix("verification.")?.strip_suffix(":read").map(str::to_owned);
        let mut items = HashSet::new();
        let mut details = HashSet::new();
        for item in all.iter().filter_map(inner) {
            match item.strip_suffix(".details") {
                Some(of) => details.insert(of.to_owned()),
                None => items.insert(item),
            };
        }
        Scopes { all, items, details }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_scopes_are_indexed_both_ways() {
        let s = Scopes::parse(
            "uid:read verification.plus:read verification.wallet-eth:read verification.selfie.details:read",
        );
        assert!(s.reads_item("plus") && s.reads_item("wallet-eth") && !s.reads_item("selfie"));
        assert!(s.reads_details_of("selfie") && !s.reads_details_of("plus"));
        assert!(s.has("uid:read") && s.has("verification.plus:read") && s.has("verification.selfie.details:read"));
    }

    #[test]
    fn one_subject_of_two_issuers_or_two_kinds_is_two_callers() {
        let user = |issuer: &str| Principal::User {
            issuer: issuer.into(),
            id: UserId::parse("u1").expect("an id"),
            scopes: Scopes::default(),
        };
        let client = Principal::Client { issuer: "https://a/".into(), name: "u1".into(), scopes: Scopes::default() };
        assert_ne!(user("https://a/").key(), user("https://b/").key());
        assert_ne!(user("https://a/").key(), client.key());
        assert_eq!(user("https://a/").key(), user("https://a/").key());
        let spelled = Principal::Client { issuer: "x:1".into(), name: "y".into(), scopes: Scopes::default() };
        let other = Principal::Client { issuer: "x".into(), name: "1:y".into(), scopes: Scopes::default() };
        assert_ne!(spelled.key(), other.key(), "no issuer and subject spell another pair's key");
    }

    #[test]
    fn an_issuer_s_grants_bound_the_scopes_of_its_tokens() {
        let grants = ScopeGrants::parse("uid:read verification.plus*");
        let s = Scopes::parse(
            "uid:read email:read verification.plus:read verification.plus.details:read client.users:read",
        )
        .granted_by(&grants);
        assert!(s.has("uid:read") && s.reads_item("plus") && s.reads_details_of("plus"));
        assert!(!s.has("email:read") && !s.has("client.users:read"));
        assert_eq!(Scopes::parse("uid:read").granted_by(&ScopeGrants::default()), Scopes::default(), "none granted");
    }
}

/// The authenticated caller of one request: `(issuer, kind, subject)`, and the scopes its issuer let it have. Two
/// tokens are one caller only when all three agree: a subject of one issuer never acts as another issuer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in person; `id` is the company's own user id (the `sub` of the issuer that names users).
    User { issuer: Arc<str>, id: UserId, scopes: Scopes },
    /// A backend service or internal tool, acting for no user in particular.
    Client { issuer: Arc<str>, name: String, scopes: Scopes },
}

impl Principal {
    pub fn scopes(&self) -> &Scopes {
        match self {
            Principal::User { scopes, .. } | Principal::Client { scopes, .. } => scopes,
        }
    }

    pub fn has(&self, scope: &str) -> bool {
        self.scopes().has(scope)
    }

    /// The user this token speaks for, if it is a user token.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Principal::User { id, .. } => Some(id),
            Principal::Client { .. } => None,
        }
    }

    /// The `iss` of the token.
    pub fn issuer(&self) -> &str {
        match self {
            Principal::User { issuer, .. } | Principal::Client { issuer, .. } => issuer,
        }
    }

    /// `user` or `client`, as the audit trail records it.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::User { .. } => "user",
            Principal::Client { .. } => "client",
        }
    }

    /// The token's `sub`: the user's id or the client's.
    pub fn subject(&self) -> &str {
        match self {
            Principal::User { id, .. } => id.as_str(),
            Principal::Client { name, .. } => name,
        }
    }

    /// The same caller with only the scopes `grants` allows.
    pub fn granted_by(self, grants: &ScopeGrants) -> Self {
        match self {
            Principal::User { issuer, id, scopes } => Principal::User { issuer, id, scopes: scopes.granted_by(grants) },
            Principal::Client { issuer, name, scopes } => {
                Principal::Client { issuer, name, scopes: scopes.granted_by(grants) }
            }
        }
    }

    /// One key per `(issuer, kind, subject)`, what per-caller limits count under. The issuer's length comes first,
    /// so no issuer and subject can spell another pair's key.
    pub fn key(&self) -> String {
        let issuer = self.issuer();
        format!("{}:{}:{issuer}:{}", self.kind(), issuer.len(), self.subject())
    }
}
