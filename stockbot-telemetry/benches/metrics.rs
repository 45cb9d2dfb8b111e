//! Metrics hot path and rendering: our enforcing recorder side by side with the bare
//! `metrics-exporter-prometheus` recorder, each used as a thread-local recorder in turn.
//!
//! Run: `cargo bench -p stockbot-telemetry --bench metrics` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metrics::Recorder;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use stockbot_telemetry::{Config, MetricsRecorder, TelemetryBuilder, TelemetryGuard};

const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
];

fn ours(cap: usize) -> (MetricsRecorder, TelemetryGuard) {
    let mut c = Config::for_service("bench");
    c.service.host_name = Some("bench-host".into());
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.metrics.listen = String::new();
    c.traces.file.enabled = false;
    c.metrics.max_series_per_metric = cap;
    c.metrics.default_buckets = BUCKETS.to_vec();
    c.log.redaction.pseudonym_key = Some(stockbot_telemetry::Secret::new("bench-key-0123456789"));
    let (_, guard) = TelemetryBuilder::new(c)
        .with_writer("sink", std::io::sink())
        .build()
        .unwrap();
    (guard.metrics_recorder().unwrap(), guard)
}

fn bare() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .unwrap()
        .build_recorder()
}

fn hot_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics_hot_path");
    g.measurement_time(Duration::from_secs(3));
    let (mine, guard) = ours(1000);
    let theirs = bare();
    let recorders: [(&str, &dyn Recorder); 2] =
        [("stockbot", &mine), ("prometheus_exporter", &theirs)];
    for (name, recorder) in recorders {
        metrics::with_local_recorder(recorder, || {
            g.bench_function(BenchmarkId::new("counter_macro_2_labels", name), |b| {
                b.iter(|| metrics::counter!("stockbot_orders_submitted_total", "venue" => "XNAS", "strategy" => "mm").increment(black_box(1)))
            });
            let counter =
                metrics::counter!("stockbot_fills_total", "venue" => "XNAS", "strategy" => "mm");
            g.bench_function(BenchmarkId::new("counter_handle", name), |b| {
                b.iter(|| counter.increment(black_box(1)))
            });
            g.bench_function(BenchmarkId::new("histogram_macro_2_labels", name), |b| {
                b.iter(|| metrics::histogram!("stockbot_order_ack_latency_seconds", "venue" => "XNAS", "strategy" => "mm").record(black_box(0.000_3)))
            });
            let histogram =
                metrics::histogram!("stockbot_tick_to_trade_latency_seconds", "strategy" => "mm");
            g.bench_function(BenchmarkId::new("histogram_handle", name), |b| {
                b.iter(|| histogram.record(black_box(0.000_3)))
            });
        });
    }
    g.finish();
    drop(guard);
}

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics_render");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for series in [1_000usize, 10_000] {
        let (mine, guard) = ours(series * 2);
        let theirs = bare();
        let handle = theirs.handle();
        for recorder in [&mine as &dyn Recorder, &theirs] {
            metrics::with_local_recorder(recorder, || {
                for i in 0..series {
                    metrics::counter!("stockbot_quotes_total", "venue" => format!("V{i}"))
                        .increment(1);
                    metrics::histogram!("stockbot_quote_latency_seconds", "venue" => format!("V{i}")).record(0.001);
                }
            });
        }
        g.bench_function(
            BenchmarkId::new(
                "stockbot",
                format!("{series}_counters_and_{series}_histograms"),
            ),
            |b| b.iter(|| black_box(guard.render_metrics().unwrap().len())),
        );
        g.bench_function(
            BenchmarkId::new(
                "prometheus_exporter",
                format!("{series}_counters_and_{series}_histograms"),
            ),
            |b| b.iter(|| black_box(handle.render().len())),
        );
        drop(guard);
    }
    g.finish();
}

criterion_group!(benches, hot_path, render);
criterion_main!(benches);
