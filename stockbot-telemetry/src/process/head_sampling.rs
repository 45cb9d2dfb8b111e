//! Head sampling: decided once, when a trace's first span in this process starts, before any
//! attribute work; children (and remote children, through `traceparent`) inherit it.

use std::sync::Mutex;
use std::time::Instant;

/// What decides for a root span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RootRule {
    AlwaysOn,
    AlwaysOff,
    /// Keep traces whose id falls under the ratio (deterministic per trace id, so every
    /// service that samples by ratio keeps the same traces).
    Ratio(f64),
}

/// The configured sampler: a root rule, then an optional rate limit (traces per second).
#[derive(Debug)]
pub(crate) struct HeadSampler {
    rule: RootRule,
    limiter: Option<Mutex<TokenBucket>>,
}

#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl HeadSampler {
    pub(crate) fn new(rule: RootRule, max_traces_per_second: Option<f64>) -> Self {
        HeadSampler {
            rule,
            limiter: max_traces_per_second.map(|rate| {
                Mutex::new(TokenBucket {
                    rate,
                    tokens: rate.max(1.0),
                    last: Instant::now(),
                })
            }),
        }
    }

    /// Whether a new root span (trace) is sampled.
    pub(crate) fn sample_root(&self, trace_id: u128) -> bool {
        let by_rule = match self.rule {
            RootRule::AlwaysOn => true,
            RootRule::AlwaysOff => false,
            RootRule::Ratio(r) if r >= 1.0 => true,
            RootRule::Ratio(r) if r <= 0.0 => false,
            // The W3C random part of the id: its lower 56 bits are compared with the ratio.
            RootRule::Ratio(r) => {
                ((trace_id as u64) & ((1 << 56) - 1)) < (r * (1u64 << 56) as f64) as u64
            }
        };
        by_rule && self.take_token()
    }

    fn take_token(&self) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        let mut b = limiter.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.last).as_secs_f64() * b.rate;
        b.tokens = (b.tokens + refill).min(b.rate.max(1.0));
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Parses an `OTEL_TRACES_SAMPLER` name and argument. Parent-based samplers inherit the
/// parent's decision (our only mode for children); the root rule is what the name says.
pub(crate) fn parse_sampler(name: &str, arg: Option<f64>) -> Result<RootRule, String> {
    let ratio = || {
        let r = arg.unwrap_or(1.0);
        if (0.0..=1.0).contains(&r) {
            Ok(RootRule::Ratio(r))
        } else {
            Err(format!("ratio {r} is not within 0..=1"))
        }
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "always_on" | "parentbased_always_on" => Ok(RootRule::AlwaysOn),
        "always_off" | "parentbased_always_off" => Ok(RootRule::AlwaysOff),
        "traceidratio" | "parentbased_traceidratio" => ratio(),
        other => Err(format!(
            "unknown sampler {other:?}: expected always_on, always_off, traceidratio or their parentbased_ forms"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_deterministic_per_trace_and_close_to_the_target() {
        let s = HeadSampler::new(RootRule::Ratio(0.25), None);
        let ids: Vec<u128> = (0..20_000)
            .map(|_| crate::collect::span::random_u128_nonzero())
            .collect();
        let kept = ids.iter().filter(|id| s.sample_root(**id)).count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
        assert!(
            ids.iter()
                .all(|id| s.sample_root(*id) == s.sample_root(*id))
        );
    }

    #[test]
    fn the_rate_limit_caps_sampled_traces() {
        let s = HeadSampler::new(RootRule::AlwaysOn, Some(5.0));
        let kept = (0..1000).filter(|i| s.sample_root(*i as u128 + 1)).count();
        assert!((5..=7).contains(&kept), "{kept}");
    }

    #[test]
    fn sampler_names_follow_otel() {
        assert_eq!(
            parse_sampler("parentbased_traceidratio", Some(0.1)),
            Ok(RootRule::Ratio(0.1))
        );
        assert_eq!(parse_sampler("always_off", None), Ok(RootRule::AlwaysOff));
        assert!(
            parse_sampler("sometimes", None)
                .unwrap_err()
                .contains("sometimes")
        );
        assert!(parse_sampler("traceidratio", Some(1.5)).is_err());
    }
}
