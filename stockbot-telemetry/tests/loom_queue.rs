//! Loom model of the export queue, the pipeline's flush/shutdown handshake and the drop
//! accounting (issue #10, "Concurrency"): every interleaving of emit, flush, shutdown and a
//! dying worker, up to a preemption bound, loses no record and counts none twice.
//!
//! The real `queue.rs`, `pipeline.rs` and `accounting.rs` are compiled here against the `sync`
//! module below (loom's `Mutex`, `Condvar` and atomics instead of std's); nothing else of the
//! crate is built into this test. The worker (`export/worker.rs`) needs the whole crate, so
//! [`worker`] replays its protocol with the same `Pipeline` calls in the same order, and the
//! spawn wrapper of `init.rs` around it (`worker_exited` / `worker_died` on a panic).
//!
//! What loom cannot reach: the timeouts. Loom's `Condvar::wait_timeout` never times out, so
//! every timed wait is modelled as an untimed one — a protocol that needed a timeout to make
//! progress (a lost wake-up) fails here as a deadlock — and models that say so let the first
//! timed wait of a thread return at once, as if its time had passed (loom explores every
//! moment at which that happens). Deadlines (`flush`/`shutdown` giving up) follow real time and
//! are an hour here. The unit test `export::pipeline::tests::emit_flush_and_shutdown_race_with_
//! real_timeouts` covers the real timed waits with std threads.
//!
//! `cargo test -p stockbot-telemetry --test loom_queue [name…]`; `LOOM_MAX_PREEMPTIONS=n`
//! changes the bound (default [`PREEMPTIONS`]), `LOOM_LOG=trace LOOM_LOCATION=1` explains a
//! failure. Built without the test harness (`harness = false`), so the unit tests inside the
//! included files, which need std's primitives, are neither built nor run here.

/// `Pipeline::worker_died` reports on stderr; once per explored interleaving would bury the
/// output, so the included files see this `eprintln!` (it still checks the format string).
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        let _ = format_args!($($arg)*);
    }};
}

// What the models do not use is dead here; the files' `#[cfg(test)]` modules are compiled
// (cargo sets `cfg(test)`) but, without the harness, their `#[test]` functions are not, which
// leaves their imports unused.
#[allow(dead_code, unused_imports, unreachable_pub)]
#[path = "../src/export/accounting.rs"]
mod accounting;
#[allow(dead_code, unused_imports)]
#[path = "../src/export/pipeline.rs"]
mod pipeline;
#[allow(dead_code, unused_imports)]
#[path = "../src/export/queue.rs"]
mod queue;

/// loom's primitives under the names `src/export/sync.rs` gives std's.
mod sync {
    use std::cell::Cell;
    use std::time::Duration;

    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64};
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

    loom::thread_local! {
        /// How many more timed waits of this thread time out at once.
        static TIMEOUTS: Cell<usize> = Cell::new(0);
    }

    /// The next `n` timed waits of the calling thread return at once, as if their timeout had
    /// passed (loom never times a wait out; every other wait is modelled as untimed).
    pub(crate) fn time_out_next(n: usize) {
        TIMEOUTS.with(|t| t.set(n));
    }

    fn times_out() -> bool {
        TIMEOUTS.with(|t| {
            let left = t.get();
            t.set(left.saturating_sub(1));
            left > 0
        })
    }

    pub(crate) fn wait_timeout_while<'a, T>(
        cv: &Condvar,
        mut guard: MutexGuard<'a, T>,
        _timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut guard) {
            if times_out() {
                break;
            }
            guard = cv.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
        guard
    }

    pub(crate) fn wait_timeout<'a, T>(
        cv: &Condvar,
        guard: MutexGuard<'a, T>,
        _timeout: Duration,
    ) -> MutexGuard<'a, T> {
        if times_out() {
            return guard;
        }
        cv.wait(guard).unwrap_or_else(|p| p.into_inner())
    }
}

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use loom::sync::Arc;
use loom::thread;

use accounting::{Accounting, DropReason, PipelineStats};
use pipeline::{Item, Pipeline};
use queue::{Queue, QueueLimits};

/// Preemptions per execution unless `LOOM_MAX_PREEMPTIONS` says otherwise. Most concurrency
/// bugs need at most two or three; each more multiplies the run time.
const PREEMPTIONS: usize = 2;

/// Deadline of every `flush`/`shutdown` in the models: never reached.
const NEVER: Duration = Duration::from_secs(3600);

/// One record; `id`s are unique within a model.
#[derive(Debug)]
struct Rec {
    id: u64,
    audit: bool,
    /// Lets the emitting thread see whether the pipeline still holds the record (see
    /// [`taken`]).
    _token: Option<std::sync::Arc<()>>,
}

impl Item for Rec {
    fn size_bytes(&self) -> usize {
        1
    }
    fn is_audit(&self) -> bool {
        self.audit
    }
}

fn rec(id: u64) -> Rec {
    Rec {
        id,
        audit: false,
        _token: None,
    }
}

/// A record and the means to ask [`taken`] about it afterwards.
fn tracked(id: u64) -> (Rec, std::sync::Weak<()>) {
    let token = std::sync::Arc::new(());
    let weak = std::sync::Arc::downgrade(&token);
    let rec = Rec {
        _token: Some(token),
        ..rec(id)
    };
    (rec, weak)
}

/// Whether the pipeline took record `id` (emitted with [`tracked`]) rather than refusing it:
/// it still exists (queued or held by the worker) or was written. Asked right after `emit`
/// returned, a record that is gone and unwritten was refused (dropped inside `submit`, or by
/// the closed check before it) — or, in a model where the worker dies, closed out by the death.
fn taken(id: u64, token: &std::sync::Weak<()>, written: &Written) -> bool {
    token.strong_count() > 0 || written.ids().contains(&id)
}

/// What the sink wrote, in order. A plain std mutex: the test's record, not part of the protocol
/// under test, so it adds no scheduling points (loom runs its threads on one OS thread and never
/// switches inside this lock, which holds no loom operation).
#[derive(Debug, Default)]
struct Written(std::sync::Mutex<Vec<u64>>);

impl Written {
    fn ids(&self) -> Vec<u64> {
        self.0.lock().unwrap().clone()
    }
}

fn pipeline(capacity: usize, audit_reserve: usize, wake_at: usize) -> Pipeline<Rec> {
    Pipeline::new(
        Queue::new(QueueLimits {
            capacity,
            audit_reserve,
            max_bytes: 1 << 20,
            wake_at,
        }),
        Accounting::new(["sink".to_owned()]),
        Duration::from_millis(100),
    )
}

/// Where the model worker panics outside the per-record guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    Never,
    /// At the fail point of round `n` (after `worker_round`, before draining), as
    /// `fail_points.rs` kills the real worker.
    AtRound(usize),
    /// Inside the `n`-th chunk: taken from the queue and counted in flight, not yet written.
    InChunk(usize),
}

/// Options of the model worker.
#[derive(Debug, Clone, Copy)]
struct WorkerModel {
    /// `batch_max_records`: chunk size of a drain round.
    chunk: usize,
    death: Death,
    /// Timed waits that return at once, as if the flush interval had passed.
    timeouts: usize,
}

/// The log worker thread: `init.rs::spawn_worker` (a panic leaving `run` is `worker_died`,
/// a return `worker_exited`) around `worker.rs::Worker::run`, with the same `Pipeline` calls
/// in the same order. A sink write is `SinkSlot::write` (every sink counts the batch) followed
/// by `write_batch`'s `in_flight` decrement; records are written per chunk (a batch is full at
/// `batch_max_records`, the chunk size). Not modelled: the worker's own diagnostics
/// (`flush_internal` adds them to `emitted` and `in_flight` on the worker thread alone) and
/// sink failures (counted per sink inside `SinkSlot::write`, after the records left the queue).
fn worker(
    p: Arc<Pipeline<Rec>>,
    written: Arc<Written>,
    model: WorkerModel,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        sync::time_out_next(model.timeouts);
        match catch_unwind(AssertUnwindSafe(|| run(&p, &written, model))) {
            Ok(()) => p.worker_exited(),
            Err(_) => p.worker_died(),
        }
    })
}

fn run(p: &Pipeline<Rec>, written: &Written, model: WorkerModel) {
    let mut seen = 0;
    let mut records = Vec::new();
    let mut round = 0;
    let mut chunks = 0;
    loop {
        let (epoch, shutdown, _deadline) = p.worker_round();
        if model.death == Death::AtRound(round) {
            // `resume_unwind`: a panic without the panic hook's message.
            resume_unwind(Box::new("worker killed at its fail point"));
        }
        p.drain_round(!shutdown, model.chunk, &mut records, |chunk| {
            if model.death == Death::InChunk(chunks) {
                resume_unwind(Box::new("worker panicked holding a chunk"));
            }
            chunks += 1;
            let n = chunk.len() as u64;
            written
                .0
                .lock()
                .unwrap()
                .extend(chunk.drain(..).map(|r| r.id));
            p.acct.sinks[0].written(n);
            p.acct.in_flight.fetch_sub(n, Relaxed);
        });
        // The sinks' flush/sync always succeed here.
        p.flush_done(epoch, true);
        if shutdown {
            return;
        }
        seen = p.queue.wait(seen, p.flush_interval);
        round += 1;
    }
}

/// A caller's thread emitting an event as `collect/layer.rs` does: the cheap closed check
/// first (counted with `closed_reason`), then `submit`.
fn emit(p: &Pipeline<Rec>, rec: Rec) {
    if p.is_closed() {
        p.acct.emitted.fetch_add(1, Relaxed);
        p.acct.dropped(p.closed_reason());
        return;
    }
    p.submit(rec);
}

fn dropped(stats: &PipelineStats, reason: DropReason) -> u64 {
    let name = reason.as_str();
    stats.dropped.get(name).unwrap_or(&0) + stats.sinks[0].dropped.get(name).unwrap_or(&0)
}

/// The identity, exactly, once every thread has been joined: each emitted record written once
/// (ids unique) or counted once as dropped for one of `allowed`; nothing buffered.
fn assert_accounted(
    stats: &PipelineStats,
    written: &[u64],
    emitted: &[u64],
    allowed: &[DropReason],
) {
    let unique: BTreeSet<u64> = written.iter().copied().collect();
    assert_eq!(
        unique.len(),
        written.len(),
        "a record written twice: {written:?}"
    );
    assert!(
        unique.iter().all(|id| emitted.contains(id)),
        "written {written:?}, emitted {emitted:?}"
    );
    assert_eq!(stats.emitted, emitted.len() as u64, "{stats:?}");
    assert_eq!(stats.sinks[0].written, written.len() as u64, "{stats:?}");
    assert_eq!(stats.buffered(), 0, "{stats:?}");
    let lost: u64 = DropReason::PIPELINE
        .iter()
        .chain(&DropReason::SINK)
        .map(|&r| dropped(stats, r))
        .sum();
    let allowed_lost: u64 = allowed.iter().map(|&r| dropped(stats, r)).sum();
    assert_eq!(lost, allowed_lost, "dropped for another reason: {stats:?}");
    assert_eq!(
        written.len() as u64 + lost,
        stats.emitted,
        "written {written:?}, {stats:?}"
    );
    assert!(stats.accounted_for(), "{stats:?}");
}

/// Outcomes seen across the executions of one model, so that a model which never reaches the
/// case it is about fails instead of passing vacuously. Plain std atomics: outside the model.
#[derive(Debug, Default)]
struct Seen {
    with: AtomicUsize,
    without: AtomicUsize,
}

impl Seen {
    fn record(&self, happened: bool) {
        if happened { &self.with } else { &self.without }.fetch_add(1, Relaxed);
    }

    fn assert_both(&self, what: &str) {
        let (with, without) = (self.with.load(Relaxed), self.without.load(Relaxed));
        assert!(
            with > 0 && without > 0,
            "{what}: {with} executions with, {without} without; the model misses a case"
        );
    }
}

/// Explores every execution of `model` up to the preemption bound; returns how many it ran.
fn explore(model: impl Fn() + Sync + Send + 'static) -> usize {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&runs);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(PREEMPTIONS));
    builder.check(move || {
        counter.fetch_add(1, Relaxed);
        model();
    });
    runs.load(Relaxed)
}

/// (a) Two producers push into a queue too small for them (one normal slot, one more for audit
/// records) while the worker drains it, then the pipeline shuts down: every accepted record is
/// written exactly once, every refused one is handed back as `queue_full` and counted (by the
/// producer, as `submit` does), `emitted = written + dropped`.
fn queue_two_producers_one_consumer() -> usize {
    let refusals = std::sync::Arc::new(Seen::default());
    let seen = std::sync::Arc::clone(&refusals);
    let runs = explore(move || {
        let p = Arc::new(pipeline(2, 1, 1));
        let written = Arc::new(Written::default());
        let model = WorkerModel {
            chunk: 1,
            death: Death::Never,
            timeouts: 0,
        };
        let w = worker(Arc::clone(&p), Arc::clone(&written), model);
        let producer = |items: Vec<Rec>| {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                let mut accepted = Vec::new();
                for r in items {
                    let (id, audit) = (r.id, r.audit);
                    p.acct.emitted.fetch_add(1, Relaxed);
                    match p.queue.push(r, 1, audit) {
                        Ok(()) => accepted.push(id),
                        Err((r, reason)) => {
                            assert_eq!(r.id, id, "the refused record is handed back");
                            assert_eq!(reason, DropReason::QueueFull);
                            p.acct.dropped(reason);
                        }
                    }
                }
                accepted
            })
        };
        let a = producer(vec![rec(1), rec(2)]);
        let b = producer(vec![Rec {
            audit: true,
            ..rec(11)
        }]);
        let mut accepted = a.join().unwrap();
        accepted.extend(b.join().unwrap());
        assert!(p.shutdown(NEVER), "the worker finishes");
        w.join().unwrap();

        let mut got = written.ids();
        got.sort_unstable();
        accepted.sort_unstable();
        assert_eq!(got, accepted, "written = accepted, each once");
        let stats = p.stats();
        assert_accounted(&stats, &got, &[1, 2, 11], &[DropReason::QueueFull]);
        seen.record(stats.dropped_total() > 0);
    });
    refusals.assert_both("queue_full refusals");
    runs
}

/// (b) Emit racing a flush: the main thread emits two records and flushes while another thread
/// emits one. `flush` returns true (the worker lives) and by then every record emitted before
/// the call began — the flushing thread's own, and the other thread's if it said it was done —
/// was written, and the sink's counter says so; at the end each record was written once.
fn emit_racing_flush(timeouts: usize) -> usize {
    explore(move || {
        let p = Arc::new(pipeline(8, 0, 2));
        let written = Arc::new(Written::default());
        let other_done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let model = WorkerModel {
            chunk: 1,
            death: Death::Never,
            timeouts,
        };
        let w = worker(Arc::clone(&p), Arc::clone(&written), model);
        let other = {
            let (p, other_done) = (Arc::clone(&p), Arc::clone(&other_done));
            thread::spawn(move || {
                emit(&p, rec(11));
                other_done.store(true, Release);
            })
        };
        emit(&p, rec(1));
        emit(&p, rec(2));
        let mut before = vec![1, 2];
        if other_done.load(Acquire) {
            before.push(11);
        }
        assert!(p.flush(NEVER), "a flush with a live worker succeeds");
        let now = written.ids();
        assert!(
            before.iter().all(|id| now.contains(id)),
            "flushed, yet not all of {before:?} written: {now:?}"
        );
        let stats = p.stats();
        assert!(
            stats.sinks[0].written >= before.len() as u64,
            "the sink's counter lags the flush: {stats:?}"
        );
        other.join().unwrap();
        assert!(p.shutdown(NEVER));
        w.join().unwrap();
        assert_accounted(&p.stats(), &written.ids(), &[1, 2, 11], &[]);
    })
}

/// (c) Emit racing shutdown: while the main thread shuts the pipeline down, two threads emit
/// one record each — or, with `flush`, one thread emits a record and then flushes. Every record
/// is written or counted as `shutdown`, never both, none lost; a record emitted before
/// `shutdown` began is written; once `shutdown` returns nothing is buffered and nothing more is
/// written; the racing flush (which the public API cannot produce: `TelemetryGuard::shutdown`
/// takes the guard) returns, and returns true only if its record, when the pipeline took it,
/// was written.
fn emit_racing_shutdown(flush: bool) -> usize {
    let drops = std::sync::Arc::new(Seen::default());
    let seen = std::sync::Arc::clone(&drops);
    let runs = explore(move || {
        let p = Arc::new(pipeline(8, 0, 2));
        let written = Arc::new(Written::default());
        let first_done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let model = WorkerModel {
            chunk: 2,
            death: Death::Never,
            timeouts: 0,
        };
        let w = worker(Arc::clone(&p), Arc::clone(&written), model);
        let a = {
            let (p, written, first_done) = (
                Arc::clone(&p),
                Arc::clone(&written),
                Arc::clone(&first_done),
            );
            thread::spawn(move || {
                let (record, token) = tracked(1);
                emit(&p, record);
                let taken = taken(1, &token, &written);
                first_done.store(true, Release);
                if !flush {
                    emit(&p, rec(2));
                // `flush` waits for what the pipeline took; a record refused because the
                // shutdown began first is counted as dropped, not waited for.
                } else if p.flush(NEVER) && taken {
                    assert!(written.ids().contains(&1), "flushed but 1 not written");
                }
            })
        };
        let must_write = first_done.load(Acquire);
        assert!(p.shutdown(NEVER), "the worker finishes");
        // `PipelineStats::buffered`, without `stats()`'s twenty other loads (each a point
        // where loom would interleave the emitting threads).
        let (queued, in_flight) = (p.queue.len(), p.acct.in_flight.load(Relaxed));
        assert_eq!((queued, in_flight), (0, 0), "buffered after shutdown");
        let at_shutdown = written.ids();
        if must_write {
            assert!(
                at_shutdown.contains(&1),
                "emitted before shutdown, not written"
            );
        }
        a.join().unwrap();
        w.join().unwrap();
        assert_eq!(
            written.ids(),
            at_shutdown,
            "written after shutdown returned"
        );
        let stats = p.stats();
        let emitted: &[u64] = if flush { &[1] } else { &[1, 2] };
        assert_accounted(&stats, &at_shutdown, emitted, &[DropReason::Shutdown]);
        seen.record(stats.dropped_total() > 0);
    });
    drops.assert_both("shutdown drops");
    runs
}

/// (d) The worker dies (a panic outside the per-record guards, at `death`) while two threads
/// emit and one of them flushes; then the main thread shuts down. Every record is written once
/// or counted once as `worker_dead` (still queued, or emitted after the death) or
/// `worker_panic` (held by the worker); a flush reports success only for records written;
/// shutdown reports the death; nothing is buffered after.
fn worker_death_racing_emit(death: Death) -> usize {
    let races = std::sync::Arc::new(Seen::default());
    let seen = std::sync::Arc::clone(&races);
    let runs = explore(move || {
        let p = Arc::new(pipeline(8, 0, 1));
        let written = Arc::new(Written::default());
        let model = WorkerModel {
            chunk: 1,
            death,
            timeouts: 0,
        };
        let w = worker(Arc::clone(&p), Arc::clone(&written), model);
        let a = {
            let (p, written) = (Arc::clone(&p), Arc::clone(&written));
            thread::spawn(move || {
                emit(&p, rec(1));
                emit(&p, rec(2));
                if p.flush(NEVER) {
                    let now = written.ids();
                    assert!(now.contains(&1) && now.contains(&2), "flushed: {now:?}");
                }
            })
        };
        let (record, token) = tracked(11);
        emit(&p, record);
        // Gone unwritten as soon as `emit` returned: refused, or closed out by the death.
        let raced = !taken(11, &token, &written);
        a.join().unwrap();
        assert!(!p.shutdown(NEVER), "shutdown reports the dead worker");
        w.join().unwrap();
        let stats = p.stats();
        assert!(!stats.worker_alive);
        assert_eq!(stats.worker_panics, 1, "{stats:?}");
        assert_accounted(
            &stats,
            &written.ids(),
            &[1, 2, 11],
            &[DropReason::WorkerDead, DropReason::WorkerPanic],
        );
        seen.record(raced);
    });
    races.assert_both("a death racing the main thread's emit");
    runs
}

type Model = (&'static str, fn() -> usize);

const MODELS: &[Model] = &[
    (
        "a_queue_two_producers_one_consumer",
        queue_two_producers_one_consumer,
    ),
    ("b_emit_racing_flush", || emit_racing_flush(0)),
    ("b_emit_racing_flush_first_wait_times_out", || {
        emit_racing_flush(1)
    }),
    ("c_emit_racing_shutdown", || emit_racing_shutdown(false)),
    ("c_flush_racing_shutdown", || emit_racing_shutdown(true)),
    ("d_worker_death_at_the_fail_point_racing_emit", || {
        worker_death_racing_emit(Death::AtRound(1))
    }),
    ("d_worker_death_holding_a_chunk_racing_emit", || {
        worker_death_racing_emit(Death::InChunk(0))
    }),
];

/// Runs the models whose names contain one of the arguments (all without any); `--list` lists
/// them as the test harness would. Other harness options are accepted and ignored.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in MODELS {
            println!("{name}: test");
        }
        return;
    }
    let mut filters = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if [
            "--test-threads",
            "--format",
            "--color",
            "--skip",
            "--logfile",
            "-Z",
        ]
        .contains(&arg.as_str())
        {
            rest.next();
        } else if !arg.starts_with('-') {
            filters.push(arg.as_str());
        }
    }
    let start = Instant::now();
    let mut ran = 0;
    for (name, model) in MODELS {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f)) {
            continue;
        }
        let t = Instant::now();
        let executions = model();
        println!(
            "loom model {name} ... ok ({executions} executions, {:.1?})",
            t.elapsed()
        );
        ran += 1;
    }
    println!("{ran} loom models passed in {:.1?}", start.elapsed());
}
