//! The entry point: validate, open sinks, start the worker — and only then touch globals.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing_core::Level;

use crate::collect::clock::{RecordClock, SimClock};
use crate::collect::filter::{SharedFilter, parse_filter, to_log_level};
use crate::collect::metrics::{MetricsRecorder, MetricsRegistry, RegistrySettings};
use crate::collect::record::LogRecord;
use crate::collect::system::{SystemMetrics, SystemMetricsSettings};
use crate::collect::{LogCollector, SpanCollector, TelemetryLayer};
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::export::accounting::Accounting;
use crate::export::batch::BatchLimits;
use crate::export::exposition::{self, Extra};
use crate::export::pipeline::Pipeline;
use crate::export::push::{PushSettings, PushStats, Pusher, PushgatewayJob};
use crate::export::queue::{Queue, QueueLimits};
use crate::export::scrape::{RenderFn, ScrapeServer};
use crate::export::sink::WriterSink;
use crate::export::sink::file::{RollingFile, RollingFileSettings};
use crate::export::span_worker::{SpanRecord, SpanWorker};
use crate::export::worker::{SinkSlot, Worker};
use crate::guard::{MetricsParts, TelemetryGuard};
use crate::process::Processor;
use crate::process::sample::Sampler;

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Sets up telemetry for the process: the one call a service makes in `main`.
///
/// Validates `config`, opens the sinks, starts the background worker, then installs the global
/// `tracing` subscriber and the `log` bridge. Keep the returned guard alive until the end of
/// `main` and call [`TelemetryGuard::shutdown`] there.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let guard = stockbot_telemetry::init(stockbot_telemetry::Config::load()?)?;
///     tracing::info!(venue = "XNAS", "service started");
///     let report = guard.shutdown(std::time::Duration::from_secs(5));
///     eprintln!("{report}");
///     Ok(())
/// }
/// ```
///
/// # Errors
/// An invalid setting ([`ErrorKind::InvalidConfig`] names it), a sink that cannot be opened
/// ([`ErrorKind::SinkOpen`]), a worker that cannot start, or a second call /
/// another global subscriber or `log` logger ([`ErrorKind::AlreadyInitialized`]). Every
/// fallible step runs before any process-global is set, so on error nothing is installed —
/// with one exception: when another global `tracing` subscriber is found, the `log` bridge
/// stays installed (it forwards to whatever subscriber is global). A global `metrics`
/// recorder installed by someone else is not an error: it is reported as a warning record,
/// and the SDK's recorder stays available from the guard.
pub fn init(config: Config) -> Result<TelemetryGuard, Error> {
    TelemetryBuilder::new(config).install()
}

/// Builds the SDK from a [`Config`], for composition: [`build`](Self::build) returns the
/// layer and guard without touching globals, [`build_dispatch`](Self::build_dispatch) a
/// ready `tracing::Dispatch` for scoped use, and [`install`](Self::install) does what
/// [`init`] does.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// let mut config = stockbot_telemetry::Config::for_service("risk");
/// config.log.stdout = false;
/// config.log.file.enabled = false;
/// config.metrics.listen = String::new();
/// config.traces.file.enabled = false;
/// let (layer, guard) = stockbot_telemetry::TelemetryBuilder::new(config)
///     .with_writer("capture", std::io::sink())
///     .build()
///     .unwrap();
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!("scoped"));
/// let report = guard.shutdown(std::time::Duration::from_secs(5));
/// assert!(report.completed);
/// assert!(report.written("capture") >= 1);
/// ```
pub struct TelemetryBuilder {
    config: Config,
    writers: Vec<(String, Box<dyn Write + Send>)>,
    span_writers: Vec<(String, Box<dyn Write + Send>)>,
    sim_clock: Option<SimClock>,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("config", &self.config)
            .field(
                "writers",
                &self.writers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("sim_clock", &self.sim_clock)
            .finish()
    }
}

impl TelemetryBuilder {
    /// Starts from a configuration.
    pub fn new(config: Config) -> Self {
        TelemetryBuilder {
            config,
            writers: Vec::new(),
            span_writers: Vec::new(),
            sim_clock: None,
        }
    }

    /// Adds a sink that receives the same JSON lines as stdout (a test buffer, a pipe to an
    /// agent). `name` labels its counters.
    pub fn with_writer(
        mut self,
        name: impl Into<String>,
        writer: impl Write + Send + 'static,
    ) -> Self {
        self.writers.push((name.into(), Box::new(writer)));
        self
    }

    /// Adds a sink of finished spans (JSON lines, the format of
    /// [`analysis::read_json_lines`](crate::analysis::read_json_lines)) — a test buffer, a pipe.
    pub fn with_span_writer(
        mut self,
        name: impl Into<String>,
        writer: impl Write + Send + 'static,
    ) -> Self {
        self.span_writers.push((name.into(), Box::new(writer)));
        self
    }

    /// Stamps records with simulated time (backtests); see [`SimClock`].
    pub fn with_sim_clock(mut self, clock: SimClock) -> Self {
        self.sim_clock = Some(clock);
        self
    }

    /// Validates, opens the sinks and starts the worker; sets no global. The layer goes into a
    /// `tracing_subscriber::registry()` of your own, beside other layers; without other layers,
    /// [`build_dispatch`](Self::build_dispatch) is cheaper per span (same records).
    ///
    /// # Errors
    /// As [`init`], except [`ErrorKind::AlreadyInitialized`].
    pub fn build(self) -> Result<(TelemetryLayer, TelemetryGuard), Error> {
        let TelemetryBuilder {
            mut config,
            writers,
            span_writers,
            sim_clock,
        } = self;
        config.validate()?;
        if !config.slos.is_empty() {
            check_slo_ties(&config)?;
        }
        crate::alerting::threshold_buckets(&config.slos, &mut config.metrics);
        let targets = parse_filter(&config.log.filter)
            .map_err(|reason| Error::invalid("log.filter", &config.log.filter, reason))?;

        let host_name = match &config.service.host_name {
            Some(h) => h.clone(),
            None => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "unknown".into()),
        };
        let mut sinks = Vec::new();
        if config.log.stdout {
            sinks.push(SinkSlot::new(
                "stdout",
                Box::new(WriterSink::new(Box::new(std::io::stdout()))),
            ));
        }
        let mut log_file = None;
        if config.log.file.enabled {
            let f = &config.log.file;
            let settings = RollingFileSettings {
                directory: f.directory.clone(),
                prefix: config.file_prefix(),
                max_file_bytes: f.max_file_bytes,
                max_file_age: f.max_file_age,
                max_files: f.max_files,
                max_age: f.max_age,
            };
            let file = RollingFile::open(settings).map_err(|source| ErrorKind::SinkOpen {
                field: "log.file.directory".into(),
                target: f.directory.display().to_string(),
                source,
            })?;
            log_file = Some(file.active_path().to_path_buf());
            sinks.push(SinkSlot::new("file", Box::new(file)));
        }
        for (name, writer) in writers {
            sinks.push(SinkSlot::new(name, Box::new(WriterSink::new(writer))));
        }
        if let Some(es) = &config.log.elasticsearch {
            use crate::export::sink::elasticsearch::{ElasticsearchSettings, ElasticsearchSink};
            let ca = match &es.ca_file {
                Some(path) => Some(crate::export::tls::load_ca_file(path).map_err(|reason| {
                    Error::invalid("log.elasticsearch.ca_file", path.display(), reason)
                })?),
                None => None,
            };
            let settings = ElasticsearchSettings {
                url: es.url.clone(),
                ca,
                data_stream: es.data_stream.clone().unwrap_or_else(|| {
                    format!("logs-{}-default", config.service.name.to_ascii_lowercase())
                }),
                auth: es.auth.clone(),
                max_bulk_bytes: es.max_bulk_bytes,
                timeout: es.timeout,
                gzip: es.gzip,
                dead_letter: es.dead_letter.clone().unwrap_or_else(|| {
                    config
                        .log
                        .file
                        .directory
                        .join(format!("{}-dead-letter.log", config.file_prefix()))
                }),
                dead_letter_max_bytes: es.dead_letter_max_bytes,
            };
            sinks.push(shipper(
                &config,
                "elasticsearch",
                Box::new(ElasticsearchSink::new(settings)),
            )?);
        }
        #[cfg(feature = "otlp")]
        if let Some(o) = &config.log.otlp {
            use crate::export::otlp_client::{BatchExporter, Signal};
            sinks.push(shipper(
                &config,
                "otlp",
                Box::new(crate::export::otlp_logs::OtlpLogSink::new(
                    BatchExporter::of(Signal::Logs, o),
                    crate::export::otlp_metrics::resource_attributes(&config, &host_name),
                )),
            )?);
        }
        if sinks.is_empty() {
            return Err(Error::invalid(
                "log.stdout",
                false,
                "no log sink left: enable log.stdout or log.file.enabled (or add a writer)",
            ));
        }

        let (key, random_key) = match &config.log.redaction.pseudonym_key {
            Some(k) => (k.expose().as_bytes().to_vec(), false),
            None => {
                let mut k = vec![0u8; 32];
                getrandom::fill(&mut k).map_err(|e| {
                    Error::invalid(
                        "log.redaction.pseudonym_key",
                        "<unset>",
                        format!("no random key available: {e}"),
                    )
                })?;
                (k, true)
            }
        };

        let clock = Arc::new(RecordClock::new(sim_clock));
        let p = &config.pipeline;
        let acct = Accounting::new(sinks.iter().map(|s| s.name.clone()));
        let pipeline = Arc::new(Pipeline::new(
            Queue::new(QueueLimits {
                capacity: p.queue_capacity,
                audit_reserve: p.audit_reserve,
                max_bytes: p.queue_max_bytes,
                wake_at: p.batch_max_records.min(p.queue_capacity),
            }),
            acct,
            p.flush_interval,
        ));
        let logs = Arc::new(LogCollector {
            clock: Arc::clone(&clock),
            filter: SharedFilter::new(targets),
            sampler: Sampler::new(config.log.sampling.clone()),
            max_field_bytes: config.log.max_field_bytes,
        });
        let processor = Processor::new(&config, &host_name, &key, Arc::clone(&clock));
        let worker = Worker::new(
            Arc::clone(&pipeline),
            Arc::clone(&clock),
            sinks,
            processor,
            BatchLimits {
                max_records: p.batch_max_records,
                max_bytes: p.batch_max_bytes,
            },
        );
        spawn_worker(worker, &p.worker_cpus, Arc::clone(&pipeline))?;

        let spans = match build_spans(&config, &host_name, span_writers, &clock, &key, &pipeline) {
            Ok(s) => s,
            Err(e) => {
                pipeline.shutdown(std::time::Duration::from_secs(1));
                return Err(e);
            }
        };
        let metrics = match build_metrics(
            &config,
            &host_name,
            &pipeline,
            spans.as_ref().map(|s| &s.pipeline),
        ) {
            Ok(m) => m,
            Err(e) => {
                // Nothing half-started stays behind: both workers (and their shippers) stop.
                if let Some(spans) = &spans {
                    spans.pipeline.shutdown(std::time::Duration::from_secs(1));
                }
                pipeline.shutdown(std::time::Duration::from_secs(1));
                return Err(e);
            }
        };
        let metrics_addr = metrics
            .as_ref()
            .and_then(|m| m.server.as_ref())
            .map(|s| s.addr());
        let metrics_url = metrics_addr.map(|a| format!("http://{a}/metrics"));
        // Exposed beyond this host without credentials: allowed (deliberate), but said.
        let exposed_openly =
            metrics_addr.is_some_and(|a| !a.ip().is_loopback() && config.metrics.auth.is_none());
        let guard = TelemetryGuard::new(
            Arc::clone(&pipeline),
            spans.as_ref().map(|s| Arc::clone(&s.pipeline)),
            logs.filter.clone(),
            p.drop_flush_timeout,
            log_file.clone(),
            metrics,
            (Arc::clone(&clock), config.log.max_field_bytes),
        );
        let sink_list = pipeline
            .acct
            .sinks
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let where_file = log_file
            .map(|f| format!(" (log file {})", f.display()))
            .unwrap_or_default();
        pipeline.submit(LogRecord::internal(
            clock.stamp(),
            Level::INFO,
            "stockbot_telemetry",
            format!(
                "stockbot-telemetry {} started: logs to {sink_list}{where_file}",
                env!("CARGO_PKG_VERSION")
            ),
        ));
        // The SDK's own start-up records, in the pipeline like any other.
        let say = |level, message: String| {
            pipeline.submit(LogRecord::internal(
                clock.stamp(),
                level,
                "stockbot_telemetry",
                message,
            ));
        };
        if let Some(url) = metrics_url {
            say(Level::INFO, format!("metrics served on {url}"));
        }
        if exposed_openly {
            say(
                Level::WARN,
                "metrics.listen is not a loopback address and metrics.auth is not set: anyone who reaches the port can read the metrics".into(),
            );
        }
        if random_key {
            say(
                Level::WARN,
                "no log.redaction.pseudonym_key configured: account pseudonyms are only stable within this process".into(),
            );
        }
        Ok((
            TelemetryLayer {
                pipeline,
                logs,
                spans,
            },
            guard,
        ))
    }

    /// [`build`](Self::build), wrapped in a `tracing::Dispatch` for scoped use with
    /// `tracing::dispatcher::with_default` — what the testing crate does, and what [`init`]
    /// installs. The subscriber behaves as `tracing_subscriber::registry().with(layer)` but
    /// keeps span contexts in its own table (cheaper: no per-span allocation).
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub fn build_dispatch(self) -> Result<(tracing::Dispatch, TelemetryGuard), Error> {
        let (layer, guard) = self.build()?;
        let subscriber = crate::collect::subscriber::TelemetrySubscriber::new(layer);
        Ok((tracing::Dispatch::new(subscriber), guard))
    }

    /// Builds and installs process-wide: the global `tracing` subscriber and the `log` bridge.
    ///
    /// # Errors
    /// As [`init`].
    pub fn install(self) -> Result<TelemetryGuard, Error> {
        // The service's process: every SLO tie of its code must name a declared SLO.
        check_slo_ties(&self.config)?;
        if INSTALLED.swap(true, Ordering::AcqRel) {
            return Err(ErrorKind::AlreadyInitialized {
                what: "stockbot_telemetry::init (called twice)",
            }
            .into());
        }
        let result = install_inner(self);
        if result.is_err() {
            INSTALLED.store(false, Ordering::Release);
        }
        result
    }
}

/// Every `#[instrument_trade(slo = "…")]` of the program — or, when `service.own_targets` is
/// set, of the service's own modules (a binary hosting several services) — must name one of
/// the declared SLOs.
fn check_slo_ties(config: &Config) -> Result<(), Error> {
    let slos = &config.slos;
    let scope = &config.service.own_targets;
    let own = |function: &str| {
        scope.is_empty()
            || scope.iter().any(|t| {
                t == "*"
                    || function
                        .strip_prefix(t.as_str())
                        .is_some_and(|rest| rest.starts_with("::"))
            })
    };
    let mut unknown: Vec<_> = crate::instrument::slo_ties()
        .filter(|tie| own(tie.function) && !slos.iter().any(|s| s.name == tie.slo))
        .collect();
    unknown.sort_by_key(|tie| (tie.file, tie.line));
    match unknown.first() {
        None => Ok(()),
        Some(tie) => Err(ErrorKind::UnknownSlo {
            slo: tie.slo.to_owned(),
            function: tie.function.to_owned(),
            location: format!("{}:{}", tie.file, tie.line),
            declared: slos.iter().map(|s| s.name.clone()).collect(),
        }
        .into()),
    }
}

fn install_inner(builder: TelemetryBuilder) -> Result<TelemetryGuard, Error> {
    let (dispatch, guard) = builder.build_dispatch()?;
    let max = guard.max_level();
    // The `log` bridge first: refused, nothing is installed. Installed, it only forwards `log`
    // records to whatever `tracing` subscriber is global, so it is harmless if the next step
    // is refused.
    tracing_log::LogTracer::builder()
        .with_max_level(to_log_level(max))
        .init()
        .map_err(|_| {
            Error::from(ErrorKind::AlreadyInitialized {
                what: "a `log` logger",
            })
        })?;
    // Then the global subscriber (the guard, dropped on refusal, stops what was built).
    // (`tracing::dispatcher::has_been_set` cannot tell beforehand: it is also true while any
    // thread has a scoped default, e.g. a test's capture.)
    tracing::dispatcher::set_global_default(dispatch).map_err(|_| {
        Error::from(ErrorKind::AlreadyInitialized {
            what: "a global tracing subscriber",
        })
    })?;
    // Last the metrics recorder. Refusing `init` here would leave a global subscriber feeding
    // stopped pipelines; so another recorder already installed is reported, not fatal: the
    // SDK's recorder stays available (`TelemetryGuard::metrics_recorder`).
    if let Some(recorder) = guard.metrics_recorder()
        && metrics::set_global_recorder(recorder).is_err()
    {
        tracing::warn!(
            target: "stockbot_telemetry",
            "another global metrics recorder was installed before init: the `metrics` macros record into it, not into this SDK's registry (TelemetryGuard::metrics_recorder gives the SDK's)"
        );
    }
    guard.mark_global();
    Ok(guard)
}

/// The span side: head sampler, spans pipeline, its sinks (the span file, span writers) and
/// worker. `None` when traces are off or no span sink is left (span ids are still assigned,
/// for log correlation).
fn build_spans(
    config: &Config,
    #[cfg_attr(
        not(feature = "otlp"),
        expect(unused_variables, reason = "names the OTLP resource")
    )]
    host_name: &str,
    writers: Vec<(String, Box<dyn Write + Send>)>,
    clock: &Arc<RecordClock>,
    key: &[u8],
    logs: &Arc<Pipeline<LogRecord>>,
) -> Result<Option<Arc<SpanCollector>>, Error> {
    let t = &config.traces;
    if !t.enabled {
        return Ok(None);
    }
    let mut sinks = Vec::new();
    if t.file.enabled {
        let directory = t
            .file
            .directory
            .clone()
            .unwrap_or_else(|| config.log.file.directory.clone());
        let settings = RollingFileSettings {
            directory: directory.clone(),
            prefix: t
                .file
                .prefix
                .clone()
                .unwrap_or_else(|| format!("{}-spans", config.file_prefix())),
            max_file_bytes: t.file.max_file_bytes,
            max_file_age: config.log.file.max_file_age,
            max_files: t.file.max_files,
            max_age: t.file.max_age,
        };
        let file = RollingFile::open(settings).map_err(|source| ErrorKind::SinkOpen {
            field: "traces.file.directory".into(),
            target: directory.display().to_string(),
            source,
        })?;
        sinks.push(SinkSlot::new("file", Box::new(file)));
    }
    for (name, writer) in writers {
        sinks.push(SinkSlot::new(name, Box::new(WriterSink::new(writer))));
    }
    #[cfg(feature = "otlp")]
    if let Some(o) = &t.otlp {
        use crate::export::otlp_client::{BatchExporter, Signal};
        let sink = crate::export::otlp_traces::OtlpSpanSink::new(
            BatchExporter::of(Signal::Traces, o),
            crate::export::otlp_metrics::resource_attributes(config, host_name),
        );
        sinks.push(SinkSlot::new("otlp", Box::new(sink)));
    }
    if sinks.is_empty() {
        return Ok(None);
    }
    let root = crate::process::head_sampling::parse_sampler(&t.sampler, t.sampler_arg)
        .map_err(|e| Error::invalid("traces.sampler", &t.sampler, e))?;
    let pipeline = Arc::new(Pipeline::new(
        Queue::new(QueueLimits {
            capacity: t.queue_capacity,
            audit_reserve: t.queue_capacity / 8,
            max_bytes: 64 * 1024 * 1024,
            wake_at: t.batch_max_spans.min(t.queue_capacity),
        }),
        Accounting::new(sinks.iter().map(|s| s.name.clone())),
        t.flush_interval,
    ));
    let worker = SpanWorker::new(
        Arc::clone(&pipeline),
        Arc::clone(clock),
        config.service.name.clone(),
        crate::process::redact::Redactor::new(key),
        sinks,
        t.batch_max_spans,
    );
    let p = Arc::clone(&pipeline);
    let spawned = std::thread::Builder::new()
        .name("stockbot-telemetry-spans".into())
        .spawn(move || {
            let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run())) {
                Ok(()) => p.worker_exited(),
                Err(_) => p.worker_died(),
            }
        });
    if let Err(source) = spawned {
        logs.shutdown(std::time::Duration::from_secs(1));
        return Err(ErrorKind::SpawnWorker { source }.into());
    }
    let keep = t.keep.enabled.then(|| {
        crate::process::keep::KeepRules::new(
            t.keep.errors,
            t.keep.audit,
            t.keep.slower_than,
            t.keep.max_spans_per_trace,
            t.keep.max_buffered_spans,
        )
    });
    Ok(Some(Arc::new(SpanCollector {
        pipeline,
        sampler: crate::process::head_sampling::HeadSampler::new(root, t.max_traces_per_second),
        keep,
        clock: Arc::clone(clock),
        limits: t.limits,
    })))
}

/// The metrics side: registry with the trading catalogue's help and buckets, the renderer, and
/// the scrape endpoint (bound now, so a port in use is an init error).
fn build_metrics(
    config: &Config,
    host_name: &str,
    pipeline: &Arc<Pipeline<LogRecord>>,
    spans: Option<&Arc<Pipeline<SpanRecord>>>,
) -> Result<Option<MetricsParts>, Error> {
    let m = &config.metrics;
    if !m.enabled {
        return Ok(None);
    }
    let mut buckets: std::collections::HashMap<String, Vec<f64>> = crate::trading::CATALOGUE
        .iter()
        .filter(|d| !d.buckets.is_empty())
        .map(|d| (d.name.to_owned(), d.buckets.to_vec()))
        .collect();
    buckets.extend(m.buckets.iter().map(|(k, v)| (k.clone(), v.clone())));
    let registry = Arc::new(MetricsRegistry::new(RegistrySettings {
        namespace: m.namespace.clone(),
        max_series_per_metric: m.max_series_per_metric,
        idle_timeout: (!m.idle_timeout.is_zero()).then_some(m.idle_timeout),
        default_buckets: m.default_buckets.clone(),
        buckets,
        redact_patterns: config.log.redaction.patterns,
    }));
    for def in crate::trading::CATALOGUE {
        let unit = match def.unit {
            "seconds" => Some(metrics::Unit::Seconds),
            _ => None,
        };
        registry.describe(def.name, unit, def.help);
    }
    let s = &config.service;
    let global_labels = crate::collect::metrics::render_labels(
        [
            ("service", s.name.as_str()),
            ("environment", s.environment.as_str()),
            ("deployment_mode", s.deployment_mode.as_str()),
        ]
        .into_iter(),
    );
    let mut info: Vec<(String, String)> = vec![
        ("service_name".into(), s.name.clone()),
        ("service_version".into(), s.version.clone()),
        ("deployment_environment".into(), s.environment.clone()),
        ("deployment_mode".into(), s.deployment_mode.as_str().into()),
        ("host_name".into(), host_name.to_owned()),
    ];
    for (k, v) in &s.resource_attributes {
        let key: String = k
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // Sanitised keys may collide with the built-in ones or with each other: the first
        // wins, so the exposition never carries a label twice.
        if !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && !key.starts_with("__")
            && !info.iter().any(|(existing, _)| *existing == key)
        {
            info.push((key, v.clone()));
        }
    }
    let target_info =
        crate::collect::metrics::render_labels(info.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let push_stats = m.push.as_ref().map(|_| Arc::new(PushStats::default()));
    let otlp_stats = m.otlp.as_ref().map(|_| Arc::new(PushStats::default()));
    let push_targets: Vec<(&'static str, Arc<PushStats>)> =
        [("pushgateway", &push_stats), ("otlp", &otlp_stats)]
            .into_iter()
            .filter_map(|(name, stats)| Some((name, Arc::clone(stats.as_ref()?))))
            .collect();
    let scrape_refused = m.auth.as_ref().map(|_| Arc::<AtomicU64>::default());
    let render: RenderFn = {
        let (registry, pipeline) = (Arc::clone(&registry), Arc::clone(pipeline));
        let spans = spans.cloned();
        let push_targets = push_targets.clone();
        let scrape_refused = scrape_refused.clone();
        Arc::new(move |format| {
            registry.expire_idle(std::time::Instant::now());
            exposition::render(
                &registry,
                &Extra {
                    global_labels: global_labels.clone(),
                    target_info: Some(target_info.clone()),
                    logs: Some(pipeline.stats()),
                    spans: spans.as_ref().map(|s| s.stats()),
                    push: push_targets.clone(),
                    scrape_refused: scrape_refused.clone(),
                },
                format,
            )
        })
    };
    let server = match m.listen.trim() {
        "" => None,
        addr => {
            let addr: std::net::SocketAddr = addr
                .parse()
                .map_err(|e| Error::invalid("metrics.listen", addr, format!("{e}")))?;
            let access = m.auth.as_ref().zip(scrape_refused).map(|(auth, refused)| {
                crate::export::scrape::Access {
                    expected: auth.header_value(),
                    refused,
                }
            });
            Some(
                ScrapeServer::start(addr, Arc::clone(&render), access).map_err(|source| {
                    ErrorKind::SinkOpen {
                        field: "metrics.listen".into(),
                        target: addr.to_string(),
                        source,
                    }
                })?,
            )
        }
    };
    let slo = if config.slos.is_empty() {
        None
    } else {
        let tracker = Arc::new(crate::collect::slo::SloTracker::new(
            Arc::clone(&registry),
            &config.slos,
            &m.namespace,
            m.slo_interval,
        ));
        let ticking = Arc::clone(&tracker);
        let periodic = crate::collect::periodic::Periodic::start(
            "stockbot-telemetry-slo",
            m.slo_interval,
            move || {
                ticking.sample();
            },
        )
        .map_err(|source| ErrorKind::SpawnWorker { source })?;
        Some((tracker, periodic))
    };
    let recorder = MetricsRecorder { registry };
    let system = if m.system.enabled {
        let settings = SystemMetricsSettings {
            interval: m.system.interval,
            namespace: m.namespace.clone(),
        };
        let started = SystemMetrics::start(settings, Arc::new(recorder.clone()));
        Some(started.map_err(|source| ErrorKind::SpawnWorker { source })?)
    } else {
        None
    };
    let push = match (&m.push, push_stats) {
        (Some(p), Some(stats)) => {
            let settings = PushSettings {
                url: p.url.clone(),
                job: p.job.clone(),
                instance: p.instance.clone(),
                interval: p.interval,
                timeout: p.timeout,
                delete_on_shutdown: p.delete_on_shutdown,
            };
            let (interval, timeout) = (settings.interval, settings.timeout);
            let job = Box::new(PushgatewayJob {
                settings,
                render: Arc::clone(&render),
            });
            let started = Pusher::start("push", interval, timeout, job, stats);
            Some(started.map_err(|source| ErrorKind::SpawnWorker { source })?)
        }
        _ => None,
    };
    #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
    let mut pushers: Vec<Pusher> = push.into_iter().collect();
    #[cfg(feature = "otlp")]
    if let (Some(o), Some(stats)) = (&m.otlp, otlp_stats) {
        use crate::export::otlp_client::{OtlpClient, Signal};
        use crate::export::otlp_metrics::{OtlpMetricsJob, now_unix_nanos, resource_attributes};
        let job = Box::new(OtlpMetricsJob {
            client: OtlpClient::new(
                Signal::Metrics,
                o.endpoint.clone(),
                o.protocol,
                o.compression,
                &o.headers,
                o.timeout,
            ),
            registry: Arc::clone(&recorder.registry),
            resource: resource_attributes(config, host_name),
            start_unix_nanos: now_unix_nanos(),
        });
        let started = Pusher::start("otlp-metrics", o.interval, o.timeout, job, stats);
        pushers.push(started.map_err(|source| ErrorKind::SpawnWorker { source })?);
    }
    Ok(Some(MetricsParts {
        recorder,
        render,
        server,
        system,
        slo,
        pushers,
    }))
}

/// A network sink: the transport behind its shipper (thread, memory buffer, optional spool).
fn shipper(
    config: &Config,
    name: &str,
    transport: Box<dyn crate::export::shipper::Transport>,
) -> Result<SinkSlot, Error> {
    use crate::export::shipper::{Shipper, ShipperSettings};
    use crate::export::spool::SpoolSettings;
    let shipping = &config.log.shipping;
    let spool = shipping.spool.as_ref().map(|s| SpoolSettings {
        directory: s.directory.join(name),
        max_bytes: s.max_bytes,
        audit_reserve_bytes: s.audit_reserve(),
        fsync_interval: s.fsync_interval,
    });
    let directory = spool.as_ref().map(|s| s.directory.display().to_string());
    let shipper = Shipper::start(
        name,
        transport,
        ShipperSettings {
            memory_max_bytes: shipping.memory_max_bytes,
            spool,
        },
    )
    .map_err(|source| ErrorKind::SinkOpen {
        field: "log.shipping.spool.directory".into(),
        target: directory.unwrap_or_default(),
        source,
    })?;
    Ok(SinkSlot::new(name, Box::new(shipper)))
}

fn spawn_worker(
    worker: Worker,
    cpus: &[usize],
    pipeline: Arc<Pipeline<LogRecord>>,
) -> Result<(), Error> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
    let wanted = format!("{cpus:?}");
    let cpus = cpus.to_vec();
    std::thread::Builder::new()
        .name("stockbot-telemetry-log".into())
        .spawn(move || {
            if let Err(e) = pin_to(&cpus) {
                let _ = tx.send(Err(e));
                pipeline.worker_exited();
                return;
            }
            let _ = tx.send(Ok(()));
            // Whatever the sinks or their libraries log must not come back into our own queue
            // (feedback loop): this thread has no subscriber.
            let _no_telemetry = tracing::dispatcher::set_default(&tracing::Dispatch::none());
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run())) {
                Ok(()) => pipeline.worker_exited(),
                Err(_) => pipeline.worker_died(),
            }
        })
        .map_err(|source| ErrorKind::SpawnWorker { source })?;
    match rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(Error::invalid("pipeline.worker_cpus", wanted, reason)),
        Err(_) => Err(ErrorKind::SpawnWorker {
            source: std::io::Error::other("worker thread exited at start"),
        }
        .into()),
    }
}

fn pin_to(cpus: &[usize]) -> Result<(), String> {
    if cpus.is_empty() {
        return Ok(());
    }
    let mut set = nix::sched::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).map_err(|e| format!("core {cpu}: {e}"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| format!("cannot pin the worker: {e}"))
}
