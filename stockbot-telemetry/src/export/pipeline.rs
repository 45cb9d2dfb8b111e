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
        if self.closed.load(Ordering::Acquire) {
            self.acct.dropped(DropReason::Shutdown);
            return;
        }
        let size = rec.size_bytes();
        let audit = rec.is_audit();
        if let Err((_, reason)) = self.queue.push(rec, size, audit) {
            self.acct.dropped(reason);
        }
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        self.acct.snapshot(self.queue.len() as u64)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Waits until everything submitted before the call is written (or `timeout` passes).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let epoch = {
            let mut c = self.control();
            if c.exited {
                return self.queue.len() == 0;
            }
            c.flush_requested += 1;
            c.flush_requested
        };
        self.queue.notify();
        self.wait_control(timeout, |c| c.flush_completed >= epoch || c.exited)
    }

    /// Stops accepting records, lets the worker write what it holds, and waits for it to exit
    /// (or `timeout`). Returns whether the worker finished.
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        self.closed.store(true, Ordering::Release);
        self.control().shutdown = true;
        self.queue.notify();
        let finished = self.wait_control(timeout, |c| c.exited);
        if finished {
            // Records that raced past the `closed` check after the worker's last drain.
            let mut late = Vec::new();
            self.queue.drain_into(&mut late, usize::MAX);
            for _ in late {
                self.acct.dropped(DropReason::Shutdown);
            }
        }
        finished
    }

    fn wait_control(&self, timeout: Duration, done: impl Fn(&Control) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
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
        self.control().exited = true;
        self.control_cv.notify_all();
    }
}
