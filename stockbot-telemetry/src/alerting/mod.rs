//! SLOs and alert rules as code: declared in Rust or in a TOML file, validated against the
//! metrics the service really emits, and compiled into what Prometheus runs — recording rules,
//! multiwindow multi-burn-rate alerts, `absent` alerts, threshold and multi-condition alerts,
//! alerts on the SDK's own drop counters — plus `promtool test rules` cases that prove each
//! alert fires when it should and stays quiet when it should not.
//!
//! Every selector carries `service="<service>"` and `deployment_mode="live"` (configurable):
//! live alerts never count backtest or paper traffic.
//!
//! ```
//! use std::time::Duration;
//! use stockbot_telemetry::alerting::{AlertSpec, Query, Slo};
//!
//! let mut spec = AlertSpec::new("order-router", "execution");
//! spec.slos.push(Slo::ratio(
//!     "order_acceptance",
//!     0.999,
//!     Query::metric("stockbot_orders_rejected_total"),
//!     Query::metric("stockbot_orders_submitted_total"),
//! ));
//! spec.slos.push(Slo::latency(
//!     "ack_latency",
//!     0.99,
//!     "stockbot_order_ack_latency_seconds",
//!     Duration::from_millis(5),
//! ));
//! let rules = spec.prometheus_rules().unwrap();
//! assert!(rules.contains("OrderAcceptanceBurnRatePage"));
//! // The latency threshold becomes a bucket boundary of the histogram.
//! let mut config = stockbot_telemetry::Config::for_service("order-router");
//! spec.apply_to(&mut config).unwrap();
//! assert!(config.metrics.buckets["stockbot_order_ack_latency_seconds"].contains(&0.005));
//! ```
//!
//! The same spec as a file (`AlertSpec::from_toml`):
//!
//! ```toml
//! service = "order-router"
//! team = "execution"
//!
//! [[slo]]
//! name = "order_acceptance"
//! objective = 0.999
//! window = "30d"
//! ratio = { errors = { metric = "stockbot_orders_rejected_total" }, total = { metric = "stockbot_orders_submitted_total" } }
//!
//! [[alert]]
//! name = "HighRejectRatio"
//! severity = "page"
//! for = "5m"
//! summary = "More than 5 % of orders rejected while more than 10 orders a minute are sent"
//! when = [
//!   { ratio = { numerator = { metric = "stockbot_orders_rejected_total" }, denominator = { metric = "stockbot_orders_submitted_total" } }, op = ">", value = 0.05 },
//!   { rate = { metric = "stockbot_orders_submitted_total" }, per = "1m", op = ">", value = 10 },
//! ]
//! ```

mod alertmanager;
mod dashboard;
mod oncall;
mod rules;
mod yaml;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

pub use alertmanager::{Chat, Notifications, Receiver, ServiceRoute, Smtp, TeamRoute};
pub use oncall::{Override, Rotation, Shift};
pub(crate) use rules::check_slo;
pub use rules::{BurnWindow, RuleTests};

/// Everything one service declares: its SLOs, its alerts, the metrics it adds to the
/// catalogue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertSpec {
    /// `service.name` of the service (the `service` label of its series).
    pub service: String,
    /// Team that owns it (the `team` label of its alerts, used for routing).
    pub team: String,
    /// Only series with this `deployment_mode` count. Default `live`.
    #[serde(default = "AlertSpec::default_mode")]
    pub deployment_mode: String,
    /// Metrics the service emits beyond the business catalogue and `#[instrument_trade]`'s.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// Service level objectives.
    #[serde(default, rename = "slo")]
    pub slos: Vec<Slo>,
    /// Threshold and multi-condition alerts.
    #[serde(default, rename = "alert")]
    pub alerts: Vec<Alert>,
    /// Metrics whose disappearance alerts (besides every SLO's total and latency metric).
    #[serde(default)]
    pub absent: Vec<String>,
    /// How long a metric must be missing before its `absent` alert fires. Default 10 min.
    #[serde(default = "AlertSpec::default_absent_for", with = "humantime_serde")]
    pub absent_for: Duration,
    /// The burn-rate alert windows. Default: page at 2 % of the budget in 1 h (5 m short
    /// window) or 5 % in 6 h (30 m); ticket at 10 % in 1 d (2 h) or 10 % in 3 d (6 h).
    #[serde(default = "BurnWindow::defaults")]
    pub burn_windows: Vec<BurnWindow>,
    /// Alert on the SDK's own drop counters (`stockbot_telemetry_dropped_total`). Default on.
    #[serde(default = "AlertSpec::yes")]
    pub sdk_alerts: bool,
    /// Escalation of pages: tier 2, 3, … of every page alert fire when it is still firing
    /// this long after it fired (e.g. `["15m", "1h"]`: secondary after 15 min, manager after
    /// 1 h); [`Notifications`] routes each tier. Empty: no escalation.
    #[serde(default, deserialize_with = "durations")]
    pub escalation: Vec<Duration>,
}

fn durations<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let texts: Vec<String> = Deserialize::deserialize(d)?;
    texts
        .iter()
        .map(|t| humantime::parse_duration(t).map_err(serde::de::Error::custom))
        .collect()
}

/// A service level objective.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "SloFile")]
#[non_exhaustive]
pub struct Slo {
    /// `[a-z][a-z0-9_]*`; the `slo` label of its rules and alerts.
    pub name: String,
    /// Fraction of good events, in (0, 1): `0.9995` is 99.95 %.
    pub objective: f64,
    /// Compliance window. Default 30 days.
    #[serde(default = "Slo::default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Fewest events per second (over the short burn window) for a burn-rate alert to fire:
    /// the low-traffic guard (a single failure at night is not a page). Default 0.
    #[serde(default)]
    pub min_rate: f64,
    /// What counts as a good or bad event (`ratio` or `latency` in a file).
    pub sli: Sli,
}

/// How an SLO's events are counted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Sli {
    /// Bad events over all events (counters).
    Ratio {
        /// Bad events.
        errors: Query,
        /// All events.
        total: Query,
    },
    /// Events slower than a threshold (a histogram; the threshold becomes one of its buckets).
    Latency {
        /// The histogram (`…_seconds`).
        metric: String,
        /// Slower than this is bad.
        threshold: Duration,
        /// Label matchers.
        matchers: BTreeMap<String, String>,
    },
}

impl Sli {
    /// The SLI of the calls tied to SLO `slo` of the functions whose metrics are
    /// `<metric>_*`: failed calls, or calls slower than `latency`.
    fn calls(slo: &str, metric: &str, latency: Option<Duration>) -> Self {
        match latency {
            None => Sli::Ratio {
                errors: Query::metric(format!("{metric}_errors_total")).with("slo", slo),
                total: Query::metric(format!("{metric}_calls_total")).with("slo", slo),
            },
            Some(threshold) => Sli::Latency {
                metric: format!("{metric}_duration_seconds"),
                threshold,
                matchers: BTreeMap::from([("slo".to_owned(), slo.to_owned())]),
            },
        }
    }
}

/// An SLO as written in a file: exactly one of `ratio`, `latency` and `calls`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SloFile {
    name: String,
    objective: f64,
    #[serde(default = "Slo::default_window", with = "humantime_serde")]
    window: Duration,
    #[serde(default)]
    min_rate: f64,
    #[serde(default)]
    ratio: Option<RatioFile>,
    #[serde(default)]
    latency: Option<LatencyFile>,
    #[serde(default)]
    calls: Option<CallsFile>,
}

/// `calls = {}` (failed calls are bad) or `calls = { latency = "5ms" }` (slow calls are bad)
/// over the functions tied to the SLO with `#[instrument_trade(slo = "…")]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallsFile {
    #[serde(default, with = "humantime_serde")]
    latency: Option<Duration>,
    #[serde(default = "CallsFile::default_metric")]
    metric: String,
}

impl CallsFile {
    fn default_metric() -> String {
        "stockbot_trade".into()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatioFile {
    errors: Query,
    total: Query,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyFile {
    metric: String,
    #[serde(with = "humantime_serde")]
    threshold: Duration,
    #[serde(default)]
    matchers: BTreeMap<String, String>,
}

impl TryFrom<SloFile> for Slo {
    type Error = String;

    fn try_from(f: SloFile) -> Result<Self, String> {
        let sli = match (f.ratio, f.latency, f.calls) {
            (Some(r), None, None) => Sli::Ratio {
                errors: r.errors,
                total: r.total,
            },
            (None, Some(l), None) => Sli::Latency {
                metric: l.metric,
                threshold: l.threshold,
                matchers: l.matchers,
            },
            (None, None, Some(c)) => Sli::calls(&f.name, &c.metric, c.latency),
            _ => {
                return Err(format!(
                    "SLO {:?} needs exactly one of `ratio`, `latency` and `calls`",
                    f.name
                ));
            }
        };
        Ok(Slo {
            name: f.name,
            objective: f.objective,
            window: f.window,
            min_rate: f.min_rate,
            sli,
        })
    }
}

/// A metric and equality matchers on its labels.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Query {
    /// Full metric name.
    pub metric: String,
    /// `label = value` matchers (the service and deployment mode are added).
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
}

/// A threshold or multi-condition alert: it fires when every condition holds for `for`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Alert {
    /// Alert name, `[A-Z][A-Za-z0-9]*`.
    pub name: String,
    /// `page` (someone now) or `ticket` (working hours).
    pub severity: Severity,
    /// How long the conditions must hold. Default 5 min.
    #[serde(
        default = "Alert::default_for",
        rename = "for",
        with = "humantime_serde"
    )]
    pub for_: Duration,
    /// Rate window of the conditions. Default 5 min.
    #[serde(default = "Alert::default_for", with = "humantime_serde")]
    pub window: Duration,
    /// One line for the notification.
    pub summary: String,
    /// All must hold (`and`).
    pub when: Vec<Condition>,
}

/// Who is woken up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Urgent: the on-call engineer now.
    Page,
    /// Not urgent: a ticket for working hours.
    Ticket,
}

impl Severity {
    /// `page` or `ticket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One condition of an alert: a signal compared with a value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Condition {
    /// Per-second rate of a counter (times `per`).
    #[serde(default)]
    pub rate: Option<Query>,
    /// Unit of `rate`: the rate per this period (`1m` → per minute). Default 1 s.
    #[serde(default = "Condition::default_per", with = "humantime_serde")]
    pub per: Duration,
    /// Ratio of two counters' rates.
    #[serde(default)]
    pub ratio: Option<Ratio>,
    /// A gauge's largest value across the service's series.
    #[serde(default)]
    pub gauge: Option<Query>,
    /// `>`, `>=`, `<`, `<=`.
    pub op: String,
    /// The threshold.
    pub value: f64,
}

/// Two counters whose rates are divided.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Ratio {
    /// Numerator (may not exist yet: no rejects so far counts as 0).
    pub numerator: Query,
    /// Denominator.
    pub denominator: Query,
}

impl Query {
    /// `metric` without matchers.
    pub fn metric(metric: impl Into<String>) -> Self {
        Query {
            metric: metric.into(),
            matchers: BTreeMap::new(),
        }
    }

    /// Adds `label = value`.
    #[must_use]
    pub fn with(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.matchers.insert(label.into(), value.into());
        self
    }
}

impl Slo {
    /// A ratio SLO: `errors` over `total` stays under `1 - objective`.
    pub fn ratio(name: impl Into<String>, objective: f64, errors: Query, total: Query) -> Self {
        Self::with_sli(name.into(), objective, Sli::Ratio { errors, total })
    }

    fn with_sli(name: String, objective: f64, sli: Sli) -> Self {
        Slo {
            name,
            objective,
            window: Self::default_window(),
            min_rate: 0.0,
            sli,
        }
    }

    /// A latency SLO: the fraction of `metric`'s events slower than `threshold` stays under
    /// `1 - objective`.
    pub fn latency(
        name: impl Into<String>,
        objective: f64,
        metric: impl Into<String>,
        threshold: Duration,
    ) -> Self {
        let sli = Sli::Latency {
            metric: metric.into(),
            threshold,
            matchers: BTreeMap::new(),
        };
        Self::with_sli(name.into(), objective, sli)
    }

    /// An SLO over the calls of the functions tied to it with
    /// `#[instrument_trade(slo = "<name>")]`: every call that does not end `ok` (an error, a
    /// panic, a cancelled future) is bad — `stockbot_trade_errors_total{slo="<name>"}` over
    /// `stockbot_trade_calls_total{slo="<name>"}`.
    pub fn calls(name: impl Into<String>, objective: f64) -> Self {
        let name = name.into();
        let sli = Sli::calls(&name, "stockbot_trade", None);
        Self::with_sli(name, objective, sli)
    }

    /// An SLO over the duration of the calls of the functions tied to it with
    /// `#[instrument_trade(slo = "<name>")]`: calls slower than `threshold` are bad
    /// (`stockbot_trade_duration_seconds{slo="<name>"}`, whose buckets get the threshold).
    pub fn call_latency(name: impl Into<String>, objective: f64, threshold: Duration) -> Self {
        let name = name.into();
        let sli = Sli::calls(&name, "stockbot_trade", Some(threshold));
        Self::with_sli(name, objective, sli)
    }

    fn default_window() -> Duration {
        Duration::from_secs(30 * 86_400)
    }

    /// The error budget: `1 - objective`.
    pub fn error_budget(&self) -> f64 {
        1.0 - self.objective
    }
}

impl Alert {
    fn default_for() -> Duration {
        Duration::from_secs(300)
    }

    /// The classic trading alert (a page): more than `ratio` of the orders rejected while
    /// more than `orders_per_minute` orders are sent, for 5 minutes — the business catalogue's
    /// `stockbot_orders_rejected_total` over `stockbot_orders_submitted_total`.
    pub fn high_reject_ratio(ratio: f64, orders_per_minute: f64) -> Self {
        let rounded = |v: f64| (v * 1e6).round() / 1e6;
        Alert::new(
            "HighRejectRatio",
            Severity::Page,
            format!(
                "More than {} % of orders rejected while more than {} orders a minute are sent",
                rounded(ratio * 100.0),
                rounded(orders_per_minute)
            ),
            vec![
                Condition::ratio(
                    Query::metric("stockbot_orders_rejected_total"),
                    Query::metric("stockbot_orders_submitted_total"),
                    ">",
                    ratio,
                ),
                Condition::rate(
                    Query::metric("stockbot_orders_submitted_total"),
                    Duration::from_secs(60),
                    ">",
                    orders_per_minute,
                ),
            ],
        )
    }

    /// An alert that fires when every condition in `when` holds for 5 minutes.
    pub fn new(
        name: impl Into<String>,
        severity: Severity,
        summary: impl Into<String>,
        when: Vec<Condition>,
    ) -> Self {
        Alert {
            name: name.into(),
            severity,
            for_: Self::default_for(),
            window: Self::default_for(),
            summary: summary.into(),
            when,
        }
    }
}

impl Condition {
    fn default_per() -> Duration {
        Duration::from_secs(1)
    }

    fn blank(op: &str, value: f64) -> Self {
        Condition {
            rate: None,
            per: Self::default_per(),
            ratio: None,
            gauge: None,
            op: op.to_owned(),
            value,
        }
    }

    /// `rate(counter) * per <op> value`.
    pub fn rate(query: Query, per: Duration, op: &str, value: f64) -> Self {
        Condition {
            rate: Some(query),
            per,
            ..Self::blank(op, value)
        }
    }

    /// `rate(numerator) / rate(denominator) <op> value`.
    pub fn ratio(numerator: Query, denominator: Query, op: &str, value: f64) -> Self {
        Condition {
            ratio: Some(Ratio {
                numerator,
                denominator,
            }),
            ..Self::blank(op, value)
        }
    }

    /// `max(gauge) <op> value`.
    pub fn gauge(query: Query, op: &str, value: f64) -> Self {
        Condition {
            gauge: Some(query),
            ..Self::blank(op, value)
        }
    }
}

impl AlertSpec {
    /// An empty spec for `service`, owned by `team`.
    pub fn new(service: impl Into<String>, team: impl Into<String>) -> Self {
        AlertSpec {
            service: service.into(),
            team: team.into(),
            deployment_mode: Self::default_mode(),
            metrics: Vec::new(),
            slos: Vec::new(),
            alerts: Vec::new(),
            absent: Vec::new(),
            absent_for: Self::default_absent_for(),
            burn_windows: BurnWindow::defaults(),
            sdk_alerts: true,
            escalation: Vec::new(),
        }
    }

    fn default_mode() -> String {
        "live".into()
    }

    fn default_absent_for() -> Duration {
        Duration::from_secs(600)
    }

    fn yes() -> bool {
        true
    }

    /// Reads a spec from TOML text.
    ///
    /// # Errors
    /// A syntax error or an unknown key, with its place; then [`validate`](Self::validate).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let spec: AlertSpec = toml::from_str(text)
            .map_err(|e| Error::invalid("alert spec", "<toml>", e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks names, objectives, windows and that every metric is one the service emits.
    ///
    /// # Errors
    /// The first problem, naming the item (`slo[1].objective`, `alert[0].when[1].op`, …).
    pub fn validate(&self) -> Result<(), Error> {
        rules::validate(self)
    }

    /// The Prometheus rule file (YAML), accepted by `promtool check rules`.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn prometheus_rules(&self) -> Result<String, Error> {
        self.validate()?;
        Ok(yaml::to_yaml(&rules::rule_file(self)))
    }

    /// `promtool test rules` cases for every generated alert: synthetic series under which
    /// it fires, and under which it stays quiet. `rule_file` is the path the test file names.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn prometheus_rule_tests(&self, rule_file: &str) -> Result<RuleTests, Error> {
        self.validate()?;
        Ok(rules::rule_tests(self, rule_file))
    }

    /// The service's Grafana dashboard (JSON): RED panels of its `#[instrument_trade]`
    /// functions, each SLO's error ratio against its budget and the budget remaining, the
    /// business metrics, the SDK's health; a `deployment_mode` variable (default the spec's)
    /// and a Prometheus data source variable.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn grafana_dashboard(&self) -> Result<String, Error> {
        self.validate()?;
        serde_json::to_string_pretty(&dashboard::dashboard(self))
            .map_err(|e| Error::invalid("dashboard", &self.service, e.to_string()))
    }

    /// Makes every latency threshold a bucket boundary of its histogram in `config` (added to
    /// the metric's buckets: the catalogue's, the configured ones or the default).
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn apply_to(&self, config: &mut crate::Config) -> Result<(), Error> {
        self.validate()?;
        for slo in &self.slos {
            config.slos.retain(|s| s.name != slo.name);
            config.slos.push(slo.clone());
        }
        threshold_buckets(&self.slos, &mut config.metrics);
        Ok(())
    }
}

/// Adds every latency threshold of `slos` to its histogram's buckets in `m` (the catalogue's,
/// the configured ones or the default).
pub(crate) fn threshold_buckets(slos: &[Slo], m: &mut crate::MetricsConfig) {
    for slo in slos {
        if let Sli::Latency {
            metric, threshold, ..
        } = &slo.sli
        {
            let mut buckets = m
                .buckets
                .get(metric)
                .cloned()
                .or_else(|| {
                    crate::trading::lookup(metric)
                        .filter(|d| !d.buckets.is_empty())
                        .map(|d| d.buckets.to_vec())
                })
                .unwrap_or_else(|| m.default_buckets.clone());
            let t = threshold.as_secs_f64();
            if !buckets.contains(&t) {
                buckets.push(t);
                buckets.sort_by(f64::total_cmp);
            }
            m.buckets.insert(metric.clone(), buckets);
        }
    }
}

/// The code blocks of `docs/alerting.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/alerting.md")]
struct AlertingGuide;
