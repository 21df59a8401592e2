//! The upstream policy, one for every provider, and the only way a client reaches reqwest ([`Upstream::send`]):
//! timeouts, a concurrency limit, `governor`'s rate limit, retries (idempotent reads only, honouring `Retry-After`)
//! within a per-call deadline, and a circuit breaker. Its clock is tokio's, so tests advance it rather than sleep.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use reqwest::StatusCode;
use tokio::sync::Semaphore;

use super::{retry_after, ProviderError};
use crate::domain::Provider;
use crate::rate_limit::RateLimit;

/// How the gateway treats one provider. Defaults suit a provider answering in tens of milliseconds.
#[derive(Debug, Clone)]
pub struct UpstreamPolicy {
    pub connect_timeout: Duration,
    /// Time allowed for one attempt, body included.
    pub timeout: Duration,
    /// Time allowed for one call, retries and waits included.
    pub deadline: Duration,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// At most this many requests per window (`None`: no client-side limit).
    pub rate_limit: Option<(u32, Duration)>,
    /// Extra attempts after the first, for idempotent reads.
    pub retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker refuses calls before letting one probe through.
    pub breaker_cooldown: Duration,
}

impl Default for UpstreamPolicy {
    fn default() -> Self {
        UpstreamPolicy {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(8),
            max_concurrency: 256,
            rate_limit: None,
            retries: 2,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(5),
        }
    }
}

impl UpstreamPolicy {
    /// A reqwest client with this policy. Redirects are not followed: a provider API that redirects is misconfigured,
    /// and following would send credentials elsewhere.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .pool_max_idle_per_host(self.max_concurrency)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kyc-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in")
    }
}

/// Whether a call may be repeated without changing anything at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A read (also a POST that only reads): retried on transient failures.
    Read,
    /// Changes something (creates, updates, rotates a token): never retried.
    Write,
}

/// The breaker's view of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// A consecutive-failure circuit breaker: open after `threshold` failures in a row; after `cooldown` one probe may
/// go; its success closes the breaker, its failure opens it again. Our own: `failsafe` does not free the probe slot
/// of a cancelled probe (a caller that went away), which would leave the provider blocked for good.
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: AtomicU32,
    opened_at: Mutex<Option<Instant>>,
    probing: AtomicBool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: AtomicU32::new(0),
            opened_at: Mutex::new(None),
            probing: AtomicBool::new(false),
        }
    }

    pub fn state(&self) -> BreakerState {
        match *self.opened_at.lock().expect("breaker lock") {
            None => BreakerState::Closed,
            Some(at) if at.elapsed() < self.cooldown => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// A pass for a call, if one may go now; in half-open, only the first caller (the probe) gets one. The probe's
    /// pass frees the probe slot when dropped, however the call ends: with an outcome, an outcome the breaker does
    /// not count (a 429), or cancelled halfway (a caller that went away).
    fn admit(&self) -> Option<Pass<'_>> {
        match self.state() {
            BreakerState::Closed => Some(Pass { breaker: self, probe: false }),
            BreakerState::Open => None,
            BreakerState::HalfOpen => {
                (!self.probing.swap(true, Ordering::AcqRel)).then_some(Pass { breaker: self, probe: true })
            }
        }
    }

    fn success(&self) {
        self.failures.store(0, Ordering::Release);
        *self.opened_at.lock().expect("breaker lock") = None;
    }

    fn failure(&self) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let mut opened_at = self.opened_at.lock().expect("breaker lock");
        if failures >= self.threshold || opened_at.is_some() {
            if opened_at.is_none() {
                tracing::warn!(failures, "circuit breaker opened");
            }
            *opened_at = Some(Instant::now());
        }
    }
}

/// Leave to make one call through the breaker; see [`Breaker::admit`].
struct Pass<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

/// One provider's HTTP client under its policy.
pub struct Upstream {
    provider: Provider,
    policy: UpstreamPolicy,
    http: reqwest::Client,
    permits: Semaphore,
    limiter: Option<RateLimit>,
    breaker: Breaker,
}

/// What a response means for retrying and for the breaker.
enum Verdict {
    Done,
    Retry { after: Option<Duration> },
}

fn jitter(max: Duration) -> Duration {
    let mut byte = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    max.mul_f64(f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX))
}

impl Upstream {
    pub fn new(provider: Provider, policy: UpstreamPolicy) -> Self {
        let limiter = policy.rate_limit.map(|(limit, window)| RateLimit::new(limit, window));
        Upstream {
            provider,
            http: policy.client(),
            permits: Semaphore::new(policy.max_concurrency.max(1)),
            breaker: Breaker::new(policy.breaker_threshold, policy.breaker_cooldown),
            limiter,
            policy,
        }
    }

    /// Refuses at once while the breaker is open or its probe is out: callers check this before work that would
    /// wait on the provider (fetching a token), not only before the request itself.
    pub fn check(&self) -> Result<(), ProviderError> {
        match self.breaker.state() {
            BreakerState::Open => Err(ProviderError::CircuitOpen),
            BreakerState::HalfOpen if self.breaker.probing.load(Ordering::Acquire) => Err(ProviderError::CircuitOpen),
            _ => Ok(()),
        }
    }

    /// Sends the request `build` makes (again for each attempt, so signatures and timestamps stay fresh) in a span of
    /// its own with its metrics, carrying the trace (`traceparent`). `route` is the path's template
    /// (`/resources/applicants/{id}/one`): spans and metric labels name routes, never a user's ids.
    pub async fn send<F>(&self, call: Call, route: &'static str, build: F) -> Result<reqwest::Response, ProviderError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        use crate::telemetry::metrics as m;
        use tracing::Instrument;
        let provider = self.provider.label();
        let span = tracing::info_span!(
            "provider.call",
            otel.name = %format_args!("{provider} {route}"),
            otel.kind = "client",
            provider,
            http.route = route,
            http.request.method = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            retries = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let started = Instant::now();
        let mut attempt = 0u32;
        let outcome = self.send_with(call, &build, &mut attempt).instrument(span.clone()).await;
        let label = match &outcome {
            Ok(response) => {
                span.record("http.response.status_code", response.status().as_u16());
                status_class(response.status())
            }
            Err(error) => error.kind(),
        };
        span.record("retries", attempt);
        span.record("outcome", label);
        metrics::counter!(m::PROVIDER_CALLS, "provider" => provider, "route" => route, "outcome" => label).increment(1);
        metrics::histogram!(m::PROVIDER_DURATION, "provider" => provider, "route" => route)
            .record(started.elapsed().as_secs_f64());
        let open = if self.breaker.state() == BreakerState::Open { 1.0 } else { 0.0 };
        metrics::gauge!(m::BREAKER_OPEN, "provider" => provider).set(open);
        outcome
    }

    async fn send_with<F>(&self, call: Call, build: &F, attempt: &mut u32) -> Result<reqwest::Response, ProviderError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let Some(_pass) = self.breaker.admit() else {
            return Err(ProviderError::CircuitOpen);
        };
        // Retries of our own: the retry crates (`backon`, `tokio-retry`) cannot wait for the `Retry-After` an answer
        // names, stop at one deadline shared by the attempts and the rate-limit waits, or consult the breaker between
        // attempts.
        let deadline = Instant::now() + self.policy.deadline;
        loop {
            let outcome = self.attempt(build, deadline).await;
            let verdict = match &outcome {
                Ok(r) if r.status().is_server_error() => Verdict::Retry { after: None },
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => Verdict::Retry { after: retry_after(r) },
                Ok(_) => Verdict::Done,
                Err(ProviderError::Transport(_)) => Verdict::Retry { after: None },
                Err(_) => Verdict::Done,
            };
            // The breaker counts what says "the provider is down": 5xx, no connection, no answer in time. A 429 says
            // it is up and busy.
            match &outcome {
                Ok(r) if r.status().is_server_error() => self.breaker.failure(),
                Err(ProviderError::Transport(_) | ProviderError::Timeout) => self.breaker.failure(),
                // The gateway's own limits say nothing about the provider.
                Err(ProviderError::CircuitOpen | ProviderError::RateLimited { .. } | ProviderError::Overloaded) => {}
                _ => self.breaker.success(),
            }
            let Verdict::Retry { after } = verdict else { return outcome };
            if call == Call::Write || *attempt >= self.policy.retries {
                return outcome;
            }
            let backoff = self.policy.backoff_base.saturating_mul(1 << (*attempt).min(16)).min(self.policy.backoff_max);
            let wait = after.unwrap_or_else(|| jitter(backoff));
            if Instant::now() + wait >= deadline {
                return match (outcome, after) {
                    (_, Some(after)) => Err(ProviderError::RateLimited { retry_after: Some(after) }),
                    (outcome, None) => outcome,
                };
            }
            tracing::debug!(provider = self.provider.as_str(), attempt = *attempt, ?wait, "retrying an upstream read");
            tokio::time::sleep(wait).await;
            *attempt += 1;
            if self.breaker.state() == BreakerState::Open {
                // Opened meanwhile (by this failure or others'): stop hammering.
                return outcome;
            }
        }
    }

    async fn attempt<F>(&self, build: &F, deadline: Instant) -> Result<reqwest::Response, ProviderError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let left = || deadline.saturating_duration_since(Instant::now());
        // First a slot of the rate limit (waiting for the next window while the deadline allows), then a place among
        // the calls in flight: a call waiting for its window holds no place.
        if let Some(limiter) = &self.limiter {
            loop {
                let wait = limiter.reserve();
                if wait.is_zero() {
                    break;
                }
                if wait >= left() {
                    return Err(ProviderError::RateLimited { retry_after: Some(wait) });
                }
                tokio::time::sleep(wait).await;
            }
        }
        let _permit = tokio::time::timeout(left(), self.permits.acquire())
            .await
            .map_err(|_| ProviderError::Overloaded)?
            .expect("the semaphore is never closed");
        let timeout = self.policy.timeout.min(left());
        let mut trace = reqwest::header::HeaderMap::new();
        crate::telemetry::otel::inject(&mut trace);
        let request = build(&self.http).headers(trace).timeout(timeout).build().map_err(ProviderError::from)?;
        tracing::Span::current().record("http.request.method", request.method().as_str());
        self.http.execute(request).await.map_err(ProviderError::from)
    }
}

/// A status's class as a bounded metric label.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_after_consecutive_failures_and_closes_after_a_good_probe() {
        let breaker = Breaker::new(3, Duration::from_millis(30));
        breaker.failure();
        breaker.failure();
        breaker.success();
        breaker.failure();
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Closed, "a success resets the count");
        breaker.failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.admit().is_none());
        tokio::time::advance(Duration::from_millis(40)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let probe = breaker.admit();
        assert!(probe.is_some(), "one probe");
        assert!(breaker.admit().is_none(), "only one");
        breaker.failure();
        drop(probe);
        assert_eq!(breaker.state(), BreakerState::Open, "a failed probe opens it again");
        tokio::time::advance(Duration::from_millis(40)).await;
        let probe = breaker.admit();
        assert!(probe.is_some());
        breaker.success();
        drop(probe);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_ends_without_an_outcome_frees_the_probe_slot() {
        let breaker = Breaker::new(1, Duration::from_millis(10));
        breaker.failure();
        tokio::time::advance(Duration::from_millis(20)).await;
        let cancelled = breaker.admit().expect("the probe");
        assert!(breaker.admit().is_none());
        drop(cancelled);
        assert!(breaker.admit().is_some(), "the next caller may probe");
    }

    #[tokio::test(start_paused = true)]
    async fn a_straggler_cannot_free_the_probe_slot() {
        let breaker = Breaker::new(1, Duration::from_millis(10));
        let straggler = breaker.admit().expect("closed");
        breaker.failure();
        tokio::time::advance(Duration::from_millis(20)).await;
        let _probe = breaker.admit().expect("the probe");
        drop(straggler);
        assert!(breaker.admit().is_none(), "still probing");
    }
}
