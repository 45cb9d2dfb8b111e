//! Per-call-site sampling of noisy events: the first N per interval, then one in M.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::SamplingRule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Keep; `sampled_away` events of this call site were skipped since the last kept one.
    Keep {
        sampled_away: u64,
    },
    Skip,
}

#[derive(Debug)]
struct Site {
    rule: Option<usize>,
    window_start: Instant,
    seen: u64,
    skipped: u64,
}

/// Sampling state of all call sites that match a rule.
#[derive(Debug)]
pub(crate) struct Sampler {
    rules: Vec<SamplingRule>,
    sites: Mutex<HashMap<usize, Site>>,
}

impl Sampler {
    pub(crate) fn new(rules: Vec<SamplingRule>) -> Self {
        Sampler {
            rules,
            sites: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Decides for one event of call site `key` (its metadata address, or a hash of a `log`
    /// record's location). Call sites that declare an `audit` field are never sampled.
    pub(crate) fn decide(
        &self,
        target: &str,
        key: usize,
        declares_audit: bool,
        now: Instant,
    ) -> Decision {
        if declares_audit {
            return Decision::Keep { sampled_away: 0 };
        }
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let site = sites.entry(key).or_insert_with(|| Site {
            rule: self
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| super::target_in(target, &r.target))
                .max_by_key(|(_, r)| r.target.len())
                .map(|(i, _)| i),
            window_start: now,
            seen: 0,
            skipped: 0,
        });
        let Some(rule) = site.rule.map(|i| &self.rules[i]) else {
            return Decision::Keep { sampled_away: 0 };
        };
        if now.duration_since(site.window_start) >= rule.interval.max(Duration::from_nanos(1)) {
            site.window_start = now;
            site.seen = 0;
        }
        site.seen += 1;
        let keep = site.seen <= rule.first
            || (site.seen - rule.first).is_multiple_of(rule.thereafter.max(1));
        if keep {
            Decision::Keep {
                sampled_away: std::mem::take(&mut site.skipped),
            }
        } else {
            site.skipped += 1;
            Decision::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = "market_data::feed";

    #[test]
    fn first_n_then_one_in_m_with_skipped_counts() {
        let rule = SamplingRule {
            target: "market_data".into(),
            first: 3,
            thereafter: 10,
            interval: Duration::from_secs(3600),
        };
        let sampler = Sampler::new(vec![rule]);
        let now = Instant::now();
        let kept: Vec<_> = (0..33)
            .map(|_| sampler.decide(FEED, 1, false, now))
            .enumerate()
            .filter_map(|(i, d)| match d {
                Decision::Keep { sampled_away } => Some((i, sampled_away)),
                Decision::Skip => None,
            })
            .collect();
        assert_eq!(
            kept,
            vec![(0, 0), (1, 0), (2, 0), (12, 9), (22, 9), (32, 9)]
        );
        // Each call site counts for itself.
        assert_eq!(
            sampler.decide(FEED, 2, false, now),
            Decision::Keep { sampled_away: 0 }
        );
        // A new window starts over.
        let later = now + Duration::from_secs(3600);
        assert_eq!(
            sampler.decide(FEED, 1, false, later),
            Decision::Keep { sampled_away: 0 }
        );
        // Call sites with an audit field are never sampled; other targets are not sampled.
        assert!((0..100).all(|_| sampler.decide(FEED, 3, true, now) != Decision::Skip));
        assert!((0..100).all(|_| sampler.decide("risk", 4, false, now) != Decision::Skip));
    }

    #[test]
    fn prefix_matching_respects_module_boundaries() {
        use super::super::target_in;
        assert!(target_in("market_data::feed", "market_data"));
        assert!(target_in("market_data", "market_data"));
        assert!(!target_in("market_data_replay", "market_data"));
    }
}
