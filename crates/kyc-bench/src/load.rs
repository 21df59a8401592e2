//! The load driver: a fixed number of concurrent workers, a bounded number of requests, latencies recorded.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// What one mode measured.
pub struct Measured {
    pub latencies: Vec<Duration>,
    pub failures: u64,
    pub first_failure: Option<String>,
    pub elapsed: Duration,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
    }
}

/// Runs `request(n)` from `concurrency` workers until `duration` passes or `max` requests have gone.
pub async fn drive<F, Fut>(concurrency: usize, duration: Duration, max: u64, request: F) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let request = Arc::new(request);
    let issued = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let first_failure = Arc::new(Mutex::new(None));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (request, issued, failures, first_failure) =
            (request.clone(), issued.clone(), failures.clone(), first_failure.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= max || started.elapsed() >= duration {
                    break;
                }
                let sent = Instant::now();
                match request(n).await {
                    Ok(()) => latencies.push(sent.elapsed()),
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_failure.lock().await.get_or_insert(e);
                    }
                }
            }
            latencies
        })
    });
    let mut latencies = Vec::new();
    for worker in futures_util::future::join_all(workers).await {
        latencies.extend(worker.expect("a worker finishes"));
    }
    let elapsed = started.elapsed();
    let first_failure = first_failure.lock().await.take();
    Measured { latencies, failures: failures.load(Ordering::Relaxed), first_failure, elapsed }
}
