//! The SDK's own `tracing` subscriber: what [`init`](crate::init) installs and
//! [`TelemetryBuilder::build_dispatch`](crate::TelemetryBuilder::build_dispatch) returns.
//!
//! It does what `tracing_subscriber::registry().with(TelemetryLayer)` does, without the
//! registry: a span's id names a slot of one process-wide table holding the span's context, and
//! the current-span stack is a plain thread-local vector. Opening and closing a span takes a
//! slot from (and gives it back to) a per-thread free list — no allocation in the steady state
//! and one uncontended lock per lookup, where the registry inserts a boxed extension into a map
//! per span and looks the span up once per layer callback.
//!
//! Ids carry a generation, so a stale id (a span closed since) finds nothing instead of another
//! span's data. The table grows in pages of [`PAGE`] slots up to [`MAX_SPANS`] live spans;
//! pages are never returned (the table's memory is that of the most spans ever open at once).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, LevelFilter, Metadata, Subscriber};

use super::layer::TelemetryLayer;
use super::span::SpanContext;

/// Slots per page of the span table.
const PAGE: usize = 4096;
/// Pages of the span table.
const PAGES: usize = 1024;
/// Live spans the table holds (4 Mi); a span opened past it is not recorded (and counted).
pub(crate) const MAX_SPANS: usize = PAGE * PAGES;

/// What [`init`](crate::init) installs: the [`TelemetryLayer`]'s behaviour with its own span
/// store.
#[derive(Debug)]
pub(crate) struct TelemetrySubscriber {
    pub(crate) layer: TelemetryLayer,
    /// Tags this subscriber's entries on the shared per-thread span stack.
    uid: u32,
}

impl TelemetrySubscriber {
    pub(crate) fn new(layer: TelemetryLayer) -> Self {
        static NEXT_UID: AtomicU32 = AtomicU32::new(1);
        TelemetrySubscriber {
            layer,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The context of span `id` of this subscriber.
    pub(crate) fn context(&self, id: &Id) -> Option<Arc<SpanContext>> {
        Slot::of(id)?.read(id, |inner| inner.ctx.clone()).flatten()
    }

    /// Replaces span `id`'s context with `f(current)`.
    pub(crate) fn update(&self, id: &Id, f: impl FnOnce(&SpanContext) -> Arc<SpanContext>) {
        let Some(current) = self.context(id) else {
            return;
        };
        // Built outside the slot's lock: `f` may format user values.
        let next = f(&current);
        if let Some(slot) = Slot::of(id) {
            slot.write(id, |inner| {
                if inner.ctx.is_some() {
                    inner.ctx = Some(next);
                }
            });
        }
    }

    /// The innermost span this subscriber entered on this thread.
    fn current_id(&self) -> Option<Id> {
        STACK
            .try_with(|stack| {
                let stack = stack.try_borrow().ok()?;
                stack
                    .iter()
                    .rev()
                    .find(|(uid, _)| *uid == self.uid)
                    .map(|&(_, id)| Id::from_u64(id))
            })
            .ok()
            .flatten()
    }

    fn parent_of(&self, explicit: Option<&Id>, is_contextual: bool) -> Option<Arc<SpanContext>> {
        match explicit {
            Some(id) => self.context(id),
            None if is_contextual => self.context(&self.current_id()?),
            None => None,
        }
    }
}

impl Subscriber for TelemetrySubscriber {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        self.layer.interest(meta)
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.layer.logs.filter.enabled(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.layer.logs.filter.max_level())
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let parent = self.parent_of(attrs.parent(), attrs.is_contextual());
        let ctx = self.layer.open(attrs, parent);
        match insert(ctx, attrs.metadata()) {
            Ok(id) => id,
            Err(ctx) => {
                self.layer.lost(&ctx);
                Id::from_u64(LOST)
            }
        }
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.update(span, |current| self.layer.recorded(current, values));
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        if let (Some(span), Some(cause)) = (self.context(span), self.context(follows)) {
            self.layer.follows(&span, &cause);
        }
    }

    fn event(&self, event: &Event<'_>) {
        let span = if self.layer.pipeline.is_closed() {
            None
        } else {
            self.parent_of(event.parent(), event.is_contextual())
        };
        self.layer.event(event, span);
    }

    fn enter(&self, span: &Id) {
        let _ = STACK.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut() {
                stack.push((self.uid, span.into_u64()));
            }
        });
    }

    fn exit(&self, span: &Id) {
        let _ = STACK.try_with(|stack| {
            if let Ok(mut stack) = stack.try_borrow_mut()
                && let Some(at) = stack
                    .iter()
                    .rposition(|&(uid, id)| uid == self.uid && id == span.into_u64())
            {
                stack.remove(at);
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        if let Some(slot) = Slot::of(id) {
            slot.write(id, |inner| inner.refs += 1);
        }
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let Some(slot) = Slot::of(&id) else {
            return false;
        };
        let closed = slot
            .write(&id, |inner| {
                inner.refs = inner.refs.saturating_sub(1);
                if inner.refs > 0 {
                    return None;
                }
                inner.generation = inner.generation.wrapping_add(1);
                inner.meta = None;
                inner.ctx.take()
            })
            .flatten();
        match closed {
            Some(ctx) => {
                release(index(&id));
                self.layer.finish(ctx);
                true
            }
            None => false,
        }
    }

    fn current_span(&self) -> Current {
        let Some(id) = self.current_id() else {
            return Current::none();
        };
        match Slot::of(&id).and_then(|slot| slot.read(&id, |inner| inner.meta).flatten()) {
            Some(meta) => Current::new(id, meta),
            None => Current::none(),
        }
    }
}

/// The id of a span that got no slot: every lookup of it finds nothing.
const LOST: u64 = u64::MAX;

#[derive(Default)]
struct Slot {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: u32,
    /// Handles to the span (`Span` values and clones of its id).
    refs: u32,
    meta: Option<&'static Metadata<'static>>,
    ctx: Option<Arc<SpanContext>>,
}

static TABLE: [OnceLock<Box<[Slot]>>; PAGES] = [const { OnceLock::new() }; PAGES];
/// Slots never handed out yet start here.
static NEXT: AtomicU32 = AtomicU32::new(0);
/// Free slots given back by threads whose own lists are full or that exited.
static SPARE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A thread's free slots (most recently freed last: reused first, still in cache).
struct FreeList(Vec<u32>);

/// A thread's list keeps this many free slots before giving half to [`SPARE`].
const FREE_MAX: usize = 256;

impl Drop for FreeList {
    fn drop(&mut self) {
        give_back(self.0.drain(..));
    }
}

thread_local! {
    static FREE: RefCell<FreeList> = const { RefCell::new(FreeList(Vec::new())) };
    /// Spans entered on this thread, innermost last: (subscriber, span id).
    static STACK: RefCell<Vec<(u32, u64)>> = const { RefCell::new(Vec::new()) };
}

fn give_back(slots: impl Iterator<Item = u32>) {
    SPARE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(slots);
}

fn index(id: &Id) -> u32 {
    ((id.into_u64() & u64::from(u32::MAX)) - 1) as u32
}

impl Slot {
    /// The slot span `id` names (whatever its generation).
    fn of(id: &Id) -> Option<&'static Slot> {
        let raw = id.into_u64();
        if raw == LOST || raw & u64::from(u32::MAX) == 0 {
            return None;
        }
        let index = index(id) as usize;
        TABLE.get(index / PAGE)?.get()?.get(index % PAGE)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `f` on the slot when it still holds span `id`.
    fn read<R>(&self, id: &Id, f: impl FnOnce(&Inner) -> R) -> Option<R> {
        let inner = self.lock();
        (inner.ctx.is_some() && inner.generation == (id.into_u64() >> 32) as u32).then(|| f(&inner))
    }

    fn write<R>(&self, id: &Id, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
        let mut inner = self.lock();
        (inner.ctx.is_some() && inner.generation == (id.into_u64() >> 32) as u32)
            .then(|| f(&mut inner))
    }
}

/// Stores a new span's context; gives it back when the table is full.
fn insert(ctx: Arc<SpanContext>, meta: &'static Metadata<'static>) -> Result<Id, Arc<SpanContext>> {
    let Some(index) = acquire() else {
        return Err(ctx);
    };
    let i = index as usize;
    let page = TABLE[i / PAGE].get_or_init(|| (0..PAGE).map(|_| Slot::default()).collect());
    let mut inner = page[i % PAGE].lock();
    inner.refs = 1;
    inner.meta = Some(meta);
    inner.ctx = Some(ctx);
    Ok(Id::from_u64(
        (u64::from(inner.generation) << 32) | (u64::from(index) + 1),
    ))
}

/// A free slot: this thread's, else a batch from [`SPARE`], else one never used.
fn acquire() -> Option<u32> {
    let local = FREE
        .try_with(|free| {
            let mut free = free.try_borrow_mut().ok()?;
            if let Some(index) = free.0.pop() {
                return Some(index);
            }
            let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
            let take = spare.len().min(FREE_MAX / 4);
            let from = spare.len() - take;
            free.0.extend(spare.drain(from..));
            free.0.pop()
        })
        .ok()
        .flatten();
    local.or_else(|| {
        NEXT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            ((n as usize) < MAX_SPANS).then_some(n + 1)
        })
        .ok()
        .or_else(|| {
            // The table is full of never-freed slots: only spares can help now.
            SPARE.lock().unwrap_or_else(PoisonError::into_inner).pop()
        })
    })
}

/// Returns a closed span's slot to this thread's free list.
fn release(index: u32) {
    let kept = FREE
        .try_with(|free| {
            let Ok(mut free) = free.try_borrow_mut() else {
                return false;
            };
            if free.0.len() >= FREE_MAX {
                let half = free.0.len() / 2;
                give_back(free.0.drain(..half));
            }
            free.0.push(index);
            true
        })
        .unwrap_or(false);
    if !kept {
        give_back(std::iter::once(index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_a_slot_and_a_generation() {
        let id = Id::from_u64((7 << 32) | 5);
        assert_eq!(index(&id), 4);
        assert!(Slot::of(&Id::from_u64(LOST)).is_none());
        // A page never allocated: no slot.
        assert!(Slot::of(&Id::from_u64((MAX_SPANS as u64) - 1)).is_none());
    }

    #[test]
    fn free_slots_are_reused_by_the_thread_that_freed_them() {
        let a = acquire().unwrap();
        release(a);
        assert_eq!(acquire(), Some(a));
        release(a);
    }
}
