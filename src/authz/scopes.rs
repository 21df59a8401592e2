//! The scopes the gateway understands (Fractal-style), by name. The table of what each grants is in the README.

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

/// `verification.wallet-<currency>:read`: the wallets of one currency.
pub fn wallet_currency_scope(currency: &str) -> String {
    format!("verification.wallet-{currency}:read")
}
