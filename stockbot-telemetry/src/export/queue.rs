//! The one bounded queue every signal uses: many producers (the callers' threads), one consumer
//! (the worker). Producers never wait for the consumer: a full queue refuses the item and the
//! caller counts the drop. Part of the capacity is reserved for audit-class items.

use std::collections::VecDeque;
use std::time::Duration;

use super::accounting::DropReason;
use super::sync::{Condvar, Mutex, MutexGuard, wait_timeout_while};

/// Capacity settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    /// Most items held.
    pub(crate) capacity: usize,
    /// Part of `capacity` only audit items may use.
    pub(crate) audit_reserve: usize,
    /// Most bytes held (as reported by the producer per item).
    pub(crate) max_bytes: usize,
    /// Wake the consumer early once this many items wait.
    pub(crate) wake_at: usize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    /// Set (under the lock) when the consumer stops: pushes are refused with this reason, so
    /// nothing can be accepted after the consumer's last drain.
    closed: Option<DropReason>,
    /// Bumped by `notify` so a wake-up is never lost between checking and waiting.
    wakeups: u64,
}

/// A bounded multi-producer, single-consumer queue.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    limits: QueueLimits,
    /// Non-audit items may fill the queue up to these; audit items up to the full limits.
    normal_items: usize,
    normal_bytes: usize,
    /// The consumer is woken when this many items, or half the byte bound, are waiting
    /// (always reached before anything is refused).
    wake_items: usize,
}

impl<T> Queue<T> {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        let normal_items = limits.capacity.saturating_sub(limits.audit_reserve).max(1);
        let reserve_share = limits.audit_reserve as f64 / limits.capacity.max(1) as f64;
        let normal_bytes = (limits.max_bytes as f64 * (1.0 - reserve_share)) as usize;
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(limits.capacity.min(4096)),
                bytes: 0,
                closed: None,
                wakeups: 0,
            }),
            ready: Condvar::new(),
            limits,
            normal_items,
            normal_bytes,
            wake_items: limits.wake_at.clamp(1, normal_items),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the queue inconsistent (every update is
        // a single push/pop plus counters), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an item, or gives it back with the reason it was refused.
    pub(crate) fn push(&self, item: T, bytes: usize, audit: bool) -> Result<(), (T, DropReason)> {
        let mut s = self.lock();
        if let Some(reason) = s.closed {
            return Err((item, reason));
        }
        let (item_limit, byte_limit) = if audit {
            (self.limits.capacity, self.limits.max_bytes)
        } else {
            (self.normal_items, self.normal_bytes)
        };
        if s.items.len() >= item_limit {
            return Err((item, DropReason::QueueFull));
        }
        if s.bytes + bytes > byte_limit && !s.items.is_empty() {
            return Err((item, DropReason::QueueBytes));
        }
        let half = self.limits.max_bytes / 2;
        let crossed_half = s.bytes < half && s.bytes + bytes >= half;
        s.items.push_back((item, bytes));
        s.bytes += bytes;
        if s.items.len() == self.wake_items || crossed_half {
            drop(s);
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Moves up to `max` items into `out`; returns how many.
    pub(crate) fn drain_into(&self, out: &mut Vec<T>, max: usize) -> usize {
        let mut s = self.lock();
        let n = s.items.len().min(max);
        let mut freed = 0;
        out.extend(s.items.drain(..n).map(|(item, bytes)| {
            freed += bytes;
            item
        }));
        s.bytes -= freed;
        n
    }

    /// Refuses every later push with `reason`; returns what was still queued.
    pub(crate) fn close(&self, reason: DropReason) -> Vec<T> {
        let mut s = self.lock();
        s.closed.get_or_insert(reason);
        s.bytes = 0;
        s.wakeups += 1;
        let rest = s.items.drain(..).map(|(item, _)| item).collect();
        drop(s);
        self.ready.notify_one();
        rest
    }

    /// Refuses every later push with `reason`, keeping what is queued for the consumer.
    pub(crate) fn stop_intake(&self, reason: DropReason) {
        self.lock().closed.get_or_insert(reason);
        self.notify();
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Wakes the consumer (flush, shutdown).
    pub(crate) fn notify(&self) {
        self.lock().wakeups += 1;
        self.ready.notify_one();
    }

    /// Consumer side: waits until `wake_at` items wait, `notify` was called since `seen`, or
    /// `timeout` passed. Returns the current wake-up count.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let s = self.lock();
        if s.items.len() >= self.wake_items || s.wakeups != seen {
            return s.wakeups;
        }
        let s = wait_timeout_while(&self.ready, s, timeout, |s| {
            s.items.len() < self.wake_items && s.wakeups == seen
        });
        s.wakeups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn limits(capacity: usize, audit_reserve: usize) -> QueueLimits {
        QueueLimits {
            capacity,
            audit_reserve,
            max_bytes: 1 << 20,
            wake_at: 4,
        }
    }

    #[test]
    fn audit_items_use_the_reserve() {
        let q = Queue::new(limits(4, 2));
        assert!(q.push(1, 1, false).is_ok());
        assert!(q.push(2, 1, false).is_ok());
        assert_eq!(q.push(3, 1, false).unwrap_err().1, DropReason::QueueFull);
        assert!(q.push(4, 1, true).is_ok());
        assert!(q.push(5, 1, true).is_ok());
        assert_eq!(q.push(6, 1, true).unwrap_err().1, DropReason::QueueFull);
        let mut out = Vec::new();
        assert_eq!(q.drain_into(&mut out, 10), 4);
        assert_eq!(out, vec![1, 2, 4, 5]);
    }

    #[test]
    fn a_closed_queue_refuses_with_its_reason_and_hands_back_the_rest() {
        let q = Queue::new(limits(10, 0));
        assert!(q.push(1, 1, false).is_ok());
        q.stop_intake(DropReason::Shutdown);
        assert_eq!(q.push(2, 1, true).unwrap_err().1, DropReason::Shutdown);
        assert_eq!(q.len(), 1);
        assert_eq!(q.close(DropReason::WorkerDead), vec![1]);
        assert_eq!(
            q.push(3, 1, false).unwrap_err().1,
            DropReason::Shutdown,
            "first reason stays"
        );
    }

    #[test]
    fn the_consumer_is_woken_before_anything_is_refused() {
        // Reserve larger than the batch threshold: the wake-up still happens.
        let q = Arc::new(Queue::new(QueueLimits {
            capacity: 10,
            audit_reserve: 8,
            max_bytes: 1 << 20,
            wake_at: 5,
        }));
        let q2 = Arc::clone(&q);
        let t = std::thread::spawn(move || q2.wait(0, Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(q.push(1, 1, false).is_ok());
        assert!(q.push(2, 1, false).is_ok());
        assert_eq!(
            t.join().unwrap(),
            0,
            "woken by the item count, not by notify"
        );
    }

    #[test]
    fn byte_bound_is_enforced() {
        let q = Queue::new(QueueLimits {
            capacity: 100,
            audit_reserve: 0,
            max_bytes: 10,
            wake_at: 50,
        });
        assert!(q.push("a", 6, false).is_ok());
        assert_eq!(q.push("b", 6, false).unwrap_err().1, DropReason::QueueBytes);
        let mut out = Vec::new();
        q.drain_into(&mut out, 1);
        assert!(q.push("c", 6, false).is_ok());
    }

    #[test]
    fn many_producers_lose_nothing_that_was_accepted() {
        let q = Arc::new(Queue::new(limits(1000, 0)));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    (0..10_000)
                        .filter(|i| q.push(t * 100_000 + i, 1, false).is_ok())
                        .count()
                })
            })
            .collect();
        let mut got = Vec::new();
        let mut seen = 0;
        while threads.iter().any(|t| !t.is_finished()) {
            seen = q.wait(seen, Duration::from_millis(1));
            q.drain_into(&mut got, usize::MAX);
        }
        let accepted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        q.drain_into(&mut got, usize::MAX);
        assert_eq!(got.len(), accepted);
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), accepted);
    }

    #[test]
    fn notify_wakes_a_waiting_consumer() {
        let q = Arc::new(Queue::<u8>::new(limits(10, 0)));
        let q2 = Arc::clone(&q);
        let t = std::thread::spawn(move || q2.wait(0, Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        q.notify();
        assert_eq!(t.join().unwrap(), 1);
    }
}
