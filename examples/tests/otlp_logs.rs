//! Log records exported as OTLP logs (feature `otlp`, and gRPC with `otlp-grpc`) to the fake
//! receiver, which decodes the real protobuf: fields, severity, trace context, resource,
//! redaction, retries and the accounting identity.

use std::time::Duration;

use stockbot_telemetry::{OtlpLogsConfig, OtlpProtocol, TelemetryBuilder};
use stockbot_telemetry_testing::otlp::proto::tonic::common::v1::any_value::Value;
use stockbot_telemetry_testing::otlp::{FakeOtlpReceiver, Reply};

fn text(
    v: &Option<stockbot_telemetry_testing::otlp::proto::tonic::common::v1::AnyValue>,
) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn log_records_arrive_as_otlp_logs_over_http_and_grpc() {
    for grpc in [false, true] {
        let receiver = if grpc {
            FakeOtlpReceiver::start_grpc().unwrap()
        } else {
            FakeOtlpReceiver::start().unwrap()
        };
        receiver.script([Reply::status(503)]);
        let mut config = stockbot_telemetry_testing::test_config();
        config.service.name = "order-router".into();
        config.log.schema = stockbot_telemetry::SchemaMode::Lenient;
        config.pipeline.flush_interval = Duration::from_millis(50);
        let mut otlp = OtlpLogsConfig::new(if grpc {
            receiver.url()
        } else {
            format!("{}/v1/logs", receiver.url())
        });
        if grpc {
            otlp.protocol = OtlpProtocol::Grpc;
        }
        otlp.timeout = Duration::from_secs(2);
        config.log.otlp = Some(otlp);
        let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("route_order", cl_ord_id = "C-7");
            let _e = span.enter();
            for i in 0..20u64 {
                tracing::warn!(
                    attempt = i,
                    api_key = "sk_live_0123456789abcdefABCD",
                    "venue slow"
                );
            }
        });
        let report = guard.shutdown(Duration::from_secs(20));
        let stats = report.stats;
        assert_eq!(
            stats.sink("otlp").unwrap().written,
            stats.emitted,
            "{stats:?}"
        );
        assert!(stats.accounted_for());
        let records = receiver.log_records();
        let ours: Vec<_> = records
            .iter()
            .filter(|r| text(&r.body) == "venue slow")
            .collect();
        assert_eq!(
            ours.len(),
            20,
            "grpc={grpc}: every record once, after one retry"
        );
        let r = ours[0];
        assert_eq!(r.severity_text, "WARN");
        assert_eq!(r.trace_id.len(), 16);
        assert_eq!(r.span_id.len(), 8);
        assert!(r.time_unix_nano > 1_700_000_000_000_000_000);
        let attr = |k: &str| {
            r.attributes
                .iter()
                .find(|a| a.key == k)
                .map(|a| text(&a.value))
        };
        assert_eq!(attr("order.cl_ord_id").as_deref(), Some("C-7"));
        assert_eq!(attr("api_key").as_deref(), Some("[REDACTED]"));
        let resource = receiver.logs()[0].resource_logs[0]
            .resource
            .clone()
            .unwrap();
        assert!(
            resource
                .attributes
                .iter()
                .any(|kv| kv.key == "service.name" && text(&kv.value) == "order-router")
        );
        assert_eq!(receiver.received()[0].answered, 503);
        for req in receiver.received() {
            let body = String::from_utf8_lossy(&req.body);
            assert!(!body.contains("sk_live_0123456789abcdefABCD"));
        }
    }
}
