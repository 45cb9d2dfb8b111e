//! OTLP span export (feature `otlp`): a span sink on the span worker. Each batch becomes one
//! `ExportTraceServiceRequest`, sent by the shared [`BatchExporter`] (HTTP/protobuf to
//! `/v1/traces`, or gRPC) to a Collector or Jaeger. Only the retryable answers are retried, with
//! the shared backoff policy and `Retry-After`/`RetryInfo` honoured (capped), a bounded number
//! of times within twice the timeout; a partial success is counted as rejected spans, never
//! retried.

use std::io;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use super::otlp_client::BatchExporter;
use super::otlp_metrics::kv;
use super::sink::{Sink, Written};
use crate::analysis::{FinishedSpan, SpanKind, read_json_lines};

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
            trace_state: s.trace_state.clone(),
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
            dropped_attributes_count: s.dropped.attributes,
            events: s
                .events
                .iter()
                .map(|e| span::Event {
                    time_unix_nano: e.unix_nanos,
                    name: e.name.clone(),
                    attributes: e.attributes.iter().map(|(k, v)| kv(k, v)).collect(),
                    dropped_attributes_count: 0,
                })
                .collect(),
            dropped_events_count: s.dropped.events,
            links: s
                .links
                .iter()
                .map(|l| span::Link {
                    trace_id: l.trace_id.to_be_bytes().to_vec(),
                    span_id: l.span_id.to_be_bytes().to_vec(),
                    trace_state: String::new(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                    flags: 0,
                })
                .collect(),
            dropped_links_count: s.dropped.links,
            status: Some(Status {
                message: if s.error {
                    s.status_message.clone()
                } else {
                    String::new()
                },
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

/// Spans to a Collector or Jaeger over OTLP.
pub(crate) struct OtlpSpanSink {
    exporter: BatchExporter,
    resource: Vec<(String, String)>,
}

impl OtlpSpanSink {
    pub(crate) fn new(exporter: BatchExporter, resource: Vec<(String, String)>) -> Self {
        OtlpSpanSink { exporter, resource }
    }
}

impl Sink for OtlpSpanSink {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<Written> {
        let text = std::str::from_utf8(bytes).map_err(io::Error::other)?;
        let (spans, malformed) = read_json_lines(text);
        let request = build_request(&spans, &self.resource);
        let response = self
            .exporter
            .export::<_, ExportTraceServiceResponse>(&request)?;
        // Partial success: the refused spans are counted, never retried.
        let rejected = response
            .and_then(|r| r.partial_success)
            .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0));
        // Lines that could not be read back were never sent: count them too.
        Ok(Written {
            rejected: rejected + malformed as u64,
            ..Written::default()
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
