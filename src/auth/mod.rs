//! Who is calling and what they may read: bearer token -> [`Principal`] with its scopes.

pub mod token;

use std::collections::HashSet;

/// Scope that lets a token read users other than its own subject.
pub const USERS_READ: &str = "client.users:read";
/// Scope for `Query.verificationStats`.
pub const STATS_READ: &str = "client.stats:read";
/// Scope for `User.id`.
pub const UID_READ: &str = "uid:read";
/// Scope for `User.emails` and `User.phones`.
pub const CONTACT_READ: &str = "contact:read";
/// Scope for KYC applications (ident).
pub const KYC_APPLICATION_READ: &str = "kyc_application:read";
/// Scope for creating KYC applications and updating their status.
pub const KYC_APPLICATION_WRITE: &str = "kyc_application:write";
/// Scope for what must not reach the applicant: Sumsub `clientComment`, Sila reason tags, ident
/// `providerRepresentation`.
pub const REVIEW_INTERNAL_READ: &str = "review.internal:read";
/// Scope for every wallet, whatever its currency.
pub const WALLET_READ: &str = "verification.wallet:read";

/// `verification.X:read`: the cases whose level includes item X.
pub fn verification_scope(item: &str) -> String {
    format!("verification.{item}:read")
}

/// `verification.X.details:read`: the details fields that belong to item X.
pub fn details_scope(item: &str) -> String {
    format!("verification.{item}.details:read")
}

/// `verification.wallet-<currency>:read`: the wallets of one currency.
pub fn wallet_currency_scope(currency: &str) -> String {
    format!("verification.wallet-{currency}:read")
}

/// The scopes a token carries (`scope` claim, space separated, or `scp` array).
///
/// The items of `verification.X:read` and `verification.X.details:read` are indexed when the token is read: the
/// scope rules ask about items for every case of every user in a list, and must not build a string to ask.
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
        assert!(s.has("uid:read") && s.has(&verification_scope("plus")) && s.has(&details_scope("selfie")));
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in person; `id` is the company's own user id (the token's `sub`).
    User { id: String, scopes: Scopes },
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
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Principal::User { id, .. } => Some(id),
            Principal::Client { .. } => None,
        }
    }

    /// Row-level rule: a token reads its own user, and other users only with `client.users:read`.
    pub fn may_read_user(&self, user_id: &str) -> bool {
        self.user_id() == Some(user_id) || self.has(USERS_READ)
    }
}
