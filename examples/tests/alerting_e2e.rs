//! End to end with the real servers: Debian's `prometheus` scrapes a service that breaches a
//! generated multi-condition alert, evaluates the generated rules and sends the alert to
//! Debian's `prometheus-alertmanager` running the generated configuration, whose webhook
//! receiver — run by this test — gets the grouped notification with the expected labels, and
//! then the resolved one once the service recovers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use stockbot_telemetry::alerting::{Alert, AlertSpec, Notifications, Receiver, TeamRoute};
use stockbot_telemetry_testing::alertmanager::AlertmanagerServer;
use stockbot_telemetry_testing::prometheus::PrometheusServer;

/// A webhook receiver: every POSTed JSON body, in arrival order.
fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alerts", server.server_addr().to_ip().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                sink.lock().unwrap().push(v);
            }
            let _ = request.respond(tiny_http::Response::empty(200));
        }
    });
    (url, got)
}

fn wait_for(
    got: &Arc<Mutex<Vec<Value>>>,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = got.lock().unwrap().iter().find(|v| pred(v)) {
            return v.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {what} notification within {timeout:?}; got {:?}",
            got.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_breached_alert_is_notified_grouped_and_then_resolved() {
    // The service: order metrics on a loopback scrape endpoint.
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.metrics.listen = "127.0.0.1:0".into();
    let (_, guard) = stockbot_telemetry::TelemetryBuilder::new(config)
        .with_writer("mem", std::io::sink())
        .build()
        .unwrap();
    let target = guard.metrics_addr().unwrap().to_string();
    let recorder = guard.metrics_recorder().unwrap();
    let rejecting = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let load = std::thread::spawn({
        let (rejecting, stop) = (Arc::clone(&rejecting), Arc::clone(&stop));
        move || {
            metrics::with_local_recorder(&recorder, || {
                while !stop.load(Ordering::Relaxed) {
                    stockbot_telemetry::trading::order_submitted("XNAS", "momentum");
                    if rejecting.load(Ordering::Relaxed) {
                        stockbot_telemetry::trading::order_rejected(
                            "XNAS",
                            "momentum",
                            stockbot_telemetry::trading::RejectReason::RiskLimit,
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
    });

    // The rules: more than 5 % rejected while more than 10 orders a minute, over 10 s.
    let mut spec = AlertSpec::new("order-router", "execution");
    let mut alert = Alert::high_reject_ratio(0.05, 10.0);
    alert.window = Duration::from_secs(10);
    alert.for_ = Duration::from_secs(2);
    spec.alerts.push(alert);
    let dir = std::env::temp_dir().join(format!("stockbot-alert-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yml");
    std::fs::write(&rules, spec.prometheus_rules().unwrap()).unwrap();

    // The routing: the team's pages to the test's webhook; fast grouping for the test.
    let (url, notifications) = webhook();
    let mut oncall = Receiver::new("execution-oncall");
    oncall.webhook = Some(url);
    let mut routing = Notifications::new(
        vec![Receiver::new("default"), oncall],
        vec![TeamRoute::new(
            "execution",
            "execution-oncall",
            "execution-oncall",
        )],
        "default",
    );
    routing.group_wait = Duration::from_secs(1);
    routing.group_interval = Duration::from_secs(1);
    routing.check_spec(&spec).unwrap();
    let am = AlertmanagerServer::start(&routing.alertmanager_config().unwrap())
        .unwrap_or_else(|e| panic!("{e}"));

    let prometheus = PrometheusServer::start_with_config(
        &[target],
        Duration::from_secs(1),
        &format!(
            "rule_files:\n  - {:?}\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{:?}]\n",
            rules.display().to_string(),
            am.address()
        ),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let firing = wait_for(&notifications, "firing", Duration::from_secs(90), |v| {
        v["status"] == "firing" && v["commonLabels"]["alertname"] == "HighRejectRatio"
    });
    assert_eq!(firing["receiver"], "execution-oncall");
    let labels = &firing["commonLabels"];
    for (k, v) in [
        ("team", "execution"),
        ("service", "order-router"),
        ("severity", "page"),
        ("deployment_mode", "live"),
    ] {
        assert_eq!(labels[k], v, "{k} in {firing}");
    }
    // Grouped by the configured labels: one group for the alert and the service.
    assert_eq!(firing["groupLabels"]["alertname"], "HighRejectRatio");
    assert_eq!(firing["groupLabels"]["service"], "order-router");
    assert_eq!(firing["alerts"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        firing["commonAnnotations"]["summary"],
        "More than 5 % of orders rejected while more than 10 orders a minute are sent"
    );

    // The service recovers: the resolved notification follows.
    rejecting.store(false, Ordering::Relaxed);
    let resolved = wait_for(&notifications, "resolved", Duration::from_secs(90), |v| {
        v["status"] == "resolved" && v["commonLabels"]["alertname"] == "HighRejectRatio"
    });
    assert_eq!(resolved["receiver"], "execution-oncall");
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    drop(prometheus);
    drop(am);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_dashboard_query_is_valid_promql_for_the_real_prometheus() {
    let mut spec = AlertSpec::new("order-router", "execution");
    spec.slos.push(stockbot_telemetry::alerting::Slo::ratio(
        "order_acceptance",
        0.999,
        stockbot_telemetry::alerting::Query::metric("stockbot_orders_rejected_total"),
        stockbot_telemetry::alerting::Query::metric("stockbot_orders_submitted_total"),
    ));
    let dashboard: Value = serde_json::from_str(&spec.grafana_dashboard().unwrap()).unwrap();
    assert_eq!(dashboard["uid"], "stockbot-order-router");
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 15, "{exprs:?}");
    for title in [
        "Error ratio",
        "Orders per second",
        "Dropped records per second",
    ] {
        assert!(panels.iter().any(|p| p["title"] == title), "{title}");
    }
    assert!(
        panels
            .iter()
            .any(|p| p["title"].as_str().unwrap().contains("order_acceptance"))
    );
    // Grafana substitutes its variables; the real Prometheus parses and runs the result.
    let prometheus =
        PrometheusServer::start(&[], Duration::from_secs(1), &[]).unwrap_or_else(|e| panic!("{e}"));
    // The check can fail: Prometheus refuses what does not parse.
    assert!(prometheus.query("sum by (service) (rate(x[5m]").is_err());
    for expr in &exprs {
        assert!(
            expr.contains("deployment_mode=\"$deployment_mode\""),
            "{expr}"
        );
        let promql = expr
            .replace("$deployment_mode", "live")
            .replace("$__rate_interval", "1m");
        prometheus
            .query(&promql)
            .unwrap_or_else(|e| panic!("{promql}: {e}"));
    }
}
