//! The shipper of a network sink (Elasticsearch, OTLP logs): its own thread, a bounded memory
//! buffer of parcels and, optionally, a disk spool — one implementation for every network
//! sink, so the log worker never waits on a network and other sinks (stdout, file) keep going
//! while a backend is down.
//!
//! The worker hands each batch over as a parcel (its lines with one id per record, stable
//! across retries and restarts). The parcel goes to memory unless the spool holds records not
//! yet accepted (then it is appended to the spool, so the order holds) or memory is full (then
//! it is spooled too). The thread ships memory first, then the spool in order. Records the
//! backend still refuses after the transport's own retries are kept and retried after the
//! shared backoff; while the backend fails, memory moves to the spool (a record is
//! acknowledged once accepted or fsynced there). Without a spool, or when it is full or
//! failing, a parcel that does not fit in memory is counted as `buffer_full`. Audit-class
//! records may use the spool's reserve. At shutdown, the backoff restarts (one immediate try),
//! then the thread keeps delivering until everything is delivered or the deadline passes:
//! after a failure, only sends that fit before the deadline (the transport honours
//! `Retry-After` within a send, the backoff applies between sends). It drains the spool while
//! the backend accepts; what fails is spooled for the next run, and without a spool what is
//! still undelivered at the deadline is counted as `sink_error`.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::accounting::{Accounting, DropReason, SinkCounters};
use super::retry::{Backoff, RetryPolicy};
use super::sink::{Sink, Written};
use super::spool::{Pos, Refusal, Spool};

/// Encoded records on their way to a backend, with their ids (`nonce` of the process that
/// emitted them, a sequence number per record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parcel {
    pub(crate) nonce: u64,
    pub(crate) seqs: Vec<u64>,
    pub(crate) audit: Vec<bool>,
    ends: Vec<usize>,
    data: Vec<u8>,
}

impl Parcel {
    pub(crate) fn new(nonce: u64) -> Self {
        Parcel {
            nonce,
            seqs: Vec::new(),
            audit: Vec::new(),
            ends: Vec::new(),
            data: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, seq: u64, audit: bool, line: &[u8]) {
        self.seqs.push(seq);
        self.audit.push(audit);
        self.data.extend_from_slice(line);
        self.ends.push(self.data.len());
    }

    pub(crate) fn len(&self) -> usize {
        self.seqs.len()
    }

    pub(crate) fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    /// Bytes of the lines.
    pub(crate) fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Memory held, roughly.
    fn bytes(&self) -> usize {
        self.data.len() + 25 * self.len()
    }

    /// The records `keep` selects.
    fn subset(&self, keep: impl Fn(usize) -> bool) -> Parcel {
        let mut p = Parcel::new(self.nonce);
        for i in (0..self.len()).filter(|&i| keep(i)) {
            p.push(self.seqs[i], self.audit[i], self.line(i));
        }
        p
    }

    /// The `_id` of record `i`: 32 hex digits, unique per process and record.
    pub(crate) fn id(&self, i: usize) -> String {
        format!("{:016x}{:016x}", self.nonce, self.seqs[i])
    }
}

/// What became of one record sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Not accepted yet (timeout, connection error, 429/5xx after the transport's retries).
    Failed,
    /// Accepted (or already stored: a 409 on our own `_id`).
    Done,
    /// Refused for good (4xx item, OTLP partial success); the transport dead-lettered it.
    Rejected,
    /// Larger than the transport's largest request.
    Oversize,
}

/// A backend protocol: sends a parcel, says what became of each record.
pub(crate) trait Transport: Send {
    /// Sends the parcel; `out` has one entry per record, `Failed` on entry.
    fn send(&mut self, parcel: &Parcel, out: &mut [Delivery]);
    /// The longest one `send` can take (its requests, retries and waits).
    fn budget(&self) -> Duration;
}

/// Settings of a shipper (validated configuration).
#[derive(Debug, Clone)]
pub(crate) struct ShipperSettings {
    pub(crate) memory_max_bytes: usize,
    pub(crate) spool: Option<super::spool::SpoolSettings>,
}

#[derive(Debug)]
struct State {
    memory: VecDeque<Parcel>,
    memory_bytes: usize,
    spool: Option<Spool>,
    /// The thread holds a parcel (shipping it, or waiting to retry it).
    holding: bool,
    sync_requested: u64,
    sync_done: u64,
    stop: Option<Instant>,
    exited: bool,
    /// The thread panicked outside the transport (a bug): later records are counted as
    /// `shipper_dead`.
    dead: bool,
    /// What the thread holds between taking a parcel and resolving it.
    in_hand: InHand,
}

/// The records the thread holds outside `memory` and the spool's unread part: the parcel being
/// shipped or waiting to be retried.
#[derive(Debug, Clone, Copy, Default)]
struct InHand {
    /// Records taken from memory: lost if the thread dies.
    unspooled: usize,
    /// Records of this process read from the spool (still on disk, not acknowledged): they
    /// count as spooled again if the thread dies.
    own_spooled: usize,
}

impl InHand {
    fn of(held: Option<&Held>, nonce: u64) -> InHand {
        match held {
            None => InHand::default(),
            Some(h) if h.spooled_until.is_none() => InHand {
                unspooled: h.parcel.len(),
                own_spooled: 0,
            },
            Some(h) => InHand {
                unspooled: 0,
                own_spooled: if h.parcel.nonce == nonce {
                    h.parcel.len()
                } else {
                    0
                },
            },
        }
    }
}

#[derive(Debug)]
struct Shared {
    name: String,
    state: Mutex<State>,
    /// Wakes the thread.
    wake: Condvar,
    /// Wakes `sync` and `close` callers.
    done: Condvar,
    counters: OnceLock<(Arc<Accounting>, usize)>,
    memory_max_bytes: usize,
    /// This process's record ids start with it (parcels of earlier runs have another).
    nonce: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits on `done` while `busy` holds, until `deadline`.
    fn wait_done<'a>(
        &self,
        st: MutexGuard<'a, State>,
        deadline: Instant,
        busy: impl FnMut(&mut State) -> bool,
    ) -> MutexGuard<'a, State> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        self.done
            .wait_timeout_while(st, timeout, busy)
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    fn counters(&self) -> Option<&SinkCounters> {
        self.counters.get().map(|(acct, i)| &acct.sinks[*i])
    }

    fn count(&self, f: impl FnOnce(&SinkCounters)) {
        if let Some(c) = self.counters() {
            f(c);
        }
    }

    /// `n` records held by the shipper are resolved.
    fn resolved(&self, n: usize) {
        self.count(|c| {
            c.buffered.fetch_sub(n as u64, Relaxed);
        });
    }

    /// A parcel read from the spool stays there (for the next run): this process's records
    /// count as spooled again.
    fn back_in_spool(&self, parcel: &Parcel) {
        if parcel.nonce == self.nonce {
            self.count(|c| {
                c.spooled.fetch_add(parcel.len() as u64, Relaxed);
            });
        }
    }

    fn drop_records(&self, reason: DropReason, n: usize) {
        self.count(|c| c.dropped(reason, n as u64));
        self.resolved(n);
    }

    fn publish_spool(&self, st: &State) {
        if let (Some(spool), Some(c)) = (&st.spool, self.counters()) {
            c.spool_bytes.store(spool.bytes(), Relaxed);
            c.spool_corrupt_frames.store(spool.corrupt_frames, Relaxed);
            c.spool_write_errors.store(spool.write_errors, Relaxed);
        }
    }

    /// Appends `parcel` to the spool; what it cannot hold comes back (the spool is full or
    /// failing, or there is none). When the bound is reached, audit-class records still use
    /// the reserve.
    fn spill(&self, st: &mut State, parcel: Parcel) -> Option<Parcel> {
        let Some(spool) = st.spool.as_mut() else {
            return Some(parcel);
        };
        let (spooled, rest) = match spool.append(&parcel, false) {
            Ok(()) => (parcel.len(), None),
            Err(Refusal::Full) if parcel.audit.contains(&true) => {
                let audit = parcel.subset(|i| parcel.audit[i]);
                match spool.append(&audit, true) {
                    Ok(()) => (audit.len(), Some(parcel.subset(|i| !parcel.audit[i]))),
                    Err(_) => (0, Some(parcel)),
                }
            }
            Err(_) => (0, Some(parcel)),
        };
        self.count(|c| {
            c.spooled.fetch_add(spooled as u64, Relaxed);
        });
        self.publish_spool(st);
        rest.filter(|p| p.len() > 0)
    }

    /// Keeps `parcel` in memory if it fits, else counts it as `buffer_full`.
    fn keep_or_drop(&self, st: &mut State, parcel: Parcel) {
        if st.memory_bytes + parcel.bytes() <= self.memory_max_bytes {
            st.memory_bytes += parcel.bytes();
            st.memory.push_back(parcel);
        } else {
            self.drop_records(DropReason::BufferFull, parcel.len());
        }
    }

    /// Moves everything in memory to the spool (the backend is failing), as far as it goes.
    fn spill_memory(&self, st: &mut State) {
        let mut kept = VecDeque::new();
        while let Some(parcel) = st.memory.pop_front() {
            st.memory_bytes -= parcel.bytes();
            if let Some(rest) = self.spill(st, parcel) {
                kept.push_back(rest);
            }
        }
        for parcel in kept {
            st.memory_bytes += parcel.bytes();
            st.memory.push_back(parcel);
        }
    }
}

/// A network sink: the worker's side of a shipper.
pub(crate) struct Shipper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    seq: u64,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl Shipper {
    /// Starts the shipper's thread; opens the spool if one is configured.
    pub(crate) fn start(
        name: &str,
        transport: Box<dyn Transport>,
        settings: ShipperSettings,
    ) -> io::Result<Shipper> {
        let spool = match settings.spool {
            Some(s) => Some(Spool::open(s)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            state: Mutex::new(State {
                memory: VecDeque::new(),
                memory_bytes: 0,
                spool,
                holding: false,
                sync_requested: 0,
                sync_done: 0,
                stop: None,
                exited: false,
                dead: false,
                in_hand: InHand::default(),
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
            counters: OnceLock::new(),
            memory_max_bytes: settings.memory_max_bytes,
            nonce: crate::collect::random_u64(),
        });
        let thread = std::thread::Builder::new()
            .name(format!("stockbot-ship-{name}"))
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    // What the transport's HTTP client logs must not come back into the queue it
                    // is shipping (a feedback loop): this thread has no subscriber.
                    let _no_telemetry =
                        tracing::dispatcher::set_default(&tracing::Dispatch::none());
                    // A panic outside the transport's guarded `send` (a bug) must not leave the
                    // sink silently swallowing records: it is detected and accounted.
                    let run = std::panic::AssertUnwindSafe(|| run(&shared, transport));
                    if std::panic::catch_unwind(run).is_err() {
                        died(&shared);
                    }
                }
            })?;
        Ok(Shipper {
            shared,
            thread: Some(thread),
            seq: 0,
        })
    }
}

impl Sink for Shipper {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<Written> {
        self.write_lines(bytes, &[])
    }

    fn write_lines(&mut self, bytes: &[u8], audit: &[bool]) -> io::Result<Written> {
        let mut parcel = Parcel::new(self.shared.nonce);
        for (i, line) in bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            self.seq += 1;
            parcel.push(self.seq, audit.get(i).copied().unwrap_or(false), line);
        }
        let n = parcel.len();
        let shared = &*self.shared;
        let mut st = shared.lock();
        if st.dead {
            drop(st);
            shared.count(|c| c.dropped(DropReason::ShipperDead, n as u64));
            return Ok(Written {
                deferred: n as u64,
                ..Written::default()
            });
        }
        shared.count(|c| {
            c.buffered.fetch_add(n as u64, Relaxed);
        });
        let behind_spool = st.spool.as_ref().is_some_and(Spool::pending);
        if !behind_spool && st.memory_bytes + parcel.bytes() <= shared.memory_max_bytes {
            st.memory_bytes += parcel.bytes();
            st.memory.push_back(parcel);
        } else if let Some(rest) = shared.spill(&mut st, parcel) {
            shared.keep_or_drop(&mut st, rest);
        }
        drop(st);
        shared.wake.notify_one();
        Ok(Written {
            deferred: n as u64,
            ..Written::default()
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn sync(&mut self, deadline: Instant) -> bool {
        let shared = &*self.shared;
        let mut st = shared.lock();
        if st.exited {
            return !st.dead && st.memory.is_empty() && !st.holding;
        }
        st.sync_requested += 1;
        let epoch = st.sync_requested;
        shared.wake.notify_one();
        let st = shared.wait_done(st, deadline, |s| s.sync_done < epoch && !s.exited);
        st.sync_done >= epoch && !st.dead
    }

    fn stop(&mut self, deadline: Instant) {
        let shared = &*self.shared;
        let mut st = shared.lock();
        if st.stop.is_none() {
            // The thread stops retrying a little before the caller's deadline, so it has
            // finished (and counted what is left) when the caller looks.
            let now = Instant::now();
            let margin =
                (deadline.saturating_duration_since(now) / 5).min(Duration::from_millis(100));
            st.stop = Some(deadline.checked_sub(margin).unwrap_or(deadline));
        }
        drop(st);
        shared.wake.notify_one();
    }

    fn close(&mut self, deadline: Instant) -> bool {
        self.stop(deadline);
        let shared = &*self.shared;
        let st = shared.lock();
        let st = shared.wait_done(st, deadline, |s| !s.exited);
        if !st.exited {
            // Still busy (a request that outlives the deadline): left to finish on its own;
            // what it holds stays counted as buffered.
            self.thread.take();
            return false;
        }
        drop(st);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        true
    }

    fn bind(&mut self, acct: &Arc<Accounting>, index: usize) {
        let _ = self.shared.counters.set((Arc::clone(acct), index));
        let st = self.shared.lock();
        self.shared.publish_spool(&st);
        drop(st);
        self.shared.wake.notify_all();
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.close(Instant::now() + Duration::from_secs(1));
        }
    }
}

/// A parcel the thread holds, and where it came from.
struct Held {
    parcel: Parcel,
    /// The spool position after its frame (acknowledged once every record is resolved).
    spooled_until: Option<Pos>,
}

/// The shipper's thread.
fn run(shared: &Shared, mut transport: Box<dyn Transport>) {
    let mut backoff = Backoff::new(RetryPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
        ..RetryPolicy::default()
    });
    let mut held: Option<Held> = None;
    let mut out = Vec::new();
    let mut saw_stop = false;
    // After a send failed at shutdown, the next is only made if one whole send fits before the
    // stop deadline (without failures every parcel gets its try).
    let mut failed_since_stop = false;
    let budget = transport.budget();
    {
        // Nothing moves before the counters are bound (a replayed record must be counted).
        let mut st = shared.lock();
        while shared.counters.get().is_none() && st.stop.is_none() {
            st = shared
                .wake
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
    loop {
        #[cfg(feature = "fail-points")]
        fail::fail_point!("stockbot-shipper-round");
        let work = {
            let mut st = shared.lock();
            loop {
                let now = Instant::now();
                let stopping = st.stop.is_some();
                if let Some(spool) = st.spool.as_mut()
                    && spool.sync_due(now)
                {
                    let _ = spool.sync();
                }
                shared.publish_spool(&st);
                if stopping && !saw_stop {
                    // Shutdown: one immediate try, then the backoff again until the deadline.
                    saw_stop = true;
                    backoff.succeeded();
                }
                let fits = st
                    .stop
                    .is_none_or(|stop| !failed_since_stop || now + budget <= stop);
                let ready = backoff.ready(now) && fits;
                // The backend fails: memory goes to the spool, where it is safe.
                if !ready {
                    shared.spill_memory(&mut st);
                }
                // A parcel read from the spool is safe there: it does not hold up a flush.
                let holding = held.as_ref().is_some_and(|h| h.spooled_until.is_none());
                st.holding = holding;
                if st.sync_requested > st.sync_done && !holding && st.memory.is_empty() {
                    if let Some(spool) = st.spool.as_mut() {
                        let _ = spool.sync();
                    }
                    st.sync_done = st.sync_requested;
                    shared.done.notify_all();
                }
                // Stopping: done once memory is empty and the spool is drained or the backend
                // fails (the spool then waits for the next run), or at the deadline.
                let spool_settled = st
                    .spool
                    .as_ref()
                    .is_none_or(|s| !s.readable() || !backoff.ready(now));
                if let Some(deadline) = st.stop
                    && ((held.is_none() && st.memory.is_empty() && spool_settled)
                        || now >= deadline
                        || !fits)
                {
                    finish(shared, &mut st, held.take());
                    return;
                }
                if ready {
                    if let Some(h) = held.take() {
                        break h;
                    }
                    if let Some(parcel) = st.memory.pop_front() {
                        st.memory_bytes -= parcel.bytes();
                        st.in_hand = InHand {
                            unspooled: parcel.len(),
                            own_spooled: 0,
                        };
                        break Held {
                            parcel,
                            spooled_until: None,
                        };
                    }
                    if let Some((parcel, end)) = st.spool.as_mut().and_then(Spool::read_next) {
                        if parcel.nonce == shared.nonce {
                            shared.count(|c| {
                                c.spooled.fetch_sub(parcel.len() as u64, Relaxed);
                            });
                        } else {
                            shared.count(|c| {
                                c.recovered.fetch_add(parcel.len() as u64, Relaxed);
                                c.buffered.fetch_add(parcel.len() as u64, Relaxed);
                            });
                        }
                        let held = Held {
                            parcel,
                            spooled_until: Some(end),
                        };
                        st.in_hand = InHand::of(Some(&held), shared.nonce);
                        break held;
                    }
                }
                let mut wait = st
                    .spool
                    .as_ref()
                    .map_or(Duration::from_secs(1), Spool::fsync_interval);
                if !ready {
                    wait = wait.min(backoff.remaining(now));
                }
                if let Some(deadline) = st.stop {
                    wait = wait.min(deadline.saturating_duration_since(now));
                }
                st = shared
                    .wake
                    .wait_timeout(st, wait.max(Duration::from_millis(1)))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        held = ship(shared, &mut *transport, work, &mut backoff, &mut out);
        failed_since_stop |= saw_stop && held.is_some();
        shared.lock().in_hand = InHand::of(held.as_ref(), shared.nonce);
    }
}

/// Sends a parcel; counts what was resolved; returns what is still to retry.
fn ship(
    shared: &Shared,
    transport: &mut dyn Transport,
    work: Held,
    backoff: &mut Backoff,
    out: &mut Vec<Delivery>,
) -> Option<Held> {
    let n = work.parcel.len();
    out.clear();
    out.resize(n, Delivery::Failed);
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        transport.send(&work.parcel, out);
    }))
    .is_err()
    {
        // A bug in the transport: the parcel is lost, counted, never silently.
        let mut st = shared.lock();
        st.in_hand = InHand::default();
        shared.count(|c| c.dropped(DropReason::WorkerPanic, n as u64));
        shared.resolved(n);
        if let (Some(end), Some(spool)) = (work.spooled_until, st.spool.as_mut()) {
            spool.ack(end);
        }
        return None;
    }
    let tally = |d: Delivery| out.iter().filter(|&&o| o == d).count();
    let (done, rejected, oversize) = (
        tally(Delivery::Done),
        tally(Delivery::Rejected),
        tally(Delivery::Oversize),
    );
    let failed = n - done - rejected - oversize;
    let mut st = shared.lock();
    // Resolved records are no longer the thread's to lose.
    st.in_hand = InHand {
        unspooled: st.in_hand.unspooled.min(failed),
        own_spooled: st.in_hand.own_spooled.min(failed),
    };
    shared.count(|c| {
        c.written(done as u64);
        c.dropped(DropReason::Rejected, rejected as u64);
        c.dropped(DropReason::Oversize, oversize as u64);
    });
    shared.resolved(done + rejected + oversize);
    if failed == 0 {
        backoff.succeeded();
        if let (Some(end), Some(spool)) = (work.spooled_until, st.spool.as_mut()) {
            spool.ack(end);
        }
        return None;
    }
    backoff.failed(Instant::now(), None);
    let rest = work.parcel.subset(|i| out[i] == Delivery::Failed);
    if work.spooled_until.is_some() {
        // Still in the spool: retried from there (after a restart, the whole frame again).
        if st.stop.is_some() {
            // It stays on disk for the next run: still buffered (spooled), not lost.
            shared.back_in_spool(&rest);
            return None;
        }
        return Some(Held {
            parcel: rest,
            spooled_until: work.spooled_until,
        });
    }
    let rest = match shared.spill(&mut st, rest) {
        None => {
            shared.spill_memory(&mut st);
            return None;
        }
        Some(rest) => rest,
    };
    // Kept and retried after the backoff (at shutdown until the deadline: then `finish` counts
    // it).
    Some(Held {
        parcel: rest,
        spooled_until: None,
    })
}

/// The thread panicked outside the transport (a bug): what it held in memory or in hand is
/// counted as `shipper_dead` (records it read from the spool stay there for the next run),
/// `exporter_up` of the sink drops to 0, waiting flushes are released, and every later record
/// is counted as `shipper_dead` when handed over. Said once on stderr (this thread has no
/// subscriber, and the telemetry pipeline is what failed).
fn died(shared: &Shared) {
    let mut st = shared.lock();
    let mut lost = st.in_hand.unspooled;
    let own_spooled = st.in_hand.own_spooled;
    st.in_hand = InHand::default();
    while let Some(parcel) = st.memory.pop_front() {
        lost += parcel.len();
    }
    st.memory_bytes = 0;
    st.holding = false;
    if let Some(spool) = st.spool.as_mut() {
        let _ = spool.sync();
    }
    shared.count(|c| {
        c.spooled.fetch_add(own_spooled as u64, Relaxed);
        c.alive.store(false, Relaxed);
    });
    shared.drop_records(DropReason::ShipperDead, lost);
    shared.publish_spool(&st);
    st.dead = true;
    st.exited = true;
    drop(st);
    shared.done.notify_all();
    eprintln!(
        "stockbot-telemetry: the shipper thread of sink {:?} panicked; its held records and every later one are counted as dropped (shipper_dead)",
        shared.name
    );
}

/// The thread stops: memory and the held parcel go to the spool, or are counted; the spool
/// is synced.
fn finish(shared: &Shared, st: &mut State, held: Option<Held>) {
    if let Some(h) = held {
        match h.spooled_until {
            Some(_) => shared.back_in_spool(&h.parcel),
            None => {
                if let Some(rest) = shared.spill(st, h.parcel) {
                    shared.drop_records(DropReason::SinkError, rest.len());
                }
            }
        }
    }
    while let Some(parcel) = st.memory.pop_front() {
        st.memory_bytes -= parcel.bytes();
        if let Some(rest) = shared.spill(st, parcel) {
            shared.drop_records(DropReason::SinkError, rest.len());
        }
    }
    if let Some(spool) = st.spool.as_mut() {
        let _ = spool.sync();
    }
    shared.publish_spool(st);
    st.sync_done = st.sync_requested;
    st.exited = true;
    shared.done.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::spool::SpoolSettings;

    /// Fails its first `fail_first` sends, then accepts and records the sequence numbers.
    struct Scripted {
        fail_first: usize,
        calls: usize,
        seen: Arc<Mutex<Vec<u64>>>,
    }

    impl Transport for Scripted {
        fn budget(&self) -> Duration {
            Duration::from_millis(10)
        }

        fn send(&mut self, parcel: &Parcel, out: &mut [Delivery]) {
            self.calls += 1;
            if self.calls <= self.fail_first {
                return;
            }
            for (i, d) in out.iter_mut().enumerate() {
                *d = Delivery::Done;
                self.seen.lock().unwrap().push(parcel.seqs[i]);
            }
        }
    }

    fn lines(n: usize, width: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.extend_from_slice(
                format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "p".repeat(width)).as_bytes(),
            );
        }
        bytes
    }

    fn start(
        fail_first: usize,
        settings: ShipperSettings,
    ) -> (Shipper, Arc<Accounting>, Arc<Mutex<Vec<u64>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let transport = Scripted {
            fail_first,
            calls: 0,
            seen: Arc::clone(&seen),
        };
        let mut shipper = Shipper::start("es", Box::new(transport), settings).unwrap();
        let acct = Arc::new(Accounting::new(["es".to_owned()]));
        shipper.bind(&acct, 0);
        (shipper, acct, seen)
    }

    #[test]
    fn an_outage_moves_records_to_the_spool_and_they_arrive_once_in_order() {
        let dir = std::env::temp_dir().join(format!(
            "stockbot-shipper-{}-{}",
            std::process::id(),
            crate::collect::random_u64()
        ));
        let (mut shipper, acct, seen) = start(
            3,
            ShipperSettings {
                memory_max_bytes: 1 << 20,
                spool: Some(SpoolSettings {
                    directory: dir.clone(),
                    max_bytes: 64 << 20,
                    audit_reserve_bytes: 1 << 20,
                    fsync_interval: Duration::from_millis(20),
                }),
            },
        );
        for _ in 0..50 {
            let w = shipper.write_lines(&lines(10, 20), &[]).unwrap();
            assert_eq!(w.deferred, 10);
        }
        // Acknowledged: delivered or fsynced to the spool.
        assert!(shipper.sync(Instant::now() + Duration::from_secs(10)));
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.lock().unwrap().len() < 500 {
            assert!(Instant::now() < deadline, "the spool is replayed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(shipper.close(Instant::now() + Duration::from_secs(5)));
        assert_eq!(*seen.lock().unwrap(), (1..=500).collect::<Vec<u64>>());
        let stats = acct.snapshot(0);
        let s = &stats.sinks[0];
        assert_eq!((s.written, s.buffered, s.spooled), (500, 0, 0));
        assert_eq!(s.dropped_total(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn without_a_spool_a_full_memory_is_counted_and_shutdown_counts_the_rest() {
        let (mut shipper, acct, seen) = start(
            usize::MAX,
            ShipperSettings {
                memory_max_bytes: 64 << 10,
                spool: None,
            },
        );
        for _ in 0..100 {
            shipper.write_lines(&lines(10, 200), &[]).unwrap();
        }
        // The backend never accepts: a flush cannot complete, and says so by its deadline.
        assert!(!shipper.sync(Instant::now() + Duration::from_millis(300)));
        assert!(shipper.close(Instant::now() + Duration::from_secs(2)));
        assert!(seen.lock().unwrap().is_empty());
        let stats = acct.snapshot(0);
        let s = &stats.sinks[0];
        assert!(s.dropped["buffer_full"] > 0, "{s:?}");
        assert_eq!(
            s.dropped["buffer_full"] + s.dropped["sink_error"],
            1000,
            "{s:?}"
        );
        assert_eq!((s.written, s.buffered), (0, 0));
    }
}
