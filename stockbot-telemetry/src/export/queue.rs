//! The one bounded queue every signal uses: many producers (the callers' threads), one consumer
//! (the worker). Producers never wait for the consumer: a full queue refuses the item and the
//! caller counts the drop. Part of the capacity is reserved for audit-class items.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::accounting::DropReason;

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
    /// Bumped by `notify` so a wake-up is never lost between checking and waiting.
    wakeups: u64,
}

/// A bounded multi-producer, single-consumer queue.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    limits: QueueLimits,
}

impl<T> Queue<T> {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(limits.capacity.min(4096)),
                bytes: 0,
                wakeups: 0,
            }),
            ready: Condvar::new(),
            limits,
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
        let limit = if audit {
            self.limits.capacity
        } else {
            self.limits.capacity - self.limits.audit_reserve
        };
        if s.items.len() >= limit {
            return Err((item, DropReason::QueueFull));
        }
        if s.bytes + bytes > self.limits.max_bytes && !s.items.is_empty() {
            return Err((item, DropReason::QueueBytes));
        }
        s.items.push_back((item, bytes));
        s.bytes += bytes;
        if s.items.len() == self.limits.wake_at {
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
        if s.items.len() >= self.limits.wake_at || s.wakeups != seen {
            return s.wakeups;
        }
        let (s, _) = self
            .ready
            .wait_timeout_while(s, timeout, |s| {
                s.items.len() < self.limits.wake_at && s.wakeups == seen
            })
            .unwrap_or_else(|p| p.into_inner());
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
