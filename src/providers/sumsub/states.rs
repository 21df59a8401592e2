//! Sumsub's status words -> [`KycState`] (the state table in docs/api.md, "Provider states").

use crate::domain::KycState;

/// Sumsub: `reviewAnswer` counts only once `reviewStatus` is `completed`; a RED answer may be retried (RETRY) or not
/// (FINAL, and a RED answer without a type).
pub fn state(review_status: &str, answer: Option<&str>, reject_type: Option<&str>) -> KycState {
    match (review_status, answer, reject_type) {
        ("init", _, _) => KycState::NotStarted,
        ("pending" | "queued" | "prechecked", _, _) => KycState::Pending,
        ("onHold", _, _) => KycState::InReview,
        ("completed", Some("GREEN"), _) => KycState::Approved,
        ("completed", Some("RED"), Some("RETRY")) => KycState::ActionRequired,
        ("completed", Some("RED"), _) => KycState::Rejected,
        // Completed without an answer, or a status Sumsub added since: still with Sumsub.
        _ => KycState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KycState::*;

    #[test]
    fn every_sumsub_status_maps_as_the_state_table_says() {
        let rows = [
            ("init", None, None, NotStarted),
            ("pending", None, None, Pending),
            ("queued", None, None, Pending),
            ("prechecked", None, None, Pending),
            ("onHold", None, None, InReview),
            ("completed", Some("GREEN"), None, Approved),
            ("completed", Some("RED"), Some("RETRY"), ActionRequired),
            ("completed", Some("RED"), Some("FINAL"), Rejected),
        ];
        for (status, answer, reject, expected) in rows {
            assert_eq!(state(status, answer, reject), expected, "{status}/{answer:?}/{reject:?}");
        }
    }
}
