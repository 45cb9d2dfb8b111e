//! A realistic trading-loop step with everything on, and two threads contending.
//!
//! * `trading_step`: one `#[instrument_trade]` function calling two instrumented children,
//!   3 log events and 4 metric updates (the business catalogue), sampled and exported, paced —
//!   against the same step hand-instrumented with `#[tracing::instrument]` +
//!   tracing-opentelemetry (AlwaysOn, batch processor, null exporter) + tracing-subscriber's
//!   JSON formatter through `non_blocking` + `metrics` into a bare metrics-exporter-prometheus
//!   recorder, with the RED counter and histogram each instrumented function gets from ours.
//! * `two_threads`: a counter by handle, the same counter by macro, and an unsampled span,
//!   from two threads at once (the platform is multi-threaded): wall time per operation.
//!
//! Run: `cargo bench -p stockbot-telemetry --bench composite` (add `-- --quick`).

mod support;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use stockbot_telemetry::instrument_trade;
use stockbot_telemetry::trading::{self, Side};
use support::{NullExporter, ours_with, paced};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

const VENUE: &str = "XNAS";
const STRATEGY: &str = "mean-revert";

#[instrument_trade(operation = "risk_check", strategy = STRATEGY)]
fn risk_check(notional: f64) -> bool {
    black_box(notional) < 1e6
}

#[instrument_trade(operation = "route_order", venue = VENUE, strategy = STRATEGY)]
fn route_order(quantity: u64) -> u64 {
    trading::order_submitted(VENUE, STRATEGY);
    trading::order_acked(VENUE, STRATEGY, Duration::from_micros(180));
    black_box(quantity)
}

#[instrument_trade(operation = "trading_step", strategy = STRATEGY)]
fn ours_step() {
    tracing::info!(symbol = "AAPL", side = "buy", quantity = 100, "signal");
    if risk_check(19_000.0) {
        let filled = route_order(100);
        tracing::info!(
            cl_ord_id = "C-1001",
            venue = VENUE,
            fill_qty = filled,
            "order filled"
        );
        trading::fill(VENUE, STRATEGY, Side::Buy, false);
        trading::exposure(STRATEGY, "USD", 19_000.0);
    }
    tracing::info!(symbol = "AAPL", "step done");
}

/// The RED metrics our attribute records, written by hand.
fn red(operation: &'static str, start: Instant) {
    metrics::counter!("stockbot_trade_calls_total", "operation" => operation, "outcome" => "ok")
        .increment(1);
    metrics::histogram!("stockbot_trade_duration_seconds", "operation" => operation, "outcome" => "ok")
        .record(start.elapsed().as_secs_f64());
}

#[tracing::instrument(fields(strategy = STRATEGY))]
fn their_risk_check(notional: f64) -> bool {
    let start = Instant::now();
    let ok = black_box(notional) < 1e6;
    red("risk_check", start);
    ok
}

#[tracing::instrument(fields(venue = VENUE, strategy = STRATEGY))]
fn their_route_order(quantity: u64) -> u64 {
    let start = Instant::now();
    metrics::counter!("stockbot_orders_submitted_total", "venue" => VENUE, "strategy" => STRATEGY)
        .increment(1);
    metrics::histogram!("stockbot_order_ack_latency_seconds", "venue" => VENUE, "strategy" => STRATEGY)
        .record(0.000_18);
    red("route_order", start);
    black_box(quantity)
}

#[tracing::instrument(fields(strategy = STRATEGY))]
fn their_step() {
    let start = Instant::now();
    tracing::info!(symbol = "AAPL", side = "buy", quantity = 100, "signal");
    if their_risk_check(19_000.0) {
        let filled = their_route_order(100);
        tracing::info!(
            cl_ord_id = "C-1001",
            venue = VENUE,
            fill_qty = filled,
            "order filled"
        );
        metrics::counter!("stockbot_fills_total", "venue" => VENUE, "strategy" => STRATEGY, "side" => "buy", "fill_type" => "full")
            .increment(1);
        metrics::gauge!("stockbot_exposure_notional", "strategy" => STRATEGY, "currency" => "USD")
            .set(19_000.0);
    }
    tracing::info!(symbol = "AAPL", "step done");
    red("trading_step", start);
}

/// tracing + tracing-opentelemetry (AlwaysOn) + fmt JSON through non_blocking.
fn theirs() -> (
    Dispatch,
    SdkTracerProvider,
    tracing_appender::non_blocking::WorkerGuard,
) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_batch_exporter(NullExporter)
        .build();
    let (writer, guard) = tracing_appender::non_blocking(std::io::sink());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")))
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
    (Dispatch::new(subscriber), provider, guard)
}

fn trading_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("trading_step");
    g.measurement_time(Duration::from_secs(4));
    {
        let (d, guard) = ours_with("always_on", true);
        let recorder = guard.metrics_recorder().unwrap();
        g.bench_function(BenchmarkId::new("stockbot", "everything_on"), |b| {
            b.iter_custom(|iters| {
                metrics::with_local_recorder(&recorder, || {
                    paced(&d, iters, ours_step, &|| {
                        guard.flush(Duration::from_secs(10));
                    })
                })
            })
        });
        let stats = guard.stats();
        eprintln!(
            "stockbot: {} log records emitted, {} dropped",
            stats.emitted,
            stats.dropped_total()
        );
        drop(d);
        let _ = guard.shutdown(Duration::from_secs(10));
    }
    {
        let (d, provider, guard) = theirs();
        let prometheus = PrometheusBuilder::new().build_recorder();
        g.bench_function(
            BenchmarkId::new("tracing_otel_fmt_json_metrics", "everything_on"),
            |b| {
                b.iter_custom(|iters| {
                    metrics::with_local_recorder(&prometheus, || {
                        paced(&d, iters, their_step, &|| {
                            let _ = provider.force_flush();
                            std::thread::sleep(Duration::from_micros(300));
                        })
                    })
                })
            },
        );
        drop(d);
        drop(guard);
        let _ = provider.shutdown();
    }
    g.finish();
}

/// Runs `op` `iters / 2` times on each of two threads at once; the wall time per operation.
fn two_threads(iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    let per_thread = (iters / 2).max(1);
    let barrier = Barrier::new(2);
    let elapsed = std::thread::scope(|s| {
        let run = || {
            barrier.wait();
            let start = Instant::now();
            for _ in 0..per_thread {
                op();
            }
            start.elapsed()
        };
        let a = s.spawn(run);
        let b = s.spawn(run);
        a.join().unwrap().max(b.join().unwrap())
    });
    // Two operations complete per `per_thread` step: report per operation.
    elapsed / 2
}

fn contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("two_threads");
    g.measurement_time(Duration::from_secs(3));
    {
        let (d, guard) = ours_with("always_off", true);
        let recorder = guard.metrics_recorder().unwrap();
        let handle = metrics::with_local_recorder(
            &recorder,
            || metrics::counter!("stockbot_contended_total", "venue" => VENUE),
        );
        g.bench_function(BenchmarkId::new("counter_by_handle", "stockbot"), |b| {
            b.iter_custom(|iters| two_threads(iters, &|| handle.increment(1)))
        });
        g.bench_function(BenchmarkId::new("counter_by_macro", "stockbot"), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, &|| {
                    metrics::with_local_recorder(&recorder, || {
                        metrics::counter!("stockbot_contended_total", "venue" => VENUE).increment(1)
                    })
                })
            })
        });
        g.bench_function(BenchmarkId::new("span_unsampled", "stockbot"), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, &|| {
                    tracing::dispatcher::with_default(&d, || {
                        tracing::info_span!("contended", venue = VENUE).in_scope(|| {})
                    })
                })
            })
        });
        drop(d);
        let _ = guard.shutdown(Duration::from_secs(10));
    }
    {
        let prometheus = PrometheusBuilder::new().build_recorder();
        let handle = metrics::with_local_recorder(
            &prometheus,
            || metrics::counter!("stockbot_contended_total", "venue" => VENUE),
        );
        g.bench_function(BenchmarkId::new("counter_by_handle", "prometheus"), |b| {
            b.iter_custom(|iters| two_threads(iters, &|| handle.increment(1)))
        });
        g.bench_function(BenchmarkId::new("counter_by_macro", "prometheus"), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, &|| {
                    metrics::with_local_recorder(&prometheus, || {
                        metrics::counter!("stockbot_contended_total", "venue" => VENUE).increment(1)
                    })
                })
            })
        });
        let (d, provider) = support::otel(Sampler::AlwaysOff);
        g.bench_function(
            BenchmarkId::new("span_unsampled", "tracing_otel_always_off"),
            |b| {
                b.iter_custom(|iters| {
                    two_threads(iters, &|| {
                        tracing::dispatcher::with_default(&d, || {
                            tracing::info_span!("contended", venue = VENUE).in_scope(|| {})
                        })
                    })
                })
            },
        );
        drop(d);
        let _ = provider.shutdown();
    }
    g.finish();
}

criterion_group!(benches, trading_step, contention);
criterion_main!(benches);
