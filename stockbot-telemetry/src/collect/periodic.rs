//! A background thread that runs one job at once, then every interval, until stopped: the
//! system metrics collector and the SLO tracker.

use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Shortest interval honoured, so a zero interval does not become a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// How long `stop`/drop waits for the thread to finish; past that it is detached (it then exits
/// on its own once its current run returns).
const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// The running thread; stops (and joins it, bounded wait) on `stop` or drop.
#[derive(Debug)]
pub(crate) struct Periodic {
    /// Dropping it wakes the thread and tells it to exit.
    stop_tx: Option<Sender<()>>,
    /// Never receives a message: it disconnects when the thread's closure ends (or unwinds).
    exited_rx: Option<Receiver<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Starts the thread `name`, which calls `job` once immediately, then every `interval`
    /// (at least 10 ms), keeping the phase and skipping ticks missed by a run that overran.
    ///
    /// # Errors
    /// The error of spawning the thread.
    pub(crate) fn start(
        name: &str,
        interval: Duration,
        mut job: impl FnMut() + Send + 'static,
    ) -> io::Result<Self> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (exited_tx, exited_rx) = mpsc::channel::<()>();
        let interval = interval.max(MIN_INTERVAL);
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // Like every SDK thread: nothing logged here comes back into the pipeline.
                let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
                run(&stop_rx, &mut job, interval);
                drop(job);
                // Last: tells `stop` that the work is over and `join` will not block.
                drop(exited_tx);
            })?;
        Ok(Periodic {
            stop_tx: Some(stop_tx),
            exited_rx: Some(exited_rx),
            handle: Some(handle),
        })
    }

    /// Stops the thread: wakes it, waits up to one second for it to finish and joins it; a
    /// thread still busy after that (e.g. stuck on a hung filesystem) is detached.
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop_tx.take());
        let Some(handle) = self.handle.take() else {
            return;
        };
        let finished = match self.exited_rx.take() {
            Some(exited) => {
                matches!(
                    exited.recv_timeout(STOP_TIMEOUT),
                    Err(RecvTimeoutError::Disconnected)
                )
            }
            None => handle.is_finished(),
        };
        if finished {
            // The thread has left its closure; a panic in it was already reported by the hook.
            let _ = handle.join();
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread's loop: run, then sleep until the next tick or until stopped.
fn run(stop_rx: &Receiver<()>, job: &mut dyn FnMut(), interval: Duration) {
    let mut next = Instant::now();
    loop {
        job();
        let now = Instant::now();
        // Keep the phase; after a run that overran its interval, skip the missed ticks.
        let deadline = match next.checked_add(interval) {
            Some(deadline) if deadline > now => Some(deadline),
            _ => now.checked_add(interval),
        };
        let Some(deadline) = deadline else {
            // The interval is too long to represent: wait for stop only.
            let _ = stop_rx.recv();
            return;
        };
        match stop_rx.recv_timeout(deadline.saturating_duration_since(now)) {
            Err(RecvTimeoutError::Timeout) => next = deadline,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
