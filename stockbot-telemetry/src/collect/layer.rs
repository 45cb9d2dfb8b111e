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
use super::span::{SpanContext, SpanVisitor};
use crate::export::pipeline::Pipeline;
use crate::process::sample::Decision;

/// The SDK's `tracing` layer, for users who assemble their own subscriber.
///
/// Get one from [`TelemetryBuilder::build`](crate::TelemetryBuilder::build). It applies the
/// configured level filter globally (a disabled call site costs one comparison), assigns W3C
/// trace and span ids to spans, and hands events to the background worker.
#[derive(Debug, Clone)]
pub struct TelemetryLayer {
    pub(crate) pipeline: Arc<Pipeline>,
}

thread_local! {
    static THREAD_NAME: Option<Arc<str>> = std::thread::current().name().map(Arc::from);
}

impl TelemetryLayer {
    fn capture(&self, event: &Event<'_>, span: Option<Arc<SpanContext>>) {
        let p = &*self.pipeline;
        let meta = event.metadata();
        let mut sampled_away = 0;
        if p.sampler.is_active() {
            match p.sampler.decide(meta, Instant::now()) {
                Decision::Keep { sampled_away: n } => sampled_away = n,
                Decision::Skip => {
                    p.acct
                        .sampled_away
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            }
        }
        let mut rec = LogRecord::new(p.clock.stamp(), meta);
        rec.sampled_away = sampled_away;
        let bridged = event.is_log();
        if bridged {
            if let Some(normalized) = event.normalized_metadata() {
                rec.target = rec.copy_text(normalized.target(), 256);
                rec.file = normalized.file().map(|f| rec.copy_text(f, 512));
                rec.line = normalized.line();
            }
        }
        event.record(&mut EventVisitor {
            record: &mut rec,
            limit: p.max_field_bytes,
            bridged,
        });
        if let Some(span) = span {
            if span.audit {
                rec.flags |= AUDIT;
            }
            rec.span = Some(span);
        }
        rec.thread = THREAD_NAME.with(Clone::clone);
        p.submit(rec);
    }
}

impl<S> Layer<S> for TelemetryLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.pipeline.filter.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.pipeline.filter.enabled(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.pipeline.filter.max_level())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Arc<SpanContext>>().cloned());
        let mut sc = SpanContext::new(attrs.metadata().name(), parent.as_deref());
        attrs.record(&mut SpanVisitor {
            ctx: &mut sc,
            limit: self.pipeline.max_field_bytes,
        });
        span.extensions_mut().insert(sc.shared());
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(current) = ext.get_mut::<Arc<SpanContext>>() {
            let mut sc = (**current).clone();
            values.record(&mut SpanVisitor {
                ctx: &mut sc,
                limit: self.pipeline.max_field_bytes,
            });
            *current = sc.shared();
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.pipeline.is_closed() {
            self.pipeline
                .acct
                .emitted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.pipeline
                .acct
                .dropped(crate::export::accounting::DropReason::Shutdown);
            return;
        }
        let span = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<Arc<SpanContext>>().cloned());
        self.capture(event, span);
    }
}
