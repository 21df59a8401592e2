//! Who a gateway user is at each provider: `User.id` -> provider references and credentials.
//!
//! The directory is a trait so a deployment can keep it in a persistent store: Fractal refresh tokens rotate, and a
//! rotated token that is not written back is a link lost for good. The in-memory implementation backs the sandbox.

pub mod memory;

use std::time::SystemTime;

pub use memory::InMemoryDirectory;

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

/// The directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("directory unavailable: {0}")]
pub struct DirectoryError(pub String);

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

#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Whether `user_id` is a user the gateway knows.
    async fn knows(&self, user_id: &str) -> Result<bool, DirectoryError>;

    /// The user's Sumsub, Sila and ident references (defaults where none is stored).
    async fn references(&self, user_id: &str) -> Result<ProviderRefs, DirectoryError>;

    /// The user's Fractal link, if they linked Fractal.
    async fn fractal_link(&self, user_id: &str) -> Result<Option<FractalLink>, DirectoryError>;

    /// The user's Fractal uid, if they linked Fractal (no tokens: the statistics need only the uid).
    async fn fractal_uid(&self, user_id: &str) -> Result<Option<String>, DirectoryError> {
        Ok(self.fractal_link(user_id).await?.map(|link| link.uid))
    }

    /// Stores the user's new Fractal tokens. Called with a rotated refresh token before its access token is used, so
    /// it must be durable when it returns.
    async fn store_fractal_tokens(&self, user_id: &str, tokens: FractalTokens) -> Result<(), DirectoryError>;

    /// The gateway user behind an ident `user_id`: the user whose stored reference it is, else the known user of that
    /// id who has no other ident reference (the default: ident's user id is the gateway's).
    async fn user_for_ident(&self, ident_user_id: &str) -> Result<Option<String>, DirectoryError>;

    /// The gateway user linked to a Fractal `uid` (the statistics speak in Fractal uids).
    async fn user_for_fractal_uid(&self, uid: &str) -> Result<Option<String>, DirectoryError>;
}
