//! Giving memory back to the system once a burst of requests is over.
//!
//! glibc's malloc keeps what freed memory it can in its arenas (one per thread that allocated, up to eight per core:
//! mallopt(3), `M_ARENA_MAX`) and returns to the system only the free space at the top of each heap, above
//! `M_TRIM_THRESHOLD`. The memory a burst of large queries freed in the middle of the heaps stays resident: measured
//! with `kyc-bench --scenario burst`, a gateway idle at 90 MB stayed at 616 MB for as long as it was watched
//! (BENCHMARKS.md, "burst"). `malloc_trim(3)` walks every arena and hands back the whole free pages in them; it locks
//! each arena in turn, so it runs on a blocking thread, and only when it is worth it: when the load has fallen (or
//! once a minute under a steady one) and the resident set has grown since the last trim.
//!
//! When to look is decided from the requests starting and ending each second; whether to trim from the resident set
//! (proc(5), `VmRSS`), so neither a trickle of health probes nor a steady load trims for nothing, and a few huge
//! queries are given back as surely as many small ones. A trim after requests is followed by one more, at the next
//! look, for what was freed after it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the load is counted.
const TICK: Duration = Duration::from_secs(1);
/// A tick with this many times fewer requests starting or ending, and in flight, than the busiest since the last
/// look has fallen.
const FALLEN: u64 = 4;
/// Ticks between two looks at least: a look reads `/proc`, a trim walks every arena.
const LEAST_TICKS: u32 = 5;
/// Ticks between two looks at most while requests come (a steady load never falls).
const MOST_TICKS: u32 = 60;
/// Growth of the resident set since the last trim worth a trim.
const GROWN: u64 = 16 << 20;

/// When to look at the resident set, decided once a tick from how many requests started or ended in it.
#[derive(Debug, Default)]
struct Falling {
    /// The busiest tick since the last look.
    peak: u64,
    /// The most requests in flight at a tick since the last look: long queries can start and end in waves, and a
    /// quiet second between two waves is no fall.
    peak_in_flight: u64,
    /// Requests started or ended since the last look: with none, nothing new can have been freed.
    since: u64,
    /// Ticks since the last look.
    ticks: u32,
    /// A trim after requests asks for one more look `LEAST_TICKS` later, even with no request between, that trims
    /// whatever the resident set: responses are written and connections closed after their requests end, and the
    /// memory they free after a trim does not show in the resident set (it was resident already).
    trailing: bool,
}

impl Falling {
    /// Whether to look now, from the requests started or ended in this tick and those in flight at its end.
    fn tick(&mut self, events: u64, in_flight: u64) -> bool {
        self.peak = self.peak.max(events);
        self.peak_in_flight = self.peak_in_flight.max(in_flight);
        self.since += events;
        self.ticks = self.ticks.saturating_add(1);
        if self.trailing && self.ticks > 2 * LEAST_TICKS {
            // The trailing look is for what the last requests freed just after the trim; later, under load, it
            // would trim a busy process for nothing.
            self.trailing = false;
        }
        if self.since == 0 && !self.trailing {
            // Quiet since the last look: the first busy spell after it is not "a minute of load" yet, and its first
            // tick is measured against itself, not against the load before the quiet.
            self.ticks = self.ticks.min(LEAST_TICKS);
            (self.peak, self.peak_in_flight) = (0, 0);
            return false;
        }
        let fallen =
            events.saturating_mul(FALLEN) <= self.peak && in_flight.saturating_mul(FALLEN) <= self.peak_in_flight;
        self.ticks >= LEAST_TICKS && (fallen || self.ticks >= MOST_TICKS)
    }

    /// Whether this look is the one a trim after requests asked for.
    fn trailing(&self) -> bool {
        self.trailing
    }

    /// After a look (`events` in its tick): the next counts from here. A trailing look's trim asks for no other.
    fn looked(&mut self, events: u64, in_flight: u64, trimmed: bool) {
        let trailing = trimmed && self.since > 0 && !self.trailing;
        *self = Falling { peak: events, peak_in_flight: in_flight, since: 0, ticks: 0, trailing };
    }
}

/// Whether a resident set of `now` bytes is worth a trim, against `baseline`, the least since the last trim.
fn worth_trimming(baseline: u64, now: u64) -> bool {
    now >= baseline.saturating_add(GROWN)
}

/// The resident set a later one is measured against: the reading after a trim with nothing in flight, else the
/// least so far. After a trim with requests still in flight, their memory is in the reading and will be freed without
/// showing in the resident set (it stays resident, free): the least reading before stays the baseline then.
fn next_baseline(least: Option<u64>, reading: Option<u64>, fresh: bool) -> Option<u64> {
    match (fresh, least, reading) {
        (true, _, reading) => reading,
        (false, Some(least), Some(reading)) => Some(least.min(reading)),
        (false, least, reading) => least.or(reading),
    }
}

/// Counts requests starting and ending, and those in flight, for [`trim_after_bursts`].
#[derive(Debug, Default, Clone)]
pub struct Load(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    /// Requests started plus requests ended, ever.
    events: AtomicU64,
    in_flight: AtomicU64,
}

impl Load {
    pub fn started(&self) {
        self.0.events.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ended(&self) {
        self.0.events.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Trims the allocator's arenas when the load has fallen and the resident set has grown; runs until dropped.
pub async fn trim_after_bursts(load: Load) -> std::convert::Infallible {
    if cfg!(feature = "jemalloc") {
        return std::future::pending().await;
    }
    let mut falling = Falling::default();
    let mut seen = load.0.events.load(Ordering::Relaxed);
    let mut baseline = resident_bytes();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = load.0.events.load(Ordering::Relaxed);
        let events = now.wrapping_sub(seen);
        seen = now;
        let in_flight = load.0.in_flight.load(Ordering::Relaxed);
        if !falling.tick(events, in_flight) {
            continue;
        }
        let resident = resident_bytes();
        let grown = matches!((baseline, resident), (Some(least), Some(resident)) if worth_trimming(least, resident));
        let trimmed = grown || falling.trailing();
        if trimmed {
            let _ = tokio::task::spawn_blocking(trim).await;
        }
        let reading = if trimmed { resident_bytes() } else { resident };
        baseline = next_baseline(baseline, reading, trimmed && in_flight == 0);
        falling.looked(events, in_flight, trimmed);
    }
}

/// The `jemalloc` feature's allocator: it returns freed pages from its own background threads, so nothing is trimmed.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// This process's resident set in bytes (proc(5), `VmRSS` in `/proc/self/status`); `None` where there is no `/proc`.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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

    /// The ticks at which `falling` looks, each look taken to trim; short requests: as many in flight at a tick's
    /// end as a tenth of its events.
    fn looks(falling: &mut Falling, ticks: &[u64]) -> Vec<usize> {
        let with_in_flight: Vec<(u64, u64)> = ticks.iter().map(|e| (*e, e / 10)).collect();
        looks_in_flight(falling, &with_in_flight)
    }

    fn looks_in_flight(falling: &mut Falling, ticks: &[(u64, u64)]) -> Vec<usize> {
        let mut at = Vec::new();
        for (i, (events, in_flight)) in ticks.iter().enumerate() {
            if falling.tick(*events, *in_flight) {
                falling.looked(*events, *in_flight, true);
                at.push(i);
            }
        }
        at
    }

    #[test]
    fn long_queries_ending_in_waves_are_not_looked_at_while_they_run() {
        let mut falling = Falling::default();
        // 32 queries of a second or more in flight: their starts and ends come in waves, some seconds nearly quiet.
        let mut ticks: Vec<(u64, u64)> = (0..20).map(|i| if i % 3 == 2 { (4, 32) } else { (60, 32) }).collect();
        ticks.extend([(30, 2), (0, 0), (0, 0)]);
        assert_eq!(looks_in_flight(&mut falling, &ticks), vec![21], "only in the first quiet second after them");
    }

    #[test]
    fn a_burst_that_ends_is_looked_at_when_it_ends_and_once_more_after_and_a_quiet_gateway_never() {
        let mut falling = Falling::default();
        assert_eq!(looks(&mut falling, &[0; 90]), Vec::<usize>::new(), "nothing happened: nothing to give back");
        // Eight busy seconds, then quiet: a look in the first quiet second, and one more five seconds later (what the
        // last responses and closing connections freed after their requests ended), which trims whatever the
        // resident set; then none.
        let mut burst = vec![500, 480, 510, 490, 505, 495, 500, 500];
        burst.extend([0; 4]);
        assert_eq!(looks(&mut falling, &burst), vec![8]);
        assert!(falling.trailing(), "the next look trims whatever the resident set");
        // Five ticks after the first look: the second tick of these.
        assert_eq!(looks(&mut falling, &[0; 30]), vec![1]);
        assert!(!falling.trailing(), "a trailing look asks for no other");
    }

    #[test]
    fn a_steady_load_is_looked_at_only_once_a_minute_without_a_trailing_trim() {
        let mut falling = Falling::default();
        assert_eq!(looks(&mut falling, &[300; 59]), Vec::<usize>::new());
        assert!(falling.tick(300, 30), "a minute of load");
        falling.looked(300, 30, true);
        assert!(falling.trailing());
        assert_eq!(looks(&mut falling, &[300; 59]), Vec::<usize>::new());
        assert!(falling.tick(300, 30), "another minute");
        assert!(!falling.trailing(), "the trailing look expired: it would trim a busy process for nothing");
    }

    #[test]
    fn a_trickle_of_requests_is_looked_at_no_more_than_every_five_seconds() {
        let mut falling = Falling::default();
        // Health probes: a request every other second, for three minutes.
        let trickle: Vec<u64> = (0..180).map(|i| (i % 2) * 2).collect();
        let at = looks(&mut falling, &trickle);
        assert!(!at.is_empty());
        assert!(at.windows(2).all(|w| w[1] - w[0] >= LEAST_TICKS as usize), "{at:?}");
    }

    #[test]
    fn the_tail_of_a_burst_is_looked_at_again_once_it_has_ended() {
        let mut falling = Falling::default();
        // A burst, its slow queries ending over the next seconds, then a request every other second.
        let mut ticks = vec![400, 400, 400, 400, 400, 30, 20, 10, 5, 0];
        ticks.extend((0..40).map(|i| i % 2));
        let at = looks(&mut falling, &ticks);
        assert_eq!(at[..2], [5, 10], "the first fallen second, then what the tail freed");
        assert!(at.windows(2).all(|w| w[1] - w[0] >= LEAST_TICKS as usize), "{at:?}");
    }

    #[test]
    fn a_burst_after_a_long_quiet_spell_is_not_looked_at_as_it_starts() {
        let mut falling = Falling::default();
        let mut ticks = vec![0; 120];
        ticks.extend([200, 300, 300, 300, 300, 300, 300, 0]);
        assert_eq!(looks(&mut falling, &ticks), vec![127], "only when it ends");
    }

    #[test]
    fn only_a_resident_set_grown_by_sixteen_mebibytes_since_the_last_trim_is_worth_a_trim() {
        let mb = 1 << 20;
        assert!(!worth_trimming(70 * mb, 70 * mb));
        assert!(!worth_trimming(70 * mb, 85 * mb));
        assert!(worth_trimming(70 * mb, 86 * mb));
        assert!(worth_trimming(70 * mb, 600 * mb));
    }

    #[test]
    fn a_trim_under_load_keeps_the_baseline_from_before_it_so_the_memory_freed_after_it_is_trimmed_later() {
        let mb = 1 << 20;
        // Idle at 60 MB; a trim while 32 queries still run reads 200 MB: the baseline stays 60, so once they end and
        // the resident set is still 200 (free, not returned), the next look trims.
        let after_busy_trim = next_baseline(Some(60 * mb), Some(200 * mb), false);
        assert_eq!(after_busy_trim, Some(60 * mb));
        assert!(worth_trimming(after_busy_trim.unwrap(), 200 * mb));
        // A trim with nothing in flight: its reading is the new baseline.
        assert_eq!(next_baseline(Some(60 * mb), Some(70 * mb), true), Some(70 * mb));
        // No trim: the least reading so far.
        assert_eq!(next_baseline(Some(60 * mb), Some(55 * mb), false), Some(55 * mb));
        assert_eq!(next_baseline(None, Some(55 * mb), false), Some(55 * mb));
    }

    #[test]
    fn this_process_s_resident_set_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 1 << 20));
        }
    }
}
