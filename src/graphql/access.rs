//! What one operation did with personal data, collected while it runs, for its audit record (`crate::audit`): each
//! personal field ([`personal`]) answered or denied, with its field-name path and its response path (for withholding),
//! and whose data it was ([`note_subject`]). See ARCHITECTURE.md, `src/audit/`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_graphql::{Context, PathSegment};

use crate::audit::{FieldAccess, Outcome};

/// Whether `parent.field` holds personal data: what the audit trail records (and strict mode withholds when it
/// cannot record). The list: contact data, wallets, every detail of a verification, an application's
/// name and what was sent to its provider, the internal review comments and reason tags; and the audit trail itself
/// (`auditEvents`, `accessLog`), so that who read the trail is in the trail.
pub fn personal(parent: &str, field: &str) -> bool {
    matches!(
        (parent, field),
        ("User", "emails" | "phones" | "wallets" | "accessLog")
            | ("Query", "auditEvents")
            | ("VerificationDetails", _)
            | ("KycApplication", "name" | "params" | "providerRepresentation")
            | ("ReviewResult", "clientComment")
            | ("VerificationCase", "reasons")
    ) && !field.starts_with("__")
}

/// One personal field of the answer.
#[derive(Debug, Clone)]
pub struct Noted {
    /// Where it is in the answer (aliases and list positions included): what strict mode withholds.
    pub at: Vec<PathSegment>,
    /// The field names from the root (`user.verificationCases.details.fullName`): what the record holds.
    pub field: String,
    pub outcome: Outcome,
    /// Whose it is, when a resolver on its path said so.
    pub subject: Option<String>,
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
    /// The reads of the audit trail, with the filters they used (names only: `auditEvents(userId, since)`).
    pub trail_reads: Vec<String>,
    /// A query whose every root field answers about the users it was asked for (`me`, `user`, `users`): its answer
    /// may be kept by the response cache (`src/server/responses.rs`), tagged with those users ([`note_asked`]).
    pub cacheable: bool,
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
    /// Whose data the resolver at each response path (its [`path_key`]) answered.
    subject_at: HashMap<String, String>,
    /// The users the root fields were asked for, found or not.
    asked: BTreeSet<String>,
    operation: Operation,
}

/// A response path as one string: its segments joined with `.` (`user.verificationCases.0.details`; GraphQL names
/// never start with a digit, so a list position cannot be taken for a name). `QueryPathNode` displays the same way.
pub fn path_key(path: &[PathSegment]) -> String {
    let mut key = String::new();
    for segment in path {
        if !key.is_empty() {
            key.push('.');
        }
        match segment {
            PathSegment::Field(name) => key.push_str(name),
            PathSegment::Index(index) => key.push_str(&index.to_string()),
        }
    }
    key
}

impl Access {
    /// Notes a personal field at response path `at` (`field`: its path of field names).
    pub fn note_field(&self, at: Vec<PathSegment>, field: String, outcome: Outcome) {
        let mut inner = self.inner.lock().expect("access lock");
        // The subject noted nearest to the field: at the field itself (`User.emails`) or above it
        // (`VerificationCase.details` for every detail).
        let key = path_key(&at);
        let subject = std::iter::once(key.len())
            .chain(key.rmatch_indices('.').map(|(end, _)| end))
            .find_map(|end| inner.subject_at.get(&key[..end]))
            .cloned();
        inner.fields.push(Noted { at, field, outcome, subject });
    }

    pub fn note_operation(&self, operation: Operation) {
        self.inner.lock().expect("access lock").operation = operation;
    }

    pub fn note_mutation(&self, field: &str) {
        self.inner.lock().expect("access lock").operation.mutations.push(field.to_owned());
    }

    fn note_subject(&self, at: String, user: &str) {
        let mut inner = self.inner.lock().expect("access lock");
        if !inner.subjects.contains(user) {
            inner.subjects.insert(user.to_owned());
        }
        inner.subject_at.insert(at, user.to_owned());
    }

    /// Whether the operation must leave a record whatever happens to its request: it is a mutation, or it has
    /// answered (or been denied) personal data.
    pub fn must_be_recorded(&self) -> bool {
        let inner = self.inner.lock().expect("access lock");
        inner.operation.kind == "mutation" || !inner.fields.is_empty()
    }

    /// The users the operation's root fields were asked for ([`note_asked`]).
    pub fn asked(&self) -> Vec<String> {
        self.inner.lock().expect("access lock").asked.iter().cloned().collect()
    }

    /// What was collected: the noted fields (with their paths), the subjects, and the operation.
    pub fn take(&self) -> (Vec<Noted>, Vec<String>, Operation) {
        let mut inner = self.inner.lock().expect("access lock");
        let fields = std::mem::take(&mut inner.fields);
        let subjects = std::mem::take(&mut inner.subjects).into_iter().collect();
        inner.subject_at = HashMap::new();
        (fields, subjects, std::mem::take(&mut inner.operation))
    }
}

/// The record's fields: paths of field names, each once per outcome, in order, with the subjects they were read of.
pub fn field_paths(noted: &[Noted]) -> Vec<FieldAccess> {
    let mut index: BTreeMap<(&str, bool), usize> = BTreeMap::new();
    let mut subjects: Vec<BTreeSet<&str>> = Vec::new();
    let mut out = Vec::new();
    for n in noted {
        let at = *index.entry((n.field.as_str(), n.outcome == Outcome::Returned)).or_insert_with(|| {
            out.push(FieldAccess { path: n.field.clone(), outcome: n.outcome, subjects: Vec::new() });
            subjects.push(BTreeSet::new());
            out.len() - 1
        });
        subjects[at].extend(n.subject.as_deref());
    }
    for (field, of) in out.iter_mut().zip(subjects) {
        field.subjects = of.into_iter().map(str::to_owned).collect();
    }
    out
}

/// The resolver of personal data notes whose data it answers (at its own response path: the fields at and under it
/// are that user's).
pub fn note_subject(ctx: &Context<'_>, user: &str) {
    if let Some(access) = ctx.data_opt::<std::sync::Arc<Access>>() {
        let at = ctx.path_node.as_ref().map(ToString::to_string).unwrap_or_default();
        access.note_subject(at, user);
    }
}

/// A root field notes each user it was asked for, whether or not the user exists: a cached answer about them is
/// dropped when any of them changes (a user created later must not stay `null`).
pub fn note_asked(ctx: &Context<'_>, user: &str) {
    if let Some(access) = ctx.data_opt::<std::sync::Arc<Access>>() {
        let mut inner = access.inner.lock().expect("access lock");
        if !inner.asked.contains(user) {
            inner.asked.insert(user.to_owned());
        }
    }
}

/// A resolver reading the audit trail notes it, with the names of the filters it used (the subject filtered on is
/// noted by [`note_subject`]): the record says who read the trail and how.
pub fn note_trail_read(ctx: &Context<'_>, read: String) {
    if let Some(access) = ctx.data_opt::<std::sync::Arc<Access>>() {
        access.inner.lock().expect("access lock").operation.trail_reads.push(read);
    }
}

/// Why the caller reads: the `X-Access-Purpose` header, or `extensions.purpose`.
#[derive(Debug, Clone, Default)]
pub struct Purpose(pub Option<String>);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(segments: &[&str]) -> Vec<PathSegment> {
        segments
            .iter()
            .map(|s| s.parse::<usize>().map(PathSegment::Index).unwrap_or(PathSegment::Field((*s).to_owned())))
            .collect()
    }

    #[test]
    fn fields_repeat_once_per_outcome_with_the_subjects_noted_at_or_above_them() {
        let access = Access::default();
        let field = "me.verificationCases.details.fullName";
        access.note_subject("me.verificationCases.0.details".into(), "u1");
        access.note_subject("me.verificationCases.1.details".into(), "u2");
        // A subject noted at a sibling's path is not this field's.
        access.note_subject("me.verificationCases.10".into(), "u3");
        access.note_field(
            at(&["me", "verificationCases", "0", "details", "fullName"]),
            field.into(),
            Outcome::Returned,
        );
        access.note_field(
            at(&["me", "verificationCases", "1", "details", "fullName"]),
            field.into(),
            Outcome::Returned,
        );
        access.note_field(
            at(&["me", "verificationCases", "1", "details", "fullName"]),
            field.into(),
            Outcome::Returned,
        );
        access.note_field(at(&["me", "verificationCases", "2", "details", "fullName"]), field.into(), Outcome::Denied);
        let (noted, subjects, _) = access.take();
        assert_eq!(subjects, ["u1", "u2", "u3"]);
        assert_eq!(
            field_paths(&noted),
            [
                FieldAccess {
                    path: field.into(),
                    outcome: Outcome::Returned,
                    subjects: vec!["u1".into(), "u2".into()]
                },
                FieldAccess { path: field.into(), outcome: Outcome::Denied, subjects: Vec::new() },
            ]
        );
        assert!(personal("VerificationDetails", "identificationDocumentNumber") && personal("User", "emails"));
        assert!(!personal("User", "id") && !personal("VerificationCase", "state"));
    }
}
