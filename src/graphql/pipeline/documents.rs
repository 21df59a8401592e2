//! Stage 1, documents: which document runs (a persisted query or the safelist's, `trusted.rs`), parsed or kept from
//! before: clients send the same few documents, and a kept one skips the pre-scan and the parser. Only documents that
//! passed validation are kept, bounded by estimated bytes (moka's TinyLFU keeps the frequent ones).

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError};

use super::limits::{self, refused};
use super::response::with_code;
use super::trusted::Registration;
use super::Bounds;
use crate::graphql::errors::ErrorCode;

/// What stage 1 leaves for the validation stage: a persisted query to register, a new parsed document to keep.
pub struct Resolved {
    pub registration: Option<Registration>,
    pub parsed: Option<(String, ExecutableDocument)>,
}

/// Resolves `request`'s document, pre-scans and parses it (or takes it parsed from `kept`).
pub async fn resolve(request: &mut Request, bounds: &Bounds, kept: &Documents) -> Result<Resolved, ServerError> {
    let registration = bounds.trusted.resolve(request).await.map_err(|(code, message)| {
        let mut error = ServerError::new(message, None);
        error.extensions.get_or_insert_with(Default::default).set("code", code.as_str());
        error
    })?;
    // A document kept from before passed the pre-scan then; any other is pre-scanned before the parser sees it.
    let kept = kept.get(&request.query).await;
    let fresh = kept.is_none();
    match kept {
        Some(document) => request.set_parsed_query(document),
        None => limits::prescan(&request.query, &bounds.limits).map_err(refused)?,
    }
    // Parsed once here (async-graphql uses this document).
    let text = fresh.then(|| request.query.clone());
    let document = request.parsed_query().map_err(|e| with_code(e, ErrorCode::GraphqlParseFailed))?;
    Ok(Resolved { registration, parsed: text.map(|text| (text, document.clone())) })
}

/// The estimated bytes the kept documents may take.
const CAPACITY_BYTES: u64 = 16 * 1024 * 1024;
/// A parsed document's size, as a multiple of its text's (its nodes, names and positions): an upper bound, from the
/// densest text there is, `{ me { id id id ... } }`, where each three-byte field parses to about 200 bytes.
const PARSED_PER_TEXT_BYTE: u64 = 80;

#[derive(Clone)]
pub struct Documents {
    cache: moka::future::Cache<String, Arc<ExecutableDocument>>,
}

impl Default for Documents {
    fn default() -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|text: &String, _| {
                u32::try_from((text.len() as u64 + 64) * (PARSED_PER_TEXT_BYTE + 1)).unwrap_or(u32::MAX)
            })
            .build();
        Documents { cache }
    }
}

impl Documents {
    /// The document parsed from `text` before, if it is kept.
    pub async fn get(&self, text: &str) -> Option<ExecutableDocument> {
        self.cache.get(text).await.map(|doc| doc.as_ref().clone())
    }

    /// Keeps a document that passed validation.
    pub async fn keep(&self, text: String, doc: ExecutableDocument) {
        self.cache.insert(text, Arc::new(doc)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kept_document_is_found_by_its_exact_text_only() {
        let documents = Documents::default();
        let text = "{ me { id } }";
        let doc = async_graphql::parser::parse_query(text).expect("parses");
        documents.keep(text.to_owned(), doc).await;
        let found = documents.get(text).await.expect("kept");
        assert_eq!(found.operations.iter().count(), 1);
        assert!(documents.get("{ me { id emails { address } } }").await.is_none());
        assert!(documents.get("{ me {id} }").await.is_none(), "another text is another document");
    }
}
