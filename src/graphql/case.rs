//! `VerificationCase`: one verification of one level at one provider. Only cases whose every level item the caller
//! may read are ever built (see `User.verificationCases`), so its own fields need no further check.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use time::OffsetDateTime;

use super::details::VerificationDetails;
use super::errors;
use super::review::ReviewResult;
use super::user_data;
use crate::domain::{self, Credential, KycState, Provider, Reasons, UserId};

pub struct VerificationCase {
    /// The gateway user the case is about.
    user: UserId,
    case: domain::VerificationCase,
    items: Arc<Vec<String>>,
}

impl VerificationCase {
    pub fn new(user: UserId, case: domain::VerificationCase) -> Self {
        let items = Arc::new(case.items.clone());
        VerificationCase { user, case, items }
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

    /// The items of the level, what the scopes are about: `plus+selfie` -> `["plus", "selfie"]`.
    async fn level_items(&self) -> &[String] {
        &self.items
    }

    /// Where the verification stands, in the gateway's words.
    async fn state(&self) -> KycState {
        self.case.state
    }

    /// The provider's own status word.
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

    /// Whether the applicant may submit again.
    async fn retryable(&self) -> Option<bool> {
        self.case.retryable
    }

    /// The validated personal data of this case; each field is guarded by its own details scope.
    async fn details(&self, ctx: &Context<'_>) -> Option<VerificationDetails> {
        let values = self.case.details.clone()?;
        super::access::note_subject(ctx, &self.user);
        Some(VerificationDetails::new(self.items.clone(), values))
    }

    /// The provider's review: answer, rejection type and labels, comments.
    async fn review(&self, ctx: &Context<'_>) -> Option<ReviewResult> {
        let review = self.case.review.clone()?;
        // The review's client comment is personal: whose it is.
        super::access::note_subject(ctx, &self.user);
        Some(ReviewResult(review))
    }

    /// The provider's reason tags. They explain a decision to the company and must not reach the applicant: needs
    /// `review.internal:read`.
    #[graphql(requires_scopes = "review.internal:read")]
    async fn reasons(&self, ctx: &Context<'_>) -> Result<Option<Vec<String>>> {
        super::access::note_subject(ctx, &self.user);
        let reference = match &self.case.reasons {
            None => return Ok(None),
            Some(Reasons::Carried(tags)) => return Ok(Some(tags.as_ref().clone())),
            Some(Reasons::Fetched(reference)) => reference,
        };
        let reasons = user_data::reasons(ctx, &self.user, reference)
            .await
            .map_err(|e| errors::provider(reference.provider, &e))?;
        Ok(reasons.map(|r| r.as_ref().clone()))
    }

    /// When the verification was requested.
    async fn requested_at(&self) -> Option<OffsetDateTime> {
        self.case.requested_at
    }

    /// When the provider last changed it.
    async fn updated_at(&self) -> Option<OffsetDateTime> {
        self.case.updated_at
    }
}
