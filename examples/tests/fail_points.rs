//! Fail points of the core crate (feature `fail-points`) under a network sink, against the fake
//! Elasticsearch. Fail points are process-wide: `fail::FailScenario` makes the tests take turns.
//!
//! - RELIABILITY.md scenario 8 for network sinks: the Elasticsearch sink's shipper thread dies
//!   (a panic outside the transport's guarded `send`). It is detected:
//!   `stockbot_telemetry_exporter_up{sink="elasticsearch"}` drops to 0, what the thread held and
//!   every later record of that sink are counted as `shipper_dead`, the other sinks and the
//!   caller carry on.
//! - Scenario 10's disk errors in the spool: writes torn half-way by a full disk are cut back,
//!   counted, and the records fall back to memory; writing resumes; the spool replays without a
//!   corrupt frame.
//!
//! Every record has a unique id and the accounting identity is checked exactly.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stockbot_telemetry::{ElasticsearchConfig, SpoolConfig, TelemetryBuilder, TelemetryGuard};
use stockbot_telemetry_testing::elasticsearch::{EsReply, FakeElasticsearch};
use stockbot_telemetry_testing::eventually;
use stockbot_telemetry_testing::fault_proxy::{Fault, FaultProxy};

/// A second sink: the lines it got.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn count(&self, needle: &str) -> usize {
        let bytes = self.0.lock().unwrap();
        String::from_utf8_lossy(&bytes).matches(needle).count()
    }
}

fn emit(dispatch: &tracing::Dispatch, range: std::ops::Range<u64>) {
    tracing::dispatcher::with_default(dispatch, || {
        for seq in range {
            tracing::info!(seq, cl_ord_id = format!("C-{seq}").as_str(), "order routed");
        }
    });
}

/// `stockbot_telemetry_exporter_up` of the logs' sink `sink`.
fn exporter_up(guard: &TelemetryGuard, sink: &str) -> f64 {
    let text = guard.render_metrics().unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("stockbot_telemetry_exporter_up{")
                && l.contains("signal=\"logs\"")
                && l.contains(&format!("sink=\"{sink}\""))
        })
        .unwrap_or_else(|| panic!("no exporter_up for {sink} in\n{text}"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

#[test]
fn a_dead_shipper_is_detected_its_records_counted_and_the_other_sinks_carry_on() {
    let scenario = fail::FailScenario::setup();
    let es = FakeElasticsearch::start().unwrap();
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.log.filter = "info,stockbot_telemetry=off".into();
    config.pipeline.flush_interval = Duration::from_millis(20);
    config.log.elasticsearch = Some(ElasticsearchConfig::new(es.url()));
    let lines = Lines::default();
    let (dispatch, guard) = TelemetryBuilder::new(config)
        .with_writer("mem", lines.clone())
        .build_dispatch()
        .unwrap();

    emit(&dispatch, 0..50);
    assert!(guard.flush(Duration::from_secs(10)));
    assert_eq!(es.count_numbered("order.cl_ord_id", "C-").len(), 50);
    assert_eq!(exporter_up(&guard, "elasticsearch"), 1.0);

    // The next request is slow; while it is in flight more records reach the shipper's memory.
    // When it returns, the shipper dies at the top of its next round: it held those records.
    es.script([EsReply::ok().delay(Duration::from_millis(500))]);
    fail::cfg("stockbot-shipper-round", "panic").unwrap();
    emit(&dispatch, 50..60);
    std::thread::sleep(Duration::from_millis(150));
    emit(&dispatch, 60..80);
    assert!(
        eventually(Duration::from_secs(10), || exporter_up(
            &guard,
            "elasticsearch"
        ) == 0.0),
        "the death is detected"
    );
    fail::remove("stockbot-shipper-round");
    assert_eq!(exporter_up(&guard, "mem"), 1.0, "the other sink is up");

    // Later records: the caller never notices, the dead sink counts them, the other writes them.
    emit(&dispatch, 80..100);
    assert!(
        !guard.flush(Duration::from_secs(5)),
        "a flush says the dead sink could not deliver"
    );
    assert_eq!(lines.count("\"C-"), 100, "the other sink got every record");
    let stats = guard.stats();
    let sink = stats.sink("elasticsearch").unwrap();
    assert!(!sink.alive, "{stats:?}");
    let stored = es.count_numbered("order.cl_ord_id", "C-");
    assert!(stored.values().all(|&c| c == 1), "each record once");
    assert!(
        stored.keys().all(|&seq| seq < 80),
        "nothing after the death is shipped"
    );
    // Every record not stored is counted: the held ones and the later ones.
    assert!(sink.dropped["shipper_dead"] >= 20, "{stats:?}");
    // (`written` also counts the SDK's own start-up records.)
    assert_eq!(sink.written, es.stored_count(), "{stats:?}");
    assert_eq!(
        sink.written + sink.dropped["shipper_dead"],
        stats.emitted,
        "{stats:?}"
    );
    assert_eq!(sink.buffered, 0, "{stats:?}");
    assert!(stats.accounted_for(), "{stats:?}");

    let report = guard.shutdown(Duration::from_secs(5));
    assert!(report.stats.accounted_for(), "{report:?}");
    scenario.teardown();
}

#[test]
fn torn_spool_writes_are_cut_back_counted_and_writing_resumes() {
    let scenario = fail::FailScenario::setup();
    let es = FakeElasticsearch::start().unwrap();
    let proxy = FaultProxy::start(&es.url()).unwrap();
    proxy.set(Fault::Refuse);
    let dir = std::env::temp_dir().join(format!(
        "stockbot-spool-fail-{}-{}",
        std::process::id(),
        stockbot_telemetry_testing::prometheus::free_port()
    ));
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.log.filter = "info,stockbot_telemetry=off".into();
    config.pipeline.flush_interval = Duration::from_millis(20);
    let mut e = ElasticsearchConfig::new(proxy.url());
    e.timeout = Duration::from_millis(300);
    config.log.elasticsearch = Some(e);
    let mut spool = SpoolConfig::new(&dir);
    spool.fsync_interval = Duration::from_millis(20);
    config.log.shipping.spool = Some(spool);
    let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
    let sink = |g: &TelemetryGuard| g.stats().sink("elasticsearch").unwrap().clone();

    // The backend is down: records go to the spool.
    emit(&dispatch, 0..100);
    assert!(
        guard.flush(Duration::from_secs(10)),
        "acknowledged in the spool"
    );
    assert!(sink(&guard).spooled > 0, "{:?}", sink(&guard));

    // The disk fills mid-write: each torn frame is cut back and counted; the records stay in
    // memory (the caller never notices).
    fail::cfg("stockbot-spool-write", "return").unwrap();
    emit(&dispatch, 100..200);
    assert!(eventually(Duration::from_secs(10), || sink(&guard)
        .spool_write_errors
        > 0));
    fail::remove("stockbot-spool-write");
    // Writing resumes (after the spool's pause), then the backend comes back.
    std::thread::sleep(Duration::from_millis(1200));
    let before = sink(&guard);
    emit(&dispatch, 200..300);
    assert!(guard.flush(Duration::from_secs(10)));
    let after = sink(&guard);
    assert_eq!(
        after.spool_write_errors, before.spool_write_errors,
        "{after:?}"
    );
    assert!(
        after.spooled >= before.spooled + 100,
        "spooled again: {after:?}"
    );
    proxy.set(Fault::Pass);
    assert!(
        eventually(Duration::from_secs(30), || {
            let s = sink(&guard);
            s.buffered == 0 && s.spool_bytes == 0
        }),
        "{:?}",
        sink(&guard)
    );
    let report = guard.shutdown(Duration::from_secs(10));
    let s = report.stats.sink("elasticsearch").unwrap();
    assert_eq!(
        s.spool_corrupt_frames, 0,
        "torn frames were cut back: {s:?}"
    );
    assert!(s.spool_write_errors > 0, "{s:?}");
    let stored = es.count_numbered("order.cl_ord_id", "C-");
    assert!(stored.values().all(|&c| c == 1), "each record once");
    assert_eq!(stored.len(), 300, "nothing lost: {s:?}");
    assert_eq!(s.written, es.stored_count(), "{s:?}");
    assert_eq!(s.dropped_total(), 0, "{s:?}");
    assert!(report.stats.accounted_for(), "{report:?}");
    let _ = std::fs::remove_dir_all(&dir);
    scenario.teardown();
}
