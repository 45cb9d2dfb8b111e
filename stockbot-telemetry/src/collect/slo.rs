//! The service's own view of its SLOs: burn rates over the alert windows and the error budget
//! left over the compliance window, computed from the registry's own series every tick and
//! published as gauges (`stockbot_slo_*`) and through
//! [`TelemetryGuard::slo_status`](crate::TelemetryGuard::slo_status).
//!
//! Prometheus' rules stay the authority (they see every replica and survive restarts); this
//! view lets a service act on its own budget — a strategy that stops opening positions when
//! its order SLO has no budget left — and shows in the scrape what the process itself saw.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{GaugeFn, Key, Label};
use stockbot_telemetry_conventions::MetricKind;

use super::metrics::{Cell, GaugeCell, MetricsRegistry, SeriesView};
use crate::alerting::{Query, Sli, Slo};

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

/// Windows of the burn-rate gauges: the short and long windows of the default burn-rate
/// alerts (page 5m/1h and 30m/6h, ticket 2h/1d and 6h/3d).
const BURN_WINDOWS: [(u64, &str); 7] = [
    (5 * MINUTE, "5m"),
    (30 * MINUTE, "30m"),
    (HOUR, "1h"),
    (2 * HOUR, "2h"),
    (6 * HOUR, "6h"),
    (24 * HOUR, "1d"),
    (72 * HOUR, "3d"),
];

/// The fine history covers the longest window up to 6 h, with at most this many samples.
const FINE_SAMPLES: u32 = 2_160;
const FINE_SPAN: Duration = Duration::from_secs(6 * HOUR);
/// The coarse history: one sample per 15 minutes over the compliance window.
const COARSE_EVERY: Duration = Duration::from_secs(15 * MINUTE);

/// One SLO as this process has seen it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SloStatus {
    /// The SLO's name.
    pub name: String,
    /// Its objective (`0.999`).
    pub objective: f64,
    /// Its compliance window.
    pub window: Duration,
    /// How much of the window this process has seen: its uptime, at most `window`.
    pub observed: Duration,
    /// Events counted over the observed window.
    pub events: u64,
    /// Bad events among them.
    pub bad_events: u64,
    /// The error budget left over the observed window: 1 untouched, 0 spent, below 0
    /// overspent (`1 - (bad / events) / (1 - objective)`; 1 with no events).
    pub budget_remaining: f64,
    /// The burn rate over each alert window no longer than `window`, shortest first: the
    /// error ratio over the window divided by the budget (1 spends the budget exactly by the
    /// end of the compliance window; the default page fires at 14.4 over 1 h and 5 m).
    pub burn_rates: Vec<(Duration, f64)>,
}

impl SloStatus {
    /// The burn rate over `window`, if it is one of [`burn_rates`](Self::burn_rates)'.
    pub fn burn_rate(&self, window: Duration) -> Option<f64> {
        self.burn_rates
            .iter()
            .find(|(w, _)| *w == window)
            .map(|(_, r)| *r)
    }
}

impl std::fmt::Display for SloStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SLO {} ({} % over {}): {} of {} events bad in the {} observed, {:.1} % of the budget left",
            self.name,
            self.objective * 100.0,
            humantime::format_duration(self.window),
            self.bad_events,
            self.events,
            humantime::format_duration(Duration::from_secs(self.observed.as_secs())),
            self.budget_remaining * 100.0
        )
    }
}

/// Cumulative counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    bad: u64,
    total: u64,
}

impl Counts {
    fn since(self, base: Counts) -> Counts {
        Counts {
            bad: self.bad.saturating_sub(base.bad),
            total: self.total.saturating_sub(base.total),
        }
    }
}

/// Samples of the cumulative counts at least `every` apart, kept so that one is at or before
/// `now - keep`: memory is bounded by `keep / every`.
#[derive(Debug)]
struct History {
    every: Duration,
    keep: Duration,
    samples: VecDeque<(Instant, Counts)>,
}

impl History {
    fn new(every: Duration, keep: Duration) -> Self {
        History {
            every,
            keep,
            samples: VecDeque::new(),
        }
    }

    fn record(&mut self, at: Instant, counts: Counts) {
        let due = self
            .samples
            .back()
            .is_none_or(|(t, _)| at.saturating_duration_since(*t) >= self.every);
        if due {
            self.samples.push_back((at, counts));
        }
        while self.samples.len() > 2 && at.saturating_duration_since(self.samples[1].0) >= self.keep
        {
            self.samples.pop_front();
        }
    }

    /// The newest sample taken at or before `t`, if the history reaches back that far.
    fn at_or_before(&self, t: Instant) -> Option<Counts> {
        let n = self.samples.partition_point(|(at, _)| *at <= t);
        n.checked_sub(1).map(|i| self.samples[i].1)
    }
}

/// The gauges of one SLO.
#[derive(Debug)]
struct Gauges {
    budget_remaining: Arc<GaugeCell>,
    observed: Arc<GaugeCell>,
    objective: Arc<GaugeCell>,
    burn: Vec<Arc<GaugeCell>>,
}

#[derive(Debug)]
struct Tracked {
    slo: Slo,
    /// Monotonic totals since start (series that restart or expire do not go backwards).
    acc: Counts,
    /// The sums read last time.
    last_raw: Counts,
    fine: History,
    coarse: History,
    gauges: Option<Gauges>,
    windows: Vec<(Duration, &'static str)>,
}

/// The SLOs of the configuration, tracked against the registry.
#[derive(Debug)]
pub(crate) struct SloTracker {
    registry: Arc<MetricsRegistry>,
    started: Instant,
    slos: Mutex<Vec<Tracked>>,
}

impl SloTracker {
    /// Starts tracking `slos` from the registry's current counts. Gauges are named
    /// `{namespace}_slo_*` (a refused name, e.g. outside a custom namespace rule, only loses the
    /// gauge, not the view).
    pub(crate) fn new(
        registry: Arc<MetricsRegistry>,
        slos: &[Slo],
        namespace: &str,
        interval: Duration,
    ) -> Self {
        let started = Instant::now();
        let snapshot = registry.snapshot();
        let fine_every = (FINE_SPAN / FINE_SAMPLES).max(interval);
        let tracked = slos
            .iter()
            .map(|slo| {
                let windows: Vec<(Duration, &'static str)> = BURN_WINDOWS
                    .iter()
                    .map(|(s, l)| (Duration::from_secs(*s), *l))
                    .filter(|(w, _)| *w <= slo.window)
                    .collect();
                let mut t = Tracked {
                    slo: slo.clone(),
                    acc: Counts::default(),
                    last_raw: raw_counts(&slo.sli, &snapshot),
                    fine: History::new(fine_every, FINE_SPAN),
                    coarse: History::new(COARSE_EVERY, slo.window),
                    gauges: gauges(&registry, namespace, &slo.name, &windows),
                    windows,
                };
                t.fine.record(started, t.acc);
                t.coarse.record(started, t.acc);
                if let Some(g) = &t.gauges {
                    g.objective.set(slo.objective);
                    g.budget_remaining.set(1.0);
                }
                t
            })
            .collect();
        SloTracker {
            registry,
            started,
            slos: Mutex::new(tracked),
        }
    }

    /// Reads the registry, records a sample, refreshes the gauges and returns every SLO's
    /// status.
    pub(crate) fn sample(&self) -> Vec<SloStatus> {
        self.sample_at(Instant::now())
    }

    fn sample_at(&self, now: Instant) -> Vec<SloStatus> {
        let snapshot = self.registry.snapshot();
        let mut slos = self.slos.lock().unwrap_or_else(|p| p.into_inner());
        slos.iter_mut()
            .map(|t| {
                let raw = raw_counts(&t.slo.sli, &snapshot);
                let grew = raw.since(t.last_raw);
                t.acc.bad += grew.bad;
                t.acc.total += grew.total;
                t.last_raw = raw;
                t.fine.record(now, t.acc);
                t.coarse.record(now, t.acc);
                let status = self.status_of(t, now);
                if let Some(g) = &t.gauges {
                    g.budget_remaining.set(status.budget_remaining);
                    g.observed.set(status.observed.as_secs_f64());
                    for (cell, (_, rate)) in g.burn.iter().zip(&status.burn_rates) {
                        cell.set(*rate);
                    }
                }
                status
            })
            .collect()
    }

    /// The counts over the last `window` (or since start, when younger) and the time covered.
    fn over(&self, t: &Tracked, now: Instant, window: Duration) -> (Counts, Duration) {
        let uptime = now.saturating_duration_since(self.started);
        if uptime <= window {
            return (t.acc, uptime);
        }
        let target = now.checked_sub(window).unwrap_or(self.started);
        let base = t
            .fine
            .samples
            .front()
            .filter(|(at, _)| *at <= target)
            .and_then(|_| t.fine.at_or_before(target))
            .or_else(|| t.coarse.at_or_before(target))
            .unwrap_or_default();
        (t.acc.since(base), window)
    }

    fn status_of(&self, t: &Tracked, now: Instant) -> SloStatus {
        let budget = t.slo.error_budget();
        let ratio = |c: Counts| {
            if c.total == 0 {
                0.0
            } else {
                c.bad as f64 / c.total as f64
            }
        };
        let (whole, observed) = self.over(t, now, t.slo.window);
        SloStatus {
            name: t.slo.name.clone(),
            objective: t.slo.objective,
            window: t.slo.window,
            observed,
            events: whole.total,
            bad_events: whole.bad,
            budget_remaining: 1.0 - ratio(whole) / budget,
            burn_rates: t
                .windows
                .iter()
                .map(|(w, _)| (*w, ratio(self.over(t, now, *w).0) / budget))
                .collect(),
        }
    }
}

fn gauges(
    registry: &MetricsRegistry,
    namespace: &str,
    slo: &str,
    windows: &[(Duration, &'static str)],
) -> Option<Gauges> {
    let name = |suffix: &str| {
        if namespace.is_empty() {
            suffix.to_owned()
        } else {
            format!("{namespace}_{suffix}")
        }
    };
    let cell = |suffix: &str, window: Option<&'static str>| {
        let mut labels = vec![Label::new("slo", slo.to_owned())];
        if let Some(w) = window {
            labels.push(Label::from_static_parts("window", w));
        }
        match registry.cell(&Key::from_parts(name(suffix), labels), MetricKind::Gauge) {
            Some(Cell::Gauge(g)) => Some(g),
            _ => None,
        }
    };
    registry.describe(
        &name("slo_error_budget_remaining_ratio"),
        None,
        "Error budget left over the part of the SLO window this process has seen (1 untouched, 0 spent, < 0 overspent)",
    );
    registry.describe(
        &name("slo_burn_rate_ratio"),
        None,
        "Error ratio over the window divided by the error budget, as this process sees it",
    );
    registry.describe(
        &name("slo_window_observed_seconds"),
        Some(metrics::Unit::Seconds),
        "How much of the SLO window this process has seen (its uptime, at most the window)",
    );
    registry.describe(&name("slo_objective_ratio"), None, "The SLO's objective");
    Some(Gauges {
        budget_remaining: cell("slo_error_budget_remaining_ratio", None)?,
        observed: cell("slo_window_observed_seconds", None)?,
        objective: cell("slo_objective_ratio", None)?,
        burn: windows
            .iter()
            .map(|(_, label)| cell("slo_burn_rate_ratio", Some(label)))
            .collect::<Option<_>>()?,
    })
}

/// Whether a series has every `label = value` of `matchers`.
fn matches(series: &SeriesView, matchers: &std::collections::BTreeMap<String, String>) -> bool {
    matchers
        .iter()
        .all(|(k, v)| series.pairs.iter().any(|(sk, sv)| sk == k && sv == v))
}

fn counter_sum(query: &Query, snapshot: &[SeriesView]) -> u64 {
    snapshot
        .iter()
        .filter(|s| s.family.name == query.metric && matches(s, &query.matchers))
        .map(|s| match &s.cell {
            Cell::Counter(c) => c.value.load(std::sync::atomic::Ordering::Relaxed),
            _ => 0,
        })
        .sum()
}

/// The SLI's cumulative bad and total events in the registry now.
fn raw_counts(sli: &Sli, snapshot: &[SeriesView]) -> Counts {
    use std::sync::atomic::Ordering::Relaxed;
    match sli {
        Sli::Ratio { errors, total } => Counts {
            bad: counter_sum(errors, snapshot),
            total: counter_sum(total, snapshot),
        },
        Sli::Latency {
            metric,
            threshold,
            matchers,
        } => {
            // Buckets up to the threshold are good (it is a boundary once `threshold_buckets`
            // ran; otherwise the largest boundary under it: slow-side conservative).
            let limit = threshold.as_secs_f64() * (1.0 + 1e-9);
            let mut counts = Counts::default();
            for s in snapshot
                .iter()
                .filter(|s| s.family.name == *metric && matches(s, matchers))
            {
                if let Cell::Histogram(h) = &s.cell {
                    let good_buckets = h.bounds.partition_point(|b| *b <= limit);
                    for (i, bucket) in h.buckets.iter().enumerate() {
                        let n = bucket.load(Relaxed);
                        counts.total += n;
                        if i >= good_buckets {
                            counts.bad += n;
                        }
                    }
                }
            }
            counts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::metrics::RegistrySettings;

    fn registry(buckets: &[(&str, Vec<f64>)]) -> Arc<MetricsRegistry> {
        Arc::new(MetricsRegistry::new(RegistrySettings {
            namespace: "stockbot".into(),
            max_series_per_metric: 100,
            idle_timeout: None,
            default_buckets: vec![0.1, 1.0],
            buckets: buckets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            redact_patterns: true,
        }))
    }

    fn count(r: &MetricsRegistry, name: &str, labels: &[(&'static str, &'static str)], n: u64) {
        let key = Key::from_parts(
            name.to_owned(),
            labels
                .iter()
                .map(|(k, v)| Label::from_static_parts(k, v))
                .collect::<Vec<_>>(),
        );
        match r.cell(&key, MetricKind::Counter) {
            Some(Cell::Counter(c)) => {
                metrics::CounterFn::increment(&*c, n);
            }
            other => panic!("no counter for {name}: {other:?}"),
        }
    }

    #[test]
    fn ratio_budget_and_burn_rates_follow_the_windows() {
        let r = registry(&[]);
        let slo = Slo::calls("orders", 0.99);
        let tracker = SloTracker::new(Arc::clone(&r), &[slo], "stockbot", Duration::from_secs(10));
        let t0 = tracker.started;
        let calls = |n| count(&r, "stockbot_trade_calls_total", &[("slo", "orders")], n);
        let errors = |n| count(&r, "stockbot_trade_errors_total", &[("slo", "orders")], n);
        // Another SLO's calls never count.
        count(&r, "stockbot_trade_calls_total", &[("slo", "other")], 1_000);
        count(
            &r,
            "stockbot_trade_errors_total",
            &[("slo", "other")],
            1_000,
        );

        // Hour 0–2: 1000 calls an hour, no errors; then 10 minutes of 50 % errors.
        for minute in 1..=120 {
            calls(1_000 / 60);
            tracker.sample_at(t0 + Duration::from_secs(minute * 60));
        }
        calls(200);
        errors(100);
        let s = tracker.sample_at(t0 + Duration::from_secs(130 * 60));
        let s = &s[0];
        assert_eq!((s.events, s.bad_events), (120 * 16 + 200, 100));
        assert_eq!(s.observed, Duration::from_secs(130 * 60));
        // 100 bad of 2120 against a 1 % budget: 4.7 budgets spent.
        let expected = 1.0 - (100.0 / 2120.0) / 0.01;
        assert!((s.budget_remaining - expected).abs() < 1e-9, "{s}");
        // The 5 m window holds the burst only (plus nothing else): ratio 0.5, burn 50.
        let burn_5m = s.burn_rate(Duration::from_secs(300)).unwrap();
        assert!((burn_5m - 50.0).abs() < 1e-9, "{burn_5m}");
        // The 1 h window: 100 bad of 200 + 50 minutes × 16 (sample at minute 70 is the base).
        let burn_1h = s.burn_rate(Duration::from_secs(3_600)).unwrap();
        let expected_1h = (100.0 / (200.0 + 50.0 * 16.0)) / 0.01;
        assert!(
            (burn_1h - expected_1h).abs() < 1e-9,
            "{burn_1h} vs {expected_1h}"
        );
        // Windows longer than the SLO's are left out; all seven fit in 30 days.
        assert_eq!(s.burn_rates.len(), 7);

        // The gauges carry the same numbers.
        let text = crate::export::exposition::render(
            &r,
            &crate::export::exposition::Extra::default(),
            crate::export::exposition::Format::Text,
        );
        let value = |series: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(series))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {series} in {text}"))
        };
        let burn = value("stockbot_slo_burn_rate_ratio{slo=\"orders\",window=\"5m\"}");
        assert!((burn - 50.0).abs() < 1e-9, "{burn}");
        let left = value("stockbot_slo_error_budget_remaining_ratio{slo=\"orders\"}");
        assert!((left - expected).abs() < 1e-9, "{left}");
        assert!(text.contains("stockbot_slo_objective_ratio{slo=\"orders\"} 0.99"));
        assert!(text.contains("stockbot_slo_window_observed_seconds{slo=\"orders\"} 7800"));
    }

    #[test]
    fn long_windows_use_the_coarse_history_and_memory_stays_bounded() {
        let r = registry(&[]);
        let mut slo = Slo::calls("orders", 0.999);
        slo.window = Duration::from_secs(2 * 24 * HOUR);
        let tracker = SloTracker::new(Arc::clone(&r), &[slo], "stockbot", Duration::from_secs(10));
        let t0 = tracker.started;
        // Five days, a sample every 10 s: 100 calls an hour, one bad call in hour 1 only.
        for tick in 1..=(5 * 24 * 360) {
            if tick % 36 == 0 {
                count(&r, "stockbot_trade_calls_total", &[("slo", "orders")], 10);
            }
            if tick == 360 {
                count(&r, "stockbot_trade_errors_total", &[("slo", "orders")], 1);
            }
            tracker.sample_at(t0 + Duration::from_secs(tick * 10));
        }
        let s = tracker.sample_at(t0 + Duration::from_secs(5 * 24 * HOUR));
        let s = &s[0];
        // The error fell out of the 2-day window.
        assert_eq!(s.bad_events, 0);
        assert!((s.events as i64 - 4_800).abs() <= 10, "{}", s.events);
        assert_eq!(s.observed, Duration::from_secs(2 * 24 * HOUR));
        assert!((s.budget_remaining - 1.0).abs() < 1e-12);
        // 3 d is longer than the window: left out.
        assert!(s.burn_rate(Duration::from_secs(72 * HOUR)).is_none());
        let slos = tracker.slos.lock().unwrap();
        assert!(slos[0].fine.samples.len() <= FINE_SAMPLES as usize + 2);
        assert!(slos[0].coarse.samples.len() <= (2 * 24 * 4) + 2);
    }

    #[test]
    fn latency_counts_calls_over_the_threshold_and_survives_expired_series() {
        let r = registry(&[("stockbot_trade_duration_seconds", vec![0.001, 0.005, 0.01])]);
        let slo = Slo::call_latency("fast", 0.9, Duration::from_millis(5));
        let tracker = SloTracker::new(Arc::clone(&r), &[slo], "stockbot", Duration::from_secs(10));
        let key = Key::from_parts(
            "stockbot_trade_duration_seconds",
            vec![Label::from_static_parts("slo", "fast")],
        );
        let Some(Cell::Histogram(h)) = r.cell(&key, MetricKind::Histogram) else {
            panic!("no histogram");
        };
        for v in [0.0005, 0.004, 0.005, 0.007, 0.5] {
            metrics::HistogramFn::record(&*h, v);
        }
        let s = tracker.sample_at(tracker.started + Duration::from_secs(10));
        assert_eq!((s[0].events, s[0].bad_events), (5, 2), "{}", s[0]);
        assert!((s[0].budget_remaining - (1.0 - 0.4 / 0.1)).abs() < 1e-9);
        // A series that went away (idle expiry) does not turn the totals backwards.
        let t = {
            let mut slos = tracker.slos.lock().unwrap();
            slos[0].last_raw = Counts { bad: 10, total: 50 };
            slos[0].acc
        };
        let s = tracker.sample_at(tracker.started + Duration::from_secs(20));
        assert_eq!((s[0].events, s[0].bad_events), (t.total, t.bad));
    }
}
