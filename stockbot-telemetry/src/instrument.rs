//! Run-time support of `#[instrument_trade]`: the call guard that records the RED metrics and
//! the outcome, and the outcome classification of return values.

use std::time::Instant;

/// Gives an error type a low-cardinality class for `#[instrument_trade]`'s `error_kind` label
/// and the span's `error.kind` (`"timeout"`, `"rejected"`, `"risk_limit"`, …: a small fixed
/// set, never a message or an id).
///
/// Errors that do not implement it are classed `"error"`.
///
/// ```
/// enum OrderError { Timeout, Rejected(String) }
///
/// impl stockbot_telemetry::TradeErrorKind for OrderError {
///     fn error_kind(&self) -> &'static str {
///         match self {
///             OrderError::Timeout => "timeout",
///             OrderError::Rejected(_) => "rejected",
///         }
///     }
/// }
/// ```
pub trait TradeErrorKind {
    /// The class of this error.
    fn error_kind(&self) -> &'static str;
}

/// The outcomes, in the order of [`Keys`]' arrays.
pub const OUTCOMES: [&str; 4] = ["ok", "error", "panic", "cancelled"];

/// The metric keys of one label set, built once: per call there is no label vector, no key
/// allocation and no hashing of label strings.
#[derive(Debug)]
pub struct Keys {
    /// `<metric>_calls_total{operation, <labels>, outcome}`, by [`OUTCOMES`] index.
    pub calls: [metrics::Key; 4],
    /// `<metric>_duration_seconds{operation, <labels>, outcome}`, by [`OUTCOMES`] index.
    pub duration: [metrics::Key; 4],
}

/// A run-time label set of a site (the values, as formatted) and its keys.
#[derive(Debug)]
struct LabelSet {
    values: Box<[Box<str>]>,
    keys: Keys,
    /// `operation` (and `slo`) and the run-time labels, for the error counter's key.
    base: Vec<metrics::Label>,
}

/// Label sets cached per site; beyond this, new sets are built per call (still correct; the
/// registry's series cap bounds the series).
const MAX_LABEL_SETS: usize = 256;

static METADATA: metrics::Metadata<'static> = metrics::Metadata::new(
    "stockbot_telemetry::instrument",
    metrics::Level::INFO,
    Some("stockbot_telemetry::instrument"),
);

/// One instrumented function (a `static` in the expansion).
#[derive(Debug)]
pub struct Site {
    /// The `operation` label and span field.
    pub operation: &'static str,
    /// `<metric>_calls_total{operation, outcome, ...}`.
    pub calls: &'static str,
    /// `<metric>_errors_total{operation, error_kind, ...}`.
    pub errors: &'static str,
    /// `<metric>_duration_seconds{operation, outcome, ...}`.
    pub duration: &'static str,
    /// The keys, when the site has no run-time labels (built at compile time).
    pub keys: Option<&'static Keys>,
    /// Names of the run-time labels, in the order of the values given to
    /// [`CallGuard::start`].
    pub label_names: &'static [&'static str],
    /// The SLO the function is tied to (`slo = "…"`): its series carry `slo="<name>"`.
    pub slo: Option<&'static str>,
    /// Label sets seen, with their keys.
    #[doc(hidden)]
    pub cache: std::sync::RwLock<Vec<std::sync::Arc<LabelSetHandle>>>,
}

/// A function tied to an SLO by `#[instrument_trade(slo = "…")]`, registered when the
/// program is linked, so that [`init`](crate::init) can refuse SLO names nobody declared.
#[derive(Debug)]
pub struct SloTie {
    /// The SLO's name.
    pub slo: &'static str,
    /// `module::path::function`.
    pub function: &'static str,
    /// Where the attribute is.
    pub file: &'static str,
    /// Its line.
    pub line: u32,
}

inventory::collect!(SloTie);

/// Every function of the program tied to an SLO.
pub(crate) fn slo_ties() -> impl Iterator<Item = &'static SloTie> {
    inventory::iter::<SloTie>.into_iter()
}

/// An opaque cached label set.
#[derive(Debug)]
pub struct LabelSetHandle(LabelSet);

impl Site {
    /// A site; `keys` when it has no run-time labels.
    pub const fn new(
        operation: &'static str,
        names: [&'static str; 3],
        keys: Option<&'static Keys>,
        label_names: &'static [&'static str],
        slo: Option<&'static str>,
    ) -> Self {
        Site {
            operation,
            calls: names[0],
            errors: names[1],
            duration: names[2],
            keys,
            label_names,
            slo,
            cache: std::sync::RwLock::new(Vec::new()),
        }
    }

    /// `operation` (and `slo`): the labels every series of the site starts with.
    fn fixed_labels(&self) -> Vec<metrics::Label> {
        let mut labels = Vec::with_capacity(self.label_names.len() + 3);
        labels.push(metrics::Label::from_static_parts(
            "operation",
            self.operation,
        ));
        if let Some(slo) = self.slo {
            labels.push(metrics::Label::from_static_parts("slo", slo));
        }
        labels
    }

    /// The cached label set of `values`, built and cached on first use. The values are
    /// formatted on the stack (no allocation) unless they are long.
    fn label_set(
        &'static self,
        values: &[&dyn std::fmt::Display],
    ) -> std::sync::Arc<LabelSetHandle> {
        let mut buf = StackText::default();
        let mut ends: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
        for v in values {
            let _ = std::fmt::Write::write_fmt(&mut buf, format_args!("{v}"));
            ends.push(buf.len());
        }
        let text = buf.as_str();
        let segment = |i: usize| &text[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
        let matches = |set: &LabelSet| {
            set.values.len() == ends.len()
                && set
                    .values
                    .iter()
                    .enumerate()
                    .all(|(i, v)| **v == *segment(i))
        };
        let find = |cache: &[std::sync::Arc<LabelSetHandle>]| {
            cache
                .iter()
                .find(|s| matches(&s.0))
                .map(std::sync::Arc::clone)
        };
        if let Some(found) = find(&self.cache.read().unwrap_or_else(|p| p.into_inner())) {
            return found;
        }
        let owned: Vec<Box<str>> = (0..ends.len()).map(|i| segment(i).into()).collect();
        let mut base = self.fixed_labels();
        for (name, value) in self.label_names.iter().zip(&owned) {
            base.push(metrics::Label::new(
                *name,
                std::sync::Arc::<str>::from(&**value),
            ));
        }
        let key = |name: &'static str, outcome: &'static str| {
            let mut labels = base.clone();
            labels.push(metrics::Label::from_static_parts("outcome", outcome));
            metrics::Key::from_parts(name, labels)
        };
        let set = std::sync::Arc::new(LabelSetHandle(LabelSet {
            keys: Keys {
                calls: OUTCOMES.map(|o| key(self.calls, o)),
                duration: OUTCOMES.map(|o| key(self.duration, o)),
            },
            values: owned.into_boxed_slice(),
            base,
        }));
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        // Another thread may have added it meanwhile.
        if let Some(found) = find(&cache) {
            return found;
        }
        if cache.len() < MAX_LABEL_SETS {
            cache.push(std::sync::Arc::clone(&set));
        }
        set
    }
}

/// Text formatted on the stack, spilling to the heap past 128 bytes.
struct StackText {
    bytes: [u8; 128],
    len: usize,
    heap: Option<String>,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            bytes: [0; 128],
            len: 0,
            heap: None,
        }
    }
}

impl StackText {
    fn len(&self) -> usize {
        self.heap.as_ref().map_or(self.len, String::len)
    }

    fn as_str(&self) -> &str {
        match &self.heap {
            Some(s) => s,
            // Only whole `str`s are copied in, so this never fails.
            None => std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default(),
        }
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if let Some(heap) = &mut self.heap {
            heap.push_str(s);
        } else if self.len + s.len() <= self.bytes.len() {
            self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut heap = String::with_capacity(self.len + s.len() + 64);
            heap.push_str(self.as_str());
            heap.push_str(s);
            self.heap = Some(heap);
        }
        Ok(())
    }
}

/// How a call ended: `"ok"`, `"error"`, `"panic"` or `"cancelled"`, and the error's class.
pub type Outcome = (&'static str, Option<&'static str>);

/// Records one call's outcome when finished, or — dropped unfinished — `panic` while the
/// thread unwinds and `cancelled` otherwise (a future dropped before completion).
#[derive(Debug)]
pub struct CallGuard<'a> {
    site: &'static Site,
    labels: Option<std::sync::Arc<LabelSetHandle>>,
    span: &'a tracing::Span,
    start: Instant,
    done: bool,
}

impl<'a> CallGuard<'a> {
    /// Starts timing a call of `site` inside `span`, with the values of its run-time labels
    /// (in the order of `site.label_names`).
    pub fn start(
        site: &'static Site,
        span: &'a tracing::Span,
        values: &[&dyn std::fmt::Display],
    ) -> Self {
        let labels = (site.keys.is_none()).then(|| site.label_set(values));
        CallGuard {
            site,
            labels,
            span,
            start: Instant::now(),
            done: false,
        }
    }

    /// Records the outcome of a call that returned.
    ///
    /// `message` (with the `err` option: the error's `Display`) goes into the error record.
    pub fn finish(mut self, outcome: Outcome, message: Option<&dyn std::fmt::Display>) {
        self.done = true;
        self.record(outcome, false, message);
    }

    /// As [`CallGuard::finish`], called while the span is entered (saves entering it again to
    /// give the duration its exemplar).
    pub fn finish_entered(mut self, outcome: Outcome, message: Option<&dyn std::fmt::Display>) {
        self.done = true;
        self.record(outcome, true, message);
    }

    fn record(
        &mut self,
        (outcome, kind): Outcome,
        entered: bool,
        message: Option<&dyn std::fmt::Display>,
    ) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let site = self.site;
        let set = self.labels.as_deref().map(|s| &s.0);
        let Some(keys) = site.keys.or(set.map(|s| &s.keys)) else {
            return;
        };
        let i = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(1);
        metrics::with_recorder(|r| {
            r.register_counter(&keys.calls[i], &METADATA).increment(1);
            // Inside the span, so a sampled call's duration carries an exemplar.
            let histogram = || {
                r.register_histogram(&keys.duration[i], &METADATA)
                    .record(elapsed);
            };
            if entered {
                histogram();
            } else {
                self.span.in_scope(histogram);
            }
        });
        if outcome == "ok" {
            return;
        }
        let kind = kind.unwrap_or(outcome);
        let mut labels = match set {
            Some(s) => s.base.clone(),
            None => site.fixed_labels(),
        };
        labels.push(metrics::Label::from_static_parts("error_kind", kind));
        let errors = metrics::Key::from_parts(site.errors, labels);
        metrics::with_recorder(|r| r.register_counter(&errors, &METADATA).increment(1));
        // `error.kind` also gives the span its error status.
        self.span.record("error.kind", kind);
        match message {
            Some(message) => tracing::error!(
                parent: self.span,
                operation = site.operation,
                error.kind = kind,
                error.message = %message,
                outcome = "failure",
                "{} failed: {}",
                site.operation,
                message
            ),
            None => tracing::error!(
                parent: self.span,
                operation = site.operation,
                error.kind = kind,
                outcome = "failure",
                "{} failed: {}",
                site.operation,
                kind
            ),
        }
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let outcome = if std::thread::panicking() {
                "panic"
            } else {
                "cancelled"
            };
            self.record((outcome, None), false, None);
        }
    }
}

/// Wraps a return value for outcome classification (autoref specialisation: the most specific
/// of [`KindViaTrait`], [`KindViaResult`], [`KindOk`] applies).
#[derive(Debug)]
pub struct Wrap<'a, T>(pub &'a T);

/// `Result<_, E>` where `E: TradeErrorKind`: the error's own class.
pub trait KindViaTrait {
    /// The outcome.
    fn __stockbot_outcome(&self) -> Outcome;
}

impl<T, E: TradeErrorKind> KindViaTrait for &&Wrap<'_, Result<T, E>> {
    fn __stockbot_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => ("ok", None),
            Err(e) => ("error", Some(e.error_kind())),
        }
    }
}

/// Any other `Result`: class `"error"`.
pub trait KindViaResult {
    /// The outcome.
    fn __stockbot_outcome(&self) -> Outcome;
}

impl<T, E> KindViaResult for &Wrap<'_, Result<T, E>> {
    fn __stockbot_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => ("ok", None),
            Err(_) => ("error", Some("error")),
        }
    }
}

/// Anything else (plain values, `Option`, `()`): `ok`.
pub trait KindOk {
    /// The outcome.
    fn __stockbot_outcome(&self) -> Outcome;
}

impl<T> KindOk for Wrap<'_, T> {
    fn __stockbot_outcome(&self) -> Outcome {
        ("ok", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Timeout;
    impl TradeErrorKind for Timeout {
        fn error_kind(&self) -> &'static str {
            "timeout"
        }
    }

    #[test]
    fn long_values_and_more_label_sets_than_cached_are_all_recorded() {
        static SITE: Site = Site::new(
            "op",
            ["t_calls_total", "t_errors_total", "t_duration_seconds"],
            None,
            &["venue"],
            None,
        );
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let span = tracing::Span::none();
            for i in 0..300 {
                let venue = format!("{}{i}", "x".repeat(if i == 0 { 200 } else { 1 }));
                CallGuard::start(&SITE, &span, &[&venue]).finish(("ok", None), None);
            }
            let again = "x1".to_owned();
            CallGuard::start(&SITE, &span, &[&again]).finish(("error", Some("timeout")), None);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let calls: Vec<_> = snapshot
            .iter()
            .filter(|(k, ..)| k.key().name() == "t_calls_total")
            .collect();
        assert_eq!(calls.len(), 301, "300 ok series and one error series");
        assert!(calls.iter().any(|(k, ..)| {
            k.key()
                .labels()
                .any(|l| l.key() == "venue" && l.value().len() == 201)
        }));
        assert!(snapshot.iter().any(|(k, ..)| {
            k.key().name() == "t_errors_total"
                && k.key().labels().any(|l| l.value() == "timeout")
                && k.key().labels().any(|l| l.value() == "x1")
        }));
        assert_eq!(SITE.cache.read().unwrap().len(), MAX_LABEL_SETS);
    }

    #[test]
    fn label_values_are_compared_one_by_one() {
        static SITE: Site = Site::new(
            "op",
            ["u_calls_total", "u_errors_total", "u_duration_seconds"],
            None,
            &["venue", "strategy"],
            None,
        );
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let span = tracing::Span::none();
            // Joined, both pairs would read "a\u{1f}b\u{1f}c".
            for (venue, strategy) in [("a\u{1f}b", "c"), ("a", "b\u{1f}c"), ("a\u{1f}b", "c")] {
                CallGuard::start(&SITE, &span, &[&venue, &strategy]).finish(("ok", None), None);
            }
        });
        let series: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == "u_calls_total")
            .collect();
        assert_eq!(series.len(), 2, "two distinct label sets");
        assert_eq!(SITE.cache.read().unwrap().len(), 2);
    }

    #[test]
    #[allow(
        clippy::needless_borrow,
        reason = "the borrows select the specialisation"
    )]
    fn outcomes_are_classified_by_the_most_specific_rule() {
        let with_kind: Result<u8, Timeout> = Err(Timeout);
        assert_eq!(
            (&&&Wrap(&with_kind)).__stockbot_outcome(),
            ("error", Some("timeout"))
        );
        let plain_err: Result<u8, String> = Err("boom".into());
        assert_eq!(
            (&&&Wrap(&plain_err)).__stockbot_outcome(),
            ("error", Some("error"))
        );
        let ok: Result<u8, String> = Ok(1);
        assert_eq!((&&&Wrap(&ok)).__stockbot_outcome(), ("ok", None));
        let none: Option<u8> = None;
        assert_eq!((&&&Wrap(&none)).__stockbot_outcome(), ("ok", None));
        assert_eq!((&&&Wrap(&42)).__stockbot_outcome(), ("ok", None));
    }
}
