//! `#[instrument_trade(slo = "…")]` ties functions to declared SLOs: their series carry the
//! `slo` label the generated rules select on, the process keeps its own view of each error
//! budget (gauges and `TelemetryGuard::slo_status`), and an SLO name that the configuration does
//! not declare is an init-time error naming the function and where it is.

use std::time::Duration;

use stockbot_telemetry::alerting::{AlertSpec, Slo};
use stockbot_telemetry::{Config, ErrorKind, TelemetryBuilder, instrument_trade};

#[derive(Debug)]
struct Rejected;

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rejected")
    }
}

#[instrument_trade(slo = "order_submission")]
fn submit_order(venue: &str, accept: bool) -> Result<u64, Rejected> {
    let _ = venue;
    if accept { Ok(1) } else { Err(Rejected) }
}

#[instrument_trade(slo = "cancel_latency")]
fn cancel_order() {
    std::thread::sleep(Duration::from_millis(3));
}

fn config() -> Config {
    let mut c = Config::for_service("order-router");
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.metrics.listen = String::new();
    c.metrics.system.enabled = false;
    c.traces.file.enabled = false;
    c
}

fn spec() -> AlertSpec {
    let mut spec = AlertSpec::new("order-router", "execution");
    spec.slos.push(Slo::calls("order_submission", 0.99));
    spec.slos.push(Slo::call_latency(
        "cancel_latency",
        0.9,
        Duration::from_millis(2),
    ));
    spec
}

#[test]
fn an_undeclared_slo_name_is_an_init_error_naming_the_function() {
    let mut c = config();
    c.slos.push(Slo::calls("order_submission", 0.99));
    let err = TelemetryBuilder::new(c)
        .with_writer("null", std::io::sink())
        .build()
        .expect_err("cancel_order's SLO is not declared");
    let text = err.to_string();
    assert!(
        matches!(err.kind(), ErrorKind::UnknownSlo { slo, .. } if slo == "cancel_latency"),
        "{text}"
    );
    assert!(
        text.contains("slo::cancel_order")
            && text.contains("examples/tests/slo.rs:")
            && text.contains("\"cancel_latency\"")
            && text.contains("declared: order_submission"),
        "{text}"
    );
    // `init` (the service's process) checks even with no SLO declared at all; nothing is
    // installed on error.
    let err = stockbot_telemetry::init(config()).expect_err("no SLO declared");
    assert!(
        err.to_string()
            .contains("the configuration declares no SLO"),
        "{err}"
    );
    // Nothing was installed: with the SLOs declared, `init` succeeds.
    let mut c = config();
    spec().apply_to(&mut c).unwrap();
    let logs = std::env::temp_dir().join(format!("slo-init-{}", std::process::id()));
    c.log.file.enabled = true;
    c.log.file.directory = logs.clone();
    let guard = stockbot_telemetry::init(c).expect("both SLOs declared");
    assert!(guard.shutdown(Duration::from_secs(5)).completed);
    let _ = std::fs::remove_dir_all(logs);
}

#[test]
fn tied_calls_feed_the_slo_series_and_the_process_view_of_the_budget() {
    let mut c = config();
    spec().apply_to(&mut c).unwrap();
    // The latency threshold is a bucket boundary of the calls' histogram.
    assert!(c.metrics.buckets["stockbot_trade_duration_seconds"].contains(&0.002));
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("null", std::io::sink())
        .build_dispatch()
        .unwrap();
    let recorder = guard.metrics_recorder().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        metrics::with_local_recorder(&recorder, || {
            for i in 0..100 {
                let _ = submit_order("XNAS", i % 20 != 0);
            }
            for _ in 0..3 {
                cancel_order();
            }
        })
    });
    let text = guard.render_metrics().unwrap();
    assert!(
        text.contains("stockbot_trade_calls_total{service=\"order-router\",environment=\"dev\",deployment_mode=\"live\",operation=\"submit_order\",slo=\"order_submission\",venue=\"XNAS\",outcome=\"error\"} 5"),
        "{text}"
    );
    assert!(text.contains("slo=\"order_submission\",venue=\"XNAS\",error_kind=\"error\"} 5"));
    assert!(text.contains("le=\"0.002\""), "{text}");

    let status = guard.slo_status();
    let submission = status
        .iter()
        .find(|s| s.name == "order_submission")
        .unwrap();
    assert_eq!((submission.events, submission.bad_events), (100, 5));
    // 5 % bad against a 1 % budget: four budgets overspent.
    assert!((submission.budget_remaining - (1.0 - 0.05 / 0.01)).abs() < 1e-6);
    let burn = submission.burn_rate(Duration::from_secs(300)).unwrap();
    assert!((burn - 5.0).abs() < 1e-6, "{burn}");
    let cancel = status.iter().find(|s| s.name == "cancel_latency").unwrap();
    // Every cancel sleeps 3 ms: all slower than the 2 ms threshold.
    assert_eq!((cancel.events, cancel.bad_events), (3, 3));
    assert!(cancel.observed < Duration::from_secs(60));

    let text = guard.render_metrics().unwrap();
    assert!(
        text.contains("stockbot_slo_error_budget_remaining_ratio{service=\"order-router\",environment=\"dev\",deployment_mode=\"live\",slo=\"order_submission\"} -3.9"),
        "{text}"
    );
    assert!(text.contains(
        "stockbot_slo_burn_rate_ratio{service=\"order-router\",environment=\"dev\",deployment_mode=\"live\",slo=\"cancel_latency\",window=\"1h\"} 10"
    ));
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(report.completed, "{report}");
}

#[test]
fn slos_in_a_configuration_file_are_checked_and_name_the_item() {
    let path = std::env::temp_dir().join(format!("slo-config-{}.toml", std::process::id()));
    let parse = |text: &str| -> Result<Config, String> {
        std::fs::write(&path, text).unwrap();
        let c = Config::from_file(&path).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    };
    let c = parse(
        r#"
        [service]
        name = "order-router"

        [[slo]]
        name = "order_submission"
        objective = 0.999
        calls = {}

        [[slo]]
        name = "cancel_latency"
        objective = 0.99
        window = "7d"
        calls = { latency = "2ms" }
        "#,
    )
    .unwrap();
    assert_eq!(c.slos.len(), 2);
    assert_eq!(c.slos[1].window, Duration::from_secs(7 * 86_400));
    for (text, says) in [
        (
            "[[slo]]\nname = \"a\"\nobjective = 1.5\ncalls = {}",
            "slo[0].objective",
        ),
        (
            "[[slo]]\nname = \"a\"\nobjective = 0.9\ncalls = {}\n[[slo]]\nname = \"a\"\nobjective = 0.9\ncalls = {}",
            "slo[1].name = \"a\": is declared twice",
        ),
        (
            "[[slo]]\nname = \"a\"\nobjective = 0.9\nwindow = \"0s\"\ncalls = {}",
            "slo[0].window",
        ),
        (
            "[[slo]]\nname = \"a\"\nobjective = 0.9",
            "exactly one of `ratio`, `latency` and `calls`",
        ),
    ] {
        let err = parse(text).expect_err(text);
        assert!(err.contains(says), "{text}\n→ {err}");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn own_targets_scope_the_ties_a_service_must_declare() {
    // A binary hosting several services: this service's code is elsewhere, so the test's
    // functions (module `slo`) are another service's ties.
    let mut c = config();
    c.slos.push(Slo::calls("order_submission", 0.99));
    c.service.own_targets = vec!["order_router".into()];
    let (_layer, guard) = TelemetryBuilder::new(c)
        .with_writer("null", std::io::sink())
        .build()
        .expect("ties outside the service's own modules are not its own");
    drop(guard);
    // Its own module again: cancel_order's SLO must be declared.
    let mut c = config();
    c.slos.push(Slo::calls("order_submission", 0.99));
    c.service.own_targets = vec!["slo".into()];
    let err = TelemetryBuilder::new(c)
        .with_writer("null", std::io::sink())
        .build()
        .expect_err("cancel_order is in module slo");
    assert!(err.to_string().contains("cancel_latency"), "{err}");
}
