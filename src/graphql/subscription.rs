//! The subscription root: `verificationChanged`, fed by the change channel through one bounded broadcast per replica. A
//! subscriber further behind than its buffer ends with `SUBSCRIBER_TOO_SLOW`, a resync gives every one `EVENTS_MISSED`,
//! and each event passes the queries' own rules (`authz::rules`). See docs/operations.md, "Subscriptions".

use std::sync::Arc;

use async_graphql::{Context, Object, Result, Subscription, ID};

use crate::telemetry::metrics;
use futures_util::Stream;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::errors::{self, coded, unauthorized, ErrorCode};
use super::{principal, services};
use crate::auth::Principal;
use crate::authz::rules::{self, Watch};
use crate::domain::events::VerificationEvent;
use crate::domain::{KycState, Provider};

/// What this replica pushes to its subscriptions.
#[derive(Debug, Clone)]
pub enum Pushed {
    /// A verification changed.
    Event(Arc<VerificationEvent>),
    /// Changes may have been missed (the change channel lost its connection): subscribers should query the state.
    Gap,
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// A user's verification changes: one's own with a user token (`userId` left out or one's own), anyone's (or,
    /// without `userId`, everyone's) with `client.users:read`. Only events the token could see in a query arrive (a
    /// `plus` case needs `verification.plus:read`, an application `kyc_application:read`); `provider` narrows to one.
    async fn verification_changed(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        provider: Option<Provider>,
    ) -> Result<impl Stream<Item = Result<VerificationEventObject>>> {
        if user_id.as_ref().is_some_and(|id| id.len() > 256) {
            return Err(errors::bad_input("userId is longer than 256 characters"));
        }
        let principal = principal(ctx).clone();
        let watch = rules::watch(&principal, user_id.as_ref().map(|id| id.as_str())).map_err(unauthorized)?;
        let follow = Follow {
            receiver: services(ctx).events.subscribe(),
            principal,
            watch,
            provider,
            _gauged: metrics::Gauged::new(metrics::SUBSCRIPTIONS),
        };
        Ok(futures_util::stream::unfold(Some(follow), |follow| async move {
            let mut follow = follow?;
            loop {
                match follow.receiver.recv().await {
                    Ok(Pushed::Event(event)) if follow.wants(&event) => {
                        return Some((Ok(VerificationEventObject(event)), Some(follow)));
                    }
                    Ok(Pushed::Event(_)) => {}
                    Ok(Pushed::Gap) => {
                        let error = coded(
                            "the gateway may have missed changes; query the current state",
                            ErrorCode::EventsMissed,
                        );
                        return Some((Err(error), Some(follow)));
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let error = coded(
                            format!("this subscriber fell {missed} events behind and was closed; subscribe again"),
                            ErrorCode::SubscriberTooSlow,
                        );
                        return Some((Err(error), None));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }))
    }
}

/// One subscription's state.
struct Follow {
    receiver: broadcast::Receiver<Pushed>,
    principal: Principal,
    watch: Watch,
    provider: Option<Provider>,
    /// Counts the subscription while it runs.
    _gauged: metrics::Gauged,
}

impl Follow {
    fn wants(&self, event: &VerificationEvent) -> bool {
        let watched = match &self.watch {
            Watch::User(user) => user.as_str() == event.user_id.as_str(),
            Watch::Everyone => true,
        };
        watched
            && self.provider.is_none_or(|p| p == event.provider)
            && rules::event_visible(&self.principal, &event.user_id, event.kind, &event.level_items)
    }
}

/// A change of a user's verification at a provider.
pub struct VerificationEventObject(Arc<VerificationEvent>);

#[Object(name = "VerificationEvent")]
impl VerificationEventObject {
    /// The user, like `User.id`.
    #[graphql(requires_scopes = "uid:read")]
    async fn user_id(&self) -> Option<ID> {
        Some(ID(self.0.user_id.to_string()))
    }

    async fn provider(&self) -> Provider {
        self.0.provider
    }

    /// The provider's level string (a level name, a flow, a level or add-on, an application type).
    async fn level(&self) -> &str {
        &self.0.level
    }

    /// The items of the level, what the scopes are about.
    async fn level_items(&self) -> &[String] {
        &self.0.level_items
    }

    /// Where the verification stands now, in the gateway's words.
    async fn state(&self) -> KycState {
        self.0.state
    }

    /// The provider's own status word.
    async fn provider_status(&self) -> &str {
        &self.0.provider_status
    }

    /// When it happened at the provider.
    async fn occurred_at(&self) -> Result<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0.occurred_at) * 1_000_000)
            .map_err(|e| errors::internal("event time", &e))
    }
}
