//! Fail points (feature `fail-points`, on in the test command): a log worker that dies, a
//! span worker that dies, a full disk under the rolling file — RELIABILITY.md scenarios 8 and
//! 10. Fail points are process-wide: `fail::FailScenario` makes the tests take turns.

mod common;

use std::time::{Duration, Instant};

use common::{Buffer, config};
use stockbot_telemetry::{TelemetryBuilder, TelemetryGuard};

fn emit(dispatch: &tracing::Dispatch, from: u64, n: u64) {
    tracing::dispatcher::with_default(dispatch, || {
        for seq in from..from + n {
            tracing::info!(target: "pipeline", seq, "order routed");
        }
    });
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// `stockbot_telemetry_exporter_up` of `signal` in the exposition.
fn exporter_up(guard: &TelemetryGuard, signal: &str) -> Vec<f64> {
    let text = guard.render_metrics().unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("stockbot_telemetry_exporter_up{")
                && l.contains(&format!("signal=\"{signal}\""))
        })
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect()
}

/// The sequence numbers of the test's records in `buf`, each once.
fn seqs(buf: &Buffer) -> Vec<u64> {
    let mut seqs: Vec<u64> = buf
        .user_lines()
        .iter()
        .filter_map(|l| l.get("extra.seq").and_then(serde_json::Value::as_u64))
        .collect();
    seqs.sort_unstable();
    seqs
}

#[test]
fn a_dead_log_worker_is_detected_and_every_later_record_counted() {
    let scenario = fail::FailScenario::setup();
    let buf = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(config())
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    emit(&dispatch, 0, 50);
    assert!(guard.flush(Duration::from_secs(10)));
    assert_eq!(exporter_up(&guard, "logs"), [1.0]);

    fail::cfg("stockbot-log-worker-round", "panic").unwrap();
    emit(&dispatch, 50, 10);
    // The flush wakes the worker, which dies at the top of its round.
    let _ = guard.flush(Duration::from_secs(2));
    assert!(wait_until(Duration::from_secs(10), || !guard
        .stats()
        .worker_alive));
    fail::remove("stockbot-log-worker-round");
    assert_eq!(exporter_up(&guard, "logs"), [0.0], "the exposition says so");

    // The caller never notices (no panic, no block); every later record is counted.
    emit(&dispatch, 60, 20);
    let stats = guard.stats();
    assert!(stats.dropped["worker_dead"] >= 20, "{stats:?}");
    assert!(stats.accounted_for(), "{stats:?}");
    assert_eq!(
        seqs(&buf),
        (0..50).collect::<Vec<_>>(),
        "nothing after the death"
    );
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(report.stats.accounted_for(), "{report:?}");
    scenario.teardown();
}

#[test]
fn a_dead_span_worker_is_detected_and_logs_carry_on() {
    let scenario = fail::FailScenario::setup();
    let (logs, spans) = (Buffer::default(), Buffer::default());
    let (dispatch, guard) = TelemetryBuilder::new(config())
        .with_writer("mem", logs.clone())
        .with_span_writer("mem", spans.clone())
        .build_dispatch()
        .unwrap();
    let traced = |from: u64, n: u64| {
        tracing::dispatcher::with_default(&dispatch, || {
            for seq in from..from + n {
                let _s = tracing::info_span!(target: "pipeline", "route_order", seq).entered();
                tracing::info!(target: "pipeline", seq, "order routed");
            }
        });
    };
    traced(0, 20);
    assert!(guard.flush(Duration::from_secs(10)));
    assert_eq!(exporter_up(&guard, "spans"), [1.0]);

    fail::cfg("stockbot-span-worker-round", "panic").unwrap();
    traced(20, 5);
    let _ = guard.flush(Duration::from_secs(2));
    assert!(wait_until(Duration::from_secs(10), || {
        !guard.span_stats().unwrap().worker_alive
    }));
    fail::remove("stockbot-span-worker-round");
    assert_eq!(exporter_up(&guard, "spans"), [0.0]);

    traced(25, 10);
    // A flush says it could not finish (the span side cannot), but logs are written.
    assert!(!guard.flush(Duration::from_secs(2)));
    assert!(wait_until(Duration::from_secs(10), || seqs(&logs).len() == 35));
    let span_stats = guard.span_stats().unwrap();
    assert!(span_stats.dropped["worker_dead"] >= 10, "{span_stats:?}");
    assert!(span_stats.accounted_for(), "{span_stats:?}");
    assert_eq!(
        seqs(&logs),
        (0..35).collect::<Vec<_>>(),
        "logs are unaffected"
    );
    let _ = guard.shutdown(Duration::from_secs(5));
    scenario.teardown();
}

#[test]
fn a_full_disk_under_the_rolling_file_is_counted_and_writing_resumes() {
    let scenario = fail::FailScenario::setup();
    let dir = std::env::temp_dir().join(format!(
        "stockbot-fail-points-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = config();
    c.log.file.enabled = true;
    c.log.file.directory = dir.clone();
    let buf = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    fail::cfg("stockbot-file-write", "return").unwrap();
    emit(&dispatch, 0, 30);
    assert!(guard.flush(Duration::from_secs(10)));
    let stats = guard.stats();
    let file = stats.sink("file").unwrap();
    let lost = file.dropped.values().sum::<u64>();
    assert!(lost >= 30, "the full disk's records are counted: {stats:?}");
    assert_eq!(
        seqs(&buf),
        (0..30).collect::<Vec<_>>(),
        "the other sink carries on"
    );

    fail::remove("stockbot-file-write");
    // After the sink's backoff, writing resumes.
    assert!(wait_until(Duration::from_secs(20), || {
        emit(&dispatch, 1_000, 1);
        let _ = guard.flush(Duration::from_secs(5));
        guard.stats().sink("file").unwrap().written > 0
    }));
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(
        report.stats.accounted_for() && report.completed,
        "{report:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    scenario.teardown();
}
