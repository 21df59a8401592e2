//! The provider-neutral model: what every provider's answer is mapped into before the GraphQL layer sees it.
#![deny(missing_docs)]

pub mod application;
pub mod events;
pub mod ids;
pub mod levels;
pub mod stats;

pub use ids::UserId;
pub use kyc_vocabulary::details;
pub use kyc_vocabulary::level_items;

use std::collections::BTreeMap;
use std::sync::Arc;

// Each provider has one folder under `src/providers/` and one name in the `providers!` line of `providers/mod.rs`.
/// A KYC provider behind the gateway.
#[derive(
    async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Provider {
    /// Fractal ID.
    Fractal,
    /// Sumsub.
    Sumsub,
    /// Sila (Advanced KYC).
    Sila,
    /// Provide's `ident`, which dispatches KYC applications to Vouched and IdentityMind. Its applications are listed
    /// under `kycApplications` and count toward `kycState`; it has no verification cases of its own.
    Ident,
    /// Veriff (identity verification sessions).
    Veriff,
}

impl Provider {
    /// Every provider, in the GraphQL enum's order.
    pub const ALL: [Provider; 5] =
        [Provider::Fractal, Provider::Sumsub, Provider::Sila, Provider::Ident, Provider::Veriff];

    /// The name in `extensions.provider`, as in the GraphQL enum.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Fractal => "FRACTAL",
            Provider::Sumsub => "SUMSUB",
            Provider::Sila => "SILA",
            Provider::Ident => "IDENT",
            Provider::Veriff => "VERIFF",
        }
    }

    /// The name in metric labels, span attributes, webhook paths (`/webhooks/sila`) and the sandbox.
    pub fn label(self) -> &'static str {
        match self {
            Provider::Fractal => "fractal",
            Provider::Sumsub => "sumsub",
            Provider::Sila => "sila",
            Provider::Ident => "ident",
            Provider::Veriff => "veriff",
        }
    }

    /// The name in messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Provider::Fractal => "Fractal",
            Provider::Sumsub => "Sumsub",
            Provider::Sila => "Sila",
            Provider::Ident => "ident",
            Provider::Veriff => "Veriff",
        }
    }

    /// The provider of a [`Provider::label`].
    pub fn from_label(label: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.label() == label)
    }

    /// The provider of a [`Provider::as_str`] name (as the store and the change channel keep it).
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The prefix of its configuration variables: `KYC_GATEWAY_SILA_`.
    pub fn env_prefix(self) -> String {
        format!("KYC_GATEWAY_{}_", self.as_str())
    }
}

/// Where a verification stands, the same words for every provider (`providerStatus` keeps the provider's own).
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KycState {
    /// Nothing submitted yet.
    NotStarted,
    /// Submitted; the provider is working on it.
    Pending,
    /// The applicant has to do something (resubmit, answer the provider).
    ActionRequired,
    /// A person at the provider is looking at it.
    InReview,
    /// Every item of the level was verified.
    Approved,
    /// The provider refused the verification for good.
    Rejected,
    /// An approval that lapsed (expired proof of identity or address).
    Expired,
    /// The submission to the provider failed.
    Error,
}

impl KycState {
    /// How far along a verification is, for "the most advanced state" of an aggregate: decided above open, acted on
    /// above waiting; ERROR and EXPIRED just above NOT_STARTED, because the applicant has to start again.
    fn progress(self) -> u8 {
        match self {
            KycState::NotStarted => 0,
            KycState::Error => 1,
            KycState::Expired => 2,
            KycState::Pending => 3,
            KycState::ActionRequired => 4,
            KycState::InReview => 5,
            KycState::Rejected => 6,
            KycState::Approved => 7,
        }
    }
}

/// The outcome of a provider's analysis.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Credential {
    /// The analysis is not finished.
    Pending,
    /// The analysis approved the user.
    Approved,
    /// The analysis refused the user.
    Rejected,
}

/// A provider's review of a case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// `GREEN` or `RED`.
    pub answer: Option<String>,
    /// `FINAL` or `RETRY`.
    pub reject_type: Option<String>,
    /// Why the case was rejected, as the provider labels it (`FORGERY`, `BAD_SELFIE`, ...).
    pub reject_labels: Vec<RejectLabel>,
    /// May be shown to the applicant.
    pub moderation_comment: Option<String>,
    /// Must not reach the applicant: may hold private information.
    pub client_comment: Option<String>,
}

/// One rejection label of a review; a label the provider documented after this gateway was built has no description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectLabel {
    /// The label as the provider sends it.
    pub code: String,
    /// What it means, in the provider's words.
    pub description: Option<&'static str>,
    /// Whether it blocks the applicant for good (rather than allowing a resubmission).
    pub is_final: Option<bool>,
}

/// A case's internal reason tags: carried in the case when the provider's answer about it holds them, else where to
/// fetch them. Either way they reach only callers allowed to read them (`VerificationCase.reasons`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasons {
    /// The tags, as the provider's answer about the case gave them.
    Carried(Arc<Vec<String>>),
    /// Where to fetch them when a caller asks (they cost a call of their own).
    Fetched(ReasonsRef),
}

/// Where to fetch a case's internal reason tags when a caller asks for them (they cost a call of their own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReasonsRef {
    /// The provider that holds the reason tags.
    pub provider: Provider,
    /// Who the case is about, in the provider's terms.
    pub subject: String,
    /// The provider's id of the case.
    pub id: String,
}

/// One verification of one level (or add-on combination) at one provider.
#[derive(Debug, Clone)]
pub struct VerificationCase {
    /// The provider's id of the case (stable; a hash where the provider gives none).
    pub id: String,
    /// The provider that verified.
    pub provider: Provider,
    /// The provider's level string, e.g. `plus+selfie` or `basic-kyc-level`.
    pub level: String,
    /// The items the level covers (`plus`, `selfie`): what the scopes are about.
    pub items: Vec<String>,
    /// Where the verification stands, in the gateway's words.
    pub state: KycState,
    /// The provider's own status word.
    pub provider_status: String,
    /// The outcome of the provider's analysis, when it has one.
    pub credential: Option<Credential>,
    /// Whether the user completed every step of the provider's journey.
    pub journey_completed: Option<bool>,
    /// The provider's details, keyed by the wire names of [`details::DETAIL_FIELDS`].
    pub details: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The provider's review, if it has one.
    pub review: Option<Review>,
    /// Whether the applicant may submit again.
    pub retryable: Option<bool>,
    /// The case's internal reason tags, or where to fetch them, if it has any.
    pub reasons: Option<Reasons>,
    /// When the verification was requested.
    pub requested_at: Option<time::OffsetDateTime>,
    /// When the provider last changed it.
    pub updated_at: Option<time::OffsetDateTime>,
}

impl VerificationCase {
    /// A case with the fields every provider has; the rest empty.
    pub fn new(
        provider: Provider,
        id: String,
        level: String,
        items: Vec<String>,
        state: KycState,
        status: String,
    ) -> Self {
        VerificationCase {
            id,
            provider,
            level,
            items,
            state,
            provider_status: status,
            credential: None,
            journey_completed: None,
            details: None,
            review: None,
            retryable: None,
            reasons: None,
            requested_at: None,
            updated_at: None,
        }
    }
}

/// A wallet currency, after the add-on used to request the wallet.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalletCurrency {
    /// Cardano.
    Ada,
    /// Algorand.
    Algo,
    /// Bitcoin.
    Btc,
    /// Ethereum.
    Eth,
    /// Karura.
    Kar,
    /// Solana.
    Sol,
    /// Substrate chains.
    Substrate,
    /// Sui.
    Sui,
    /// XRP Ledger.
    Xrp,
}

impl WalletCurrency {
    /// Every currency, in the order of the wallet add-ons.
    pub const ALL: [WalletCurrency; 9] = [
        WalletCurrency::Ada,
        WalletCurrency::Algo,
        WalletCurrency::Btc,
        WalletCurrency::Eth,
        WalletCurrency::Kar,
        WalletCurrency::Sol,
        WalletCurrency::Substrate,
        WalletCurrency::Sui,
        WalletCurrency::Xrp,
    ];

    /// The lower-case word used on the wire and in scopes (`verification.wallet-eth:read`).
    pub fn as_str(self) -> &'static str {
        match self {
            WalletCurrency::Ada => "ada",
            WalletCurrency::Algo => "algo",
            WalletCurrency::Btc => "btc",
            WalletCurrency::Eth => "eth",
            WalletCurrency::Kar => "kar",
            WalletCurrency::Sol => "sol",
            WalletCurrency::Substrate => "substrate",
            WalletCurrency::Sui => "sui",
            WalletCurrency::Xrp => "xrp",
        }
    }

    /// The currency of a wire word, in any case.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(word))
    }
}

/// An email address of the user.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct Email {
    /// The address.
    pub address: String,
    /// `registration` (verified, used to sign in), `journey` (unverified) or `obsolete`.
    pub source_type: Option<String>,
}

/// A phone number of the user, in E.164 format.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct Phone {
    /// The number, with its country code.
    pub number: String,
}

/// A wallet the user provided during onboarding.
#[derive(Debug, Clone, async_graphql::SimpleObject)]
pub struct Wallet {
    /// The provider's id of the wallet.
    pub id: Option<async_graphql::ID>,
    /// The wallet's address on its chain.
    pub address: String,
    /// The chain the wallet is on.
    pub currency: WalletCurrency,
    /// Whether ownership of the wallet was confirmed.
    pub verified: Option<bool>,
}

/// What one provider knows about one user.
#[derive(Debug, Clone, Default)]
pub struct ProviderProfile {
    /// The user's email addresses.
    pub emails: Vec<Email>,
    /// The user's phone numbers.
    pub phones: Vec<Phone>,
    /// The wallets the user provided.
    pub wallets: Vec<Wallet>,
    /// The user's verification cases at this provider.
    pub cases: Vec<VerificationCase>,
}

/// `KycState` of a level across cases: APPROVED when one provider approved every item of the level; otherwise the most
/// advanced state among the cases covering any of its items that are not approved (PENDING when only partial
/// approvals exist), NOT_STARTED when no case covers it.
pub fn aggregate_state<'a>(level: &[String], cases: impl IntoIterator<Item = &'a VerificationCase>) -> KycState {
    let mut approved: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
    let mut open: Option<KycState> = None;
    for case in cases {
        if !case.items.iter().any(|i| level.contains(i)) {
            continue;
        }
        if case.state == KycState::Approved {
            approved.entry(case.provider.as_str()).or_default().extend(case.items.iter().map(String::as_str));
        } else if open.is_none_or(|best| case.state.progress() > best.progress()) {
            open = Some(case.state);
        }
    }
    if approved.values().any(|items| level.iter().all(|l| items.contains(&l.as_str()))) {
        return KycState::Approved;
    }
    match open {
        Some(state) => state,
        // Approved parts of a level that is not wholly approved are still work in progress.
        None if !approved.is_empty() => KycState::Pending,
        None => KycState::NotStarted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(level: &str, state: KycState) -> VerificationCase {
        VerificationCase::new(Provider::Fractal, level.into(), level.into(), level_items(level), state, String::new())
    }

    #[test]
    fn wallet_currencies_are_the_vocabulary_s_in_its_order() {
        let words: Vec<&str> = WalletCurrency::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(words, kyc_vocabulary::WALLET_CURRENCIES);
    }

    #[test]
    fn provider_names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(Provider::from_label(p.label()), Some(p));
            assert_eq!(Provider::from_name(p.as_str()), Some(p));
        }
    }

    #[test]
    fn a_level_is_approved_when_one_provider_approved_every_item() {
        let level = level_items("plus+selfie");
        let cases = [case("plus", KycState::Approved), case("selfie", KycState::Approved)];
        assert_eq!(aggregate_state(&level, &cases), KycState::Approved);
    }

    #[test]
    fn a_partly_approved_level_is_pending_or_the_most_advanced_open_state() {
        let level = level_items("plus+selfie");
        assert_eq!(aggregate_state(&level, &[case("plus", KycState::Approved)]), KycState::Pending);
        let cases = [case("plus", KycState::Approved), case("selfie", KycState::Rejected)];
        assert_eq!(aggregate_state(&level, &cases), KycState::Rejected);
        let cases = [case("plus", KycState::Pending), case("selfie", KycState::ActionRequired)];
        assert_eq!(aggregate_state(&level, &cases), KycState::ActionRequired);
    }

    #[test]
    fn a_level_without_cases_is_not_started() {
        assert_eq!(aggregate_state(&level_items("sow"), &[case("plus", KycState::Approved)]), KycState::NotStarted);
    }
}
