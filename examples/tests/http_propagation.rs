//! W3C trace context across a real HTTP call: a client service injects `traceparent`,
//! `tracestate` and `baggage` into a reqwest request (`http::HeaderMap` is a carrier), a server
//! service (tiny_http, headers read into a plain list carrier) extracts them — one trace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stockbot_telemetry::analysis::{self, FinishedSpan, SpanKind};
use stockbot_telemetry::propagation::Baggage;
use stockbot_telemetry::{TelemetryBuilder, TelemetryGuard};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn service(name: &str) -> (tracing::Dispatch, TelemetryGuard, Buffer) {
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = name.into();
    let spans = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(config)
        .with_writer("null", std::io::sink())
        .with_span_writer("mem", spans.clone())
        .build_dispatch()
        .unwrap();
    (dispatch, guard, spans)
}

fn finished(guard: &TelemetryGuard, spans: &Buffer) -> Vec<FinishedSpan> {
    assert!(guard.flush(Duration::from_secs(10)));
    let text = String::from_utf8(spans.0.lock().unwrap().clone()).unwrap();
    analysis::read_json_lines(&text).0
}

#[test]
fn one_trace_across_a_real_http_call() {
    // The server: every request handled inside a span continuing the caller's trace.
    let (server_dispatch, server_guard, server_spans) = service("order-router");
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let seen_baggage = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&seen_baggage);
    let handler = std::thread::spawn(move || {
        let request = server.recv().unwrap();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect();
        tracing::dispatcher::with_default(&server_dispatch, || {
            let span = tracing::info_span!("handle_order", otel.kind = "server");
            let (baggage, problems) = stockbot_telemetry::extract_into(&span, &headers)
                .unwrap()
                .unwrap();
            assert!(problems.is_empty());
            *seen.lock().unwrap() = baggage.get("desk").map(str::to_owned);
            let _e = span.enter();
            tracing::info!(cl_ord_id = "C-42", "order received");
        });
        request
            .respond(tiny_http::Response::from_string("ok"))
            .unwrap();
    });

    // The client: a reqwest call inside a client span.
    let (client_dispatch, client_guard, client_spans) = service("strategy");
    tracing::dispatcher::with_default(&client_dispatch, || {
        let span = tracing::info_span!(
            "submit_order",
            otel.kind = "client",
            peer.service = "order-router"
        );
        let _e = span.enter();
        let mut headers = reqwest::header::HeaderMap::new();
        let mut baggage = Baggage::default();
        baggage.set("desk", "fx-7").unwrap();
        stockbot_telemetry::inject_current_with(&baggage, &mut headers);
        assert!(headers.contains_key("traceparent"));
        let answer = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{port}/orders"))
            .headers(headers)
            .body("C-42")
            .send()
            .unwrap();
        assert!(answer.status().is_success());
    });
    handler.join().unwrap();

    let client = finished(&client_guard, &client_spans);
    let server = finished(&server_guard, &server_spans);
    let call = client.iter().find(|s| s.kind == SpanKind::Client).unwrap();
    let handled = server.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(
        handled.trace_id, call.trace_id,
        "one trace across the HTTP call"
    );
    assert_eq!(handled.parent_span_id, Some(call.span_id));
    assert_eq!(seen_baggage.lock().unwrap().as_deref(), Some("fx-7"));
    let mut all = client.clone();
    all.extend(server.clone());
    let edges = analysis::dependency_graph(&all);
    assert!(
        edges
            .iter()
            .any(|e| e.caller == "strategy" && e.callee == "order-router")
    );
}
