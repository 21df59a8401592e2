//! The query root.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;

use async_graphql::{Context, Object, PathSegment, Result, ID};

use super::application::{self, KycApplicationConnection, KycApplicationObject};
use super::entity::{self, EntityUser};
use super::errors::{self, bad_input, coded, internal, unauthorized, ErrorCode};
use super::stats::VerificationStats;
use super::user::User;
use super::{principal, services, user_data};
use crate::auth::Principal;
use crate::authz::rules::{self, ApplicationScope};
use crate::domain::application::{KycApplication, KycApplicationStatus};
use crate::domain::UserId;
use crate::providers::Providers;

pub struct Query;

/// How many users of `users(ids:)` are looked up at once.
const LOOKUPS_AT_ONCE: usize = 8;

/// A user the caller asked for by id: row level first, then whether the gateway knows the user at all.
async fn lookup(ctx: &Context<'_>, p: &Principal, id: &str) -> Result<Option<User>> {
    super::access::note_asked(ctx, id);
    // The same answer whether or not the user exists: a user token learns nothing about other ids.
    rules::read_user(p, id).map_err(unauthorized)?;
    if let Some(own) = p.user_id().filter(|own| own.as_str() == id) {
        return Ok(Some(User::new(own.clone())));
    }
    // A text that is no id names no user.
    let Ok(id) = UserId::parse(id) else { return Ok(None) };
    let known = services(ctx).providers.directory.knows(&id).await.map_err(|e| internal("directory", &e))?;
    Ok(known.then(|| User::new(id)))
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
        // Each distinct id is looked up once, a few at a time: a cold directory asks the store for each, and one
        // request must not hold every connection of its pool (the audit trail writes through it too).
        let distinct: Vec<&str> = {
            let mut seen = HashSet::new();
            ids.iter().map(|id| id.as_str()).filter(|id| seen.insert(*id)).collect()
        };
        let lookups: Vec<_> = distinct.into_iter().map(|id| async move { (id, lookup(ctx, p, id).await) }).collect();
        let seen: HashMap<&str, Result<Option<User>>> =
            futures_util::stream::iter(lookups).buffer_unordered(LOOKUPS_AT_ONCE).collect().await;
        if rules::applications_readable(p) && ctx.look_ahead().field("kycApplications").exists() {
            let users = seen.values().filter_map(|answer| answer.as_ref().ok()?.as_ref().map(|u| u.user_id().clone()));
            user_data::prefetch_applications(ctx, users.collect()).await;
        }
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
