//! `VerificationCase`: one verification of one level at one provider. Only cases whose every level item the caller
//! may read are ever built (see `User.verificationCases`), so its own fields need no further check.

use std::sync::Arc;

use async_graphql::{Object, ID};

use super::details::VerificationDetails;
use crate::domain::{self, Credential, KycState, Provider};

pub struct VerificationCase {
    case: domain::VerificationCase,
    items: Arc<Vec<String>>,
}

impl VerificationCase {
    pub fn new(case: domain::VerificationCase) -> Self {
        let items = Arc::new(case.items.clone());
        VerificationCase { case, items }
    }
}

#[Object]
impl VerificationCase {
    async fn id(&self) -> ID {
        ID(self.case.id.clone())
    }

    async fn provider(&self) -> Provider {
        self.case.provider
    }

    /// The provider's level string, e.g. `plus+selfie`.
    async fn level(&self) -> &str {
        &self.case.level
    }

    /// The Fractal-style items of the level: `plus+selfie` -> `["plus", "selfie"]`.
    async fn level_items(&self) -> &[String] {
        &self.items
    }

    /// Where the verification stands, in the gateway's words.
    async fn state(&self) -> KycState {
        self.case.state
    }

    /// The provider's own status word (Fractal: `pending`, `contacted`, `done`).
    async fn provider_status(&self) -> &str {
        &self.case.provider_status
    }

    /// The outcome of the provider's analysis.
    async fn credential(&self) -> Option<Credential> {
        self.case.credential
    }

    /// Whether the user completed every step of the journey.
    async fn journey_completed(&self) -> Option<bool> {
        self.case.journey_completed
    }

    /// The validated personal data of this case; each field is guarded by its own details scope.
    async fn details(&self) -> Option<VerificationDetails> {
        let values = self.case.details.clone()?;
        Some(VerificationDetails::new(self.items.clone(), values))
    }
}
