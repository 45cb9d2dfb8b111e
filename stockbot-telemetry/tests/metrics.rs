//! Metrics end to end: recorder rules, exposition format, scrape endpoint, trading catalogue.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::config;
use stockbot_telemetry::{ErrorKind, TelemetryBuilder, TelemetryGuard, trading};

fn pipeline(listen: &str, cap: usize) -> TelemetryGuard {
    let mut c = config();
    c.metrics.listen = listen.into();
    c.metrics.max_series_per_metric = cap;
    let (_, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", std::io::sink())
        .build()
        .unwrap();
    guard
}

fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    get_accepting(addr, path, "*/*")
}

fn get_accepting(addr: std::net::SocketAddr, path: &str, accept: &str) -> (String, String) {
    get_with(addr, path, &format!("Accept: {accept}\r\n"))
}

/// `GET path` with extra header lines (each ending in CRLF).
fn get_with(addr: std::net::SocketAddr, path: &str, headers: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// Structural checks promtool does not do: one HELP/TYPE per family, `+Inf` bucket equals
/// `_count`, no `__` labels, no duplicate series. Returns the parsed samples.
fn check_exposition(text: &str) -> HashMap<String, f64> {
    let mut types = HashSet::new();
    let mut helps = HashSet::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(
                types.insert(rest.split(' ').next().unwrap().to_owned()),
                "duplicate TYPE: {line}"
            );
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(
                helps.insert(rest.split(' ').next().unwrap().to_owned()),
                "duplicate HELP: {line}"
            );
        } else if !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(
                !series.contains("{__") && !series.contains(",__"),
                "reserved label: {line}"
            );
            let v = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            assert!(
                samples.insert(series.to_owned(), v).is_none(),
                "duplicate series: {line}"
            );
        }
    }
    for (series, count) in samples.iter().filter(|(s, _)| s.contains("_count")) {
        let inf = series
            .replacen("_count", "_bucket", 1)
            .replacen('}', ",le=\"+Inf\"}", 1);
        if let Some(bucket) = samples.get(&inf) {
            assert_eq!(
                bucket, count,
                "+Inf bucket differs from _count for {series}"
            );
        }
    }
    assert_eq!(types, helps);
    samples
}

#[test]
fn the_scrape_endpoint_serves_text_0_0_4_on_loopback() {
    let guard = pipeline("127.0.0.1:0", 100);
    let addr = guard.metrics_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let recorder = guard.metrics_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        trading::order_submitted("XNAS", "mm");
        trading::order_submitted("XNAS", "mm");
        trading::order_acked("XNAS", "mm", Duration::from_micros(150));
        metrics::gauge!("stockbot_strategy_signal", "strategy" => "mm", "note" => "quote \" backslash \\ newline \n").set(f64::NAN);
    });
    let (head, body) = get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let samples = check_exposition(&body);
    let global = r#"service="test-service",environment="dev",deployment_mode="live""#;
    assert_eq!(
        samples
            [&format!(r#"stockbot_orders_submitted_total{{{global},venue="XNAS",strategy="mm"}}"#)],
        2.0,
        "{body}"
    );
    assert!(body.contains("# HELP stockbot_orders_submitted_total Orders sent to a venue\n"));
    assert!(body.contains(&format!(r#"stockbot_order_ack_latency_seconds_bucket{{{global},venue="XNAS",strategy="mm",le="0.00025"}} 1"#)), "{body}");
    assert!(
        body.contains(r#"note="quote \" backslash \\ newline \n""#),
        "{body}"
    );
    assert!(body.contains("} NaN\n"));
    assert!(
        body.contains("target_info{service_name=\"test-service\""),
        "{body}"
    );
    assert!(body.contains("stockbot_telemetry_emitted_total{"), "{body}");
    let (head, body) = get_accepting(
        addr,
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"));
    let (head, _) = get(addr, "/other");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.completed);
    // The listener closes asynchronously (tiny_http's accept thread); allow it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "endpoint stopped"
    );
}

#[test]
fn a_port_in_use_is_an_init_error_naming_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut c = config();
    c.metrics.listen = addr.to_string();
    let err = TelemetryBuilder::new(c)
        .with_writer("mem", std::io::sink())
        .build()
        .unwrap_err();
    match err.kind() {
        ErrorKind::SinkOpen { field, target, .. } => {
            assert_eq!(field, "metrics.listen");
            assert_eq!(target, &addr.to_string());
        }
        other => panic!("{other:?}"),
    }
    let mut c = config();
    c.metrics.listen = "localhost:99999".into();
    let err = TelemetryBuilder::new(c)
        .with_writer("mem", std::io::sink())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("metrics.listen"), "{err}");
}

#[test]
fn ten_thousand_label_values_stay_within_the_cap() {
    let guard = pipeline("", 50);
    let recorder = guard.metrics_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..10_000 {
            metrics::counter!("stockbot_quotes_total", "venue" => format!("V{i}")).increment(1);
            metrics::counter!("stockbot_orders_total", "cl_ord_id" => format!("C{i}"), "venue" => "XNAS").increment(1);
        }
    });
    let body = guard.render_metrics().unwrap();
    let samples = check_exposition(&body);
    let quotes: Vec<_> = samples
        .keys()
        .filter(|k| k.starts_with("stockbot_quotes_total{"))
        .collect();
    assert_eq!(quotes.len(), 51, "50 series + overflow");
    let overflow = samples
        .iter()
        .find(|(k, _)| {
            k.starts_with("stockbot_quotes_total{") && k.contains("otel_metric_overflow=\"true\"")
        })
        .unwrap();
    assert_eq!(*overflow.1, 9_950.0);
    assert!(body.contains("stockbot_telemetry_metric_overflow_total{service=\"test-service\",environment=\"dev\",deployment_mode=\"live\",metric=\"stockbot_quotes_total\"} 9950"), "{body}");
    // The id label was stripped, the samples kept in one series.
    let orders: Vec<_> = samples
        .iter()
        .filter(|(k, _)| k.starts_with("stockbot_orders_total{"))
        .collect();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(*orders[0].1, 10_000.0);
    assert!(!body.contains("cl_ord_id=\""));
    assert!(body.contains("stockbot_telemetry_metric_labels_refused_total{service=\"test-service\",environment=\"dev\",deployment_mode=\"live\",label=\"cl_ord_id\"} 10000"), "{body}");
}

#[test]
fn rejected_metrics_are_not_exported_and_are_reported() {
    let mut c = config();
    c.metrics.listen = String::new();
    let buf = common::Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    let recorder = guard.metrics_recorder().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..3 {
                metrics::histogram!("stockbot_ack_latency_ms").record(1.0);
                metrics::counter!("stockbot_orders").increment(1);
            }
        });
    });
    let body = guard.render_metrics().unwrap();
    assert!(
        !body.contains("stockbot_ack_latency_ms") && !body.contains("stockbot_orders "),
        "{body}"
    );
    assert!(body.contains(r#"reason="non_base_unit"} 3"#), "{body}");
    assert!(body.contains(r#"reason="counter_suffix"} 3"#), "{body}");
    assert!(guard.flush(Duration::from_secs(10)));
    let errors: Vec<_> = buf
        .lines()
        .into_iter()
        .filter(|m| m["log.logger"] == "stockbot_telemetry::metrics")
        .collect();
    assert_eq!(
        errors.len(),
        2,
        "one error record per metric, not per sample: {errors:?}"
    );
    assert!(
        errors.iter().any(|m| m["message"]
            .as_str()
            .unwrap()
            .contains("use base unit `_seconds`")),
        "{errors:?}"
    );
}

#[test]
fn the_log_pipeline_reports_its_health_as_metrics() {
    let mut c = config();
    c.metrics.listen = String::new();
    c.pipeline.queue_capacity = 10;
    c.pipeline.audit_reserve = 0;
    let gate = common::Gate::default();
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("stuck", gate.clone())
        .build_dispatch()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..100 {
            tracing::info!(target: "metrics", "flood");
        }
    });
    let body = guard.render_metrics().unwrap();
    assert!(body.contains(r#"stockbot_telemetry_dropped_total{service="test-service",environment="dev",deployment_mode="live",signal="logs",sink="stuck",reason="queue_full"}"#), "{body}");
    assert!(body.contains("stockbot_telemetry_queue_depth{"), "{body}");
    assert!(body.contains(r#"stockbot_telemetry_exporter_up{service="test-service",environment="dev",deployment_mode="live",signal="logs",sink="stuck"} 1"#), "{body}");
    gate.open();
}

#[test]
fn the_scrape_endpoint_is_loopback_by_default_and_checks_configured_credentials() {
    // The default address is loopback; exposing it is a deliberate setting.
    let default: std::net::SocketAddr = stockbot_telemetry::Config::default()
        .metrics
        .listen
        .parse()
        .unwrap();
    assert!(default.ip().is_loopback(), "{default}");
    let guard = pipeline("127.0.0.1:0", 100);
    assert!(guard.metrics_addr().unwrap().ip().is_loopback());
    drop(guard);

    for (auth, good, bad) in [
        (
            stockbot_telemetry::ScrapeAuth::Basic {
                username: "prometheus".into(),
                password: stockbot_telemetry::Secret::new("s3cret-Passw0rd"),
            },
            // base64("prometheus:s3cret-Passw0rd")
            "Basic cHJvbWV0aGV1czpzM2NyZXQtUGFzc3cwcmQ=",
            "Basic cHJvbWV0aGV1czpzM2NyZXQ=",
        ),
        (
            stockbot_telemetry::ScrapeAuth::Bearer(stockbot_telemetry::Secret::new(
                "tok.EN-0123456789",
            )),
            "Bearer tok.EN-0123456789",
            "Bearer tok.EN-012345678",
        ),
    ] {
        let mut c = config();
        c.metrics.listen = "127.0.0.1:0".into();
        c.metrics.auth = Some(auth);
        let (_, guard) = TelemetryBuilder::new(c)
            .with_writer("mem", std::io::sink())
            .build()
            .unwrap();
        let addr = guard.metrics_addr().unwrap();
        let (head, body) = get(addr, "/metrics");
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
        assert!(head.contains("WWW-Authenticate: "), "{head}");
        assert!(!body.contains("stockbot_"), "nothing served: {body}");
        let (head, _) = get_with(addr, "/metrics", &format!("Authorization: {bad}\r\n"));
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
        let (head, body) = get_with(addr, "/metrics", &format!("Authorization: {good}\r\n"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let series = check_exposition(&body);
        let refused: Vec<f64> = series
            .iter()
            .filter(|(s, _)| s.starts_with("stockbot_telemetry_scrape_refused_total"))
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(refused, [2.0], "{body}");
        let _ = guard.shutdown(Duration::from_secs(5));
    }
}

#[test]
fn bad_scrape_credentials_are_refused_at_init_without_echoing_them() {
    for (auth, field) in [
        (
            stockbot_telemetry::ScrapeAuth::Basic {
                username: "prom:etheus".into(),
                password: stockbot_telemetry::Secret::new("hunter2-secret"),
            },
            "metrics.auth.basic.username",
        ),
        (
            stockbot_telemetry::ScrapeAuth::Basic {
                username: "prometheus".into(),
                password: stockbot_telemetry::Secret::new(""),
            },
            "metrics.auth.basic.password",
        ),
        (
            stockbot_telemetry::ScrapeAuth::Bearer(stockbot_telemetry::Secret::new(
                "hunter2 secret\r\n",
            )),
            "metrics.auth.bearer",
        ),
    ] {
        let mut c = config();
        c.metrics.listen = "127.0.0.1:0".into();
        c.metrics.auth = Some(auth);
        let err = TelemetryBuilder::new(c)
            .with_writer("mem", std::io::sink())
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(field), "{text}");
        assert!(
            !text.contains("hunter2"),
            "the secret is never echoed: {text}"
        );
        assert!(
            matches!(err.kind(), ErrorKind::InvalidConfig { .. }),
            "{err:?}"
        );
    }
}

#[test]
fn an_endpoint_exposed_beyond_loopback_without_credentials_is_warned_about() {
    let mut c = config();
    // Deliberately not loopback (the warning's case); port 0, closed at the end of the test.
    c.metrics.listen = "0.0.0.0:0".into();
    let logs = common::Buffer::default();
    let (_, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", logs.clone())
        .build()
        .unwrap();
    assert!(guard.flush(Duration::from_secs(5)));
    let text = logs.text();
    assert!(
        text.contains("metrics.listen is not a loopback address and metrics.auth is not set"),
        "{text}"
    );
    let _ = guard.shutdown(Duration::from_secs(5));
}
