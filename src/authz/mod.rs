//! Every authorization rule of the gateway, in one place.
//!
//! - **Static field requirements** are declared once, as `requires_scopes` on the resolver; [`Declared`] reads them
//!   back from the printed SDL and the GraphQL layer enforces them for every field (see `declared.rs`).
//! - **Rules that depend on data or arguments** (row level, case visibility, the details table, wallet currencies,
//!   KYC applications, `kycState`) are the functions of [`rules`].
//!
//! Every rule answers in the same terms: allowed, or a [`Denial`] naming the scopes that would allow it. The GraphQL
//! layer turns a denial into `null` plus an `UNAUTHORIZED_FIELD_OR_TYPE` error (Apollo Router's convention).
#![deny(missing_docs)]

mod declared;
pub mod rules;
pub mod scopes;

pub use declared::{Declared, Requirement};
pub use scopes::*;

/// A refused access and what would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Apollo's `requiredScopes`: any one inner list, all of whose scopes are needed.
    pub required: Vec<Vec<String>>,
}

impl Denial {
    /// A denial that any one of `required`'s alternatives would lift.
    pub fn new(required: Vec<Vec<String>>) -> Self {
        Denial { required }
    }

    /// A denial that one scope would lift.
    pub fn one(scope: &str) -> Self {
        Denial { required: vec![vec![scope.to_owned()]] }
    }
}
