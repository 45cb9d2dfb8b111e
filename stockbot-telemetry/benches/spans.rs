//! Span cost on the caller's thread: our layer (sampled and head-unsampled) side by side with
//! `tracing` + `tracing-opentelemetry` + `opentelemetry_sdk` (AlwaysOn / AlwaysOff / ratio
//! 0.01, batch processor with a null exporter) and `fastrace` (sampled / unsampled, null
//! reporter). Each configuration runs alone; exported cases are paced (bursts of 256, then an
//! untimed flush) so the exporter keeps up.
//!
//! Run: `cargo bench -p stockbot-telemetry --bench spans` (add `-- --quick` for a fast pass).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use opentelemetry_sdk::trace::Sampler;
use tracing::info_span;

mod support;

use support::{NullReporter, fastrace_roots, otel, ours, paced};

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
                    fastrace_roots(iters, "route_order", sampled, || {
                        let _c = fastrace::local::LocalSpan::enter_with_local_parent("risk_check");
                    })
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, lifecycle, fastrace_baseline);
criterion_main!(benches);
