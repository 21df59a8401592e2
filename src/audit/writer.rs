//! The writer: one task per replica that appends queued records in batches (group commit: one transaction for many
//! requests), tells strict requests the outcome, writes failed buffered records again first (never dropping one) and
//! applies retention. At shutdown ([`super::Writer::finish`]) it writes what it still holds until the deadline.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::checkpoint::{self, CheckpointSettings, NotSigned, Signer, SigningKey};
use super::dictionaries::Dictionaries;
use super::{chain, AuditError, Job};
use crate::store::Store;

/// The most records one transaction appends.
const BATCH: usize = 512;
/// How often retention runs: hourly by age; every few seconds when the number of records is bounded (an in-memory
/// database under load grows by thousands of records a second).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
const KEEP_LAST_EVERY: Duration = Duration::from_secs(5);

/// How many records a trail bounded to `keep` takes before it is trimmed again: it never holds more than `keep`, this
/// many, and one batch.
fn trim_after(keep: u64) -> u64 {
    (keep / 10).max(BATCH as u64)
}

/// Which records retention removes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retention {
    /// Records older than this.
    pub older_than: Duration,
    /// All but this many of the newest.
    pub keep_last: Option<u64>,
}
/// The shortest time between two checkpoints signed by the clock.
const MIN_EVERY: Duration = Duration::from_millis(10);
/// How long a failed buffered write waits before it is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// How the writer ended: the records it wrote after it was told to stop, and the buffered ones it could not write
/// by the deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Drained {
    pub written: u64,
    pub lost: u64,
}

/// Signs the head when it moved since the signer's last checkpoint, and hands the checkpoint to the witness; failures
/// are logged, refusals counted too (the records are written whatever becomes of their checkpoint).
async fn sign(store: &Store, signer: &mut Signer, settings: &CheckpointSettings, at: Option<i64>) {
    match signer.sign_at(store, at).await {
        Ok(None) => {}
        Ok(Some(signed)) => {
            tracing::debug!(seq = signed.seq, key_id = %signed.key_id, "audit checkpoint signed");
            if let Some(path) = &settings.witness {
                if let Err(error) = checkpoint::witness(path.clone(), &signed).await {
                    tracing::error!(%error, seq = signed.seq, "audit checkpoint not written to the witness file");
                }
            }
        }
        Err(NotSigned::Refused(reason)) => {
            metrics::counter!(crate::telemetry::metrics::AUDIT_CHECKPOINTS_REFUSED).increment(1);
            tracing::error!(%reason, "audit checkpoint refused: the records were changed in the database; restart once investigated");
        }
        Err(NotSigned::Store(error)) => tracing::warn!(%error, "audit checkpoint not signed; trying again later"),
    }
}

/// The signer's task: the writer sends it the place of its record that completed every so many records; it signs
/// there, signs the head every so long when records came, and once more when the writer drops `targets` at its end.
/// It walks on a connection of its own: no commit waits for a walk.
async fn sign_on(store: Store, key: SigningKey, settings: CheckpointSettings, mut targets: mpsc::Receiver<i64>) {
    let mut signer = Signer::new(key);
    if let Err(error) = signer.load(&store).await {
        tracing::warn!(%error, "the stored audit checkpoints were not read; trying again at the next checkpoint");
    }
    let mut tick = tokio::time::interval_at(Instant::now() + settings.every, settings.every.max(MIN_EVERY));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            target = targets.recv() => match target {
                // At the writer's end, what is still queued is covered by the last signature.
                Some(_) if targets.is_closed() => break,
                Some(at) => {
                    sign(&store, &mut signer, &settings, Some(at)).await;
                    tick.reset();
                }
                None => break,
            },
            _ = tick.tick() => sign(&store, &mut signer, &settings, None).await,
        }
    }
    // The writer ended: the last records signed too.
    sign(&store, &mut signer, &settings, None).await;
}

/// How many places to sign may wait for a busy signer; past it a place is skipped (the next one covers its records).
const SIGN_QUEUE: usize = 64;

/// Appends what `jobs` brings until `stop` gives a deadline (or is dropped: then without one), then drains the queue;
/// with `signing`, a signer task of its own signs checkpoints ([`sign_on`]), one at the end within the deadline.
pub(super) async fn run(
    store: Store,
    mut jobs: mpsc::Receiver<Job>,
    retention: Retention,
    signing: Option<CheckpointSettings>,
    mut stop: oneshot::Receiver<Instant>,
) -> Drained {
    let every = if retention.keep_last.is_some() { KEEP_LAST_EVERY } else { RETENTION_EVERY };
    let mut retention_tick = tokio::time::interval(every);
    retention_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (targets, targets_seen) = mpsc::channel(SIGN_QUEUE);
    let every_records = signing.as_ref().map_or(u64::MAX, |settings| settings.every_records.max(1));
    let signer = signing.and_then(|settings| {
        let key = settings.key.clone()?;
        Some(tokio::spawn(sign_on(store.clone(), key, settings, targets_seen)))
    });
    // Records this writer appended since it last asked for a checkpoint.
    let mut unsigned: u64 = 0;
    let mut appended_to = move |count: u64, last: i64| {
        unsigned += count;
        if unsigned >= every_records {
            unsigned = 0;
            let _ = targets.try_send(last);
        }
    };
    let mut dictionaries = Dictionaries::default();
    // Buffered records not written yet.
    let mut unwritten: Vec<Job> = Vec::new();
    // Records appended since the bounded trail was last trimmed.
    let mut appended: u64 = 0;
    // `stop` is polled until it resolves, never after: the loop ends there.
    let deadline = loop {
        if !unwritten.is_empty() {
            match write(&store, &unwritten, &mut dictionaries).await {
                Ok(last) => {
                    appended_to(unwritten.len() as u64, last);
                    unwritten.clear();
                }
                Err(error) => {
                    tracing::error!(%error, records = unwritten.len(), "buffered audit records not written; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_EVERY) => continue,
                        deadline = &mut stop => break deadline.ok(),
                    }
                }
            }
        }
        let first = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => break None,
            },
            deadline = &mut stop => break deadline.ok(),
            _ = retention_tick.tick() => {
                let before = crate::clock::unix_millis() - retention.older_than.as_millis() as i64;
                let mut purged = chain::purge(&store, chain::Cutoff::Before(before)).await;
                // Only after new records: trimming a trail at its bound adds a record of its own, every tick.
                if let (Ok(_), Some(keep), true) = (&purged, retention.keep_last, appended > 0) {
                    purged = chain::purge(&store, chain::Cutoff::KeepLast(keep)).await;
                    appended = 0;
                }
                match purged {
                    Ok(0) => {}
                    Ok(removed) => tracing::debug!(removed, "audit records past the retention removed"),
                    Err(error) => tracing::warn!(%error, "audit retention failed; retrying later"),
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
        let result = write(&store, &batch, &mut dictionaries).await;
        if let Err(error) = &result {
            tracing::error!(%error, records = batch.len(), "audit records not written");
        }
        // A bounded trail is also trimmed by count, so that no rate of requests outgrows it between two ticks.
        if let (Ok(_), Some(keep)) = (&result, retention.keep_last) {
            appended += batch.len() as u64;
            if appended >= trim_after(keep) {
                appended = 0;
                if let Err(error) = chain::purge(&store, chain::Cutoff::KeepLast(keep)).await {
                    tracing::warn!(%error, "audit retention failed; retrying later");
                }
            }
        }
        let written = result.as_ref().ok().map(|last| (batch.len() as u64, *last));
        let result = result.map(|_| ());
        settle(batch, &result, &mut unwritten);
        // After the strict requests heard of their commit; the signer walks and signs on its own task.
        if let Some((count, last)) = written {
            appended_to(count, last);
        }
    };
    let drained = drain(&store, jobs, unwritten, deadline, &mut dictionaries).await;
    // The signer signs the last records too, within the deadline.
    drop(appended_to);
    if let Some(mut signer) = signer {
        match deadline {
            Some(deadline) => {
                if tokio::time::timeout_at(deadline, &mut signer).await.is_err() {
                    signer.abort();
                    tracing::warn!("the last audit checkpoint was not signed by the shutdown deadline");
                }
            }
            None => {
                let _ = signer.await;
            }
        }
    }
    drained
}

/// Tells each strict request of `batch` how its record went; keeps the buffered records that failed for a retry.
fn settle(batch: Vec<Job>, result: &Result<(), AuditError>, unwritten: &mut Vec<Job>) {
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

/// The end: no new record is taken; the buffered records being retried and everything queued are written, until
/// `deadline` when there is one. The buffered records left then are lost: counted (never shown) in the log.
async fn drain(
    store: &Store,
    mut jobs: mpsc::Receiver<Job>,
    mut unwritten: Vec<Job>,
    deadline: Option<Instant>,
    dictionaries: &mut Dictionaries,
) -> Drained {
    jobs.close();
    let mut drained = Drained::default();
    let expired = || deadline.is_some_and(|d| Instant::now() >= d);
    loop {
        let mut batch = std::mem::take(&mut unwritten);
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        if expired() {
            unwritten = batch;
            break;
        }
        let writing = write(store, &batch, dictionaries);
        let result = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, writing).await {
                Ok(result) => result,
                Err(_) => {
                    unwritten = batch;
                    break;
                }
            },
            None => writing.await,
        }
        .map(|_| ());
        match &result {
            Ok(()) => drained.written += batch.len() as u64,
            Err(error) => tracing::error!(%error, records = batch.len(), "audit records not written; retrying"),
        }
        let failed = result.is_err();
        settle(batch, &result, &mut unwritten);
        if failed {
            let retry = Instant::now() + RETRY_EVERY;
            tokio::time::sleep_until(deadline.map_or(retry, |d| d.min(retry))).await;
        }
    }
    let stopped = Err(AuditError("the audit writer stopped".into()));
    for job in unwritten.into_iter().chain(std::iter::from_fn(|| jobs.try_recv().ok())) {
        match job.committed {
            Some(committed) => {
                let _ = committed.send(stopped.clone());
            }
            None => drained.lost += 1,
        }
    }
    if drained.lost > 0 {
        tracing::error!(lost = drained.lost, "buffered audit records not written by the shutdown deadline: lost");
    } else if drained.written > 0 {
        tracing::info!(records = drained.written, "audit records still queued at shutdown written");
    }
    drained
}

/// One batch in one transaction (a span of its own: the store call behind every strict answer), with the writer's
/// cache of dictionary ids, which keeps the ids the transaction added only once it committed.
#[tracing::instrument(name = "audit.append", skip_all, fields(records = batch.len()))]
async fn write(store: &Store, batch: &[Job], dictionaries: &mut Dictionaries) -> Result<i64, AuditError> {
    let failed = |e: &dyn std::fmt::Display| AuditError(e.to_string());
    // Ids a write cut short by the shutdown deadline added never count.
    dictionaries.settle(false);
    let written = async {
        let mut tx = store.begin_write().await.map_err(|e| failed(&e))?;
        let entries: Vec<&super::Entry> = batch.iter().map(|job| &job.entry).collect();
        let written = chain::append_with(store, &mut tx, &entries, dictionaries).await.map_err(|e| failed(&e))?;
        tx.commit().await.map_err(|e| failed(&e))?;
        Ok(written.last().map_or(0, |record| record.seq))
    }
    .await;
    dictionaries.settle(written.is_ok());
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Caller, Entry};
    use crate::store::StoreSettings;

    fn job(i: usize) -> Job {
        let entry = Entry {
            // Now: retention, whose first tick comes at once, keeps it.
            at: crate::clock::unix_millis(),
            request_id: format!("req-{i}"),
            trace_id: None,
            caller: Caller { kind: "user".into(), id: "u".into(), issuer: String::new() },
            subjects: vec!["u".into()],
            fields: Vec::new(),
            operation_name: None,
            operation_type: "query".into(),
            document_hash: String::new(),
            purpose: None,
            cause: None,
        };
        Job { entry, committed: None }
    }

    async fn store() -> Store {
        let store = Store::connect(&StoreSettings::memory()).await.expect("a store");
        store.migrate().await.expect("migrated");
        store
    }

    async fn records(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_records").fetch_one(store.pool()).await.expect("count")
    }

    #[tokio::test]
    async fn at_stop_every_queued_record_is_written_before_the_writer_ends() {
        let store = store().await;
        let (jobs, receiver) = mpsc::channel(100);
        let (stop, stopped) = oneshot::channel();
        // Queued before the writer even starts: the stop comes first, the records must still be written.
        for i in 0..40 {
            jobs.send(job(i)).await.expect("queued");
        }
        stop.send(Instant::now() + Duration::from_secs(10)).expect("stop");
        let drained = run(
            store.clone(),
            receiver,
            Retention { older_than: Duration::from_secs(3600), keep_last: None },
            None,
            stopped,
        )
        .await;
        assert_eq!(drained.lost, 0);
        assert_eq!(records(&store).await, 40);
        assert!(jobs.send(job(41)).await.is_err(), "a stopped writer takes no more records");
        assert_eq!(crate::audit::chain::verify(&store).await.expect("intact").records, 40);
    }

    #[tokio::test]
    async fn a_bounded_trail_stays_bounded_however_fast_records_come_between_two_ticks() {
        let store = store().await;
        let (jobs, receiver) = mpsc::channel(10_000);
        let (stop, stopped) = oneshot::channel();
        let keep = 1_000;
        let writer = tokio::spawn(run(
            store.clone(),
            receiver,
            Retention { older_than: Duration::from_secs(3600), keep_last: Some(keep) },
            None,
            stopped,
        ));
        // Five times the bound, far faster than the retention tick (every few seconds) comes.
        for i in 0..5 * keep as usize {
            jobs.send(job(i)).await.expect("queued");
        }
        // Stopped once the writer took them all (a stop drains what is queued without trimming).
        while jobs.capacity() < jobs.max_capacity() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop.send(Instant::now() + Duration::from_secs(10));
        assert_eq!(writer.await.expect("joined").lost, 0);
        let held = records(&store).await as u64;
        assert!(held <= keep + trim_after(keep) + BATCH as u64, "{held} records held");
        crate::audit::chain::verify(&store).await.expect("intact");
    }

    #[tokio::test]
    async fn records_the_store_never_takes_are_counted_as_lost_at_the_deadline() {
        let store = store().await;
        sqlx::query("CREATE TRIGGER refuse BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'injected'); END")
            .execute(store.pool())
            .await
            .expect("the trigger");
        let (jobs, receiver) = mpsc::channel(100);
        let (stop, stopped) = oneshot::channel();
        let writer = tokio::spawn(run(
            store.clone(),
            receiver,
            Retention { older_than: Duration::from_secs(3600), keep_last: None },
            None,
            stopped,
        ));
        for i in 0..3 {
            jobs.send(job(i)).await.expect("queued");
        }
        let started = Instant::now();
        stop.send(Instant::now() + Duration::from_millis(300)).expect("stop");
        let drained = writer.await.expect("the writer ends");
        assert_eq!(drained, Drained { written: 0, lost: 3 });
        assert!(started.elapsed() < Duration::from_secs(3), "the writer kept to the deadline: {:?}", started.elapsed());
    }
}
