//! OTLP span export over HTTP/protobuf and gRPC, plain and gzip (features `otlp`,
//! `otlp-grpc`), against the fake receiver, which decodes the real protobuf: content, retries of
//! retryable answers without duplicates, refusals counted, an unreachable endpoint never
//! blocking.

use std::time::{Duration, Instant};

use stockbot_telemetry::{
    OtlpCompression, OtlpProtocol, OtlpTracesConfig, Secret, TelemetryBuilder, TelemetryGuard,
};
use stockbot_telemetry_testing::otlp::proto::tonic::trace::v1::{
    span::SpanKind, status::StatusCode,
};
use stockbot_telemetry_testing::otlp::{FakeOtlpReceiver, Reply};
use tracing::info_span;

/// The transports under test.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    Http,
    HttpGzip,
    Grpc,
    GrpcGzip,
}

impl Wire {
    const ALL: [Wire; 4] = [Wire::Http, Wire::HttpGzip, Wire::Grpc, Wire::GrpcGzip];

    fn grpc(self) -> bool {
        matches!(self, Wire::Grpc | Wire::GrpcGzip)
    }

    fn gzip(self) -> bool {
        matches!(self, Wire::HttpGzip | Wire::GrpcGzip)
    }

    fn receiver(self) -> FakeOtlpReceiver {
        if self.grpc() {
            FakeOtlpReceiver::start_grpc().unwrap()
        } else {
            FakeOtlpReceiver::start().unwrap()
        }
    }

    /// The endpoint as configured: the traces URL for HTTP, the server's root for gRPC.
    fn endpoint(self, base: &str) -> String {
        if self.grpc() {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        }
    }

    fn service(self, base: &str) -> (tracing::Dispatch, TelemetryGuard) {
        build(self.config(base))
    }

    fn config(self, base: &str) -> stockbot_telemetry::Config {
        config_with(self.endpoint(base), |o| {
            if self.grpc() {
                o.protocol = OtlpProtocol::Grpc;
            }
            if self.gzip() {
                o.compression = OtlpCompression::Gzip;
            }
        })
    }
}

fn service_with(
    endpoint: String,
    adjust: impl FnOnce(&mut OtlpTracesConfig),
) -> (tracing::Dispatch, TelemetryGuard) {
    build(config_with(endpoint, adjust))
}

fn build(config: stockbot_telemetry::Config) -> (tracing::Dispatch, TelemetryGuard) {
    TelemetryBuilder::new(config)
        .with_writer("mem", std::io::sink())
        .build_dispatch()
        .unwrap()
}

fn config_with(
    endpoint: String,
    adjust: impl FnOnce(&mut OtlpTracesConfig),
) -> stockbot_telemetry::Config {
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    let mut otlp = OtlpTracesConfig::new(endpoint);
    otlp.timeout = Duration::from_secs(2);
    adjust(&mut otlp);
    otlp.headers.insert(
        "authorization".into(),
        Secret::new("Bearer collector-token-123"),
    );
    config.traces.otlp = Some(otlp);
    config.traces.flush_interval = Duration::from_millis(50);
    config
}

fn orders(dispatch: &tracing::Dispatch, n: usize) {
    tracing::dispatcher::with_default(dispatch, || {
        for i in 0..n {
            let root = info_span!(
                "route_order",
                otel.kind = "server",
                cl_ord_id = format!("C-{i}").as_str()
            );
            let _r = root.enter();
            let _c = info_span!(
                "send_to_venue",
                otel.kind = "client",
                peer.service = "exchange"
            )
            .entered();
            if i % 2 == 0 {
                tracing::error!("venue timeout");
            }
        }
    });
}

#[test]
fn spans_arrive_as_otlp_protobuf_over_every_transport() {
    for wire in Wire::ALL {
        spans_arrive(wire);
    }
}

fn spans_arrive(wire: Wire) {
    let receiver = wire.receiver();
    let (dispatch, guard) = wire.service(&receiver.url());
    orders(&dispatch, 3);
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.completed, "{wire:?}: {report}");
    let spans = receiver.spans();
    assert_eq!(spans.len(), 6, "{wire:?}");
    let request = receiver.received().into_iter().next().unwrap();
    let expected_path = if wire.grpc() {
        stockbot_telemetry_testing::otlp::GRPC_TRACES
    } else {
        "/v1/traces"
    };
    assert_eq!(request.path, expected_path);
    assert_eq!(request.gzip, wire.gzip(), "{wire:?}");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer collector-token-123")
    );
    let resource = &receiver.traces()[0].resource_spans[0]
        .resource
        .clone()
        .unwrap();
    assert!(
        resource
            .attributes
            .iter()
            .any(|kv| kv.key == "service.name")
    );
    let root = spans.iter().find(|s| s.name == "route_order").unwrap();
    let child = spans
        .iter()
        .find(|s| s.name == "send_to_venue" && s.trace_id == root.trace_id)
        .unwrap();
    assert_eq!(root.trace_id.len(), 16);
    assert_eq!(root.span_id.len(), 8);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(child.parent_span_id, root.span_id);
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(child.kind, SpanKind::Client as i32);
    let failed = spans
        .iter()
        .find(|s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.code == StatusCode::Error as i32)
        })
        .unwrap();
    assert_eq!(failed.status.as_ref().unwrap().message, "venue timeout");
    assert_eq!(failed.events.len(), 1, "the error log became a span event");
    assert_eq!(failed.events[0].name, "venue timeout");
    assert!(failed.events[0].time_unix_nano >= failed.start_time_unix_nano);
    assert!(root.attributes.iter().any(|kv| kv.key == "order.cl_ord_id"));
    let stats = report.spans.unwrap();
    assert_eq!(stats.sink("otlp").unwrap().written, 6);
    assert!(stats.accounted_for());
}

#[test]
fn retryable_answers_are_retried_without_duplicates_and_refusals_are_counted() {
    // Over gRPC the script's statuses become UNAVAILABLE, RESOURCE_EXHAUSTED with a RetryInfo
    // of 1 s, OK and INVALID_ARGUMENT.
    for wire in [Wire::Http, Wire::Grpc] {
        retries(wire);
    }
}

fn retries(wire: Wire) {
    let receiver = wire.receiver();
    receiver.script([
        Reply::status(503),
        Reply::status(429).retry_after(1),
        Reply::ok(),
        Reply::status(400),
    ]);
    // Batches only on the explicit flush and shutdown, so the first two orders' four spans
    // are one batch however slow the machine.
    let mut config = wire.config(&receiver.url());
    config.traces.flush_interval = Duration::from_secs(30);
    let (dispatch, guard) = build(config);
    orders(&dispatch, 2);
    assert!(guard.flush(Duration::from_secs(20)));
    orders(&dispatch, 1);
    let report = guard.shutdown(Duration::from_secs(20));
    let answered: Vec<u16> = receiver.received().iter().map(|r| r.answered).collect();
    assert_eq!(
        answered,
        [503, 429, 200, 400],
        "one batch retried until accepted, the next refused once"
    );
    let got = receiver.received();
    assert!(
        got[2].at.duration_since(got[1].at) >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert_eq!(receiver.spans().len(), 4, "the retried batch arrived once");
    let stats = report.spans.unwrap();
    let otlp = stats.sink("otlp").unwrap();
    assert_eq!(otlp.written, 4);
    assert_eq!(otlp.dropped["sink_error"], 2);
    assert!(stats.accounted_for(), "{stats:?}");
}

#[test]
fn grpc_resource_exhausted_without_retry_info_is_not_retried() {
    let receiver = Wire::Grpc.receiver();
    receiver.script([Reply::grpc(8)]);
    let (dispatch, guard) = Wire::Grpc.service(&receiver.url());
    orders(&dispatch, 1);
    let report = guard.shutdown(Duration::from_secs(20));
    assert_eq!(receiver.received().len(), 1, "refused once, never retried");
    let stats = report.spans.unwrap();
    assert_eq!(stats.sink("otlp").unwrap().dropped["sink_error"], 2);
    assert!(stats.accounted_for(), "{stats:?}");
}

#[test]
fn an_unreachable_endpoint_never_blocks_and_losses_are_counted() {
    for wire in [Wire::Http, Wire::Grpc] {
        unreachable(wire);
    }
}

fn unreachable(wire: Wire) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (dispatch, guard) = wire.service(&format!("http://127.0.0.1:{port}"));
    let start = Instant::now();
    orders(&dispatch, 50);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "callers never wait for the exporter"
    );
    let report = guard.shutdown(Duration::from_secs(30));
    let stats = report.spans.unwrap();
    let otlp = stats.sink("otlp").unwrap();
    assert_eq!(otlp.written, 0);
    assert_eq!(otlp.dropped_total(), 100, "{stats:?}");
}

#[test]
fn garbage_or_huge_answers_do_not_break_the_exporter() {
    let receiver = FakeOtlpReceiver::start().unwrap();
    receiver.script([
        Reply::ok().body(b"\xff\x00garbage that is not protobuf".to_vec()),
        Reply::ok().body(vec![0x0a; 10 * 1024 * 1024]),
        Reply::status(500).body(vec![b'x'; 1024 * 1024]),
    ]);
    // A generous timeout: a loaded machine (CI runs tests in parallel) may take seconds to
    // move the 10 MiB answer, and a timeout would count the batch as failed.
    let (dispatch, guard) = service_with(format!("{}/v1/traces", receiver.url()), |o| {
        o.timeout = Duration::from_secs(15)
    });
    for _ in 0..3 {
        orders(&dispatch, 1);
        assert!(guard.flush(Duration::from_secs(20)));
    }
    let report = guard.shutdown(Duration::from_secs(20));
    let stats = report.spans.unwrap();
    let otlp = stats.sink("otlp").unwrap();
    assert_eq!(
        otlp.written, 4,
        "2xx answers count as accepted whatever their body: {stats:?}"
    );
    assert_eq!(
        otlp.dropped["sink_error"], 2,
        "500 is not retried and is counted"
    );
    assert!(stats.accounted_for());
}

/// Scenario 5, end to end: every answer of the OTLP status matrix, over HTTP and gRPC. Each
/// case exports one batch (two spans) against a receiver scripted to give that answer first and
/// then accept; the requests the receiver saw show what was retried.
#[test]
fn scenario_5_the_otlp_status_matrix_end_to_end() {
    // (wire, first answer, retried?)
    let mut cases: Vec<(Wire, Reply, bool)> = Vec::new();
    for status in [400, 401, 403, 404, 413, 500] {
        cases.push((Wire::Http, Reply::status(status), false));
    }
    for status in [429, 502, 503, 504] {
        cases.push((Wire::Http, Reply::status(status), true));
    }
    // INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED, INTERNAL.
    for code in [3, 7, 16, 12, 13] {
        cases.push((Wire::Grpc, Reply::grpc(code), false));
    }
    // CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS.
    for code in [1, 4, 10, 11, 14, 15] {
        cases.push((Wire::Grpc, Reply::grpc(code), true));
    }
    for (wire, first, retried) in cases {
        let case = format!("{wire:?} {first:?}");
        let receiver = wire.receiver();
        receiver.script([first, Reply::ok()]);
        let (dispatch, guard) = wire.service(&receiver.url());
        orders(&dispatch, 1);
        let report = guard.shutdown(Duration::from_secs(20));
        let requests = receiver.received().len();
        let stats = report.spans.unwrap();
        let otlp = stats.sink("otlp").unwrap();
        assert!(stats.accounted_for(), "{case}: {stats:?}");
        if retried {
            assert_eq!(requests, 2, "{case}: retried once, then accepted");
            assert_eq!(receiver.spans().len(), 2, "{case}: arrived once");
            assert_eq!((otlp.written, otlp.dropped_total()), (2, 0), "{case}");
        } else {
            assert_eq!(requests, 1, "{case}: never retried");
            assert_eq!(otlp.written, 0, "{case}");
            assert_eq!(otlp.dropped["sink_error"], 2, "{case}: counted");
        }
    }
}

/// Scenario 5: a partial success is not retried; the refused spans are counted as `rejected`.
#[test]
fn a_partial_success_is_counted_and_never_retried() {
    for wire in [Wire::Http, Wire::Grpc] {
        let receiver = wire.receiver();
        receiver.script([Reply::partial_success(1, "span too large")]);
        let (dispatch, guard) = wire.service(&receiver.url());
        orders(&dispatch, 1);
        let report = guard.shutdown(Duration::from_secs(20));
        assert_eq!(receiver.received().len(), 1, "{wire:?}: not retried");
        let stats = report.spans.unwrap();
        let otlp = stats.sink("otlp").unwrap();
        assert_eq!(otlp.dropped["rejected"], 1, "{wire:?}: {stats:?}");
        assert_eq!(otlp.written, 1, "{wire:?}: {stats:?}");
        assert!(stats.accounted_for(), "{wire:?}: {stats:?}");
    }
}
