//! Drop accounting: for every sink, `emitted = written + dropped{reason} + buffered`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use super::sync::{AtomicBool, AtomicU64};

/// Why a record was lost. Every drop increments exactly one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum DropReason {
    /// The queue held `queue_capacity - audit_reserve` records (non-audit) or was full.
    QueueFull,
    /// The queue's byte bound was reached.
    QueueBytes,
    /// Emitted after shutdown began.
    Shutdown,
    /// The worker thread died (a bug, reported on stderr); records can no longer be written.
    WorkerDead,
    /// A span of an unsampled trace could not be held for the local keep rules (buffers full).
    KeepBufferFull,
    /// The sink's write failed (I/O error, full disk).
    SinkError,
    /// The sink is backing off after failures.
    SinkBackoff,
    /// The worker panicked while handling the record (a bug; counted, never silent).
    WorkerPanic,
    /// The receiver refused these records (OTLP partial success; Elasticsearch 4xx items,
    /// which also go to the dead-letter file).
    Rejected,
    /// A single record larger than the sink's largest request.
    Oversize,
    /// A network sink's memory buffer was full and its spool (if any) full or failing.
    BufferFull,
    /// A network sink's shipper thread died (a bug, reported on stderr): what it held in
    /// memory, and every later record of that sink.
    ShipperDead,
}

impl DropReason {
    pub(crate) const PIPELINE: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::QueueBytes,
        DropReason::Shutdown,
        DropReason::WorkerDead,
        DropReason::KeepBufferFull,
    ];
    pub(crate) const SINK: [DropReason; 7] = [
        DropReason::SinkError,
        DropReason::SinkBackoff,
        DropReason::WorkerPanic,
        DropReason::Rejected,
        DropReason::Oversize,
        DropReason::BufferFull,
        DropReason::ShipperDead,
    ];

    /// Label value used in stats and metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::QueueBytes => "queue_bytes",
            DropReason::Shutdown => "shutdown",
            DropReason::WorkerDead => "worker_dead",
            DropReason::KeepBufferFull => "keep_buffer_full",
            DropReason::SinkError => "sink_error",
            DropReason::SinkBackoff => "sink_backoff",
            DropReason::WorkerPanic => "worker_panic",
            DropReason::Rejected => "rejected",
            DropReason::Oversize => "oversize",
            DropReason::BufferFull => "buffer_full",
            DropReason::ShipperDead => "shipper_dead",
        }
    }

    fn pipeline_index(self) -> usize {
        match self {
            DropReason::QueueFull => 0,
            DropReason::QueueBytes => 1,
            DropReason::Shutdown => 2,
            DropReason::WorkerDead => 3,
            _ => 4,
        }
    }

    fn sink_index(self) -> usize {
        match self {
            DropReason::SinkError => 0,
            DropReason::SinkBackoff => 1,
            DropReason::WorkerPanic => 2,
            DropReason::Rejected => 3,
            DropReason::Oversize => 4,
            DropReason::BufferFull => 5,
            _ => 6,
        }
    }
}

#[derive(Debug)]
pub(crate) struct SinkCounters {
    pub(crate) name: String,
    written: AtomicU64,
    dropped: [AtomicU64; 7],
    /// False once the sink's own thread (a network sink's shipper) died.
    pub(crate) alive: AtomicBool,
    /// Records held by the sink's shipper (memory, spool, in flight), recovered ones included.
    pub(crate) buffered: AtomicU64,
    /// Of those, records of this process in the spool.
    pub(crate) spooled: AtomicU64,
    /// Records of earlier runs found in the spool (read so far).
    pub(crate) recovered: AtomicU64,
    pub(crate) spool_bytes: AtomicU64,
    pub(crate) spool_corrupt_frames: AtomicU64,
    pub(crate) spool_write_errors: AtomicU64,
}

impl SinkCounters {
    pub(crate) fn written(&self, n: u64) {
        self.written.fetch_add(n, Relaxed);
    }
    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        self.dropped[reason.sink_index()].fetch_add(n, Relaxed);
    }
}

/// Counters of one signal's pipeline.
#[derive(Debug)]
pub(crate) struct Accounting {
    pub(crate) emitted: AtomicU64,
    pub(crate) sampled_away: AtomicU64,
    /// Taken from the queue by the worker, not yet written (or dropped) by every sink.
    pub(crate) in_flight: AtomicU64,
    pub(crate) unknown_fields: AtomicU64,
    pub(crate) type_errors: AtomicU64,
    pub(crate) redactions: AtomicU64,
    pub(crate) truncated: AtomicU64,
    pub(crate) worker_panics: AtomicU64,
    /// Time the last batch's oldest record waited before the sinks had it, in nanoseconds.
    pub(crate) batch_latency_ns: AtomicU64,
    dropped: [AtomicU64; 5],
    pub(crate) sinks: Vec<SinkCounters>,
}

impl Accounting {
    pub(crate) fn new(sink_names: impl IntoIterator<Item = String>) -> Self {
        Accounting {
            emitted: AtomicU64::new(0),
            sampled_away: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            unknown_fields: AtomicU64::new(0),
            type_errors: AtomicU64::new(0),
            redactions: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            worker_panics: AtomicU64::new(0),
            batch_latency_ns: AtomicU64::new(0),
            dropped: Default::default(),
            sinks: sink_names
                .into_iter()
                .map(|name| SinkCounters {
                    name,
                    written: AtomicU64::new(0),
                    dropped: Default::default(),
                    alive: AtomicBool::new(true),
                    buffered: AtomicU64::new(0),
                    spooled: AtomicU64::new(0),
                    recovered: AtomicU64::new(0),
                    spool_bytes: AtomicU64::new(0),
                    spool_corrupt_frames: AtomicU64::new(0),
                    spool_write_errors: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// An in-flight record the worker lost to a panic while encoding it (every sink drops it).
    pub(crate) fn lost_to_panic(&self) {
        self.worker_panics.fetch_add(1, Relaxed);
        for counters in &self.sinks {
            counters.dropped(DropReason::WorkerPanic, 1);
        }
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// A record lost before any sink saw it (counts for every sink).
    pub(crate) fn dropped(&self, reason: DropReason) {
        self.dropped[reason.pipeline_index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn dropped_count(&self, reason: DropReason) -> u64 {
        if DropReason::PIPELINE.contains(&reason) {
            self.dropped[reason.pipeline_index()].load(Relaxed)
        } else {
            self.sinks
                .iter()
                .map(|s| s.dropped[reason.sink_index()].load(Relaxed))
                .sum()
        }
    }

    pub(crate) fn snapshot(&self, queued: u64) -> PipelineStats {
        PipelineStats {
            emitted: self.emitted.load(Relaxed),
            sampled_away: self.sampled_away.load(Relaxed),
            queued,
            in_flight: self.in_flight.load(Relaxed),
            dropped: DropReason::PIPELINE
                .iter()
                .map(|r| (r.as_str(), self.dropped[r.pipeline_index()].load(Relaxed)))
                .collect(),
            sinks: self
                .sinks
                .iter()
                .map(|s| SinkStats {
                    name: s.name.clone(),
                    written: s.written.load(Relaxed),
                    dropped: DropReason::SINK
                        .iter()
                        .map(|r| (r.as_str(), s.dropped[r.sink_index()].load(Relaxed)))
                        .collect(),
                    alive: s.alive.load(Relaxed),
                    buffered: s.buffered.load(Relaxed),
                    spooled: s.spooled.load(Relaxed),
                    recovered: s.recovered.load(Relaxed),
                    spool_bytes: s.spool_bytes.load(Relaxed),
                    spool_corrupt_frames: s.spool_corrupt_frames.load(Relaxed),
                    spool_write_errors: s.spool_write_errors.load(Relaxed),
                })
                .collect(),
            unknown_fields: self.unknown_fields.load(Relaxed),
            type_errors: self.type_errors.load(Relaxed),
            redactions: self.redactions.load(Relaxed),
            truncated: self.truncated.load(Relaxed),
            worker_panics: self.worker_panics.load(Relaxed),
            last_batch_latency: std::time::Duration::from_nanos(
                self.batch_latency_ns.load(Relaxed),
            ),
            worker_alive: true,
        }
    }
}

/// A snapshot of the log pipeline's counters.
///
/// For every sink, `emitted = written + dropped (pipeline) + dropped (sink) + queued + in_flight`;
/// after a flush or shutdown `queued = in_flight = 0`. Taken while records flow, the counters
/// are read one after the other, so the identity is exact only once the pipeline is idle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// Records that entered the pipeline (after the level filter and sampling).
    pub emitted: u64,
    /// Events skipped by call-site sampling (not emitted).
    pub sampled_away: u64,
    /// Records waiting in the queue.
    pub queued: u64,
    /// Records taken by the worker and not yet written by every sink.
    pub in_flight: u64,
    /// Records lost before reaching any sink, by reason (`queue_full`, `queue_bytes`,
    /// `shutdown`, `worker_dead`).
    pub dropped: BTreeMap<&'static str, u64>,
    /// Per sink: written and dropped by reason (`sink_error`, `sink_backoff`, `worker_panic`).
    pub sinks: Vec<SinkStats>,
    /// Unknown fields seen (kept under `extra.`).
    pub unknown_fields: u64,
    /// Fields with a value of the wrong type (kept under `extra.` as text).
    pub type_errors: u64,
    /// Secrets replaced by a redaction marker.
    pub redactions: u64,
    /// Logs: records with at least one value cut to `log.max_field_bytes`. Spans: attributes,
    /// events and links dropped by `traces.limits` (also counted on each span).
    pub truncated: u64,
    /// Panics caught on the worker (each also counted as drops of the affected records).
    pub worker_panics: u64,
    /// How long the oldest record of the last batch waited between capture on the worker's
    /// side of the queue and the sinks' write (the export latency).
    pub last_batch_latency: std::time::Duration,
    /// Whether the worker thread runs (false after shutdown, or if it died).
    pub worker_alive: bool,
}

/// Counters of one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// `stdout`, `file`, or the name given to a custom writer.
    pub name: String,
    /// Records written.
    pub written: u64,
    /// Records this sink lost, by reason (`buffer_full` and the spool's counters apply to
    /// network sinks: Elasticsearch, OTLP).
    pub dropped: BTreeMap<&'static str, u64>,
    /// False once the sink's own thread died (a network sink's shipper; a bug, reported on
    /// stderr): later records of this sink are counted as `shipper_dead`.
    pub alive: bool,
    /// Records held by the sink's shipper and not yet delivered or dropped: in its memory
    /// buffer, in flight, or in its disk spool (recovered records included).
    pub buffered: u64,
    /// Of `buffered`, records of this process waiting in the disk spool.
    pub spooled: u64,
    /// Records of earlier runs found in the spool and replayed (or being replayed) by this
    /// one; they count as written or dropped like this run's records.
    pub recovered: u64,
    /// Size of the spool's files.
    pub spool_bytes: u64,
    /// Spool frames found corrupt (bad checksum, torn tail) and skipped.
    pub spool_corrupt_frames: u64,
    /// Spool writes that failed (disk full, I/O error); the records fell back to memory or
    /// were counted as `buffer_full`.
    pub spool_write_errors: u64,
}

impl SinkStats {
    /// All records this sink lost.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

impl PipelineStats {
    /// Records lost before reaching any sink.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Records still inside the pipeline.
    pub fn buffered(&self) -> u64 {
        self.queued + self.in_flight
    }

    /// The sink named `name`.
    pub fn sink(&self, name: &str) -> Option<&SinkStats> {
        self.sinks.iter().find(|s| s.name == name)
    }

    /// Whether `emitted + recovered = written + dropped + buffered` holds for every sink
    /// (buffered: the pipeline's and the sink's own).
    pub fn accounted_for(&self) -> bool {
        self.sinks.iter().all(|s| {
            self.emitted + s.recovered
                == s.written
                    + s.dropped_total()
                    + self.dropped_total()
                    + self.buffered()
                    + s.buffered
        })
    }
}
