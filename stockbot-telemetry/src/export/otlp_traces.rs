//! OTLP/HTTP span export (feature `otlp`): a span sink on the span worker. Each batch becomes
//! one `ExportTraceServiceRequest` POSTed as protobuf to `/v1/traces` of a Collector or Jaeger.
//! Only 429/502/503/504 and connection errors are retried, with the shared backoff policy and
//! `Retry-After` honoured (capped), a bounded number of times; the response body read is
//! capped; a partial success is counted as rejected spans, never retried.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message as _;

use super::otlp_metrics::kv;
use super::push::{Outcome, classify};
use super::retry::{Backoff, RetryPolicy};
use super::sink::{Sink, Written};
use crate::analysis::{FinishedSpan, SpanKind, read_json_lines};
use crate::config::Secret;

const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;
/// Attempts per batch (the first one and retries).
const MAX_ATTEMPTS: u32 = 5;

fn kind(k: SpanKind) -> i32 {
    (match k {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Producer => span::SpanKind::Producer,
        SpanKind::Consumer => span::SpanKind::Consumer,
    }) as i32
}

/// The protobuf request for a batch of finished spans.
pub(crate) fn build_request(
    spans: &[FinishedSpan],
    resource: &[(String, String)],
) -> ExportTraceServiceRequest {
    let spans = spans
        .iter()
        .map(|s| Span {
            trace_id: s.trace_id.to_be_bytes().to_vec(),
            span_id: s.span_id.to_be_bytes().to_vec(),
            trace_state: String::new(),
            parent_span_id: s
                .parent_span_id
                .map(|p| p.to_be_bytes().to_vec())
                .unwrap_or_default(),
            flags: 1,
            name: s.name.clone(),
            kind: kind(s.kind),
            start_time_unix_nano: s.start_unix_nanos,
            end_time_unix_nano: s.end_unix_nanos,
            attributes: s.attributes.iter().map(|(k, v)| kv(k, v)).collect(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Some(Status {
                message: String::new(),
                code: if s.error {
                    status::StatusCode::Error
                } else {
                    status::StatusCode::Unset
                } as i32,
            }),
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "stockbot-telemetry".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Spans to a Collector over OTLP/HTTP.
pub(crate) struct OtlpSpanSink {
    agent: ureq::Agent,
    /// Longest one batch may take, retries included (the worker's other sinks wait meanwhile).
    budget: Duration,
    endpoint: String,
    headers: Vec<(String, Secret)>,
    resource: Vec<(String, String)>,
    backoff: Backoff,
}

impl OtlpSpanSink {
    pub(crate) fn new(
        endpoint: String,
        headers: Vec<(String, Secret)>,
        resource: Vec<(String, String)>,
        timeout: Duration,
    ) -> Self {
        OtlpSpanSink {
            budget: timeout * 2,
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(timeout))
                .http_status_as_error(false)
                .build()
                .into(),
            endpoint,
            headers,
            resource,
            backoff: Backoff::new(RetryPolicy {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
                max_retry_after: Duration::from_secs(30),
                ..RetryPolicy::default()
            }),
        }
    }

    fn send(&self, body: &[u8]) -> (Outcome, u64) {
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/x-protobuf");
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.expose());
        }
        let mut response = request.send(body);
        let mut rejected = 0;
        if let Ok(r) = response.as_mut()
            && r.status().is_success()
        {
            let mut answer = Vec::new();
            let _ = r
                .body_mut()
                .as_reader()
                .take(MAX_RESPONSE_BYTES)
                .read_to_end(&mut answer);
            if let Ok(decoded) = ExportTraceServiceResponse::decode(answer.as_slice())
                && let Some(partial) = decoded.partial_success
            {
                rejected = u64::try_from(partial.rejected_spans).unwrap_or(0);
            }
        }
        (classify(response), rejected)
    }
}

impl Sink for OtlpSpanSink {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<Written> {
        let text = std::str::from_utf8(bytes).map_err(io::Error::other)?;
        let (spans, malformed) = read_json_lines(text);
        let body = build_request(&spans, &self.resource).encode_to_vec();
        let deadline = Instant::now() + self.budget;
        for attempt in 1..=MAX_ATTEMPTS {
            let (outcome, rejected) = self.send(&body);
            match outcome {
                Outcome::Ok => {
                    self.backoff.succeeded();
                    // Lines that could not be read back were never sent: count them too.
                    return Ok(Written {
                        rejected: rejected + malformed as u64,
                    });
                }
                Outcome::Rejected => {
                    return Err(io::Error::other("the receiver refused the batch"));
                }
                Outcome::Retry(after) if attempt < MAX_ATTEMPTS => {
                    let now = Instant::now();
                    let wait = self.backoff.failed(now, after);
                    if now + wait >= deadline {
                        break;
                    }
                    std::thread::sleep(wait);
                }
                Outcome::Retry(_) => {}
            }
        }
        Err(io::Error::other("the receiver stayed unavailable"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
