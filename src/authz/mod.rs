//! Every authorization rule of the gateway, in one place: static field requirements ([`Declared`]) and the rules that
//! depend on data or arguments ([`rules`]). Each answers allowed, or a [`Denial`] naming the scopes that would allow
//! it, which the GraphQL layer turns into `null` plus `UNAUTHORIZED_FIELD_OR_TYPE` (Apollo Router's convention).
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
