//! Every provider's status words -> [`KycState`]: the state table of docs/api.md, in one place and one test.

use super::{Credential, KycState};

/// Fractal: the credential decides once it is approved or rejected; a `contacted` case waits for the user; `expired`
/// (statistics) is its own state; everything else is pending. Seed 001's examples put the credential's word in
/// `status`, so it is read from there when `credential` is absent.
pub fn fractal(status: Option<&str>, credential: Option<&str>) -> (KycState, Option<Credential>) {
    let outcome = credential.or(status);
    let credential = match outcome {
        Some("approved") => Some(Credential::Approved),
        Some("rejected") => Some(Credential::Rejected),
        Some("pending") => Some(Credential::Pending),
        _ => credential.map(|_| Credential::Pending),
    };
    let state = match (status, outcome) {
        (_, Some("approved")) => KycState::Approved,
        (_, Some("rejected")) => KycState::Rejected,
        (Some("expired"), _) | (_, Some("expired")) => KycState::Expired,
        (Some("contacted"), _) => KycState::ActionRequired,
        _ => KycState::Pending,
    };
    (state, credential)
}

/// Sumsub: `reviewAnswer` counts only once `reviewStatus` is `completed`; a RED answer may be retried (RETRY) or not
/// (FINAL, and a RED answer without a type).
pub fn sumsub(review_status: &str, answer: Option<&str>, reject_type: Option<&str>) -> KycState {
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

/// Sila's eleven verification statuses (its `/get_verifications` documentation).
pub fn sila(status: &str) -> KycState {
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

/// ident's application statuses (ident's KYC application documentation); `failed` means the submission to the third party failed.
pub fn ident(status: &str) -> KycState {
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
    fn every_provider_status_maps_as_the_design_table_says() {
        let fractal_rows = [
            (Some("pending"), Some("pending"), Pending),
            (Some("contacted"), Some("pending"), ActionRequired),
            (Some("done"), Some("approved"), Approved),
            (Some("done"), Some("rejected"), Rejected),
            (Some("approved"), None, Approved),
            (Some("pending"), None, Pending),
            (Some("expired"), None, Expired),
        ];
        for (status, credential, state) in fractal_rows {
            assert_eq!(fractal(status, credential).0, state, "Fractal {status:?}/{credential:?}");
        }
        let sumsub_rows = [
            ("init", None, None, NotStarted),
            ("pending", None, None, Pending),
            ("queued", None, None, Pending),
            ("prechecked", None, None, Pending),
            ("onHold", None, None, InReview),
            ("completed", Some("GREEN"), None, Approved),
            ("completed", Some("RED"), Some("RETRY"), ActionRequired),
            ("completed", Some("RED"), Some("FINAL"), Rejected),
        ];
        for (status, answer, reject, state) in sumsub_rows {
            assert_eq!(sumsub(status, answer, reject), state, "Sumsub {status}/{answer:?}/{reject:?}");
        }
        let sila_rows = [
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
        for (status, state) in sila_rows {
            assert_eq!(sila(status), state, "Sila {status}");
        }
        let ident_rows = [
            ("accepted", Approved),
            ("failed", Error),
            ("pending", Pending),
            ("rejected", Rejected),
            ("remediate", ActionRequired),
            ("review", InReview),
            ("submitted", Pending),
        ];
        for (status, state) in ident_rows {
            assert_eq!(ident(status), state, "ident {status}");
        }
    }

    #[test]
    fn fractal_credentials_follow_the_outcome() {
        assert_eq!(fractal(Some("done"), Some("approved")).1, Some(Credential::Approved));
        assert_eq!(fractal(Some("contacted"), None).1, None);
    }
}
