//! KYC applications: applications a provider dispatches to a third-party verifier, their statuses and the transition
//! table the gateway enforces before any update leaves it (the provider's documentation says a status "must be a
//! valid state transition" but accepts any).

use serde_json::Value;
use time::OffsetDateTime;

use super::{KycState, Provider, VerificationCase};

/// The status of a KYC application.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KycApplicationStatus {
    /// Being submitted to the third-party provider.
    Pending,
    /// Submitted; no decision yet.
    Submitted,
    /// Being processed by the third-party provider.
    Review,
    /// Needs remediation: similar to another application, or other risk factors.
    Remediate,
    /// Accepted by the provider, or by remediation.
    Accepted,
    /// Rejected by the provider's AI, or by remediation.
    Rejected,
    /// The submission to the provider failed.
    Failed,
}

impl KycApplicationStatus {
    /// Every status, in the provider's order.
    pub const ALL: [KycApplicationStatus; 7] = [
        KycApplicationStatus::Pending,
        KycApplicationStatus::Submitted,
        KycApplicationStatus::Review,
        KycApplicationStatus::Remediate,
        KycApplicationStatus::Accepted,
        KycApplicationStatus::Rejected,
        KycApplicationStatus::Failed,
    ];

    /// The provider's word.
    pub fn as_str(self) -> &'static str {
        match self {
            KycApplicationStatus::Pending => "pending",
            KycApplicationStatus::Submitted => "submitted",
            KycApplicationStatus::Review => "review",
            KycApplicationStatus::Remediate => "remediate",
            KycApplicationStatus::Accepted => "accepted",
            KycApplicationStatus::Rejected => "rejected",
            KycApplicationStatus::Failed => "failed",
        }
    }

    /// The status of the provider's word, if it is one.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// The states an application may move to from this one (the transition table; accepted and rejected are final).
    pub fn allowed_next(self) -> &'static [KycApplicationStatus] {
        use KycApplicationStatus::*;
        match self {
            Pending => &[Submitted, Failed],
            Submitted => &[Review, Remediate, Accepted, Rejected, Failed],
            Review => &[Remediate, Accepted, Rejected],
            Remediate => &[Accepted, Rejected],
            Failed => &[Pending],
            Accepted | Rejected => &[],
        }
    }

    /// Whether the transition table allows moving from this status to `next`.
    pub fn may_become(self, next: KycApplicationStatus) -> bool {
        self.allowed_next().contains(&next)
    }
}

/// `kyc` for a person, `kyb` for a business.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KycApplicationType {
    /// Know your customer: a person.
    Kyc,
    /// Know your business: a company.
    Kyb,
}

impl KycApplicationType {
    /// The provider's word.
    pub fn as_str(self) -> &'static str {
        match self {
            KycApplicationType::Kyc => "kyc",
            KycApplicationType::Kyb => "kyb",
        }
    }

    /// The type of the provider's word, if it is one.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "kyc" => Some(KycApplicationType::Kyc),
            "kyb" => Some(KycApplicationType::Kyb),
            _ => None,
        }
    }
}

/// A KYC application as the gateway models it.
#[derive(Debug, Clone)]
pub struct KycApplication {
    /// The provider's id of the application.
    pub id: String,
    /// When the application was created.
    pub created_at: Option<OffsetDateTime>,
    /// Who it is about, in the provider's terms (the gateway user id by default).
    pub user_id: Option<String>,
    /// `vouched` or `identitymind`.
    pub provider: String,
    /// The third party's reference.
    pub identifier: Option<String>,
    /// Whether a person or a business applies.
    pub kind: KycApplicationType,
    /// The provider's status word; unknown words keep `status` None.
    pub status_word: String,
    /// The status, when it is one the gateway knows.
    pub status: Option<KycApplicationStatus>,
    /// Where the application stands, in the gateway's words.
    pub state: KycState,
    /// The applicant's name (personal data).
    pub name: Option<String>,
    /// The provider's explanation of the outcome (internal).
    pub description: Option<String>,
    /// Personal data sent to the provider.
    pub params: Option<Value>,
    /// The provider's own view, internals included.
    pub provider_representation: Option<Value>,
}

impl KycApplication {
    /// The application as a case at `provider` of its type, covering `items`, for `kycState`.
    pub fn as_case(&self, provider: Provider, items: Vec<String>) -> VerificationCase {
        let kind = self.kind.as_str();
        VerificationCase::new(provider, self.id.clone(), kind.into(), items, self.state, self.status_word.clone())
    }
}

// Also the GraphQL input `KycApplicationParamsInput`: the API and the provider client share one definition.
/// What to send to the third-party provider. Every field is optional; those given are checked.
#[derive(Debug, Clone, Default, async_graphql::InputObject)]
#[graphql(name = "KycApplicationParamsInput")]
pub struct ApplicationParams {
    /// The applicant's first name.
    pub first_name: Option<String>,
    /// The applicant's last name.
    pub last_name: Option<String>,
    /// Full name, for a KYB application the company's.
    pub name: Option<String>,
    /// `YYYY-MM-DD`, not in the future.
    pub date_of_birth: Option<String>,
    /// The applicant's email address.
    pub email: Option<String>,
    /// The number of the applicant's identity document.
    pub id_number: Option<String>,
    /// US social security number, `123-45-6789` or nine digits.
    pub ssn: Option<String>,
    /// Document and selfie images (URLs or base64, as the provider takes them).
    pub id_photo: Option<String>,
    /// The back of the identity document.
    pub id_photo_back: Option<String>,
    /// A selfie of the applicant.
    pub selfie: Option<String>,
    /// A selfie video of the applicant.
    pub selfie_video: Option<String>,
    /// Where the provider reports back; must be `https://`.
    pub webhook_url: Option<String>,
    /// The affiliate the application comes through, for the provider.
    pub affiliate_id: Option<String>,
    /// The provider's verification type, e.g. `id-verification`.
    pub verification_type: Option<String>,
    /// Passed to the provider untouched (its nested `params`); must be an object.
    pub provider_params: Option<async_graphql::Json<Value>>,
}

/// A KYC application to create.
#[derive(Debug, Clone)]
pub struct NewKycApplication {
    /// The applicant, in the provider's terms.
    pub provider_user: String,
    /// `vouched` or `identitymind`.
    pub provider: String,
    /// Whether a person or a business applies.
    pub kind: KycApplicationType,
    /// The applicant's name.
    pub name: Option<String>,
    /// A note about the application.
    pub description: Option<String>,
    /// What to send to the third-party provider.
    pub params: ApplicationParams,
}

#[cfg(test)]
mod tests {
    use super::KycApplicationStatus::*;

    #[test]
    fn the_transition_table_allows_settling_remediation_and_nothing_from_final_states() {
        assert!(Remediate.may_become(Accepted) && Remediate.may_become(Rejected));
        assert!(!Pending.may_become(Accepted));
        assert!(Accepted.allowed_next().is_empty() && Rejected.allowed_next().is_empty());
        assert!(Failed.may_become(Pending));
    }
}
