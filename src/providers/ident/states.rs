//! ident's status words -> [`KycState`] (the state table in docs/api.md, "Provider states").

use crate::domain::KycState;

/// ident's application statuses (ident's KYC application documentation); `failed` means the submission to the third party failed.
pub fn state(status: &str) -> KycState {
    match status {
        "pending" | "submitted" => KycState::Pending,
        "remediate" => KycState::ActionRequired,
        "review" => KycState::InReview,
        "accepted" => KycState::Approved,
        "rejected" => KycState::Rejected,
        "failed" => KycState::Error,
        _ => KycState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KycState::*;

    #[test]
    fn every_ident_status_maps_as_the_state_table_says() {
        let rows = [
            ("accepted", Approved),
            ("failed", Error),
            ("pending", Pending),
            ("rejected", Rejected),
            ("remediate", ActionRequired),
            ("review", InReview),
            ("submitted", Pending),
        ];
        for (status, expected) in rows {
            assert_eq!(state(status), expected, "{status}");
        }
    }
}
