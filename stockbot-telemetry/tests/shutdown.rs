//! Shutdown never hangs: with a healthy or a stuck sink, on current-thread and multi-thread
//! tokio runtimes, from inside async code, and with no runtime at all.

mod common;

use std::time::{Duration, Instant};

use common::{Buffer, Gate, config};
use stockbot_telemetry::{TelemetryBuilder, TelemetryGuard};
use tracing::info;

/// Generous bound: proves "returns", not speed.
const NEVER_HANGS: Duration = Duration::from_secs(20);

fn healthy() -> (tracing::Dispatch, TelemetryGuard, Buffer) {
    let buf = Buffer::default();
    let (d, g) = TelemetryBuilder::new(config())
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    (d, g, buf)
}

fn emit(d: &tracing::Dispatch, n: u64) {
    tracing::dispatcher::with_default(d, || {
        for i in 0..n {
            info!(target: "shutdown", seq_num = i, "record");
        }
    });
}

fn check_complete(guard: TelemetryGuard, n: u64) {
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.completed, "{report}");
    assert_eq!(report.still_buffered(), 0);
    assert!(report.written("mem") >= n);
    assert!(report.stats.accounted_for(), "{report:?}");
}

#[test]
fn without_a_runtime() {
    let (d, g, buf) = healthy();
    emit(&d, 1000);
    check_complete(g, 1000);
    assert_eq!(buf.user_lines().len(), 1000);
}

#[test]
fn on_a_current_thread_runtime_from_async_code() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (d, g, _) = healthy();
        emit(&d, 500);
        tokio::task::yield_now().await;
        check_complete(g, 500);
    });
}

#[test]
fn on_a_multi_thread_runtime_from_a_task() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::spawn(async {
            let (d, g, _) = healthy();
            emit(&d, 500);
            check_complete(g, 500);
        })
        .await
        .unwrap();
    });
}

#[test]
fn with_a_stuck_sink_it_returns_by_the_deadline_and_reports_what_is_left() {
    let gate = Gate::default();
    let (d, g) = TelemetryBuilder::new(config())
        .with_writer("stuck", gate.clone())
        .build_dispatch()
        .unwrap();
    emit(&d, 2000);
    let start = Instant::now();
    let report = g.shutdown(Duration::from_millis(300));
    assert!(start.elapsed() < NEVER_HANGS);
    assert!(!report.completed, "{report}");
    assert!(report.still_buffered() > 0, "{report}");
    assert!(report.to_string().contains("timed out"));
    gate.open();
}

#[test]
fn dropping_the_guard_flushes_best_effort_and_returns() {
    let (d, g, buf) = healthy();
    emit(&d, 100);
    let start = Instant::now();
    drop(g);
    assert!(start.elapsed() < NEVER_HANGS);
    assert_eq!(buf.user_lines().len(), 100);

    let gate = Gate::default();
    let mut c = config();
    c.pipeline.drop_flush_timeout = Duration::from_millis(100);
    let (d, g) = TelemetryBuilder::new(c)
        .with_writer("stuck", gate.clone())
        .build_dispatch()
        .unwrap();
    emit(&d, 100);
    let start = Instant::now();
    drop(g);
    assert!(start.elapsed() < NEVER_HANGS);
    gate.open();
}
