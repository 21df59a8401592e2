//! The sandbox Sila's entities: every other gateway user has a user handle with one or two Advanced KYC
//! verifications, together covering all eleven statuses of Sila's `/get_verifications` documentation with Alloy reason tags.

use super::wire::{Reasons, VerificationResponse, VerificationSummary};
use crate::rng::Rng;

/// The sandbox's KYC flows (uuids, as Sila's are); `KYC_GATEWAY_SILA_FLOWS` maps them to items.
pub const FLOW_STANDARD: &str = "5d9b9c3e-2f1a-4c11-9e51-1b7c1f3a0a01";
pub const FLOW_DOCUMENTS: &str = "5d9b9c3e-2f1a-4c11-9e51-1b7c1f3a0a02";

/// The items each KYC flow covers, as a gateway's level map reads them.
pub fn flow_items() -> String {
    format!("{FLOW_STANDARD}=basic+ssn; {FLOW_DOCUMENTS}=plus+selfie")
}

/// Seed 004's eleven statuses.
pub const STATUSES: [&str; 11] = [
    "unverified",
    "passed",
    "pending",
    "review",
    "failed",
    "member_failed",
    "member_review",
    "member_pending",
    "documents_required",
    "documents_received",
    "webhook_pending",
];

/// Alloy reason tags a verification in `status` carries (Sila's documentation; KYB tags for business members).
pub(crate) fn reasons(status: &str, i: usize) -> Vec<String> {
    let tags: &[&str] = match status {
        "passed" => &["KYC SSN Match", "KYC Name Match", "KYC DOB Match", "KYC Address Match"],
        "failed" => [&["SSN Not Verified", "Denied Fraud"][..], &["OFAC Match", "Name Not Verified"][..]][i % 2],
        "review" => &["KYC Review", "Watchlist Review", "Fraud Review"],
        "documents_required" => &["Address Not Verified", "DOB Not Verified", "SSN Miskey"],
        "member_failed" => &["FEIN Unmatched", "Company Name Not Matched"],
        "member_review" => &["Watchlist Warning", "Secretary of State Warning"],
        "member_pending" => &["Middesk Pending"],
        "documents_received" => &["Address Warning", "Phone Warning", "Email Warning"],
        "webhook_pending" => &["Velocity Warning", "Email Velocity", "SSN Velocity"],
        "pending" => &["SSN Warning", "Fraud Warning", "Fraud Risk", "DOB Miskey"],
        _ => &[],
    };
    tags.iter().map(|t| t.to_string()).collect()
}

/// One entity: its handle and its verifications in full.
#[derive(Debug, Clone)]
pub struct Entity {
    pub user_handle: String,
    pub verifications: Vec<VerificationResponse>,
}

impl Entity {
    pub fn summaries(&self) -> Vec<VerificationSummary> {
        self.verifications
            .iter()
            .map(|v| VerificationSummary {
                verification_uuid: v.verification_id.clone(),
                flow: v.flow.clone(),
                verification_status: v.verification_status.clone(),
                requested_at: v.requested_at,
            })
            .collect()
    }
}

fn verification(status: &str, flow: &str, i: usize, rng: &mut Rng) -> VerificationResponse {
    let requested_at = 1_700_000_000 + rng.below(40_000_000) as i64;
    let business = status.starts_with("member_");
    VerificationResponse {
        success: true,
        verification_id: rng.uuid(),
        requested_at,
        updated_at: requested_at + 33 + rng.below(86_400) as i64,
        entity_type: if business { "Business" } else { "User" }.into(),
        verification_status: status.into(),
        flow: flow.into(),
        checks_performed: vec!["priority_kyc".into()],
        parent_verification: None,
        reasons: Reasons { for_kyc_response: reasons(status, i) },
        kyc_action: kyc_action(status),
        certification_status: None,
        reference: rng.uuid(),
        status: "SUCCESS".into(),
        sila_reference_id: rng.uuid(),
    }
}

/// The action a verification in `status` asks of the entity.
pub(crate) fn kyc_action(status: &str) -> Option<String> {
    match status {
        "documents_required" => Some("doc_upload".into()),
        "review" | "member_review" => Some("review".into()),
        _ => None,
    }
}

/// Entities for the gateway users `users` (index 0 is the seed person, whose verification passed); handles are the
/// user ids themselves, as the default `KYC_GATEWAY_SILA_USER_HANDLE_TEMPLATE` derives them.
pub fn generate(users: &[String], seed: u64) -> Vec<Entity> {
    let mut rng = Rng::new(seed ^ 0x51a);
    let mut out = Vec::new();
    for (i, user) in users.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let mut verifications = Vec::new();
        if i == 0 {
            verifications.push(verification("passed", FLOW_STANDARD, i, &mut rng));
        } else {
            let status = STATUSES[(i / 2) % STATUSES.len()];
            verifications.push(verification(status, FLOW_STANDARD, i, &mut rng));
            if i % 3 == 0 {
                let second = STATUSES[(i / 2 + 5) % STATUSES.len()];
                verifications.push(verification(second, FLOW_DOCUMENTS, i, &mut rng));
            }
        }
        out.push(Entity { user_handle: user.clone(), verifications });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn entities_cover_all_eleven_statuses_with_reason_tags() {
        let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        let entities = generate(&users, 1);
        let statuses: HashSet<&str> =
            entities.iter().flat_map(|e| e.verifications.iter().map(|v| v.verification_status.as_str())).collect();
        assert_eq!(statuses.len(), STATUSES.len());
        assert!(entities
            .iter()
            .flat_map(|e| &e.verifications)
            .filter(|v| v.verification_status != "unverified")
            .all(|v| !v.reasons.for_kyc_response.is_empty()));
        assert_eq!(entities[0].verifications[0].verification_status, "passed");
    }
}
