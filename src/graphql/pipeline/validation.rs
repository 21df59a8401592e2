//! Stage 5, validation: async-graphql's own checks, run only on documents that passed stages 1 to 4, their errors
//! coded; a document that passed is kept (stage 1's cache) and a persisted query registered.

use async_graphql::ServerError;

use super::response::with_code;
use crate::graphql::errors::ErrorCode;

/// Validation's errors, coded.
pub fn coded(errors: Vec<ServerError>) -> Vec<ServerError> {
    errors.into_iter().map(|e| with_code(e, ErrorCode::GraphqlValidationFailed)).collect()
}
