//! What the span and `#[instrument_trade]` benches share: our stack and the
//! tracing-opentelemetry baseline, each with a null exporter, and paced bursts.
#![allow(dead_code, reason = "each bench uses part of it")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use stockbot_telemetry::{Config, TelemetryBuilder, TelemetryGuard};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

pub(crate) const BURST: u64 = 256;

#[derive(Debug)]
pub(crate) struct NullExporter;

impl SpanExporter for NullExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

pub(crate) struct NullReporter;

impl fastrace::collector::Reporter for NullReporter {
    fn report(&mut self, spans: Vec<fastrace::prelude::SpanRecord>) {
        black_box(spans);
    }
}

pub(crate) fn ours(sampler: &str) -> (Dispatch, TelemetryGuard) {
    ours_with(sampler, false)
}

/// Our stack; with `metrics`, the recorder is on (no scrape endpoint, no system metrics).
pub(crate) fn ours_with(sampler: &str, metrics: bool) -> (Dispatch, TelemetryGuard) {
    let mut c = Config::for_service("bench");
    c.service.host_name = Some("bench-host".into());
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.metrics.enabled = metrics;
    c.metrics.listen = String::new();
    c.metrics.system.enabled = false;
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

pub(crate) fn otel(sampler: Sampler) -> (Dispatch, SdkTracerProvider) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_batch_exporter(NullExporter)
        .build();
    let tracer = provider.tracer("bench");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    (Dispatch::new(subscriber), provider)
}

/// Runs `f` `iters` times in bursts of [`BURST`] under `d`, calling `settle` (untimed) between
/// bursts so exporters keep up.
pub(crate) fn paced(d: &Dispatch, iters: u64, f: fn(), settle: &dyn Fn()) -> Duration {
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

/// `iters` fastrace root spans named `name` (sampled or not), each made the local parent
/// while `inside` runs, in bursts of [`BURST`] with an untimed flush between: the time spent.
pub(crate) fn fastrace_roots(
    iters: u64,
    name: &'static str,
    sampled: bool,
    inside: fn(),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BURST.min(iters - done);
        let start = Instant::now();
        for _ in 0..n {
            let root = fastrace::Span::root(
                name,
                fastrace::prelude::SpanContext::random().sampled(sampled),
            );
            let _g = root.set_local_parent();
            inside();
        }
        total += start.elapsed();
        done += n;
        fastrace::flush();
    }
    total
}
