//! The query root.

use std::collections::HashMap;

use async_graphql::{Context, Object, Result, ID};

use super::application::{self, KycApplicationConnection, KycApplicationObject};
use super::errors::{self, bad_input, coded, internal, unauthorized, NOT_A_USER_TOKEN};
use super::scope::{principal, require};
use super::stats::VerificationStats;
use super::user::User;
use super::Services;
use crate::auth::{Principal, KYC_APPLICATION_READ, STATS_READ, USERS_READ};
use crate::domain::application::KycApplicationStatus;
use crate::domain::Provider;
use crate::providers::ident;

pub struct Query;

/// The ident user id of a gateway user, if it has one (see [`crate::directory::ident_user_of`]).
async fn own_ident_id(services: &Services, user: &str) -> Result<Option<String>> {
    crate::directory::ident_user_of(services.directory.as_ref(), user).await.map_err(|e| internal("directory", &e))
}

/// A user the caller asked for by id: row level first, then whether the gateway knows the user at all.
async fn lookup(ctx: &Context<'_>, p: &Principal, id: &str) -> Result<Option<User>> {
    if !p.may_read_user(id) {
        // The same answer whether or not the user exists: a user token learns nothing about other ids.
        return Err(unauthorized(vec![vec![USERS_READ.to_owned()]]));
    }
    if p.user_id() == Some(id) {
        return Ok(Some(User::new(id.to_owned())));
    }
    let known = ctx.data_unchecked::<Services>().directory.knows(id).await.map_err(|e| internal("directory", &e))?;
    Ok(known.then(|| User::new(id.to_owned())))
}

#[Object]
impl Query {
    /// The user the token speaks for. Needs a user token.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match principal(ctx).user_id() {
            Some(id) => Ok(Some(User::new(id.to_owned()))),
            None => {
                Err(coded("`me` needs a user token; a client token reads users with `user(id:)`", NOT_A_USER_TOKEN))
            }
        }
    }

    /// A user by the company's user id: the caller's own, or any with `client.users:read`. Null for an unknown id.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        lookup(ctx, principal(ctx), &id).await
    }

    /// Users by id, in the order asked (null where unknown or not readable; an error says which). At most the
    /// configured number of ids (default 500); a repeated id is fetched once.
    async fn users(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<User>>> {
        let max = ctx.data_unchecked::<Services>().max_user_ids;
        if ids.len() > max {
            return Err(bad_input(format!("users(ids:) takes at most {max} ids, got {}", ids.len())));
        }
        let p = principal(ctx);
        let mut seen: HashMap<&str, Result<Option<User>>> = HashMap::new();
        let mut out = Vec::with_capacity(ids.len());
        for (index, id) in ids.iter().enumerate() {
            let answer = match seen.get(id.as_str()) {
                Some(answer) => answer.clone(),
                None => {
                    let answer = lookup(ctx, p, id).await;
                    seen.insert(id.as_str(), answer.clone());
                    answer
                }
            };
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
        require(ctx, KYC_APPLICATION_READ)?;
        let p = principal(ctx);
        let services = ctx.data_unchecked::<Services>();
        let client = services.ident()?;
        let fail = |e| errors::provider(Provider::Ident, &e);
        if p.has(USERS_READ) {
            return Ok(client.get(&id).await.map_err(fail)?.map(|w| KycApplicationObject(ident::application(w))));
        }
        // A user token looks only among its own applications: asking ident for another id could fail or take longer
        // than for a missing one, and so tell that it exists.
        let Some(own) = p.user_id() else { return Ok(None) };
        let Some(ident_user) = own_ident_id(services, own).await? else { return Ok(None) };
        let found = client.by_user(&ident_user).await.map_err(fail)?.into_iter().find(|w| w.id == id.as_str());
        Ok(found.map(|w| KycApplicationObject(ident::application(w))))
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
        require(ctx, KYC_APPLICATION_READ)?;
        let window = application::CURSORS.window(first, after.as_deref())?;
        let services = ctx.data_unchecked::<Services>();
        let client = services.ident()?;
        let p = principal(ctx);
        if p.has(USERS_READ) {
            return application::all(client, status, window).await.map(Some);
        }
        let Some(own) = p.user_id() else { return Ok(Some(application::of_user(Vec::new(), status, window))) };
        let apps = match own_ident_id(services, own).await? {
            Some(ident_user) => client.by_user(&ident_user).await.map_err(|e| errors::provider(Provider::Ident, &e))?,
            None => Vec::new(),
        };
        Ok(Some(application::of_user(apps.into_iter().map(ident::application).collect(), status, window)))
    }

    /// Fractal's verification statistics of this client.
    #[graphql(requires_scopes = "client.stats:read")]
    async fn verification_stats(&self, ctx: &Context<'_>) -> Result<Option<VerificationStats>> {
        require(ctx, STATS_READ)?;
        Ok(Some(VerificationStats))
    }
}
