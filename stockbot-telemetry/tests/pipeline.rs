//! Delivery and loss: bounded queue, audit reserve, failing sinks, the accounting identity,
//! and shutdown on every kind of runtime.

mod common;

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::time::{Duration, Instant};

use common::{Buffer, Gate, config, with_capture};
use stockbot_telemetry::{ErrorKind, TelemetryBuilder};
use tracing::info;

#[test]
fn every_emitted_record_is_written_exactly_once() {
    let mut c = config();
    c.pipeline.batch_max_records = 64;
    let threads = 4;
    let per_thread = 5_000u64;
    let (_, buf, guard) = with_capture(c, || {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                stockbot_telemetry::spawn_thread(move || {
                    for i in 0..per_thread {
                        info!(target: "pipeline", seq_num = t * 1_000_000 + i, "item");
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    });
    let stats = guard.stats();
    let mem = stats.sink("mem").unwrap();
    let ids: Vec<u64> = buf
        .user_lines()
        .iter()
        .filter(|m| m["message"] == "item")
        .map(|m| m["market_data.sequence"].as_u64().unwrap())
        .collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    let user_dropped = stats.dropped_total();
    assert_eq!(
        ids.len() as u64 + user_dropped,
        threads * per_thread,
        "{stats:?}"
    );
    assert_eq!(stats.buffered(), 0);
    assert!(stats.accounted_for(), "{stats:?}");
    assert_eq!(mem.written + stats.dropped_total(), stats.emitted);
}

#[test]
fn a_full_queue_drops_and_counts_but_audit_records_use_the_reserve() {
    let mut c = config();
    c.pipeline.queue_capacity = 100;
    c.pipeline.audit_reserve = 20;
    c.pipeline.batch_max_records = 1;
    let gate = Gate::default();
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("stuck", gate.clone())
        .build_dispatch()
        .unwrap();
    let start = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..1000u64 {
            info!(target: "pipeline", seq_num = i, "normal");
        }
        for i in 0..30u64 {
            info!(target: "pipeline", seq_num = i, audit = true, "audit");
        }
    });
    // The callers never waited for the stuck sink.
    assert!(start.elapsed() < Duration::from_secs(30));
    let stats = guard.stats();
    // At most 80 normal records fit (plus the one or two the worker holds), audit ones use
    // the reserve of 20.
    let dropped = stats.dropped["queue_full"];
    assert!(dropped >= 1000 - 82 + 10, "{stats:?}");
    assert!(stats.queued <= 100, "{stats:?}");
    gate.open();
    assert!(guard.flush(Duration::from_secs(10)));
    let stats = guard.stats();
    assert!(stats.accounted_for(), "{stats:?}");
    assert_eq!(
        stats.sink("stuck").unwrap().written + stats.dropped_total(),
        stats.emitted
    );
}

#[test]
fn a_failing_sink_counts_drops_and_the_others_keep_working() {
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    let mut c = config();
    c.pipeline.batch_max_records = 10;
    let buf = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("disk_full", full)
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..200u64 {
            info!(target: "pipeline", seq_num = i, "to both");
        }
    });
    assert!(guard.flush(Duration::from_secs(10)));
    let stats = guard.stats();
    let full = stats.sink("disk_full").unwrap();
    assert_eq!(full.written, 0);
    assert!(full.dropped["sink_error"] >= 1, "{stats:?}");
    assert_eq!(stats.sink("mem").unwrap().dropped_total(), 0);
    assert_eq!(
        buf.user_lines()
            .iter()
            .filter(|m| m["message"] == "to both")
            .count(),
        200
    );
    assert!(stats.accounted_for(), "{stats:?}");
    // The loss is reported (rate-limited) on the sinks that work.
    assert!(
        buf.lines()
            .iter()
            .any(|m| m["log.logger"] == "stockbot_telemetry::pipeline"
                && m["message"].as_str().unwrap().contains("sink_error"))
    );
}

#[test]
fn the_rolling_file_sink_writes_json_lines() {
    let dir = std::env::temp_dir().join(format!("stockbot-telemetry-file-{}", std::process::id()));
    let mut c = config();
    c.log.file.enabled = true;
    c.log.file.directory = dir.clone();
    let (dispatch, guard) = TelemetryBuilder::new(c).build_dispatch().unwrap();
    tracing::dispatcher::with_default(&dispatch, || info!(target: "pipeline", "to the file"));
    let path = guard.log_file().unwrap().to_path_buf();
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.completed);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(r#""message":"to the file""#)),
        "{text}"
    );
    assert_eq!(report.written("file"), report.stats.emitted);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unwritable_log_directory_is_an_init_error_naming_the_field() {
    let file =
        std::env::temp_dir().join(format!("stockbot-telemetry-notadir-{}", std::process::id()));
    std::fs::write(&file, b"x").unwrap();
    let mut c = config();
    c.log.file.enabled = true;
    c.log.file.directory = file.join("logs");
    let err = TelemetryBuilder::new(c).build().unwrap_err();
    match err.kind() {
        ErrorKind::SinkOpen { field, .. } => assert_eq!(field, "log.file.directory"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("log.file.directory"), "{err}");
    std::fs::remove_file(file).unwrap();
}

#[test]
fn invalid_configuration_is_refused_before_anything_starts() {
    let mut c = config();
    c.pipeline.flush_interval = Duration::ZERO;
    let err = TelemetryBuilder::new(c).build().unwrap_err();
    assert!(err.to_string().contains("pipeline.flush_interval"), "{err}");
    let mut c = config();
    c.log.filter = "info,order_router=loud".into();
    let err = TelemetryBuilder::new(c).build().unwrap_err();
    assert!(err.to_string().contains("log.filter"), "{err}");
    let mut c = config();
    c.log.stdout = false;
    let err = TelemetryBuilder::new(c).build().unwrap_err();
    assert!(err.to_string().contains("no log sink"), "{err}");
}

#[test]
fn worker_thread_is_named_and_can_be_pinned() {
    let mut c = config();
    c.pipeline.worker_cpus = vec![0];
    let (_, _buf, guard) = with_capture(c, || {});
    // The thread exists under its name while the pipeline runs.
    let names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect();
    assert!(
        names.iter().any(|n| n.trim() == "stockbot-teleme"),
        "{names:?}"
    );
    assert!(guard.shutdown(Duration::from_secs(10)).completed);
}

/// A writer that panics on every write (a bug in a sink).
struct Panicky;

impl std::io::Write for Panicky {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        panic!("sink bug");
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_panicking_sink_is_counted_and_the_worker_keeps_going() {
    let buf = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(config())
        .with_writer("panicky", Panicky)
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..50u64 {
            info!(target: "pipeline", seq_num = i, "through a panicking sink");
        }
    });
    assert!(guard.flush(Duration::from_secs(10)));
    let stats = guard.stats();
    let panicky = stats.sink("panicky").unwrap();
    assert_eq!(panicky.written, 0);
    assert_eq!(
        panicky.dropped["worker_panic"] + panicky.dropped["sink_backoff"],
        stats.emitted
    );
    assert!(stats.worker_panics >= 1);
    assert_eq!(
        buf.user_lines()
            .iter()
            .filter(|m| m["message"] == "through a panicking sink")
            .count(),
        50
    );
    assert!(stats.accounted_for(), "{stats:?}");
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.completed, "{report}");
}

#[test]
fn a_bad_config_file_names_the_key_and_never_echoes_the_file() {
    let path = std::env::temp_dir().join(format!(
        "stockbot-telemetry-bad-{}.toml",
        std::process::id()
    ));
    std::fs::write(&path, "[log.redaction]\npseudonym_key = \"super-secret-pseudonym-key\"\n\n[pipeline]\nqueue_capacity = -5\n").unwrap();
    let err = stockbot_telemetry::Config::from_file(&path).unwrap_err();
    let shown = format!("{err} / {err:?}");
    assert!(shown.contains("line 5"), "{shown}");
    assert!(!shown.contains("super-secret-pseudonym-key"), "{shown}");
    std::fs::remove_file(path).unwrap();
}
