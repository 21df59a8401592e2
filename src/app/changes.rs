//! The replica's follower of the change channel.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::graphql::Pushed;
use crate::providers::Providers;
use crate::store::changes::{Change, Changes};

/// Applies every change published on the channel to this replica's caches, then hands verification events to this
/// replica's subscribers (so a subscriber's next query already sees the change), until aborted.
pub fn follow(changes: &Changes, providers: Providers, events: broadcast::Sender<Pushed>) -> tokio::task::AbortHandle {
    let mut receiver = changes.subscribe();
    tokio::spawn(async move {
        loop {
            match receiver.recv().await {
                Ok(change) => {
                    providers.apply(&change).await;
                    // No subscriber is no error.
                    match change {
                        Change::Verification { event } => {
                            let _ = events.send(Pushed::Event(Arc::new(event)));
                        }
                        Change::Resync => {
                            let _ = events.send(Pushed::Gap);
                        }
                        Change::UserChanged { .. } => {}
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    providers.apply(&Change::Resync).await;
                    let _ = events.send(Pushed::Gap);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
    .abort_handle()
}
