//! Span context: W3C-compatible ids and the span's fields, inherited by the events inside it.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError};

use tracing_core::field::{Field as TracingField, Visit};

use super::record::{cut_point, floor_char_boundary};

/// Text of a span field: up to [`Text::INLINE`] bytes stored in place (ids, venues, symbols:
/// no heap allocation on the caller's thread), longer text on the heap.
#[derive(Clone)]
pub(crate) enum Text {
    Inline { len: u8, bytes: [u8; Text::INLINE] },
    Heap(Box<str>),
}

impl Text {
    pub(crate) const INLINE: usize = 22;

    /// `args` formatted, cut at `limit` bytes (at a character boundary) with a marker.
    pub(crate) fn format(args: fmt::Arguments<'_>, limit: usize) -> Text {
        let mut w = TextWriter {
            inline: [0; Text::INLINE],
            len: 0,
            heap: None,
            left: limit,
        };
        if fmt::write(&mut w, args).is_err() {
            let mut s = w.heap.take().unwrap_or_else(|| w.inline_str().to_owned());
            // Not through a token (a secret cut in half would escape the redaction patterns).
            let cut = cut_point(&s, s.len().saturating_sub(1));
            s.truncate(cut);
            s.push_str("…[truncated]");
            return Text::Heap(s.into_boxed_str());
        }
        match w.heap {
            Some(s) => Text::Heap(s.into_boxed_str()),
            None => Text::Inline {
                len: w.len as u8,
                bytes: w.inline,
            },
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            // Only whole `str`s are copied in, so this never fails.
            Text::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Text::Heap(s) => s,
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        if s.len() <= Text::INLINE {
            let mut bytes = [0; Text::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Text::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Text::Heap(s.into())
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= Text::INLINE {
            Text::from(s.as_str())
        } else {
            Text::Heap(s.into_boxed_str())
        }
    }
}

impl From<Text> for Box<str> {
    fn from(t: Text) -> Box<str> {
        match t {
            Text::Heap(s) => s,
            inline => (*inline).into(),
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

/// Formats into the inline buffer, moving to a `String` when it no longer fits; stops at
/// `left` bytes.
struct TextWriter {
    inline: [u8; Text::INLINE],
    len: usize,
    heap: Option<String>,
    left: usize,
}

impl TextWriter {
    fn inline_str(&self) -> &str {
        std::str::from_utf8(&self.inline[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for TextWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let cut = floor_char_boundary(s, self.left);
        let part = &s[..cut];
        self.left -= cut;
        match &mut self.heap {
            Some(heap) => heap.push_str(part),
            None if self.len + part.len() <= Text::INLINE => {
                self.inline[self.len..self.len + part.len()].copy_from_slice(part.as_bytes());
                self.len += part.len();
            }
            None => {
                let mut heap = String::with_capacity(self.len + part.len() + 16);
                heap.push_str(self.inline_str());
                heap.push_str(part);
                self.heap = Some(heap);
            }
        }
        if cut < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// A value copied from a span's fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OwnedValue {
    Str(Text),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// What the events inside a span inherit from it (and its parents), and what the span
/// exporter needs when it closes.
#[derive(Debug)]
pub(crate) struct SpanContext {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) parent_span_id: Option<u64>,
    /// Exported (the head sampler's decision, inherited by children).
    pub(crate) sampled: bool,
    pub(crate) name: &'static str,
    pub(crate) target: &'static str,
    pub(crate) audit: bool,
    /// Raw clock stamp of the span's creation.
    pub(crate) start_stamp: u64,
    /// This span's own fields (exported as its attributes).
    pub(crate) fields: Vec<(&'static str, OwnedValue)>,
    /// The enclosing local span, whose fields this one inherits (shared, never copied).
    pub(crate) parent: Option<Arc<SpanContext>>,
    /// Set when the span (or an error event inside it) reports an error.
    pub(crate) error: AtomicBool,
    /// Span id of this process's root of the trace (itself for a local root).
    pub(crate) local_root: u64,
    /// Shared by every span under one local root: a local keep rule fired for the trace.
    /// Only allocated for unsampled traces while keep rules are on.
    pub(crate) keep: Option<Arc<AtomicBool>>,
    /// The W3C `tracestate` of the trace (from an incoming `traceparent`), inherited.
    pub(crate) trace_state: Option<Arc<crate::propagation::TraceState>>,
    /// Fields not kept because the span had `max_attributes` already (each name once).
    pub(crate) dropped_attributes: u32,
    dropped_names: Vec<&'static str>,
    /// Events, links and the status message. Only recorded spans have them (see
    /// [`SpanContext::ensure_extras`]); shared by every copy of the context, so an event
    /// added while a field is being recorded is never lost to the copy.
    pub(crate) extras: Option<Arc<Mutex<SpanExtras>>>,
}

/// What a recorded span accumulates while open.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpanExtras {
    pub(crate) events: Vec<RawSpanEvent>,
    pub(crate) dropped_events: u32,
    /// (trace id, span id) of linked spans.
    pub(crate) links: Vec<(u128, u64)>,
    pub(crate) dropped_links: u32,
    /// The first error event's message (the span's status description).
    pub(crate) status_message: Option<Box<str>>,
}

/// A log event inside a recorded span, kept as a span event.
#[derive(Debug, Clone)]
pub(crate) struct RawSpanEvent {
    pub(crate) stamp: u64,
    pub(crate) level: tracing_core::Level,
    /// The event's `message`, or its call site's name when it has none.
    pub(crate) name: Box<str>,
    pub(crate) fields: Vec<(&'static str, OwnedValue)>,
}

impl FieldTarget for RawSpanEvent {
    fn set(&mut self, name: &'static str, value: OwnedValue) {
        if name == "message" {
            if let OwnedValue::Str(s) = value {
                self.name = s.into();
            }
            return;
        }
        self.fields.push((name, value));
    }
}

/// Where [`SpanVisitor`] puts the values it copies.
pub(crate) trait FieldTarget {
    fn set(&mut self, name: &'static str, value: OwnedValue);
}

impl FieldTarget for SpanContext {
    fn set(&mut self, name: &'static str, value: OwnedValue) {
        SpanContext::set(self, name, value);
    }
}

impl Clone for SpanContext {
    fn clone(&self) -> Self {
        SpanContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            sampled: self.sampled,
            name: self.name,
            target: self.target,
            audit: self.audit,
            start_stamp: self.start_stamp,
            fields: self.fields.clone(),
            parent: self.parent.clone(),
            error: AtomicBool::new(self.error.load(Relaxed)),
            local_root: self.local_root,
            keep: self.keep.clone(),
            trace_state: self.trace_state.clone(),
            dropped_attributes: self.dropped_attributes,
            dropped_names: self.dropped_names.clone(),
            extras: self.extras.clone(),
        }
    }
}

impl SpanContext {
    pub(crate) fn new(
        name: &'static str,
        target: &'static str,
        parent: Option<Arc<SpanContext>>,
        sample_root: impl FnOnce(u128) -> bool,
        start_stamp: u64,
        keep_rules: bool,
    ) -> Self {
        let mut sc = SpanContext {
            trace_id: 0,
            span_id: 0,
            parent_span_id: None,
            sampled: false,
            name,
            target,
            audit: false,
            start_stamp,
            fields: Vec::new(),
            parent: None,
            error: AtomicBool::new(false),
            local_root: 0,
            keep: None,
            trace_state: None,
            dropped_attributes: 0,
            dropped_names: Vec::new(),
            extras: None,
        };
        sc.fill(name, target, parent, sample_root, start_stamp, keep_rules);
        sc
    }

    /// Gives a new or [`reset`](Self::reset) context its ids and its sampling decision
    /// (inherited from `parent`, or taken for a root), keeping its field vector's capacity and,
    /// for a recorded span, its event store.
    fn fill(
        &mut self,
        name: &'static str,
        target: &'static str,
        parent: Option<Arc<SpanContext>>,
        sample_root: impl FnOnce(u128) -> bool,
        start_stamp: u64,
        keep_rules: bool,
    ) {
        let span_id = random_u64_nonzero();
        match &parent {
            Some(p) => {
                self.trace_id = p.trace_id;
                self.audit = p.audit;
                self.parent_span_id = Some(p.span_id);
                self.sampled = p.sampled;
                self.local_root = p.local_root;
                self.keep.clone_from(&p.keep);
                self.trace_state.clone_from(&p.trace_state);
            }
            None => {
                let trace_id = random_u128_nonzero();
                let sampled = sample_root(trace_id);
                self.trace_id = trace_id;
                self.audit = false;
                self.parent_span_id = None;
                self.sampled = sampled;
                self.local_root = span_id;
                self.keep = (keep_rules && !sampled).then(|| Arc::new(AtomicBool::new(false)));
                self.trace_state = None;
            }
        }
        self.span_id = span_id;
        self.name = name;
        self.target = target;
        self.start_stamp = start_stamp;
        self.parent = parent;
        *self.error.get_mut() = false;
        self.dropped_attributes = 0;
    }

    /// As [`SpanContext::new`], in a shared allocation taken from this thread's pool of
    /// recycled contexts when it has one (their field vectors and event stores keep their
    /// capacity). An empty pool takes a batch of the contexts the export worker gave back.
    pub(crate) fn new_shared(
        name: &'static str,
        target: &'static str,
        parent: Option<Arc<SpanContext>>,
        sample_root: impl FnOnce(u128) -> bool,
        start_stamp: u64,
        keep_rules: bool,
    ) -> Arc<Self> {
        let pooled = POOL
            .try_with(|p| {
                let mut p = p.try_borrow_mut().ok()?;
                if p.is_empty() && RETURNED_LEN.load(Relaxed) > 0 {
                    let mut returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
                    let from = returned.len().saturating_sub(REFILL);
                    p.extend(returned.drain(from..));
                    RETURNED_LEN.store(returned.len(), Relaxed);
                }
                p.pop()
            })
            .ok()
            .flatten();
        if let Some(mut shared) = pooled
            && let Some(slot) = Arc::get_mut(&mut shared)
        {
            slot.fill(name, target, parent, sample_root, start_stamp, keep_rules);
            return shared;
        }
        Arc::new(SpanContext::new(
            name,
            target,
            parent,
            sample_root,
            start_stamp,
            keep_rules,
        ))
    }

    /// Clears a context nothing else holds for reuse; gives back its parent (when this was the
    /// last holder of it too) for the same treatment.
    fn reset(this: &mut Arc<Self>) -> Result<Option<Arc<Self>>, ()> {
        let sc = Arc::get_mut(this).ok_or(())?;
        let parent = sc.parent.take();
        sc.keep = None;
        sc.trace_state = None;
        // The event store is kept (emptied) when nothing else holds it.
        if let Some(extras) = &mut sc.extras {
            match Arc::get_mut(extras) {
                Some(e) => {
                    let e = e.get_mut().unwrap_or_else(PoisonError::into_inner);
                    e.events.clear();
                    e.links.clear();
                    e.dropped_events = 0;
                    e.dropped_links = 0;
                    e.status_message = None;
                    if e.events.capacity() > MAX_POOLED_FIELDS {
                        e.events = Vec::new();
                    }
                }
                None => sc.extras = None,
            }
        }
        sc.dropped_names.clear();
        sc.fields.clear();
        if sc.fields.capacity() > MAX_POOLED_FIELDS {
            sc.fields = Vec::new();
        }
        Ok(parent)
    }

    /// Returns a closed span's context to this thread's pool when nothing else holds it (a
    /// queued log record or an exported span keeps it alive instead).
    pub(crate) fn recycle(mut this: Arc<Self>) {
        let Ok(parent) = Self::reset(&mut this) else {
            return;
        };
        drop(parent);
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut()
                && p.len() < POOL_SIZE
            {
                p.push(this);
            }
        });
    }

    /// Gives the contexts of exported spans (and of their parents, when these were the last
    /// holders) back to the callers' threads, which take them in batches: on the sampled path
    /// the export worker, not the caller, drops the last reference.
    pub(crate) fn give_back(contexts: &mut Vec<Arc<Self>>) {
        let mut ready = Vec::with_capacity(contexts.len());
        let mut next = contexts.pop();
        while let Some(mut ctx) = next {
            match Self::reset(&mut ctx) {
                Ok(parent) => {
                    ready.push(ctx);
                    next = parent.or_else(|| contexts.pop());
                }
                Err(()) => next = contexts.pop(),
            }
        }
        let excess = {
            let mut returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
            let room = RETURNED_MAX.saturating_sub(returned.len());
            let excess = ready.split_off(room.min(ready.len()));
            returned.append(&mut ready);
            RETURNED_LEN.store(returned.len(), Relaxed);
            excess
        };
        // Freed after the lock is released: callers take it on their hot path.
        drop(excess);
    }

    /// Whether the span's data is kept (exported, or held for the local keep rules).
    pub(crate) fn is_recorded(&self) -> bool {
        self.sampled || self.keep.is_some() || self.audit
    }

    /// Gives a recorded span its events/links store (after its fields are known: an
    /// `audit = true` field makes it recorded).
    pub(crate) fn ensure_extras(&mut self) {
        if self.extras.is_none() && self.is_recorded() {
            self.extras = Some(Arc::default());
        }
    }

    /// The span's events, links and status message, taken out (at export).
    pub(crate) fn take_extras(&self) -> SpanExtras {
        self.extras
            .as_ref()
            .map(|e| std::mem::take(&mut *e.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default()
    }

    fn with_extras(&self, f: impl FnOnce(&mut SpanExtras)) {
        if let Some(e) = &self.extras {
            f(&mut e.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// Adds an event, or counts it past `limit`. An error event's message becomes the status
    /// description when there is none yet.
    pub(crate) fn add_event(&self, event: RawSpanEvent, limit: usize) {
        self.with_extras(|extras| {
            if event.level == tracing_core::Level::ERROR && extras.status_message.is_none() {
                extras.status_message = Some(event.name.clone());
            }
            if extras.events.len() < limit {
                extras.events.push(event);
            } else {
                extras.dropped_events = extras.dropped_events.saturating_add(1);
            }
        });
    }

    /// Links this span to another span (of this trace or another), or counts it past `limit`.
    pub(crate) fn add_link(&self, trace_id: u128, span_id: u64, limit: usize) {
        self.with_extras(|extras| {
            if extras.links.contains(&(trace_id, span_id)) {
                return;
            }
            if extras.links.len() < limit {
                extras.links.push((trace_id, span_id));
            } else {
                extras.dropped_links = extras.dropped_links.saturating_add(1);
            }
        });
    }

    /// Sets a field, unless the span already has `limit` distinct ones (then it is counted).
    pub(crate) fn set_limited(&mut self, name: &'static str, value: OwnedValue, limit: usize) {
        if self.fields.len() >= limit && !self.fields.iter().any(|(n, _)| *n == name) {
            if !self.dropped_names.contains(&name) {
                self.dropped_names.push(name);
                self.dropped_attributes = self.dropped_attributes.saturating_add(1);
            }
            // Flags still apply: an error or audit field must not be lost to the limit.
            self.flags_from(name, &value);
            return;
        }
        self.set(name, value);
    }

    fn flags_from(&mut self, name: &str, value: &OwnedValue) {
        // Only `audit`, `error…`, `exception.message` and `otel.status_code` set flags: most
        // fields (`venue`, `order.cl_ord_id`, …) are past this one comparison.
        if !matches!(name.as_bytes().first(), Some(b'a' | b'e' | b'o')) {
            return;
        }
        if name == "audit" && *value == OwnedValue::Bool(true) {
            self.audit = true;
        }
        let is_error = matches!(
            name,
            "error" | "error.message" | "error.kind" | "exception.message"
        ) || (name == "otel.status_code"
            && matches!(value, OwnedValue::Str(s) if s.eq_ignore_ascii_case("error")));
        if is_error {
            self.error.store(true, Relaxed);
        }
    }

    pub(crate) fn set(&mut self, name: &'static str, value: OwnedValue) {
        self.flags_from(name, &value);
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
    }

    /// This span's own field values.
    pub(crate) fn own_fields(&self) -> impl Iterator<Item = (&'static str, &OwnedValue)> {
        self.fields.iter().map(|(n, v)| (*n, v))
    }

    /// Own fields, then the parents' (closest first; a name may repeat: the first wins).
    pub(crate) fn inherited(&self) -> impl Iterator<Item = (&'static str, &OwnedValue)> {
        std::iter::successors(Some(self), |c| c.parent.as_deref()).flat_map(|c| c.own_fields())
    }

    pub(crate) fn shared(self) -> Arc<Self> {
        Arc::new(self)
    }
}

/// Copies field values into a span's context (bounded by `max_fields`) or a span event.
pub(crate) struct SpanVisitor<'a, T: FieldTarget = SpanContext> {
    pub(crate) ctx: &'a mut T,
    /// Longest string kept, in bytes.
    pub(crate) limit: usize,
}

/// A span's own fields, bounded by the attribute limit.
pub(crate) struct Bounded<'a> {
    pub(crate) ctx: &'a mut SpanContext,
    pub(crate) max_fields: usize,
}

impl FieldTarget for Bounded<'_> {
    fn set(&mut self, name: &'static str, value: OwnedValue) {
        self.ctx.set_limited(name, value, self.max_fields);
    }
}

impl<T: FieldTarget> Visit for SpanVisitor<'_, T> {
    fn record_f64(&mut self, field: &TracingField, value: f64) {
        self.ctx.set(field.name(), OwnedValue::F64(value));
    }
    fn record_i64(&mut self, field: &TracingField, value: i64) {
        self.ctx.set(field.name(), OwnedValue::I64(value));
    }
    fn record_u64(&mut self, field: &TracingField, value: u64) {
        self.ctx.set(field.name(), OwnedValue::U64(value));
    }
    fn record_bool(&mut self, field: &TracingField, value: bool) {
        self.ctx.set(field.name(), OwnedValue::Bool(value));
    }
    fn record_str(&mut self, field: &TracingField, value: &str) {
        let cut = cut_point(value, self.limit);
        let text = if cut < value.len() {
            Text::from(format!(
                "{}…[truncated {} of {} bytes]",
                &value[..cut],
                value.len() - cut,
                value.len()
            ))
        } else {
            Text::from(value)
        };
        self.ctx.set(field.name(), OwnedValue::Str(text));
    }
    fn record_debug(&mut self, field: &TracingField, value: &dyn fmt::Debug) {
        let text = Text::format(format_args!("{value:?}"), self.limit);
        self.ctx.set(field.name(), OwnedValue::Str(text));
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
    /// Recycled span contexts (see [`SpanContext::recycle`]).
    static POOL: std::cell::RefCell<Vec<Arc<SpanContext>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Contexts kept per thread for reuse: bounds the pool's memory.
const POOL_SIZE: usize = 64;
/// Contexts of exported spans, waiting for a caller's thread to take them (see
/// [`SpanContext::give_back`]).
static RETURNED: Mutex<Vec<Arc<SpanContext>>> = Mutex::new(Vec::new());
/// How many [`RETURNED`] holds (read without its lock, so empty pools do not contend for it).
static RETURNED_LEN: AtomicUsize = AtomicUsize::new(0);
/// Most contexts [`RETURNED`] holds: bounds its memory.
const RETURNED_MAX: usize = 4096;
/// Contexts a thread's empty pool takes from [`RETURNED`] at once.
const REFILL: usize = 32;
/// A pooled context's field vector is kept only up to this capacity.
const MAX_POOLED_FIELDS: usize = 32;

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Fall back to the address of a stack value mixed with the time.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return t ^ (&bytes as *const _ as u64) | 1;
    }
    u64::from_le_bytes(bytes) | 1
}

/// wyrand: fast, good enough for trace ids (not for secrets).
pub(crate) fn random_u64() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

pub(crate) fn random_u64_nonzero() -> u64 {
    loop {
        let v = random_u64();
        if v != 0 {
            return v;
        }
    }
}

pub(crate) fn random_u128_nonzero() -> u128 {
    loop {
        let v = (u128::from(random_u64()) << 64) | u128::from(random_u64());
        if v != 0 {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(parent: Option<Arc<SpanContext>>) -> Arc<SpanContext> {
        let mut sc = SpanContext::new("s", "t", parent, |_| true, 0, false);
        sc.set("venue", OwnedValue::Str("XNAS".into()));
        sc.ensure_extras();
        Arc::new(sc)
    }

    #[test]
    fn exported_contexts_and_their_last_held_parents_go_back_emptied() {
        let parent = recorded(None);
        let child = recorded(Some(Arc::clone(&parent)));
        child.add_link(1, 2, 8);
        let held = recorded(None);
        let keeps_held = Arc::clone(&held);
        let ptrs = [
            Arc::as_ptr(&parent),
            Arc::as_ptr(&child),
            Arc::as_ptr(&held),
        ];
        drop(parent);
        SpanContext::give_back(&mut vec![child, held]);
        // Other tests' workers give back too: look for ours by address.
        let mut returned = RETURNED.lock().unwrap();
        let ours: Vec<Arc<SpanContext>> = returned
            .extract_if(.., |c| ptrs.contains(&Arc::as_ptr(c)))
            .collect();
        drop(returned);
        // The child and the parent it held last; not the one still referenced elsewhere.
        assert_eq!(ours.len(), 2);
        assert!(ours.iter().all(|c| Arc::as_ptr(c) != ptrs[2]));
        for ctx in &ours {
            assert!(ctx.fields.is_empty() && ctx.parent.is_none() && ctx.keep.is_none());
            assert!(ctx.extras.is_some(), "the event store is kept for reuse");
            assert!(ctx.take_extras().links.is_empty(), "and emptied");
        }
        // The worker's reference to the one still held elsewhere is simply dropped.
        assert_eq!(Arc::strong_count(&keeps_held), 1);
    }

    #[test]
    fn text_is_inline_up_to_its_capacity_and_cut_at_the_limit() {
        assert!(matches!(Text::from("XNAS"), Text::Inline { len: 4, .. }));
        let exact = "x".repeat(Text::INLINE);
        assert!(matches!(Text::from(exact.as_str()), Text::Inline { .. }));
        let long = "y".repeat(Text::INLINE + 1);
        assert!(matches!(Text::from(long.as_str()), Text::Heap(_)));
        assert_eq!(&*Text::from(long.as_str()), long);
        // Formatting spills to the heap past the inline capacity, keeping what came before.
        let t = Text::format(format_args!("{}-{}", "a".repeat(20), "bcdef"), 1_000);
        assert_eq!(&*t, format!("{}-bcdef", "a".repeat(20)));
        // Multi-byte characters are never split, and the limit cuts with a marker.
        let t = Text::format(format_args!("{}", "é".repeat(40)), 21);
        assert!(t.ends_with("…[truncated]"), "{t}");
        assert!(t.len() <= 21 + "…[truncated]".len());
        assert_eq!(Text::from("ok"), Text::from(String::from("ok")));
        let boxed: Box<str> = Text::from("inline").into();
        assert_eq!(&*boxed, "inline");
    }

    fn root_with_fields(root: SpanContext) -> Arc<SpanContext> {
        Arc::new(root)
    }

    #[test]
    fn children_inherit_trace_and_fields() {
        let mut root = SpanContext::new("root", "t", None, |_| true, 0, false);
        root.set("order.cl_ord_id", OwnedValue::Str("C1".into()));
        root.set("audit", OwnedValue::Bool(true));
        let root = root_with_fields(root);
        let mut child =
            SpanContext::new("child", "t", Some(Arc::clone(&root)), |_| false, 1, false);
        child.set("order.cl_ord_id", OwnedValue::Str("C2".into()));
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
        assert!(child.audit);
        let inherited: Vec<_> = child.inherited().collect();
        assert_eq!(inherited.len(), 3, "own first, then the parent's");
        assert_eq!(inherited[0].1, &OwnedValue::Str("C2".into()));
        assert!(child.sampled, "children inherit the root's decision");
        assert_eq!(child.parent_span_id, Some(root.span_id));
        assert_eq!(child.own_fields().count(), 1);
    }

    #[test]
    fn closed_contexts_are_reused_only_when_nothing_else_holds_them() {
        let mut a = SpanContext::new_shared("a", "t", None, |_| false, 0, false);
        Arc::get_mut(&mut a)
            .unwrap()
            .set("venue", OwnedValue::Str("XNAS".into()));
        let first = Arc::as_ptr(&a);
        SpanContext::recycle(a);
        let b = SpanContext::new_shared("b", "t", None, |_| true, 7, false);
        assert_eq!(Arc::as_ptr(&b), first, "reused");
        assert_eq!((b.name, b.start_stamp, b.sampled), ("b", 7, true));
        assert!(b.fields.is_empty(), "nothing of the previous span survives");
        let held = Arc::clone(&b); // e.g. a queued log record
        SpanContext::recycle(b);
        let c = SpanContext::new_shared("c", "t", None, |_| false, 0, false);
        assert_ne!(
            Arc::as_ptr(&c),
            first,
            "a context still held is never reused"
        );
        assert_eq!(held.name, "b");
    }

    #[test]
    fn ids_are_random_and_nonzero() {
        let a = random_u128_nonzero();
        let b = random_u128_nonzero();
        assert_ne!(a, b);
        assert_ne!(random_u64_nonzero(), 0);
    }
}
