//! The background worker: drains the queue, processes and encodes records, writes batches to
//! every sink, answers flush and shutdown requests, and reports drops (rate-limited).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tracing_core::Level;

use super::accounting::DropReason;
use super::batch::{Batch, BatchLimits};
use super::pipeline::Pipeline;
use super::retry::{Backoff, RetryPolicy};
use super::sink::Sink;
use crate::collect::clock::RecordClock;
use crate::collect::record::LogRecord;
use crate::process::Processor;

/// At most one drop report per reason in this interval.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);
const RECALIBRATE_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct SinkSlot {
    pub(crate) name: String,
    pub(crate) sink: Box<dyn Sink>,
    backoff: Backoff,
}

impl SinkSlot {
    /// Writes one batch of `n` records, counting the outcome; never panics (a panicking sink
    /// counts its batch as `worker_panic`), never retries (a failed sink backs off).
    pub(crate) fn write(
        &mut self,
        bytes: &[u8],
        audit: &[bool],
        n: u64,
        counters: &super::accounting::SinkCounters,
        panics: &std::sync::atomic::AtomicU64,
    ) {
        let now = Instant::now();
        if !self.backoff.ready(now) {
            counters.dropped(DropReason::SinkBackoff, n);
            return;
        }
        let sink = &mut self.sink;
        match catch_unwind(AssertUnwindSafe(|| sink.write_lines(bytes, audit))) {
            Ok(Ok(written)) => {
                let rejected = written.rejected.min(n);
                let failed = written.failed.min(n - rejected);
                let oversize = written.oversize.min(n - rejected - failed);
                let deferred = written.deferred.min(n - rejected - failed - oversize);
                counters.written(n - rejected - failed - oversize - deferred);
                counters.dropped(DropReason::Rejected, rejected);
                counters.dropped(DropReason::SinkError, failed);
                counters.dropped(DropReason::Oversize, oversize);
                if failed == n && n > 0 {
                    self.backoff.failed(now, None);
                } else {
                    self.backoff.succeeded();
                }
            }
            Ok(Err(_)) => {
                counters.dropped(DropReason::SinkError, n);
                self.backoff.failed(now, None);
            }
            Err(_) => {
                panics.fetch_add(1, Relaxed);
                counters.dropped(DropReason::WorkerPanic, n);
            }
        }
    }

    pub(crate) fn new(name: impl Into<String>, sink: Box<dyn Sink>) -> Self {
        SinkSlot {
            name: name.into(),
            sink,
            backoff: Backoff::new(RetryPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(5),
                ..RetryPolicy::default()
            }),
        }
    }
}

pub(crate) struct Worker {
    pipeline: Arc<Pipeline<LogRecord>>,
    clock: Arc<RecordClock>,
    sinks: Vec<SinkSlot>,
    processor: Processor,
    batch: Batch,
    batch_max_records: usize,
    records: Vec<LogRecord>,
    internal: Vec<LogRecord>,
    last_calibration: Instant,
    /// Per reason: (count already reported, when).
    reported: HashMap<(usize, DropReason), (u64, Option<Instant>)>,
}

impl Worker {
    pub(crate) fn new(
        pipeline: Arc<Pipeline<LogRecord>>,
        clock: Arc<RecordClock>,
        sinks: Vec<SinkSlot>,
        processor: Processor,
        limits: BatchLimits,
    ) -> Self {
        let mut sinks = sinks;
        for (i, slot) in sinks.iter_mut().enumerate() {
            slot.sink.bind(&pipeline.acct, i);
        }
        Worker {
            pipeline,
            clock,
            sinks,
            processor,
            batch: Batch::new(limits),
            batch_max_records: limits.max_records,
            records: Vec::with_capacity(limits.max_records),
            internal: Vec::new(),
            last_calibration: Instant::now(),
            reported: HashMap::new(),
        }
    }

    /// The worker loop; returns when shutdown was requested and everything was written.
    pub(crate) fn run(mut self) {
        let mut seen = 0;
        let mut synced = 0;
        loop {
            let (epoch, shutdown, deadline) = self.pipeline.worker_round();
            // Tests kill the worker here (outside the per-record guards).
            #[cfg(feature = "fail-points")]
            fail::fail_point!("stockbot-log-worker-round");
            self.drain(!shutdown);
            self.report_drops();
            self.flush_internal();
            let mut ok = true;
            for slot in &mut self.sinks {
                if catch_unwind(AssertUnwindSafe(|| slot.sink.flush())).is_err() {
                    self.pipeline.acct.worker_panics.fetch_add(1, Relaxed);
                }
            }
            // A flush or shutdown waits for the network sinks' shippers too (by its deadline).
            if epoch > synced || shutdown {
                let deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(5));
                if shutdown {
                    // Every network sink winds up at once, each with the whole deadline.
                    for slot in &mut self.sinks {
                        let sink = &mut slot.sink;
                        let _ = catch_unwind(AssertUnwindSafe(|| sink.stop(deadline)));
                    }
                }
                for slot in &mut self.sinks {
                    let sink = &mut slot.sink;
                    ok &= catch_unwind(AssertUnwindSafe(|| {
                        if shutdown {
                            sink.close(deadline)
                        } else {
                            sink.sync(deadline)
                        }
                    }))
                    .unwrap_or(false);
                }
                synced = epoch;
            }
            self.pipeline.flush_done(epoch, ok);
            if shutdown {
                break;
            }
            if self.last_calibration.elapsed() >= RECALIBRATE_INTERVAL {
                self.clock.recalibrate();
                self.last_calibration = Instant::now();
            }
            seen = self.pipeline.queue.wait(seen, self.pipeline.flush_interval);
        }
    }

    /// Takes what is queued and writes it in batches. A bounded round takes only what was
    /// queued when it began, so that under sustained load flushes, drop reports and clock
    /// recalibration still happen; the final round (intake stopped) takes everything.
    fn drain(&mut self, bounded: bool) {
        let pipeline = Arc::clone(&self.pipeline);
        let mut records = std::mem::take(&mut self.records);
        pipeline.drain_round(bounded, self.batch_max_records, &mut records, |chunk| {
            for rec in chunk.drain(..) {
                self.encode(&rec);
            }
        });
        self.records = records;
        self.write_batch();
    }

    /// Encodes diagnostics the worker itself produced (schema violations, drop reports).
    fn flush_internal(&mut self) {
        while !self.internal.is_empty() {
            let records = std::mem::take(&mut self.internal);
            let n = records.len() as u64;
            self.pipeline.acct.emitted.fetch_add(n, Relaxed);
            self.pipeline.acct.in_flight.fetch_add(n, Relaxed);
            for rec in &records {
                self.encode(rec);
            }
            self.write_batch();
        }
    }

    fn encode(&mut self, rec: &LogRecord) {
        let start = self.batch.bytes.len();
        let (processor, out, internal, acct) = (
            &mut self.processor,
            &mut self.batch.bytes,
            &mut self.internal,
            &self.pipeline.acct,
        );
        let result = catch_unwind(AssertUnwindSafe(|| {
            processor.encode(rec, out, acct, internal)
        }));
        if result.is_err() {
            self.batch.bytes.truncate(start);
            acct.lost_to_panic();
            return;
        }
        self.batch.line_added(Instant::now(), rec.is_audit());
        if self.batch.is_full() {
            self.write_batch();
        }
    }

    fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let n = self.batch.records as u64;
        let now = Instant::now();
        let acct = &self.pipeline.acct;
        if let Some(age) = self.batch.age(now) {
            acct.batch_latency_ns
                .store(u64::try_from(age.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        }
        for (i, slot) in self.sinks.iter_mut().enumerate() {
            slot.write(
                &self.batch.bytes,
                &self.batch.audit,
                n,
                &acct.sinks[i],
                &acct.worker_panics,
            );
        }
        acct.in_flight.fetch_sub(n, Relaxed);
        self.batch.clear();
    }

    /// One warning record per reason and sink at most every 10 s, never one per dropped item.
    fn report_drops(&mut self) {
        let acct = &self.pipeline.acct;
        let now = Instant::now();
        let mut counts: Vec<(usize, DropReason, String, u64)> = DropReason::PIPELINE
            .iter()
            .map(|&r| (usize::MAX, r, "all sinks".to_owned(), acct.dropped_count(r)))
            .collect();
        let stats = acct.snapshot(0);
        for (i, sink) in stats.sinks.iter().enumerate() {
            for (&reason, &n) in &sink.dropped {
                let r = DropReason::SINK
                    .into_iter()
                    .find(|r| r.as_str() == reason)
                    .unwrap_or(DropReason::SinkError);
                counts.push((i, r, sink.name.clone(), n));
            }
        }
        for (sink, reason, sink_name, count) in counts {
            let entry = self.reported.entry((sink, reason)).or_insert((0, None));
            if count <= entry.0 {
                continue;
            }
            if entry
                .1
                .is_some_and(|t| now.duration_since(t) < DROP_REPORT_INTERVAL)
            {
                continue;
            }
            let new = count - entry.0;
            *entry = (count, Some(now));
            self.internal.push(LogRecord::internal(
                self.clock.stamp(),
                Level::WARN,
                "stockbot_telemetry::pipeline",
                format!(
                    "telemetry dropped {new} log records ({}, {sink_name}); {count} in total",
                    reason.as_str()
                ),
            ));
        }
    }
}
