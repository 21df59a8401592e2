//! A rate limit of `limit` requests per `window`, as a GCRA (`governor`): up to `limit` at once, then one more every
//! `window / limit`. The gateway waits on it before calling a provider; the sandboxes answer 429 past it.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

pub struct RateLimit {
    limiter: governor::DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl RateLimit {
    /// At most `limit` (at least 1) requests per `window` (at least 1 ns per request).
    pub fn new(limit: u32, window: Duration) -> Self {
        let limit = NonZeroU32::new(limit.max(1)).expect("at least 1");
        let period = (window / limit.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period).expect("a non-zero period").allow_burst(limit);
        RateLimit { limiter: RateLimiter::direct(quota), clock: DefaultClock::default() }
    }

    /// Takes a slot now (`Duration::ZERO`), or says how long until one is free (and takes nothing).
    pub fn reserve(&self) -> Duration {
        match self.limiter.check() {
            Ok(()) => Duration::ZERO,
            Err(not_until) => not_until.wait_time_from(self.clock.now()).max(Duration::from_nanos(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_goes_at_once_then_the_next_slot_waits() {
        // A slot every 250 s: no pause of the test between the reserves comes near the margin.
        let limit = RateLimit::new(2, Duration::from_secs(500));
        assert_eq!(limit.reserve(), Duration::ZERO);
        assert_eq!(limit.reserve(), Duration::ZERO);
        let wait = limit.reserve();
        assert!(wait > Duration::from_secs(200) && wait <= Duration::from_secs(250), "{wait:?}");
    }
}
