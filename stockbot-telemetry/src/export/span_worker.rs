//! Finished spans: the caller's thread pushes a reference to the span's context and its end
//! stamp onto the spans pipeline; this worker turns them into `FinishedSpan`s (timestamps,
//! canonical attribute names, redaction) and writes JSON lines to the span sinks.

use std::mem::size_of;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use stockbot_telemetry_conventions::{self as conventions, Sensitivity};

use super::batch::{Batch, BatchLimits};
use super::pipeline::{Item, Pipeline};
use super::worker::SinkSlot;
use crate::analysis::{DroppedCounts, FinishedSpan, SpanEvent, SpanKind, SpanLink, to_json_line};
use crate::collect::clock::RecordClock;
use crate::collect::span::{OwnedValue, SpanContext};
use crate::process::redact::{Redactor, SecretKind};

/// A closed, sampled span waiting for export.
#[derive(Debug)]
pub(crate) struct SpanRecord {
    pub(crate) ctx: Arc<SpanContext>,
    pub(crate) end_stamp: u64,
}

impl Item for SpanRecord {
    fn size_bytes(&self) -> usize {
        size_of::<Self>()
            + size_of::<SpanContext>()
            + self
                .ctx
                .fields
                .iter()
                .map(|(_, v)| match v {
                    OwnedValue::Str(s) => s.len() + 32,
                    _ => 32,
                })
                .sum::<usize>()
    }
    fn is_audit(&self) -> bool {
        self.ctx.audit
    }
}

fn text(v: &OwnedValue) -> String {
    match v {
        OwnedValue::Str(s) => s.to_string(),
        OwnedValue::I64(n) => n.to_string(),
        OwnedValue::U64(n) => n.to_string(),
        OwnedValue::F64(n) => n.to_string(),
        OwnedValue::Bool(b) => b.to_string(),
    }
}

/// One field as exported: the schema's canonical name, secrets redacted, ids pseudonymised,
/// values scanned for secret patterns. `hits` gets one entry per secret replaced (a
/// secret-named field counts as one).
fn attribute(
    name: &str,
    value: &OwnedValue,
    redactor: &Redactor,
    hits: &mut Vec<SecretKind>,
) -> (String, String) {
    let (key, sensitivity) = match conventions::lookup(name) {
        Some(def) => (def.name.to_owned(), def.sensitivity),
        None if conventions::is_secret_name(name) => (name.to_owned(), Sensitivity::Secret),
        None => (name.to_owned(), Sensitivity::Public),
    };
    let value = match sensitivity {
        Sensitivity::Secret => {
            hits.push(SecretKind::KeyValue);
            "[REDACTED]".to_owned()
        }
        Sensitivity::Pseudonymised => redactor.pseudonymise(&text(value)),
        _ => redactor.redact_text(&text(value), hits).into_owned(),
    };
    (key, value)
}

/// Builds the exported form: canonical names, secrets redacted, ids pseudonymised. `hits` gets
/// one entry per secret replaced (counted in the span pipeline's `redactions`).
pub(crate) fn finish(
    rec: &SpanRecord,
    clock: &RecordClock,
    service: &str,
    redactor: &Redactor,
    hits: &mut Vec<SecretKind>,
) -> FinishedSpan {
    let c = &rec.ctx;
    let mut kind = SpanKind::Internal;
    let mut attributes = Vec::with_capacity(c.fields.len() + 1);
    attributes.push(("code.namespace".to_owned(), c.target.to_owned()));
    for (name, value) in c.own_fields() {
        if matches!(name, "otel.kind" | "span.kind") {
            kind = SpanKind::parse(&text(value).to_ascii_lowercase()).unwrap_or(SpanKind::Internal);
            continue;
        }
        attributes.push(attribute(name, value, redactor, hits));
    }
    let extras = c.take_extras();
    let events = extras
        .events
        .iter()
        .map(|e| {
            let mut attributes = Vec::with_capacity(e.fields.len() + 1);
            attributes.push(("level".to_owned(), e.level.as_str().to_owned()));
            attributes.extend(
                e.fields
                    .iter()
                    .map(|(name, value)| attribute(name, value, redactor, hits)),
            );
            SpanEvent {
                name: redactor.redact_text(&e.name, hits).into_owned(),
                unix_nanos: clock.unix_nanos(e.stamp),
                attributes,
            }
        })
        .collect();
    let status_message = extras
        .status_message
        .as_deref()
        .map(|m| redactor.redact_text(m, hits).into_owned())
        .unwrap_or_default();
    FinishedSpan {
        trace_id: c.trace_id,
        span_id: c.span_id,
        parent_span_id: c.parent_span_id,
        name: c.name.to_owned(),
        service: service.to_owned(),
        kind,
        start_unix_nanos: clock.unix_nanos(c.start_stamp),
        end_unix_nanos: clock.unix_nanos(rec.end_stamp),
        error: c.error.load(Relaxed),
        attributes,
        status_message,
        trace_state: c
            .trace_state
            .as_deref()
            .map(|t| t.header_value())
            .unwrap_or_default(),
        events,
        links: extras
            .links
            .iter()
            .map(|&(trace_id, span_id)| SpanLink { trace_id, span_id })
            .collect(),
        dropped: DroppedCounts {
            attributes: c.dropped_attributes,
            events: extras.dropped_events,
            links: extras.dropped_links,
        },
    }
}

pub(crate) struct SpanWorker {
    pub(crate) pipeline: Arc<Pipeline<SpanRecord>>,
    pub(crate) clock: Arc<RecordClock>,
    pub(crate) service: String,
    pub(crate) redactor: Redactor,
    pub(crate) sinks: Vec<SinkSlot>,
    pub(crate) batch: Batch,
    pub(crate) batch_max: usize,
    /// Secrets replaced in the span being encoded (reused between spans).
    hits: Vec<SecretKind>,
}

impl SpanWorker {
    pub(crate) fn new(
        pipeline: Arc<Pipeline<SpanRecord>>,
        clock: Arc<RecordClock>,
        service: String,
        redactor: Redactor,
        sinks: Vec<SinkSlot>,
        batch_max: usize,
    ) -> Self {
        SpanWorker {
            pipeline,
            clock,
            service,
            redactor,
            sinks,
            batch: Batch::new(BatchLimits {
                max_records: batch_max,
                max_bytes: 1 << 20,
            }),
            batch_max,
            hits: Vec::new(),
        }
    }

    pub(crate) fn run(mut self) {
        let mut seen = 0;
        let mut records = Vec::with_capacity(self.batch_max);
        let mut done = Vec::with_capacity(self.batch_max);
        loop {
            let (epoch, shutdown, _) = self.pipeline.worker_round();
            #[cfg(feature = "fail-points")]
            fail::fail_point!("stockbot-span-worker-round");
            let pipeline = Arc::clone(&self.pipeline);
            pipeline.drain_round(!shutdown, self.batch_max, &mut records, |chunk| {
                for rec in chunk.drain(..) {
                    self.encode(&rec);
                    done.push(rec.ctx);
                }
                // Encoded: the contexts go back to the callers' pools.
                SpanContext::give_back(&mut done);
            });
            self.write();
            for slot in &mut self.sinks {
                let _ = catch_unwind(AssertUnwindSafe(|| slot.sink.flush()));
            }
            self.pipeline.flush_done(epoch, true);
            if shutdown {
                break;
            }
            seen = self.pipeline.queue.wait(seen, self.pipeline.flush_interval);
        }
    }

    /// Appends one span as a JSON line to the batch (a panic loses only this span, counted).
    fn encode(&mut self, rec: &SpanRecord) {
        let (clock, service, redactor, out, hits) = (
            &self.clock,
            &self.service,
            &self.redactor,
            &mut self.batch.bytes,
            &mut self.hits,
        );
        let start = out.len();
        let mut limited = 0;
        hits.clear();
        let encoded = catch_unwind(AssertUnwindSafe(|| {
            let span = finish(rec, clock, service, redactor, hits);
            let d = span.dropped;
            limited = u64::from(d.attributes) + u64::from(d.events) + u64::from(d.links);
            out.extend_from_slice(to_json_line(&span).as_bytes());
            out.push(b'\n');
        }));
        // What the span limits cut off: visible in the spans pipeline's `truncated` counter.
        self.pipeline.acct.truncated.fetch_add(limited, Relaxed);
        if !self.hits.is_empty() {
            self.pipeline
                .acct
                .redactions
                .fetch_add(self.hits.len() as u64, Relaxed);
        }
        if encoded.is_err() {
            self.batch.bytes.truncate(start);
            self.pipeline.acct.lost_to_panic();
            return;
        }
        self.batch.record_added(Instant::now());
        if self.batch.is_full() {
            self.write();
        }
    }

    fn write(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let n = self.batch.records as u64;
        let acct = &self.pipeline.acct;
        for (i, slot) in self.sinks.iter_mut().enumerate() {
            slot.write(
                &self.batch.bytes,
                &[],
                n,
                &acct.sinks[i],
                &acct.worker_panics,
            );
        }
        acct.in_flight.fetch_sub(n, Relaxed);
        self.batch.clear();
    }
}
