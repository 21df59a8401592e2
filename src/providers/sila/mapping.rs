//! A Sila verification -> a verification case. Its flow maps to items through configuration; its reason tags are
//! fetched only when a caller with `review.internal:read` asks for them.

use time::OffsetDateTime;

use super::models::VerificationSummary;
use super::states;
use crate::domain::levels::LevelMap;
use crate::domain::{Credential, KycState, Provider, Reasons, ReasonsRef, VerificationCase};

pub fn case(user_handle: &str, v: &VerificationSummary, flows: &LevelMap) -> VerificationCase {
    let state = states::state(&v.verification_status);
    let mut case = VerificationCase::new(
        Provider::Sila,
        v.verification_uuid.clone(),
        v.flow.clone(),
        flows.items(&v.flow),
        state,
        v.verification_status.clone(),
    );
    case.credential = Some(match state {
        KycState::Approved => Credential::Approved,
        KycState::Rejected => Credential::Rejected,
        _ => Credential::Pending,
    });
    case.retryable = Some(v.verification_status == "documents_required");
    let reference = ReasonsRef { provider: Provider::Sila, subject: user_handle.to_owned(), id: v.verification_uuid.clone() };
    case.reasons = Some(Reasons::Fetched(reference));
    case.requested_at = OffsetDateTime::from_unix_timestamp(v.requested_at).ok();
    case
}
