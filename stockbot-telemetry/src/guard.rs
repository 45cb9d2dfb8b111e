//! The guard returned by `init`: flush, stats, filter changes, and shutdown with a report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::collect::filter::SharedFilter;
use crate::collect::filter::parse_filter;
use crate::collect::metrics::MetricsRecorder;
use crate::collect::periodic::Periodic;
use crate::collect::record::LogRecord;
use crate::collect::slo::{SloStatus, SloTracker};
use crate::collect::system::SystemMetrics;
use crate::error::Error;
use crate::export::accounting::PipelineStats;
use crate::export::pipeline::Pipeline;
use crate::export::push::Pusher;
use crate::export::scrape::{RenderFn, ScrapeServer};
use crate::export::span_worker::SpanRecord;

/// Keeps the telemetry pipeline running; shut it down explicitly at the end of `main`.
///
/// Dropping the guard without calling [`shutdown`](TelemetryGuard::shutdown) does a bounded
/// best-effort flush (`pipeline.drop_flush_timeout`, default 2 s). Neither ever hangs: the
/// worker is a plain thread, so this works on current-thread and multi-thread tokio runtimes,
/// inside async code (it blocks that thread for at most the deadline) and with no runtime.
#[derive(Debug)]
#[must_use = "dropping the guard shuts telemetry down"]
pub struct TelemetryGuard {
    pipeline: Arc<Pipeline<LogRecord>>,
    spans: Option<Arc<Pipeline<SpanRecord>>>,
    filter: SharedFilter,
    drop_timeout: Duration,
    log_file: Option<PathBuf>,
    metrics: Option<MetricsParts>,
    shut_down: bool,
    /// What [`TelemetryGuard::ingest_line`] needs: the record clock and the value limit.
    ingest: (Arc<crate::collect::clock::RecordClock>, usize),
}

/// The running metrics side: recorder, renderer, scrape endpoint.
pub(crate) struct MetricsParts {
    pub(crate) recorder: MetricsRecorder,
    pub(crate) render: RenderFn,
    pub(crate) server: Option<ScrapeServer>,
    pub(crate) system: Option<SystemMetrics>,
    /// The SLO view and the thread that refreshes it.
    pub(crate) slo: Option<(Arc<SloTracker>, Periodic)>,
    pub(crate) pushers: Vec<Pusher>,
}

impl std::fmt::Debug for MetricsParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsParts")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl MetricsParts {
    /// Stops the endpoint, the collector and the pushers (final pushes run in parallel), all
    /// by `deadline`.
    fn stop(&mut self, deadline: Instant) {
        for pusher in &mut self.pushers {
            pusher.signal();
        }
        if let Some(server) = &mut self.server {
            server.stop_by(deadline);
        }
        if let Some(system) = self.system.take() {
            system.stop();
        }
        if let Some((_, periodic)) = self.slo.take() {
            periodic.stop();
        }
        for pusher in &mut self.pushers {
            pusher.stop_by(deadline);
        }
    }
}

/// What [`TelemetryGuard::shutdown`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Everything was written (or counted as dropped) before the deadline.
    pub completed: bool,
    /// Time the shutdown took.
    pub elapsed: Duration,
    /// The final counters: `stats.buffered()` records were still inside the pipeline when the
    /// deadline passed (0 when `completed`).
    pub stats: PipelineStats,
    /// The span pipeline's final counters, when traces were recorded.
    pub spans: Option<PipelineStats>,
}

impl ShutdownReport {
    /// Records written by the sink `name`.
    pub fn written(&self, sink: &str) -> u64 {
        self.stats.sink(sink).map_or(0, |s| s.written)
    }

    /// Records lost before the sinks or by any sink.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped_total()
            + self
                .stats
                .sinks
                .iter()
                .map(|s| s.dropped_total())
                .sum::<u64>()
    }

    /// Records not flushed by the deadline.
    pub fn still_buffered(&self) -> u64 {
        self.stats.buffered()
    }
}

impl std::fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "telemetry shutdown {} in {:?}: {} emitted",
            if self.completed {
                "completed"
            } else {
                "timed out"
            },
            self.elapsed,
            self.stats.emitted
        )?;
        for sink in &self.stats.sinks {
            write!(f, ", {} written to {}", sink.written, sink.name)?;
        }
        write!(
            f,
            ", {} dropped, {} still buffered",
            self.dropped(),
            self.still_buffered()
        )
    }
}

impl TelemetryGuard {
    pub(crate) fn new(
        pipeline: Arc<Pipeline<LogRecord>>,
        spans: Option<Arc<Pipeline<SpanRecord>>>,
        filter: SharedFilter,
        drop_timeout: Duration,
        log_file: Option<PathBuf>,
        metrics: Option<MetricsParts>,
        ingest: (Arc<crate::collect::clock::RecordClock>, usize),
    ) -> Self {
        TelemetryGuard {
            pipeline,
            spans,
            filter,
            drop_timeout,
            log_file,
            metrics,
            shut_down: false,
            ingest,
        }
    }

    /// Records a line that did not come from this SDK — a child process's or sidecar's JSON
    /// or logfmt line, or a FIX message — parsed by [`ingest::parse_line`](crate::ingest::parse_line)
    /// into a schema record (logger `ingest`, the field `ingest.source` = `source`), then
    /// enriched, redacted and shipped like any record. It never blocks; like any record it is
    /// counted, and dropped and counted when the queue is full. The level filter does not
    /// apply (the line was already logged by its producer).
    ///
    /// Field names outside the schema are kept (under `extra.`); at most 1024 distinct such
    /// names per process, past which further unknown fields are dropped and counted in the
    /// pipeline's `unknown_fields`.
    pub fn ingest_line(&self, source: &str, line: &str) {
        let (clock, limit) = &self.ingest;
        let parsed = crate::ingest::parse_line(line);
        let level = parsed.level.unwrap_or(tracing::Level::INFO);
        let mut message = parsed.message;
        let mut flags = 0;
        if message.len() > *limit {
            let cut = crate::collect::record::cut_point(&message, *limit);
            message.truncate(cut);
            message.push_str("…[truncated]");
            flags |= crate::collect::record::TRUNCATED;
        }
        let mut rec = LogRecord::internal(clock.stamp(), level, "ingest", message);
        rec.flags = flags;
        let source = rec.copy_text(source, 256);
        rec.fields.push(crate::collect::record::Field {
            name: "ingest.source",
            value: crate::collect::record::Value::Str(source),
        });
        // At most 128 fields from one line: a line cannot use up the process's field names.
        let extra = parsed.fields.len().saturating_sub(128) as u64;
        if extra > 0 {
            self.pipeline
                .acct
                .unknown_fields
                .fetch_add(extra, std::sync::atomic::Ordering::Relaxed);
        }
        for (name, value) in parsed.fields.into_iter().take(128) {
            let Some(name) = crate::ingest::field_name(&name) else {
                self.pipeline
                    .acct
                    .unknown_fields
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            };
            use crate::collect::record::Value as V;
            use crate::ingest::ParsedValue as P;
            let value = match value {
                P::Str(s) => V::Str(rec.copy_text(&s, *limit)),
                P::I64(i) => V::I64(i),
                P::F64(f) => V::F64(f),
                P::Bool(b) => V::Bool(b),
            };
            rec.fields
                .push(crate::collect::record::Field { name, value });
        }
        if self.pipeline.is_closed() {
            self.pipeline
                .acct
                .emitted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.pipeline.acct.dropped(self.pipeline.closed_reason());
            return;
        }
        self.pipeline.submit(rec);
    }

    /// The metrics recorder (when `metrics.enabled`), for scoped use with
    /// `metrics::with_local_recorder` — the global one is installed by [`init`](crate::init).
    pub fn metrics_recorder(&self) -> Option<MetricsRecorder> {
        self.metrics.as_ref().map(|m| m.recorder.clone())
    }

    /// This process's view of its SLOs ([`Config::slos`](crate::Config::slos)), read now:
    /// events, bad events and error budget left over the part of each window the process has
    /// seen, and burn rates over the alert windows. Empty without SLOs or with metrics off.
    ///
    /// The same numbers are served as gauges (`stockbot_slo_error_budget_remaining_ratio`,
    /// `stockbot_slo_burn_rate_ratio{window}`, `stockbot_slo_window_observed_seconds`,
    /// `stockbot_slo_objective_ratio`), refreshed every `metrics.slo_interval`. Prometheus'
    /// rules stay the authority: they see every replica and survive restarts.
    ///
    /// ```
    /// # let mut config = stockbot_telemetry::Config::for_service("order-router");
    /// # config.log.stdout = false;
    /// # config.log.file.enabled = false;
    /// # config.metrics.listen = String::new();
    /// # config.traces.file.enabled = false;
    /// # config.metrics.system.enabled = false;
    /// use stockbot_telemetry::alerting::Slo;
    /// config.slos.push(Slo::calls("order_submission", 0.999));
    /// let (_layer, guard) = stockbot_telemetry::TelemetryBuilder::new(config)
    ///     .with_writer("null", std::io::sink())
    ///     .build()
    ///     .unwrap();
    /// let status = &guard.slo_status()[0];
    /// // A strategy can stop opening positions when the budget is gone.
    /// let may_trade = status.budget_remaining > 0.0;
    /// assert!(may_trade && status.events == 0);
    /// ```
    pub fn slo_status(&self) -> Vec<SloStatus> {
        self.metrics
            .as_ref()
            .and_then(|m| m.slo.as_ref())
            .map_or_else(Vec::new, |(tracker, _)| tracker.sample())
    }

    /// The address the scrape endpoint listens on (`GET /metrics`), when it runs.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics
            .as_ref()?
            .server
            .as_ref()
            .map(ScrapeServer::addr)
    }

    /// The exposition as the scrape endpoint would serve it now (Prometheus text 0.0.4).
    pub fn render_metrics(&self) -> Option<String> {
        self.metrics
            .as_ref()
            .map(|m| (m.render)(crate::export::exposition::Format::Text))
    }

    /// The exposition in OpenMetrics 1.0 text format, with exemplars on histogram buckets —
    /// what the scrape endpoint serves a scraper that asks for OpenMetrics.
    pub fn render_openmetrics(&self) -> Option<String> {
        self.metrics
            .as_ref()
            .map(|m| (m.render)(crate::export::exposition::Format::OpenMetrics))
    }

    /// Waits until every record the pipelines accepted before this call is written (delivered,
    /// or safely in a network sink's spool), or `timeout` passes. Returns whether everything
    /// was written in time. Records refused on emit (a full queue) are not waited for: they are
    /// already counted as dropped (`stats().dropped`).
    pub fn flush(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        let spans = self.spans.as_ref().is_none_or(|s| s.flush(timeout));
        spans && self.pipeline.flush(timeout.saturating_sub(start.elapsed()))
    }

    /// The span pipeline's counters, when traces are recorded.
    pub fn span_stats(&self) -> Option<PipelineStats> {
        self.spans.as_ref().map(|s| s.stats())
    }

    /// The pipeline's counters now.
    pub fn stats(&self) -> PipelineStats {
        self.pipeline.stats()
    }

    /// Replaces the level filter (`RUST_LOG` syntax) without a restart.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidFilter`](crate::ErrorKind::InvalidFilter) when the directives do not
    /// parse; the current filter stays.
    pub fn set_filter(&self, directives: &str) -> Result<(), Error> {
        let targets =
            parse_filter(directives).map_err(|reason| crate::ErrorKind::InvalidFilter {
                directives: directives.to_owned(),
                reason,
            })?;
        self.filter.replace(targets);
        Ok(())
    }

    pub(crate) fn max_level(&self) -> tracing_core::LevelFilter {
        self.filter.max_level()
    }

    pub(crate) fn mark_global(&self) {
        self.filter.drive_log_max_level();
    }

    /// Path of the active rolling log file, when the file sink is on.
    pub fn log_file(&self) -> Option<&Path> {
        self.log_file.as_deref()
    }

    /// Stops accepting records, writes what is buffered, and returns within `timeout` with a
    /// report of what was written, dropped and left behind. Events emitted afterwards are
    /// counted as dropped (`shutdown`).
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.shut_down = true;
        let start = Instant::now();
        // One deadline for everything: metrics get a third, then spans half of what is left,
        // then logs the rest.
        if let Some(m) = &mut self.metrics {
            m.stop(start + timeout / 3);
        }
        let spans_done = self
            .spans
            .as_ref()
            .is_none_or(|s| s.shutdown(timeout.saturating_sub(start.elapsed()) / 2));
        let logs_done = self
            .pipeline
            .shutdown(timeout.saturating_sub(start.elapsed()));
        ShutdownReport {
            completed: spans_done && logs_done,
            elapsed: start.elapsed(),
            stats: self.pipeline.stats(),
            spans: self.spans.as_ref().map(|s| s.stats()),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if !self.shut_down {
            let start = Instant::now();
            let timeout = self.drop_timeout;
            if let Some(m) = &mut self.metrics {
                m.stop(start + timeout / 3);
            }
            if let Some(spans) = &self.spans {
                spans.shutdown(timeout.saturating_sub(start.elapsed()) / 2);
            }
            self.pipeline
                .shutdown(timeout.saturating_sub(start.elapsed()));
        }
    }
}
