//! The metrics recorder: every metric recorded through the `metrics` facade lands here, is
//! checked against the naming rules and the cardinality guard once (at registration), and gets
//! a lock-free handle. Rendering reads the same cells.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Label, Metadata,
    Recorder, SharedString, Unit,
};
use stockbot_telemetry_conventions::{self as conventions, Cardinality, MetricKind};

use crate::process::redact::{SecretKind, redact_str};

/// Label that marks the series receiving samples past a metric's cap.
pub(crate) const OVERFLOW_LABEL: &str = "otel_metric_overflow";
/// Labels the SDK adds to every series; a metric may not set them itself.
pub(crate) const GLOBAL_LABELS: [&str; 3] = ["service", "environment", "deployment_mode"];
const SHARDS: usize = 16;
/// Most rejected names remembered (for one error record each); past it, only counted.
const MAX_REMEMBERED_REJECTIONS: usize = 1024;

/// `Key` hashes itself with one `write_u64` of its precomputed hash: pass it through.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The series of one registry shard, by key. `metrics::Key`'s own equality ignores label order
/// by sorting both label lists on every comparison, which costs more than the rest of a lookup
/// once a key has three labels; here keys are bucketed by their (order-independent) hash and
/// compared label by label in order first — the common case, since a call site always builds
/// its labels in the same order — falling back to `Key`'s equality only when that fails.
#[derive(Debug, Default)]
struct SeriesMap {
    buckets: HashMap<u64, Bucket, BuildHasherDefault<PassThrough>>,
}

/// The series sharing one key hash (almost always one).
type Bucket = smallvec::SmallVec<[(Key, Arc<Series>); 1]>;

/// Keys built from the same `&'static str`s (every static key: the macros' and the trading
/// catalogue's) compare by address, without reading the bytes.
fn same_str(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

fn same_key(a: &Key, b: &Key) -> bool {
    a.get_hash() == b.get_hash()
        && same_str(a.name(), b.name())
        && ((a.labels().len() == b.labels().len()
            && a.labels()
                .zip(b.labels())
                .all(|(x, y)| same_str(x.key(), y.key()) && same_str(x.value(), y.value())))
            || a == b)
}

impl SeriesMap {
    fn get(&self, key: &Key) -> Option<&Arc<Series>> {
        self.buckets
            .get(&key.get_hash())?
            .iter()
            .find(|(k, _)| same_key(k, key))
            .map(|(_, s)| s)
    }

    fn insert(&mut self, key: Key, series: Arc<Series>) {
        let bucket = self.buckets.entry(key.get_hash()).or_default();
        match bucket.iter_mut().find(|(k, _)| same_key(k, &key)) {
            Some(slot) => slot.1 = series,
            None => bucket.push((key, series)),
        }
    }

    fn values(&self) -> impl Iterator<Item = &Arc<Series>> {
        self.buckets.values().flat_map(|b| b.iter().map(|(_, s)| s))
    }

    fn retain(&mut self, mut keep: impl FnMut(&Arc<Series>) -> bool) {
        self.buckets.retain(|_, bucket| {
            bucket.retain(|(_, s)| keep(s));
            !bucket.is_empty()
        });
    }
}

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub(crate) struct CounterCell {
    pub(crate) value: AtomicU64,
}

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.value.fetch_add(value, Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.value.fetch_max(value, Relaxed);
    }
}

/// A value that goes up and down (f64 bits).
#[derive(Debug, Default)]
pub(crate) struct GaugeCell {
    pub(crate) bits: AtomicU64,
}

impl GaugeCell {
    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Relaxed))
    }
    fn add(&self, delta: f64) {
        let _ = self.bits.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + delta).to_bits())
        });
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.add(value);
    }
    fn decrement(&self, value: f64) {
        self.add(-value);
    }
    fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Relaxed);
    }
}

/// A fixed-bucket histogram: recording is a binary search and three atomic adds.
#[derive(Debug)]
pub(crate) struct HistogramCell {
    pub(crate) bounds: Arc<[f64]>,
    /// Non-cumulative counts; the last one is the `+Inf` bucket.
    pub(crate) buckets: Box<[AtomicU64]>,
    pub(crate) count: AtomicU64,
    sum_bits: AtomicU64,
    invalid: Arc<AtomicU64>,
    /// The latest exemplar of each bucket: a sample taken inside a sampled span, pointing at
    /// its trace (served with OpenMetrics).
    pub(crate) exemplars: Box<[Mutex<Option<Exemplar>>]>,
}

/// A sample with the trace it was recorded in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) value: f64,
    pub(crate) unix_nanos: u64,
}

/// Whether the `n`-th sample (0-based) of a bucket should refresh its exemplar: the first
/// ones, then every 64th — so the trace lookup stays off the common path.
fn exemplar_due(n: u64) -> bool {
    n < 4 || n.is_multiple_of(64)
}

impl HistogramCell {
    fn new(bounds: Arc<[f64]>, invalid: Arc<AtomicU64>) -> Self {
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        let exemplars = (0..=bounds.len()).map(|_| Mutex::new(None)).collect();
        HistogramCell {
            bounds,
            buckets,
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            invalid,
            exemplars,
        }
    }

    pub(crate) fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Relaxed))
    }
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        if value.is_nan() {
            // NaN has no bucket; counted (stockbot_telemetry_metric_invalid_values_total).
            self.invalid.fetch_add(1, Relaxed);
            return;
        }
        let i = self.bounds.partition_point(|b| *b < value);
        let n = self.buckets[i].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        if exemplar_due(n)
            && let Some((trace_id, span_id)) = crate::context::current_sampled_ids()
            && let Ok(mut slot) = self.exemplars[i].try_lock()
        {
            let unix_nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            *slot = Some(Exemplar {
                trace_id,
                span_id,
                value,
                unix_nanos,
            });
        }
        let _ = self.sum_bits.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + value).to_bits())
        });
    }
}

/// The cell of one series.
#[derive(Debug, Clone)]
pub(crate) enum Cell {
    Counter(Arc<CounterCell>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<HistogramCell>),
}

impl Cell {
    fn kind(&self) -> MetricKind {
        match self {
            Cell::Counter(_) => MetricKind::Counter,
            Cell::Gauge(_) => MetricKind::Gauge,
            Cell::Histogram(_) => MetricKind::Histogram,
        }
    }

    /// A number that changes whenever the series is written (for idle expiry).
    fn activity(&self) -> u64 {
        match self {
            Cell::Counter(c) => c.value.load(Relaxed),
            Cell::Gauge(g) => g.bits.load(Relaxed),
            Cell::Histogram(h) => h.count.load(Relaxed),
        }
    }

    /// Whether only the registry holds the cell (no pre-registered handle outside).
    fn unreferenced(&self) -> bool {
        match self {
            Cell::Counter(c) => Arc::strong_count(c) == 1,
            Cell::Gauge(g) => Arc::strong_count(g) == 1,
            Cell::Histogram(h) => Arc::strong_count(h) == 1,
        }
    }
}

/// One metric name: its kind, buckets, series count and overflow series.
#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) name: String,
    pub(crate) kind: MetricKind,
    pub(crate) bounds: Arc<[f64]>,
    series: AtomicUsize,
    overflow: std::sync::OnceLock<Cell>,
    pub(crate) overflowed: AtomicU64,
}

/// A series as stored: its cell and its labels, already escaped for the exposition.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) cell: Cell,
    pub(crate) family: Arc<Family>,
    /// `k="v",k2="v2"` (escaped), empty without labels.
    pub(crate) labels: String,
    /// The same labels as pairs (for OTLP).
    pub(crate) pairs: Arc<[(String, String)]>,
    last_activity: AtomicU64,
    last_change: Mutex<Instant>,
}

/// Why a metric was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Rejection {
    InvalidName,
    MissingNamespace,
    CounterSuffix,
    NonBaseUnit,
    ReservedSuffix,
    InvalidLabel,
    UnitMismatch,
    KindConflict,
}

impl Rejection {
    pub(crate) const ALL: [Rejection; 8] = [
        Rejection::InvalidName,
        Rejection::MissingNamespace,
        Rejection::CounterSuffix,
        Rejection::NonBaseUnit,
        Rejection::ReservedSuffix,
        Rejection::InvalidLabel,
        Rejection::UnitMismatch,
        Rejection::KindConflict,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Rejection::InvalidName => "invalid_name",
            Rejection::MissingNamespace => "missing_namespace",
            Rejection::CounterSuffix => "counter_suffix",
            Rejection::NonBaseUnit => "non_base_unit",
            Rejection::ReservedSuffix => "reserved_suffix",
            Rejection::InvalidLabel => "invalid_label",
            Rejection::UnitMismatch => "unit_mismatch",
            Rejection::KindConflict => "kind_conflict",
        }
    }

    fn of(e: &conventions::NamingError) -> Self {
        use conventions::NamingError as E;
        match e {
            E::MissingNamespace { .. } => Rejection::MissingNamespace,
            E::CounterWithoutTotal { .. } | E::TotalOnNonCounter { .. } => Rejection::CounterSuffix,
            E::NonBaseUnit { .. } | E::AbbreviatedUnit { .. } => Rejection::NonBaseUnit,
            E::ReservedSuffix { .. } => Rejection::ReservedSuffix,
            _ => Rejection::InvalidName,
        }
    }
}

/// Settings of the registry.
#[derive(Debug, Clone)]
pub(crate) struct RegistrySettings {
    pub(crate) namespace: String,
    pub(crate) max_series_per_metric: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) default_buckets: Vec<f64>,
    pub(crate) buckets: HashMap<String, Vec<f64>>,
    /// Scan label values for secrets by value pattern (`log.redaction.patterns`). Values of
    /// secret-named labels are redacted whatever this says.
    pub(crate) redact_patterns: bool,
}

/// The SDK's own counters about metrics.
#[derive(Debug, Default)]
pub(crate) struct MetricsSelfStats {
    pub(crate) rejected: Mutex<HashMap<Rejection, u64>>,
    pub(crate) labels_refused: Mutex<HashMap<String, u64>>,
    pub(crate) invalid_values: Arc<AtomicU64>,
    pub(crate) expired: AtomicU64,
    /// Secrets replaced in label values (one per secret, at each registration that had one).
    pub(crate) label_redactions: AtomicU64,
}

/// All series of the process (or of one test).
#[derive(Debug)]
pub(crate) struct MetricsRegistry {
    pub(crate) settings: RegistrySettings,
    shards: Vec<RwLock<SeriesMap>>,
    families: RwLock<HashMap<String, Arc<Family>>>,
    descriptions: RwLock<HashMap<String, (Option<Unit>, String)>>,
    rejected_names: Mutex<HashSet<String>>,
    pub(crate) stats: MetricsSelfStats,
}

/// A problem to report once as an error record (the recorder may run inside any code, so the
/// record is emitted after locks are released).
fn report(message: String) {
    tracing::error!(target: "stockbot_telemetry::metrics", "{message}");
}

impl MetricsRegistry {
    pub(crate) fn new(settings: RegistrySettings) -> Self {
        MetricsRegistry {
            settings,
            shards: (0..SHARDS)
                .map(|_| RwLock::new(SeriesMap::default()))
                .collect(),
            families: RwLock::new(HashMap::new()),
            descriptions: RwLock::new(HashMap::new()),
            rejected_names: Mutex::new(HashSet::new()),
            stats: MetricsSelfStats::default(),
        }
    }

    fn shard(&self, key: &Key) -> &RwLock<SeriesMap> {
        &self.shards[(key.get_hash() as usize) % SHARDS]
    }

    /// The registered cell of `key`, if any (the fast path: one read lock, one lookup).
    fn existing(&self, key: &Key) -> Option<Cell> {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        shard.get(key).map(|s| s.cell.clone())
    }

    pub(crate) fn cell(&self, key: &Key, kind: MetricKind) -> Option<Cell> {
        if let Some(cell) = self.existing(key) {
            if cell.kind() == kind {
                return Some(cell);
            }
            self.reject(key.name(), Rejection::KindConflict, || {
                format!(
                    "metric `{}` is already registered as a {}; it cannot also be a {}",
                    key.name(),
                    cell.kind().name(),
                    kind.name()
                )
            });
            return None;
        }
        self.create(key, kind)
    }

    fn reject(&self, name: &str, why: Rejection, message: impl FnOnce() -> String) {
        *self
            .stats
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(why)
            .or_default() += 1;
        let first = {
            let mut names = self
                .rejected_names
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            names.len() < MAX_REMEMBERED_REJECTIONS
                && names.insert(format!("{}:{name}", why.as_str()))
        };
        if first {
            report(format!("metric not exported: {}", message()));
        }
    }

    fn family(&self, name: &str, kind: MetricKind) -> Result<Arc<Family>, ()> {
        let existing = self
            .families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        if let Some(f) = existing {
            if f.kind == kind {
                return Ok(f);
            }
            self.reject(name, Rejection::KindConflict, || {
                format!(
                    "metric `{name}` is already registered as a {}; it cannot also be a {}",
                    f.kind.name(),
                    kind.name()
                )
            });
            return Err(());
        }
        if let Err(e) = conventions::validate_metric_name(name, kind, &self.settings.namespace) {
            self.reject(name, Rejection::of(&e), || e.to_string());
            return Err(());
        }
        // In OpenMetrics a counter `x_total` is the family `x`: a gauge or histogram `x` next
        // to it would make the exposition unparsable.
        let twin = match kind {
            MetricKind::Counter => name.strip_suffix("_total").map(str::to_owned),
            _ => Some(format!("{name}_total")),
        };
        let clash = twin.and_then(|t| {
            self.families
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&t)
                .map(|f| (t.clone(), f.kind))
        });
        if let Some((other, other_kind)) = clash {
            self.reject(name, Rejection::KindConflict, || {
                format!(
                    "metric `{name}` would share its OpenMetrics family with the {} `{other}`",
                    other_kind.name()
                )
            });
            return Err(());
        }
        if name.starts_with(&format!("{}_telemetry_", self.settings.namespace)) {
            self.reject(name, Rejection::InvalidName, || {
                format!("metric `{name}`: the `{}_telemetry_` prefix is reserved for the SDK's own metrics", self.settings.namespace)
            });
            return Err(());
        }
        let unit = self
            .descriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .and_then(|(unit, _)| *unit);
        if let Some(unit) = unit
            && let Some(expected) = unit_suffix(unit)
            && !name.trim_end_matches("_total").ends_with(expected)
        {
            self.reject(name, Rejection::UnitMismatch, || {
                format!(
                    "metric `{name}` is described with unit {} but its name does not end in `{expected}`",
                    unit.as_str()
                )
            });
            return Err(());
        }
        let bounds: Arc<[f64]> = self
            .settings
            .buckets
            .get(name)
            .unwrap_or(&self.settings.default_buckets)
            .clone()
            .into();
        let mut families = self.families.write().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Family {
                name: name.to_owned(),
                kind,
                bounds,
                series: AtomicUsize::new(0),
                overflow: std::sync::OnceLock::new(),
                overflowed: AtomicU64::new(0),
            })
        });
        Ok(Arc::clone(family))
    }

    fn new_cell(&self, family: &Family) -> Cell {
        match family.kind {
            MetricKind::Counter => Cell::Counter(Arc::default()),
            MetricKind::Gauge => Cell::Gauge(Arc::default()),
            _ => Cell::Histogram(Arc::new(HistogramCell::new(
                Arc::clone(&family.bounds),
                Arc::clone(&self.stats.invalid_values),
            ))),
        }
    }

    /// The slow path: first sight of a key.
    fn create(&self, key: &Key, kind: MetricKind) -> Option<Cell> {
        let name = key.name();
        let family = self.family(name, kind).ok()?;
        // Labels: valid names only; ids (high-cardinality class) and the SDK's global labels
        // are stripped — the sample is kept, the refusal counted.
        let mut kept: Vec<&Label> = Vec::with_capacity(key.labels().len());
        let mut stripped = false;
        for (i, label) in key.labels().enumerate() {
            let k = label.key();
            if let Err(e) = conventions::validate_label_name(k) {
                self.reject(name, Rejection::InvalidLabel, || e.to_string());
                return None;
            }
            if matches!(k, "le" | "quantile") || key.labels().take(i).any(|l| l.key() == k) {
                self.reject(name, Rejection::InvalidLabel, || {
                    format!("metric `{name}`: label `{k}` is reserved by the exposition format or given twice")
                });
                return None;
            }
            let refused = conventions::label_cardinality(k) == Some(Cardinality::High)
                || GLOBAL_LABELS.contains(&k)
                || k == OVERFLOW_LABEL;
            if refused {
                stripped = true;
                let first = {
                    let mut refused = self
                        .stats
                        .labels_refused
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let n = refused.entry(k.to_owned()).or_default();
                    *n += 1;
                    *n == 1
                };
                if first {
                    report(format!(
                        "label `{k}` of metric `{name}` removed: ids and other high-cardinality values belong on spans and logs, never on metric labels"
                    ));
                }
            } else {
                kept.push(label);
            }
        }
        // Label values: a secret never reaches the exposition or OTLP. Checked here, once per
        // new key (the slow path), never on the handle's or the lookup's fast path.
        let redacted = self.redact_labels(name, &kept);
        let key = if stripped || redacted.is_some() {
            let labels = redacted.unwrap_or_else(|| kept.into_iter().cloned().collect());
            let key = Key::from_parts(name.to_owned(), labels);
            if let Some(cell) = self.existing(&key) {
                return (cell.kind() == kind).then_some(cell);
            }
            key
        } else {
            key.clone()
        };

        let max = self.settings.max_series_per_metric;
        // At the cap: straight to the overflow series, without the shard's write lock.
        if family.series.load(Relaxed) >= max {
            family.overflowed.fetch_add(1, Relaxed);
            return Some(self.overflow_cell(&family));
        }
        let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = shard.get(&key) {
            return (s.cell.kind() == kind).then(|| s.cell.clone());
        }
        // Reserve a slot atomically: the family's series are spread over all shards.
        if family
            .series
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .is_err()
        {
            drop(shard);
            family.overflowed.fetch_add(1, Relaxed);
            return Some(self.overflow_cell(&family));
        }
        let cell = self.new_cell(&family);
        let labels = render_labels(key.labels().map(|l| (l.key(), l.value())));
        let pairs = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        shard.insert(
            key,
            Arc::new(Series {
                cell: cell.clone(),
                family,
                labels,
                pairs,
                last_activity: AtomicU64::new(0),
                last_change: Mutex::new(Instant::now()),
            }),
        );
        Some(cell)
    }

    /// The labels with every secret in their values replaced (a secret-named label's whole
    /// value by `[REDACTED]`, secrets found by value pattern by their marker, as in logs);
    /// `None` when there is none. Counted, and reported once per metric.
    fn redact_labels(&self, name: &str, labels: &[&Label]) -> Option<Vec<Label>> {
        let mut hits = Vec::new();
        let mut out: Option<Vec<Label>> = None;
        let mut keys: Vec<&str> = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            let before = hits.len();
            let value = if conventions::is_secret_name(label.key()) {
                hits.push(SecretKind::KeyValue);
                Some("[REDACTED]".to_owned())
            } else if self.settings.redact_patterns {
                match redact_str(label.value(), &mut hits) {
                    std::borrow::Cow::Owned(v) => Some(v),
                    std::borrow::Cow::Borrowed(_) => None,
                }
            } else {
                None
            };
            if let Some(value) = value.filter(|_| hits.len() > before) {
                keys.push(label.key());
                out.get_or_insert_with(|| labels.iter().take(i).map(|l| (*l).clone()).collect())
                    .push(Label::new(label.key().to_owned(), value));
            } else if let Some(out) = &mut out {
                out.push((*label).clone());
            }
        }
        if hits.is_empty() {
            return None;
        }
        self.stats
            .label_redactions
            .fetch_add(hits.len() as u64, Relaxed);
        let first = {
            let mut names = self
                .rejected_names
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            names.len() < MAX_REMEMBERED_REJECTIONS && names.insert(format!("redacted:{name}"))
        };
        if first {
            let mut kinds: Vec<&str> = hits.iter().map(|k| k.name()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            report(format!(
                "label {} of metric `{name}` held secrets ({}): redacted; secrets never belong on metric labels",
                keys.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                kinds.join(", ")
            ));
        }
        out
    }

    fn overflow_cell(&self, family: &Family) -> Cell {
        if let Some(cell) = family.overflow.get() {
            return cell.clone();
        }
        let cell = family
            .overflow
            .get_or_init(|| self.new_cell(family))
            .clone();
        if family.overflowed.load(Relaxed) <= 1 {
            report(format!(
                "metric `{}` reached its cap of {} label sets; further new label sets go to the series {{{OVERFLOW_LABEL}=\"true\"}}",
                family.name, self.settings.max_series_per_metric
            ));
        }
        cell
    }

    pub(crate) fn describe(&self, name: &str, unit: Option<Unit>, help: &str) {
        self.descriptions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), (unit, help.to_owned()));
    }

    pub(crate) fn help(&self, name: &str) -> Option<String> {
        self.descriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map(|(_, h)| h.clone())
    }

    /// Every series (and overflow series), for rendering.
    pub(crate) fn snapshot(&self) -> Vec<SeriesView> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            out.extend(shard.values().map(|s| SeriesView {
                family: Arc::clone(&s.family),
                labels: s.labels.clone(),
                pairs: Arc::clone(&s.pairs),
                cell: s.cell.clone(),
            }));
        }
        for family in self
            .families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            if let Some(cell) = family.overflow.get().cloned() {
                out.push(SeriesView {
                    family: Arc::clone(family),
                    labels: format!("{OVERFLOW_LABEL}=\"true\""),
                    pairs: Arc::new([(OVERFLOW_LABEL.to_owned(), "true".to_owned())]),
                    cell,
                });
            }
        }
        out.sort_by(|a, b| {
            a.family
                .name
                .cmp(&b.family.name)
                .then_with(|| a.labels.cmp(&b.labels))
        });
        out
    }

    /// Samples sent to each metric's overflow series, by metric name (sorted).
    pub(crate) fn overflowed(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|f| (f.name.clone(), f.overflowed.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        out.sort();
        out
    }

    /// Removes counter and histogram series not written for `idle_timeout` and not held by a
    /// pre-registered handle (gauges hold state and never expire). Returns how many went.
    pub(crate) fn expire_idle(&self, now: Instant) -> usize {
        let Some(timeout) = self.settings.idle_timeout else {
            return 0;
        };
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            shard.retain(|s| {
                if matches!(s.cell, Cell::Gauge(_)) {
                    return true;
                }
                let activity = s.cell.activity();
                let mut last_change = s.last_change.lock().unwrap_or_else(|p| p.into_inner());
                if s.last_activity.swap(activity, Relaxed) != activity {
                    *last_change = now;
                    return true;
                }
                let idle = now.saturating_duration_since(*last_change) >= timeout;
                if idle && s.cell.unreferenced() {
                    s.family.series.fetch_sub(1, Relaxed);
                    removed += 1;
                    false
                } else {
                    true
                }
            });
        }
        self.stats.expired.fetch_add(removed as u64, Relaxed);
        removed
    }

    /// Series per family.
    #[cfg(test)]
    pub(crate) fn series_count(&self, name: &str) -> usize {
        self.families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map_or(0, |f| f.series.load(Relaxed))
    }
}

/// A series as seen by the renderer.
#[derive(Debug)]
pub(crate) struct SeriesView {
    pub(crate) family: Arc<Family>,
    pub(crate) labels: String,
    pub(crate) pairs: Arc<[(String, String)]>,
    pub(crate) cell: Cell,
}

fn unit_suffix(unit: Unit) -> Option<&'static str> {
    match unit {
        Unit::Seconds | Unit::Milliseconds | Unit::Microseconds | Unit::Nanoseconds => {
            Some("_seconds")
        }
        Unit::Bytes | Unit::Kibibytes | Unit::Mebibytes | Unit::Gibibytes | Unit::Tebibytes => {
            Some("_bytes")
        }
        Unit::Percent => Some("_ratio"),
        _ => None,
    }
}

/// `k="v",…` with Prometheus escaping of values (`\`, `"`, newline).
pub(crate) fn render_labels<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in labels {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(&mut out, v);
        out.push('"');
    }
    out
}

pub(crate) fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The SDK's `metrics` recorder. Install it with [`init`](crate::init) (globally), or use it
/// scoped: `metrics::with_local_recorder(&recorder, || …)` — what the testing crate does.
///
/// Every metric is checked once, when its key is first seen: names against the naming rules
/// (`stockbot_` namespace, base units, `_total` on counters), labels against the cardinality
/// classes (ids are stripped), and the number of label sets against the cap (extra ones go to
/// one overflow series). A refused metric gets a no-op handle, one error record and a count
/// in `stockbot_telemetry_metric_rejected_total{reason}`.
#[derive(Debug, Clone)]
pub struct MetricsRecorder {
    pub(crate) registry: Arc<MetricsRegistry>,
}

impl MetricsRecorder {
    /// The current exposition in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        crate::export::exposition::render(
            &self.registry,
            &crate::export::exposition::Extra::default(),
            crate::export::exposition::Format::Text,
        )
    }
}

impl Recorder for MetricsRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry.describe(key.as_str(), unit, &description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry.describe(key.as_str(), unit, &description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.registry.describe(key.as_str(), unit, &description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        match self.registry.cell(key, MetricKind::Counter) {
            Some(Cell::Counter(c)) => Counter::from_arc(c),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        match self.registry.cell(key, MetricKind::Gauge) {
            Some(Cell::Gauge(g)) => Gauge::from_arc(g),
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        match self.registry.cell(key, MetricKind::Histogram) {
            Some(Cell::Histogram(h)) => Histogram::from_arc(h),
            _ => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(cap: usize) -> MetricsRecorder {
        MetricsRecorder {
            registry: Arc::new(MetricsRegistry::new(RegistrySettings {
                namespace: "stockbot".into(),
                max_series_per_metric: cap,
                idle_timeout: Some(Duration::from_secs(60)),
                default_buckets: vec![0.001, 0.01, 0.1, 1.0],
                buckets: HashMap::new(),
                redact_patterns: true,
            })),
        }
    }

    #[test]
    fn bad_names_get_noop_handles_and_are_counted() {
        let r = registry(10);
        metrics::with_local_recorder(&r, || {
            metrics::counter!("stockbot_orders").increment(1);
            metrics::histogram!("stockbot_latency_ms").record(1.0);
            metrics::counter!("orders_total").increment(1);
            metrics::counter!("stockbot_orders_total", "__bad" => "x").increment(1);
            metrics::counter!("stockbot_ok_total").increment(2);
        });
        let rejected = r.registry.stats.rejected.lock().unwrap().clone();
        assert_eq!(rejected[&Rejection::CounterSuffix], 1);
        assert_eq!(rejected[&Rejection::NonBaseUnit], 1);
        assert_eq!(rejected[&Rejection::MissingNamespace], 1);
        assert_eq!(rejected[&Rejection::InvalidLabel], 1);
        assert_eq!(r.registry.snapshot().len(), 1);
    }

    #[test]
    fn ids_are_stripped_and_the_cap_overflows_into_one_series() {
        let r = registry(3);
        metrics::with_local_recorder(&r, || {
            for i in 0..100_000 {
                metrics::counter!("stockbot_orders_submitted_total", "venue" => format!("V{i}"), "cl_ord_id" => format!("C{i}")).increment(1);
            }
        });
        let snap = r.registry.snapshot();
        assert_eq!(snap.len(), 4, "3 series + overflow");
        assert_eq!(
            r.registry.series_count("stockbot_orders_submitted_total"),
            3
        );
        let overflow = snap
            .iter()
            .find(|s| s.labels.contains(OVERFLOW_LABEL))
            .unwrap();
        match &overflow.cell {
            Cell::Counter(c) => assert_eq!(c.value.load(Relaxed), 100_000 - 3),
            other => panic!("{other:?}"),
        }
        assert!(snap.iter().all(|s| !s.labels.contains("cl_ord_id")));
        assert_eq!(
            r.registry.stats.labels_refused.lock().unwrap()["cl_ord_id"],
            100_000
        );
    }

    #[test]
    fn secrets_in_label_values_are_redacted_once_per_series() {
        let r = registry(100);
        let card = "4111 1111 1111 1111";
        let token = "ghp_R8nT2vQ9xLm4Kp7Zw3Yc6Hb1Jd5Fs0Ga8Ue2";
        metrics::with_local_recorder(&r, || {
            for _ in 0..3 {
                metrics::counter!("stockbot_logins_total", "venue" => "XNAS", "reason" => format!("card {card} declined")).increment(1);
            }
            // Two different secrets of a kind land in one series.
            metrics::counter!("stockbot_logins_total", "venue" => "XNAS", "reason" => "card 5500005555555559 declined").increment(1);
            metrics::counter!("stockbot_fetches_total", "x_api_key" => "plain-but-secret", "endpoint" => format!("https://bot:pw123@h/{token}")).increment(2);
            metrics::gauge!("stockbot_limit_ratio", "venue" => "XNAS").set(0.5);
        });
        let text = r.render();
        for leaked in [card, "5500005555555559", token, "plain-but-secret", "pw123"] {
            assert!(!text.contains(leaked), "{leaked} in\n{text}");
        }
        let snap = r.registry.snapshot();
        let logins: Vec<_> = snap
            .iter()
            .filter(|s| s.family.name == "stockbot_logins_total")
            .collect();
        assert_eq!(logins.len(), 1, "one series: {logins:?}");
        assert_eq!(
            logins[0].labels,
            r#"venue="XNAS",reason="card [REDACTED:card] declined""#
        );
        match &logins[0].cell {
            Cell::Counter(c) => assert_eq!(c.value.load(Relaxed), 4),
            other => panic!("{other:?}"),
        }
        let fetches = snap
            .iter()
            .find(|s| s.family.name == "stockbot_fetches_total")
            .unwrap();
        assert_eq!(
            &*fetches.pairs,
            [
                ("x_api_key".to_owned(), "[REDACTED]".to_owned()),
                (
                    "endpoint".to_owned(),
                    "https://bot:[REDACTED:url_password]@h/[REDACTED:api_key]".to_owned()
                ),
            ]
        );
        // Each registration that carried a secret counts its secrets.
        assert_eq!(r.registry.stats.label_redactions.load(Relaxed), 3 + 1 + 3);
        let clean = snap
            .iter()
            .find(|s| s.family.name == "stockbot_limit_ratio")
            .unwrap();
        assert_eq!(clean.labels, r#"venue="XNAS""#);
    }

    #[test]
    fn label_value_patterns_follow_the_redaction_setting() {
        let mut r = registry(100);
        let mut settings = r.registry.settings.clone();
        settings.redact_patterns = false;
        r.registry = Arc::new(MetricsRegistry::new(settings));
        metrics::with_local_recorder(&r, || {
            metrics::counter!("stockbot_logins_total", "reason" => "4111111111111111", "session_token" => "abc").increment(1);
        });
        let text = r.render();
        assert!(text.contains(r#"reason="4111111111111111""#), "{text}");
        assert!(text.contains(r#"session_token="[REDACTED]""#), "{text}");
    }

    #[test]
    fn histograms_bucket_with_le_semantics_and_ignore_nan() {
        let r = registry(10);
        let h = metrics::with_local_recorder(&r, || {
            metrics::histogram!("stockbot_ack_latency_seconds")
        });
        for v in [0.0005, 0.001, 0.002, 5.0, f64::NAN, f64::INFINITY] {
            h.record(v);
        }
        let snap = r.registry.snapshot();
        let Cell::Histogram(cell) = &snap[0].cell else {
            panic!()
        };
        let counts: Vec<u64> = cell.buckets.iter().map(|b| b.load(Relaxed)).collect();
        assert_eq!(counts, vec![2, 1, 0, 0, 2]);
        assert_eq!(cell.count.load(Relaxed), 5);
        assert_eq!(r.registry.stats.invalid_values.load(Relaxed), 1);
    }

    #[test]
    fn counters_never_go_down_and_infinities_land_in_the_outer_buckets() {
        let r = registry(10);
        let (c, h) = metrics::with_local_recorder(&r, || {
            (
                metrics::counter!("stockbot_seq_total"),
                metrics::histogram!("stockbot_skew_seconds"),
            )
        });
        // The facade has no negative increment (u64); a smaller absolute value is ignored.
        c.absolute(10);
        c.absolute(3);
        c.increment(1);
        h.record(f64::NEG_INFINITY);
        h.record(f64::INFINITY);
        let snap = r.registry.snapshot();
        let counter = snap
            .iter()
            .find(|s| s.family.name == "stockbot_seq_total")
            .unwrap();
        let Cell::Counter(cell) = &counter.cell else {
            panic!()
        };
        assert_eq!(cell.value.load(Relaxed), 11);
        let hist = snap
            .iter()
            .find(|s| s.family.name == "stockbot_skew_seconds")
            .unwrap();
        let Cell::Histogram(cell) = &hist.cell else {
            panic!()
        };
        assert_eq!(cell.buckets.first().unwrap().load(Relaxed), 1);
        assert_eq!(cell.buckets.last().unwrap().load(Relaxed), 1);
    }

    #[test]
    fn exposition_reserved_labels_duplicates_and_the_sdk_prefix_are_refused() {
        let r = registry(10);
        metrics::with_local_recorder(&r, || {
            metrics::histogram!("stockbot_x_seconds", "le" => "a").record(1.0);
            metrics::counter!("stockbot_y_total", "venue" => "a", "venue" => "b").increment(1);
            metrics::counter!("stockbot_telemetry_emitted_total").increment(1);
        });
        let rejected = r.registry.stats.rejected.lock().unwrap().clone();
        assert_eq!(rejected[&Rejection::InvalidLabel], 2);
        assert_eq!(rejected[&Rejection::InvalidName], 1);
        assert!(r.registry.snapshot().is_empty());
    }

    #[test]
    fn a_gauge_and_a_counter_may_not_share_an_openmetrics_family() {
        let r = registry(10);
        metrics::with_local_recorder(&r, || {
            metrics::counter!("stockbot_orders_total").increment(1);
            metrics::gauge!("stockbot_orders").set(1.0);
            metrics::histogram!("stockbot_fills_seconds").record(1.0);
            metrics::counter!("stockbot_fills_seconds_total").increment(1);
        });
        assert_eq!(
            r.registry.stats.rejected.lock().unwrap()[&Rejection::KindConflict],
            2
        );
        assert_eq!(r.registry.snapshot().len(), 2);
    }

    #[test]
    fn the_cap_holds_under_concurrent_registration() {
        let r = registry(20);
        std::thread::scope(|s| {
            for t in 0..8 {
                let r = &r;
                s.spawn(move || {
                    metrics::with_local_recorder(r, || {
                        for i in 0..200 {
                            metrics::counter!("stockbot_z_total", "venue" => format!("{t}-{i}"))
                                .increment(1);
                        }
                    });
                });
            }
        });
        assert_eq!(r.registry.series_count("stockbot_z_total"), 20);
        assert_eq!(r.registry.snapshot().len(), 21);
    }

    #[test]
    fn kind_conflicts_and_unit_mismatches_are_refused() {
        let r = registry(10);
        metrics::with_local_recorder(&r, || {
            metrics::counter!("stockbot_fills_total").increment(1);
            metrics::gauge!("stockbot_fills_total").set(1.0);
            metrics::describe_histogram!("stockbot_ack_latency_bytes", Unit::Seconds, "oops");
            metrics::histogram!("stockbot_ack_latency_bytes").record(1.0);
        });
        let rejected = r.registry.stats.rejected.lock().unwrap().clone();
        assert_eq!(rejected[&Rejection::KindConflict], 1);
        assert_eq!(rejected[&Rejection::UnitMismatch], 1);
    }

    #[test]
    fn idle_series_expire_unless_a_handle_is_held() {
        let r = registry(10);
        let held = metrics::with_local_recorder(&r, || {
            metrics::counter!("stockbot_a_total", "venue" => "X").increment(1);
            metrics::counter!("stockbot_beta_total")
        });
        let t0 = Instant::now();
        assert_eq!(r.registry.expire_idle(t0), 0);
        assert_eq!(r.registry.expire_idle(t0 + Duration::from_secs(61)), 1);
        assert_eq!(r.registry.series_count("stockbot_a_total"), 0);
        held.increment(1);
        assert_eq!(r.registry.snapshot().len(), 1);
    }
}
