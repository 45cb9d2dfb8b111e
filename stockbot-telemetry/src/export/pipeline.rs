//! State shared by the callers' threads, the worker and the guard.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::accounting::{Accounting, DropReason, PipelineStats};
use super::queue::Queue;
use crate::collect::clock::RecordClock;
use crate::collect::filter::SharedFilter;
use crate::collect::record::LogRecord;
use crate::process::sample::Sampler;

#[derive(Debug, Default)]
struct Control {
    flush_requested: u64,
    flush_completed: u64,
    shutdown: bool,
    exited: bool,
    /// The worker died from a panic (a bug): nothing more will be written.
    dead: bool,
}

/// One signal's pipeline.
pub(crate) struct Pipeline {
    pub(crate) queue: Queue<LogRecord>,
    pub(crate) acct: Accounting,
    pub(crate) clock: std::sync::Arc<RecordClock>,
    pub(crate) filter: SharedFilter,
    pub(crate) sampler: Sampler,
    pub(crate) max_field_bytes: usize,
    pub(crate) flush_interval: Duration,
    closed: AtomicBool,
    control: Mutex<Control>,
    control_cv: Condvar,
}

impl std::fmt::Debug for Pipeline {
    // Never the queued records: they may hold values not yet redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub(crate) fn new(
        queue: Queue<LogRecord>,
        acct: Accounting,
        clock: std::sync::Arc<RecordClock>,
        filter: SharedFilter,
        sampler: Sampler,
        max_field_bytes: usize,
        flush_interval: Duration,
    ) -> Self {
        Pipeline {
            queue,
            acct,
            clock,
            filter,
            sampler,
            max_field_bytes,
            flush_interval,
            closed: AtomicBool::new(false),
            control: Mutex::new(Control::default()),
            control_cv: Condvar::new(),
        }
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a captured record to the worker; never blocks, never fails: a refused record is
    /// counted.
    pub(crate) fn submit(&self, rec: LogRecord) {
        self.acct.emitted.fetch_add(1, Ordering::Relaxed);
        let size = rec.size_bytes();
        let audit = rec.is_audit();
        if let Err((_, reason)) = self.queue.push(rec, size, audit) {
            self.acct.dropped(reason);
        }
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
            c.flush_requested
        };
        self.queue.notify();
        self.wait_control(timeout, |c| c.flush_completed >= epoch || c.exited)
            && !self.control().dead
    }

    /// Stops accepting records, lets the worker write what it holds, and waits for it to exit
    /// (or `timeout`). Returns whether the worker finished.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        self.closed.store(true, Ordering::Release);
        // Refused under the queue's lock from now on, before the worker learns of the shutdown:
        // nothing can slip in after its last drain.
        self.queue.stop_intake(DropReason::Shutdown);
        self.control().shutdown = true;
        self.queue.notify();
        let finished = self.wait_control(timeout, |c| c.exited);
        finished && !self.control().dead
    }

    fn wait_control(&self, timeout: Duration, done: impl Fn(&Control) -> bool) -> bool {
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
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

    /// Worker side: the flush epoch to complete this round and whether to stop.
    pub(crate) fn worker_round(&self) -> (u64, bool) {
        let c = self.control();
        (c.flush_requested, c.shutdown)
    }

    pub(crate) fn flush_done(&self, epoch: u64) {
        let mut c = self.control();
        if epoch > c.flush_completed {
            c.flush_completed = epoch;
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
