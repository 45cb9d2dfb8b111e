//! Configuration as data: `Deserialize + Default`, loadable from the environment and a TOML file.

mod env;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind};

/// Everything the SDK needs, as plain data.
///
/// Build it in code (`Config { service: ServiceConfig { name: "order-router".into(), ..Default::default() }, ..Default::default() }`),
/// from a TOML file ([`Config::from_file`]), from the environment ([`Config::from_env`]), or
/// all three ([`Config::load`]: defaults, then the file named by `STOCKBOT_CONFIG`, then the
/// environment). [`init`](crate::init) validates it and names the first bad field.
///
/// ```
/// let config: stockbot_telemetry::Config = toml::from_str(r#"
///     [service]
///     name = "order-router"
///     deployment_mode = "paper"
///
///     [log]
///     filter = "info,order_router=debug"
///     schema = "strict"
///
///     [log.file]
///     directory = "/var/log/stockbot"
///     max_file_bytes = 67108864
///     max_age = "7d"
/// "#).unwrap();
/// assert_eq!(config.service.name, "order-router");
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Who is emitting: service identity and resource attributes.
    pub service: ServiceConfig,
    /// Structured logs: filter, schema mode, sinks, redaction, sampling.
    pub log: LogConfig,
    /// The shared queue, batching and worker settings.
    pub pipeline: PipelineConfig,
    /// Metrics: recorder, naming and cardinality rules, scrape endpoint, system metrics.
    pub metrics: MetricsConfig,
    /// Traces: head sampling and where finished spans go.
    pub traces: TracesConfig,
    /// The service's SLOs (`[[slo]]` tables, as in an alert spec;
    /// [`AlertSpec::apply_to`](crate::alerting::AlertSpec::apply_to) copies a spec's). Latency
    /// thresholds become bucket boundaries of their histograms, the process keeps its own view
    /// of every error budget (the `stockbot_slo_*` gauges,
    /// [`TelemetryGuard::slo_status`](crate::TelemetryGuard::slo_status)), and
    /// `#[instrument_trade(slo = "…")]` may only name these ([`init`](crate::init) refuses
    /// others).
    #[serde(rename = "slo")]
    pub slos: Vec<crate::alerting::Slo>,
}

/// Trace settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesConfig {
    /// Record spans at all (ids for log correlation are assigned either way). Default on.
    pub enabled: bool,
    /// `OTEL_TRACES_SAMPLER` names: `parentbased_traceidratio` (default), `parentbased_always_on`,
    /// `parentbased_always_off`, `traceidratio`, `always_on`, `always_off`. Children always
    /// follow their parent's decision (local or from `traceparent`).
    pub sampler: String,
    /// The ratio for the `traceidratio` samplers, 0..=1. Default 1.0.
    pub sampler_arg: Option<f64>,
    /// At most this many new traces per second are sampled (a token bucket). Default: no limit.
    pub max_traces_per_second: Option<f64>,
    /// The local JSON-lines span file (the embedded default sink), next to the log file.
    pub file: SpanFileConfig,
    /// Most finished spans waiting for export. Default 2048.
    pub queue_capacity: usize,
    /// Spans per batch. Default 512.
    pub batch_max_spans: usize,
    /// Longest a finished span waits before it is written. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Export spans over OTLP (HTTP with feature `otlp`, gRPC with `otlp-grpc`) to a Collector
    /// or Jaeger. Off by default: with no endpoint configured no network call is made.
    pub otlp: Option<OtlpTracesConfig>,
    /// Local keep rules for traces the head sampler did not keep.
    pub keep: KeepConfig,
    /// Most attributes, events and links one span keeps.
    pub limits: SpanLimits,
}

/// Per-span bounds (OpenTelemetry's span limits, `OTEL_SPAN_*_COUNT_LIMIT`). What goes over is
/// dropped, counted on the span (`dropped_*_count` in OTLP and the JSON lines) and in the
/// span pipeline's `truncated` counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanLimits {
    /// Fields kept as attributes per span. Default 128.
    pub max_attributes: usize,
    /// Log events inside a recorded span kept as span events. Default 128.
    pub max_events: usize,
    /// Links (`follows_from`, [`add_link`](crate::add_link)) per span. Default 128.
    pub max_links: usize,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            max_attributes: 128,
            max_events: 128,
            max_links: 128,
        }
    }
}

/// Local keep rules: this process's spans of an unsampled trace are held until its local root
/// span closes, then exported if one of them had an error, was slower than `slower_than`, or
/// was audit-class. Off by default; when on, unsampled spans cost as much as recorded ones.
/// Tail sampling across services stays the Collector's job.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeepConfig {
    /// Turn the rules on. Default off.
    pub enabled: bool,
    /// Keep traces with an error span or error event. Default on.
    pub errors: bool,
    /// Keep traces with an audit-class span (`audit = true`). Default on.
    pub audit: bool,
    /// Keep traces with a span at least this slow. Default none.
    #[serde(with = "humantime_serde")]
    pub slower_than: Option<Duration>,
    /// Most spans held per trace; more are dropped and counted (`keep_buffer_full`). Default 256.
    pub max_spans_per_trace: usize,
    /// Most spans held in total. Default 8192.
    pub max_buffered_spans: usize,
}

impl Default for KeepConfig {
    fn default() -> Self {
        KeepConfig {
            enabled: false,
            errors: true,
            audit: true,
            slower_than: None,
            max_spans_per_trace: 256,
            max_buffered_spans: 8192,
        }
    }
}

/// The OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP/1.1 POST (`http/protobuf`, port 4318): the default.
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// gRPC (`grpc`, port 4317). Needs the `otlp-grpc` feature.
    #[serde(rename = "grpc")]
    Grpc,
}

impl FromStr for OtlpProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/json" => Err("http/json is not supported: use http/protobuf or grpc".into()),
            _ => Err("expected http/protobuf or grpc".into()),
        }
    }
}

/// Compression of OTLP request bodies (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpCompression {
    /// Uncompressed (the default).
    #[default]
    None,
    /// gzip (`Content-Encoding: gzip`, or gRPC's `grpc-encoding: gzip`).
    Gzip,
}

impl FromStr for OtlpCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "none" | "" => Ok(OtlpCompression::None),
            "gzip" => Ok(OtlpCompression::Gzip),
            _ => Err("expected gzip or none".into()),
        }
    }
}

/// An OTLP exporter of a batched signal — spans (`traces.otlp`) or log records (`log.otlp`):
/// protobuf over HTTP, or gRPC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// URL of the receiver. With `http/protobuf`, the full URL of the signal's endpoint, e.g.
    /// `http://otel-collector:4318/v1/traces` (Jaeger: `http://jaeger:4318/v1/traces`) or
    /// `http://otel-collector:4318/v1/logs`; with `grpc`, the server's root, e.g.
    /// `http://otel-collector:4317`.
    pub endpoint: String,
    /// Transport. Default `http/protobuf`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Body compression. Default none.
    #[serde(default)]
    pub compression: OtlpCompression,
    /// Timeout of one export request. Default 10 s.
    #[serde(
        default = "OtlpExporterConfig::default_timeout",
        with = "humantime_serde"
    )]
    pub timeout: Duration,
    /// Extra request headers (e.g. an API key); kept as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
}

/// Span export settings (`traces.otlp`).
pub type OtlpTracesConfig = OtlpExporterConfig;

/// Log record export settings (`log.otlp`).
pub type OtlpLogsConfig = OtlpExporterConfig;

impl OtlpExporterConfig {
    fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }

    /// Export to `endpoint` with the defaults.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtlpExporterConfig {
            endpoint: endpoint.into(),
            protocol: OtlpProtocol::default(),
            compression: OtlpCompression::default(),
            timeout: Self::default_timeout(),
            headers: BTreeMap::new(),
        }
    }
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig {
            enabled: true,
            sampler: "parentbased_traceidratio".into(),
            sampler_arg: None,
            max_traces_per_second: None,
            file: SpanFileConfig::default(),
            queue_capacity: 2048,
            batch_max_spans: 512,
            flush_interval: Duration::from_secs(1),
            otlp: None,
            keep: KeepConfig::default(),
            limits: SpanLimits::default(),
        }
    }
}

/// The rolling JSON-lines file of finished spans (read by `stockbot_telemetry::analysis`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanFileConfig {
    /// Write it. Default on.
    pub enabled: bool,
    /// Directory. Default: the log directory (`log.file.directory`).
    pub directory: Option<PathBuf>,
    /// File stem. Default `<service>-spans`.
    pub prefix: Option<String>,
    /// Rotate past this size. Default 64 MiB.
    pub max_file_bytes: u64,
    /// Rotated files kept. Default 10.
    pub max_files: usize,
    /// Rotated files older than this are deleted. Default 7 days.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for SpanFileConfig {
    fn default() -> Self {
        SpanFileConfig {
            enabled: true,
            directory: None,
            prefix: None,
            max_file_bytes: 64 * 1024 * 1024,
            max_files: 10,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Identity of the emitting service; becomes the `service.*`, `host.name` and
/// `deployment.mode` fields of every record.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// `service.name`. Default `unknown_service` (the OpenTelemetry default).
    pub name: String,
    /// `service.version`. Default: empty (set it from your crate: `env!("CARGO_PKG_VERSION")`).
    pub version: String,
    /// `service.environment`, e.g. `prod`, `staging`, `dev`. Default `dev`.
    pub environment: String,
    /// `deployment.mode`: live, paper or backtest. Default `live`, so a service that forgets
    /// to say otherwise is never hidden from live alerting.
    pub deployment_mode: DeploymentMode,
    /// `host.name`. Default: the machine's host name.
    pub host_name: Option<String>,
    /// Targets (module path prefixes) that belong to this service: strict schema mode applies
    /// to them and to the SDK; events of other targets (dependencies) pass leniently.
    /// Default: the service name with `-` replaced by `_`. `*` makes every target the
    /// service's own (what the testing crate does).
    ///
    /// When set, it also scopes the SLO ties `init` checks: only the
    /// `#[instrument_trade(slo = "…")]` functions under these module paths must name a
    /// declared SLO (a binary that hosts several services sets each service's modules); when
    /// empty, every tie in the program is checked.
    pub own_targets: Vec<String>,
    /// Extra resource attributes (from `OTEL_RESOURCE_ATTRIBUTES`), kept for the trace and
    /// metric exporters.
    pub resource_attributes: BTreeMap<String, String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            name: "unknown_service".into(),
            version: String::new(),
            environment: "dev".into(),
            deployment_mode: DeploymentMode::Live,
            host_name: None,
            own_targets: Vec::new(),
            resource_attributes: BTreeMap::new(),
        }
    }
}

/// Whether a process trades for real, on paper, or replays history.
///
/// Every record carries it as `deployment.mode`, so live alerts never count paper or
/// backtest traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentMode {
    /// Real orders on real venues.
    #[default]
    Live,
    /// Simulated fills against live market data.
    Paper,
    /// Replay of historical data, usually with simulated time.
    Backtest,
}

impl DeploymentMode {
    /// The value written to `deployment.mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentMode::Live => "live",
            DeploymentMode::Paper => "paper",
            DeploymentMode::Backtest => "backtest",
        }
    }
}

impl FromStr for DeploymentMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "live" => Ok(DeploymentMode::Live),
            "paper" => Ok(DeploymentMode::Paper),
            "backtest" => Ok(DeploymentMode::Backtest),
            _ => Err("expected one of live, paper, backtest".into()),
        }
    }
}

/// How the log schema is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaMode {
    /// Production: unknown fields are kept under `extra.<name>` and counted; wrongly typed
    /// values are kept there as strings and counted.
    #[default]
    Lenient,
    /// Tests and development: as lenient, and in addition each violation in the service's own
    /// targets or the SDK adds `schema.errors` to the record and writes one error record
    /// (target `stockbot_telemetry::schema`) per call site.
    Strict,
}

impl FromStr for SchemaMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lenient" => Ok(SchemaMode::Lenient),
            "strict" => Ok(SchemaMode::Strict),
            _ => Err("expected strict or lenient".into()),
        }
    }
}

/// Structured log settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Level filter in `RUST_LOG` style: `info`, `warn,order_router=debug`, `hyper=off`.
    /// Span-field directives are not supported. Default `info`.
    pub filter: String,
    /// Schema enforcement. Default lenient.
    pub schema: SchemaMode,
    /// JSON lines on stdout (for node agents such as Vector or Fluent Bit). Default on.
    pub stdout: bool,
    /// The local rolling file (the embedded default sink).
    pub file: FileConfig,
    /// Longest string value kept, in bytes; longer values are cut at a character boundary and
    /// marked. Default 8192.
    pub max_field_bytes: usize,
    /// `event.dataset`. Default `<service.name>.log`.
    pub dataset: Option<String>,
    /// Redaction of secrets and pseudonymisation of account ids.
    pub redaction: RedactionConfig,
    /// Per-call-site sampling of noisy events (audit-class events are never sampled).
    pub sampling: Vec<SamplingRule>,
    /// The service's own schema fields, added to the built-in table.
    pub fields: Vec<CustomField>,
    /// Ship records straight to Elasticsearch (`_bulk` into a data stream). Off by default.
    pub elasticsearch: Option<ElasticsearchConfig>,
    /// Export records as OTLP logs to an OpenTelemetry Collector (feature `otlp`). Off by
    /// default.
    pub otlp: Option<OtlpLogsConfig>,
    /// Buffering of the network sinks (Elasticsearch, OTLP): memory bound and disk spool.
    pub shipping: ShippingConfig,
}

/// How the network sinks (Elasticsearch, OTLP logs) hold records the backend has not accepted
/// yet. Each has its own thread, memory buffer and (optional) spool, so a slow or dead backend
/// never holds up the log worker or the other sinks.
///
/// ```toml
/// [log.shipping]
/// memory_max_bytes = 16777216
///
/// [log.shipping.spool]
/// directory = "/var/spool/stockbot/order-router"
/// max_bytes = 1073741824
/// fsync_interval = "1s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShippingConfig {
    /// Largest memory held per network sink for records not yet accepted. When it is full (and
    /// the spool, if any, is full or failing) new records are counted as `buffer_full`.
    /// Default 16 MiB.
    pub memory_max_bytes: usize,
    /// Disk spool for records the backend could not take (unreachable, or memory full).
    /// Off by default.
    pub spool: Option<SpoolConfig>,
}

impl Default for ShippingConfig {
    fn default() -> Self {
        ShippingConfig {
            memory_max_bytes: 16 << 20,
            spool: None,
        }
    }
}

/// The disk spool: bounded, checksummed, append-only segment files per sink
/// (`<directory>/<sink>/`), replayed in order after the backend recovers and after a restart.
///
/// A record is acknowledged once the backend accepted it or it is fsynced here. A SIGKILL
/// loses nothing appended (appends go straight to the file); a power loss at most the last
/// `fsync_interval`; records still in memory (not yet appended) are lost with the process.
/// Replays are at-least-once: Elasticsearch drops the duplicates by `_id` (409), an OTLP
/// Collector may see a record twice. At the bound, new records are refused (never the oldest,
/// which were acknowledged) and fall back to memory, else are counted as `buffer_full`;
/// audit-class records may still use `audit_reserve_bytes`. A write error (disk full) counts
/// as `spool_write_errors` and falls back the same way; the process never stops because of
/// the spool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory of the spool (one sub-directory per sink; one process per spool).
    pub directory: PathBuf,
    /// Largest total size of a sink's spool files. Default 1 GiB.
    #[serde(default = "SpoolConfig::default_max_bytes")]
    pub max_bytes: u64,
    /// Part of `max_bytes` only audit-class records may fill. Default a tenth.
    #[serde(default)]
    pub audit_reserve_bytes: Option<u64>,
    /// How often appended records are fsynced (a flush always fsyncs). Default 1 s.
    #[serde(
        default = "SpoolConfig::default_fsync_interval",
        with = "humantime_serde"
    )]
    pub fsync_interval: Duration,
}

impl SpoolConfig {
    /// A spool in `directory` with the default bounds.
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            directory: directory.into(),
            max_bytes: Self::default_max_bytes(),
            audit_reserve_bytes: None,
            fsync_interval: Self::default_fsync_interval(),
        }
    }

    fn default_max_bytes() -> u64 {
        1 << 30
    }

    fn default_fsync_interval() -> Duration {
        Duration::from_secs(1)
    }

    /// The audit reserve in effect.
    pub fn audit_reserve(&self) -> u64 {
        self.audit_reserve_bytes.unwrap_or(self.max_bytes / 10)
    }
}

/// Direct shipping to Elasticsearch with the `_bulk` API: `create` actions into a data stream,
/// our own `_id` per record so a retried request never duplicates a record.
///
/// Batches are the log pipeline's (`pipeline.batch_max_records`, `pipeline.batch_max_bytes`,
/// `pipeline.flush_interval`), split further so no request exceeds `max_bulk_bytes`. Items
/// refused with 429 or 5xx are re-sent (never the whole batch) with the shared backoff policy
/// and `Retry-After`; 409 (already stored) counts as success; other 4xx items go to the
/// dead-letter file and the `rejected` drop counter; a 413 splits the request; a single record
/// larger than `max_bulk_bytes` is dropped and counted (`oversize`).
///
/// ```toml
/// [log.elasticsearch]
/// url = "https://127.0.0.1:9200"
/// ca_file = "/etc/elasticsearch/certs/http_ca.crt"
/// data_stream = "logs-order-router-default"
/// auth = { api_key = "base64-id:key" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// `https://host:port` (or `http://`) of the cluster, a coordinating node or a load
    /// balancer. Certificates are always verified.
    pub url: String,
    /// PEM file of the CA(s) that sign the cluster's certificate (Elasticsearch's own
    /// `http_ca.crt`); default: Mozilla's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Target data stream. Default `logs-<service.name>-default`; it must match an index
    /// template with `data_stream` enabled (Elasticsearch's built-in `logs-*-*` does).
    #[serde(default)]
    pub data_stream: Option<String>,
    /// Credentials (kept as secrets).
    #[serde(default)]
    pub auth: Option<ElasticsearchAuth>,
    /// Largest `_bulk` request body. Default 5 MiB, at most 10 MiB.
    #[serde(default = "ElasticsearchConfig::default_max_bulk_bytes")]
    pub max_bulk_bytes: usize,
    /// Timeout of one request. Default 10 s. A batch's requests all end within three times
    /// this; what is not accepted by then goes back to the sink's shipper (`log.shipping`).
    #[serde(
        default = "ElasticsearchConfig::default_timeout",
        with = "humantime_serde"
    )]
    pub timeout: Duration,
    /// gzip request bodies. Default off.
    #[serde(default)]
    pub gzip: bool,
    /// Where refused records go (JSON lines: status, error, the record as sent). Default
    /// `<log.file.directory>/<service>-dead-letter.log`.
    #[serde(default)]
    pub dead_letter: Option<PathBuf>,
    /// Largest dead-letter file; past it refused records are only counted. Default 64 MiB.
    #[serde(default = "ElasticsearchConfig::default_dead_letter_max_bytes")]
    pub dead_letter_max_bytes: u64,
    /// Rollover and retention of the data stream's backing indices (the ILM policy).
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// The ILM policy of the log data stream: roll the write index over by age or size, delete
/// indices some time after rollover.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Roll over when the write index is this old. Default 1 day.
    #[serde(with = "humantime_serde")]
    pub rollover_max_age: Duration,
    /// Roll over when a primary shard reaches this size (Elasticsearch byte units). Default
    /// `50gb`.
    pub rollover_max_primary_shard_size: String,
    /// Delete an index this long after its rollover. Default 30 days.
    #[serde(with = "humantime_serde")]
    pub delete_after: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            rollover_max_age: Duration::from_secs(86_400),
            rollover_max_primary_shard_size: "50gb".into(),
            delete_after: Duration::from_secs(30 * 86_400),
        }
    }
}

impl ElasticsearchConfig {
    fn default_max_bulk_bytes() -> usize {
        5 * 1024 * 1024
    }
    fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
    fn default_dead_letter_max_bytes() -> u64 {
        64 * 1024 * 1024
    }

    /// Ship to `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        ElasticsearchConfig {
            url: url.into(),
            ca_file: None,
            data_stream: None,
            auth: None,
            max_bulk_bytes: Self::default_max_bulk_bytes(),
            timeout: Self::default_timeout(),
            gzip: false,
            dead_letter: None,
            dead_letter_max_bytes: Self::default_dead_letter_max_bytes(),
            retention: RetentionConfig::default(),
        }
    }
}

/// Credentials for the scrape endpoint (Prometheus `basic_auth` or `authorization`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScrapeAuth {
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name (non-empty, no `:`).
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>` (RFC 6750 token characters).
    Bearer(Secret),
}

impl ScrapeAuth {
    /// The `Authorization` header value a scraper sends.
    pub(crate) fn header_value(&self) -> Secret {
        match self {
            ScrapeAuth::Basic { username, password } => basic(username, password),
            ScrapeAuth::Bearer(token) => Secret::new(format!("Bearer {}", token.expose())),
        }
    }
}

/// `Basic base64(username:password)`.
fn basic(username: &str, password: &Secret) -> Secret {
    Secret::new(format!(
        "Basic {}",
        crate::export::sink::elasticsearch::base64(
            format!("{username}:{}", password.expose()).as_bytes()
        )
    ))
}

impl ElasticsearchAuth {
    /// The `Authorization` header value sent to Elasticsearch.
    pub(crate) fn header_value(&self) -> Secret {
        match self {
            ElasticsearchAuth::ApiKey(k) => Secret::new(format!("ApiKey {}", k.expose())),
            ElasticsearchAuth::Bearer(t) => Secret::new(format!("Bearer {}", t.expose())),
            ElasticsearchAuth::Basic { username, password } => basic(username, password),
        }
    }
}

/// Elasticsearch credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ElasticsearchAuth {
    /// `Authorization: ApiKey <value>` (the base64 `id:api_key` Elasticsearch returns).
    ApiKey(Secret),
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
            schema: SchemaMode::Lenient,
            stdout: true,
            file: FileConfig::default(),
            max_field_bytes: 8192,
            dataset: None,
            redaction: RedactionConfig::default(),
            sampling: Vec::new(),
            fields: Vec::new(),
            elasticsearch: None,
            otlp: None,
            shipping: ShippingConfig::default(),
        }
    }
}

/// The local rolling JSON-lines file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Write the file at all. Default on.
    pub enabled: bool,
    /// Directory, created if missing; must be writable. Default `logs`.
    pub directory: PathBuf,
    /// File stem. Default: the service name.
    pub prefix: Option<String>,
    /// Rotate before the active file grows past this many bytes. Default 64 MiB.
    pub max_file_bytes: u64,
    /// Rotate when the active file is older than this. Default 1 day.
    #[serde(with = "humantime_serde")]
    pub max_file_age: Duration,
    /// Keep at most this many rotated files. Default 10.
    pub max_files: usize,
    /// Delete rotated files older than this. Default 7 days.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            enabled: true,
            directory: PathBuf::from("logs"),
            prefix: None,
            max_file_bytes: 64 * 1024 * 1024,
            max_file_age: Duration::from_secs(24 * 3600),
            max_files: 10,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Redaction of secrets and PII, applied on the worker before any sink sees a record.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// Scan every string value for secrets by pattern (card numbers, IBANs, bearer tokens,
    /// API keys, JWTs, `password=` pairs, URL passwords). Default on. Fields whose schema class
    /// is secret are always redacted, and account ids always pseudonymised, whatever this says.
    pub patterns: bool,
    /// Key of the keyed hash (HMAC-SHA256) that pseudonymises account ids; at least 16 bytes.
    /// Without one, a random per-process key is used and pseudonyms are only stable within the
    /// process (a warning record says so).
    pub pseudonym_key: Option<Secret>,
    /// More field names whose values are always redacted.
    pub secret_fields: Vec<String>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            patterns: true,
            pseudonym_key: None,
            secret_fields: Vec::new(),
        }
    }
}

/// A string that never shows up in `Debug` output, logs or errors.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Sampling of one noisy group of call sites: within each `interval`, the first `first` events
/// of a call site are kept, then one in `thereafter`. The next kept event of the call site
/// carries `log.sampled_away` with the number skipped. Events with `audit = true` are never
/// sampled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingRule {
    /// Target prefix (module path) the rule applies to, e.g. `market_data::feed`.
    pub target: String,
    /// Events kept at the start of each interval. Default 10.
    #[serde(default = "SamplingRule::default_first")]
    pub first: u64,
    /// After that, one event in this many is kept (1 keeps all). Default 100.
    #[serde(default = "SamplingRule::default_thereafter")]
    pub thereafter: u64,
    /// Length of the counting window. Default 1 s.
    #[serde(default = "SamplingRule::default_interval", with = "humantime_serde")]
    pub interval: Duration,
}

impl SamplingRule {
    fn default_first() -> u64 {
        10
    }
    fn default_thereafter() -> u64 {
        100
    }
    fn default_interval() -> Duration {
        Duration::from_secs(1)
    }

    /// A rule for `target` with the defaults (first 10 per second, then 1 in 100).
    pub fn new(target: impl Into<String>) -> Self {
        SamplingRule {
            target: target.into(),
            first: Self::default_first(),
            thereafter: Self::default_thereafter(),
            interval: Self::default_interval(),
        }
    }
}

/// A field the service adds to the schema.
///
/// ```toml
/// [[log.fields]]
/// name = "strategy.signal_strength"
/// type = "f64"
/// cardinality = "high"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomField {
    /// Dotted name as written in events (`strategy.signal_strength`) — a tracing field name.
    pub name: String,
    /// One of `string`, `i64`, `u64`, `f64`, `bool`, `timestamp`, `number`.
    #[serde(rename = "type")]
    pub ty: String,
    /// One of `low`, `medium`, `high`. Default `high` (never a metric label).
    #[serde(default = "CustomField::default_cardinality")]
    pub cardinality: String,
    /// One of `public`, `pseudonymised`, `secret`. Default `public`.
    #[serde(default = "CustomField::default_sensitivity")]
    pub sensitivity: String,
}

impl CustomField {
    fn default_cardinality() -> String {
        "high".into()
    }
    fn default_sensitivity() -> String {
        "public".into()
    }

    /// A public, high-cardinality field of the given type name.
    pub fn new(name: impl Into<String>, ty: impl Into<String>) -> Self {
        CustomField {
            name: name.into(),
            ty: ty.into(),
            cardinality: Self::default_cardinality(),
            sensitivity: Self::default_sensitivity(),
        }
    }
}

/// The shared pipeline: one bounded queue, one batcher and one worker thread.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Most records waiting in the queue. A full queue drops new records and counts them.
    /// Default 8192.
    pub queue_capacity: usize,
    /// Part of `queue_capacity` only audit-class records may use. Default 1024.
    pub audit_reserve: usize,
    /// Most bytes held by waiting records (their copied field values plus a fixed per-record
    /// size). Default 32 MiB.
    pub queue_max_bytes: usize,
    /// Records per batch handed to the sinks. Default 512.
    pub batch_max_records: usize,
    /// Bytes per encoded batch. Default 1 MiB.
    pub batch_max_bytes: usize,
    /// Longest time a record waits before the worker writes it. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Deadline of the best-effort flush done when the guard is dropped without
    /// [`shutdown`](crate::TelemetryGuard::shutdown). Default 2 s.
    #[serde(with = "humantime_serde")]
    pub drop_flush_timeout: Duration,
    /// CPU cores the worker thread may run on, to keep it off the cores trading threads pin.
    /// Empty: no pinning.
    pub worker_cpus: Vec<usize>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: 8192,
            audit_reserve: 1024,
            queue_max_bytes: 32 * 1024 * 1024,
            batch_max_records: 512,
            batch_max_bytes: 1024 * 1024,
            flush_interval: Duration::from_millis(100),
            drop_flush_timeout: Duration::from_secs(2),
            worker_cpus: Vec::new(),
        }
    }
}

/// Metrics settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Install the metrics recorder at all. Default on.
    pub enabled: bool,
    /// Every metric name must start with `<namespace>_`. Default `stockbot`.
    pub namespace: String,
    /// Address of the Prometheus scrape endpoint (`GET /metrics`). Default `127.0.0.1:9464`
    /// (loopback only: expose it deliberately, e.g. `0.0.0.0:9464`); port 0 picks a free port;
    /// empty disables the endpoint. A port already in use is an init error.
    pub listen: String,
    /// Credentials a scraper must send (`Authorization` header) — set them whenever `listen`
    /// is not loopback. Requests without them are answered `401` and counted
    /// (`stockbot_telemetry_scrape_refused_total`). Default: none.
    ///
    /// ```toml
    /// [metrics]
    /// listen = "0.0.0.0:9464"
    /// auth = { basic = { username = "prometheus", password = "s3cret-Passw0rd" } }
    /// # or: auth = { bearer = "token68-characters" }
    /// ```
    pub auth: Option<ScrapeAuth>,
    /// Most label sets per metric; further new label sets go to one overflow series labelled
    /// `otel_metric_overflow="true"`. Default 1000.
    pub max_series_per_metric: usize,
    /// Counter and histogram series not written for this long (and not held by a
    /// pre-registered handle) are removed. `0s` keeps them forever. Default 10 minutes.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Histogram buckets (upper bounds, seconds for `_seconds` metrics) for metrics not listed
    /// in `buckets`.
    pub default_buckets: Vec<f64>,
    /// Buckets per metric name.
    pub buckets: BTreeMap<String, Vec<f64>>,
    /// Host and process metrics collected by a background thread.
    pub system: SystemMetricsConfig,
    /// How often the process's view of its SLOs ([`Config::slos`]) is refreshed: the
    /// `stockbot_slo_*` gauges and the burn-rate windows' resolution. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub slo_interval: Duration,
    /// Push to a Prometheus Pushgateway — for batch jobs only; services are scraped.
    pub push: Option<PushConfig>,
    /// Push OTLP metrics to an OpenTelemetry Collector (fleets that do not scrape). Needs the
    /// `otlp` feature.
    pub otlp: Option<OtlpMetricsConfig>,
}

/// OTLP metrics push (protobuf over HTTP or gRPC, cumulative temporality).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpMetricsConfig {
    /// URL of the receiver: with `http/protobuf` the full URL of the metrics endpoint (default
    /// `http://localhost:4318/v1/metrics`); with `grpc` the server's root, e.g.
    /// `http://localhost:4317`.
    #[serde(default = "OtlpMetricsConfig::default_endpoint")]
    pub endpoint: String,
    /// Transport. Default `http/protobuf`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Body compression. Default none.
    #[serde(default)]
    pub compression: OtlpCompression,
    /// Export interval. Default 60 s (`OTEL_METRIC_EXPORT_INTERVAL`).
    #[serde(
        default = "OtlpMetricsConfig::default_interval",
        with = "humantime_serde"
    )]
    pub interval: Duration,
    /// Timeout of one export. Default 10 s.
    #[serde(
        default = "OtlpMetricsConfig::default_timeout",
        with = "humantime_serde"
    )]
    pub timeout: Duration,
    /// Extra request headers (e.g. an API key); kept as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
}

impl OtlpMetricsConfig {
    fn default_endpoint() -> String {
        "http://localhost:4318/v1/metrics".into()
    }
    fn default_interval() -> Duration {
        Duration::from_secs(60)
    }
    fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
}

impl Default for OtlpMetricsConfig {
    fn default() -> Self {
        OtlpMetricsConfig {
            endpoint: Self::default_endpoint(),
            protocol: OtlpProtocol::default(),
            compression: OtlpCompression::default(),
            interval: Self::default_interval(),
            timeout: Self::default_timeout(),
            headers: BTreeMap::new(),
        }
    }
}

/// Pushgateway settings (batch jobs only).
///
/// The grouping key is `job`, plus `instance` only for jobs that run once per host. The whole
/// exposition is PUT every `interval` and once more at shutdown; then the group is deleted
/// (`delete_on_shutdown`), because the Pushgateway never forgets a group by itself and a
/// finished job's last values would otherwise be scraped forever. Keep `interval` shorter than
/// the job so Prometheus scrapes at least one push.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// `http://host:port` of the Pushgateway.
    pub url: String,
    /// Job name (grouping key).
    pub job: String,
    /// Instance (grouping key) — only for per-host jobs.
    #[serde(default)]
    pub instance: Option<String>,
    /// Push interval. Default 10 s.
    #[serde(default = "PushConfig::default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Timeout of one request. Default 5 s.
    #[serde(default = "PushConfig::default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Delete the group after the final push at shutdown. Default true.
    #[serde(default = "PushConfig::default_delete")]
    pub delete_on_shutdown: bool,
}

impl PushConfig {
    fn default_interval() -> Duration {
        Duration::from_secs(10)
    }
    fn default_timeout() -> Duration {
        Duration::from_secs(5)
    }
    fn default_delete() -> bool {
        true
    }

    /// Push to `url` as `job`, with the defaults.
    pub fn new(url: impl Into<String>, job: impl Into<String>) -> Self {
        PushConfig {
            url: url.into(),
            job: job.into(),
            instance: None,
            interval: Self::default_interval(),
            timeout: Self::default_timeout(),
            delete_on_shutdown: Self::default_delete(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            namespace: "stockbot".into(),
            listen: "127.0.0.1:9464".into(),
            auth: None,
            max_series_per_metric: 1000,
            idle_timeout: Duration::from_secs(600),
            default_buckets: vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
            buckets: BTreeMap::new(),
            system: SystemMetricsConfig::default(),
            slo_interval: Duration::from_secs(10),
            push: None,
            otlp: None,
        }
    }
}

/// Host and process metrics (CPU, memory, disk, network, file descriptors, threads).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SystemMetricsConfig {
    /// Collect them. Default on.
    pub enabled: bool,
    /// Collection interval. Default 15 s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for SystemMetricsConfig {
    fn default() -> Self {
        SystemMetricsConfig {
            enabled: true,
            interval: Duration::from_secs(15),
        }
    }
}

impl Config {
    /// A default configuration for the named service.
    pub fn for_service(name: impl Into<String>) -> Self {
        let mut config = Config::default();
        config.service.name = name.into();
        config
    }

    /// Defaults overlaid with the process environment (see [`Config::apply_env`]).
    ///
    /// # Errors
    /// A variable with a value that cannot be used, named with its value.
    pub fn from_env() -> Result<Self, Error> {
        let mut config = Config::default();
        config.apply_env(std::env::vars_os().filter_map(|(k, v)| {
            Some((k.into_string().ok()?, v.into_string().unwrap_or_default()))
        }))?;
        Ok(config)
    }

    /// Parses a TOML file.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigFileRead`] when the file cannot be read,
    /// [`ErrorKind::ConfigFileParse`] when it is not valid (the message names the key).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ErrorKind::ConfigFileRead {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e: toml::de::Error| {
            let position = e.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                (line, col)
            });
            ErrorKind::ConfigFileParse {
                path: path.to_path_buf(),
                message: e.message().to_owned(),
                position,
            }
            .into()
        })
    }

    /// Defaults, then the TOML file named by `STOCKBOT_CONFIG` (if set), then the environment.
    ///
    /// # Errors
    /// As [`Config::from_file`] and [`Config::apply_env`].
    pub fn load() -> Result<Self, Error> {
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().unwrap_or_default())))
            .collect();
        let mut config = match vars.iter().find(|(k, _)| k == "STOCKBOT_CONFIG") {
            Some((_, path)) if !path.is_empty() => Config::from_file(PathBuf::from(path))?,
            _ => Config::default(),
        };
        config.apply_env(vars)?;
        Ok(config)
    }

    /// Overlays environment variables (given as pairs, so tests need not touch the process
    /// environment). Unrelated variables are ignored.
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `OTEL_SERVICE_NAME` | `service.name` |
    /// | `OTEL_RESOURCE_ATTRIBUTES` | `service.name`, `service.version`, `deployment.environment[.name]`, `host.name`; others kept in `service.resource_attributes` |
    /// | `RUST_LOG`, `STOCKBOT_LOG` (wins) | `log.filter` |
    /// | `STOCKBOT_SERVICE_VERSION` | `service.version` |
    /// | `STOCKBOT_ENVIRONMENT` | `service.environment` |
    /// | `STOCKBOT_DEPLOYMENT_MODE` | `service.deployment_mode` |
    /// | `STOCKBOT_LOG_SCHEMA` | `log.schema` |
    /// | `STOCKBOT_LOG_STDOUT` | `log.stdout` |
    /// | `STOCKBOT_LOG_FILE` | `log.file.enabled` |
    /// | `STOCKBOT_LOG_DIR` | `log.file.directory` |
    /// | `STOCKBOT_LOG_MAX_FIELD_BYTES` | `log.max_field_bytes` |
    /// | `STOCKBOT_PSEUDONYM_KEY` | `log.redaction.pseudonym_key` |
    /// | `STOCKBOT_QUEUE_CAPACITY` | `pipeline.queue_capacity` |
    /// | `STOCKBOT_FLUSH_INTERVAL` | `pipeline.flush_interval` (e.g. `250ms`) |
    /// | `STOCKBOT_WORKER_CPUS` | `pipeline.worker_cpus` (e.g. `0,1`) |
    /// | `STOCKBOT_METRICS` | `metrics.enabled` |
    /// | `STOCKBOT_METRICS_LISTEN` | `metrics.listen` (e.g. `127.0.0.1:0`, empty to disable) |
    /// | `STOCKBOT_METRICS_BEARER_TOKEN` | `metrics.auth = { bearer = … }` |
    /// | `STOCKBOT_METRICS_NAMESPACE` | `metrics.namespace` |
    /// | `STOCKBOT_METRICS_MAX_SERIES` | `metrics.max_series_per_metric` |
    /// | `STOCKBOT_SYSTEM_METRICS` | `metrics.system.enabled` |
    /// | `STOCKBOT_PUSHGATEWAY_URL`, `STOCKBOT_PUSH_JOB`, `STOCKBOT_PUSH_INSTANCE` | `metrics.push` (URL and job required together) |
    /// | `OTEL_METRICS_EXPORTER` | `otlp` turns on `metrics.otlp`; `none` turns off the scrape endpoint; `prometheus` (default) keeps it |
    /// | `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, `grpc`) | `metrics.otlp.protocol` |
    /// | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/metrics` for `http/protobuf`) | `metrics.otlp.endpoint` |
    /// | `OTEL_EXPORTER_OTLP_METRICS_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` | `metrics.otlp.headers` |
    /// | `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` (ms) | `metrics.otlp.timeout` |
    /// | `OTEL_EXPORTER_OTLP_METRICS_COMPRESSION`, `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip`, `none`) | `metrics.otlp.compression` |
    /// | `OTEL_METRIC_EXPORT_INTERVAL` (ms) | `metrics.otlp.interval` |
    /// | `OTEL_LOGS_EXPORTER` | `otlp` turns on `log.otlp`; `none` turns it off |
    /// | `OTEL_EXPORTER_OTLP_LOGS_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,COMPRESSION}` and the generic ones (+ `/v1/logs` for `http/protobuf`) | `log.otlp.*` |
    /// | `STOCKBOT_ELASTICSEARCH_URL`, `STOCKBOT_ELASTICSEARCH_DATA_STREAM`, `STOCKBOT_ELASTICSEARCH_API_KEY` | `log.elasticsearch.url`, `.data_stream`, `.auth` |
    /// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `traces.sampler`, `traces.sampler_arg` |
    /// | `OTEL_TRACES_EXPORTER` | `none` turns traces off |
    /// | `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, `grpc`) | `traces.otlp.protocol` |
    /// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces` for `http/protobuf`) | `traces.otlp.endpoint` (setting one turns OTLP span export on) |
    /// | `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` | `traces.otlp.headers` |
    /// | `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_EXPORT_TIMEOUT` (ms) | `traces.otlp.timeout` |
    /// | `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip`, `none`) | `traces.otlp.compression` |
    /// | `OTEL_BSP_SCHEDULE_DELAY` (ms), `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | `traces.flush_interval`, `traces.queue_capacity`, `traces.batch_max_spans` |
    /// | `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_EVENT_COUNT_LIMIT`, `OTEL_SPAN_LINK_COUNT_LIMIT` | `traces.limits` |
    /// | `STOCKBOT_TRACES_MAX_PER_SECOND` | `traces.max_traces_per_second` |
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] naming the variable and its value.
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        env::apply(self, vars)
    }

    /// Checks every setting; the error names the first bad field and its value.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`].
    pub fn validate(&self) -> Result<(), Error> {
        validate::validate(self)
    }

    /// The file stem of the rolling file.
    pub(crate) fn file_prefix(&self) -> String {
        self.log
            .file
            .prefix
            .clone()
            .unwrap_or_else(|| self.service.name.clone())
    }

    /// Targets for which strict mode applies.
    pub(crate) fn own_targets(&self) -> Vec<String> {
        let mut targets = self.service.own_targets.clone();
        if targets.is_empty() {
            targets.push(self.service.name.replace('-', "_"));
        }
        targets.push("stockbot_telemetry".into());
        targets
    }
}
