//! Caller-thread cost of a log event with 4 fields: our pipeline side by side with
//! tracing-subscriber's JSON formatter (sync, and through tracing-appender's non_blocking), and
//! the disabled-by-level case for both. Each configuration runs alone: its dispatcher is built,
//! benched and dropped before the next one exists (so callsite interest is not shared).
//!
//! Run: `cargo bench -p stockbot-telemetry --bench logs` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use stockbot_telemetry::{Config, SchemaMode, TelemetryBuilder, TelemetryGuard};
use tracing::{Dispatch, info};
use tracing_subscriber::layer::SubscriberExt;

/// Events per timed burst; the pipeline drains (untimed) between bursts, so this measures the
/// "exporter keeps up" case.
const BURST: u64 = 256;

fn event(i: u64) {
    info!(target: "bench", cl_ord_id = "C-000123", symbol = "AAPL", quantity = i, price = 189.25, "order accepted");
}

fn ours(filter: &str) -> (Dispatch, TelemetryGuard) {
    let mut c = Config::for_service("bench");
    c.service.host_name = Some("bench-host".into());
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.log.filter = filter.into();
    c.metrics.listen = String::new();
    c.traces.file.enabled = false;
    c.log.schema = SchemaMode::Lenient;
    c.log.redaction.pseudonym_key = Some(stockbot_telemetry::Secret::new("bench-key-0123456789"));
    c.pipeline.queue_capacity = 1 << 16;
    c.pipeline.audit_reserve = 0;
    TelemetryBuilder::new(c)
        .with_writer("sink", std::io::sink())
        .build_dispatch()
        .unwrap()
}

fn fmt_json_sync(level: tracing::Level) -> Dispatch {
    let sub = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::sink),
        )
        .with(tracing_subscriber::filter::LevelFilter::from_level(level));
    Dispatch::new(sub)
}

fn fmt_json_non_blocking() -> (Dispatch, tracing_appender::non_blocking::WorkerGuard) {
    let (writer, guard) = tracing_appender::non_blocking(std::io::sink());
    let sub = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer))
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    (Dispatch::new(sub), guard)
}

/// Times bursts of events; `settle` runs untimed after each burst.
fn paced(d: &Dispatch, iters: u64, settle: &dyn Fn()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BURST.min(iters - done);
        total += tracing::dispatcher::with_default(d, || {
            let start = Instant::now();
            for i in 0..n {
                event(black_box(i));
            }
            start.elapsed()
        });
        done += n;
        settle();
    }
    total
}

fn enabled(c: &mut Criterion) {
    let mut g = c.benchmark_group("log_enabled_4_fields");
    g.measurement_time(Duration::from_secs(4));
    {
        let (d, guard) = ours("info");
        g.bench_function(BenchmarkId::new("stockbot", "paced"), |b| {
            b.iter_custom(|iters| {
                paced(&d, iters, &|| {
                    guard.flush(Duration::from_secs(10));
                })
            })
        });
        let before = guard.stats();
        g.bench_function(BenchmarkId::new("stockbot", "back_to_back"), |b| {
            b.iter_custom(|iters| paced(&d, iters, &|| {}))
        });
        guard.flush(Duration::from_secs(30));
        let after = guard.stats();
        eprintln!(
            "stockbot back_to_back: {} emitted, {} dropped (queue_full) — the saturated case",
            after.emitted - before.emitted,
            after.dropped["queue_full"] - before.dropped["queue_full"]
        );
        drop(d);
        let _ = guard.shutdown(Duration::from_secs(10));
    }
    {
        let (d, guard) = fmt_json_non_blocking();
        g.bench_function(BenchmarkId::new("fmt_json_non_blocking", "paced"), |b| {
            b.iter_custom(|iters| {
                paced(&d, iters, &|| {
                    std::thread::sleep(Duration::from_micros(300))
                })
            })
        });
        drop(d);
        drop(guard);
    }
    {
        let d = fmt_json_sync(tracing::Level::INFO);
        g.bench_function(BenchmarkId::new("fmt_json_sync", "to_sink"), |b| {
            b.iter_custom(|iters| paced(&d, iters, &|| {}))
        });
    }
    g.finish();
}

fn disabled(c: &mut Criterion) {
    let mut g = c.benchmark_group("log_disabled_by_level");
    {
        let (d, guard) = ours("warn");
        g.bench_function("stockbot", |b| {
            tracing::dispatcher::with_default(&d, || b.iter(|| event(black_box(1))))
        });
        drop(d);
        let _ = guard.shutdown(Duration::from_secs(10));
    }
    {
        let d = fmt_json_sync(tracing::Level::WARN);
        g.bench_function("tracing_fmt", |b| {
            tracing::dispatcher::with_default(&d, || b.iter(|| event(black_box(1))))
        });
    }
    g.finish();
}

criterion_group!(benches, enabled, disabled);
criterion_main!(benches);
