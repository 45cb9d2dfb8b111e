//! State shared by the callers' threads, the worker and the guard.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::accounting::{Accounting, DropReason, PipelineStats};
use super::queue::Queue;
use super::sync::{AtomicBool, Condvar, Mutex, MutexGuard, wait_timeout};

/// What a pipeline carries: log records, span records.
pub(crate) trait Item: Send + 'static {
    /// Approximate memory held, for the queue's byte bound.
    fn size_bytes(&self) -> usize;
    /// Audit-class items may use the reserved capacity.
    fn is_audit(&self) -> bool;
}

#[derive(Debug, Default)]
struct Control {
    flush_requested: u64,
    flush_completed: u64,
    /// Whether the sinks finished the last completed flush (network sinks may not, by the
    /// deadline).
    flush_ok: bool,
    /// When the latest flush or shutdown caller stops waiting.
    deadline: Option<Instant>,
    shutdown: bool,
    exited: bool,
    /// The worker died from a panic (a bug): nothing more will be written.
    dead: bool,
}

/// One signal's pipeline: the bounded queue, the drop accounting, and the flush/shutdown
/// handshake with its worker.
pub(crate) struct Pipeline<T> {
    pub(crate) queue: Queue<T>,
    pub(crate) acct: Arc<Accounting>,
    pub(crate) flush_interval: Duration,
    closed: AtomicBool,
    control: Mutex<Control>,
    control_cv: Condvar,
}

impl<T> std::fmt::Debug for Pipeline<T> {
    // Never the queued records: they may hold values not yet redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// `timeout` from now (a year when it overflows).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(86_400 * 365))
}

impl<T: Item> Pipeline<T> {
    /// Hands a captured item to the worker; never blocks, never fails: a refused item is
    /// counted.
    pub(crate) fn submit(&self, rec: T) {
        self.acct.emitted.fetch_add(1, Ordering::Relaxed);
        let size = rec.size_bytes();
        let audit = rec.is_audit();
        if let Err((_, reason)) = self.queue.push(rec, size, audit) {
            self.acct.dropped(reason);
        }
    }
}

impl<T> Pipeline<T> {
    pub(crate) fn new(queue: Queue<T>, acct: Accounting, flush_interval: Duration) -> Self {
        Pipeline {
            queue,
            acct: Arc::new(acct),
            flush_interval,
            closed: AtomicBool::new(false),
            control: Mutex::new(Control::default()),
            control_cv: Condvar::new(),
        }
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        let mut stats = self.acct.snapshot(self.queue.len() as u64);
        stats.worker_alive = !self.control().exited;
        stats
    }

    /// A cheap hint for the caller's thread (the queue itself refuses records after close).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The reason records are refused once closed.
    pub(crate) fn closed_reason(&self) -> DropReason {
        if self.control().dead {
            DropReason::WorkerDead
        } else {
            DropReason::Shutdown
        }
    }

    /// Waits until everything submitted before the call is written (or `timeout` passes).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let epoch = {
            let mut c = self.control();
            if c.exited {
                return !c.dead && self.queue.len() == 0;
            }
            c.flush_requested += 1;
            c.deadline = Some(deadline_after(timeout));
            c.flush_requested
        };
        self.queue.notify();
        self.wait_control(timeout, |c| c.flush_completed >= epoch || c.exited) && {
            let c = self.control();
            !c.dead && (c.flush_completed < epoch || c.flush_ok)
        }
    }

    /// Stops accepting records, lets the worker write what it holds, and waits for it to exit
    /// (or `timeout`). Returns whether the worker finished.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        self.closed.store(true, Ordering::Release);
        // Refused under the queue's lock from now on, before the worker learns of the shutdown:
        // nothing can slip in after its last drain.
        self.queue.stop_intake(DropReason::Shutdown);
        {
            let mut c = self.control();
            c.shutdown = true;
            c.deadline = Some(deadline_after(timeout));
        }
        self.queue.notify();
        let finished = self.wait_control(timeout, |c| c.exited);
        finished && !self.control().dead
    }

    fn wait_control(&self, timeout: Duration, done: impl Fn(&Control) -> bool) -> bool {
        let deadline = deadline_after(timeout);
        let mut c = self.control();
        loop {
            if done(&c) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            c = wait_timeout(&self.control_cv, c, deadline - now);
        }
    }

    /// Worker side: takes what is queued, in chunks of at most `chunk`, marks it in flight and
    /// hands each chunk to `each`. A bounded round takes only what was queued when it began,
    /// so that under sustained load flushes and housekeeping still happen; the final round
    /// (intake stopped) takes everything.
    pub(crate) fn drain_round(
        &self,
        bounded: bool,
        chunk: usize,
        buf: &mut Vec<T>,
        mut each: impl FnMut(&mut Vec<T>),
    ) {
        let mut budget = if bounded {
            self.queue.len()
        } else {
            usize::MAX
        };
        while budget > 0 {
            buf.clear();
            let n = self.queue.drain_into(buf, chunk.min(budget));
            if n == 0 {
                break;
            }
            budget -= n;
            self.acct.in_flight.fetch_add(n as u64, Ordering::Relaxed);
            each(buf);
        }
    }

    /// Worker side: the flush epoch to complete this round, whether to stop, and when the
    /// waiting caller gives up.
    pub(crate) fn worker_round(&self) -> (u64, bool, Option<Instant>) {
        let c = self.control();
        (c.flush_requested, c.shutdown, c.deadline)
    }

    /// Worker side: the flushes up to `epoch` are done; `ok`: the sinks finished them.
    pub(crate) fn flush_done(&self, epoch: u64, ok: bool) {
        let mut c = self.control();
        if epoch > c.flush_completed {
            c.flush_completed = epoch;
            c.flush_ok = ok;
        }
        drop(c);
        self.control_cv.notify_all();
    }

    pub(crate) fn worker_exited(&self) {
        self.closed.store(true, Ordering::Release);
        self.queue.stop_intake(DropReason::Shutdown);
        self.control().exited = true;
        self.control_cv.notify_all();
    }

    /// The worker panicked outside the per-record guards: account for everything it held or
    /// that is still queued, refuse new records (counted as `worker_dead`), and say so once.
    pub(crate) fn worker_died(&self) {
        // `dead` before `closed`: a caller that sees `closed` counts `closed_reason()`, which
        // must then say `worker_dead`, not `shutdown` (found by tests/loom_queue.rs).
        self.control().dead = true;
        self.closed.store(true, Ordering::Release);
        self.acct.worker_panics.fetch_add(1, Ordering::Relaxed);
        let in_flight = self.acct.in_flight.swap(0, Ordering::AcqRel);
        for sink in &self.acct.sinks {
            sink.dropped(DropReason::WorkerPanic, in_flight);
        }
        for _ in self.queue.close(DropReason::WorkerDead) {
            self.acct.dropped(DropReason::WorkerDead);
        }
        eprintln!(
            "stockbot-telemetry: the log worker thread panicked; further log records are counted as dropped (worker_dead)"
        );
        self.control().exited = true;
        self.control_cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    //! The real timed waits, which the loom model (`tests/loom_queue.rs`) cannot reach: a
    //! consumer that follows the worker's protocol with a 1 ms flush interval (its `wait` times
    //! out all the time), producers emitting unique ids, flushes with long and very short
    //! timeouts, and a shutdown while the producers carry on. Every record is written once or
    //! refused and counted, exactly.

    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::time::Duration;

    // `super::super`, not `crate::export`: tests/loom_queue.rs includes this file (its
    // `#[test]` functions are not built there, the rest is).
    use super::super::queue::QueueLimits;
    use super::{Accounting, DropReason, Item, Pipeline, Queue};

    thread_local! {
        /// Records destroyed on this thread without being written: on a producer's thread,
        /// exactly the ones the pipeline refused (dropped inside `submit`).
        static UNWRITTEN_HERE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    }

    struct Rec {
        id: u64,
        audit: bool,
        written: bool,
    }

    impl Item for Rec {
        fn size_bytes(&self) -> usize {
            // Mostly small, now and then large: both the item and the byte bound refuse.
            if self.id.is_multiple_of(50) {
                1_000
            } else {
                10
            }
        }
        fn is_audit(&self) -> bool {
            self.audit
        }
    }

    impl Drop for Rec {
        fn drop(&mut self) {
            if !self.written {
                UNWRITTEN_HERE.with(|d| d.borrow_mut().push(self.id));
            }
        }
    }

    /// The sink: ids written, and how many came a second time.
    #[derive(Default)]
    struct Sink {
        written: std::sync::Mutex<(HashSet<u64>, u64)>,
    }

    /// The worker's protocol (`worker.rs::Worker::run`, as `tests/loom_queue.rs` models it),
    /// then `worker_exited`. Returns the records it destroyed unwritten (none, if nothing is
    /// lost).
    fn consume(p: &Pipeline<Rec>, sink: &Sink) -> Vec<u64> {
        let mut seen = 0;
        let mut records = Vec::new();
        loop {
            let (epoch, shutdown, _) = p.worker_round();
            p.drain_round(!shutdown, 16, &mut records, |chunk| {
                let n = chunk.len() as u64;
                let mut w = sink.written.lock().unwrap();
                for mut rec in chunk.drain(..) {
                    rec.written = true;
                    if !w.0.insert(rec.id) {
                        w.1 += 1;
                    }
                }
                drop(w);
                p.acct.sinks[0].written(n);
                p.acct.in_flight.fetch_sub(n, Relaxed);
            });
            p.flush_done(epoch, true);
            if shutdown {
                break;
            }
            seen = p.queue.wait(seen, p.flush_interval);
        }
        p.worker_exited();
        drop(records);
        UNWRITTEN_HERE.take()
    }

    /// A caller's thread as `collect/layer.rs` emits: the closed check, then `submit`.
    fn emit(p: &Pipeline<Rec>, rec: Rec) {
        if p.is_closed() {
            p.acct.emitted.fetch_add(1, Relaxed);
            p.acct.dropped(p.closed_reason());
            return;
        }
        p.submit(rec);
    }

    #[test]
    fn emit_flush_and_shutdown_race_with_real_timeouts() {
        const PRODUCERS: u64 = 4;
        const PER_PRODUCER: u64 = 20_000;
        let p = Arc::new(Pipeline::new(
            Queue::new(QueueLimits {
                capacity: 64,
                audit_reserve: 8,
                max_bytes: 2_000,
                wake_at: 16,
            }),
            Accounting::new(["sink".to_owned()]),
            Duration::from_millis(1),
        ));
        let sink = Arc::new(Sink::default());
        let consumer = {
            let (p, sink) = (Arc::clone(&p), Arc::clone(&sink));
            std::thread::spawn(move || consume(&p, &sink))
        };
        let progress = Arc::new(AtomicU64::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|t| {
                let (p, sink, progress) =
                    (Arc::clone(&p), Arc::clone(&sink), Arc::clone(&progress));
                std::thread::spawn(move || {
                    let mut unchecked = Vec::new();
                    let mut long_flushes = 0;
                    for i in 0..PER_PRODUCER {
                        let id = t * 1_000_000 + i;
                        let rec = Rec {
                            id,
                            audit: i.is_multiple_of(7),
                            written: false,
                        };
                        emit(&p, rec);
                        unchecked.push(id);
                        progress.fetch_add(1, Relaxed);
                        // Every 500 records, at a different point on each thread.
                        if (i + t * 131).is_multiple_of(500) {
                            // A very short flush may time out; a long one must succeed (the
                            // worker lives until the shutdown, and a flush after it has exited
                            // succeeds too) — a hang would show here as `false` after 10 s.
                            let _ = p.flush(Duration::from_micros(50));
                            assert!(p.flush(Duration::from_secs(10)), "a flush timed out");
                            long_flushes += 1;
                            let refused: HashSet<u64> =
                                UNWRITTEN_HERE.with(|d| d.borrow().iter().copied().collect());
                            let missing: Vec<u64> = {
                                let written = &sink.written.lock().unwrap().0;
                                unchecked
                                    .drain(..)
                                    .filter(|id| !written.contains(id) && !refused.contains(id))
                                    .collect()
                            };
                            assert!(
                                missing.is_empty(),
                                "emitted before a successful flush, neither written nor \
                                 refused: {missing:?}"
                            );
                        }
                    }
                    assert!(long_flushes > 0);
                    UNWRITTEN_HERE.take()
                })
            })
            .collect();

        // Shut down a third of the way, while the producers carry on (or at once if one of
        // them failed).
        while progress.load(Relaxed) < PRODUCERS * PER_PRODUCER / 3
            && !producers.iter().any(|t| t.is_finished())
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            p.shutdown(Duration::from_secs(30)),
            "the worker did not finish"
        );
        let after = p.stats();
        assert_eq!(after.buffered(), 0, "{after:?}");
        assert!(!after.worker_alive);
        let written_at_shutdown = sink.written.lock().unwrap().0.len();

        let mut refused = HashSet::new();
        for producer in producers {
            for id in producer.join().unwrap() {
                assert!(refused.insert(id), "{id} refused twice");
            }
        }
        assert_eq!(
            consumer.join().unwrap(),
            Vec::<u64>::new(),
            "lost by the worker"
        );
        let (written, twice) = std::mem::take(&mut *sink.written.lock().unwrap());
        assert_eq!(twice, 0, "records written twice");
        assert_eq!(
            written.len(),
            written_at_shutdown,
            "written after shutdown returned"
        );
        assert!(written.is_disjoint(&refused), "written and refused");

        let stats = p.stats();
        let emitted = PRODUCERS * PER_PRODUCER;
        assert_eq!(stats.emitted, emitted, "{stats:?}");
        assert_eq!(written.len() as u64 + refused.len() as u64, emitted);
        assert_eq!(stats.sinks[0].written, written.len() as u64, "{stats:?}");
        assert_eq!(stats.dropped_total(), refused.len() as u64, "{stats:?}");
        let expected: u64 = [
            DropReason::QueueFull,
            DropReason::QueueBytes,
            DropReason::Shutdown,
        ]
        .iter()
        .map(|r| stats.dropped[r.as_str()])
        .sum();
        assert_eq!(
            expected,
            refused.len() as u64,
            "other drop reasons: {stats:?}"
        );
        assert_eq!(stats.sinks[0].dropped_total(), 0, "{stats:?}");
        assert_eq!(stats.buffered(), 0, "{stats:?}");
        assert!(stats.accounted_for(), "{stats:?}");
    }
}
