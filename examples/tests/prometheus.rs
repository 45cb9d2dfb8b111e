//! A real Prometheus (Debian's `prometheus` 2.42) scrapes the quickstart service; `promtool`
//! lints what we expose. These tests fail — never skip — when the binaries are missing
//! (`scripts/install-test-deps.sh` installs them).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stockbot_telemetry_testing::prometheus::{
    PrometheusServer, free_port, get, promtool_check_metrics,
};

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_quickstart(port: u16, dir: &std::path::Path) -> Service {
    let child = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args(["--duration", "120"])
        .env("STOCKBOT_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .env("STOCKBOT_LOG_STDOUT", "false")
        .env("STOCKBOT_LOG_DIR", dir)
        .env("STOCKBOT_PSEUDONYM_KEY", "integration-test-key-0123")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("quickstart binary");
    Service(child)
}

fn value_of(result: &Value) -> f64 {
    result[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn prometheus_scrapes_the_quickstart_service() {
    let dir = std::env::temp_dir().join(format!("stockbot-prom-it-{}", std::process::id()));
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _service = start_quickstart(port, &dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    let exposition = loop {
        match get(port, "/metrics").map(|(_, body)| body) {
            Ok(body) if body.contains("stockbot_orders_submitted_total") => break body,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("quickstart never served metrics: {other:?}"),
        }
    };
    promtool_check_metrics(&exposition).unwrap_or_else(|e| panic!("{e}\n{exposition}"));

    let prom =
        // Exemplar storage on: Prometheus then asks for OpenMetrics, so this also proves our
        // OpenMetrics output parses (a bad exposition would leave `up` at 0).
        PrometheusServer::start(
            std::slice::from_ref(&addr),
            Duration::from_secs(1),
            &["--enable-feature=exemplar-storage"],
        )
        .unwrap();
    let up = prom
        .wait_for(r#"up{job="stockbot"}"#, Duration::from_secs(30), |r| {
            value_of(r) == 1.0
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value_of(&up), 1.0);
    let submitted = prom
        .wait_for(
            r#"sum(stockbot_orders_submitted_total{service="quickstart",deployment_mode="paper",environment="dev",venue="XNAS",strategy="mean-revert"})"#,
            Duration::from_secs(30),
            |r| value_of(r) > 0.0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(value_of(&submitted) > 0.0);
    // Histograms, system metrics, self-metrics and target_info arrived with their labels.
    for query in [
        r#"histogram_quantile(0.99, sum by (le) (rate(stockbot_order_ack_latency_seconds_bucket{service="quickstart"}[1m])))"#,
        r#"stockbot_process_resident_memory_bytes{service="quickstart"}"#,
        r#"stockbot_telemetry_emitted_total{service="quickstart",signal="logs"}"#,
        r#"target_info{service_name="quickstart",deployment_mode="paper"}"#,
    ] {
        let r = prom
            .wait_for(query, Duration::from_secs(30), |r| {
                r.as_array().is_some_and(|a| !a.is_empty())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !value_of(&r).is_nan() || query.starts_with("histogram_quantile"),
            "{query}: {r}"
        );
    }
    // Latency histograms carry exemplars that point at traces.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(30);
    let exemplars = loop {
        let e = prom
            .query_exemplars(
                r#"stockbot_order_ack_latency_seconds_bucket{service="quickstart"}"#,
                now - 600.0,
                now + 600.0,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        if e.to_string().contains("trace_id") || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let first = &exemplars[0]["exemplars"][0];
    let trace_id = first["labels"]["trace_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no exemplar: {exemplars}"));
    assert_eq!(trace_id.len(), 32, "{exemplars}");
    // Latency histograms carry exemplars that point at traces.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(30);
    let exemplars = loop {
        let e = prom
            .query_exemplars(
                r#"stockbot_order_ack_latency_seconds_bucket{service="quickstart"}"#,
                now - 600.0,
                now + 600.0,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        if e.to_string().contains("trace_id") || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let trace_id = exemplars[0]["exemplars"][0]["labels"]["trace_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no exemplar: {exemplars}"));
    assert_eq!(trace_id.len(), 32, "{exemplars}");
    // No id ever became a label.
    let ids = prom
        .query(r#"count({__name__=~"stockbot_.+", cl_ord_id!=""})"#)
        .unwrap();
    assert_eq!(ids, Value::Array(vec![]), "{ids}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn promtool_accepts_the_exposition_after_ten_thousand_label_values() {
    let mut config = stockbot_telemetry_testing::test_config();
    config.metrics.max_series_per_metric = 100;
    let (_, guard) = stockbot_telemetry::TelemetryBuilder::new(config)
        .with_writer("mem", std::io::sink())
        .build()
        .unwrap();
    let recorder = guard.metrics_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..10_000 {
            metrics::counter!("stockbot_quotes_total", "venue" => format!("V{i}")).increment(1);
            metrics::histogram!("stockbot_quote_age_seconds", "venue" => format!("V{i}"), "order_id" => format!("O{i}")).record(0.002);
            metrics::gauge!("stockbot_book_depth", "venue" => format!("V{i}"), "note" => "a \"quoted\"\nvalue\\").set(f64::NAN);
        }
    });
    let exposition = guard.render_metrics().unwrap();
    promtool_check_metrics(&exposition).unwrap_or_else(|e| panic!("{e}"));
    let series = exposition
        .lines()
        .filter(|l| l.starts_with("stockbot_quotes_total{"))
        .count();
    assert_eq!(series, 101, "cap + one overflow series");
    assert!(!exposition.contains("order_id=\""));
}

#[test]
fn prometheus_scrapes_an_endpoint_that_requires_basic_auth() {
    let mut c = stockbot_telemetry::Config::for_service("auth-check");
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.traces.file.enabled = false;
    c.metrics.system.enabled = false;
    c.metrics.listen = "127.0.0.1:0".into();
    c.metrics.auth = Some(stockbot_telemetry::ScrapeAuth::Basic {
        username: "prometheus".into(),
        password: stockbot_telemetry::Secret::new("s3cret-Passw0rd"),
    });
    let (_, guard) = stockbot_telemetry::TelemetryBuilder::new(c)
        .with_writer("null", std::io::sink())
        .build()
        .unwrap();
    let recorder = guard.metrics_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("stockbot_auth_check_events_total").increment(3);
    });
    let addr = guard.metrics_addr().unwrap().to_string();
    // Without credentials: 401, nothing exposed.
    let (status, body) = get(guard.metrics_addr().unwrap().port(), "/metrics").unwrap();
    assert_eq!(status, 401, "{body}");
    let prom = PrometheusServer::start_with_job_options(
        std::slice::from_ref(&addr),
        Duration::from_secs(1),
        "basic_auth:\n  username: prometheus\n  password: s3cret-Passw0rd",
        &[],
    )
    .unwrap();
    let events = prom
        .wait_for(
            r#"stockbot_auth_check_events_total{service="auth-check"}"#,
            Duration::from_secs(30),
            |r| value_of(r) == 3.0,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", prom.log()));
    assert_eq!(value_of(&events), 3.0);
    let up = prom
        .wait_for(r#"up{job="stockbot"}"#, Duration::from_secs(30), |r| {
            value_of(r) == 1.0
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value_of(&up), 1.0);
    // The one refused request above is counted; Prometheus' scrapes were not refused.
    let refused = prom
        .wait_for(
            r#"stockbot_telemetry_scrape_refused_total{service="auth-check"}"#,
            Duration::from_secs(30),
            |r| r.as_array().is_some_and(|a| !a.is_empty()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value_of(&refused), 1.0);
    let _ = guard.shutdown(Duration::from_secs(5));
}
