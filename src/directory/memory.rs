//! The directory held in memory: the sandbox's, and a starting point for a deployment seeded from a file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use serde::Deserialize;

use super::{Directory, DirectoryError, FractalLink, FractalTokens, ProviderRefs};
use crate::secret::Secret;

#[derive(Default)]
struct Entries {
    known: HashMap<String, ProviderRefs>,
    /// Stored ident references -> gateway user.
    by_ident: HashMap<String, String>,
    fractal: HashMap<String, FractalLink>,
    by_fractal_uid: HashMap<String, String>,
}

/// A [`Directory`] in process memory. Rotated tokens live only as long as the process.
#[derive(Default)]
pub struct InMemoryDirectory {
    entries: RwLock<Entries>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    user_id: String,
    fractal: Option<FileFractal>,
    sumsub_applicant_id: Option<String>,
    sila_user_handle: Option<String>,
    ident_user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFractal {
    uid: String,
    refresh_token: String,
}

impl InMemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads users from a JSON file: `[{"user_id": "...", "fractal": {"uid": "...", "refresh_token": "..."},
    /// "sumsub_applicant_id": "...", "sila_user_handle": "...", "ident_user_id": "..."}]`; all but `user_id` optional.
    pub fn from_json_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read directory file {}: {e}", path.display()))?;
        let entries: Vec<FileEntry> = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("directory file {} is not valid: {e}", path.display()))?;
        let dir = Self::new();
        for entry in entries {
            let refs = ProviderRefs {
                sumsub_applicant_id: entry.sumsub_applicant_id,
                sila_user_handle: entry.sila_user_handle,
                ident_user_id: entry.ident_user_id,
            };
            dir.register(&entry.user_id, refs);
            if let Some(f) = entry.fractal {
                let tokens = FractalTokens {
                    access_token: None,
                    access_renew_at: None,
                    refresh_token: Secret::new(f.refresh_token),
                };
                dir.link_fractal(&entry.user_id, &f.uid, tokens);
            }
        }
        Ok(dir)
    }

    /// Makes `user_id` a known user with these references.
    pub fn register(&self, user_id: &str, refs: ProviderRefs) {
        let mut entries = self.entries.write().expect("directory lock poisoned");
        if let Some(ident) = &refs.ident_user_id {
            entries.by_ident.insert(ident.clone(), user_id.to_owned());
        }
        entries.known.insert(user_id.to_owned(), refs);
    }

    /// Links `user_id` (a known user from then on) to the Fractal user `uid`.
    pub fn link_fractal(&self, user_id: &str, uid: &str, tokens: FractalTokens) {
        let mut entries = self.entries.write().expect("directory lock poisoned");
        entries.known.entry(user_id.to_owned()).or_default();
        entries.by_fractal_uid.insert(uid.to_owned(), user_id.to_owned());
        entries.fractal.insert(user_id.to_owned(), FractalLink { uid: uid.to_owned(), tokens });
    }
}

#[async_trait::async_trait]
impl Directory for InMemoryDirectory {
    async fn knows(&self, user_id: &str) -> Result<bool, DirectoryError> {
        Ok(self.entries.read().expect("directory lock poisoned").known.contains_key(user_id))
    }

    async fn references(&self, user_id: &str) -> Result<ProviderRefs, DirectoryError> {
        Ok(self.entries.read().expect("directory lock poisoned").known.get(user_id).cloned().unwrap_or_default())
    }

    async fn fractal_link(&self, user_id: &str) -> Result<Option<FractalLink>, DirectoryError> {
        Ok(self.entries.read().expect("directory lock poisoned").fractal.get(user_id).cloned())
    }

    async fn fractal_uid(&self, user_id: &str) -> Result<Option<String>, DirectoryError> {
        Ok(self.entries.read().expect("directory lock poisoned").fractal.get(user_id).map(|link| link.uid.clone()))
    }

    async fn store_fractal_tokens(&self, user_id: &str, tokens: FractalTokens) -> Result<(), DirectoryError> {
        let mut entries = self.entries.write().expect("directory lock poisoned");
        match entries.fractal.get_mut(user_id) {
            Some(link) => {
                link.tokens = tokens;
                Ok(())
            }
            None => Err(DirectoryError("no Fractal link to store tokens for".into())),
        }
    }

    async fn user_for_ident(&self, ident_user_id: &str) -> Result<Option<String>, DirectoryError> {
        let entries = self.entries.read().expect("directory lock poisoned");
        if let Some(user) = entries.by_ident.get(ident_user_id) {
            return Ok(Some(user.clone()));
        }
        let default = entries.known.get(ident_user_id).is_some_and(|refs| refs.ident_user_id.is_none());
        Ok(default.then(|| ident_user_id.to_owned()))
    }

    async fn user_for_fractal_uid(&self, uid: &str) -> Result<Option<String>, DirectoryError> {
        Ok(self.entries.read().expect("directory lock poisoned").by_fractal_uid.get(uid).cloned())
    }
}
