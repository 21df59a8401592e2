//! Fractal's status words -> [`KycState`] (the state table in docs/api.md, "Provider states").

use crate::domain::{Credential, KycState};

/// Fractal: the credential decides once it is approved or rejected; a `contacted` case waits for the user; `expired`
/// (statistics) is its own state; everything else is pending. Seed 001's examples put the credential's word in
/// `status`, so it is read from there when `credential` is absent.
pub fn state(status: Option<&str>, credential: Option<&str>) -> (KycState, Option<Credential>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use KycState::*;

    #[test]
    fn every_fractal_status_maps_as_the_state_table_says() {
        let rows = [
            (Some("pending"), Some("pending"), Pending),
            (Some("contacted"), Some("pending"), ActionRequired),
            (Some("done"), Some("approved"), Approved),
            (Some("done"), Some("rejected"), Rejected),
            (Some("approved"), None, Approved),
            (Some("pending"), None, Pending),
            (Some("expired"), None, Expired),
        ];
        for (status, credential, expected) in rows {
            assert_eq!(state(status, credential).0, expected, "{status:?}/{credential:?}");
        }
    }

    #[test]
    fn credentials_follow_the_outcome() {
        assert_eq!(state(Some("done"), Some("approved")).1, Some(Credential::Approved));
        assert_eq!(state(Some("contacted"), None).1, None);
    }
}
