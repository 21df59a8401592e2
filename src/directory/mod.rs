//! Who a gateway user is at each provider: `User.id` -> the provider's references, and the accounts the user linked, in
//! the store (`sql.rs`) behind a per-replica cache (`cached.rs`). A rotated token not written back is a link lost:
//! [`Directory::begin_refresh`] lets one replica refresh at a time, and the new tokens are committed before use.

pub mod cached;
pub mod import;
pub mod linking;
pub mod sql;

use std::collections::BTreeMap;
use std::time::SystemTime;

pub use cached::CachedDirectory;
pub use sql::SqlDirectory;

use crate::domain::{Provider, UserId};
use crate::secret::Secret;

/// A user's references at providers that identify users by a reference of their own (an applicant id, a handle,
/// session ids). A provider without a stored reference derives one from the user id, by its own rule.
pub type References = BTreeMap<Provider, Vec<String>>;

/// What the directory holds about one user, as the hot path reads it (no tokens).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserEntry {
    /// Whether the gateway knows the user.
    pub known: bool,
    /// The user's stored references.
    pub references: References,
    /// The accounts the user linked, by provider.
    pub links: BTreeMap<Provider, String>,
}

/// The OAuth tokens of a linked account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTokens {
    /// The current access token; `None` until the first refresh.
    pub access_token: Option<Secret>,
    /// When to renew the access token: a little before it expires, so no request goes out with a dying token.
    pub access_renew_at: Option<SystemTime>,
    /// The rotating refresh token.
    pub refresh_token: Secret,
}

/// A user's link to their account at a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The provider's id of the account.
    pub subject: String,
    /// The scopes the user granted (space separated).
    pub scopes: String,
    pub tokens: LinkTokens,
}

/// An authorization under way: who started it, at which provider, where the provider sends the user back, until
/// when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub nonce: String,
    pub user_id: UserId,
    pub provider: Provider,
    pub redirect_uri: String,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// The PKCE code verifier (RFC 7636) sent with the code; never shown to the caller. `None` for a state started
    /// before the gateway used PKCE.
    pub code_verifier: Option<Secret>,
}

/// What consuming a link state found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// The state, now used.
    Fresh(LinkState),
    /// It was used before: a replay.
    AlreadyUsed,
    /// No such state was ever started here.
    Unknown,
}

/// What linking found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    /// The link is stored (replacing the user's earlier one at that provider, if any).
    Stored,
    /// That account is linked to another gateway user; nothing was stored.
    SubjectTaken,
}

/// Why the directory could not answer. Messages name no value and no credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// The store failed or did not answer.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// A stored value cannot be read (a sealed token under an unknown key, say).
    #[error("directory data cannot be read: {0}")]
    Corrupt(String),
    /// The link was removed, or replaced by a new link, while it was being refreshed.
    #[error("the link was removed or replaced during the refresh")]
    LinkRemoved,
}

impl From<crate::store::StoreError> for DirectoryError {
    fn from(e: crate::store::StoreError) -> Self {
        DirectoryError::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for DirectoryError {
    fn from(e: sqlx::Error) -> Self {
        DirectoryError::Unavailable(crate::store::StoreError::Sql(e).to_string())
    }
}

/// A user's link, held for a token refresh: no other replica can begin a refresh of the same link until this one is
/// committed or dropped.
#[async_trait::async_trait]
pub trait LinkRefresh: Send {
    /// The link as it is now, read under the hold.
    fn link(&self) -> &Link;

    /// Stores the new tokens and releases the hold. Called before the new access token is used: when it fails, the
    /// new tokens must not be used (the old pair stays valid until they are).
    async fn commit(self: Box<Self>, tokens: LinkTokens) -> Result<(), DirectoryError>;
}

#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Everything the hot path asks about `user`, at once.
    async fn entry(&self, user: &UserId) -> Result<UserEntry, DirectoryError>;

    /// Whether `user` is a user the gateway knows.
    async fn knows(&self, user: &UserId) -> Result<bool, DirectoryError> {
        Ok(self.entry(user).await?.known)
    }

    /// Every user's entry, in their order: one pass over a list (a store reads the users it lacks in one go).
    async fn entries(&self, users: &[UserId]) -> Result<Vec<UserEntry>, DirectoryError> {
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            entries.push(self.entry(user).await?);
        }
        Ok(entries)
    }

    /// Whether the gateway knows each of `users`, in their order (one pass, as [`Directory::entries`]).
    async fn knows_all(&self, users: &[UserId]) -> Result<Vec<bool>, DirectoryError> {
        Ok(self.entries(users).await?.iter().map(|entry| entry.known).collect())
    }

    /// The user's stored references at `provider` (none: the provider derives one from the user id).
    async fn references(&self, user: &UserId, provider: Provider) -> Result<Vec<String>, DirectoryError> {
        Ok(self.entry(user).await?.references.remove(&provider).unwrap_or_default())
    }

    /// The gateway user whose stored reference at `provider` is `reference` (a default is not stored, so a user
    /// found by default is not found here).
    async fn user_for_reference(&self, provider: Provider, reference: &str) -> Result<Option<UserId>, DirectoryError>;

    /// Makes `user` a known user; the references of each provider `refs` names replace the user's earlier ones.
    async fn register(&self, user: &UserId, refs: &References) -> Result<(), DirectoryError>;

    /// Adds one reference at `provider` to the user's (a known or new user); whether it was new.
    async fn add_reference(&self, user: &UserId, provider: Provider, reference: &str) -> Result<bool, DirectoryError>;

    /// The user's link at `provider`, tokens included.
    async fn link(&self, user: &UserId, provider: Provider) -> Result<Option<Link>, DirectoryError>;

    /// The account the user linked at `provider` (no tokens).
    async fn link_subject(&self, user: &UserId, provider: Provider) -> Result<Option<String>, DirectoryError> {
        Ok(self.entry(user).await?.links.remove(&provider))
    }

    /// The gateway user linked to account `subject` at `provider`.
    async fn user_for_link(&self, provider: Provider, subject: &str) -> Result<Option<UserId>, DirectoryError>;

    /// [`Directory::user_for_link`] of each of `subjects`, in their order: one pass over a list.
    async fn users_for_links(
        &self,
        provider: Provider,
        subjects: &[String],
    ) -> Result<Vec<Option<UserId>>, DirectoryError> {
        let mut users = Vec::with_capacity(subjects.len());
        for subject in subjects {
            users.push(self.user_for_link(provider, subject).await?);
        }
        Ok(users)
    }

    /// Holds the user's link at `provider` for a refresh (see [`LinkRefresh`]); `None` when there is no link.
    async fn begin_refresh(
        &self,
        user: &UserId,
        provider: Provider,
    ) -> Result<Option<Box<dyn LinkRefresh>>, DirectoryError>;

    /// Links a known or new user's account at `provider`, replacing the user's earlier link there; refused when
    /// the account is linked to another user.
    async fn store_link(&self, user: &UserId, provider: Provider, link: &Link) -> Result<Linked, DirectoryError>;

    /// Removes the user's link at `provider`; whether there was one.
    async fn remove_link(&self, user: &UserId, provider: Provider) -> Result<bool, DirectoryError>;

    /// Remembers an authorization under way; the user's oldest open states beyond `open_per_user` (this one
    /// counted) are forgotten, so a caller can always start again and never hold more.
    async fn save_link_state(&self, state: &LinkState, open_per_user: usize) -> Result<(), DirectoryError>;

    /// Forgets the link states that expired before `expired_before` (unix milliseconds); how many.
    async fn purge_link_states(&self, expired_before: i64) -> Result<u64, DirectoryError>;

    /// Uses up a link state: the first call gets it, every later one learns it was used.
    async fn consume_link_state(&self, nonce: &str) -> Result<Consumed, DirectoryError>;

    /// Forgets whatever this replica holds about `user` in memory (another replica changed it).
    async fn forget(&self, _user: &UserId) {}

    /// Forgets everything held in memory (changes may have been missed).
    fn forget_all(&self) {}
}
