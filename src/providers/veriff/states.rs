//! Veriff's decision words -> [`KycState`] (the state table in docs/api.md, "Provider states").

use crate::domain::KycState;

/// The provider status of a session whose decision is not ready (`verification: null`): Veriff has no word for it.
pub const NO_DECISION: &str = "decision_pending";

/// Veriff's six decision statuses (its "Verification session decisions" page). `expired` (never opened) and
/// `abandoned` (started, never finished) both end the session unverified after 7 days: EXPIRED, start again.
pub fn state(status: &str) -> KycState {
    match status {
        "approved" => KycState::Approved,
        "declined" => KycState::Rejected,
        "resubmission_requested" => KycState::ActionRequired,
        "review" => KycState::InReview,
        "expired" | "abandoned" => KycState::Expired,
        // No decision yet, or a status Veriff added since: still with Veriff.
        _ => KycState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KycState::*;

    #[test]
    fn every_veriff_decision_maps_as_the_state_table_says() {
        let rows = [
            ("approved", Approved),
            ("declined", Rejected),
            ("resubmission_requested", ActionRequired),
            ("review", InReview),
            ("expired", Expired),
            ("abandoned", Expired),
            (NO_DECISION, Pending),
        ];
        for (status, expected) in rows {
            assert_eq!(state(status), expected, "{status}");
        }
    }
}
