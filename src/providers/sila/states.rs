//! Sila's status words -> [`KycState`] (the state table in docs/api.md, "Provider states").

use crate::domain::KycState;

/// Sila's eleven verification statuses (its `/get_verifications` documentation).
pub fn state(status: &str) -> KycState {
    match status {
        "unverified" => KycState::NotStarted,
        "pending" | "member_pending" | "webhook_pending" | "documents_received" => KycState::Pending,
        "documents_required" => KycState::ActionRequired,
        "review" | "member_review" => KycState::InReview,
        "passed" => KycState::Approved,
        "failed" | "member_failed" => KycState::Rejected,
        _ => KycState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KycState::*;

    #[test]
    fn every_sila_status_maps_as_the_state_table_says() {
        let rows = [
            ("unverified", NotStarted),
            ("passed", Approved),
            ("pending", Pending),
            ("review", InReview),
            ("failed", Rejected),
            ("member_failed", Rejected),
            ("member_review", InReview),
            ("member_pending", Pending),
            ("documents_required", ActionRequired),
            ("documents_received", Pending),
            ("webhook_pending", Pending),
        ];
        for (status, expected) in rows {
            assert_eq!(state(status), expected, "{status}");
        }
    }
}
