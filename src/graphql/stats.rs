//! `VerificationStats`: the client's statistics at the provider that keeps them, read with the gateway's own
//! credentials.

use std::collections::HashMap;

use async_graphql::{Context, Object, Result, SimpleObject, ID};

use super::connection::{Cursors, PageInfo};
use super::errors;
use super::{principal, services};
use crate::authz::rules;
use crate::domain::stats::StatusCounts;
use crate::domain::{KycState, Provider, UserId};
use crate::providers::connector::StatisticsSource;

/// `users` pages: 50 by default, at most 500.
const CURSORS: Cursors = Cursors { kind: "uv", default_page: 50, max_page: 500 };

pub struct VerificationStats;

/// Counts of one country.
#[derive(SimpleObject)]
pub struct CountryStatusCounts {
    /// ISO 3166-1 alpha-2 code.
    country: String,
    counts: StatusCounts,
}

/// One user's verification of one level.
#[derive(SimpleObject)]
pub struct UserVerification {
    /// The gateway user, when the provider's user is linked to one and the caller holds `uid:read`.
    user_id: Option<ID>,
    level: String,
    /// The provider's word: approved, pending, contacted, rejected or expired.
    provider_status: String,
    state: KycState,
}

#[derive(SimpleObject)]
pub struct UserVerificationEdge {
    cursor: String,
    node: UserVerification,
}

#[derive(SimpleObject)]
pub struct UserVerificationConnection {
    edges: Vec<UserVerificationEdge>,
    page_info: PageInfo,
    total_count: u64,
}

fn source<'a>(ctx: &Context<'a>) -> Result<(Provider, &'a dyn StatisticsSource)> {
    services(ctx).providers.set.statistics().map_err(errors::missing)
}

#[Object]
impl VerificationStats {
    /// Verifications per status, over every user and level.
    async fn total(&self, ctx: &Context<'_>) -> Result<StatusCounts> {
        let (provider, source) = source(ctx)?;
        source.total().await.map_err(|e| errors::provider(provider, &e))
    }

    /// Verifications per status and country, in country-code order.
    async fn by_country(&self, ctx: &Context<'_>) -> Result<Vec<CountryStatusCounts>> {
        let (provider, source) = source(ctx)?;
        let rows = source.by_country().await.map_err(|e| errors::provider(provider, &e))?;
        Ok(rows.into_iter().map(|(country, counts)| CountryStatusCounts { country, counts }).collect())
    }

    /// Every user's verification per level, a page at a time (`first` at most 500, default 50). Lists other users, so
    /// it also needs `client.users:read`; `userId` needs `uid:read`.
    #[graphql(requires_scopes = "client.stats:read client.users:read")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<UserVerificationConnection> {
        let window = CURSORS.window(first, after.as_deref())?;
        let show_ids = rules::stats_user_ids(principal(ctx));
        let (provider, source) = source(ctx)?;
        let all = source.level_verifications().await.map_err(|e| errors::provider(provider, &e))?;
        let total = all.len();
        let rows: Vec<_> = all.into_iter().skip(window.offset).take(window.limit).collect();
        let (cursors, page_info) = CURSORS.page(window, rows.len(), total);
        // The page's gateway users in one directory pass, each distinct reference once.
        let users: Vec<Option<UserId>> = match show_ids {
            true => {
                let mut at: HashMap<&str, usize> = HashMap::new();
                let mut distinct: Vec<String> = Vec::new();
                for row in &rows {
                    at.entry(row.provider_user.as_str()).or_insert_with(|| {
                        distinct.push(row.provider_user.clone());
                        distinct.len() - 1
                    });
                }
                let found = source.users_of(&distinct).await.map_err(|e| errors::internal("directory", &e))?;
                rows.iter().map(|row| found[at[row.provider_user.as_str()]].clone()).collect()
            }
            false => vec![None; rows.len()],
        };
        let mut edges = Vec::with_capacity(rows.len());
        for ((row, cursor), user_id) in rows.into_iter().zip(cursors).zip(users) {
            let node = UserVerification {
                user_id: user_id.map(|u| ID(u.into())),
                level: row.level,
                provider_status: row.status,
                state: row.state,
            };
            edges.push(UserVerificationEdge { cursor, node });
        }
        Ok(UserVerificationConnection { edges, page_info, total_count: total as u64 })
    }
}
