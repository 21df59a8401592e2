//! The scopes the gateway understands (Fractal-style), by name. The table of what each grants is in docs/api.md.

/// Lets a token read users other than its own subject (`user`, `users`, `KycApplication.user`).
pub const USERS_READ: &str = "client.users:read";
/// `Query.verificationStats`.
pub const STATS_READ: &str = "client.stats:read";
/// `User.id`.
pub const UID_READ: &str = "uid:read";
/// `User.emails` and `User.phones`.
pub const CONTACT_READ: &str = "contact:read";
/// KYC applications (ident).
pub const KYC_APPLICATION_READ: &str = "kyc_application:read";
/// Creating KYC applications and updating their status.
pub const KYC_APPLICATION_WRITE: &str = "kyc_application:write";
/// What must not reach the applicant: Sumsub `clientComment`, Sila reason tags, ident `providerRepresentation` and
/// `description`.
pub const REVIEW_INTERNAL_READ: &str = "review.internal:read";
/// Every wallet, whatever its currency.
pub const WALLET_READ: &str = "verification.wallet:read";

/// `verification.X:read`: the cases whose level includes item X.
pub fn verification_scope(item: &str) -> String {
    format!("verification.{item}:read")
}

/// `verification.X.details:read`: the details fields that belong to item X.
pub fn details_scope(item: &str) -> String {
    format!("verification.{item}.details:read")
}

/// Every scope a user can grant Fractal about themselves: the id, contacts, and the case and details scope of every
/// level and add-on. What the gateway asks for when a user links Fractal (unless configured otherwise), and what a
/// sandbox user grants.
pub fn all_user_scopes() -> String {
    use crate::domain::levels::{FRACTAL_ADD_ONS, FRACTAL_LEVELS};
    let mut scopes = vec![UID_READ.to_owned(), CONTACT_READ.to_owned()];
    for item in FRACTAL_LEVELS.iter().chain(FRACTAL_ADD_ONS.iter()) {
        scopes.push(verification_scope(item));
        scopes.push(details_scope(item));
    }
    scopes.join(" ")
}

/// `verification.wallet-<currency>:read`: the wallets of one currency.
pub fn wallet_currency_scope(currency: &str) -> String {
    format!("verification.wallet-{currency}:read")
}
