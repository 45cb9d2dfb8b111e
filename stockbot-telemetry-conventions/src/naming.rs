//! Metric and label naming rules (Prometheus conventions plus stockbot's own).

use std::fmt;

use crate::schema::{Cardinality, fields, lookup};

/// Namespace every metric name must start with (followed by `_`) unless
/// configured otherwise.
pub const DEFAULT_NAMESPACE: &str = "stockbot";

/// Unit suffixes allowed in metric names: base units only.
pub const BASE_UNIT_SUFFIXES: &[&str] = &["_seconds", "_bytes", "_bps", "_ratio"];

/// Kind of a metric instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A monotonically increasing count; its name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution of observations, exposed as `_bucket`, `_count` and
    /// `_sum` series.
    Histogram,
}

impl MetricKind {
    /// Lowercase name of the kind: `"counter"`, `"gauge"` or `"histogram"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Why a metric or label name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NamingError {
    /// The name is empty.
    Empty,
    /// The name contains a character outside `[a-zA-Z_][a-zA-Z0-9_]*`
    /// (`:` is not allowed either: it is reserved for recording rules).
    InvalidChar {
        /// The offending name.
        name: String,
        /// Index of the offending character. Every character before it is
        /// ASCII, so this is both a byte and a character index.
        index: usize,
        /// The offending character.
        ch: char,
    },
    /// The name starts with `__`, which is reserved for Prometheus' own use.
    Reserved {
        /// The offending name.
        name: String,
    },
    /// The metric name does not start with `<namespace>_`.
    MissingNamespace {
        /// The offending metric name.
        name: String,
        /// The namespace it should start with.
        namespace: String,
    },
    /// A counter's name does not end in `_total`.
    CounterWithoutTotal {
        /// The offending metric name.
        name: String,
    },
    /// A gauge's or histogram's name ends in `_total`, which is reserved for
    /// counters.
    TotalOnNonCounter {
        /// The offending metric name.
        name: String,
        /// The kind of the metric.
        kind: MetricKind,
    },
    /// The name uses a unit that is not a base unit (e.g. `_ms` instead of
    /// `_seconds`).
    NonBaseUnit {
        /// The offending metric name.
        name: String,
        /// The non-base unit found, with its leading underscore (e.g. `"_ms"`).
        found: String,
        /// The base unit to use instead (e.g. `"_seconds"`; for time, sizes and
        /// ratios one of [`BASE_UNIT_SUFFIXES`]).
        use_instead: &'static str,
    },
    /// A histogram's or gauge's name ends in `_bucket`, `_count` or `_sum`,
    /// which belong to the series a histogram exposes (`promtool` flags them
    /// on any other kind).
    ReservedSuffix {
        /// The offending metric name.
        name: String,
        /// The suffix found, with its leading underscore.
        suffix: &'static str,
    },
    /// The name has a `_<abbreviation>_` word (or last word) that `promtool`
    /// reads as an abbreviated unit: `s`, `ms`, `us`, `ns`, `sec`, `b`, `kb`,
    /// `mb`, `gb`, `tb`, `pb`, `m`, `h`, `d`.
    AbbreviatedUnit {
        /// The offending metric name.
        name: String,
        /// The word found, with its leading underscore (e.g. `"_h"`).
        found: &'static str,
    },
    /// The name is camelCase (a lowercase letter followed by an uppercase
    /// one); Prometheus names are snake_case.
    CamelCase {
        /// The offending metric or label name.
        name: String,
    },
    /// The metric's name repeats its own type (`_counter`, `_gauge`,
    /// `_histogram` as a word).
    TypeInName {
        /// The offending metric name.
        name: String,
        /// The kind of the metric.
        kind: MetricKind,
    },
}

impl fmt::Display for NamingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str(
                "metric or label name is empty: names must match `[a-zA-Z_][a-zA-Z0-9_]*`",
            ),
            Self::InvalidChar { name, index, ch } => {
                write!(
                    f,
                    "name `{name}` has invalid character `{}` at index {index}: \
                     metric and label names must match `[a-zA-Z_][a-zA-Z0-9_]*`",
                    ch.escape_debug()
                )?;
                if matches!(ch, '.' | '-' | ':' | ' ' | '/') {
                    f.write_str(" (use `_` as the separator)")?;
                } else if *index == 0 && ch.is_ascii_digit() {
                    f.write_str(" (a name cannot start with a digit)")?;
                }
                Ok(())
            }
            Self::Reserved { name } => write!(
                f,
                "name `{name}` starts with `__`, which is reserved for Prometheus internal use: \
                 remove the leading underscores"
            ),
            Self::MissingNamespace { name, namespace } => write!(
                f,
                "metric `{name}` is missing the namespace prefix: rename it to start with `{namespace}_`"
            ),
            Self::CounterWithoutTotal { name } => write!(
                f,
                "counter `{name}` must end in `_total`: rename it to `{name}_total`"
            ),
            Self::TotalOnNonCounter { name, kind } => write!(
                f,
                "{} `{name}` ends in `_total`, which is reserved for counters: \
                 remove the suffix or make the metric a counter",
                kind.name()
            ),
            Self::NonBaseUnit {
                name,
                found,
                use_instead,
            } => {
                let stem = name.strip_suffix("_total").unwrap_or(name);
                let position = if stem.ends_with(found) {
                    "unit suffix"
                } else {
                    "unit"
                };
                write!(
                    f,
                    "metric `{name}` uses {position} `{found}`: use base unit `{use_instead}` ({})",
                    base_unit_hint(use_instead)
                )
            }
            Self::ReservedSuffix { name, suffix } => write!(
                f,
                "metric `{name}` ends in `{suffix}`, which belongs to the `_bucket`, `_count` \
                 and `_sum` series a histogram exposes: rename it without the suffix"
            ),
            Self::AbbreviatedUnit { name, found } => write!(
                f,
                "metric `{name}` has the word `{found}`, an abbreviated unit to Prometheus' linter: \
                 spell the unit out in its base unit (`_seconds`, `_bytes`, `_meters`) or use \
                 another word"
            ),
            Self::CamelCase { name } => write!(
                f,
                "name `{name}` is camelCase: Prometheus names are snake_case (`a_b`, not `aB`)"
            ),
            Self::TypeInName { name, kind } => write!(
                f,
                "metric `{name}` repeats its type `{}` in its name: remove the word",
                kind.name()
            ),
        }
    }
}

impl std::error::Error for NamingError {}

/// How to record a value in the given base unit.
fn base_unit_hint(base: &str) -> &'static str {
    match base {
        "_seconds" => "record seconds as f64",
        "_bytes" => "record bytes",
        "_ratio" => "record a ratio between 0 and 1, not a percentage",
        "_bps" => "`_bps` is the basis-points suffix",
        _ => "record the value in the base unit",
    }
}

/// A non-base unit, the base unit replacing it, and whether it is also
/// matched in the middle of a name (as `_<unit>_`).
struct NonBaseUnit {
    found: &'static str,
    base: &'static str,
    mid_name: bool,
}

const fn unit(found: &'static str, base: &'static str) -> NonBaseUnit {
    NonBaseUnit {
        found,
        base,
        mid_name: true,
    }
}

/// Non-base units that are rejected.
///
/// `_us` is only matched here as a suffix (as microseconds); in the middle of
/// a name the linter still reads it as a unit ([`NamingError::AbbreviatedUnit`]).
const NON_BASE_UNITS: &[NonBaseUnit] = &[
    unit("_milliseconds", "_seconds"),
    unit("_millis", "_seconds"),
    unit("_ms", "_seconds"),
    unit("_microseconds", "_seconds"),
    unit("_micros", "_seconds"),
    NonBaseUnit {
        found: "_us",
        base: "_seconds",
        mid_name: false,
    },
    unit("_nanoseconds", "_seconds"),
    unit("_nanos", "_seconds"),
    unit("_ns", "_seconds"),
    unit("_minutes", "_seconds"),
    unit("_hours", "_seconds"),
    unit("_kilobytes", "_bytes"),
    unit("_kb", "_bytes"),
    unit("_megabytes", "_bytes"),
    unit("_mb", "_bytes"),
    unit("_gigabytes", "_bytes"),
    unit("_gb", "_bytes"),
    unit("_bits", "_bytes"),
    unit("_percentage", "_ratio"),
    unit("_percent", "_ratio"),
    unit("_pct", "_ratio"),
    unit("_basis_points", "_bps"),
];

/// Unit words of Prometheus' linter (promlint, behind `promtool check
/// metrics`): base units, and the others with the base unit to use instead.
const PROMLINT_UNITS: &[(&str, Option<&str>)] = &[
    ("amperes", None),
    ("bytes", None),
    ("celsius", None),
    ("grams", None),
    ("joules", None),
    ("kelvin", None),
    ("meters", None),
    ("metres", None),
    ("seconds", None),
    ("volts", None),
    ("minutes", Some("_seconds")),
    ("hours", Some("_seconds")),
    ("days", Some("_seconds")),
    ("weeks", Some("_seconds")),
    ("kelvins", Some("_kelvin")),
    ("fahrenheit", Some("_celsius")),
    ("rankine", Some("_celsius")),
    ("inches", Some("_meters")),
    ("yards", Some("_meters")),
    ("miles", Some("_meters")),
    ("bits", Some("_bytes")),
    ("calories", Some("_joules")),
    ("pounds", Some("_grams")),
    ("ounces", Some("_grams")),
];

/// Prefixes that make any of [`PROMLINT_UNITS`] a non-base unit
/// (`kilobytes`, `millivolts`).
const PROMLINT_PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

/// A word of `name` that is a prefixed or non-base unit to the linter, with
/// the base unit to use.
fn promlint_non_base_unit(name: &str) -> Option<(String, &'static str)> {
    name.split('_').find_map(|word| {
        PROMLINT_UNITS.iter().find_map(|&(unit, base)| {
            let prefix = word.strip_suffix(unit)?;
            let base = match (prefix, base) {
                ("", None) => return None,
                ("", Some(base)) => base,
                (p, b) if PROMLINT_PREFIXES.contains(&p) => b.unwrap_or(match unit {
                    "amperes" => "_amperes",
                    "bytes" => "_bytes",
                    "celsius" => "_celsius",
                    "grams" => "_grams",
                    "joules" => "_joules",
                    "kelvin" => "_kelvin",
                    "meters" | "metres" => "_meters",
                    "volts" => "_volts",
                    _ => "_seconds",
                }),
                _ => return None,
            };
            Some((format!("_{word}"), base))
        })
    })
}

/// Words the linter reads as abbreviated units, with their underscore.
const ABBREVIATION_WORDS: &[&str] = &[
    "_s", "_ms", "_us", "_ns", "_sec", "_b", "_kb", "_mb", "_gb", "_tb", "_pb", "_m", "_h", "_d",
];

/// The first `_<abbreviation>_` word, or `_<abbreviation>` ending, of `name`
/// (lowercased, as the linter compares).
fn abbreviated_unit(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    ABBREVIATION_WORDS
        .iter()
        .copied()
        .find(|w| lower.ends_with(w) || lower.contains(&format!("{w}_")))
}

/// A lowercase ASCII letter followed by an uppercase one (the linter's
/// camelCase test).
fn is_camel_case(name: &str) -> bool {
    name.as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// Checks the Prometheus name syntax shared by metrics and labels.
fn validate_syntax(name: &str) -> Result<(), NamingError> {
    if name.is_empty() {
        return Err(NamingError::Empty);
    }
    let invalid = name.char_indices().find(|&(index, ch)| {
        !(ch == '_' || ch.is_ascii_alphabetic() || (index > 0 && ch.is_ascii_digit()))
    });
    if let Some((index, ch)) = invalid {
        return Err(NamingError::InvalidChar {
            name: name.to_owned(),
            index,
            ch,
        });
    }
    if name.starts_with("__") {
        return Err(NamingError::Reserved {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Whether `name` contains `unit` followed by `_` (a whole `_<unit>_` word).
fn contains_unit_word(name: &str, unit: &str) -> bool {
    name.match_indices(unit)
        .any(|(index, _)| name[index + unit.len()..].starts_with('_'))
}

fn find_non_base_unit(name: &str, kind: MetricKind) -> Option<&'static NonBaseUnit> {
    let stem = match kind {
        MetricKind::Counter => name.strip_suffix("_total").unwrap_or(name),
        MetricKind::Gauge | MetricKind::Histogram => name,
    };
    NON_BASE_UNITS
        .iter()
        .find(|u| stem.ends_with(u.found) || (u.mid_name && contains_unit_word(name, u.found)))
}

/// Validates a metric name for an instrument of kind `kind`.
///
/// Checks, in this order: [`NamingError::Empty`], [`NamingError::InvalidChar`]
/// (`[a-zA-Z_][a-zA-Z0-9_]*`), [`NamingError::Reserved`] (leading `__`),
/// [`NamingError::CamelCase`], [`NamingError::MissingNamespace`] (must start
/// with `<namespace>_`; skipped if `namespace` is empty),
/// [`NamingError::ReservedSuffix`] (histograms and gauges ending in
/// `_bucket`, `_count` or `_sum`), [`NamingError::TotalOnNonCounter`] /
/// [`NamingError::CounterWithoutTotal`], [`NamingError::NonBaseUnit`],
/// [`NamingError::AbbreviatedUnit`] and [`NamingError::TypeInName`]. A name
/// that passes is also clean for `promtool check metrics`' linter.
///
/// Non-base units are matched as the last word of the name (before `_total`
/// for counters) or as a `_<unit>_` word anywhere in it, and so are the
/// linter's unit words (`_days`, `_kilograms`, `_millivolts`, …). The
/// linter also reads `_s`, `_ms`, `_us`, `_ns`, `_sec`, `_b`, `_kb`, `_mb`,
/// `_gb`, `_tb`, `_pb`, `_m`, `_h` and `_d` as abbreviated units wherever
/// they stand as a word, so they are refused too (spell a region out:
/// `stockbot_usa_equities_orders_total`, not `_us_`). Unit-less names such
/// as `stockbot_orders_submitted_total` are fine: counts need no unit.
///
/// # Errors
///
/// Returns the first rule the name breaks.
pub fn validate_metric_name(
    name: &str,
    kind: MetricKind,
    namespace: &str,
) -> Result<(), NamingError> {
    validate_syntax(name)?;
    if is_camel_case(name) {
        return Err(NamingError::CamelCase {
            name: name.to_owned(),
        });
    }
    if !namespace.is_empty()
        && !name
            .strip_prefix(namespace)
            .is_some_and(|rest| rest.starts_with('_'))
    {
        return Err(NamingError::MissingNamespace {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        });
    }
    if kind != MetricKind::Counter
        && let Some(suffix) = ["_bucket", "_count", "_sum"]
            .into_iter()
            .find(|suffix| name.ends_with(suffix))
    {
        return Err(NamingError::ReservedSuffix {
            name: name.to_owned(),
            suffix,
        });
    }
    let has_total = name.ends_with("_total");
    match kind {
        MetricKind::Counter if !has_total => {
            return Err(NamingError::CounterWithoutTotal {
                name: name.to_owned(),
            });
        }
        MetricKind::Gauge | MetricKind::Histogram if has_total => {
            return Err(NamingError::TotalOnNonCounter {
                name: name.to_owned(),
                kind,
            });
        }
        _ => {}
    }
    if let Some(unit) = find_non_base_unit(name, kind) {
        return Err(NamingError::NonBaseUnit {
            name: name.to_owned(),
            found: unit.found.to_owned(),
            use_instead: unit.base,
        });
    }
    if let Some((found, use_instead)) = promlint_non_base_unit(name) {
        return Err(NamingError::NonBaseUnit {
            name: name.to_owned(),
            found,
            use_instead,
        });
    }
    if let Some(found) = abbreviated_unit(name) {
        return Err(NamingError::AbbreviatedUnit {
            name: name.to_owned(),
            found,
        });
    }
    let lower = name.to_ascii_lowercase();
    let type_word = format!("_{}", kind.name());
    if lower.ends_with(&type_word) || lower.contains(&format!("{type_word}_")) {
        return Err(NamingError::TypeInName {
            name: name.to_owned(),
            kind,
        });
    }
    Ok(())
}

/// Validates a label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`,
/// not camelCase.
///
/// # Errors
///
/// [`NamingError::Empty`], [`NamingError::InvalidChar`],
/// [`NamingError::Reserved`] or [`NamingError::CamelCase`].
pub fn validate_label_name(name: &str) -> Result<(), NamingError> {
    validate_syntax(name)?;
    if is_camel_case(name) {
        return Err(NamingError::CamelCase {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Whether `label` equals `canonical` with every `.` replaced by `_`.
fn eq_underscored(canonical: &str, label: &str) -> bool {
    canonical.len() == label.len()
        && canonical
            .bytes()
            .zip(label.bytes())
            .all(|(c, l)| l == if c == b'.' { b'_' } else { c })
}

/// Cardinality class of a metric label, from the field schema.
///
/// The label is looked up as a field alias (`cl_ord_id`), as a canonical
/// name (`currency`), or as a canonical name with `.` replaced by `_`
/// (`order_cl_ord_id`, `venue_name`). Returns `None` for unknown labels.
#[must_use]
pub fn label_cardinality(label: &str) -> Option<Cardinality> {
    lookup(label)
        .or_else(|| fields().iter().find(|f| eq_underscored(f.name, label)))
        .map(|f| f.cardinality)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use MetricKind::{Counter, Gauge, Histogram};

    fn check(name: &str, kind: MetricKind) -> Result<(), NamingError> {
        validate_metric_name(name, kind, DEFAULT_NAMESPACE)
    }

    fn err(name: &str, kind: MetricKind) -> NamingError {
        check(name, kind).expect_err(name)
    }

    #[test]
    fn valid_metric_names() {
        for (name, kind) in [
            ("stockbot_orders_submitted_total", Counter),
            ("stockbot_fills_total", Counter),
            ("stockbot_order_latency_seconds", Histogram),
            ("stockbot_fix_message_size_bytes", Histogram),
            ("stockbot_open_orders", Gauge),
            ("stockbot_risk_limit_utilisation_ratio", Gauge),
            ("stockbot_slippage_bps", Histogram),
            ("stockbot_bytes_sent_total", Counter),
            ("stockbot_cpu_seconds_total", Counter),
            ("stockbot_queue_depth", Gauge),
            ("stockbot_x", Gauge),
            ("stockbot_usa_equities_orders_total", Counter),
            ("stockbot_thermometers", Gauge),
            ("stockbot_mass_grams", Gauge),
            ("stockbot_status", Gauge),
            ("stockbot_items_total", Counter),
            ("stockbot_dns_lookups_total", Counter),
            ("stockbot_v2_orders_total", Counter),
            ("stockbot_Orders_total", Counter),
            ("stockbot_accounts", Gauge),
            ("stockbot_latency_sum_seconds", Histogram),
        ] {
            assert_eq!(check(name, kind), Ok(()), "{name} ({kind:?})");
        }
    }

    #[test]
    fn empty() {
        assert_eq!(err("", Counter), NamingError::Empty);
        assert_eq!(validate_metric_name("", Gauge, ""), Err(NamingError::Empty));
    }

    #[test]
    fn invalid_chars() {
        let cases = [
            ("stockbot.orders_total", 8, '.'),
            ("stockbot:orders_total", 8, ':'),
            ("stockbot_orders-total", 15, '-'),
            ("1stockbot_orders_total", 0, '1'),
            ("stockbot_ordérs_total", 12, 'é'),
            ("stockbot orders", 8, ' '),
        ];
        for (name, index, ch) in cases {
            assert_eq!(
                err(name, Counter),
                NamingError::InvalidChar {
                    name: name.to_owned(),
                    index,
                    ch,
                },
                "{name}"
            );
        }
    }

    #[test]
    fn reserved_prefix() {
        assert_eq!(
            err("__stockbot_orders_total", Counter),
            NamingError::Reserved {
                name: "__stockbot_orders_total".to_owned(),
            }
        );
        // Reserved wins over the missing namespace.
        assert!(matches!(
            validate_metric_name("__name__", Gauge, "stockbot"),
            Err(NamingError::Reserved { .. })
        ));
    }

    #[test]
    fn missing_namespace() {
        for name in [
            "orders_total",
            "stockbotorders_total",
            "stockbot",
            "stock_orders_total",
        ] {
            assert_eq!(
                err(name, Counter),
                NamingError::MissingNamespace {
                    name: name.to_owned(),
                    namespace: "stockbot".to_owned(),
                },
                "{name}"
            );
        }
        // Custom namespace.
        assert_eq!(
            validate_metric_name("gateway_orders_total", Counter, "gateway"),
            Ok(())
        );
        assert!(matches!(
            validate_metric_name("stockbot_orders_total", Counter, "gateway"),
            Err(NamingError::MissingNamespace { .. })
        ));
        // Empty namespace skips the check.
        assert_eq!(validate_metric_name("orders_total", Counter, ""), Ok(()));
        assert_eq!(validate_metric_name("open_orders", Gauge, ""), Ok(()));
    }

    #[test]
    fn histogram_reserved_suffixes() {
        for (name, suffix) in [
            ("stockbot_latency_seconds_bucket", "_bucket"),
            ("stockbot_fills_count", "_count"),
            ("stockbot_notional_sum", "_sum"),
        ] {
            assert_eq!(
                err(name, Histogram),
                NamingError::ReservedSuffix {
                    name: name.to_owned(),
                    suffix,
                },
                "{name}"
            );
        }
        // Gauges too (promtool flags `_count`/`_sum`/`_bucket` on anything but a
        // histogram); counters end in `_total` anyway.
        assert!(matches!(
            err("stockbot_fills_count", Gauge),
            NamingError::ReservedSuffix {
                suffix: "_count",
                ..
            }
        ));
        // ReservedSuffix comes before the unit check.
        assert!(matches!(
            err("stockbot_latency_ms_bucket", Histogram),
            NamingError::ReservedSuffix {
                suffix: "_bucket",
                ..
            }
        ));
    }

    #[test]
    fn total_suffix_rules() {
        assert_eq!(
            err("stockbot_orders_submitted", Counter),
            NamingError::CounterWithoutTotal {
                name: "stockbot_orders_submitted".to_owned(),
            }
        );
        for kind in [Gauge, Histogram] {
            assert_eq!(
                err("stockbot_orders_total", kind),
                NamingError::TotalOnNonCounter {
                    name: "stockbot_orders_total".to_owned(),
                    kind,
                }
            );
        }
        // The total rules come before the unit check.
        assert!(matches!(
            err("stockbot_latency_ms", Counter),
            NamingError::CounterWithoutTotal { .. }
        ));
        assert!(matches!(
            err("stockbot_latency_ms_total", Gauge),
            NamingError::TotalOnNonCounter { .. }
        ));
    }

    #[test]
    fn non_base_units() {
        let cases = [
            ("stockbot_order_latency_ms", Histogram, "_ms", "_seconds"),
            (
                "stockbot_order_latency_milliseconds",
                Gauge,
                "_milliseconds",
                "_seconds",
            ),
            ("stockbot_tick_to_trade_us", Histogram, "_us", "_seconds"),
            (
                "stockbot_tick_to_trade_microseconds",
                Histogram,
                "_microseconds",
                "_seconds",
            ),
            ("stockbot_wire_latency_ns", Histogram, "_ns", "_seconds"),
            (
                "stockbot_wire_latency_nanoseconds",
                Histogram,
                "_nanoseconds",
                "_seconds",
            ),
            ("stockbot_uptime_minutes", Gauge, "_minutes", "_seconds"),
            ("stockbot_session_hours", Gauge, "_hours", "_seconds"),
            ("stockbot_busy_ms_total", Counter, "_ms", "_seconds"),
            ("stockbot_busy_us_total", Counter, "_us", "_seconds"),
            ("stockbot_latency_ms_max", Gauge, "_ms", "_seconds"),
            (
                "stockbot_payload_kilobytes",
                Histogram,
                "_kilobytes",
                "_bytes",
            ),
            ("stockbot_payload_kb", Histogram, "_kb", "_bytes"),
            ("stockbot_heap_megabytes", Gauge, "_megabytes", "_bytes"),
            ("stockbot_heap_mb", Gauge, "_mb", "_bytes"),
            ("stockbot_disk_gigabytes", Gauge, "_gigabytes", "_bytes"),
            ("stockbot_received_bits_total", Counter, "_bits", "_bytes"),
            ("stockbot_fill_rate_percent", Gauge, "_percent", "_ratio"),
            ("stockbot_fill_rate_pct", Gauge, "_pct", "_ratio"),
            ("stockbot_cpu_pct_used", Gauge, "_pct", "_ratio"),
            (
                "stockbot_slippage_basis_points",
                Histogram,
                "_basis_points",
                "_bps",
            ),
        ];
        for (name, kind, found, use_instead) in cases {
            assert_eq!(
                err(name, kind),
                NamingError::NonBaseUnit {
                    name: name.to_owned(),
                    found: found.to_owned(),
                    use_instead,
                },
                "{name}"
            );
        }
    }

    #[test]
    fn every_replacement_is_a_base_unit() {
        for u in NON_BASE_UNITS {
            assert!(BASE_UNIT_SUFFIXES.contains(&u.base), "{}", u.found);
            assert!(u.found.starts_with('_'));
            let name = format!("stockbot_x{}", u.found);
            assert!(
                matches!(err(&name, Gauge), NamingError::NonBaseUnit { found, .. } if found == u.found),
                "{name}"
            );
        }
        for base in BASE_UNIT_SUFFIXES {
            assert_eq!(check(&format!("stockbot_x{base}"), Gauge), Ok(()), "{base}");
            assert_eq!(
                check(&format!("stockbot_x{base}_total"), Counter),
                Ok(()),
                "{base}"
            );
        }
    }

    #[test]
    fn display_messages() {
        let msg = |name: &str, kind| err(name, kind).to_string();
        assert_eq!(
            msg("stockbot_order_latency_ms", Histogram),
            "metric `stockbot_order_latency_ms` uses unit suffix `_ms`: \
             use base unit `_seconds` (record seconds as f64)"
        );
        assert_eq!(
            msg("stockbot_busy_ms_total", Counter),
            "metric `stockbot_busy_ms_total` uses unit suffix `_ms`: \
             use base unit `_seconds` (record seconds as f64)"
        );
        assert_eq!(
            msg("stockbot_latency_ms_max", Gauge),
            "metric `stockbot_latency_ms_max` uses unit `_ms`: \
             use base unit `_seconds` (record seconds as f64)"
        );
        assert_eq!(
            msg("stockbot_fill_rate_pct", Gauge),
            "metric `stockbot_fill_rate_pct` uses unit suffix `_pct`: \
             use base unit `_ratio` (record a ratio between 0 and 1, not a percentage)"
        );
        assert_eq!(
            msg("stockbot_heap_mb", Gauge),
            "metric `stockbot_heap_mb` uses unit suffix `_mb`: use base unit `_bytes` (record bytes)"
        );
        assert_eq!(
            msg("stockbot_slippage_basis_points", Gauge),
            "metric `stockbot_slippage_basis_points` uses unit suffix `_basis_points`: \
             use base unit `_bps` (`_bps` is the basis-points suffix)"
        );
        assert_eq!(
            NamingError::Empty.to_string(),
            "metric or label name is empty: names must match `[a-zA-Z_][a-zA-Z0-9_]*`"
        );
        assert_eq!(
            msg("stockbot.orders_total", Counter),
            "name `stockbot.orders_total` has invalid character `.` at index 8: \
             metric and label names must match `[a-zA-Z_][a-zA-Z0-9_]*` (use `_` as the separator)"
        );
        assert_eq!(
            msg("9_orders_total", Counter),
            "name `9_orders_total` has invalid character `9` at index 0: \
             metric and label names must match `[a-zA-Z_][a-zA-Z0-9_]*` (a name cannot start with a digit)"
        );
        assert_eq!(
            msg("stockbot_a\nb", Gauge),
            "name `stockbot_a\nb` has invalid character `\\n` at index 10: \
             metric and label names must match `[a-zA-Z_][a-zA-Z0-9_]*`"
        );
        assert_eq!(
            msg("__stockbot_x", Gauge),
            "name `__stockbot_x` starts with `__`, which is reserved for Prometheus internal use: \
             remove the leading underscores"
        );
        assert_eq!(
            msg("orders_total", Counter),
            "metric `orders_total` is missing the namespace prefix: rename it to start with `stockbot_`"
        );
        assert_eq!(
            msg("stockbot_orders", Counter),
            "counter `stockbot_orders` must end in `_total`: rename it to `stockbot_orders_total`"
        );
        assert_eq!(
            msg("stockbot_open_orders_total", Gauge),
            "gauge `stockbot_open_orders_total` ends in `_total`, which is reserved for counters: \
             remove the suffix or make the metric a counter"
        );
        assert_eq!(
            msg("stockbot_latency_seconds_bucket", Histogram),
            "metric `stockbot_latency_seconds_bucket` ends in `_bucket`, which belongs to the \
             `_bucket`, `_count` and `_sum` series a histogram exposes: rename it without the suffix"
        );
    }

    #[test]
    fn naming_error_is_std_error() {
        let e: Box<dyn std::error::Error + Send + Sync> = Box::new(NamingError::Empty);
        assert!(e.source().is_none());
    }

    #[test]
    fn what_promtool_lints_is_refused() {
        // Abbreviated units, wherever they stand as a word (compared lowercase).
        for (name, kind, found) in [
            ("stockbot_us_equities_orders_total", Counter, "_us"),
            ("stockbot_uptime_h", Gauge, "_h"),
            ("stockbot_orders_d_total", Counter, "_d"),
            ("stockbot_wait_S", Gauge, "_s"),
            ("stockbot_disk_tb_free", Gauge, "_tb"),
            ("stockbot_age_sec", Gauge, "_sec"),
        ] {
            assert_eq!(
                err(name, kind),
                NamingError::AbbreviatedUnit {
                    name: name.to_owned(),
                    found,
                },
                "{name}"
            );
        }
        // The linter's unit words, prefixed or not base units.
        for (name, found, use_instead) in [
            ("stockbot_holding_days", "_days", "_seconds"),
            ("stockbot_order_weight_kilograms", "_kilograms", "_grams"),
            ("stockbot_psu_millivolts", "_millivolts", "_volts"),
            ("stockbot_cable_miles", "_miles", "_meters"),
            ("stockbot_room_fahrenheit", "_fahrenheit", "_celsius"),
            ("stockbot_link_kilometers_total", "_kilometers", "_meters"),
        ] {
            let kind = if name.ends_with("_total") {
                Counter
            } else {
                Gauge
            };
            assert_eq!(
                err(name, kind),
                NamingError::NonBaseUnit {
                    name: name.to_owned(),
                    found: found.to_owned(),
                    use_instead,
                },
                "{name}"
            );
        }
        for (name, kind) in [
            ("stockbot_orders_counter_total", Counter),
            ("stockbot_depth_gauge", Gauge),
            ("stockbot_histogram_latency_seconds", Histogram),
        ] {
            assert_eq!(
                err(name, kind),
                NamingError::TypeInName {
                    name: name.to_owned(),
                    kind,
                },
                "{name}"
            );
        }
        assert_eq!(
            err("stockbot_fillRate", Gauge),
            NamingError::CamelCase {
                name: "stockbot_fillRate".to_owned()
            }
        );
        assert_eq!(
            validate_label_name("orderType"),
            Err(NamingError::CamelCase {
                name: "orderType".to_owned()
            })
        );
        assert!(
            err("stockbot_uptime_h", Gauge)
                .to_string()
                .contains("abbreviated unit")
        );
    }

    #[test]
    fn metric_kind_names() {
        assert_eq!(Counter.name(), "counter");
        assert_eq!(Gauge.name(), "gauge");
        assert_eq!(Histogram.name(), "histogram");
    }

    #[test]
    fn label_names() {
        for name in [
            "venue",
            "side",
            "_private",
            "order_type",
            "le",
            "quantile",
            "A1",
        ] {
            assert_eq!(validate_label_name(name), Ok(()), "{name}");
        }
        assert_eq!(validate_label_name(""), Err(NamingError::Empty));
        assert_eq!(
            validate_label_name("venue.name"),
            Err(NamingError::InvalidChar {
                name: "venue.name".to_owned(),
                index: 5,
                ch: '.',
            })
        );
        assert!(matches!(
            validate_label_name("0venue"),
            Err(NamingError::InvalidChar {
                index: 0,
                ch: '0',
                ..
            })
        ));
        assert!(matches!(
            validate_label_name("a:b"),
            Err(NamingError::InvalidChar {
                index: 1,
                ch: ':',
                ..
            })
        ));
        assert_eq!(
            validate_label_name("__name__"),
            Err(NamingError::Reserved {
                name: "__name__".to_owned(),
            })
        );
        // Labels need no namespace and no unit rules.
        assert_eq!(validate_label_name("latency_ms"), Ok(()));
    }

    #[test]
    fn label_cardinality_lookups() {
        use Cardinality::{High, Low, Medium};
        for (label, expected) in [
            ("cl_ord_id", Some(High)),
            ("order_cl_ord_id", Some(High)),
            ("client_order_id", Some(High)),
            ("order_id", Some(High)),
            ("account", Some(High)),
            ("trace_id", Some(High)),
            ("price", Some(High)),
            ("order_quantity", Some(High)),
            ("venue", Some(Low)),
            ("venue_name", Some(Low)),
            ("side", Some(Low)),
            ("strategy", Some(Low)),
            ("outcome", Some(Low)),
            ("event_outcome", Some(Low)),
            ("currency", Some(Low)),
            ("http_response_status_code", Some(Low)),
            ("symbol", Some(Medium)),
            ("instrument_symbol", Some(Medium)),
            ("reject_reason", Some(Medium)),
            ("host_name", Some(Medium)),
            ("unknown_label", None),
            ("order.cl_ord_id", Some(High)),
            ("order_cl_ord", None),
            ("Venue", None),
            ("", None),
        ] {
            assert_eq!(label_cardinality(label), expected, "{label}");
        }
    }

    #[test]
    fn label_keys_are_unambiguous() {
        // Every alias and underscored canonical name resolves to one field.
        let mut seen: HashMap<String, &str> = HashMap::new();
        for f in fields() {
            let underscored = f.name.replace('.', "_");
            let keys =
                std::iter::once(underscored).chain(f.aliases.iter().map(|a| (*a).to_owned()));
            for key in keys {
                if let Some(owner) = seen.insert(key.clone(), f.name) {
                    assert_eq!(owner, f.name, "label `{key}` is ambiguous");
                }
                assert_eq!(label_cardinality(&key), Some(f.cardinality), "{key}");
            }
        }
    }
}
