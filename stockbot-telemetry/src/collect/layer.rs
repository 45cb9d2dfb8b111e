//! The `tracing` layer: filters by level, gives spans W3C ids, and captures events into the
//! pipeline's queue. Nothing here formats JSON, takes a lock held by the worker for long, or
//! waits.

use std::sync::Arc;
use std::time::Instant;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, LevelFilter, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::record::{AUDIT, EventVisitor, LogRecord};
use super::span::{Bounded, RawSpanEvent, SpanContext, SpanVisitor};
use crate::export::pipeline::Pipeline;
use crate::export::span_worker::SpanRecord;
use crate::process::sample::Decision;

/// The SDK's `tracing` layer, for users who assemble their own subscriber.
///
/// Get one from [`TelemetryBuilder::build`](crate::TelemetryBuilder::build). It applies the
/// configured level filter globally (a disabled call site costs one comparison), assigns W3C
/// trace and span ids to spans, and hands events to the background worker.
#[derive(Debug, Clone)]
pub struct TelemetryLayer {
    pub(crate) pipeline: Arc<Pipeline<LogRecord>>,
    pub(crate) logs: Arc<LogCollector>,
    pub(crate) spans: Option<Arc<SpanCollector>>,
}

/// What recording spans needs: the head sampler and the spans pipeline.
#[derive(Debug)]
pub(crate) struct SpanCollector {
    pub(crate) pipeline: Arc<Pipeline<SpanRecord>>,
    pub(crate) sampler: crate::process::head_sampling::HeadSampler,
    /// Local keep rules for unsampled traces, when enabled.
    pub(crate) keep: Option<crate::process::keep::KeepRules>,
    pub(crate) clock: Arc<crate::collect::clock::RecordClock>,
    pub(crate) limits: crate::config::SpanLimits,
}

impl SpanCollector {
    /// Counts `n` spans that never reach the queue as emitted and dropped for `reason`.
    fn lost(&self, n: u64, reason: crate::export::accounting::DropReason) {
        let acct = &self.pipeline.acct;
        for _ in 0..n {
            acct.emitted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            acct.dropped(reason);
        }
    }

    /// Counts `n` spans lost because the keep-rule buffers were full.
    fn lost_to_keep_buffers(&self, n: u64) {
        self.lost(n, crate::export::accounting::DropReason::KeepBufferFull);
    }
}

/// What capturing a log event needs besides the pipeline.
#[derive(Debug)]
pub(crate) struct LogCollector {
    pub(crate) clock: Arc<crate::collect::clock::RecordClock>,
    pub(crate) filter: crate::collect::filter::SharedFilter,
    pub(crate) sampler: crate::process::sample::Sampler,
    pub(crate) max_field_bytes: usize,
}

thread_local! {
    static THREAD_NAME: Option<Arc<str>> = std::thread::current().name().map(Arc::from);
}

impl TelemetryLayer {
    pub(crate) fn limits(&self) -> crate::config::SpanLimits {
        self.spans
            .as_ref()
            .map_or_else(crate::config::SpanLimits::default, |s| s.limits)
    }

    /// Copies a log event inside a recorded span into the span (bounded by the event limit).
    fn add_span_event(&self, span: &SpanContext, event: &Event<'_>, level: tracing_core::Level) {
        let mut ev = RawSpanEvent {
            stamp: self.logs.clock.stamp(),
            level,
            name: event.metadata().name().into(),
            fields: Vec::new(),
        };
        if self.limits().max_events > 0 {
            event.record(&mut SpanVisitor {
                ctx: &mut ev,
                limit: self.logs.max_field_bytes,
            });
        }
        span.add_event(ev, self.limits().max_events);
    }

    fn capture(&self, event: &Event<'_>, span: Option<Arc<SpanContext>>) {
        let (p, c) = (&*self.pipeline, &*self.logs);
        let meta = event.metadata();
        // Records of the `log` crate all share tracing-log's few call sites: use the real
        // target and location for sampling and per-call-site diagnostics.
        let bridged = event.is_log();
        let normalized = if bridged {
            event.normalized_metadata()
        } else {
            None
        };
        let (target, site) = match &normalized {
            Some(m) => (m.target(), log_site_key(m.target(), m.file(), m.line())),
            None => (meta.target(), meta as *const Metadata<'static> as usize),
        };
        let span_audit = span.as_ref().is_some_and(|s| s.audit);
        let mut sampled_away = 0;
        if c.sampler.is_active() && !span_audit {
            let declares_audit = !bridged && meta.fields().field("audit").is_some();
            match c
                .sampler
                .decide(target, site, declares_audit, Instant::now())
            {
                Decision::Keep { sampled_away: n } => sampled_away = n,
                Decision::Skip => {
                    p.acct
                        .sampled_away
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            }
        }
        let mut rec = LogRecord::new(c.clock.stamp(), meta);
        rec.sampled_away = sampled_away;
        rec.callsite = site;
        if let Some(normalized) = &normalized {
            rec.target = rec.copy_text(normalized.target(), 256);
            rec.file = normalized.file().map(|f| rec.copy_text(f, 512));
            rec.line = normalized.line();
        }
        event.record(&mut EventVisitor {
            record: &mut rec,
            limit: c.max_field_bytes,
            bridged,
        });
        if let Some(span) = span {
            if span.audit {
                rec.flags |= AUDIT;
            }
            rec.span = Some(span);
        }
        // `try_with`: events may come from other thread-locals' destructors, after ours is gone.
        rec.thread = THREAD_NAME.try_with(Clone::clone).ok().flatten();
        p.submit(rec);
    }
}

/// A stable key for a `log` call site (target, file, line).
fn log_site_key(target: &str, file: Option<&str>, line: Option<u32>) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (target, file, line).hash(&mut h);
    // Odd, so it never collides with a (word-aligned) metadata address or 0.
    (h.finish() as usize) | 1
}

impl TelemetryLayer {
    /// Whether a call site is ever enabled (the level filter; re-asked when it changes).
    pub(crate) fn interest(&self, meta: &Metadata<'_>) -> Interest {
        if self.logs.filter.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    /// A new span's context: ids, sampling decision (inherited from `parent`, or taken for a
    /// root) and fields. Shared by the layer and the SDK's own subscriber.
    pub(crate) fn open(
        &self,
        attrs: &Attributes<'_>,
        parent: Option<Arc<SpanContext>>,
    ) -> Arc<SpanContext> {
        let meta = attrs.metadata();
        let spans = self.spans.as_deref();
        let mut shared = SpanContext::new_shared(
            meta.name(),
            meta.target(),
            parent,
            |trace_id| spans.is_some_and(|s| s.sampler.sample_root(trace_id)),
            self.logs.clock.stamp(),
            spans.is_some_and(|s| s.keep.is_some()),
        );
        // Always unique here: fresh, or from the pool (which only holds unique contexts).
        if let Some(sc) = Arc::get_mut(&mut shared) {
            let max_fields = self.limits().max_attributes;
            sc.fields.reserve(meta.fields().len().min(max_fields));
            attrs.record(&mut SpanVisitor {
                ctx: &mut Bounded {
                    ctx: sc,
                    max_fields,
                },
                limit: self.logs.max_field_bytes,
            });
            sc.ensure_extras();
        }
        shared
    }

    /// The context after `span.record(...)`: a copy with the new values (the current one may be
    /// held by queued log records, which must keep what they saw).
    pub(crate) fn recorded(&self, current: &SpanContext, values: &Record<'_>) -> Arc<SpanContext> {
        let mut sc = current.clone();
        values.record(&mut SpanVisitor {
            ctx: &mut Bounded {
                ctx: &mut sc,
                max_fields: self.limits().max_attributes,
            },
            limit: self.logs.max_field_bytes,
        });
        sc.ensure_extras();
        sc.shared()
    }

    /// An event, inside `span` when it has one.
    pub(crate) fn event(&self, event: &Event<'_>, span: Option<Arc<SpanContext>>) {
        if self.pipeline.is_closed() {
            let p = &self.pipeline;
            p.acct
                .emitted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            p.acct.dropped(p.closed_reason());
            return;
        }
        if let Some(span) = &span {
            let level = *event.metadata().level();
            if level == tracing_core::Level::ERROR {
                span.error.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if self.spans.is_some() && span.is_recorded() {
                self.add_span_event(span, event, level);
            }
        }
        self.capture(event, span);
    }

    /// `span` follows from `cause`: a link, when the span is recorded.
    pub(crate) fn follows(&self, span: &SpanContext, cause: &SpanContext) {
        if self.spans.is_some() && span.is_recorded() {
            span.add_link(cause.trace_id, cause.span_id, self.limits().max_links);
        }
    }

    /// A closed span's context, taken out of its span: exported, held for the keep rules, or
    /// recycled into this thread's pool when nothing else holds it.
    pub(crate) fn finish(&self, sc: Arc<SpanContext>) {
        let Some(spans) = &self.spans else {
            SpanContext::recycle(sc);
            return;
        };
        if !sc.sampled && !sc.audit && spans.keep.is_none() {
            // Head-unsampled and no keep rule: nothing to export.
            SpanContext::recycle(sc);
            return;
        }
        let end_stamp = self.logs.clock.stamp();
        if sc.sampled || (sc.audit && spans.keep.is_none()) {
            // Audit-class spans are exported whatever the head sampler said (and use the
            // queue's audit reserve).
            spans.pipeline.submit(SpanRecord { ctx: sc, end_stamp });
        } else if let Some(keep) = &spans.keep {
            use crate::process::keep::Verdict;
            let duration = std::time::Duration::from_nanos(
                spans.clock.elapsed_nanos(sc.start_stamp, end_stamp),
            );
            let verdict = keep.close(SpanRecord { ctx: sc, end_stamp }, duration);
            // Spans evicted from the oldest held trace are lost: count them.
            let evicted = keep.evicted.swap(0, std::sync::atomic::Ordering::Relaxed);
            spans.lost_to_keep_buffers(evicted);
            match verdict {
                Verdict::Held => {}
                Verdict::Overflow => spans.lost_to_keep_buffers(1),
                Verdict::Release(records) => {
                    for r in records {
                        spans.pipeline.submit(r);
                    }
                }
            }
        }
    }

    /// A span that could not be stored (the live-span table is full): counted as emitted and
    /// dropped when it would have been exported.
    pub(crate) fn lost(&self, sc: &SpanContext) {
        if let Some(spans) = &self.spans
            && (sc.sampled || sc.audit)
        {
            spans.lost(1, crate::export::accounting::DropReason::QueueFull);
        }
    }
}

/// As a `tracing_subscriber` layer the span contexts live in the registry's extensions.
impl<S> Layer<S> for TelemetryLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        self.interest(meta)
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.logs.filter.enabled(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.logs.filter.max_level())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Arc<SpanContext>>().cloned());
        let shared = self.open(attrs, parent);
        let mut ext = span.extensions_mut();
        // Another TelemetryLayer in the same registry may have set it already: share it.
        if ext.get_mut::<Arc<SpanContext>>().is_none() {
            ext.insert(shared);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // Copy, then record without holding the span's lock: a field's `Debug` may itself emit
        // events, open spans or record metrics.
        let Some(current) = span.extensions().get::<Arc<SpanContext>>().cloned() else {
            return;
        };
        let sc = self.recorded(&current, values);
        if let Some(current) = span.extensions_mut().get_mut::<Arc<SpanContext>>() {
            *current = sc;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let span = if self.pipeline.is_closed() {
            None
        } else {
            ctx.event_span(event)
                .and_then(|s| s.extensions().get::<Arc<SpanContext>>().cloned())
        };
        self.event(event, span);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        let context = |id: &Id| {
            ctx.span(id)
                .and_then(|s| s.extensions().get::<Arc<SpanContext>>().cloned())
        };
        if let (Some(span), Some(cause)) = (context(id), context(follows)) {
            self.follows(&span, &cause);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if self.spans.is_none() {
            // Logs only: nothing is exported, so the context goes back to the pool (a recorded
            // one is left for a span-recording layer that shares the registry).
            let mut ext = span.extensions_mut();
            if ext
                .get_mut::<Arc<SpanContext>>()
                .is_some_and(|sc| !sc.is_recorded())
                && let Some(sc) = ext.remove::<Arc<SpanContext>>()
            {
                drop(ext);
                SpanContext::recycle(sc);
            }
            return;
        }
        // The layer that records spans takes the context out of the span (the registry clears
        // it right after). A logs-only layer sharing the registry leaves it for this one.
        let Some(sc) = span.extensions_mut().remove::<Arc<SpanContext>>() else {
            return;
        };
        self.finish(sc);
    }
}
