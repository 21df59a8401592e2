//! Verification statistics: counts per status, and one user's verification of one level as a bulk statistics
//! answer reports it.

use super::KycState;

/// Verification counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, async_graphql::SimpleObject)]
pub struct StatusCounts {
    /// Users holding a credential for the level.
    pub approved: u64,
    /// Users refused a credential for the level.
    pub rejected: u64,
    /// Users waiting for their verification.
    pub pending: u64,
    /// Users the provider asked for more information.
    pub contacted: u64,
    /// Approvals whose proof of identity or address has expired.
    pub expired: u64,
}

/// One user's verification of one level, as the statistics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelVerification {
    /// The provider's own reference to the user.
    pub provider_user: String,
    /// The provider's level string.
    pub level: String,
    /// The provider's word: approved, pending, contacted, rejected or expired.
    pub status: String,
    /// Where the verification stands, in the gateway's words.
    pub state: KycState,
}
