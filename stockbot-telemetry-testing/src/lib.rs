//! # stockbot-telemetry-testing
//!
//! Capture the telemetry of one test and assert on it. A [`Capture`] runs the real SDK
//! pipeline — schema enforcement (strict by default), enrichment, redaction, JSON encoding —
//! into memory, scoped to the current thread, so tests running in parallel never see each
//! other's records. Assertions read the JSON lines exactly as a sink would receive them, and a
//! failed assertion prints everything captured.
//!
//! ```
//! use stockbot_telemetry_testing::Capture;
//!
//! let capture = Capture::start();
//! tracing::info!(cl_ord_id = "C-1", symbol = "AAPL", quantity = 100, "order accepted");
//! tracing::warn!(api_key = "sk_live_0123456789abcdef0123", "venue login");
//!
//! let logs = capture.logs();
//! logs.message("order accepted")
//!     .field("order.cl_ord_id", "C-1")
//!     .field("order.quantity", 100)
//!     .assert_one();
//! logs.level("WARN").field("api_key", "[REDACTED]").assert_one();
//! capture.assert_schema_valid();
//! ```
//!
//! ## What is captured
//!
//! * Events on the thread that called [`Capture::start`], while the capture lives.
//! * Tasks spawned with [`stockbot_telemetry::spawn`] or instrumented with
//!   `tracing::instrument::WithSubscriber::with_current_subscriber`, and threads started
//!   with [`stockbot_telemetry::spawn_thread`].
//! * Everything inside [`Capture::block_on`], which runs a future on a multi-thread tokio
//!   runtime whose worker threads all report to this capture — so even plain `tokio::spawn`
//!   is caught.
//! * Plain `std::thread::spawn` threads are not caught by a scoped capture (no `tracing`
//!   scope crosses them). Use [`Capture::global`] in a test binary that runs one test per
//!   process (an integration-test file with a single test, or `cargo nextest`), which
//!   installs the capture process-wide.

pub mod alertmanager;
pub mod elasticsearch;
pub mod fault_proxy;
mod http_server;
mod metric_capture;
pub mod otlp;
pub mod prometheus;
mod span_capture;

pub use metric_capture::{Metrics, Sample};
pub use span_capture::{FinishedSpan, SpanEvent, SpanKind, SpanLink, Spans};

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use stockbot_telemetry::conventions::{self, FieldType};
use stockbot_telemetry::{Config, PipelineStats, SchemaMode, TelemetryBuilder, TelemetryGuard};

const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Fields every record must carry.
pub const REQUIRED_FIELDS: &[&str] = &[
    "@timestamp",
    "log.level",
    "message",
    "ecs.version",
    "schema.version",
    "service.name",
    "service.version",
    "service.environment",
    "deployment.mode",
    "host.name",
    "event.dataset",
    "process.pid",
    "log.logger",
];

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The telemetry of one test.
///
/// Created with [`Capture::start`] (scoped to the current thread), [`Capture::with_config`],
/// or [`Capture::global`] (process-wide). Dropping it shuts its pipeline down.
pub struct Capture {
    // Field order matters: the scopes end before the pipeline shuts down.
    _metrics_scope: Option<metrics::LocalRecorderGuard<'static>>,
    _scope: Option<tracing::dispatcher::DefaultGuard>,
    dispatch: tracing::Dispatch,
    guard: Option<TelemetryGuard>,
    buffer: Buffer,
    span_buffer: Buffer,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

/// Resident memory of this process, in bytes (`/proc/self/statm`; 0 where it cannot be read).
/// For load generators and benchmarks that report memory over time.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// The configuration of a load generator (`log-load`, `soak`): only the application's own
/// records at `info`, no stdout, no files, no scrape endpoint, no system metrics, a 50 ms
/// flush interval. The caller adds the backends.
pub fn load_config(service: &str) -> Config {
    let mut config = Config::for_service(service);
    config.log.stdout = false;
    config.log.file.enabled = false;
    config.log.filter = "info,stockbot_telemetry=off".into();
    config.metrics.listen = String::new();
    config.metrics.system.enabled = false;
    config.traces.file.enabled = false;
    config.pipeline.flush_interval = Duration::from_millis(50);
    config
}

/// Polls `done` every 20 ms until it holds or `limit` passes; returns whether it held. For
/// waiting on background threads in tests (a generous limit proves "does not hang", never
/// speed).
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The configuration a capture starts from: strict schema, no stdout, no file, `trace` level,
/// service `test-service` whose own targets are every target (so strict mode applies to the
/// code under test).
pub fn test_config() -> Config {
    let mut config = Config::for_service("test-service");
    config.service.host_name = Some("test-host".into());
    config.service.own_targets = vec!["*".into()];
    config.log.stdout = false;
    config.log.file.enabled = false;
    config.log.filter = "trace".into();
    config.metrics.listen = String::new();
    config.metrics.system.enabled = false;
    config.traces.file.enabled = false;
    config.traces.sampler = "always_on".into();
    config.log.schema = SchemaMode::Strict;
    config.log.redaction.pseudonym_key = Some(stockbot_telemetry::Secret::new(
        "stockbot-telemetry-testing-key",
    ));
    config
}

impl Capture {
    /// Captures this thread's telemetry with [`test_config`].
    ///
    /// # Panics
    /// If the SDK cannot be built (it can only fail on a bad configuration).
    pub fn start() -> Capture {
        Capture::with_config(test_config())
    }

    /// Captures this thread's telemetry with `config`; stdout and file sinks stay as
    /// configured, and a memory sink named `capture` is added.
    ///
    /// # Panics
    /// If `config` is invalid (the message names the field).
    pub fn with_config(config: Config) -> Capture {
        let mut capture = Capture::unscoped(config);
        capture._scope = Some(tracing::dispatcher::set_default(&capture.dispatch));
        if let Some(recorder) = capture.guard().metrics_recorder() {
            // The local-recorder guard borrows the recorder for its lifetime: one small
            // allocation per capture is leaked so the guard can live inside the capture.
            let recorder: &'static stockbot_telemetry::MetricsRecorder =
                Box::leak(Box::new(recorder));
            capture._metrics_scope = Some(metrics::set_default_local_recorder(recorder));
        }
        capture
    }

    /// Captures the telemetry of the whole process: installs the capture as the global
    /// default subscriber, so plain `std::thread::spawn` threads are captured too. Only one per
    /// process: use it in a test binary that runs a single test.
    ///
    /// # Panics
    /// If a global subscriber is already installed.
    pub fn global() -> Capture {
        let capture = Capture::unscoped(test_config());
        tracing::dispatcher::set_global_default(capture.dispatch.clone())
            .expect("Capture::global: a global tracing subscriber is already installed");
        if let Some(recorder) = capture.guard().metrics_recorder() {
            metrics::set_global_recorder(recorder)
                .expect("Capture::global: a global metrics recorder is already installed");
        }
        capture
    }

    fn unscoped(config: Config) -> Capture {
        let buffer = Buffer::default();
        let span_buffer = Buffer::default();
        let (dispatch, guard) = TelemetryBuilder::new(config)
            .with_writer("capture", buffer.clone())
            .with_span_writer("capture", span_buffer.clone())
            .build_dispatch()
            .unwrap_or_else(|e| panic!("stockbot-telemetry-testing: {e}"));
        Capture {
            _metrics_scope: None,
            _scope: None,
            dispatch,
            guard: Some(guard),
            buffer,
            span_buffer,
        }
    }

    /// The capture's dispatcher, to hand to threads the capture does not reach by itself
    /// (`tracing::dispatcher::with_default(&dispatch, || …)`).
    pub fn dispatch(&self) -> tracing::Dispatch {
        self.dispatch.clone()
    }

    /// Runs `future` to completion on a fresh multi-thread tokio runtime whose threads all
    /// report to this capture, so even plain `tokio::spawn`ed tasks are captured.
    ///
    /// # Panics
    /// If the runtime cannot be built.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        let dispatch = self.dispatch.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                // The runtime's threads are ours alone: keep the capture as their default.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            })
            .build()
            .expect("stockbot-telemetry-testing: cannot build a tokio runtime");
        let out = tracing::dispatcher::with_default(&self.dispatch, || runtime.block_on(future));
        runtime.shutdown_timeout(Duration::from_secs(5));
        out
    }

    fn guard(&self) -> &TelemetryGuard {
        self.guard
            .as_ref()
            .expect("capture guard present until drop")
    }

    /// Waits until everything emitted so far is written.
    ///
    /// # Panics
    /// If the pipeline does not flush within 10 s.
    pub fn flush(&self) {
        assert!(
            self.guard().flush(FLUSH_TIMEOUT),
            "capture did not flush within {FLUSH_TIMEOUT:?}"
        );
    }

    /// The pipeline's counters (after a flush).
    pub fn stats(&self) -> PipelineStats {
        self.flush();
        self.guard().stats()
    }

    /// Changes the level filter of this capture.
    ///
    /// # Panics
    /// If `directives` do not parse.
    pub fn set_filter(&self, directives: &str) {
        self.guard()
            .set_filter(directives)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The raw JSON lines written so far (after a flush).
    pub fn raw(&self) -> String {
        self.flush();
        let bytes = self
            .buffer
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        String::from_utf8(bytes).expect("the SDK writes UTF-8")
    }

    /// A snapshot of every metric recorded in the capture's scope (on this thread, or
    /// process-wide for [`Capture::global`]), as the scrape endpoint would serve it.
    ///
    /// Metrics recorded on other threads are not captured by a scoped capture (the `metrics`
    /// facade's local recorder is per thread): use [`Capture::global`] for those.
    pub fn metrics(&self) -> Metrics {
        Metrics::parse(&self.guard().render_metrics().unwrap_or_default())
    }

    /// The spans finished so far (sampled ones; the test configuration samples everything).
    ///
    /// # Panics
    /// If a captured line is not a span (that would be an SDK bug).
    pub fn spans(&self) -> Spans {
        self.flush();
        let bytes = self
            .span_buffer
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let text = String::from_utf8(bytes).expect("the SDK writes UTF-8");
        let (spans, malformed) = stockbot_telemetry::analysis::read_json_lines(&text);
        assert_eq!(malformed, 0, "malformed span lines in:\n{text}");
        Spans::new(spans)
    }

    /// Every record captured so far, the SDK's own included.
    ///
    /// # Panics
    /// If a line is not a JSON object (that would be an SDK bug).
    pub fn all_logs(&self) -> Logs {
        let lines = self
            .raw()
            .lines()
            .map(|line| {
                LogLine::parse(line)
                    .unwrap_or_else(|| panic!("captured line is not a JSON object: {line}"))
            })
            .collect();
        Logs {
            all: Arc::new(lines),
            filters: Vec::new(),
        }
    }

    /// The records captured so far, without the SDK's own start-up records.
    pub fn logs(&self) -> Logs {
        let all = self.all_logs();
        let lines = all
            .all
            .iter()
            .filter(|l| {
                !(l.str("log.logger") == Some("stockbot_telemetry")
                    && l.get("log.origin.file.name").is_none())
            })
            .cloned()
            .collect();
        Logs {
            all: Arc::new(lines),
            filters: Vec::new(),
        }
    }

    /// Asserts every captured record satisfies the schema: required fields present and well
    /// formed, known fields of the right type, no `schema.errors`, one object per line.
    ///
    /// # Panics
    /// Listing every violation and dumping the capture.
    pub fn assert_schema_valid(&self) {
        let logs = self.all_logs();
        let mut problems = String::new();
        for (i, line) in logs.all.iter().enumerate() {
            for p in schema_problems(line) {
                let _ = writeln!(problems, "  record {i}: {p}");
            }
        }
        if !problems.is_empty() {
            panic!("schema violations:\n{problems}\n{}", dump(&logs.all));
        }
    }

    /// Shuts the pipeline down and returns the report.
    pub fn shutdown(mut self) -> stockbot_telemetry::ShutdownReport {
        self._metrics_scope = None;
        self._scope = None;
        self.guard
            .take()
            .expect("guard present")
            .shutdown(FLUSH_TIMEOUT)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self._metrics_scope = None;
        self._scope = None;
        if let Some(guard) = self.guard.take() {
            let _ = guard.shutdown(FLUSH_TIMEOUT);
        }
    }
}

/// Schema problems of one record (empty when valid).
pub fn schema_problems(line: &LogLine) -> Vec<String> {
    let mut problems = Vec::new();
    for field in REQUIRED_FIELDS {
        if !line.json.contains_key(*field) {
            problems.push(format!("missing required field `{field}`"));
        }
    }
    if line.raw.trim_start().split_once(':').map(|(k, _)| k.trim()) != Some("{\"@timestamp\"") {
        problems.push("`@timestamp` is not the first field".into());
    }
    if let Some(ts) = line.str("@timestamp")
        && !is_rfc3339_micros(ts)
    {
        problems.push(format!(
            "`@timestamp` {ts:?} is not UTC RFC 3339 with microseconds"
        ));
    }
    if let Some(level) = line.str("log.level")
        && !["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level)
    {
        problems.push(format!("`log.level` {level:?} is not a level"));
    }
    if let Some(mode) = line.str("deployment.mode")
        && !["live", "paper", "backtest"].contains(&mode)
    {
        problems.push(format!(
            "`deployment.mode` {mode:?} is not live, paper or backtest"
        ));
    }
    if let Some(errors) = line.str("schema.errors") {
        problems.push(format!("schema.errors: {errors}"));
    }
    for (key, value) in &line.json {
        if let Some(def) = conventions::lookup(key)
            && def.name == key
            && !type_matches(def.ty, value)
        {
            problems.push(format!(
                "`{key}` should be {} but is {value}",
                def.ty.name()
            ));
        }
    }
    problems
}

fn type_matches(ty: FieldType, value: &Value) -> bool {
    match ty {
        FieldType::String => value.is_string(),
        FieldType::I64 => value.is_i64() || value.is_u64(),
        FieldType::U64 => value.is_u64(),
        FieldType::F64 | FieldType::Number => value.is_number() || value.is_null(),
        FieldType::Bool => value.is_boolean(),
        FieldType::Timestamp => value.is_string() || value.is_u64(),
        _ => true,
    }
}

fn is_rfc3339_micros(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 26) || c.is_ascii_digit())
}

/// One captured JSON record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    raw: String,
    json: Map<String, Value>,
}

impl LogLine {
    /// One line as the SDK writes it (a captured line, a line of a log file); `None` when it
    /// is not a JSON object.
    pub fn parse(line: &str) -> Option<LogLine> {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(json)) => Some(LogLine {
                raw: line.to_owned(),
                json,
            }),
            _ => None,
        }
    }

    /// A field's value.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.json.get(field)
    }

    /// A string field.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.json.get(field).and_then(Value::as_str)
    }

    /// `message`.
    pub fn message(&self) -> &str {
        self.str("message").unwrap_or("")
    }

    /// `log.level`.
    pub fn level(&self) -> &str {
        self.str("log.level").unwrap_or("")
    }

    /// The line exactly as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// All fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.json
    }
}

type Filter = (String, Arc<dyn Fn(&LogLine) -> bool + Send + Sync>);

/// A query over captured records: add filters (each returns a new query), then assert.
///
/// Field names are the canonical output names (`order.cl_ord_id`); an alias given to a
/// filter (`cl_ord_id`) is translated.
#[derive(Clone)]
pub struct Logs {
    all: Arc<Vec<LogLine>>,
    filters: Vec<Filter>,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("captured", &self.all.len())
            .field(
                "filters",
                &self.filters.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn canonical(field: &str) -> String {
    conventions::lookup(field).map_or_else(|| field.to_owned(), |def| def.name.to_owned())
}

impl Logs {
    fn with(
        &self,
        description: String,
        f: impl Fn(&LogLine) -> bool + Send + Sync + 'static,
    ) -> Self {
        let mut next = self.clone();
        next.filters.push((description, Arc::new(f)));
        next
    }

    /// Records at `level` (`"INFO"`, `"WARN"`, …; case-insensitive).
    pub fn level(&self, level: &str) -> Self {
        let level = level.to_ascii_uppercase();
        self.with(format!("level = {level}"), move |l| l.level() == level)
    }

    /// Records whose message is exactly `message`.
    pub fn message(&self, message: &str) -> Self {
        let m = message.to_owned();
        self.with(format!("message = {message:?}"), move |l| l.message() == m)
    }

    /// Records whose message contains `part`.
    pub fn message_contains(&self, part: &str) -> Self {
        let p = part.to_owned();
        self.with(format!("message contains {part:?}"), move |l| {
            l.message().contains(&p)
        })
    }

    /// Records whose target (`log.logger`) is `target` or inside it.
    pub fn target(&self, target: &str) -> Self {
        let t = target.to_owned();
        self.with(format!("target in {target}"), move |l| {
            l.str("log.logger")
                .is_some_and(|x| x == t || x.starts_with(&format!("{t}::")))
        })
    }

    /// Records where `field` equals `value`.
    pub fn field(&self, field: &str, value: impl Into<Value>) -> Self {
        let name = canonical(field);
        let value = value.into();
        self.with(format!("{name} = {value}"), move |l| {
            l.get(&name) == Some(&value)
        })
    }

    /// Records that have `field`.
    pub fn has_field(&self, field: &str) -> Self {
        let name = canonical(field);
        self.with(format!("has {name}"), move |l| l.get(&name).is_some())
    }

    /// Records without `field`.
    pub fn lacks_field(&self, field: &str) -> Self {
        let name = canonical(field);
        self.with(format!("lacks {name}"), move |l| l.get(&name).is_none())
    }

    /// Records for which `predicate` holds.
    pub fn matching(
        self,
        description: &str,
        predicate: impl Fn(&LogLine) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.with(description.to_owned(), predicate)
    }

    /// The matching records.
    pub fn collect(&self) -> Vec<LogLine> {
        self.all
            .iter()
            .filter(|l| self.filters.iter().all(|(_, f)| f(l)))
            .cloned()
            .collect()
    }

    /// How many records match.
    pub fn count(&self) -> usize {
        self.all
            .iter()
            .filter(|l| self.filters.iter().all(|(_, f)| f(l)))
            .count()
    }

    fn fail(&self, what: &str) -> ! {
        let filters: Vec<_> = self.filters.iter().map(|(d, _)| d.as_str()).collect();
        panic!(
            "{what}\n  query: {}\n  matched: {}\n{}",
            if filters.is_empty() {
                "(all records)".into()
            } else {
                filters.join(", ")
            },
            self.count(),
            dump(&self.all)
        )
    }

    /// Asserts exactly one record matches and returns it.
    ///
    /// # Panics
    /// Otherwise, with a dump of every captured record.
    #[track_caller]
    pub fn assert_one(&self) -> LogLine {
        let found = self.collect();
        if found.len() != 1 {
            self.fail(&format!(
                "expected exactly one matching record, found {}",
                found.len()
            ));
        }
        found.into_iter().next().expect("one record")
    }

    /// Asserts exactly `n` records match.
    ///
    /// # Panics
    /// Otherwise, with a dump.
    #[track_caller]
    pub fn assert_count(&self, n: usize) -> Vec<LogLine> {
        let found = self.collect();
        if found.len() != n {
            self.fail(&format!(
                "expected {n} matching records, found {}",
                found.len()
            ));
        }
        found
    }

    /// Asserts at least one record matches.
    ///
    /// # Panics
    /// Otherwise, with a dump.
    #[track_caller]
    pub fn assert_any(&self) -> Vec<LogLine> {
        let found = self.collect();
        if found.is_empty() {
            self.fail("expected at least one matching record, found none");
        }
        found
    }

    /// Asserts no record matches.
    ///
    /// # Panics
    /// Otherwise, with a dump.
    #[track_caller]
    pub fn assert_none(&self) {
        if self.count() != 0 {
            self.fail(&format!(
                "expected no matching record, found {}",
                self.count()
            ));
        }
    }
}

/// A readable dump of captured records.
fn dump(lines: &[LogLine]) -> String {
    let mut out = format!("captured {} record(s):\n", lines.len());
    for (i, l) in lines.iter().enumerate() {
        let _ = write!(
            out,
            "  [{i}] {} {} {:?}",
            l.level(),
            l.str("log.logger").unwrap_or("?"),
            l.message()
        );
        for (k, v) in &l.json {
            if !matches!(
                k.as_str(),
                "@timestamp"
                    | "log.level"
                    | "message"
                    | "log.logger"
                    | "ecs.version"
                    | "schema.version"
                    | "service.name"
                    | "service.version"
                    | "service.environment"
                    | "deployment.mode"
                    | "host.name"
                    | "event.dataset"
                    | "process.pid"
                    | "process.thread.name"
                    | "log.origin.file.name"
                    | "log.origin.file.line"
            ) {
                let _ = write!(out, " {k}={v}");
            }
        }
        out.push('\n');
    }
    out
}

/// The guides in `docs/`: their Rust code blocks are compiled and run as doctests here, where
/// both the SDK and this crate are in scope (`docs/alerting.md` runs with the SDK's alerting
/// module).
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../../docs/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../../docs/architecture.md")]
    struct Architecture;
    #[doc = include_str!("../../docs/logging.md")]
    struct Logging;
    #[doc = include_str!("../../docs/metrics.md")]
    struct Metrics;
    #[doc = include_str!("../../docs/tracing.md")]
    struct Tracing;
    #[doc = include_str!("../../docs/instrumentation.md")]
    struct Instrumentation;
    #[doc = include_str!("../../docs/cardinality.md")]
    struct Cardinality;
    #[doc = include_str!("../../docs/sampling.md")]
    struct Sampling;
    #[doc = include_str!("../../docs/buffering.md")]
    struct Buffering;
    #[doc = include_str!("../../docs/storage.md")]
    struct Storage;
    #[doc = include_str!("../../docs/operations.md")]
    struct Operations;
    #[doc = include_str!("../../docs/performance.md")]
    struct Performance;
    #[doc = include_str!("../../docs/testing.md")]
    struct Testing;
}
