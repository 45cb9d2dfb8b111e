//! The Prometheus text exposition (format 0.0.4): one HELP and TYPE per family, escaped label
//! values, cumulative buckets whose `+Inf` equals `_count`, the global labels on every series,
//! `target_info`, and the SDK's own metrics.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use stockbot_telemetry_conventions::MetricKind;

use crate::collect::metrics::{Cell, MetricsRegistry, Rejection, escape_label_value};
use crate::export::accounting::PipelineStats;

/// The exposition format asked for by the scraper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text 0.0.4 (the default; what `promtool check metrics` lints).
    Text,
    /// OpenMetrics 1.0 text: counters' families without `_total`, `info` for `target_info`,
    /// exemplars on histogram buckets, `# EOF`.
    OpenMetrics,
}

impl Format {
    /// Picks the format from an HTTP `Accept` header: OpenMetrics when the scraper asks for it.
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The output buffer, knowing its format.
pub(crate) struct Out {
    buf: String,
    om: bool,
}

impl std::ops::Deref for Out {
    type Target = String;
    fn deref(&self) -> &String {
        &self.buf
    }
}

impl std::ops::DerefMut for Out {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.buf
    }
}

/// What the registry does not hold: global labels, resource attributes, pipeline stats.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    /// `service="…",environment="…",deployment_mode="…"` (escaped), added to every series.
    pub(crate) global_labels: String,
    /// Resource attributes for `target_info` (escaped label string).
    pub(crate) target_info: Option<String>,
    /// The log pipeline's counters, exported as self-metrics.
    pub(crate) logs: Option<PipelineStats>,
    /// The span pipeline's counters.
    pub(crate) spans: Option<PipelineStats>,
    /// Push outcomes per target (`pushgateway`, `otlp`).
    pub(crate) push: Vec<(&'static str, std::sync::Arc<crate::export::push::PushStats>)>,
    /// Scrapes refused for missing or wrong credentials, when `metrics.auth` is set.
    pub(crate) scrape_refused: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

fn fmt_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

fn series(
    out: &mut Out,
    name: &str,
    suffix: &str,
    global: &str,
    labels: &str,
    extra: Option<(&str, &str)>,
) {
    out.push_str(name);
    out.push_str(suffix);
    let parts = [global, labels];
    let mut first = true;
    for part in parts.iter().filter(|p| !p.is_empty()) {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(part);
    }
    if let Some((k, v)) = extra {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{k}=\"{v}\"");
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
}

fn header(out: &mut Out, name: &str, kind: &str, help: &str) {
    // OpenMetrics: a counter family is named without `_total`; `target_info` is an info family.
    let (name, kind) = match (out.om, kind) {
        (true, "counter") => (name.strip_suffix("_total").unwrap_or(name), kind),
        (true, _) if name == "target_info" => ("target", "info"),
        _ => (name, kind),
    };
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if out.om => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// Renders everything.
pub(crate) fn render(registry: &MetricsRegistry, extra: &Extra, format: Format) -> String {
    let snapshot = registry.snapshot();
    let mut out = Out {
        buf: String::with_capacity(128 + snapshot.len() * 96),
        om: format == Format::OpenMetrics,
    };
    let global = extra.global_labels.as_str();
    let mut i = 0;
    while i < snapshot.len() {
        let family = &snapshot[i].family;
        let name = family.name.as_str();
        let kind = match family.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            _ => "histogram",
        };
        let help = registry
            .help(name)
            .unwrap_or_else(|| name.replace('_', " "));
        header(&mut out, name, kind, &help);
        while i < snapshot.len() && snapshot[i].family.name == family.name {
            let s = &snapshot[i];
            match &s.cell {
                Cell::Counter(c) => {
                    series(&mut out, name, "", global, &s.labels, None);
                    let _ = writeln!(out, "{}", c.value.load(Relaxed));
                }
                Cell::Gauge(g) => {
                    series(&mut out, name, "", global, &s.labels, None);
                    fmt_f64(&mut out, g.get());
                    out.push('\n');
                }
                Cell::Histogram(h) => {
                    // Read the buckets once; `_count` is their sum, so `+Inf` always equals it
                    // even while samples arrive.
                    let mut cumulative = 0u64;
                    let mut le = String::new();
                    for (j, bucket) in h.buckets.iter().enumerate() {
                        cumulative += bucket.load(Relaxed);
                        le.clear();
                        match h.bounds.get(j) {
                            Some(b) => fmt_f64(&mut le, *b),
                            None => le.push_str("+Inf"),
                        }
                        series(
                            &mut out,
                            name,
                            "_bucket",
                            global,
                            &s.labels,
                            Some(("le", &le)),
                        );
                        let _ = write!(out, "{cumulative}");
                        if out.om {
                            write_exemplar(&mut out, h.exemplars.get(j));
                        }
                        out.push('\n');
                    }
                    series(&mut out, name, "_sum", global, &s.labels, None);
                    fmt_f64(&mut out, h.sum());
                    out.push('\n');
                    series(&mut out, name, "_count", global, &s.labels, None);
                    let _ = writeln!(out, "{cumulative}");
                }
            }
            i += 1;
        }
    }
    render_self(&mut out, registry, extra);
    if out.om {
        out.push_str("# EOF\n");
    }
    out.buf
}

/// ` # {trace_id="…",span_id="…"} value timestamp` after an OpenMetrics bucket sample.
fn write_exemplar(
    out: &mut Out,
    slot: Option<&std::sync::Mutex<Option<crate::collect::metrics::Exemplar>>>,
) {
    let Some(e) = slot.and_then(|m| *m.lock().unwrap_or_else(|p| p.into_inner())) else {
        return;
    };
    let _ = write!(
        out,
        " # {{trace_id=\"{:032x}\",span_id=\"{:016x}\"}} ",
        e.trace_id, e.span_id
    );
    fmt_f64(out, e.value);
    let _ = write!(
        out,
        " {}.{:09}",
        e.unix_nanos / 1_000_000_000,
        e.unix_nanos % 1_000_000_000
    );
}

fn counter_family(
    out: &mut Out,
    global: &str,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (String, u64)>,
) {
    let rows: Vec<_> = rows.into_iter().collect();
    if rows.is_empty() {
        return;
    }
    header(out, name, "counter", help);
    for (labels, v) in rows {
        series(out, name, "", global, &labels, None);
        let _ = writeln!(out, "{v}");
    }
}

fn gauge_family(
    out: &mut Out,
    global: &str,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (String, f64)>,
) {
    let rows: Vec<_> = rows.into_iter().collect();
    if rows.is_empty() {
        return;
    }
    header(out, name, "gauge", help);
    for (labels, v) in rows {
        series(out, name, "", global, &labels, None);
        fmt_f64(out, v);
        out.push('\n');
    }
}

fn label(k: &str, v: &str) -> String {
    let mut s = format!("{k}=\"");
    escape_label_value(&mut s, v);
    s.push('"');
    s
}

/// The SDK's own metrics: metric rejections, refused labels, overflow, log pipeline health.
fn render_self(out: &mut Out, registry: &MetricsRegistry, extra: &Extra) {
    let global = extra.global_labels.as_str();
    if let Some(info) = &extra.target_info {
        gauge_family(
            out,
            "",
            "target_info",
            "Resource attributes of this process",
            [(info.clone(), 1.0)],
        );
    }
    let rejected = registry
        .stats
        .rejected
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    counter_family(
        out,
        global,
        "stockbot_telemetry_metric_rejected_total",
        "Metric registrations refused by the naming rules, by reason",
        Rejection::ALL.iter().map(|r| {
            (
                label("reason", r.as_str()),
                rejected.get(r).copied().unwrap_or(0),
            )
        }),
    );
    let mut refused: Vec<_> = registry
        .stats
        .labels_refused
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (label("label", k), *v))
        .collect();
    refused.sort();
    counter_family(
        out,
        global,
        "stockbot_telemetry_metric_labels_refused_total",
        "Metric labels removed because of their cardinality class, by label",
        refused,
    );
    counter_family(
        out,
        global,
        "stockbot_telemetry_metric_label_redactions_total",
        "Secrets replaced in metric label values (per secret, at each registration)",
        [(String::new(), registry.stats.label_redactions.load(Relaxed))],
    );
    let overflow: Vec<_> = registry
        .overflowed()
        .into_iter()
        .map(|(name, n)| (label("metric", &name), n))
        .collect();
    counter_family(
        out,
        global,
        "stockbot_telemetry_metric_overflow_total",
        "Samples sent to a metric's overflow series because it reached its label-set cap",
        overflow,
    );
    if let Some(refused) = &extra.scrape_refused {
        counter_family(
            out,
            global,
            "stockbot_telemetry_scrape_refused_total",
            "Scrape requests refused for missing or wrong credentials (metrics.auth)",
            [(String::new(), refused.load(Relaxed))],
        );
    }
    counter_family(
        out,
        global,
        "stockbot_telemetry_metric_invalid_values_total",
        "Samples refused because their value was NaN",
        [(String::new(), registry.stats.invalid_values.load(Relaxed))],
    );
    counter_family(
        out,
        global,
        "stockbot_telemetry_metric_expired_total",
        "Series removed after being idle",
        [(String::new(), registry.stats.expired.load(Relaxed))],
    );

    counter_family(
        out,
        global,
        "stockbot_telemetry_push_total",
        "Metric pushes, by target (pushgateway, otlp) and result (ok; error: retried; rejected: refused or partially accepted)",
        extra.push.iter().flat_map(|(target, p)| {
            [
                ("ok", &p.ok),
                ("error", &p.failed),
                ("rejected", &p.rejected),
            ]
            .map(|(result, n)| {
                (
                    format!("{},{}", label("target", target), label("result", result)),
                    n.load(Relaxed),
                )
            })
        }),
    );
    let signals = [
        ("logs", extra.logs.as_ref()),
        ("spans", extra.spans.as_ref()),
    ];
    render_signals(out, global, &signals);
}

/// The pipeline self-metrics, one series per signal (`logs`, `spans`) present; each family's
/// HELP and TYPE appear once.
fn render_signals(out: &mut Out, global: &str, signals: &[(&str, Option<&PipelineStats>)]) {
    let present: Vec<(String, &PipelineStats)> = signals
        .iter()
        .filter_map(|(name, stats)| Some((label("signal", name), (*stats)?)))
        .collect();
    let per_signal = |f: &dyn Fn(&str, &PipelineStats) -> u64| -> Vec<(String, u64)> {
        present
            .iter()
            .map(|(sig, st)| (sig.clone(), f(sig, st)))
            .collect()
    };
    let per_sink = |f: &dyn Fn(&PipelineStats, &crate::SinkStats) -> u64| -> Vec<(String, u64)> {
        present
            .iter()
            .flat_map(|(sig, st)| {
                st.sinks
                    .iter()
                    .map(move |s| (format!("{sig},{}", label("sink", &s.name)), f(st, s)))
            })
            .collect()
    };
    counter_family(
        out,
        global,
        "stockbot_telemetry_emitted_total",
        "Records that entered the telemetry pipeline",
        per_signal(&|_, st| st.emitted),
    );
    counter_family(
        out,
        global,
        "stockbot_telemetry_exported_total",
        "Records written by a sink",
        per_sink(&|_, s| s.written),
    );
    let mut dropped = Vec::new();
    for (sig, st) in &present {
        for s in &st.sinks {
            for (reason, n) in st.dropped.iter().chain(s.dropped.iter()) {
                dropped.push((
                    format!(
                        "{sig},{},{}",
                        label("sink", &s.name),
                        label("reason", reason)
                    ),
                    *n,
                ));
            }
        }
    }
    counter_family(
        out,
        global,
        "stockbot_telemetry_dropped_total",
        "Records lost, by sink and reason",
        dropped,
    );
    counter_family(
        out,
        global,
        "stockbot_telemetry_sampled_away_total",
        "Log events skipped by call-site sampling",
        per_signal(&|_, st| st.sampled_away),
    );
    let as_f64 = |rows: Vec<(String, u64)>| {
        rows.into_iter()
            .map(|(l, v)| (l, v as f64))
            .collect::<Vec<_>>()
    };
    gauge_family(
        out,
        global,
        "stockbot_telemetry_queue_depth",
        "Records waiting in the pipeline queue",
        as_f64(per_signal(&|_, st| st.queued)),
    );
    gauge_family(
        out,
        global,
        "stockbot_telemetry_buffered",
        "Records inside the pipeline (queued or being written)",
        as_f64(per_signal(&|_, st| st.buffered())),
    );
    gauge_family(
        out,
        global,
        "stockbot_telemetry_export_latency_seconds",
        "Time the oldest record of the last batch waited before the sinks had it",
        present
            .iter()
            .map(|(sig, st)| (sig.clone(), st.last_batch_latency.as_secs_f64())),
    );
    gauge_family(
        out,
        global,
        "stockbot_telemetry_exporter_up",
        "1 while the sink's worker (and a network sink's shipper) runs",
        as_f64(per_sink(&|st, s| u64::from(st.worker_alive && s.alive))),
    );
    // Network sinks' shippers (memory buffer, disk spool): the rest of the accounting
    // identity, `emitted + recovered = exported + dropped + buffered`. Zero for other sinks.
    gauge_family(
        out,
        global,
        "stockbot_telemetry_sink_buffered",
        "Records a sink holds and has not delivered yet (memory buffer, in flight, spool)",
        as_f64(per_sink(&|_, s| s.buffered)),
    );
    gauge_family(
        out,
        global,
        "stockbot_telemetry_spool_records",
        "Of those, records of this process waiting in the sink's disk spool",
        as_f64(per_sink(&|_, s| s.spooled)),
    );
    gauge_family(
        out,
        global,
        "stockbot_telemetry_spool_bytes",
        "Size of the sink's disk spool files",
        as_f64(per_sink(&|_, s| s.spool_bytes)),
    );
    counter_family(
        out,
        global,
        "stockbot_telemetry_recovered_total",
        "Records of earlier runs found in the spool and replayed",
        per_sink(&|_, s| s.recovered),
    );
    counter_family(
        out,
        global,
        "stockbot_telemetry_spool_errors_total",
        "Spool frames skipped as corrupt, and spool writes that failed",
        per_sink(&|_, s| s.spool_corrupt_frames + s.spool_write_errors),
    );
}
