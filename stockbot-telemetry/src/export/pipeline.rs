//! State shared by the callers' threads, the worker and the guard.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::accounting::{Accounting, DropReason, PipelineStats};
use super::queue::Queue;

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
            c = self
                .control_cv
                .wait_timeout(c, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
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
        self.closed.store(true, Ordering::Release);
        self.control().dead = true;
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
