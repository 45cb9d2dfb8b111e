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

/// Metric names and the operation of one instrumented function (a `static` in the expansion).
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
}

/// How a call ended: `"ok"`, `"error"`, `"panic"` or `"cancelled"`, and the error's class.
pub type Outcome = (&'static str, Option<&'static str>);

/// Records one call's outcome when finished, or — dropped unfinished — `panic` while the
/// thread unwinds and `cancelled` otherwise (a future dropped before completion).
#[derive(Debug)]
pub struct CallGuard {
    site: &'static Site,
    labels: Vec<metrics::Label>,
    span: tracing::Span,
    start: Instant,
    done: bool,
}

impl CallGuard {
    /// Starts timing a call of `site` inside `span`, with its low-cardinality labels.
    pub fn start(site: &'static Site, span: &tracing::Span, labels: Vec<metrics::Label>) -> Self {
        CallGuard {
            site,
            labels,
            span: span.clone(),
            start: Instant::now(),
            done: false,
        }
    }

    /// Records the outcome of a call that returned.
    pub fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.record(outcome);
    }

    fn record(&mut self, (outcome, kind): Outcome) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let site = self.site;
        let mut labels = Vec::with_capacity(self.labels.len() + 2);
        labels.push(metrics::Label::from_static_parts(
            "operation",
            site.operation,
        ));
        labels.extend(self.labels.iter().cloned());
        let base = labels.len();
        labels.push(metrics::Label::from_static_parts("outcome", outcome));
        metrics::counter!(site.calls, labels.iter()).increment(1);
        // Inside the span, so a sampled call's duration carries an exemplar.
        self.span.in_scope(|| {
            metrics::histogram!(site.duration, labels.iter()).record(elapsed);
        });
        if outcome == "ok" {
            return;
        }
        let kind = kind.unwrap_or(outcome);
        labels.truncate(base);
        labels.push(metrics::Label::from_static_parts("error_kind", kind));
        metrics::counter!(site.errors, labels.iter()).increment(1);
        self.span.record("otel.status_code", "ERROR");
        self.span.record("error.kind", kind);
        tracing::error!(
            parent: &self.span,
            operation = site.operation,
            error.kind = kind,
            outcome,
            "{} failed: {}",
            site.operation,
            kind
        );
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.done {
            let outcome = if std::thread::panicking() {
                "panic"
            } else {
                "cancelled"
            };
            self.record((outcome, None));
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
