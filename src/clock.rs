//! The wall clock as unix time, in one place: token claims, provider signatures and headers, and the sandboxes all
//! speak unix seconds, and a clock set before 1970 must not panic any of them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the unix epoch (0 for a clock set before it).
pub fn unix_seconds() -> i64 {
    since_epoch().as_secs() as i64
}

/// Milliseconds since the unix epoch (0 for a clock set before it).
pub fn unix_millis() -> i64 {
    since_epoch().as_millis() as i64
}

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The clock a component reads, injectable: the system clock in service, a hand-moved one in tests (a week of
/// retention passes in a call, not a week).
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.manual.is_some() { "Clock(manual)" } else { "Clock(system)" })
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A clock that stands at `unix_millis` until [`Clock::advance`] moves it.
    pub fn manual(unix_millis: i64) -> Self {
        Clock { manual: Some(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(unix_millis))) }
    }

    /// Milliseconds since the unix epoch.
    pub fn unix_millis(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(std::sync::atomic::Ordering::SeqCst),
            None => unix_millis(),
        }
    }

    /// Moves a manual clock forward (the system clock moves by itself: nothing happens).
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.manual {
            at.fetch_add(by.as_millis() as i64, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
