//! The query root.

use std::collections::{HashMap, HashSet};

use async_graphql::{Context, Object, PathSegment, Result, ID};

use super::application::{self, KycApplicationConnection, KycApplicationObject};
use super::entity::{self, EntityUser};
use super::errors::{self, bad_input, coded, internal, unauthorized, ErrorCode};
use super::stats::VerificationStats;
use super::user::{self, User};
use super::{principal, services, user_data};
use crate::auth::Principal;
use crate::authz::rules::{self, ApplicationScope, UserRows};
use crate::domain::application::{KycApplication, KycApplicationStatus};
use crate::domain::UserId;
use crate::providers::Providers;

pub struct Query;

/// What the row level and the id's form decide about one requested id, before the directory is asked.
enum Asked {
    Denied(async_graphql::Error),
    Answered(Option<User>),
    /// Known or not: the directory says.
    Directory(UserId),
}

/// The first step of every look-up by id (`user`, `_entities`, each id of `users`), once per requested id: row level
/// first ([`UserRows`], decided once per list), then the caller's own id, then whether the text is an id at all.
fn asked(ctx: &Context<'_>, rows: UserRows<'_>, id: &str) -> Asked {
    super::access::note_asked(ctx, id);
    // The same answer whether or not the user exists: a user token learns nothing about other ids.
    if let Err(denial) = rows.check(id) {
        return Asked::Denied(unauthorized(denial));
    }
    if let Some(own) = principal(ctx).user_id().filter(|own| own.as_str() == id) {
        return Asked::Answered(Some(User::new(own.clone())));
    }
    match UserId::parse(id) {
        Ok(id) => Asked::Directory(id),
        // A text that is no id names no user.
        Err(_) => Asked::Answered(None),
    }
}

/// A user the caller asked for by id: row level first, then whether the gateway knows the user at all.
async fn lookup(ctx: &Context<'_>, p: &Principal, id: &str) -> Result<Option<User>> {
    match asked(ctx, rules::read_users(p), id) {
        Asked::Denied(e) => Err(e),
        Asked::Answered(user) => Ok(user),
        Asked::Directory(id) => {
            let known = services(ctx).providers.directory.knows(&id).await.map_err(|e| internal("directory", &e))?;
            Ok(known.then(|| User::new(id)))
        }
    }
}

/// [`lookup`] of a list of distinct ids, answered in their order: one row-level decision, one directory pass (a cold
/// directory asks the store once for the ids it lacks, so one request holds one connection of the pool).
async fn lookup_list(ctx: &Context<'_>, ids: &[&str]) -> Vec<Result<Option<User>>> {
    let rows = rules::read_users(principal(ctx));
    let mut answers = Vec::with_capacity(ids.len());
    let mut ask: Vec<(usize, UserId)> = Vec::new();
    for (at, id) in ids.iter().enumerate() {
        answers.push(match asked(ctx, rows, id) {
            Asked::Denied(e) => Err(e),
            Asked::Answered(user) => Ok(user),
            Asked::Directory(id) => {
                ask.push((at, id));
                Ok(None)
            }
        });
    }
    if ask.is_empty() {
        return answers;
    }
    let users: Vec<UserId> = ask.iter().map(|(_, id)| id.clone()).collect();
    match services(ctx).providers.directory.knows_all(&users).await {
        Ok(known) => {
            for ((at, id), known) in ask.into_iter().zip(known) {
                if known {
                    answers[at] = Ok(Some(User::new(id)));
                }
            }
        }
        Err(e) => {
            let error = internal("directory", &e);
            for (at, _) in ask {
                answers[at] = Err(error.clone());
            }
        }
    }
    answers
}

/// A gateway user's own applications (none when the user has no applicant identity of their own).
async fn own_applications(providers: &Providers, user: &UserId) -> Result<Vec<KycApplication>> {
    let (provider, source) = providers.set.applications().map_err(errors::missing)?;
    let Some(applicant) = source.applicant(user).await.map_err(|e| internal("directory", &e))? else {
        return Ok(Vec::new());
    };
    source.by_applicant(&applicant).await.map_err(|e| errors::provider(provider, &e))
}

#[Object]
impl Query {
    /// The user the token speaks for. Needs a user token.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match rules::me(principal(ctx)) {
            Some(id) => {
                super::access::note_asked(ctx, id.as_str());
                Ok(Some(User::new(id.clone())))
            }
            None => Err(coded(
                "`me` needs a user token; a client token reads users with `user(id:)`",
                ErrorCode::NotAUserToken,
            )),
        }
    }

    /// A user by the company's user id: the caller's own, or any with `client.users:read`. Null for an unknown id.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        lookup(ctx, principal(ctx), &id).await
    }

    /// Apollo Federation's entity resolver for `User @key(fields: "id")`: the same rules as `user(id:)` ([`lookup`]).
    /// Each representation answers at its own position (`entity.rs`): a denied or failed one is `null` with its error
    /// at `["_entities", position]`, an unknown id `null`; the others still arrive.
    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<EntityUser>> {
        let position = entity::position(ctx, &id)?;
        match lookup(ctx, principal(ctx), &id).await {
            Ok(user) => Ok(user.map(|user| EntityUser { position, user })),
            Err(e) => {
                let mut error = ctx.set_error_path(e.into_server_error(ctx.item.pos));
                error.path.push(PathSegment::Index(position));
                ctx.add_error(error);
                Ok(None)
            }
        }
    }

    /// Users by id, in the order asked (null where unknown or not readable; an error says which). At most the
    /// configured number of ids (default 500); a repeated id is fetched once.
    async fn users(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<User>>> {
        let max = services(ctx).max_user_ids;
        if ids.len() > max {
            return Err(bad_input(format!("users(ids:) takes at most {max} ids, got {}", ids.len())));
        }
        let p = principal(ctx);
        // Each distinct id is looked up once, the whole list in one pass.
        let distinct: Vec<&str> = {
            let mut seen = HashSet::new();
            ids.iter().map(|id| id.as_str()).filter(|id| seen.insert(*id)).collect()
        };
        let mut answers = lookup_list(ctx, &distinct).await;
        // The known users, taken out in the list's order for what is computed for all of them, then put back.
        let found: Vec<usize> = (0..answers.len()).filter(|&at| matches!(answers[at], Ok(Some(_)))).collect();
        let mut users: Vec<User> =
            found.iter().filter_map(|&at| answers[at].as_mut().ok().and_then(Option::take)).collect();
        if rules::applications_readable(p) && ctx.look_ahead().field("kycApplications").exists() {
            user_data::prefetch_applications(ctx, users.iter().map(|u| u.user_id().clone()).collect()).await;
        }
        user::resolve_states(ctx, &mut users).await;
        for (at, user) in found.into_iter().zip(users) {
            answers[at] = Ok(Some(user));
        }
        let seen: HashMap<&str, Result<Option<User>>> = distinct.into_iter().zip(answers).collect();
        let mut out = Vec::with_capacity(ids.len());
        for (index, id) in ids.iter().enumerate() {
            let answer = seen.get(id.as_str()).cloned().expect("every id was looked up");
            out.push(answer.unwrap_or_else(|e| {
                // Each position answers for itself: a repeated denied id is denied again, at its own index.
                let mut error = ctx.set_error_path(e.into_server_error(ctx.item.pos));
                error.path.push(async_graphql::PathSegment::Index(index));
                ctx.add_error(error);
                None
            }));
        }
        Ok(out)
    }

    /// A KYC application by id. Needs `kyc_application:read`; a user token gets null for any application that is not
    /// its own, exactly as for one that does not exist.
    #[graphql(requires_scopes = "kyc_application:read")]
    async fn kyc_application(&self, ctx: &Context<'_>, id: ID) -> Result<Option<KycApplicationObject>> {
        let providers = &services(ctx).providers;
        let (provider, source) = providers.set.applications().map_err(errors::missing)?;
        let found = match rules::applications(principal(ctx)) {
            ApplicationScope::All => source.get(&id).await.map_err(|e| errors::provider(provider, &e))?,
            // A user token looks only among its own applications: asking the provider for another id could fail or
            // take longer than for a missing one, and so tell that it exists.
            ApplicationScope::OwnOf(own) => own_applications(providers, own).await?.into_iter().find(|a| a.id == *id),
            ApplicationScope::Nothing => None,
        };
        Ok(found.map(KycApplicationObject::new))
    }

    /// KYC applications, newest first, a page at a time (`first` at most 100, default 25), optionally of one status.
    /// Needs `kyc_application:read`; without `client.users:read` a token pages through its own applications only.
    #[graphql(requires_scopes = "kyc_application:read")]
    async fn kyc_applications(
        &self,
        ctx: &Context<'_>,
        status: Option<KycApplicationStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<KycApplicationConnection>> {
        let window = application::CURSORS.window(first, after.as_deref())?;
        let providers = &services(ctx).providers;
        let source = providers.set.applications().map_err(errors::missing)?;
        let own = match rules::applications(principal(ctx)) {
            ApplicationScope::All => return application::all(source, status, window).await.map(Some),
            ApplicationScope::OwnOf(own) => own_applications(providers, own).await?,
            ApplicationScope::Nothing => Vec::new(),
        };
        Ok(Some(application::of_user(own, status, window)))
    }

    /// The verification statistics of this client at the provider that keeps them.
    #[graphql(requires_scopes = "client.stats:read")]
    async fn verification_stats(&self) -> Option<VerificationStats> {
        Some(VerificationStats)
    }

    /// The audit trail, newest first: who read whose personal data, which fields, when and why (never the values).
    /// `userId` keeps the records about one user, `caller` those of one user or client id, `since`/`until` a
    /// period. Needs `audit:read`.
    #[allow(clippy::too_many_arguments)]
    #[graphql(requires_scopes = "audit:read")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        caller: Option<String>,
        since: Option<time::OffsetDateTime>,
        until: Option<time::OffsetDateTime>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<super::audit::AuditEventConnection>> {
        super::audit::audit_events(ctx, user_id, caller, since, until, first, after).await.map(Some)
    }
}
