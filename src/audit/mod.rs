//! The audit trail: who read whose personal data, which fields, when and why; never the values. One hash chain across
//! every replica, appended in batches by one writer per replica, in the mode `KYC_GATEWAY_AUDIT` names; nothing updates
//! or deletes a record but retention. See docs/operations.md, "Accountability: the audit trail".

pub mod chain;
pub mod checkpoint;
pub mod dictionaries;
pub mod layout;
pub mod read;
mod writer;

use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use crate::store::Store;

/// What an audited field came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// The value was in the answer.
    Returned,
    /// The caller was refused it.
    Denied,
}

/// One field path of a record (`user.verificationCases.details.fullName`: field names, never the caller's aliases,
/// no list positions), and whose values they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldAccess {
    pub path: String,
    pub outcome: Outcome,
    /// The users whose values these were (empty when no resolver said, e.g. a denied field, and in records written
    /// before fields named their subjects: such a field is taken to be every subject's of the record). Left out of
    /// the hashed JSON when empty, so older records keep their hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

/// Who made the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// `user`, `client`, `provider` (a webhook) or `system` (retention).
    pub kind: String,
    /// The user id, the client id, the provider or the task.
    pub id: String,
    /// The token's issuer (empty for providers and the system).
    pub issuer: String,
}

/// A record before it is appended (the writer gives it its place and hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix milliseconds.
    pub at: i64,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub caller: Caller,
    /// The users whose data the operation returned.
    pub subjects: Vec<String>,
    pub fields: Vec<FieldAccess>,
    pub operation_name: Option<String>,
    /// `query`, `mutation`, `subscription`, `webhook` or `retention`.
    pub operation_type: String,
    /// SHA-256 of the document, hex (empty for webhooks).
    pub document_hash: String,
    /// Why the caller read it, as it stated.
    pub purpose: Option<String>,
    /// The webhook or mutation that caused a write.
    pub cause: Option<String>,
}

/// A record of the trail: an entry in its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Strict,
    Buffered,
    Off,
}

/// Settings of the trail.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub mode: Mode,
    /// Records older than this are removed (a checkpoint keeps the rest verifiable).
    pub retention: Duration,
    /// At most this many records are kept, the oldest removed first (sandbox mode's in-memory database).
    pub keep_last: Option<u64>,
    /// Records waiting for the writer; a full queue makes requests wait.
    pub queue: usize,
    /// How long a strict request waits for its record to commit before it is refused.
    pub commit_timeout: Duration,
    /// A client token reading personal data must state a purpose.
    pub require_purpose: bool,
    /// Display names of clients in users' access logs (`(issuer, client id) -> name`; no issuer: the issuer that
    /// names users); others show as "a service".
    pub caller_names: Vec<(Option<String>, String, String)>,
    /// Signed checkpoints of the chain's head (none without a key).
    pub checkpoints: checkpoint::CheckpointSettings,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            mode: Mode::Strict,
            retention: Duration::from_secs(2190 * 24 * 3600),
            keep_last: None,
            queue: 10_000,
            commit_timeout: Duration::from_secs(2),
            require_purpose: false,
            caller_names: Vec::new(),
            checkpoints: checkpoint::CheckpointSettings::default(),
        }
    }
}

/// Why a record could not be written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the audit trail cannot take records: {0}")]
pub struct AuditError(pub String);

/// A record to write, and who waits for its commit.
struct Job {
    entry: Entry,
    committed: Option<oneshot::Sender<Result<(), AuditError>>>,
}

/// The trail's handle: what requests, the webhook worker and the CLI write through.
#[derive(Clone)]
pub struct Audit {
    mode: Mode,
    jobs: Option<mpsc::Sender<Job>>,
    commit_timeout: Duration,
    running: Running,
}

/// The writer task of a replica, stopped at shutdown by [`Writer::finish`].
pub struct Writer {
    stop: oneshot::Sender<Instant>,
    task: tokio::task::JoinHandle<writer::Drained>,
    running: Running,
}

/// How long past the deadline [`Writer::finish`] waits for the writer before it aborts it (the writer keeps to the
/// deadline by itself; this is a backstop).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// The least time a shutdown gives the writer to write the records it still holds, when the requests in flight and
/// the operations running on used up the shutdown deadline.
const FLUSH_AT_LEAST: Duration = Duration::from_secs(2);

impl Audit {
    /// Starts the writer on `store` (nothing in `off` mode); the handle and the writer task.
    pub fn start(store: &Store, settings: &AuditSettings) -> (Audit, Option<Writer>) {
        let running = Running::default();
        if settings.mode == Mode::Off {
            return (Audit { mode: Mode::Off, jobs: None, commit_timeout: settings.commit_timeout, running }, None);
        }
        let (jobs, receiver) = mpsc::channel(settings.queue.max(1));
        let (stop, stopped) = oneshot::channel();
        let retention = writer::Retention { older_than: settings.retention, keep_last: settings.keep_last };
        let signing = settings.checkpoints.key.is_some().then(|| settings.checkpoints.clone());
        let task = tokio::spawn(writer::run(store.clone(), receiver, retention, signing, stopped));
        (
            Audit {
                mode: settings.mode,
                jobs: Some(jobs),
                commit_timeout: settings.commit_timeout,
                running: running.clone(),
            },
            Some(Writer { stop, task, running }),
        )
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Marks an operation running until the guard is dropped: a shutdown lets it leave its record first (see
    /// [`Writer::finish`]).
    pub fn running(&self) -> Running {
        self.running.enter()
    }

    /// Appends `entry`: in strict mode once it is committed, in buffered mode once it is queued.
    pub async fn record(&self, entry: Entry) -> Result<(), AuditError> {
        use crate::telemetry::metrics as m;
        let started = std::time::Instant::now();
        let result = self.write(entry).await;
        let outcome = match (&result, self.mode) {
            (Err(_), _) => "failed",
            (Ok(()), Mode::Strict) => "committed",
            (Ok(()), Mode::Buffered) => "queued",
            (Ok(()), Mode::Off) => return result,
        };
        metrics::counter!(m::AUDIT_RECORDS, "result" => outcome).increment(1);
        metrics::histogram!(m::AUDIT_WAIT).record(started.elapsed().as_secs_f64());
        result
    }

    async fn write(&self, entry: Entry) -> Result<(), AuditError> {
        let Some(jobs) = &self.jobs else { return Ok(()) };
        match self.mode {
            Mode::Off => Ok(()),
            Mode::Buffered => jobs
                .send(Job { entry, committed: None })
                .await
                .map_err(|_| AuditError("the audit writer stopped".into())),
            Mode::Strict => {
                let (done, committed) = oneshot::channel();
                let wait = async {
                    jobs.send(Job { entry, committed: Some(done) })
                        .await
                        .map_err(|_| AuditError("the audit writer stopped".into()))?;
                    committed.await.map_err(|_| AuditError("the audit writer stopped".into()))?
                };
                tokio::time::timeout(self.commit_timeout, wait)
                    .await
                    .map_err(|_| AuditError("the record was not committed in time".into()))?
            }
        }
    }
}

impl Writer {
    /// Stops the writer at shutdown, by `deadline`: waits for the operations still running to leave their records, then
    /// closes the queue and lets the writer write what it holds and the buffered records it was retrying. What misses
    /// the deadline is lost, and counted in the log.
    pub async fn finish(self, deadline: Instant) {
        if tokio::time::timeout_at(deadline, self.running.idle()).await.is_err() {
            let operations = self.running.count();
            tracing::warn!(
                operations,
                "operations still running at the shutdown deadline: their records may be missing"
            );
        }
        // Whatever the requests and operations used up of the deadline, the writer gets at least this from here.
        let flush_by = deadline.max(Instant::now() + FLUSH_AT_LEAST);
        let _ = self.stop.send(flush_by);
        let mut task = self.task;
        if tokio::time::timeout_at(flush_by + STOP_GRACE, &mut task).await.is_err() {
            task.abort();
            tracing::error!("the audit writer did not stop by the shutdown deadline; the records it held are lost");
        }
    }
}

/// The operations running, for the shutdown to wait on; a clone made by [`Running::enter`] counts one until dropped.
#[derive(Default)]
pub struct Running {
    shared: Arc<RunningShared>,
    /// Whether this one counts (the handle's own does not).
    counts: bool,
}

#[derive(Default)]
struct RunningShared {
    count: AtomicUsize,
    idle: Notify,
}

impl Clone for Running {
    /// Another handle on the same count, counting nothing itself.
    fn clone(&self) -> Self {
        Running { shared: self.shared.clone(), counts: false }
    }
}

impl Running {
    fn enter(&self) -> Running {
        self.shared.count.fetch_add(1, Ordering::SeqCst);
        Running { shared: self.shared.clone(), counts: true }
    }

    fn count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// Until no operation runs.
    async fn idle(&self) {
        loop {
            let idle = self.shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.counts && self.shared.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.idle.notify_waiters();
        }
    }
}
