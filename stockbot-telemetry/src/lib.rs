//! # stockbot-telemetry
//!
//! The observability SDK of the stock-bot trading platform. A service adds this one
//! dependency, calls [`init`] in `main`, and from then on every `tracing` event (and every
//! `log` record of its dependencies) becomes one JSON line that follows one schema —
//! compatible with the Elastic Common Schema — enriched with the service's identity, with
//! secrets redacted and account ids pseudonymised before any sink sees it. The caller's thread
//! only copies the event into a bounded queue; a background worker encodes and writes.
//!
//! ## Getting started
//!
//! ```no_run
//! use std::time::Duration;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Defaults, then the file named by STOCKBOT_CONFIG, then OTEL_* / RUST_LOG / STOCKBOT_*.
//!     let mut config = stockbot_telemetry::Config::load()?;
//!     config.service.name = "order-router".into();
//!     config.service.version = env!("CARGO_PKG_VERSION").into();
//!     let guard = stockbot_telemetry::init(config)?;
//!
//!     // Libraries and services only use the `tracing` macros.
//!     tracing::info!(cl_ord_id = "C-1001", symbol = "AAPL", side = "buy", quantity = 100, "order accepted");
//!
//!     let report = guard.shutdown(Duration::from_secs(5));
//!     eprintln!("{report}");
//!     Ok(())
//! }
//! ```
//!
//! That line comes out as (one line, shown wrapped):
//!
//! ```json
//! {"@timestamp":"2026-11-23T22:33:35.123456Z","log.level":"INFO","message":"order accepted",
//!  "ecs.version":"8.11.0","schema.version":"1.0.0","service.name":"order-router",
//!  "service.version":"0.1.0","service.environment":"dev","deployment.mode":"live",
//!  "host.name":"ny4-prod-7","event.dataset":"order-router.log","process.pid":4242,
//!  "process.thread.name":"main","log.logger":"order_router","log.origin.file.name":"src/main.rs",
//!  "log.origin.file.line":12,"order.cl_ord_id":"C-1001","instrument.symbol":"AAPL",
//!  "order.side":"buy","order.quantity":100}
//! ```
//!
//! ## The schema
//!
//! Field names come from [`conventions`] (re-exported): write the short alias (`cl_ord_id`,
//! `symbol`, `venue`, `account`) or the canonical dotted name (`order.cl_ord_id`); the output
//! always uses the canonical name. Fields of the current span (and its parents) are added to
//! every event inside it, as are `trace.id`, `span.id` and `span.name`.
//!
//! * Unknown fields are kept under `extra.<name>` and counted; values of the wrong type are kept
//!   there as text and counted.
//! * In [`SchemaMode::Strict`] (tests, development), violations in the service's own targets
//!   also add `schema.errors` to the record and one error record per call site. Events of
//!   dependencies always pass leniently.
//! * Services add fields with [`LogConfig::fields`] ([`CustomField`]).
//! * Fields of the secret class (`password`, `api_key`, `token`, `authorization`, …) are
//!   always `[REDACTED]`; `account.id` is replaced by a keyed hash (`pseu_…`, HMAC-SHA256),
//!   stable for a given key so it stays searchable; every string value (the message included)
//!   is scanned for card numbers (Luhn), IBANs, bearer tokens, API keys, JWTs, URL passwords and
//!   `password=…` pairs.
//! * Values longer than `log.max_field_bytes` are cut at a character boundary with a marker and
//!   `log.truncated: true`. Control characters, CR and LF are escaped: one event, one line.
//! * An event with `audit = true` (or inside a span with `audit = true`) is audit class: never
//!   sampled, and it may use the queue capacity reserved for audit records.
//!
//! ## Timestamps
//!
//! `@timestamp` is UTC with microseconds, taken with a cheap monotonic clock on the caller's
//! thread and converted on the worker against the system clock (re-read every second). A
//! venue's own time goes in `event.venue_time` (`transact_time`). Backtests can stamp records
//! with simulated time ([`TelemetryBuilder::with_sim_clock`], [`SimClock`]); the real time then
//! goes to `event.ingested`.
//!
//! ## Delivery and loss
//!
//! The queue is bounded by records and bytes; when it is full, new records are dropped and
//! counted — the caller never waits. For every sink, `emitted = written + dropped + buffered`
//! ([`PipelineStats::accounted_for`]); at most one warning record per drop reason every 10 s
//! says what was lost. [`TelemetryGuard::shutdown`] flushes within a deadline and reports.
//!
//! ## Metrics
//!
//! [`init`] also installs a [`MetricsRecorder`] for the `metrics` facade: names are checked
//! against the naming rules (`stockbot_` namespace, base units, `_total` on counters), id
//! labels are stripped, each metric is capped in label sets (extra ones go to an
//! `otel_metric_overflow="true"` series), and everything is served on a loopback Prometheus
//! endpoint (`metrics.listen`, default `127.0.0.1:9464`) with the SDK's own health metrics.
//! The business metrics of trading have a typed API in [`trading`]. Batch jobs can push to a
//! Pushgateway ([`PushConfig`]); fleets that do not scrape can push OTLP ([`OtlpMetricsConfig`],
//! feature `otlp`).
//!
//! ```
//! let capture = stockbot_telemetry::TelemetryBuilder::new({
//!     let mut c = stockbot_telemetry::Config::for_service("risk");
//!     c.log.stdout = false;
//!     c.log.file.enabled = false;
//!     c.metrics.listen = String::new(); // no endpoint in this example
//!     c.traces.file.enabled = false;
//!     c.metrics.system.enabled = false;
//!     c
//! })
//! .with_writer("null", std::io::sink())
//! .build();
//! let (_layer, guard) = capture.unwrap();
//! let recorder = guard.metrics_recorder().unwrap();
//! metrics::with_local_recorder(&recorder, || {
//!     stockbot_telemetry::trading::order_submitted("XNAS", "mean-revert");
//!     metrics::counter!("stockbot_orders", "cl_ord_id" => "C-1").increment(1); // refused: no `_total`
//! });
//! let text = guard.render_metrics().unwrap();
//! assert!(text.contains("stockbot_orders_submitted_total{service=\"risk\""));
//! assert!(!text.contains("stockbot_orders{"));
//! ```
//!
//! ## Composing your own subscriber
//!
//! [`TelemetryBuilder::build`] gives the [`TelemetryLayer`] and the guard without setting any
//! global; [`TelemetryBuilder::build_dispatch`] a ready `Dispatch` for scoped use.
//! The `stockbot-telemetry-testing` crate builds on it to capture telemetry per test.
//!
//! ## Across tasks and threads
//!
//! [`spawn`] and [`spawn_thread`] carry the current span and subscriber into new tasks and
//! threads, so trace ids follow the work and scoped test captures see it.
//!
//! ## Feature flags
//!
//! * `tls` (on): TLS to backends — rustls with the `ring` provider, certificates always
//!   verified. A service that ships nothing over `https` can turn default features off and
//!   build no TLS stack; an `https` URL is then refused when the configuration is validated.
//! * `otlp` (off): export metrics and spans to an OpenTelemetry Collector (or Jaeger) over OTLP/HTTP with protobuf.
//! * `otlp-grpc` (off, implies `otlp`): OTLP over gRPC as well (`tonic`, on a runtime owned by
//!   the export thread; the application needs no tokio runtime).
//!
//! Logs, the stdout and file sinks, redaction, the `log` bridge, the metrics recorder, the
//! scrape endpoint, system metrics and the Pushgateway push are always on.
//!
//! ## Supported Rust versions
//!
//! Rust 1.95 or newer (edition 2024).

pub mod alerting;
pub mod analysis;
mod collect;
mod config;
mod context;
pub mod elasticsearch;
mod error;
mod export;
mod guard;
pub mod ingest;
mod init;
mod instrument;
mod process;
pub mod trading;

pub use collect::TelemetryLayer;
pub use collect::clock::SimClock;
pub use collect::metrics::MetricsRecorder;
pub use collect::propagation;
pub use collect::slo::SloStatus;
pub use config::{
    Config, CustomField, DeploymentMode, ElasticsearchAuth, ElasticsearchConfig, FileConfig,
    KeepConfig, LogConfig, MetricsConfig, OtlpCompression, OtlpExporterConfig, OtlpLogsConfig,
    OtlpMetricsConfig, OtlpProtocol, OtlpTracesConfig, PipelineConfig, PushConfig, RedactionConfig,
    RetentionConfig, SamplingRule, SchemaMode, ScrapeAuth, Secret, ServiceConfig, ShippingConfig,
    SpanFileConfig, SpanLimits, SpoolConfig, SystemMetricsConfig, TracesConfig,
};
pub use context::{
    add_link, current_context, extract_into, inject_current, inject_current_with, set_parent,
    spawn, spawn_thread,
};
pub use error::{Error, ErrorKind};
pub use export::accounting::{PipelineStats, SinkStats};
pub use guard::{ShutdownReport, TelemetryGuard};
pub use init::{TelemetryBuilder, init};
pub use instrument::TradeErrorKind;
/// `#[instrument_trade]`: one attribute gives a trading function its span, RED metrics and
/// error record.
///
/// ```
/// use stockbot_telemetry::{TradeErrorKind, instrument_trade};
///
/// struct Order { cl_ord_id: String, venue: &'static str }
/// #[derive(Debug)]
/// enum OrderError { Timeout }
/// impl std::fmt::Display for OrderError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("timeout") }
/// }
/// impl TradeErrorKind for OrderError {
///     fn error_kind(&self) -> &'static str { "timeout" }
/// }
///
/// #[instrument_trade(operation = "submit_order", venue = order.venue, cl_ord_id = order.cl_ord_id, err)]
/// fn submit_order(order: &Order) -> Result<u64, OrderError> {
///     Ok(42)
/// }
///
/// assert_eq!(submit_order(&Order { cl_ord_id: "C-1".into(), venue: "XNAS" }).unwrap(), 42);
/// ```
///
/// Each call:
/// * runs in a span named after `operation` (or `name = "..."`) at `level` (default `"info"`),
///   with field `operation`, the given trading attributes (`key = expression`, recorded with
///   `Display`) and every parameter whose name is a trading attribute (unless `skip(...)`);
/// * counts `stockbot_trade_calls_total{operation, outcome, <labels>}`, times
///   `stockbot_trade_duration_seconds{operation, outcome, <labels>}` (with an exemplar when
///   sampled) and on failure counts `stockbot_trade_errors_total{operation, error_kind,
///   <labels>}` (`metric = "stockbot_orders"` renames the three to `stockbot_orders_*`);
/// * `outcome` is `ok`, or `error` for an `Err` (its [`TradeErrorKind`] is the `error_kind`,
///   `"error"` when the type does not implement it), `panic` when the function panics (the
///   panic goes on; under `panic = "abort"` nothing can be recorded) and `cancelled` when a
///   future is dropped before it completes. `Option` and plain values are `ok`;
/// * on failure the span gets `error.kind` (and so the error status), and one `ERROR` log
///   record is written inside it (logger `stockbot_telemetry::instrument`, with `operation`,
///   `error.kind` and `event.outcome = "failure"`); with `err` the error's `Display` goes into
///   that record as `error.message` (off by default: error texts may carry client data); with
///   `ret` the return value's `Debug` is logged;
/// * `audit` marks the span audit-class (never sampled away);
/// * `slo = "order_submission"` ties the function to a declared SLO ([`alerting::Slo::calls`],
///   [`alerting::Slo::call_latency`]): its series carry `slo="order_submission"`, so its calls
///   are that SLO's events, and [`init`] refuses to start when the configuration does not
///   declare the name ([`ErrorKind::UnknownSlo`], naming the function and its line).
///
/// Checked at compile time, with errors on your tokens: attribute keys must be trading
/// attributes of the schema (`cl_ord_id`, `venue`, `strategy`, `symbol`, `side`, …; a typo
/// gets "did you mean"); metric labels are the low-cardinality attributes by default, and
/// `labels(...)` may add medium ones (`symbol`) but never high-cardinality ones (ids, accounts,
/// prices: a compile error); `metric` must pass the runtime's naming rules; `err` needs a
/// `Result`. `crate = path` names this crate when it is re-exported under another name.
///
/// Works on sync and `async` functions, methods (`&self`, `&mut self`), generic functions and
/// `impl Trait` returns.
pub use stockbot_telemetry_macros::instrument_trade;

/// What `#[instrument_trade]` expands to. Not a public API: it changes with the macro, which is
/// pinned to this exact version.
#[doc(hidden)]
pub mod __private {
    pub use crate::instrument::{
        CallGuard, Keys, KindOk, KindViaResult, KindViaTrait, OUTCOMES, Outcome, Site, SloTie, Wrap,
    };
    pub use inventory;
    pub use metrics;
    pub use tracing;
}

/// The conventions: log field schema, cardinality classes, metric naming rules.
pub use stockbot_telemetry_conventions as conventions;
