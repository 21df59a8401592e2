//! Verification statistics: counts per status, and one user's verification of one level as a bulk statistics
//! answer reports it (Fractal's `/v2/stats/*`).

use super::KycState;

/// Verification counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, async_graphql::SimpleObject)]
pub struct StatusCounts {
    pub approved: u64,
    pub rejected: u64,
    pub pending: u64,
    pub contacted: u64,
    pub expired: u64,
}

/// One user's verification of one level, as the statistics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelVerification {
    /// The provider's own user reference (the Fractal uid).
    pub provider_user: String,
    pub level: String,
    /// The provider's word: approved, pending, contacted, rejected or expired.
    pub status: String,
    pub state: KycState,
}
