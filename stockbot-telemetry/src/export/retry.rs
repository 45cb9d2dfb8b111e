//! The one retry policy: exponential backoff with full jitter, a cap, and `Retry-After`
//! honoured up to a limit. Every sink that retries or backs off uses it.

use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetryPolicy {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) multiplier: f64,
    /// Largest `Retry-After` obeyed; a server asking for more gets this.
    pub(crate) max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Upper bound of the delay before attempt `attempt + 1` (attempt counts from 0).
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.powi(attempt.min(64) as i32);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs)
    }

    /// The delay before the next attempt: full jitter in `[ceiling/2, ceiling]` (so retries
    /// spread out but never hammer), or the server's `Retry-After` (capped) when it gave one.
    pub(crate) fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        unit_random: f64,
    ) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let ceiling = self.ceiling(attempt);
        let jitter = unit_random.clamp(0.0, 1.0);
        ceiling.mul_f64(0.5 + 0.5 * jitter)
    }
}

/// Tracks consecutive failures of one destination.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    failures: u32,
    until: Option<std::time::Instant>,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
            until: None,
        }
    }

    /// Whether the destination may be tried now.
    pub(crate) fn ready(&self, now: std::time::Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }

    /// Records a failure; returns the delay chosen.
    pub(crate) fn failed(
        &mut self,
        now: std::time::Instant,
        retry_after: Option<Duration>,
    ) -> Duration {
        let random = (crate::collect::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let delay = self.policy.delay(self.failures, retry_after, random);
        self.failures = self.failures.saturating_add(1);
        self.until = Some(now + delay);
        delay
    }

    /// Time left before the destination may be tried again.
    pub(crate) fn remaining(&self, now: std::time::Instant) -> Duration {
        self.until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }

    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn grows_exponentially_with_jitter_and_a_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(0), Duration::from_millis(100));
        assert_eq!(p.ceiling(3), Duration::from_millis(800));
        assert_eq!(p.ceiling(40), Duration::from_secs(30));
        for attempt in 0..20 {
            for r in [0.0, 0.3, 1.0] {
                let d = p.delay(attempt, None, r);
                assert!(
                    d >= p.ceiling(attempt) / 2 && d <= p.ceiling(attempt),
                    "{d:?}"
                );
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(7)), 0.5),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600)), 0.5),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn backoff_blocks_until_the_delay_passed() {
        let mut b = Backoff::new(RetryPolicy::default());
        let now = Instant::now();
        assert!(b.ready(now));
        let d = b.failed(now, None);
        assert!(!b.ready(now));
        assert!(b.ready(now + d));
        b.succeeded();
        assert!(b.ready(now));
    }
}
