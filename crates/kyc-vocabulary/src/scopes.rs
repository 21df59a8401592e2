//! Scope names (Fractal-style OAuth scopes): what a token holds, and what a user grants Fractal.

/// Lets a token read users other than its own subject.
pub const USERS_READ: &str = "client.users:read";
/// The client's verification statistics.
pub const STATS_READ: &str = "client.stats:read";
/// The user's id.
pub const UID_READ: &str = "uid:read";
/// The user's emails and phones.
pub const CONTACT_READ: &str = "contact:read";
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

/// Every scope a user can grant about themselves: the id, contacts, and the case and details scope of every level
/// and add-on (what the gateway asks for when a user links Fractal, unless configured otherwise).
pub fn all_user_scopes() -> String {
    let mut scopes = vec![UID_READ.to_owned(), CONTACT_READ.to_owned()];
    for item in crate::LEVELS.iter().chain(crate::ADD_ONS.iter()) {
        scopes.push(verification_scope(item));
        scopes.push(details_scope(item));
    }
    scopes.join(" ")
}
