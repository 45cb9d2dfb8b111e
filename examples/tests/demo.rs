//! The demo platform end to end: `stockbot-demo` runs its five services for a few seconds while
//! a real Prometheus scrapes them; then every log line validates against the schema, every
//! service's exposition passes `promtool check metrics`, every order's spans form one trace
//! across the services, and the printed report's counts agree with what Prometheus scraped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use stockbot_telemetry::analysis::{self, FinishedSpan, SpanKind};
use stockbot_telemetry_testing::LogLine;
use stockbot_telemetry_testing::prometheus::{PrometheusServer, promtool_check_metrics};

const SERVICES: [&str; 5] = [
    "market-data",
    "strategy",
    "risk",
    "order-router",
    "exchange-sim",
];

fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    files.sort();
    files
}

/// The value of a one-series instant query result.
fn scalar(result: &Value) -> f64 {
    result[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {result}"))
}

#[test]
fn the_demo_platform_end_to_end_with_a_real_prometheus() {
    let dir = std::env::temp_dir().join(format!("stockbot-demo-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut demo = Command::new(env!("CARGO_BIN_EXE_stockbot-demo"))
        .args([
            "--duration",
            "8s",
            "--linger",
            "4s",
            "--rate",
            "40",
            "--run-dir",
        ])
        .arg(&dir)
        // Quiet stdout (the JSON logs are checked in the files); no inherited backends.
        .env("STOCKBOT_LOG_STDOUT", "false")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("STOCKBOT_ELASTICSEARCH_URL")
        .env_remove("STOCKBOT_CONFIG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // The services write their scrape targets (a file_sd file) once they are up.
    let targets_file = dir.join("prometheus-targets.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let targets: Vec<String> = loop {
        if let Ok(text) = std::fs::read_to_string(&targets_file) {
            let groups: Value = serde_json::from_str(&text).unwrap();
            break groups
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["targets"][0].as_str().unwrap().to_owned())
                .collect();
        }
        assert!(Instant::now() < deadline, "the demo did not start");
        assert!(demo.try_wait().unwrap().is_none(), "the demo exited early");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(targets.len(), 5, "{targets:?}");
    let prometheus = PrometheusServer::start(&targets, Duration::from_secs(1), &[])
        .unwrap_or_else(|e| panic!("{e}"));

    let output = demo.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    for part in [
        "orders submitted",
        "latency per stage",
        "service dependency graph",
        "SDK",
    ] {
        assert!(
            printed.contains(part),
            "{part} missing from the report:\n{printed}"
        );
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let submitted = report["orders_submitted"].as_u64().unwrap();
    assert!(submitted >= 20, "{report}");

    // The report's counts are what Prometheus scraped (the services lingered after the ticks
    // stopped, so the last scrapes hold the final counts). The services are gone now and their
    // series stale: `last_over_time` reads the last scraped value.
    for (promql, field) in [
        (
            "sum(last_over_time(stockbot_orders_submitted_total{service=\"order-router\"}[1m]))",
            "/orders_submitted",
        ),
        (
            "sum(last_over_time(stockbot_orders_rejected_total{service=\"order-router\"}[1m]))",
            "/venue_rejects",
        ),
        (
            "sum(last_over_time(stockbot_fills_total{fill_type=\"full\"}[1m]))",
            "/fills/full",
        ),
        (
            "sum(last_over_time(stockbot_fills_total{fill_type=\"partial\"}[1m]))",
            "/fills/partial",
        ),
        (
            "sum(last_over_time(stockbot_trade_calls_total{operation=\"place_order\"}[1m]))",
            "/order_signals",
        ),
    ] {
        let expected = report.pointer(field).and_then(Value::as_u64).unwrap() as f64;
        let result = prometheus.query(promql).unwrap();
        if expected == 0.0 && result.as_array().is_some_and(Vec::is_empty) {
            continue;
        }
        assert_eq!(scalar(&result), expected, "{promql} vs report {field}");
    }
    // The SLO ties: the router's calls carry slo="order_submission" and its own budget view.
    let tied = prometheus
        .query("sum(last_over_time(stockbot_trade_calls_total{service=\"order-router\",slo=\"order_submission\"}[1m]))")
        .unwrap();
    assert_eq!(scalar(&tied), submitted as f64);
    let budget = prometheus
        .query("last_over_time(stockbot_slo_error_budget_remaining_ratio{service=\"order-router\",slo=\"order_submission\"}[1m])")
        .unwrap();
    assert!(scalar(&budget) <= 1.0);

    // Every exposition passes promtool.
    for service in SERVICES {
        let text =
            std::fs::read_to_string(dir.join("metrics").join(format!("{service}.prom"))).unwrap();
        promtool_check_metrics(&text).unwrap_or_else(|e| panic!("{service}: {e}"));
    }

    // Every log line validates against the schema.
    let logs = dir.join("logs");
    let mut lines = 0;
    for service in SERVICES {
        let files = files_with_prefix(&logs, &format!("{service}."));
        assert!(!files.is_empty(), "no log file of {service}");
        for file in files {
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                let parsed = LogLine::parse(line).unwrap_or_else(|| panic!("not JSON: {line}"));
                let problems = stockbot_telemetry_testing::schema_problems(&parsed);
                assert!(
                    problems.is_empty(),
                    "{}: {problems:?}\n{line}",
                    file.display()
                );
                lines += 1;
            }
        }
    }
    assert!(lines > 50, "{lines} log lines");

    // Every order's spans form one trace across the services.
    let mut spans: Vec<FinishedSpan> = Vec::new();
    for service in SERVICES {
        for file in files_with_prefix(&logs, &format!("{service}-spans.")) {
            let (read, bad) = analysis::read_json_lines(&std::fs::read_to_string(file).unwrap());
            assert_eq!(bad, 0);
            spans.extend(read);
        }
    }
    let mut by_trace: BTreeMap<u128, Vec<&FinishedSpan>> = BTreeMap::new();
    for s in &spans {
        by_trace.entry(s.trace_id).or_default().push(s);
    }
    let routed: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.service == "order-router" && s.name == "submit_order")
        .filter_map(|s| s.attribute("order.cl_ord_id"))
        .collect();
    assert_eq!(
        routed.len() as u64,
        submitted,
        "one submit_order span per submitted order"
    );
    for cl_ord_id in &routed {
        let order_spans = analysis::order_spans(&spans, cl_ord_id);
        let traces: BTreeSet<u128> = order_spans.iter().map(|s| s.trace_id).collect();
        assert_eq!(traces.len(), 1, "{cl_ord_id} spans {traces:?}");
        let trace = &by_trace[traces.iter().next().unwrap()];
        let services: BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(services.len(), 5, "{cl_ord_id}: {services:?}");
        // One root (the tick), every other span's parent in the same trace.
        let ids: BTreeSet<u64> = trace.iter().map(|s| s.span_id).collect();
        let roots: Vec<_> = trace
            .iter()
            .filter(|s| s.parent_span_id.is_none())
            .collect();
        assert_eq!(roots.len(), 1, "{cl_ord_id}");
        assert_eq!(
            (roots[0].service.as_str(), roots[0].kind),
            ("market-data", SpanKind::Client)
        );
        assert!(
            trace
                .iter()
                .all(|s| s.parent_span_id.is_none_or(|p| ids.contains(&p)))
        );
    }
    let edges = analysis::dependency_graph(&spans);
    for (caller, callee) in [
        ("market-data", "strategy"),
        ("strategy", "risk"),
        ("strategy", "order-router"),
        ("order-router", "exchange-sim"),
    ] {
        assert!(
            edges
                .iter()
                .any(|e| e.caller == caller && e.callee == callee),
            "{caller} -> {callee}: {edges:?}"
        );
    }
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same binary ships to real backends when they are configured: OTLP traces to a
/// Collector (here the testing crate's protocol-faithful fake) and logs to Elasticsearch (the
/// fake `_bulk` endpoint), from every service.
#[test]
fn the_demo_ships_over_otlp_and_to_elasticsearch_when_configured() {
    let otlp = stockbot_telemetry_testing::otlp::FakeOtlpReceiver::start().unwrap();
    let es = stockbot_telemetry_testing::elasticsearch::FakeElasticsearch::start().unwrap();
    let dir = std::env::temp_dir().join(format!("stockbot-demo-ship-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(env!("CARGO_BIN_EXE_stockbot-demo"))
        .args(["--duration", "3s", "--rate", "30", "--run-dir"])
        .arg(&dir)
        .env("STOCKBOT_LOG_STDOUT", "false")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url())
        .env("STOCKBOT_ELASTICSEARCH_URL", es.url())
        .env_remove("STOCKBOT_CONFIG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let traced: Vec<String> = otlp
        .traces()
        .iter()
        .flat_map(|t| &t.resource_spans)
        .filter_map(|r| r.resource.as_ref())
        .flat_map(|r| &r.attributes)
        .filter(|kv| kv.key == "service.name")
        .map(|kv| format!("{:?}", kv.value))
        .collect();
    let logged: BTreeSet<String> = es
        .documents()
        .iter()
        .filter_map(|d| d.source["service.name"].as_str().map(str::to_owned))
        .collect();
    for service in SERVICES {
        assert!(
            traced.iter().any(|t| t.contains(&format!("\"{service}\""))),
            "no spans of {service} over OTLP"
        );
        assert!(
            logged.contains(service),
            "no logs of {service} in Elasticsearch: {logged:?}"
        );
    }
    assert!(!otlp.spans().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
