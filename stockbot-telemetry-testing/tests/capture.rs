//! The capture is scoped, sees spawned work, asserts fluently and dumps on failure.

use std::time::Duration;

use stockbot_telemetry_testing::Capture;
use tracing::{Instrument, info, info_span, warn};

#[test]
fn parallel_tests_do_not_see_each_other() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let capture = Capture::start();
                for _ in 0..50 {
                    info!(strategy = format!("s{i}"), "tick");
                }
                let logs = capture.logs();
                logs.message("tick").assert_count(50);
                logs.field("strategy", format!("s{i}")).assert_count(50);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn tasks_and_threads_spawned_through_the_sdk_helpers_are_captured() {
    let capture = Capture::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let span = info_span!("route_order", cl_ord_id = "C-7");
        async {
            stockbot_telemetry::spawn(async { info!("in a spawned task") })
                .await
                .unwrap();
        }
        .instrument(span)
        .await;
    });
    stockbot_telemetry::spawn_thread(|| warn!("in a spawned thread"))
        .join()
        .unwrap();
    let logs = capture.logs();
    let task = logs.message("in a spawned task").assert_one();
    assert_eq!(
        task.str("order.cl_ord_id"),
        Some("C-7"),
        "the span followed the task"
    );
    logs.level("warn")
        .message("in a spawned thread")
        .assert_one();
}

#[test]
fn block_on_catches_plain_tokio_spawn() {
    let capture = Capture::start();
    capture.block_on(async {
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    info!(seq_num = i, "plain spawn");
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    capture.logs().message("plain spawn").assert_count(8);
}

#[test]
fn fluent_queries_and_schema_validity() {
    let capture = Capture::start();
    info!(
        cl_ord_id = "C-1",
        symbol = "AAPL",
        quantity = 100,
        "order accepted"
    );
    warn!(
        password = "hunter2",
        reject_reason = "price_band",
        "order rejected"
    );
    let logs = capture.logs();
    logs.message_contains("order").assert_count(2);
    let accepted = logs
        .message("order accepted")
        .field("cl_ord_id", "C-1")
        .field("order.quantity", 100)
        .assert_one();
    assert_eq!(accepted.level(), "INFO");
    logs.level("WARN")
        .field("password", "[REDACTED]")
        .has_field("reject.reason")
        .assert_one();
    logs.lacks_field("account.id").assert_count(2);
    logs.message("nothing like this").assert_none();
    capture.assert_schema_valid();
    let stats = capture.stats();
    assert!(stats.accounted_for());
}

#[test]
#[should_panic(expected = "expected exactly one matching record, found 0")]
fn a_failed_assertion_panics_with_the_query() {
    let capture = Capture::start();
    info!("something else");
    capture.logs().message("missing").assert_one();
}

#[test]
fn a_failed_assertion_dumps_everything_captured() {
    let capture = Capture::start();
    info!(cl_ord_id = "C-42", "the record to find in the dump");
    let logs = capture.logs();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        logs.message("missing").assert_one();
    }))
    .unwrap_err();
    let text = err.downcast_ref::<String>().unwrap();
    assert!(text.contains("query: message = \"missing\""), "{text}");
    assert!(text.contains("captured 1 record(s)"), "{text}");
    assert!(
        text.contains("the record to find in the dump")
            && text.contains("order.cl_ord_id=\"C-42\""),
        "{text}"
    );
}

#[test]
fn schema_violations_fail_the_schema_assertion() {
    let capture = Capture::start();
    info!(cl_ordid = "C-1", "typo in a field name");
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        capture.assert_schema_valid()
    }))
    .unwrap_err();
    let text = err.downcast_ref::<String>().unwrap();
    assert!(text.contains("did you mean `cl_ord_id`?"), "{text}");
}

#[test]
fn metrics_are_captured_per_test_with_fluent_assertions() {
    use stockbot_telemetry::trading;
    let capture = Capture::start();
    let before = capture.metrics();
    trading::order_submitted("XNAS", "mm");
    trading::order_submitted("XNAS", "mm");
    trading::order_submitted("BATS", "mm");
    trading::order_acked("XNAS", "mm", Duration::from_millis(3));
    metrics::counter!("stockbot_orders_routed_total", "cl_ord_id" => "C-1", "venue" => "XNAS")
        .increment(1);
    let after = capture.metrics();
    after.assert_increased(
        &before,
        "stockbot_orders_submitted_total",
        &[("venue", "XNAS")],
        2.0,
    );
    after.assert_value("stockbot_orders_submitted_total", &[], 3.0);
    after.assert_observed_at_least(
        "stockbot_order_ack_latency_seconds",
        &[("venue", "XNAS")],
        0.0025,
    );
    after.assert_no_label("stockbot_orders_routed_total", "cl_ord_id");
    after.assert_series_at_most("stockbot_orders_submitted_total", 2);
    let err = std::panic::catch_unwind(|| {
        after.assert_observed_at_least("stockbot_order_ack_latency_seconds", &[], 0.5)
    })
    .unwrap_err();
    let text = err.downcast_ref::<String>().unwrap();
    assert!(
        text.contains("observed no value ≥ 0.5")
            && text.contains("stockbot_order_ack_latency_seconds_bucket"),
        "{text}"
    );
}

#[test]
fn parallel_captures_keep_their_metrics_apart() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let capture = Capture::start();
                for _ in 0..=i {
                    metrics::counter!("stockbot_ticks_total").increment(1);
                }
                capture
                    .metrics()
                    .assert_value("stockbot_ticks_total", &[], f64::from(i + 1));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn spans_are_captured_with_fluent_assertions() {
    use stockbot_telemetry_testing::SpanKind;
    let capture = Capture::start();
    {
        let root = info_span!(
            "route_order",
            otel.kind = "server",
            cl_ord_id = "C-1",
            venue = "XNAS"
        );
        let _r = root.enter();
        let _c = info_span!("risk_check", cl_ord_id = "C-1").entered();
        tracing::error!("limit breached");
    }
    let spans = capture.spans();
    let root = spans
        .named("route_order")
        .kind(SpanKind::Server)
        .attribute("order.cl_ord_id", "C-1")
        .assert_one();
    spans
        .child_of(&root)
        .named("risk_check")
        .error(true)
        .assert_one();
    spans.roots().assert_count(1);
    spans.assert_every_has("order.cl_ord_id");
    spans
        .with_event_attribute("limit breached", "level", "ERROR")
        .status_message("limit breached")
        .in_trace(root.trace_id)
        .assert_one();
    let followed = {
        let cause = info_span!("market_data_tick");
        let effect = info_span!("requote");
        effect.follows_from(&cause);
        drop((cause, effect));
        capture.spans()
    };
    let tick = followed.named("market_data_tick").assert_one();
    followed.named("requote").linked_to(&tick).assert_one();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        spans.named("missing").assert_one()
    }))
    .unwrap_err();
    let text = err.downcast_ref::<String>().unwrap();
    assert!(
        text.contains("query: name = \"missing\"") && text.contains("route_order"),
        "{text}"
    );
}
