//! Giving memory back to the system once a burst of requests is over.
//!
//! glibc's malloc keeps what freed memory it can in its arenas (one per thread that allocated, up to eight per core:
//! mallopt(3), `M_ARENA_MAX`) and returns to the system only the free space at the top of each heap, above
//! `M_TRIM_THRESHOLD`. The memory a burst of large queries freed in the middle of the heaps stays resident: measured
//! with `kyc-bench --scenario burst`, a gateway idle at 90 MB stayed at 616 MB for as long as it was watched
//! (BENCHMARKS.md, "burst"). `malloc_trim(3)` walks every arena and hands back the whole free pages in them; it locks
//! each arena in turn, so it runs on a blocking thread and only when the load has fallen, not under a steady one.
//!
//! The load is counted in requests, not bytes: a few huge queries over a steady stream of small ones need not make the
//! count fall, and are then given back by the trim once a minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the load is looked at.
const TICK: Duration = Duration::from_secs(1);
/// A load this many times below its peak since the last trim has fallen.
const FALLEN: u64 = 4;
/// Requests started or ended in the busiest tick for a fall to count: below it (a trickle, health probes) the load
/// was never a burst, and the trim once a minute is enough.
const BUSY: u64 = 16;
/// Ticks between two trims at least (a trickle of requests after a burst would otherwise trim every other second).
const LEAST_TICKS: u32 = 5;
/// Ticks between two trims at most while requests come (a steady load that never falls).
const MOST_TICKS: u32 = 60;

/// Whether to trim, decided once a tick from how many requests started or ended in it.
#[derive(Debug, Default)]
struct Falling {
    /// The busiest tick since the last trim.
    peak: u64,
    /// Requests started or ended since the last trim: with none, there is nothing new to give back.
    since: u64,
    /// Ticks since the last trim.
    ticks: u32,
    /// A trim after a fall asks for one more, `LEAST_TICKS` later, even with no request between: responses are
    /// written and connections closed after their requests end, and free memory too.
    trailing: bool,
}

impl Falling {
    fn tick(&mut self, events: u64) -> bool {
        self.peak = self.peak.max(events);
        self.since += events;
        self.ticks = self.ticks.saturating_add(1);
        if self.since == 0 && !self.trailing {
            // Quiet since the last trim: the first busy spell after it is not "a minute of load" yet.
            self.ticks = self.ticks.min(LEAST_TICKS);
            return false;
        }
        if self.ticks < LEAST_TICKS {
            return false;
        }
        let fallen = self.peak >= BUSY && events.saturating_mul(FALLEN) <= self.peak;
        let trim = fallen || self.ticks >= MOST_TICKS || (self.trailing && self.since == 0);
        if trim {
            *self = Falling { peak: events, since: 0, ticks: 0, trailing: fallen };
        }
        trim
    }
}

/// Counts requests starting and ending, for [`trim_after_bursts`].
#[derive(Debug, Default, Clone)]
pub struct Load(Arc<AtomicU64>);

impl Load {
    pub fn note(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Trims the allocator's arenas whenever `load` has fallen after a busy spell; runs until dropped.
pub async fn trim_after_bursts(load: Load) -> std::convert::Infallible {
    let mut falling = Falling::default();
    let mut seen = load.0.load(Ordering::Relaxed);
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = load.0.load(Ordering::Relaxed);
        if falling.tick(now.wrapping_sub(seen)) {
            let _ = tokio::task::spawn_blocking(trim).await;
        }
        seen = now;
    }
}

/// Hands the free pages of every arena back to the system (glibc); nothing elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    let started = std::time::Instant::now();
    // SAFETY: malloc_trim(3) takes a byte count to leave at the top of the main heap and has no preconditions; it
    // takes each arena's lock itself, so it is safe beside allocations on other threads.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(released = released == 1, took_ms = started.elapsed().as_millis() as u64, "allocator trimmed");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(falling: &mut Falling, ticks: &[u64]) -> Vec<usize> {
        ticks.iter().enumerate().filter(|(_, e)| falling.tick(**e)).map(|(i, _)| i).collect()
    }

    #[test]
    fn a_burst_that_ends_is_trimmed_when_it_ends_and_once_more_after_and_a_quiet_gateway_never() {
        let mut falling = Falling::default();
        assert_eq!(run(&mut falling, &[0; 90]), Vec::<usize>::new(), "nothing happened: nothing to give back");
        // Eight busy seconds, then quiet: a trim in the first quiet second, and one more five seconds later (what the
        // last responses and closing connections freed after their requests ended); then none.
        let mut burst = vec![500, 480, 510, 490, 505, 495, 500, 500];
        burst.extend([0; 30]);
        assert_eq!(run(&mut falling, &burst), vec![8, 13]);
    }

    #[test]
    fn a_steady_load_is_trimmed_only_once_a_minute() {
        let mut falling = Falling::default();
        let trims = run(&mut falling, &[300; 150]);
        assert_eq!(trims, vec![59, 119]);
    }

    #[test]
    fn a_trickle_of_requests_is_trimmed_only_once_a_minute() {
        let mut falling = Falling::default();
        // Health probes: a request every other second, for three minutes.
        let trickle: Vec<u64> = (0..180).map(|i| (i % 2) * 2).collect();
        let trims = run(&mut falling, &trickle);
        assert_eq!(trims, vec![59, 119, 179], "once a minute of load, never on the probes' ups and downs");
    }

    #[test]
    fn the_tail_of_a_burst_is_trimmed_again_once_it_has_ended_but_not_every_second() {
        let mut falling = Falling::default();
        // A burst, its slow queries ending over the next seconds, then a trickle of one request every other second.
        let mut ticks = vec![400, 400, 400, 400, 400, 30, 20, 10, 5, 0];
        ticks.extend((0..40).map(|i| i % 2));
        let trims = run(&mut falling, &ticks);
        assert_eq!(trims[..2], [5, 10], "the first fallen second, then what the tail freed");
        assert_eq!(trims.len(), 2, "the trickle after it is no burst: {trims:?}");
    }

    #[test]
    fn a_burst_after_a_long_quiet_spell_is_not_trimmed_as_it_starts() {
        let mut falling = Falling::default();
        let mut ticks = vec![0; 120];
        ticks.extend([200, 300, 300, 300, 300, 300, 300, 0]);
        assert_eq!(run(&mut falling, &ticks), vec![127], "only when it ends");
    }
}
