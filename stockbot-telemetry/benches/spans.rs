//! Span cost on the caller's thread: our layer (sampled and head-unsampled) side by side with
//! `tracing` + `tracing-opentelemetry` + `opentelemetry_sdk` (AlwaysOn / AlwaysOff / ratio
//! 0.01, batch processor with a null exporter) and `fastrace` (sampled / unsampled, null
//! reporter). Each configuration runs alone; exported cases are paced (bursts of 256, then an
//! untimed flush) so the exporter keeps up.
//!
//! Run: `cargo bench -p stockbot-telemetry --bench spans` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use stockbot_telemetry::{Config, TelemetryBuilder, TelemetryGuard};
use tracing::{Dispatch, info_span};
use tracing_subscriber::layer::SubscriberExt;

const BURST: u64 = 256;

#[derive(Debug)]
struct NullExporter;

impl SpanExporter for NullExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

struct NullReporter;

impl fastrace::collector::Reporter for NullReporter {
    fn report(&mut self, spans: Vec<fastrace::prelude::SpanRecord>) {
        black_box(spans);
    }
}

fn ours(sampler: &str) -> (Dispatch, TelemetryGuard) {
    let mut c = Config::for_service("bench");
    c.service.host_name = Some("bench-host".into());
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.metrics.enabled = false;
    c.traces.file.enabled = false;
    c.traces.sampler = sampler.into();
    c.traces.queue_capacity = 1 << 16;
    c.log.redaction.pseudonym_key = Some(stockbot_telemetry::Secret::new("bench-key-0123456789"));
    TelemetryBuilder::new(c)
        .with_writer("sink", std::io::sink())
        .with_span_writer("sink", std::io::sink())
        .build_dispatch()
        .unwrap()
}

fn otel(sampler: Sampler) -> (Dispatch, SdkTracerProvider) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_batch_exporter(NullExporter)
        .build();
    let tracer = provider.tracer("bench");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    (Dispatch::new(subscriber), provider)
}

fn one_span() {
    let span = info_span!("route_order", venue = "XNAS");
    let _e = span.enter();
}

fn root_and_child() {
    let root = info_span!("route_order", venue = "XNAS");
    let _r = root.enter();
    let child = info_span!("risk_check");
    let _c = child.enter();
}

fn paced(d: &Dispatch, iters: u64, f: fn(), settle: &dyn Fn()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BURST.min(iters - done);
        total += tracing::dispatcher::with_default(d, || {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed()
        });
        done += n;
        settle();
    }
    total
}

fn lifecycle(c: &mut Criterion) {
    for (group, f) in [
        ("span_lifecycle", one_span as fn()),
        ("span_root_and_child", root_and_child),
    ] {
        let mut g = c.benchmark_group(group);
        g.measurement_time(Duration::from_secs(3));
        for sampler in ["always_on", "always_off"] {
            let (d, guard) = ours(sampler);
            g.bench_function(BenchmarkId::new("stockbot", sampler), |b| {
                b.iter_custom(|iters| {
                    paced(&d, iters, f, &|| {
                        guard.flush(Duration::from_secs(10));
                    })
                })
            });
            drop(d);
            let _ = guard.shutdown(Duration::from_secs(10));
        }
        for (name, sampler) in [
            ("always_on", Sampler::AlwaysOn),
            ("always_off", Sampler::AlwaysOff),
            ("ratio_0.01", Sampler::TraceIdRatioBased(0.01)),
        ] {
            let (d, provider) = otel(sampler);
            g.bench_function(BenchmarkId::new("tracing_opentelemetry", name), |b| {
                b.iter_custom(|iters| {
                    paced(&d, iters, f, &|| {
                        let _ = provider.force_flush();
                    })
                })
            });
            drop(d);
            let _ = provider.shutdown();
        }
        g.finish();
    }
}

fn fastrace_baseline(c: &mut Criterion) {
    fastrace::set_reporter(NullReporter, fastrace::collector::Config::default());
    let mut g = c.benchmark_group("span_root_and_child");
    g.measurement_time(Duration::from_secs(3));
    for sampled in [true, false] {
        g.bench_function(
            BenchmarkId::new("fastrace", if sampled { "sampled" } else { "unsampled" }),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let n = BURST.min(iters - done);
                        let start = Instant::now();
                        for _ in 0..n {
                            let root = fastrace::Span::root(
                                "route_order",
                                fastrace::prelude::SpanContext::random().sampled(sampled),
                            );
                            let _g = root.set_local_parent();
                            let _c =
                                fastrace::local::LocalSpan::enter_with_local_parent("risk_check");
                        }
                        total += start.elapsed();
                        done += n;
                        fastrace::flush();
                    }
                    total
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, lifecycle, fastrace_baseline);
criterion_main!(benches);
