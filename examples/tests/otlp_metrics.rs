//! OTLP metrics push to a Collector (feature `otlp`), against the fake receiver that
//! decodes the real protobuf: what arrives, credentials in headers, retry rules.

use std::time::{Duration, Instant};

use stockbot_telemetry::{
    OtlpCompression, OtlpMetricsConfig, OtlpProtocol, Secret, TelemetryBuilder, TelemetryGuard,
};
use stockbot_telemetry_testing::otlp::proto::tonic::common::v1::any_value::Value as AnyValue;
use stockbot_telemetry_testing::otlp::proto::tonic::metrics::v1::{
    metric::Data, number_data_point::Value,
};
use stockbot_telemetry_testing::otlp::{FakeOtlpReceiver, Reply};

fn service(receiver: &FakeOtlpReceiver, interval: Duration) -> TelemetryGuard {
    service_over(receiver, interval, OtlpProtocol::HttpProtobuf)
}

fn service_over(
    receiver: &FakeOtlpReceiver,
    interval: Duration,
    protocol: OtlpProtocol,
) -> TelemetryGuard {
    let mut config = stockbot_telemetry_testing::test_config();
    config.metrics.otlp = Some(OtlpMetricsConfig {
        endpoint: match protocol {
            OtlpProtocol::HttpProtobuf => format!("{}/v1/metrics", receiver.url()),
            OtlpProtocol::Grpc => receiver.url(),
        },
        protocol,
        compression: OtlpCompression::Gzip,
        interval,
        timeout: Duration::from_secs(2),
        headers: [("x-api-key".to_owned(), Secret::new("otlp-secret-key-123"))].into(),
    });
    assert!(!format!("{config:?}").contains("otlp-secret-key-123"));
    let (_, guard) = TelemetryBuilder::new(config)
        .with_writer("mem", std::io::sink())
        .build()
        .unwrap();
    guard
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_arrive_over_grpc_compressed_with_credentials() {
    let receiver = FakeOtlpReceiver::start_grpc().unwrap();
    receiver.script([Reply::status(503)]);
    let guard = service_over(&receiver, Duration::from_millis(100), OtlpProtocol::Grpc);
    let recorder = guard.metrics_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        stockbot_telemetry::trading::order_submitted("XNAS", "mm");
    });
    wait_until("an export with our metrics arrived over gRPC", || {
        receiver.metrics().iter().any(|r| {
            r.resource_metrics[0].scope_metrics[0]
                .metrics
                .iter()
                .any(|m| m.name == "stockbot_orders_submitted_total")
        })
    });
    assert!(guard.shutdown(Duration::from_secs(10)).completed);
    let got = receiver.received();
    assert_eq!(got[0].answered, 503, "UNAVAILABLE first, then retried");
    assert!(got.iter().all(|r| r.gzip
        && r.path == stockbot_telemetry_testing::otlp::GRPC_METRICS
        && r.header("x-api-key") == Some("otlp-secret-key-123")));
}

#[test]
fn metrics_arrive_as_otlp_protobuf_with_the_service_resource() {
    let receiver = FakeOtlpReceiver::start().unwrap();
    let guard = service(&receiver, Duration::from_millis(100));
    let recorder = guard.metrics_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        stockbot_telemetry::trading::order_submitted("XNAS", "mm");
        stockbot_telemetry::trading::order_acked("XNAS", "mm", Duration::from_micros(300));
        stockbot_telemetry::trading::pnl("mm", "USD", -12.5);
    });
    wait_until("an export with our metrics arrived", || {
        receiver.metrics().iter().any(|r| {
            r.resource_metrics[0].scope_metrics[0]
                .metrics
                .iter()
                .any(|m| m.name == "stockbot_orders_submitted_total")
        })
    });
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.completed);

    let request = receiver.metrics().pop().unwrap();
    let rm = &request.resource_metrics[0];
    let resource: Vec<_> = rm
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                _ => String::new(),
            };
            (kv.key.clone(), v)
        })
        .collect();
    assert!(
        resource.contains(&("service.name".into(), "test-service".into())),
        "{resource:?}"
    );
    assert!(
        resource.contains(&("deployment.mode".into(), "live".into())),
        "{resource:?}"
    );
    let metrics = &rm.scope_metrics[0].metrics;
    let submitted = metrics
        .iter()
        .find(|m| m.name == "stockbot_orders_submitted_total")
        .unwrap();
    match submitted.data.as_ref().unwrap() {
        Data::Sum(sum) => {
            assert!(sum.is_monotonic);
            assert_eq!(sum.data_points[0].value, Some(Value::AsInt(1)));
            assert_eq!(sum.data_points[0].attributes.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let latency = metrics
        .iter()
        .find(|m| m.name == "stockbot_order_ack_latency_seconds")
        .unwrap();
    match latency.data.as_ref().unwrap() {
        Data::Histogram(h) => {
            let p = &h.data_points[0];
            assert_eq!(p.count, 1);
            assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
            assert_eq!(p.bucket_counts.iter().sum::<u64>(), 1);
        }
        other => panic!("{other:?}"),
    }
    let pnl = metrics.iter().find(|m| m.name == "stockbot_pnl").unwrap();
    assert!(
        matches!(pnl.data.as_ref().unwrap(), Data::Gauge(g) if g.data_points[0].value == Some(Value::AsDouble(-12.5)))
    );
    let request = receiver.received().pop().unwrap();
    assert_eq!(request.header("x-api-key"), Some("otlp-secret-key-123"));
    assert_eq!(
        request.header("content-type"),
        Some("application/x-protobuf")
    );
}

#[test]
fn only_retryable_statuses_are_retried_and_retry_after_is_honoured() {
    let receiver = FakeOtlpReceiver::start().unwrap();
    // 400 is refused (not retried: the next attempt waits the full interval); 503 with
    // Retry-After: 1 is retried after a second, not before.
    receiver.script([
        Reply::status(400),
        Reply::status(503).retry_after(1),
        Reply::ok(),
    ]);
    let interval = Duration::from_millis(300);
    let guard = service(&receiver, interval);
    wait_until("three pushes were counted", || {
        guard
            .render_metrics()
            .unwrap()
            .contains(r#"target="otlp",result="ok"} 1"#)
    });
    let rendered = guard.render_metrics().unwrap();
    for outcome in [
        r#"target="otlp",result="rejected"} 1"#,
        r#"target="otlp",result="error"} 1"#,
    ] {
        assert!(rendered.contains(outcome), "{outcome} in\n{rendered}");
    }
    drop(guard);
    let got = receiver.received();
    assert_eq!(got[0].answered, 400);
    assert_eq!(got[1].answered, 503);
    assert_eq!(got[2].answered, 200);
    // No retry before Retry-After (a lower bound: a slow machine only makes it later).
    let waited = got[2].at.duration_since(got[1].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
}
