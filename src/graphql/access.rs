//! What one operation did with personal data, collected while it runs, for its audit record (`crate::audit`).
//!
//! The request policy (`policy.rs`) notes every personal field (see [`personal`]) that was answered or denied, with
//! its response path; the resolvers that answer personal data note whose it is ([`note_subject`]). The HTTP handler
//! turns what was collected into the operation's record, and, when the record cannot be written in strict mode,
//! uses the paths to take the personal values out of the answer.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_graphql::{Context, PathSegment};

use crate::audit::{FieldAccess, Outcome};

/// Whether `parent.field` holds personal data: what the audit trail records (and strict mode withholds when it
/// cannot record). The list: contact data, wallets, every detail of a verification, an application's
/// name and what was sent to its provider, the internal review comments and reason tags.
pub fn personal(parent: &str, field: &str) -> bool {
    matches!(
        (parent, field),
        ("User", "emails" | "phones" | "wallets")
            | ("VerificationDetails", _)
            | ("KycApplication", "name" | "params" | "providerRepresentation")
            | ("ReviewResult", "clientComment")
            | ("VerificationCase", "reasons")
    ) && !field.starts_with("__")
}

/// One personal field of the answer.
#[derive(Debug, Clone)]
pub struct Noted {
    /// Where it is in the answer (list positions included).
    pub at: Vec<PathSegment>,
    pub outcome: Outcome,
}

/// The operation as the policy parsed it.
#[derive(Debug, Clone, Default)]
pub struct Operation {
    pub name: Option<String>,
    /// `query`, `mutation` or `subscription`.
    pub kind: String,
    /// SHA-256 of the document.
    pub document_hash: String,
    /// The mutation's root fields (what it did).
    pub mutations: Vec<String>,
}

/// One request's collection.
#[derive(Debug, Default)]
pub struct Access {
    inner: Mutex<Collected>,
}

#[derive(Debug, Default)]
struct Collected {
    fields: Vec<Noted>,
    subjects: BTreeSet<String>,
    operation: Operation,
}

impl Access {
    pub fn note_field(&self, at: Vec<PathSegment>, outcome: Outcome) {
        self.inner.lock().expect("access lock").fields.push(Noted { at, outcome });
    }

    pub fn note_operation(&self, operation: Operation) {
        self.inner.lock().expect("access lock").operation = operation;
    }

    pub fn note_mutation(&self, field: &str) {
        self.inner.lock().expect("access lock").operation.mutations.push(field.to_owned());
    }

    fn note_subject(&self, user: &str) {
        let mut inner = self.inner.lock().expect("access lock");
        if !inner.subjects.contains(user) {
            inner.subjects.insert(user.to_owned());
        }
    }

    /// What was collected: the noted fields (with their paths), the subjects, and the operation.
    pub fn take(&self) -> (Vec<Noted>, Vec<String>, Operation) {
        let mut inner = self.inner.lock().expect("access lock");
        let fields = std::mem::take(&mut inner.fields);
        let subjects = std::mem::take(&mut inner.subjects).into_iter().collect();
        (fields, subjects, std::mem::take(&mut inner.operation))
    }
}

/// The record's field paths: names only (list positions dropped), each once per outcome, in order.
pub fn field_paths(noted: &[Noted]) -> Vec<FieldAccess> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in noted {
        let path: Vec<&str> =
            n.at.iter()
                .filter_map(|s| match s {
                    PathSegment::Field(name) => Some(name.as_str()),
                    PathSegment::Index(_) => None,
                })
                .collect();
        let path = path.join(".");
        if seen.insert((path.clone(), n.outcome == Outcome::Returned)) {
            out.push(FieldAccess { path, outcome: n.outcome });
        }
    }
    out
}

/// The resolver of a personal field notes whose data it answers.
pub fn note_subject(ctx: &Context<'_>, user: &str) {
    if let Some(access) = ctx.data_opt::<std::sync::Arc<Access>>() {
        access.note_subject(user);
    }
}

/// Why the caller reads: the `X-Access-Purpose` header, or `extensions.purpose`.
#[derive(Debug, Clone, Default)]
pub struct Purpose(pub Option<String>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_drop_list_positions_and_repeat_once() {
        let at = |i| {
            vec![
                PathSegment::Field("me".into()),
                PathSegment::Field("verificationCases".into()),
                PathSegment::Index(i),
                PathSegment::Field("details".into()),
                PathSegment::Field("fullName".into()),
            ]
        };
        let noted = [
            Noted { at: at(0), outcome: Outcome::Returned },
            Noted { at: at(1), outcome: Outcome::Returned },
            Noted { at: at(2), outcome: Outcome::Denied },
        ];
        assert_eq!(
            field_paths(&noted),
            [
                FieldAccess { path: "me.verificationCases.details.fullName".into(), outcome: Outcome::Returned },
                FieldAccess { path: "me.verificationCases.details.fullName".into(), outcome: Outcome::Denied },
            ]
        );
        assert!(personal("VerificationDetails", "identificationDocumentNumber") && personal("User", "emails"));
        assert!(!personal("User", "id") && !personal("VerificationCase", "state"));
    }
}
