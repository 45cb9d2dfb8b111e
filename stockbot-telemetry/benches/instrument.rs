//! `#[instrument_trade]` on an empty function (span + RED metrics), sampled and head-unsampled,
//! with static labels only and with a run-time label, side by side with
//! `#[tracing::instrument]` + tracing-opentelemetry (AlwaysOn / AlwaysOff, null exporter) plus
//! a `metrics` counter and histogram recorded by hand into a bare metrics-exporter-prometheus
//! recorder, and with `#[fastrace::trace]` under a root span (sampled / unsampled, null
//! reporter). Exported cases are paced (bursts of 256, untimed flush between).
//!
//! Run: `cargo bench -p stockbot-telemetry --bench instrument` (add `-- --quick`).

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;
use opentelemetry_sdk::trace::Sampler;
use stockbot_telemetry::instrument_trade;
use support::{NullReporter, fastrace_roots, otel, ours_with, paced};

#[instrument_trade(operation = "noop")]
fn ours_static() {}

#[instrument_trade(operation = "noop_venue")]
fn ours_label(venue: &str) {
    black_box(venue);
}

#[tracing::instrument]
fn theirs() {
    let start = Instant::now();
    metrics::counter!("noop_calls_total", "operation" => "noop", "outcome" => "ok").increment(1);
    metrics::histogram!("noop_duration_seconds", "operation" => "noop", "outcome" => "ok")
        .record(start.elapsed().as_secs_f64());
}

#[fastrace::trace]
fn traced() {
    black_box(());
}

fn ours_with_label() {
    ours_label(black_box("XNAS"));
}

fn instrumented(c: &mut Criterion) {
    let mut g = c.benchmark_group("instrument_trade_empty_fn");
    g.measurement_time(Duration::from_secs(3));
    for sampler in ["always_on", "always_off"] {
        let (d, guard) = ours_with(sampler, true);
        let recorder = guard.metrics_recorder().unwrap();
        for (name, f) in [
            ("static_labels", ours_static as fn()),
            ("runtime_label", ours_with_label),
        ] {
            g.bench_function(BenchmarkId::new(format!("stockbot_{name}"), sampler), |b| {
                b.iter_custom(|iters| {
                    metrics::with_local_recorder(&recorder, || {
                        paced(&d, iters, f, &|| {
                            guard.flush(Duration::from_secs(10));
                        })
                    })
                })
            });
        }
        drop(d);
        let _ = guard.shutdown(Duration::from_secs(10));
    }
    let prometheus = PrometheusBuilder::new().build_recorder();
    for (name, sampler) in [
        ("always_on", Sampler::AlwaysOn),
        ("always_off", Sampler::AlwaysOff),
    ] {
        let (d, provider) = otel(sampler);
        g.bench_function(
            BenchmarkId::new("tracing_instrument_otel_metrics", name),
            |b| {
                b.iter_custom(|iters| {
                    metrics::with_local_recorder(&prometheus, || {
                        paced(&d, iters, theirs, &|| {
                            let _ = provider.force_flush();
                        })
                    })
                })
            },
        );
        drop(d);
        let _ = provider.shutdown();
    }
    fastrace::set_reporter(NullReporter, fastrace::collector::Config::default());
    for sampled in [true, false] {
        g.bench_function(
            BenchmarkId::new(
                "fastrace_trace",
                if sampled { "sampled" } else { "unsampled" },
            ),
            |b| b.iter_custom(|iters| fastrace_roots(iters, "noop", sampled, traced)),
        );
    }
    g.finish();
}

criterion_group!(benches, instrumented);
criterion_main!(benches);
