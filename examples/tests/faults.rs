//! Network faults between the SDK and its backends, injected by the testing crate's
//! `FaultProxy` in front of the fake Elasticsearch and OTLP receivers (RELIABILITY.md
//! scenarios 4 and 6): black-holed connections, resets, refused connections, added latency —
//! then recovery. Every emitted record has a unique id; each test asserts the accounting
//! identity exactly and that every id arrives once.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use stockbot_telemetry::{
    ElasticsearchConfig, OtlpProtocol, OtlpTracesConfig, TelemetryBuilder, TelemetryGuard,
};
use stockbot_telemetry_testing::elasticsearch::FakeElasticsearch;
use stockbot_telemetry_testing::eventually;
use stockbot_telemetry_testing::fault_proxy::{Fault, FaultProxy};
use stockbot_telemetry_testing::otlp::FakeOtlpReceiver;

/// The SDK threads are counted process-wide: the tests of this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Threads of this process the SDK runs (by name; the gRPC exporter's runtime is a
/// current-thread one on the shipper's own thread, so it adds none).
fn sdk_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .filter(|n| n.starts_with("stockbot-"))
                .count()
        })
        .unwrap_or_default()
}

fn es_service(url: String) -> (tracing::Dispatch, TelemetryGuard) {
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.log.filter = "info,stockbot_telemetry=off".into();
    config.pipeline.flush_interval = Duration::from_millis(50);
    let mut es = ElasticsearchConfig::new(url);
    es.timeout = Duration::from_millis(400);
    config.log.elasticsearch = Some(es);
    TelemetryBuilder::new(config).build_dispatch().unwrap()
}

fn emit(dispatch: &tracing::Dispatch, from: u64, n: u64) -> Duration {
    let start = Instant::now();
    tracing::dispatcher::with_default(dispatch, || {
        for seq in from..from + n {
            tracing::info!(seq, cl_ord_id = format!("C-{seq}").as_str(), "order routed");
        }
    });
    start.elapsed()
}

fn stored_once(es: &FakeElasticsearch, n: u64) -> bool {
    let stored: BTreeMap<u64, usize> = es.count_numbered("order.cl_ord_id", "C-");
    stored.len() as u64 == n && stored.values().all(|&c| c == 1)
}

#[test]
fn scenario_6_elasticsearch_black_holed_reset_and_slow_then_back_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let es = FakeElasticsearch::start().unwrap();
    let proxy = FaultProxy::start(&es.url()).unwrap();
    let (dispatch, guard) = es_service(proxy.url());
    let mut threads = None;
    let mut emitted = 0;
    for (fault, n) in [
        (Fault::BlackHole, 100),
        (Fault::Reset, 100),
        (Fault::Delay(Duration::from_millis(150)), 100),
    ] {
        proxy.set(fault);
        // Callers never wait for the network: generous bound, it only proves "no blocking".
        let took = emit(&dispatch, emitted, n);
        assert!(
            took < Duration::from_secs(2),
            "{fault:?}: emitting took {took:?}"
        );
        emitted += n;
        // Several export attempts run into the fault (timeouts of 400 ms, backoff).
        std::thread::sleep(Duration::from_millis(1500));
        // Every SDK thread is up after the first phase (some start with their first work).
        let now = sdk_threads();
        assert!(
            now <= *threads.get_or_insert(now),
            "{fault:?}: no thread per attempt"
        );
        let stats = guard.stats();
        assert!(stats.accounted_for(), "{fault:?}: {stats:?}");
    }
    // Back: everything held is delivered, each record once.
    proxy.set(Fault::Pass);
    assert!(guard.flush(Duration::from_secs(30)));
    assert!(
        eventually(Duration::from_secs(10), || stored_once(&es, emitted)),
        "{:?}",
        es.count_numbered("order.cl_ord_id", "C-").len()
    );
    let report = guard.shutdown(Duration::from_secs(10));
    let sink = report.stats.sink("elasticsearch").unwrap();
    // Every record written once (ours, and the SDK's own start-up records).
    assert_eq!(sink.written, report.stats.emitted, "{report:?}");
    assert!(sink.dropped.values().all(|&d| d == 0), "{report:?}");
    assert!(
        report.stats.accounted_for() && report.completed,
        "{report:?}"
    );
    assert!(
        proxy.accepted() > 3,
        "the faults were met: {}",
        proxy.accepted()
    );
}

fn span_service(endpoint: String, grpc: bool, queue: usize) -> (tracing::Dispatch, TelemetryGuard) {
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.traces.sampler = "always_on".into();
    config.traces.flush_interval = Duration::from_millis(50);
    config.traces.queue_capacity = queue;
    // A small memory buffer in the shipper too: an outage must overflow it (counted).
    config.log.shipping.memory_max_bytes = 64 * 1024;
    let mut otlp = OtlpTracesConfig::new(if grpc {
        endpoint
    } else {
        format!("{endpoint}/v1/traces")
    });
    if grpc {
        otlp.protocol = OtlpProtocol::Grpc;
    }
    otlp.timeout = Duration::from_millis(400);
    config.traces.otlp = Some(otlp);
    TelemetryBuilder::new(config)
        .with_writer("null", std::io::sink())
        .build_dispatch()
        .unwrap()
}

fn spans(dispatch: &tracing::Dispatch, from: u64, n: u64) -> Duration {
    let start = Instant::now();
    tracing::dispatcher::with_default(dispatch, || {
        for seq in from..from + n {
            let _s = tracing::info_span!("route_order", seq).entered();
        }
    });
    start.elapsed()
}

/// Distinct span ids the receiver got, and whether any arrived twice.
fn received(receiver: &FakeOtlpReceiver) -> (usize, bool) {
    let spans = receiver.spans();
    let ids: HashSet<Vec<u8>> = spans.iter().map(|s| s.span_id.clone()).collect();
    (ids.len(), ids.len() != spans.len())
}

#[test]
fn scenario_4_and_6_otlp_refused_black_holed_then_back_counts_every_span_once() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    for grpc in [false, true] {
        let receiver = if grpc {
            FakeOtlpReceiver::start_grpc().unwrap()
        } else {
            FakeOtlpReceiver::start().unwrap()
        };
        let proxy = FaultProxy::start(&receiver.url()).unwrap();
        // A small span queue: the outage must overflow it, and the overflow is counted.
        let (dispatch, guard) = span_service(proxy.url(), grpc, 256);

        // Scenario 4: refused connections at a high span rate.
        proxy.set(Fault::Refuse);
        let took = spans(&dispatch, 0, 5_000);
        assert!(
            took < Duration::from_secs(5),
            "grpc={grpc}: emitting took {took:?}"
        );
        std::thread::sleep(Duration::from_millis(800));
        let stats = guard.span_stats().unwrap();
        assert!(stats.accounted_for(), "grpc={grpc}: {stats:?}");
        let lost = |s: &stockbot_telemetry::PipelineStats| {
            s.dropped_total()
                + s.sink("otlp")
                    .map_or(0, |k| k.dropped.values().sum::<u64>())
        };
        assert!(
            lost(&stats) > 0,
            "grpc={grpc}: the bounded queue and buffer overflowed and counted it: {stats:?}"
        );
        assert!(stats.queued <= 256, "grpc={grpc}: {stats:?}");
        // Every SDK thread is up by now (some start with their first work).
        let threads = sdk_threads();

        // Scenario 6: black-holed connections time out; nothing blocks, no thread piles up.
        proxy.set(Fault::BlackHole);
        let took = spans(&dispatch, 5_000, 200);
        assert!(
            took < Duration::from_secs(2),
            "grpc={grpc}: emitting took {took:?}"
        );
        std::thread::sleep(Duration::from_millis(1200));
        assert!(
            sdk_threads() <= threads,
            "grpc={grpc}: no thread per attempt"
        );

        // Recovery: export resumes; what was kept arrives once, the rest is counted.
        proxy.set(Fault::Pass);
        spans(&dispatch, 5_200, 100);
        // The shipper retries on its backoff (up to 5 s after a long outage).
        let delivered = || {
            guard
                .span_stats()
                .and_then(|s| s.sink("otlp").map(|k| k.written))
                .unwrap_or_default()
        };
        assert!(
            eventually(Duration::from_secs(20), || delivered() >= 100),
            "grpc={grpc}: export resumed: {:?}",
            guard.span_stats()
        );
        assert!(guard.flush(Duration::from_secs(30)), "grpc={grpc}");
        let report = guard.shutdown(Duration::from_secs(10));
        let stats = report.spans.clone().unwrap();
        assert!(
            stats.accounted_for() && report.completed,
            "grpc={grpc}: {report:?}"
        );
        let written = stats.sink("otlp").map_or(0, |s| s.written);
        assert!(
            eventually(Duration::from_secs(5), || received(&receiver).0 as u64
                >= written),
            "grpc={grpc}"
        );
        let (distinct, duplicated) = received(&receiver);
        assert!(!duplicated, "grpc={grpc}: a span arrived twice");
        assert_eq!(distinct as u64, written, "grpc={grpc}: {report:?}");
        assert_eq!(stats.emitted, 5_300, "grpc={grpc}");
        assert_eq!(
            written + lost(&stats),
            5_300,
            "grpc={grpc}: every span written or counted as dropped: {report:?}"
        );
        assert!(
            written >= 100,
            "grpc={grpc}: the spans after recovery arrived: {report:?}"
        );
    }
}
