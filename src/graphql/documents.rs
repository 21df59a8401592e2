//! Parsed documents, kept by their text: the clients of a gateway send the same few documents over and over, and
//! async-graphql's parser (pest) was about a twentieth of a warm `me` query's CPU (BENCHMARKS.md, "Performance
//! against the peers"). A kept document skips the pre-scan and the parser; everything that depends on the request
//! (the cost with its variables, validation, the variables' coercion) still runs every time (`policy.rs`).
//!
//! Only documents that passed the pre-scan, parsing and validation are kept, so a flood of bad documents keeps
//! nothing. The cache is bounded by an estimate of its bytes; moka's admission (TinyLFU) keeps the frequent ones
//! when one-off documents pass through.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;

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
