//! The scopes the gateway understands, by name (the table of what each grants is in docs/api.md). The words shared
//! with the sandbox providers come from `kyc-vocabulary`.

pub use kyc_vocabulary::scopes::{
    all_user_scopes, details_scope, verification_scope, wallet_currency_scope, CONTACT_READ, STATS_READ, UID_READ,
    USERS_READ, WALLET_READ,
};

/// KYC applications.
pub const KYC_APPLICATION_READ: &str = "kyc_application:read";
/// Creating KYC applications and updating their status.
pub const KYC_APPLICATION_WRITE: &str = "kyc_application:write";
/// What must not reach the applicant: reviews' internal comments, reason tags, applications' provider
/// representation and description.
pub const REVIEW_INTERNAL_READ: &str = "review.internal:read";
