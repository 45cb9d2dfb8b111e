//! Local keep rules: for traces the head sampler did not keep, this process's spans are held
//! (bounded per trace and in total) until the local root closes, then exported if the trace
//! had an error, a slow span, or an audit-class span — and discarded otherwise.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::collect::span::SpanContext;
use crate::export::span_worker::SpanRecord;

/// The rules and their buffers.
#[derive(Debug)]
pub(crate) struct KeepRules {
    pub(crate) errors: bool,
    pub(crate) audit: bool,
    pub(crate) slower_than: Option<Duration>,
    pub(crate) max_spans_per_trace: usize,
    pub(crate) max_buffered_spans: usize,
    /// (trace id, local root span id) → held spans.
    held: Mutex<Held>,
    /// Spans refused because a buffer was full (counted as dropped by the span pipeline too).
    pub(crate) overflowed: AtomicU64,
    /// Of those, spans dropped from the oldest held trace to make room; the caller moves them
    /// into the pipeline's drop count.
    pub(crate) evicted: AtomicU64,
}

#[derive(Debug, Default)]
struct Held {
    traces: HashMap<(u128, u64), Vec<SpanRecord>>,
    total: usize,
}

impl Held {
    /// Frees room by dropping the trace held longest (its local root may never close, e.g. a
    /// long-lived loop span). Returns how many spans went.
    fn evict_oldest(&mut self) -> usize {
        let oldest = self
            .traces
            .iter()
            .min_by_key(|(_, spans)| spans.first().map_or(u64::MAX, |s| s.end_stamp))
            .map(|(k, _)| *k);
        let Some(key) = oldest else { return 0 };
        let n = self.traces.remove(&key).map_or(0, |v| v.len());
        self.total -= n;
        n
    }
}

/// What to do with a closed span of an unsampled trace.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Held until its local root closes.
    Held,
    /// The buffers are full: the span is lost (the caller counts it).
    Overflow,
    /// The local root closed: export these (the root included), or nothing.
    Release(Vec<SpanRecord>),
}

impl KeepRules {
    pub(crate) fn new(
        errors: bool,
        audit: bool,
        slower_than: Option<Duration>,
        max_spans_per_trace: usize,
        max_buffered_spans: usize,
    ) -> Self {
        KeepRules {
            errors,
            audit,
            slower_than,
            max_spans_per_trace,
            max_buffered_spans,
            held: Mutex::new(Held::default()),
            overflowed: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// Whether this span, on its own, makes its trace worth keeping.
    fn interesting(&self, ctx: &SpanContext, duration: Duration) -> bool {
        (self.errors && ctx.error.load(Relaxed))
            || (self.audit && ctx.audit)
            || self.slower_than.is_some_and(|t| duration >= t)
    }

    /// Takes a closed span of an unsampled trace.
    pub(crate) fn close(&self, record: SpanRecord, duration: Duration) -> Verdict {
        let ctx = Arc::clone(&record.ctx);
        if self.interesting(&ctx, duration)
            && let Some(keep) = &ctx.keep
        {
            keep.store(true, Relaxed);
        }
        let key = (ctx.trace_id, ctx.local_root);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let is_root = ctx.local_root == ctx.span_id;
        if is_root {
            let mut spans = held.traces.remove(&key).unwrap_or_default();
            held.total -= spans.len();
            if ctx.keep.as_ref().is_some_and(|k| k.load(Relaxed))
                || self.interesting(&ctx, duration)
            {
                spans.push(record);
                return Verdict::Release(spans);
            }
            return Verdict::Release(Vec::new());
        }
        if ctx.audit && self.audit {
            // Audit-class spans are never dropped for lack of room: released at once.
            drop(held);
            return Verdict::Release(vec![record]);
        }
        if held.total >= self.max_buffered_spans {
            // Make room by giving up on the oldest held trace (counted), so one never-closing
            // root cannot disable the rules for everything else.
            let evicted = held.evict_oldest();
            self.overflowed.fetch_add(evicted as u64, Relaxed);
            self.evicted.fetch_add(evicted as u64, Relaxed);
        }
        let spans = held.traces.entry(key).or_default();
        if spans.len() >= self.max_spans_per_trace {
            self.overflowed.fetch_add(1, Relaxed);
            return Verdict::Overflow;
        }
        spans.push(record);
        held.total += 1;
        Verdict::Held
    }
}
