//! The writer: one task per replica that appends queued records in batches (group commit) and applies retention.
//!
//! It takes every record waiting (up to a batch) and appends them in one transaction, then tells each strict request
//! its record is committed (or that it failed: then every request of the batch hears it, and refuses its personal
//! data). Under load a batch holds many requests, so the cost per request is a share of one commit. A buffered
//! record whose write failed is kept and written again (every second) before anything else: the queue fills and
//! requests wait, but no record is dropped.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{chain, AuditError, Job};
use crate::store::Store;

/// The most records one transaction appends.
const BATCH: usize = 512;
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

pub(super) async fn run(store: Store, mut jobs: mpsc::Receiver<Job>, retention: Duration) {
    let mut retention_tick = tokio::time::interval(RETENTION_EVERY);
    retention_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Buffered records not written yet.
    let mut unwritten: Vec<Job> = Vec::new();
    loop {
        if !unwritten.is_empty() {
            match write(&store, &unwritten).await {
                Ok(()) => unwritten.clear(),
                Err(error) => {
                    tracing::error!(%error, records = unwritten.len(), "buffered audit records not written; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let first = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = retention_tick.tick() => {
                let before = crate::clock::unix_millis() - retention.as_millis() as i64;
                match chain::purge(&store, before).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "audit records past the retention period removed"),
                    Err(error) => tracing::warn!(%error, "audit retention failed; retrying in an hour"),
                }
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = write(&store, &batch).await;
        if let Err(error) = &result {
            tracing::error!(%error, records = batch.len(), "audit records not written");
        }
        for job in batch {
            match job.committed {
                Some(committed) => {
                    let _ = committed.send(result.clone());
                }
                None if result.is_err() => unwritten.push(job),
                None => {}
            }
        }
    }
}

/// One batch in one transaction (a span of its own: the store call behind every strict answer).
#[tracing::instrument(name = "audit.append", skip_all, fields(records = batch.len()))]
async fn write(store: &Store, batch: &[Job]) -> Result<(), AuditError> {
    let failed = |e: &dyn std::fmt::Display| AuditError(e.to_string());
    let mut tx = store.begin_write().await.map_err(|e| failed(&e))?;
    let entries: Vec<&super::Entry> = batch.iter().map(|job| &job.entry).collect();
    chain::append(store, &mut tx, &entries).await.map_err(|e| failed(&e))?;
    tx.commit().await.map_err(|e| failed(&e))
}
