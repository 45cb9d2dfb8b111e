//! Heap allocations per call in the steady state, counted by a global allocator that counts
//! (this test binary only; the count is process-wide, so background threads show up too).
//! Metrics by macro or handle, disabled events and head-unsampled spans allocate nothing; the
//! other paths' counts are pinned here so they cannot grow unnoticed (docs/performance.md,
//! "Allocations", says where each one comes from).

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stockbot_telemetry::{Config, TelemetryBuilder, instrument_trade};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[instrument_trade(operation = "noop")]
fn noop() {}

const CALLS: u64 = 1_000;

/// The count is process-wide: the tests of this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Allocations per call of `f`: warmed up first (call-site registration, label sets,
/// thread-local pools), then counted over [`CALLS`] calls, five times. The count is
/// process-wide, so a background thread (the log worker's periodic work) can add to one
/// window; the caller's own allocations are the same in every window: the least is kept.
fn per_call(f: &dyn Fn()) -> f64 {
    per_call_settled(f, &|| {})
}

/// As [`per_call`], calling `settle` (uncounted) before each counted window.
fn per_call_settled(f: &dyn Fn(), settle: &dyn Fn()) -> f64 {
    for _ in 0..CALLS {
        f();
    }
    (0..5)
        .map(|_| {
            settle();
            let region = Region::new(GLOBAL);
            for _ in 0..CALLS {
                f();
            }
            region.change().allocations
        })
        .min()
        .unwrap_or_default() as f64
        / CALLS as f64
}

#[test]
fn steady_state_allocations_per_call() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Config::for_service("alloc");
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.metrics.listen = String::new();
    c.metrics.system.enabled = false;
    c.traces.file.enabled = false;
    c.traces.sampler = "always_off".into();
    // The budget's case: head-unsampled, no local keep rule (with keep rules, unsampled spans
    // are recorded and held until their trace's verdict).
    c.traces.keep.enabled = false;
    c.log.filter = "info".into();
    c.pipeline.queue_capacity = 1 << 16;
    c.log.redaction.pseudonym_key = Some(stockbot_telemetry::Secret::new("alloc-key-0123456789"));
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("null", std::io::sink())
        .build_dispatch()
        .unwrap();
    let recorder = guard.metrics_recorder().unwrap();
    let counter = metrics::with_local_recorder(
        &recorder,
        || metrics::counter!("stockbot_alloc_events_total", "venue" => "XNAS"),
    );
    let histogram = metrics::with_local_recorder(
        &recorder,
        || metrics::histogram!("stockbot_alloc_latency_seconds", "venue" => "XNAS"),
    );
    let counts = tracing::dispatcher::with_default(&dispatch, || {
        metrics::with_local_recorder(&recorder, || {
            [
                (
                    "disabled debug! event",
                    per_call(&|| tracing::debug!(venue = "XNAS", qty = 5, "skipped")),
                ),
                (
                    "counter! with static labels",
                    per_call(&|| {
                        metrics::counter!("stockbot_alloc_events_total", "venue" => "XNAS")
                            .increment(1)
                    }),
                ),
                ("counter by handle", per_call(&|| counter.increment(1))),
                (
                    "histogram! with static labels",
                    per_call(&|| {
                        metrics::histogram!("stockbot_alloc_latency_seconds", "venue" => "XNAS")
                            .record(0.001)
                    }),
                ),
                ("histogram by handle", per_call(&|| histogram.record(0.001))),
                (
                    "span, head-unsampled, no field",
                    per_call(&|| {
                        tracing::info_span!("unsampled").in_scope(|| {});
                    }),
                ),
                (
                    "span, head-unsampled, one &str field",
                    per_call(&|| {
                        tracing::info_span!("unsampled", venue = "XNAS").in_scope(|| {});
                    }),
                ),
                ("#[instrument_trade] empty fn, unsampled", per_call(&noop)),
                (
                    "info! with 4 fields (enabled)",
                    per_call(&|| {
                        tracing::info!(
                            venue = "XNAS",
                            strategy = "mm",
                            quantity = 100,
                            price = 1.5,
                            "order accepted"
                        )
                    }),
                ),
            ]
        })
    });
    let table: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("allocations per call:\n  {}", table.join("\n  "));
    let of = |name: &str| counts.iter().find(|(k, _)| *k == name).unwrap().1;
    // Nothing on the metric paths and for disabled events.
    for name in [
        "disabled debug! event",
        "counter! with static labels",
        "counter by handle",
        "histogram! with static labels",
        "histogram by handle",
    ] {
        assert_eq!(of(name), 0.0, "{}", table.join("; "));
    }
    // Nothing either on the unsampled span paths: span contexts come from a per-thread pool,
    // slots of the SDK subscriber's span table from a per-thread free list, and short field
    // values are stored inline.
    for name in [
        "span, head-unsampled, no field",
        "span, head-unsampled, one &str field",
        "#[instrument_trade] empty fn, unsampled",
    ] {
        assert_eq!(of(name), 0.0, "{}", table.join("; "));
    }
    // The enabled event: its record's arena on the caller's thread. The count is process-wide,
    // so the worker's per-batch allocations (amortised over the batch) land in it too.
    assert!(
        of("info! with 4 fields (enabled)") < 1.1,
        "{}",
        table.join("; ")
    );
    let _ = guard.shutdown(Duration::from_secs(5));
}

/// The sampled path on the caller's thread. The export worker gives the contexts of exported
/// spans back (with their field vectors and event stores) for the callers' pools to take in
/// batches. The count is process-wide: the worker is kept asleep during each counted window
/// (large batches, a long flush interval) and flushed between windows, so the figure is the
/// caller's. Pinned so it cannot grow unnoticed.
#[test]
fn sampled_span_allocations_are_pinned() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Config::for_service("alloc");
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.metrics.listen = String::new();
    c.metrics.system.enabled = false;
    c.traces.file.enabled = false;
    c.traces.sampler = "always_on".into();
    c.traces.queue_capacity = 1 << 16;
    c.traces.batch_max_spans = 1 << 14;
    c.traces.flush_interval = Duration::from_secs(3600);
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("null", std::io::sink())
        .with_span_writer("null", std::io::sink())
        .build_dispatch()
        .unwrap();
    let settle = || assert!(guard.flush(Duration::from_secs(10)));
    // With the SDK's recorder: the RED metrics and their exemplar lookups are on the path.
    let recorder = guard.metrics_recorder().unwrap();
    let (span, instrumented) = tracing::dispatcher::with_default(&dispatch, || {
        metrics::with_local_recorder(&recorder, || {
            (
                per_call_settled(
                    &|| tracing::info_span!("sampled", venue = "XNAS").in_scope(|| {}),
                    &settle,
                ),
                per_call_settled(&noop, &settle),
            )
        })
    });
    println!("allocations per call, sampled: span {span}, #[instrument_trade] {instrumented}");
    assert_eq!(span, 0.0, "sampled span");
    assert_eq!(instrumented, 0.0, "sampled #[instrument_trade]");
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.dropped(), 0, "{report:?}");
}
