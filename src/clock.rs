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
