//! Validation of an [`AlertSpec`], the Prometheus rule file, and the `promtool test rules`
//! cases.
//!
//! Burn-rate math (the SRE workbook's multiwindow, multi-burn-rate alerts): an SLO with
//! objective `o` over window `P` has the error budget `b = 1 - o`. Consuming a fraction `f` of
//! the budget within a long window `L` means an error ratio of `f · P / L · b` over `L` — the
//! burn rate `f · P / L` (14.4 for 2 % in 1 h of 30 days). The alert fires when both the long
//! window and its short window (1/12 of it) burn faster than that, so it fires quickly and
//! stops soon after the burning stops.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Alert, AlertSpec, Condition, Query, Severity, Sli, Slo};
use crate::error::Error;

/// One multiwindow burn-rate alert condition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BurnWindow {
    /// Who is notified.
    pub severity: Severity,
    /// Fraction of the error budget consumed within `long` that fires the alert.
    pub budget_fraction: f64,
    /// The long window.
    #[serde(with = "humantime_serde")]
    pub long: Duration,
    /// The short window (resets the alert soon after the burning stops).
    #[serde(with = "humantime_serde")]
    pub short: Duration,
    /// How long the condition must hold.
    #[serde(rename = "for", with = "humantime_serde")]
    pub for_: Duration,
}

impl BurnWindow {
    /// A burn window.
    pub fn new(
        severity: Severity,
        budget_fraction: f64,
        long: Duration,
        short: Duration,
        for_: Duration,
    ) -> Self {
        BurnWindow {
            severity,
            budget_fraction,
            long,
            short,
            for_,
        }
    }

    /// The SRE workbook's four: page 2 % in 1 h (5 m), 5 % in 6 h (30 m); ticket 10 % in 1 d
    /// (2 h), 10 % in 3 d (6 h).
    pub fn defaults() -> Vec<BurnWindow> {
        let (m, h) = (60, 3600);
        let d = |s: u64| Duration::from_secs(s);
        vec![
            BurnWindow::new(Severity::Page, 0.02, d(h), d(5 * m), d(2 * m)),
            BurnWindow::new(Severity::Page, 0.05, d(6 * h), d(30 * m), d(2 * m)),
            BurnWindow::new(Severity::Ticket, 0.10, d(24 * h), d(2 * h), d(15 * m)),
            BurnWindow::new(Severity::Ticket, 0.10, d(72 * h), d(6 * h), d(15 * m)),
        ]
    }

    /// The burn rate this window alerts at, for an SLO window `period`.
    pub fn burn_rate(&self, period: Duration) -> f64 {
        self.budget_fraction * period.as_secs_f64() / self.long.as_secs_f64()
    }
}

/// Generated `promtool test rules` cases.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleTests {
    /// The test file (YAML).
    pub yaml: String,
    /// Per alert name: whether a case expects it to fire, and whether one expects it quiet.
    pub coverage: BTreeMap<String, (bool, bool)>,
}

/// Metrics `#[instrument_trade]` records (default prefix).
const INSTRUMENT_METRICS: [&str; 3] = [
    "stockbot_trade_calls_total",
    "stockbot_trade_errors_total",
    "stockbot_trade_duration_seconds",
];
const SDK_DROPS: &str = "stockbot_telemetry_dropped_total";
const UNKNOWN_METRIC: &str = "is neither in the business catalogue, nor an #[instrument_trade] metric, nor declared in `metrics`";

fn bad(field: String, value: impl std::fmt::Display, reason: &str) -> Error {
    Error::invalid(field, value, reason.to_owned())
}

/// Adds `name` to `seen`; an error naming `field` if it was there.
fn unique(
    seen: &mut BTreeSet<String>,
    field: String,
    name: &str,
    reason: &str,
) -> Result<(), Error> {
    if seen.insert(name.to_owned()) {
        Ok(())
    } else {
        Err(bad(field, name, reason))
    }
}

fn is_known(spec: &AlertSpec, metric: &str) -> bool {
    crate::trading::lookup(metric).is_some()
        || INSTRUMENT_METRICS.contains(&metric)
        || spec.metrics.iter().any(|m| m == metric)
}

fn check_label_value(field: String, v: &str) -> Result<(), Error> {
    if v.is_empty() || v.chars().any(char::is_control) {
        return Err(bad(
            field,
            v,
            "must be non-empty text without control characters",
        ));
    }
    Ok(())
}

fn check_query(spec: &AlertSpec, field: &str, q: &Query, counter: bool) -> Result<(), Error> {
    if !is_known(spec, &q.metric) {
        return Err(bad(format!("{field}.metric"), &q.metric, UNKNOWN_METRIC));
    }
    check_query_shape(field, q, counter)
}

/// A query's shape: a counter where one is needed, matchers on legal labels.
fn check_query_shape(field: &str, q: &Query, counter: bool) -> Result<(), Error> {
    if counter && !q.metric.ends_with("_total") {
        return Err(bad(
            format!("{field}.metric"),
            &q.metric,
            "must be a counter (a `_total` metric)",
        ));
    }
    for (k, v) in &q.matchers {
        if stockbot_telemetry_conventions::validate_label_name(k).is_err()
            || matches!(k.as_str(), "service" | "deployment_mode" | "le")
        {
            return Err(bad(
                format!("{field}.matchers"),
                k,
                "must be a label name other than service, deployment_mode and le",
            ));
        }
        check_label_value(format!("{field}.matchers.{k}"), v)?;
    }
    Ok(())
}

fn positive(field: String, d: Duration) -> Result<(), Error> {
    if d.is_zero() {
        return Err(bad(field, "0s", "must be longer than zero"));
    }
    Ok(())
}

pub(super) fn validate(spec: &AlertSpec) -> Result<(), Error> {
    check_label_value("service".into(), &spec.service)?;
    check_label_value("team".into(), &spec.team)?;
    if !matches!(spec.deployment_mode.as_str(), "live" | "paper" | "backtest") {
        return Err(bad(
            "deployment_mode".into(),
            &spec.deployment_mode,
            "must be live, paper or backtest",
        ));
    }
    for (i, m) in spec.metrics.iter().enumerate() {
        stockbot_telemetry_conventions::validate_metric_name(
            m,
            if m.ends_with("_total") {
                stockbot_telemetry_conventions::MetricKind::Counter
            } else {
                stockbot_telemetry_conventions::MetricKind::Gauge
            },
            "",
        )
        .map_err(|e| bad(format!("metrics[{i}]"), m, &e.to_string()))?;
    }
    positive("absent_for".into(), spec.absent_for)?;
    for (i, pair) in spec.escalation.windows(2).enumerate() {
        if pair[1] <= pair[0] {
            return Err(bad(
                format!("escalation[{}]", i + 1),
                humantime::format_duration(pair[1]),
                "must be later than the tier before",
            ));
        }
    }
    if let Some(first) = spec.escalation.first() {
        positive("escalation[0]".into(), *first)?;
    }
    for (i, w) in spec.burn_windows.iter().enumerate() {
        let f = format!("burn_windows[{i}]");
        if !(w.budget_fraction > 0.0 && w.budget_fraction <= 1.0) {
            return Err(bad(
                format!("{f}.budget_fraction"),
                w.budget_fraction,
                "must be in (0, 1]",
            ));
        }
        positive(format!("{f}.short"), w.short)?;
        if w.short >= w.long {
            return Err(bad(
                format!("{f}.short"),
                humantime::format_duration(w.short),
                "must be shorter than the long window",
            ));
        }
    }
    let mut names = BTreeSet::new();
    for (i, slo) in spec.slos.iter().enumerate() {
        validate_slo(spec, &format!("slo[{i}]"), slo)?;
        unique(
            &mut names,
            format!("slo[{i}].name"),
            &slo.name,
            "is declared twice",
        )?;
    }
    let mut alert_names: BTreeSet<String> = spec
        .slos
        .iter()
        .flat_map(|s| [Severity::Page, Severity::Ticket].map(|sev| burn_alert_name(s, sev)))
        .chain(["MetricAbsent", "TelemetryDropping", "ServiceDown"].map(str::to_owned))
        .collect();
    for (i, a) in spec.alerts.iter().enumerate() {
        validate_alert(spec, &format!("alert[{i}]"), a)?;
        unique(
            &mut alert_names,
            format!("alert[{i}].name"),
            &a.name,
            "is declared twice (or taken by a generated alert)",
        )?;
    }
    for (i, m) in spec.absent.iter().enumerate() {
        if !is_known(spec, m) {
            return Err(bad(format!("absent[{i}]"), m, UNKNOWN_METRIC));
        }
    }
    Ok(())
}

fn validate_slo(spec: &AlertSpec, f: &str, slo: &Slo) -> Result<(), Error> {
    check_slo(f, slo)?;
    if let Some(w) = spec.burn_windows.iter().find(|w| w.long > slo.window) {
        return Err(bad(
            format!("{f}.window"),
            humantime::format_duration(slo.window),
            &format!(
                "must be at least the longest burn window ({})",
                humantime::format_duration(w.long)
            ),
        ));
    }
    let metrics = match &slo.sli {
        Sli::Ratio { errors, total } => vec![
            (format!("{f}.ratio.errors.metric"), &errors.metric),
            (format!("{f}.ratio.total.metric"), &total.metric),
        ],
        Sli::Latency { metric, .. } => vec![(format!("{f}.latency.metric"), metric)],
    };
    for (field, metric) in metrics {
        if !is_known(spec, metric) {
            return Err(bad(field, metric, UNKNOWN_METRIC));
        }
    }
    Ok(())
}

/// What can be checked of an SLO on its own (also for the SLOs of a [`crate::Config`]):
/// name, objective, window, guard, and the shape of its queries.
pub(crate) fn check_slo(f: &str, slo: &Slo) -> Result<(), Error> {
    let name_ok = slo.name.starts_with(|c: char| c.is_ascii_lowercase())
        && slo
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(bad(
            format!("{f}.name"),
            &slo.name,
            "must match [a-z][a-z0-9_]*",
        ));
    }
    if !(slo.objective > 0.0 && slo.objective < 1.0) {
        return Err(bad(
            format!("{f}.objective"),
            slo.objective,
            "must be strictly between 0 and 1 (0.999 is 99.9 %)",
        ));
    }
    positive(format!("{f}.window"), slo.window)?;
    if !(slo.min_rate.is_finite() && slo.min_rate >= 0.0) {
        return Err(bad(format!("{f}.min_rate"), slo.min_rate, "must be ≥ 0"));
    }
    match &slo.sli {
        Sli::Ratio { errors, total } => {
            check_query_shape(&format!("{f}.ratio.errors"), errors, true)?;
            check_query_shape(&format!("{f}.ratio.total"), total, true)?;
        }
        Sli::Latency {
            metric,
            threshold,
            matchers,
        } => {
            let q = histogram(metric, matchers);
            check_query_shape(&format!("{f}.latency"), &q, false)?;
            let histogram =
                crate::trading::lookup(metric).map_or(metric.ends_with("_seconds"), |d| {
                    d.kind == stockbot_telemetry_conventions::MetricKind::Histogram
                        && d.unit == "seconds"
                });
            if !histogram {
                return Err(bad(
                    format!("{f}.latency.metric"),
                    metric,
                    "must be a histogram in seconds",
                ));
            }
            positive(format!("{f}.latency.threshold"), *threshold)?;
        }
    }
    Ok(())
}

fn validate_alert(spec: &AlertSpec, f: &str, a: &Alert) -> Result<(), Error> {
    let name_ok = a.name.starts_with(|c: char| c.is_ascii_uppercase())
        && a.name.chars().all(|c| c.is_ascii_alphanumeric());
    if !name_ok {
        return Err(bad(
            format!("{f}.name"),
            &a.name,
            "must match [A-Z][A-Za-z0-9]*",
        ));
    }
    if a.summary.trim().is_empty() {
        return Err(bad(format!("{f}.summary"), "", "must not be empty"));
    }
    positive(format!("{f}.window"), a.window)?;
    if a.when.is_empty() {
        return Err(bad(
            format!("{f}.when"),
            "[]",
            "needs at least one condition",
        ));
    }
    for (j, c) in a.when.iter().enumerate() {
        let cf = format!("{f}.when[{j}]");
        let signals = [c.rate.is_some(), c.ratio.is_some(), c.gauge.is_some()];
        if signals.iter().filter(|&&s| s).count() != 1 {
            return Err(bad(cf, "", "needs exactly one of rate, ratio or gauge"));
        }
        if !matches!(c.op.as_str(), ">" | ">=" | "<" | "<=") {
            return Err(bad(format!("{cf}.op"), &c.op, "must be >, >=, < or <="));
        }
        if !c.value.is_finite() {
            return Err(bad(
                format!("{cf}.value"),
                c.value,
                "must be a finite number",
            ));
        }
        positive(format!("{cf}.per"), c.per)?;
        if let Some(q) = &c.rate {
            check_query(spec, &format!("{cf}.rate"), q, true)?;
        }
        if let Some(r) = &c.ratio {
            check_query(spec, &format!("{cf}.ratio.numerator"), &r.numerator, true)?;
            check_query(
                spec,
                &format!("{cf}.ratio.denominator"),
                &r.denominator,
                true,
            )?;
        }
        if let Some(q) = &c.gauge {
            check_query(spec, &format!("{cf}.gauge"), q, false)?;
        }
        let below = c.op.starts_with('<');
        let never = (c.rate.is_some() || c.ratio.is_some()) && below && c.value <= 0.0
            || c.ratio.is_some() && !below && c.value >= 1.0;
        if never {
            return Err(bad(
                format!("{cf}.value"),
                c.value,
                "can never hold for this signal (rates are ≥ 0, ratios within [0, 1])",
            ));
        }
    }
    Ok(())
}

/// The histogram of a latency SLI, as a query.
fn histogram(metric: &str, matchers: &BTreeMap<String, String>) -> Query {
    Query {
        metric: metric.to_owned(),
        matchers: matchers.clone(),
    }
}

/// `OrderAcceptanceBurnRatePage` for `order_acceptance`.
fn burn_alert_name(slo: &Slo, severity: Severity) -> String {
    let mut name = String::new();
    for part in slo.name.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            name.push(c.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    name.push_str("BurnRate");
    name.push_str(match severity {
        Severity::Page => "Page",
        Severity::Ticket => "Ticket",
    });
    name
}

/// A PromQL duration: `5m`, `1h`, `30d`.
pub(super) fn promql_duration(d: Duration) -> String {
    let s = d.as_secs().max(1);
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s.is_multiple_of(len) {
            return format!("{}{unit}", s / len);
        }
    }
    format!("{s}s")
}

/// A PromQL string literal.
fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn number(v: f64) -> String {
    // Enough digits for any objective; no exponent (PromQL accepts it, humans prefer not).
    let s = format!("{v:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_owned()
    }
}

struct Gen<'a> {
    spec: &'a AlertSpec,
}

impl Gen<'_> {
    fn selector(&self, q: &Query, suffix: &str, extra: &[(&str, String)]) -> String {
        let mut s = format!(
            "{}{suffix}{{service={},deployment_mode={}",
            q.metric,
            quote(&self.spec.service),
            quote(&self.spec.deployment_mode)
        );
        for (k, v) in q
            .matchers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .chain(extra.iter().map(|(k, v)| (*k, v.clone())))
        {
            let _ = write!(s, ",{k}={}", quote(&v));
        }
        s.push('}');
        s
    }

    fn rate(&self, q: &Query, suffix: &str, extra: &[(&str, String)], w: Duration) -> String {
        format!(
            "sum by (service) (rate({}[{}]))",
            self.selector(q, suffix, extra),
            promql_duration(w)
        )
    }

    /// `numerator / denominator` over `w`; a numerator with no series yet counts as 0.
    fn ratio(&self, num: &Query, den: &Query, w: Duration) -> String {
        let d = self.rate(den, "", &[], w);
        format!("({} or 0 * {d}) / {d}", self.rate(num, "", &[], w))
    }

    /// The SLI's error ratio over `w`.
    fn sli_error(&self, slo: &Slo, w: Duration) -> String {
        match &slo.sli {
            Sli::Ratio { errors, total } => self.ratio(errors, total, w),
            Sli::Latency {
                metric,
                threshold,
                matchers,
            } => {
                let q = histogram(metric, matchers);
                let le = [("le", le_label(*threshold))];
                format!(
                    "1 - ({} / {})",
                    self.rate(&q, "_bucket", &le, w),
                    self.rate(&q, "_count", &[], w)
                )
            }
        }
    }

    /// Events per second of the SLI over `w` (the low-traffic guard).
    fn traffic(&self, slo: &Slo, w: Duration) -> String {
        match &slo.sli {
            Sli::Ratio { total, .. } => self.rate(total, "", &[], w),
            Sli::Latency {
                metric, matchers, ..
            } => self.rate(&histogram(metric, matchers), "_count", &[], w),
        }
    }

    fn windows(&self, slo: &Slo) -> BTreeSet<Duration> {
        let mut set: BTreeSet<Duration> = self
            .spec
            .burn_windows
            .iter()
            .flat_map(|w| [w.long, w.short])
            .collect();
        set.insert(slo.window);
        set
    }

    fn base_labels(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("team".into(), json!(self.spec.team));
        m.insert("deployment_mode".into(), json!(self.spec.deployment_mode));
        m
    }

    fn signal(&self, c: &Condition, w: Duration) -> String {
        if let Some(q) = &c.rate {
            format!(
                "{} * {}",
                self.rate(q, "", &[], w),
                number(c.per.as_secs_f64())
            )
        } else if let Some(r) = &c.ratio {
            self.ratio(&r.numerator, &r.denominator, w)
        } else if let Some(q) = &c.gauge {
            format!("max by (service) ({})", self.selector(q, "", &[]))
        } else {
            String::new()
        }
    }
}

/// The `le` label value of a bucket bound as our exposition writes it.
fn le_label(threshold: Duration) -> String {
    format!("{}", threshold.as_secs_f64())
}

fn sli_record(w: Duration) -> String {
    format!("slo:sli_error:ratio_rate{}", promql_duration(w))
}

/// The alert rules of one SLO: one per severity.
fn burn_alerts(g: &Gen<'_>, slo: &Slo) -> Vec<Value> {
    let budget = slo.error_budget();
    let mut out = Vec::new();
    for severity in [Severity::Page, Severity::Ticket] {
        let windows: Vec<&BurnWindow> = g
            .spec
            .burn_windows
            .iter()
            .filter(|w| w.severity == severity)
            .collect();
        if windows.is_empty() {
            continue;
        }
        let sel = format!(
            "{{slo={},service={}}}",
            quote(&slo.name),
            quote(&g.spec.service)
        );
        let parts: Vec<String> = windows
            .iter()
            .map(|w| {
                let threshold = number(w.burn_rate(slo.window) * budget);
                let mut p = format!(
                    "({}{sel} > {threshold} and {}{sel} > {threshold}",
                    sli_record(w.long),
                    sli_record(w.short)
                );
                if slo.min_rate > 0.0 {
                    let _ = write!(
                        p,
                        " and on (service) {} > {}",
                        g.traffic(slo, w.short),
                        number(slo.min_rate)
                    );
                }
                p.push(')');
                p
            })
            .collect();
        let for_ = windows.iter().map(|w| w.for_).max().unwrap_or_default();
        let mut labels = g.base_labels();
        labels.insert("severity".into(), json!(severity.as_str()));
        labels.insert("slo".into(), json!(slo.name));
        out.push(json!({
            "alert": burn_alert_name(slo, severity),
            "expr": parts.join(" or "),
            "for": promql_duration(for_),
            "labels": labels,
            "annotations": burn_annotations(g.spec, slo, severity),
        }));
    }
    out
}

fn burn_annotations(g: &AlertSpec, slo: &Slo, severity: Severity) -> Value {
    let windows: Vec<String> = g
        .burn_windows
        .iter()
        .filter(|w| w.severity == severity)
        .map(|w| {
            format!(
                "{} % of the budget in {}",
                number(w.budget_fraction * 100.0),
                promql_duration(w.long)
            )
        })
        .collect();
    json!({
        "summary": format!("{} is burning the error budget of SLO {}", g.service, slo.name),
        "description": format!(
            "SLO {} (objective {} % over {}) burns its error budget faster than {}.",
            slo.name,
            number(slo.objective * 100.0),
            promql_duration(slo.window),
            windows.join(" or ")
        ),
    })
}

/// Metrics whose disappearance alerts: every SLO's traffic metric and the listed ones.
fn absent_targets(spec: &AlertSpec) -> Vec<(Query, &'static str)> {
    let mut out: Vec<(Query, &'static str)> = Vec::new();
    for slo in &spec.slos {
        let t = match &slo.sli {
            Sli::Ratio { total, .. } => (total.clone(), ""),
            Sli::Latency {
                metric, matchers, ..
            } => (histogram(metric, matchers), "_count"),
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    for m in &spec.absent {
        // The catalogue knows its kinds (a `_seconds` gauge has no `_count`); other names: a
        // `_seconds` metric not declared by the service is a histogram.
        let kind_histogram = match crate::trading::lookup(m) {
            Some(d) => d.kind == stockbot_telemetry_conventions::MetricKind::Histogram,
            None => {
                (m.ends_with("_seconds") && !spec.metrics.contains(m))
                    || m == "stockbot_trade_duration_seconds"
            }
        };
        let t = (
            Query::metric(m.clone()),
            if kind_histogram { "_count" } else { "" },
        );
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn absent_alert(g: &Gen<'_>, q: &Query, suffix: &str) -> Value {
    let mut labels = g.base_labels();
    labels.insert("severity".into(), json!("ticket"));
    labels.insert("metric".into(), json!(format!("{}{suffix}", q.metric)));
    json!({
        "alert": "MetricAbsent",
        "expr": format!("absent({})", g.selector(q, suffix, &[])),
        "for": promql_duration(g.spec.absent_for),
        "labels": labels,
        "annotations": {
            "summary": format!("{} no longer reports {}{suffix}", g.spec.service, q.metric),
            "description": format!(
                "No {} series of {}{suffix} for {}: the service is down, or stopped emitting it.",
                g.spec.deployment_mode,
                q.metric,
                promql_duration(g.spec.absent_for)
            ),
        },
    })
}

fn threshold_alert(g: &Gen<'_>, a: &Alert) -> Value {
    let expr = a
        .when
        .iter()
        .map(|c| format!("({}) {} {}", g.signal(c, a.window), c.op, number(c.value)))
        .collect::<Vec<_>>()
        .join(" and ");
    let mut labels = g.base_labels();
    labels.insert("severity".into(), json!(a.severity.as_str()));
    json!({
        "alert": a.name,
        "expr": expr,
        "for": promql_duration(a.for_),
        "labels": labels,
        "annotations": {
            "summary": a.summary,
            "description": format!("{}: {}", g.spec.service, describe_conditions(a)),
        },
    })
}

fn describe_conditions(a: &Alert) -> String {
    a.when
        .iter()
        .map(|c| {
            let what = if let Some(q) = &c.rate {
                format!("rate of {} per {}", q.metric, promql_duration(c.per))
            } else if let Some(r) = &c.ratio {
                format!("{} / {}", r.numerator.metric, r.denominator.metric)
            } else if let Some(q) = &c.gauge {
                q.metric.clone()
            } else {
                String::new()
            };
            format!("{what} {} {}", c.op, number(c.value))
        })
        .collect::<Vec<_>>()
        .join(" and ")
        + &format!(" for {}", promql_duration(a.for_))
}

fn sdk_alert(g: &Gen<'_>) -> Value {
    let mut labels = g.base_labels();
    labels.insert("severity".into(), json!("ticket"));
    json!({
        "alert": "TelemetryDropping",
        "expr": format!(
            "sum by (service, signal, sink, reason) (increase({}[10m])) > 0",
            g.selector(&Query::metric(SDK_DROPS), "", &[])
        ),
        "for": "5m",
        "labels": labels,
        "annotations": {
            "summary": format!("{} is dropping telemetry", g.spec.service),
            "description": "stockbot-telemetry counted dropped records (by signal, sink and reason): logs, spans or metrics are being lost. See docs/buffering.md.",
        },
    })
}

fn service_down(g: &Gen<'_>) -> Value {
    let mut labels = g.base_labels();
    labels.insert("severity".into(), json!("page"));
    // target_info names the service `service_name`; the routing and the inhibition of the
    // service's other alerts use `service`.
    labels.insert("service".into(), json!(g.spec.service));
    json!({
        "alert": "ServiceDown",
        "expr": format!(
            "absent(target_info{{service_name={},deployment_mode={}}})",
            quote(&g.spec.service),
            quote(&g.spec.deployment_mode)
        ),
        "for": "2m",
        "labels": labels,
        "annotations": {
            "summary": format!("{} is down", g.spec.service),
            "description": format!(
                "No {} instance of {} has been scraped for 2m (its target_info is gone); its other alerts are inhibited meanwhile.",
                g.spec.deployment_mode, g.spec.service
            ),
        },
    })
}

/// Escalation copies of a page alert: the same expression, `for` longer by each tier's
/// delay, and a `tier` label (2, 3, …) that routes to the next receiver.
fn tiers(spec: &AlertSpec, alert: &Value) -> Vec<Value> {
    if alert["labels"]["severity"] != "page" {
        return Vec::new();
    }
    let base = alert["for"]
        .as_str()
        .and_then(|f| humantime::parse_duration(f).ok())
        .unwrap_or_default();
    spec.escalation
        .iter()
        .enumerate()
        .map(|(k, delay)| {
            let mut copy = alert.clone();
            copy["for"] = json!(promql_duration(base + *delay));
            copy["labels"]["tier"] = json!((k + 2).to_string());
            copy
        })
        .collect()
}

pub(super) fn rule_file(spec: &AlertSpec) -> Value {
    let g = Gen { spec };
    let mut recording = Vec::new();
    let mut slo_alerts = Vec::new();
    for slo in &spec.slos {
        let mut labels = serde_json::Map::new();
        labels.insert("slo".into(), json!(slo.name));
        labels.insert("deployment_mode".into(), json!(spec.deployment_mode));
        for w in g.windows(slo) {
            recording.push(json!({
                "record": sli_record(w),
                "expr": g.sli_error(slo, w),
                "labels": labels,
            }));
        }
        recording.push(json!({
            "record": "slo:error_budget_remaining:ratio",
            "expr": format!(
                "1 - {}{{slo={},service={}}} / {}",
                sli_record(slo.window),
                quote(&slo.name),
                quote(&spec.service),
                number(slo.error_budget())
            ),
            "labels": labels,
        }));
        slo_alerts.extend(burn_alerts(&g, slo));
    }
    let mut alerts: Vec<Value> = spec.alerts.iter().map(|a| threshold_alert(&g, a)).collect();
    alerts.push(service_down(&g));
    let escalated: Vec<Value> = slo_alerts
        .iter()
        .chain(alerts.iter())
        .flat_map(|a| tiers(spec, a))
        .collect();
    let (slo_tiers, other_tiers): (Vec<Value>, Vec<Value>) = escalated
        .into_iter()
        .partition(|a| a["labels"].get("slo").is_some());
    slo_alerts.extend(slo_tiers);
    alerts.extend(other_tiers);
    for (q, suffix) in absent_targets(spec) {
        alerts.push(absent_alert(&g, &q, suffix));
    }
    if spec.sdk_alerts {
        alerts.push(sdk_alert(&g));
    }
    let mut groups = Vec::new();
    let name = |part: &str| format!("{}-{part}", spec.service);
    if !recording.is_empty() {
        groups.push(json!({"name": name("slo-recording"), "rules": recording}));
        groups.push(json!({"name": name("slo-alerts"), "rules": slo_alerts}));
    }
    groups.push(json!({"name": name("alerts"), "rules": alerts}));
    json!({ "groups": groups })
}

// ---------------------------------------------------------------------------------------
// promtool test cases

/// Synthetic series of one case: per series selector, its per-second rate (counters) or
/// value (gauges).
#[derive(Default)]
struct Series {
    counters: BTreeMap<String, f64>,
    gauges: BTreeMap<String, f64>,
}

impl Series {
    /// The series, one sample a minute, until 10 minutes after `until`.
    fn input(&self, until: Duration) -> Value {
        let steps = until.as_secs() / 60 + 10;
        let mut out = Vec::new();
        for (s, per_second) in &self.counters {
            out.push(json!({
                "series": s,
                "values": format!("0+{}x{steps}", number(per_second * 60.0)),
            }));
        }
        for (s, v) in &self.gauges {
            out.push(json!({"series": s, "values": format!("{}+0x{steps}", number(*v))}));
        }
        Value::Array(out)
    }
}

fn exp_alert(labels: &Value, annotations: &Value, extra: &[(&str, String)]) -> Value {
    let mut l = labels.as_object().cloned().unwrap_or_default();
    for (k, v) in extra {
        l.insert((*k).to_owned(), json!(v));
    }
    json!({"exp_labels": l, "exp_annotations": annotations})
}

/// What a firing case expects: the alert, and for a page each escalation tier too (the case is
/// evaluated after the last tier fired, see [`settle`]).
fn firing(spec: &AlertSpec, alert: &Value, exp: Value) -> Vec<Value> {
    let mut out = vec![exp.clone()];
    if alert["labels"]["severity"] == "page" {
        for k in 0..spec.escalation.len() {
            let mut e = exp.clone();
            e["exp_labels"]["tier"] = json!((k + 2).to_string());
            out.push(e);
        }
    }
    out
}

/// `eval`, or later for a page: 10 minutes after its last escalation tier fires.
fn settle(spec: &AlertSpec, alert: &Value, eval: Duration) -> Duration {
    let last = spec.escalation.last().copied().unwrap_or_default();
    if alert["labels"]["severity"] != "page" || last.is_zero() {
        return eval;
    }
    let base = alert["for"]
        .as_str()
        .and_then(|f| humantime::parse_duration(f).ok())
        .unwrap_or_default();
    eval.max(base + last + Duration::from_secs(600))
}

fn case(series: &Series, eval: Duration, alert: &Value, fires: Vec<Value>) -> Value {
    json!({
        "interval": "1m",
        "input_series": series.input(eval),
        "alert_rule_test": [{
            "eval_time": promql_duration(eval),
            "alertname": alert["alert"],
            "exp_alerts": fires,
        }],
    })
}

/// Does `value <op> threshold` hold?
fn holds(op: &str, value: f64, threshold: f64) -> bool {
    match op {
        ">" => value > threshold,
        ">=" => value >= threshold,
        "<" => value < threshold,
        _ => value <= threshold,
    }
}

/// A value of the signal for which the condition holds (`true`) or not.
fn target(c: &Condition, want: bool) -> f64 {
    let v = c.value;
    let step = v.abs().max(1.0);
    let above = c.op.starts_with('>') == want;
    if c.ratio.is_some() {
        if above { (v + 1.0) / 2.0 } else { v / 2.0 }
    } else if c.rate.is_some() {
        if above {
            v * 2.0 + 1.0
        } else {
            (v / 2.0).max(0.0)
        }
    } else if above {
        v + step
    } else {
        v - step
    }
}

pub(super) fn rule_tests(spec: &AlertSpec, rule_file_path: &str) -> RuleTests {
    let g = Gen { spec };
    let rules = rule_file(spec);
    let all: Vec<Value> = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|gr| gr["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| r.get("alert").is_some())
        .collect();
    let find = |name: &str| all.iter().find(|r| r["alert"] == name).cloned();
    let mut tests = Vec::new();
    let mut coverage: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut cover = |name: &str, fires: bool| {
        let e = coverage.entry(name.to_owned()).or_default();
        if fires {
            e.0 = true;
        } else {
            e.1 = true;
        }
    };

    for slo in &spec.slos {
        let traffic = (slo.min_rate * 2.0).max(10.0);
        let bad_series = |bad_fraction: f64, rate: f64| -> Series {
            let mut s = Series::default();
            match &slo.sli {
                Sli::Ratio { errors, total } => {
                    s.counters.insert(g.selector(total, "", &[]), rate);
                    if bad_fraction > 0.0 {
                        s.counters
                            .insert(g.selector(errors, "", &[]), rate * bad_fraction);
                    }
                }
                Sli::Latency {
                    metric,
                    threshold,
                    matchers,
                } => {
                    let q = histogram(metric, matchers);
                    s.counters.insert(g.selector(&q, "_count", &[]), rate);
                    s.counters.insert(
                        g.selector(&q, "_bucket", &[("le", le_label(*threshold))]),
                        rate * (1.0 - bad_fraction),
                    );
                }
            }
            s
        };
        for severity in [Severity::Page, Severity::Ticket] {
            let name = burn_alert_name(slo, severity);
            let Some(alert) = find(&name) else { continue };
            // Past the longest `for`, and — when there is a traffic guard — past the longest
            // short window, so the guard's rate sees a full window of traffic.
            let windows = spec.burn_windows.iter().filter(|w| w.severity == severity);
            let guard = if slo.min_rate > 0.0 {
                windows.clone().map(|w| w.short).max().unwrap_or_default()
            } else {
                Duration::ZERO
            };
            let eval = guard.max(Duration::from_secs(7200))
                + windows.map(|w| w.for_).max().unwrap_or_default()
                + Duration::from_secs(600);
            let eval = settle(spec, &alert, eval);
            let exp = exp_alert(
                &alert["labels"],
                &alert["annotations"],
                &[("service", spec.service.clone())],
            );
            // Every event bad: fires.
            tests.push(case(
                &bad_series(1.0, traffic),
                eval,
                &alert,
                firing(spec, &alert, exp),
            ));
            cover(&name, true);
            // Every event good: quiet.
            tests.push(case(&bad_series(0.0, traffic), eval, &alert, vec![]));
            cover(&name, false);
            // Below the traffic guard: quiet even when every event is bad.
            if slo.min_rate > 0.0 {
                tests.push(case(
                    &bad_series(1.0, slo.min_rate / 2.0),
                    eval,
                    &alert,
                    vec![],
                ));
            }
        }
        // The SLI records 0 and the budget is whole when nothing fails (and the errors
        // counter does not exist yet).
        let healthy = bad_series(0.0, traffic);
        tests.push(json!({
            "interval": "1m",
            "input_series": healthy.input(Duration::from_secs(3600)),
            "promql_expr_test": [{
                "expr": format!("slo:error_budget_remaining:ratio{{slo={}}}", quote(&slo.name)),
                "eval_time": "60m",
                "exp_samples": [{
                    "labels": format!(
                        "slo:error_budget_remaining:ratio{{deployment_mode={},service={},slo={}}}",
                        quote(&spec.deployment_mode), quote(&spec.service), quote(&slo.name)
                    ),
                    "value": 1,
                }],
            }],
        }));
    }

    for a in &spec.alerts {
        let Some(alert) = find(&a.name) else { continue };
        let eval = settle(spec, &alert, a.window + a.for_ + Duration::from_secs(600));
        for fire_case in [true, false] {
            // Firing: every condition holds. Quiet: the first does not, the others do.
            let mut s = Series::default();
            let mut rates: BTreeMap<String, f64> = BTreeMap::new();
            for (j, c) in a.when.iter().enumerate() {
                let want = fire_case || j > 0;
                let t = target(c, want);
                if let Some(q) = &c.rate {
                    rates
                        .entry(g.selector(q, "", &[]))
                        .or_insert(t / c.per.as_secs_f64());
                } else if let Some(r) = &c.ratio {
                    let den = g.selector(&r.denominator, "", &[]);
                    let d = *rates.entry(den).or_insert(10.0);
                    rates
                        .entry(g.selector(&r.numerator, "", &[]))
                        .or_insert(d * t);
                } else if let Some(q) = &c.gauge {
                    s.gauges.entry(g.selector(q, "", &[])).or_insert(t);
                }
            }
            // What the conditions evaluate to with the series chosen (a series two
            // conditions share keeps its first rate).
            let fires = a.when.iter().all(|c| {
                let v = if let Some(q) = &c.rate {
                    rates[&g.selector(q, "", &[])] * c.per.as_secs_f64()
                } else if let Some(r) = &c.ratio {
                    let d = rates[&g.selector(&r.denominator, "", &[])];
                    rates[&g.selector(&r.numerator, "", &[])] / d
                } else {
                    c.gauge
                        .as_ref()
                        .map_or(0.0, |q| s.gauges[&g.selector(q, "", &[])])
                };
                holds(&c.op, v, c.value)
            });
            s.counters = rates;
            let exp = fires.then(|| {
                exp_alert(
                    &alert["labels"],
                    &alert["annotations"],
                    &[("service", spec.service.clone())],
                )
            });
            tests.push(case(
                &s,
                eval,
                &alert,
                exp.map(|e| firing(spec, &alert, e)).unwrap_or_default(),
            ));
            cover(&a.name, fires);
        }
    }

    // `MetricAbsent`: one rule per metric. All reported: quiet; each one missing while the
    // others are reported: exactly its alert fires (with the selector's labels).
    let targets = absent_targets(spec);
    let eval = spec.absent_for + Duration::from_secs(300);
    let reported = |except: Option<usize>| {
        let mut s = Series::default();
        for (i, (q, suffix)) in targets.iter().enumerate() {
            if Some(i) != except {
                s.counters.insert(g.selector(q, suffix, &[]), 1.0);
            }
        }
        s
    };
    let absent_rule = json!({"alert": "MetricAbsent"});
    if !targets.is_empty() {
        tests.push(case(&reported(None), eval, &absent_rule, vec![]));
    }
    for (i, (q, suffix)) in targets.iter().enumerate() {
        let metric = format!("{}{suffix}", q.metric);
        let Some(alert) = all
            .iter()
            .find(|r| r["alert"] == "MetricAbsent" && r["labels"]["metric"] == json!(metric))
        else {
            continue;
        };
        let mut labels: Vec<(&str, String)> = vec![("service", spec.service.clone())];
        for (k, v) in &q.matchers {
            labels.push((k.as_str(), v.clone()));
        }
        let exp = exp_alert(&alert["labels"], &alert["annotations"], &labels);
        tests.push(case(&reported(Some(i)), eval, alert, vec![exp]));
        let name = format!("MetricAbsent({metric})");
        cover(&name, true);
        cover(&name, false);
    }

    if let Some(alert) = find("ServiceDown") {
        let eval = settle(spec, &alert, Duration::from_secs(900));
        let exp = exp_alert(
            &alert["labels"],
            &alert["annotations"],
            &[("service_name", spec.service.clone())],
        );
        // Nothing scraped: down (and escalated). Its target_info reported: up.
        tests.push(case(
            &Series::default(),
            eval,
            &alert,
            firing(spec, &alert, exp),
        ));
        let mut up = Series::default();
        up.gauges.insert(
            format!(
                "target_info{{service_name={},deployment_mode={}}}",
                quote(&spec.service),
                quote(&spec.deployment_mode)
            ),
            1.0,
        );
        tests.push(case(&up, eval, &alert, vec![]));
        cover("ServiceDown", true);
        cover("ServiceDown", false);
    }

    if let Some(alert) = find("TelemetryDropping") {
        let series = |rate: f64| {
            let mut s = Series::default();
            s.counters.insert(
                g.selector(
                    &Query::metric(SDK_DROPS),
                    "",
                    &[
                        ("signal", "logs".into()),
                        ("sink", "elasticsearch".into()),
                        ("reason", "queue_full".into()),
                    ],
                ),
                rate,
            );
            s
        };
        let exp = exp_alert(
            &alert["labels"],
            &alert["annotations"],
            &[
                ("service", spec.service.clone()),
                ("signal", "logs".into()),
                ("sink", "elasticsearch".into()),
                ("reason", "queue_full".into()),
            ],
        );
        let eval = Duration::from_secs(30 * 60);
        tests.push(case(&series(1.0), eval, &alert, vec![exp]));
        tests.push(case(&series(0.0), eval, &alert, vec![]));
        cover("TelemetryDropping", true);
        cover("TelemetryDropping", false);
    }

    let doc = json!({
        "rule_files": [rule_file_path],
        "evaluation_interval": "1m",
        "tests": tests,
    });
    RuleTests {
        yaml: super::yaml::to_yaml(&doc),
        coverage,
    }
}
