//! The process-wide `init` under failure (one test in this binary: it sets process globals).
//!
//! RELIABILITY.md scenario 14: a refused configuration leaves nothing behind — no thread, no
//! global — so a corrected `init` in the same process succeeds. Scenario 9: with every
//! target at `trace` (the HTTP and gRPC stacks' debug records included) and every backend
//! down, none of the SDK's own transport records comes back into the pipeline (no feedback
//! loop), while the application's own HTTP client's records are kept; the SDK's error reports
//! about the failing sinks stay rate-limited.

use std::time::{Duration, Instant};

use stockbot_telemetry::{Config, OtlpProtocol, OtlpTracesConfig};
use stockbot_telemetry_testing::prometheus::free_port;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// The names of this process's threads (for the failure message).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn dead_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn config(log_dir: &std::path::Path) -> Config {
    let mut c = Config::for_service("transport-check");
    c.log.stdout = false;
    c.log.filter = "trace".into();
    c.log.file.enabled = true;
    c.log.file.directory = log_dir.to_owned();
    c.metrics.listen = String::new();
    c.metrics.system.enabled = false;
    c.traces.file.enabled = false;
    c.traces.sampler = "always_on".into();
    c.traces.flush_interval = Duration::from_millis(50);
    let mut otlp = OtlpTracesConfig::new(dead_url());
    otlp.protocol = OtlpProtocol::Grpc;
    otlp.timeout = Duration::from_millis(500);
    c.traces.otlp = Some(otlp);
    let mut logs = OtlpTracesConfig::new(format!("{}/v1/logs", dead_url()));
    logs.timeout = Duration::from_millis(500);
    c.log.otlp = Some(logs);
    let mut es = stockbot_telemetry::ElasticsearchConfig::new(dead_url());
    es.timeout = Duration::from_millis(500);
    c.log.elasticsearch = Some(es);
    c.log.redaction.pseudonym_key = Some(stockbot_telemetry::Secret::new("global-init-key-0123"));
    c
}

#[test]
fn a_refused_init_leaves_nothing_behind_and_transport_records_never_feed_back() {
    let dir = std::env::temp_dir().join(format!("stockbot-global-init-{}", free_port()));
    let _ = std::fs::remove_dir_all(&dir);

    // Scenario 14, refused by validation: nothing was started.
    let before = threads();
    let mut bad = config(&dir);
    bad.traces.otlp.as_mut().unwrap().endpoint = "ftp://collector:4317".into();
    let err = stockbot_telemetry::init(bad).expect_err("an ftp endpoint is refused");
    assert!(err.to_string().contains("traces.otlp.endpoint"), "{err}");
    assert_eq!(threads(), before);
    // Refused late: the scrape port is taken, found after the log and span workers, the
    // shippers and their threads were started — which are stopped again.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut bad = config(&dir);
    bad.metrics.listen = taken.local_addr().unwrap().to_string();
    let err = stockbot_telemetry::init(bad).expect_err("the port is taken");
    assert!(err.to_string().contains("metrics.listen"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while threads() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        threads(),
        before,
        "no thread left behind by the refused init: {:?}",
        thread_names()
    );
    tracing::info!("no global subscriber yet: this record goes nowhere");

    // The corrected configuration installs: nothing global was set by the refused call.
    let guard = stockbot_telemetry::init(config(&dir)).expect("nothing half-installed");

    // Scenario 9: load while every backend is down.
    let started = Instant::now();
    for i in 0..200u32 {
        let span = tracing::info_span!("route_order", seq = i);
        let _e = span.enter();
        tracing::info!(target: "transport_check", seq = i, "order routed");
    }
    // The application's own HTTP client, on its own threads, logging through `log`: these
    // records are the application's and are kept.
    let app = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(app.get(dead_url()).send().is_err());
    // Let the exporters fail a few rounds (timeouts of 500 ms, retries with backoff).
    std::thread::sleep(Duration::from_secs(3));
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(report.stats.accounted_for(), "{report:?}");

    let text = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect::<String>();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let field = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let ours = records
        .iter()
        .filter(|r| field(r, "log.logger") == "transport_check")
        .count();
    assert_eq!(ours, 200, "every application record reached the file");
    // The application's client records are there: the filter and the `log` bridge let
    // transport records through — from the application's threads.
    assert!(
        records
            .iter()
            .any(|r| field(r, "log.logger").starts_with("reqwest")),
        "the application's reqwest records are kept"
    );
    // None from the SDK's own threads, whatever their target.
    let sdk_thread = |r: &serde_json::Value| {
        let t = field(r, "process.thread.name");
        t.starts_with("stockbot-telemetry") || t.starts_with("stockbot-ship")
    };
    let leaked: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| sdk_thread(r) && !field(r, "log.logger").starts_with("stockbot_telemetry"))
        .collect();
    assert!(leaked.is_empty(), "transport records fed back: {leaked:#?}");
    // Transport stacks the SDK uses, from any thread that is not the application's client.
    let transport = ["ureq", "tonic", "h2", "tower", "rustls"];
    let foreign: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| {
            let target = field(r, "log.logger");
            transport.iter().any(|t| target.starts_with(t))
        })
        .collect();
    assert!(foreign.is_empty(), "SDK transport records: {foreign:#?}");
    // The SDK's reports about the failing sinks are rate-limited (one per reason per 10 s).
    let reports = records
        .iter()
        .filter(|r| {
            field(r, "log.logger") == "stockbot_telemetry" && field(r, "log.level") == "ERROR"
        })
        .count();
    assert!(reports <= 12, "{reports} error reports in a few seconds");
    let _ = std::fs::remove_dir_all(&dir);
}
