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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(HashSet<String>);

impl Scopes {
    pub fn parse(space_separated: &str) -> Self {
        Scopes(space_separated.split_whitespace().map(str::to_owned).collect())
    }

    pub fn has(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether the token may see cases of item X.
    pub fn reads_item(&self, item: &str) -> bool {
        self.has(&verification_scope(item))
    }

    /// Whether the token may see the details fields of item X.
    pub fn reads_details_of(&self, item: &str) -> bool {
        self.has(&details_scope(item))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl FromIterator<String> for Scopes {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Scopes(iter.into_iter().collect())
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
