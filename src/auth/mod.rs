//! Who is calling: bearer token -> [`Principal`] with its scopes (what it may read is decided in `authz/`). `token`
//! verifies (and, for the sandbox, mints) tokens, `jwks` holds the keys of issuers that publish them, `claims` checks
//! what a signed token says and reads the caller from it.

pub mod claims;
pub mod jwks;
pub mod token;

use crate::domain::UserId;
use std::collections::HashSet;

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

    /// Whether the token may see cases of item X (`verification.X:read`).
    pub fn reads_item(&self, item: &str) -> bool {
        self.items.contains(item)
    }

    /// Whether the token may see the details fields of item X (`verification.X.details:read`).
    pub fn reads_details_of(&self, item: &str) -> bool {
        self.details.contains(item)
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
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in person; `id` is the company's own user id (the token's `sub`).
    User { id: UserId, scopes: Scopes },
    /// A backend service or internal tool, acting for no user in particular.
    Client { name: String, scopes: Scopes },
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
}
