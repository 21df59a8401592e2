//! `VerificationStats`: Fractal's client statistics, read with the gateway's client-credentials token.

use async_graphql::{Context, Object, Result, SimpleObject, ID};
use base64::Engine;

use super::errors::{self, bad_input};
use super::scope::{principal, require};
use super::Services;
use crate::auth::{UID_READ, USERS_READ};
use crate::domain::KycState;
use crate::providers::fractal::StatusCounts;

/// Page size when `first` is not given, and the largest one allowed.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

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
    /// The gateway user, when the Fractal user is linked to one and the caller holds `uid:read`.
    user_id: Option<ID>,
    level: String,
    /// Fractal's word: approved, pending, contacted, rejected or expired.
    provider_status: String,
    state: KycState,
}

#[derive(SimpleObject)]
pub struct UserVerificationEdge {
    cursor: String,
    node: UserVerification,
}

#[derive(SimpleObject)]
pub struct PageInfo {
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<String>,
    end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct UserVerificationConnection {
    edges: Vec<UserVerificationEdge>,
    page_info: PageInfo,
    total_count: u64,
}

fn cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("uv:{offset}"))
}

fn offset_after(after: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(after).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("uv:")?.parse::<usize>().ok().map(|o| o + 1)
}

#[Object]
impl VerificationStats {
    /// Verifications per status, over every user and level.
    async fn total(&self, ctx: &Context<'_>) -> Result<StatusCounts> {
        ctx.data_unchecked::<Services>().fractal.total_verifications().await.map_err(|e| errors::fractal(&e))
    }

    /// Verifications per status and country, in country-code order.
    async fn by_country(&self, ctx: &Context<'_>) -> Result<Vec<CountryStatusCounts>> {
        let rows =
            ctx.data_unchecked::<Services>().fractal.country_verifications().await.map_err(|e| errors::fractal(&e))?;
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
        let first = match first {
            None => DEFAULT_PAGE,
            Some(n) if (0..=MAX_PAGE as i32).contains(&n) => n as usize,
            Some(_) => return Err(bad_input(format!("first must be between 0 and {MAX_PAGE}"))),
        };
        let start = match after.as_deref() {
            None => 0,
            Some(c) => offset_after(c).ok_or_else(|| bad_input("after is not a cursor of this connection"))?,
        };
        require(ctx, USERS_READ)?;
        let show_ids = principal(ctx).has(UID_READ);
        let services = ctx.data_unchecked::<Services>();
        let all = services.fractal.user_verifications().await.map_err(|e| errors::fractal(&e))?;
        let total = all.len();
        let mut edges = Vec::new();
        for (offset, row) in all.into_iter().enumerate().skip(start).take(first) {
            let user_id = match show_ids {
                true => services
                    .directory
                    .user_for_fractal_uid(&row.fractal_uid)
                    .await
                    .map_err(|e| errors::internal("directory", &e))?,
                false => None,
            };
            edges.push(UserVerificationEdge {
                cursor: cursor(offset),
                node: UserVerification {
                    user_id: user_id.map(ID),
                    level: row.level,
                    provider_status: row.status,
                    state: row.state,
                },
            });
        }
        let end = start + edges.len();
        Ok(UserVerificationConnection {
            page_info: PageInfo {
                has_next_page: end < total,
                has_previous_page: start > 0,
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: total as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(offset_after(&cursor(41)), Some(42));
        assert_eq!(offset_after("bm9wZQ"), None);
        assert_eq!(offset_after("%%%"), None);
    }
}
