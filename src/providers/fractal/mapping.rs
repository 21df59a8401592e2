//! Fractal's wire format -> the provider-neutral model.

use std::collections::HashMap;
use std::sync::Arc;

use super::models::{CaseWire, StatusCountsWire, UserInfo, UserVerificationWire};
use super::states;
use crate::domain::stats::{LevelVerification, StatusCounts};
use crate::domain::{level_items, Email, Phone, Provider, ProviderProfile, VerificationCase, Wallet, WalletCurrency};

fn case(uid: &str, wire: CaseWire) -> VerificationCase {
    let (state, credential) = states::state(wire.status.as_deref(), wire.credential.as_deref());
    VerificationCase {
        // Seed 001's examples carry no case id; a stable one keeps GraphQL clients' caches sound. Hashed, so the id
        // does not reveal the Fractal uid to a caller without `uid:read`.
        id: wire.id.unwrap_or_else(|| {
            let digest = ring::digest::digest(&ring::digest::SHA256, format!("{uid}\0{}", wire.level).as_bytes());
            format!("fractal-{}", hex::encode(&digest.as_ref()[..16]))
        }),
        provider: Provider::Fractal,
        items: level_items(&wire.level),
        provider_status: wire.status.or(wire.credential).unwrap_or_else(|| "pending".to_owned()),
        level: wire.level,
        state,
        credential,
        journey_completed: wire.journey_completed,
        details: wire.details.map(Arc::new),
        review: None,
        retryable: None,
        reasons: None,
        requested_at: None,
        updated_at: None,
    }
}

/// Maps `/v2/users/me` into a profile.
pub(crate) fn profile(info: UserInfo) -> ProviderProfile {
    let uid = info.uid.clone().unwrap_or_default();
    ProviderProfile {
        emails: info
            .emails
            .unwrap_or_default()
            .into_iter()
            .map(|e| Email { address: e.address, source_type: e.source_type })
            .collect(),
        phones: info.phones.unwrap_or_default().into_iter().map(|p| Phone { number: p.number }).collect(),
        wallets: info
            .wallets
            .unwrap_or_default()
            .into_iter()
            .filter_map(|w| {
                let currency = WalletCurrency::parse(&w.currency);
                if currency.is_none() {
                    tracing::debug!(currency = %w.currency, "skipping a wallet of an unknown currency");
                }
                Some(Wallet { id: w.id.map(Into::into), address: w.address, currency: currency?, verified: w.verified })
            })
            .collect(),
        cases: info.verification_cases.unwrap_or_default().into_iter().map(|c| case(&uid, c)).collect(),
    }
}

impl From<StatusCountsWire> for StatusCounts {
    fn from(wire: StatusCountsWire) -> Self {
        let get = |k: &str| wire.get(k).copied().unwrap_or(0);
        StatusCounts {
            approved: get("approved"),
            rejected: get("rejected"),
            pending: get("pending"),
            contacted: get("contacted"),
            expired: get("expired"),
        }
    }
}

impl From<UserVerificationWire> for LevelVerification {
    fn from(w: UserVerificationWire) -> Self {
        let (state, _) = states::state(Some(&w.credential), None);
        LevelVerification { provider_user: w.user_id, level: w.level, status: w.credential, state }
    }
}

/// The statistics' rows as verification cases, grouped by Fractal uid (what `kycState` aggregates).
pub(crate) fn cases_by_uid(rows: Vec<LevelVerification>) -> HashMap<String, Vec<VerificationCase>> {
    let mut by_uid: HashMap<String, Vec<VerificationCase>> = HashMap::new();
    for row in rows {
        let items = level_items(&row.level);
        let case = VerificationCase::new(Provider::Fractal, row.level.clone(), row.level, items, row.state, row.status);
        by_uid.entry(row.provider_user).or_default().push(case);
    }
    by_uid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KycState;

    #[test]
    fn seed_001_first_example_parses_with_its_odd_phones_key() {
        let json = r#"{"emails":[{"address":"a@b.c","source_type":"registration"}],"phones:":[{"number":"+44000000000"}],
            "uid":"b76ab44d-b71e-4d19-b6f9-f6e88cd73946",
            "verification_cases":[{"details":null,"level":"plus+selfie","status":"pending"}]}"#;
        let p = profile(serde_json::from_str(json).expect("seed example parses"));
        assert_eq!(p.phones[0].number, "+44000000000");
        assert_eq!(p.cases[0].items, ["plus", "selfie"]);
        assert_eq!(p.cases[0].state, KycState::Pending);
    }
}
