//! Reading the audit trail: `auditEvents` for compliance staff (`audit:read`), and `User.accessLog`, a user's own
//! view of who read their data, when, why and which fields (callers by their configured display names, so internal
//! client ids are not shown).

use async_graphql::{Context, Enum, Result, SimpleObject, ID};
use base64::Engine;
use time::OffsetDateTime;

use super::access::{note_subject, note_trail_read};
use super::connection::PageInfo;
use super::errors::{bad_input, internal};
use super::services;
use crate::audit::read::{events, Filter};
use crate::audit::{FieldAccess, Outcome, Record};

/// The most events one page holds.
const MAX_PAGE: i32 = 200;
const DEFAULT_PAGE: i32 = 50;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AuditOutcome")]
pub enum AuditOutcomeObject {
    /// The value was in the answer.
    Returned,
    /// The caller was refused it.
    Denied,
}

/// A field of a recorded operation (names only, never values).
#[derive(SimpleObject)]
pub struct AuditField {
    /// The path of field names from the root, whatever aliases the caller chose, without list positions
    /// (`user.verificationCases.details.fullName`).
    pub path: String,
    pub outcome: AuditOutcomeObject,
    /// The users whose values these were; empty when the gateway could not tell (a field denied before its resolver
    /// ran, or a record written before fields named their subjects).
    pub subjects: Vec<ID>,
}

/// One record of the audit trail.
#[derive(SimpleObject)]
pub struct AuditEvent {
    /// The record's place in the chain.
    pub seq: ID,
    pub at: OffsetDateTime,
    pub request_id: String,
    pub trace_id: Option<String>,
    /// `user`, `client`, `provider` (a webhook) or `system`.
    pub caller_kind: String,
    /// The user or client id (the provider, for a webhook).
    pub caller: String,
    /// The token's issuer.
    pub issuer: String,
    /// The users whose data it was.
    pub subjects: Vec<ID>,
    pub fields: Vec<AuditField>,
    pub operation_name: Option<String>,
    pub operation_type: String,
    /// SHA-256 of the document.
    pub document_hash: String,
    /// Why the caller read it, as it stated.
    pub purpose: Option<String>,
    /// The mutation or webhook that caused a write.
    pub cause: Option<String>,
    /// The hash of the record, and of the one before it.
    pub hash: String,
    pub prev_hash: String,
}

#[derive(SimpleObject)]
pub struct AuditEventEdge {
    pub cursor: String,
    pub node: AuditEvent,
}

#[derive(SimpleObject)]
pub struct AuditEventConnection {
    pub edges: Vec<AuditEventEdge>,
    pub page_info: PageInfo,
}

/// One read of a user's data by someone else.
#[derive(SimpleObject)]
pub struct AccessLogEntry {
    pub at: OffsetDateTime,
    /// Who read it, by the name the gateway's operator gave the caller.
    pub caller: String,
    /// Why, as the caller stated.
    pub purpose: Option<String>,
    /// Which fields were answered.
    pub fields: Vec<String>,
}

#[derive(SimpleObject)]
pub struct AccessLogEdge {
    pub cursor: String,
    pub node: AccessLogEntry,
}

#[derive(SimpleObject)]
pub struct AccessLogConnection {
    pub edges: Vec<AccessLogEdge>,
    pub page_info: PageInfo,
}

fn time(millis: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).map_err(|e| internal("audit time", &e))
}

fn cursor(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("audit:{seq}"))
}

fn seq_after(after: Option<&str>) -> Result<Option<i64>> {
    let Some(after) = after else { return Ok(None) };
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(after)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.strip_prefix("audit:").and_then(|s| s.parse::<i64>().ok()));
    text.map(Some).ok_or_else(|| bad_input("after is not a cursor of the audit trail"))
}

fn page_size(first: Option<i32>) -> Result<i64> {
    match first {
        None => Ok(i64::from(DEFAULT_PAGE)),
        Some(n) if (0..=MAX_PAGE).contains(&n) => Ok(i64::from(n)),
        Some(_) => Err(bad_input(format!("first must be between 0 and {MAX_PAGE}"))),
    }
}

/// A page of records, newest first: the records and the page info (one record more is read to know if there is a
/// next page).
async fn page(
    ctx: &Context<'_>,
    mut filter: Filter,
    first: Option<i32>,
    after: Option<&str>,
) -> Result<(Vec<Record>, PageInfo)> {
    let limit = page_size(first)?;
    filter.before_seq = seq_after(after)?;
    let mut records =
        events(&services(ctx).store, &filter, limit + 1).await.map_err(|e| internal("reading the audit trail", &e))?;
    let has_next_page = records.len() as i64 > limit;
    records.truncate(limit as usize);
    let info = PageInfo {
        has_next_page,
        has_previous_page: after.is_some(),
        start_cursor: records.first().map(|r| cursor(r.seq)),
        end_cursor: records.last().map(|r| cursor(r.seq)),
    };
    Ok((records, info))
}

fn millis(at: Option<OffsetDateTime>) -> Option<i64> {
    at.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// `auditEvents`: the records about `user_id` and/or by `caller` between `since` and `until`, newest first.
pub async fn audit_events(
    ctx: &Context<'_>,
    user_id: Option<ID>,
    caller: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AuditEventConnection> {
    if user_id.as_ref().is_some_and(|u| u.len() > 256) || caller.as_ref().is_some_and(|c| c.len() > 256) {
        return Err(bad_input("userId and caller are at most 256 characters"));
    }
    if let Some(user) = &user_id {
        note_subject(ctx, user);
    }
    let used = [("userId", user_id.is_some()), ("caller", caller.is_some()), ("since", since.is_some())];
    let used = used.into_iter().chain([("until", until.is_some())]).filter(|(_, set)| *set).map(|(name, _)| name);
    note_trail_read(ctx, format!("auditEvents({})", used.collect::<Vec<_>>().join(", ")));
    let filter = Filter {
        user_id: user_id.map(|u| u.0),
        caller,
        since: millis(since),
        until: millis(until),
        ..Filter::default()
    };
    let (records, page_info) = page(ctx, filter, first, after.as_deref()).await?;
    let edges = records
        .into_iter()
        .map(|r| {
            let fields = r
                .entry
                .fields
                .iter()
                .map(|f| AuditField {
                    path: f.path.clone(),
                    outcome: match f.outcome {
                        Outcome::Returned => AuditOutcomeObject::Returned,
                        Outcome::Denied => AuditOutcomeObject::Denied,
                    },
                    subjects: f.subjects.iter().cloned().map(ID).collect(),
                })
                .collect();
            Ok(AuditEventEdge {
                cursor: cursor(r.seq),
                node: AuditEvent {
                    seq: ID(r.seq.to_string()),
                    at: time(r.entry.at)?,
                    request_id: r.entry.request_id,
                    trace_id: r.entry.trace_id,
                    caller_kind: r.entry.caller.kind,
                    caller: r.entry.caller.id,
                    issuer: r.entry.caller.issuer,
                    subjects: r.entry.subjects.into_iter().map(ID).collect(),
                    fields,
                    operation_name: r.entry.operation_name,
                    operation_type: r.entry.operation_type,
                    document_hash: r.entry.document_hash,
                    purpose: r.entry.purpose,
                    cause: r.entry.cause,
                    hash: r.hash,
                    prev_hash: r.prev_hash,
                },
            })
        })
        .collect::<Result<_>>()?;
    Ok(AuditEventConnection { edges, page_info })
}

/// Whether a record's field is one of `user`'s values that was answered: a field names its subjects; one that names
/// none (a record from before fields named them) is taken to be every subject's of its record.
fn returned_of(field: &FieldAccess, user: &str) -> bool {
    field.outcome == Outcome::Returned && (field.subjects.is_empty() || field.subjects.iter().any(|s| s == user))
}

/// `User.accessLog`: who else read `user`'s personal data, and which of their fields (another person's fields read
/// in the same operation are not shown).
pub async fn access_log(
    ctx: &Context<'_>,
    issuer: &str,
    user: &str,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AccessLogConnection> {
    note_subject(ctx, user);
    note_trail_read(ctx, "accessLog".to_owned());
    let own = (issuer.to_owned(), user.to_owned());
    let filter = Filter { user_id: Some(user.to_owned()), not_user: Some(own), ..Filter::default() };
    let (records, page_info) = page(ctx, filter, first, after.as_deref()).await?;
    let names = &services(ctx).caller_names;
    let edges = records
        .into_iter()
        .filter(|r| r.entry.fields.iter().any(|f| returned_of(f, user)))
        .map(|r| {
            let c = &r.entry.caller;
            let caller = match c.kind.as_str() {
                "client" => names.get(&(c.issuer.clone(), c.id.clone())).cloned().unwrap_or_else(|| "a service".into()),
                _ => "a member of staff".to_owned(),
            };
            let fields = r.entry.fields.iter().filter(|f| returned_of(f, user)).map(|f| f.path.clone()).collect();
            Ok(AccessLogEdge {
                cursor: cursor(r.seq),
                node: AccessLogEntry { at: time(r.entry.at)?, caller, purpose: r.entry.purpose, fields },
            })
        })
        .collect::<Result<_>>()?;
    Ok(AccessLogConnection { edges, page_info })
}
