//! `ReviewResult`: a provider's review of a case, with its rejection labels explained as the provider documents them.

use async_graphql::{Enum, Object, SimpleObject};

use crate::domain::Review;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAnswer {
    /// Passed.
    Green,
    /// Not passed.
    Red,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectType {
    /// Blocked for good (fraud, or a client's decision not to accept such applicants).
    Final,
    /// May resubmit, e.g. a better photo.
    Retry,
}

/// One rejection label. A label the provider documents later passes through with null `description` and `final`.
#[derive(SimpleObject)]
pub struct RejectLabel {
    pub code: String,
    pub description: Option<&'static str>,
    /// Whether it is one of the provider's final labels (blocked for good) rather than a temporary one.
    #[graphql(name = "final")]
    pub is_final: Option<bool>,
}

pub struct ReviewResult(pub Review);

#[Object]
impl ReviewResult {
    async fn answer(&self) -> Option<ReviewAnswer> {
        match self.0.answer.as_deref() {
            Some("GREEN") => Some(ReviewAnswer::Green),
            Some("RED") => Some(ReviewAnswer::Red),
            _ => None,
        }
    }

    async fn reject_type(&self) -> Option<RejectType> {
        match self.0.reject_type.as_deref() {
            Some("FINAL") => Some(RejectType::Final),
            Some("RETRY") => Some(RejectType::Retry),
            _ => None,
        }
    }

    async fn reject_labels(&self) -> Vec<RejectLabel> {
        self.0
            .reject_labels
            .iter()
            .map(|l| RejectLabel { code: l.code.clone(), description: l.description, is_final: l.is_final })
            .collect()
    }

    /// A comment that may be shown to the applicant.
    async fn moderation_comment(&self) -> Option<&str> {
        self.0.moderation_comment.as_deref()
    }

    /// A comment for the company only: it may hold private information. Needs `review.internal:read`.
    #[graphql(requires_scopes = "review.internal:read")]
    async fn client_comment(&self) -> Option<&str> {
        self.0.client_comment.as_deref()
    }
}
