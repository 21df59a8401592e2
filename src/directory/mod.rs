//! Who a gateway user is at each provider: `User.id` -> provider references and credentials.
//!
//! The directory lives in the store (`sql.rs`), so rotated Fractal refresh tokens survive restarts and every replica
//! sees the same links; a per-replica read cache (`cached.rs`) keeps the hot lookups off the database. Fractal tokens
//! rotate, and a rotated token that is not written back is a link lost for good: [`Directory::begin_fractal_refresh`]
//! holds the user's link so that at most one replica refreshes it at a time, and the new tokens are committed before
//! the new access token is used.

pub mod cached;
pub mod import;
pub mod linking;
pub mod sql;

use std::time::SystemTime;

pub use cached::CachedDirectory;
pub use sql::SqlDirectory;

use crate::secret::Secret;

/// A user's Fractal OAuth tokens, as obtained when the user linked Fractal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FractalTokens {
    /// The current access token; `None` until the first refresh.
    pub access_token: Option<Secret>,
    /// When to renew the access token: a little before it expires, so no request goes out with a dying token.
    pub access_renew_at: Option<SystemTime>,
    /// The rotating refresh token.
    pub refresh_token: Secret,
}

/// A user's link to Fractal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FractalLink {
    /// The user's Fractal `uid`.
    pub uid: String,
    /// The scopes the user granted (space separated).
    pub scopes: String,
    pub tokens: FractalTokens,
}

/// A user's references at the providers that identify users by a reference of their own. `None` means "derive it
/// from the user id": Sumsub looks the applicant up by `externalUserId`, Sila derives the handle from a template,
/// ident uses the user id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderRefs {
    pub sumsub_applicant_id: Option<String>,
    pub sila_user_handle: Option<String>,
    pub ident_user_id: Option<String>,
}

/// A reference a provider uses for a user, stored in the directory (webhooks name users this way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    /// A Sumsub applicant id.
    SumsubApplicant(&'a str),
    /// A Sila user handle.
    SilaHandle(&'a str),
}

/// A Fractal authorization under way: who started it, where Fractal sends the user back, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub nonce: String,
    pub user_id: String,
    pub redirect_uri: String,
    /// Unix milliseconds.
    pub expires_at: i64,
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
    /// The link is stored (replacing the user's earlier one, if any).
    Stored,
    /// That Fractal account is linked to another gateway user; nothing was stored.
    UidTaken,
}

/// The directory could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("directory unavailable: {0}")]
pub struct DirectoryError(pub String);

impl From<crate::store::StoreError> for DirectoryError {
    fn from(e: crate::store::StoreError) -> Self {
        DirectoryError(e.to_string())
    }
}

impl From<sqlx::Error> for DirectoryError {
    fn from(e: sqlx::Error) -> Self {
        DirectoryError(crate::store::StoreError::Sql(e).to_string())
    }
}

/// The ident user id of gateway user `user_id`: its stored reference, else its own id unless another user's stored
/// reference claims that id (then it has none: it must not see that user's applications).
pub async fn ident_user_of(directory: &dyn Directory, user_id: &str) -> Result<Option<String>, DirectoryError> {
    if let Some(stored) = directory.references(user_id).await?.ident_user_id {
        return Ok(Some(stored));
    }
    match directory.user_for_ident(user_id).await? {
        Some(owner) if owner != user_id => Ok(None),
        _ => Ok(Some(user_id.to_owned())),
    }
}

/// A user's Fractal link, held for a token refresh: no other replica can begin a refresh of the same user until this
/// one is committed or dropped.
#[async_trait::async_trait]
pub trait FractalRefresh: Send {
    /// The link as it is now, read under the hold.
    fn link(&self) -> &FractalLink;

    /// Stores the new tokens and releases the hold. Called before the new access token is used: when it fails, the
    /// new tokens must not be used (the old pair stays valid until they are).
    async fn commit(self: Box<Self>, tokens: FractalTokens) -> Result<(), DirectoryError>;
}

#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Whether `user_id` is a user the gateway knows.
    async fn knows(&self, user_id: &str) -> Result<bool, DirectoryError>;

    /// The user's Sumsub, Sila and ident references (defaults where none is stored).
    async fn references(&self, user_id: &str) -> Result<ProviderRefs, DirectoryError>;

    /// The user's Fractal link, if they linked Fractal.
    async fn fractal_link(&self, user_id: &str) -> Result<Option<FractalLink>, DirectoryError>;

    /// The user's Fractal uid, if they linked Fractal (no tokens: the statistics need only the uid).
    async fn fractal_uid(&self, user_id: &str) -> Result<Option<String>, DirectoryError>;

    /// Holds the user's Fractal link for a refresh (see [`FractalRefresh`]); `None` when there is no link.
    async fn begin_fractal_refresh(&self, user_id: &str) -> Result<Option<Box<dyn FractalRefresh>>, DirectoryError>;

    /// The gateway user behind an ident `user_id`: the user whose stored reference it is, else the known user of that
    /// id who has no other ident reference (the default: ident's user id is the gateway's).
    async fn user_for_ident(&self, ident_user_id: &str) -> Result<Option<String>, DirectoryError>;

    /// The gateway user linked to a Fractal `uid` (the statistics speak in Fractal uids).
    async fn user_for_fractal_uid(&self, uid: &str) -> Result<Option<String>, DirectoryError>;

    /// The gateway user whose stored reference is `reference`, if any (defaults are not stored, so a user found by
    /// default is not found here).
    async fn user_for_reference(&self, reference: Reference<'_>) -> Result<Option<String>, DirectoryError>;

    /// Makes `user_id` a known user with these references (replacing earlier ones).
    async fn register(&self, user_id: &str, refs: &ProviderRefs) -> Result<(), DirectoryError>;

    /// Links a known or new user to Fractal, replacing the user's earlier link; refused when the Fractal account is
    /// linked to another user.
    async fn link_fractal(&self, user_id: &str, link: &FractalLink) -> Result<Linked, DirectoryError>;

    /// Removes the user's Fractal link; whether there was one.
    async fn unlink_fractal(&self, user_id: &str) -> Result<bool, DirectoryError>;

    /// Remembers a Fractal authorization under way.
    async fn save_link_state(&self, state: &LinkState) -> Result<(), DirectoryError>;

    /// Uses up a link state: the first call gets it, every later one learns it was used.
    async fn consume_link_state(&self, nonce: &str) -> Result<Consumed, DirectoryError>;

    /// Forgets whatever this replica holds about `user_id` in memory (another replica changed it).
    async fn forget(&self, _user_id: &str) {}

    /// Forgets everything held in memory (changes may have been missed).
    fn forget_all(&self) {}
}
