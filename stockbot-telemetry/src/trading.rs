//! The trading business metrics: a fixed catalogue with fixed names, units, help texts, labels
//! and buckets, recorded through a typed API so every service reports them the same way.
//!
//! ```
//! use std::time::Duration;
//! use stockbot_telemetry::trading::{self, RejectReason, Side};
//!
//! trading::order_submitted("XNAS", "mean-revert");
//! trading::order_acked("XNAS", "mean-revert", Duration::from_micros(180));
//! trading::fill("XNAS", "mean-revert", Side::Buy, false);
//! trading::slippage_bps("XNAS", "mean-revert", -0.8);
//! trading::order_rejected("XNAS", "mean-revert", RejectReason::from_venue_text("Price outside band"));
//! trading::pnl("mean-revert", "USD", 1520.25);
//! ```
//!
//! The labels are low-cardinality by design: venue, strategy, side, normalised reject reason,
//! feed, currency, risk limit name. Order ids never become labels (put them on spans and logs).
//! The functions record through the `metrics` facade, so they go wherever the installed (or
//! scoped, in tests) recorder sends them.

use std::time::Duration;

use stockbot_telemetry_conventions::MetricKind;

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MetricDef {
    /// Full Prometheus name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Unit, as in the name's suffix (`seconds`, `bps`, `ratio`) or `""` for counts.
    pub unit: &'static str,
    /// Label keys.
    pub labels: &'static [&'static str],
    /// Histogram buckets (upper bounds); empty for counters and gauges.
    pub buckets: &'static [f64],
    /// Help text.
    pub help: &'static str,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0,
];
const SLIPPAGE_BUCKETS: &[f64] = &[
    -50.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0,
];

macro_rules! def {
    ($name:literal, $kind:ident, $unit:literal, [$($l:literal),*], $buckets:expr, $help:literal) => {
        MetricDef {
            name: $name,
            kind: MetricKind::$kind,
            unit: $unit,
            labels: &[$($l),*],
            buckets: $buckets,
            help: $help,
        }
    };
}

/// The catalogue.
pub const CATALOGUE: &[MetricDef] = &[
    def!(
        "stockbot_orders_submitted_total",
        Counter,
        "",
        ["venue", "strategy"],
        &[],
        "Orders sent to a venue"
    ),
    def!(
        "stockbot_orders_acked_total",
        Counter,
        "",
        ["venue", "strategy"],
        &[],
        "Orders acknowledged by the venue"
    ),
    def!(
        "stockbot_orders_rejected_total",
        Counter,
        "",
        ["venue", "strategy", "reason"],
        &[],
        "Orders rejected, by normalised reason"
    ),
    def!(
        "stockbot_fills_total",
        Counter,
        "",
        ["venue", "strategy", "side", "fill_type"],
        &[],
        "Executions received (fill_type: full or partial)"
    ),
    def!(
        "stockbot_fill_ratio",
        Gauge,
        "ratio",
        ["venue", "strategy"],
        &[],
        "Filled quantity over ordered quantity, as the service computes it"
    ),
    def!(
        "stockbot_slippage_bps",
        Histogram,
        "bps",
        ["venue", "strategy"],
        SLIPPAGE_BUCKETS,
        "Execution price versus arrival price, in basis points (positive is worse)"
    ),
    def!(
        "stockbot_order_ack_latency_seconds",
        Histogram,
        "seconds",
        ["venue", "strategy"],
        LATENCY_BUCKETS,
        "Time from order sent to venue acknowledgement"
    ),
    def!(
        "stockbot_tick_to_trade_latency_seconds",
        Histogram,
        "seconds",
        ["strategy"],
        LATENCY_BUCKETS,
        "Time from market data tick received to order sent"
    ),
    def!(
        "stockbot_market_data_staleness_seconds",
        Gauge,
        "seconds",
        ["feed"],
        &[],
        "Age of the newest market data message of a feed"
    ),
    def!(
        "stockbot_market_data_sequence_gaps_total",
        Counter,
        "",
        ["feed"],
        &[],
        "Sequence gaps detected on a feed"
    ),
    def!(
        "stockbot_market_data_missed_messages_total",
        Counter,
        "",
        ["feed"],
        &[],
        "Messages missing in sequence gaps"
    ),
    def!(
        "stockbot_exposure_notional",
        Gauge,
        "",
        ["strategy", "currency"],
        &[],
        "Gross exposure, in the currency given"
    ),
    def!(
        "stockbot_risk_limit_utilisation_ratio",
        Gauge,
        "ratio",
        ["limit"],
        &[],
        "Use of a risk limit (1 = at the limit)"
    ),
    def!(
        "stockbot_venue_rate_limit_utilisation_ratio",
        Gauge,
        "ratio",
        ["venue"],
        &[],
        "Use of a venue's message rate limit (1 = at the limit)"
    ),
    def!(
        "stockbot_pnl",
        Gauge,
        "",
        ["strategy", "currency"],
        &[],
        "Profit and loss, in the currency given"
    ),
];

/// Looks a metric of the catalogue up by name.
pub fn lookup(name: &str) -> Option<&'static MetricDef> {
    CATALOGUE.iter().find(|d| d.name == name)
}

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell (including short sell).
    Sell,
}

impl Side {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// Why an order was rejected, normalised to a small set (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// Price outside the venue's or our price band / collar.
    PriceBand,
    /// Not enough buying power or inventory.
    InsufficientFunds,
    /// Our pre-trade risk check refused it.
    RiskLimit,
    /// Venue or our own message rate limit.
    RateLimit,
    /// Unknown or halted instrument.
    UnknownInstrument,
    /// Market closed or not in the right session.
    MarketClosed,
    /// Duplicate client order id.
    Duplicate,
    /// Malformed order (quantity, tick size, lot size).
    InvalidOrder,
    /// Anything else.
    Other,
}

impl RejectReason {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::PriceBand => "price_band",
            RejectReason::InsufficientFunds => "insufficient_funds",
            RejectReason::RiskLimit => "risk_limit",
            RejectReason::RateLimit => "rate_limit",
            RejectReason::UnknownInstrument => "unknown_instrument",
            RejectReason::MarketClosed => "market_closed",
            RejectReason::Duplicate => "duplicate",
            RejectReason::InvalidOrder => "invalid_order",
            RejectReason::Other => "other",
        }
    }

    /// Normalises a venue's free-text reject reason (FIX `Text(58)`), so the label stays a
    /// small set whatever the venue writes.
    pub fn from_venue_text(text: &str) -> Self {
        let t = text.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
        if has(&[
            "band",
            "collar",
            "price limit",
            "limit up",
            "limit down",
            "away from market",
        ]) {
            RejectReason::PriceBand
        } else if has(&["funds", "buying power", "margin", "insufficient", "borrow"]) {
            RejectReason::InsufficientFunds
        } else if has(&["risk", "exposure", "credit", "notional"]) {
            RejectReason::RiskLimit
        } else if has(&["throttle", "rate", "too many"]) {
            RejectReason::RateLimit
        } else if has(&["symbol", "instrument", "security", "halt"]) {
            RejectReason::UnknownInstrument
        } else if has(&["closed", "session", "auction"]) {
            RejectReason::MarketClosed
        } else if has(&["duplicate", "clordid"]) {
            RejectReason::Duplicate
        } else if has(&[
            "quantity",
            "qty",
            "tick",
            "lot",
            "invalid",
            "price increment",
        ]) {
            RejectReason::InvalidOrder
        } else {
            RejectReason::Other
        }
    }
}

/// An order was sent to `venue`.
pub fn order_submitted(venue: &str, strategy: &str) {
    metrics::counter!("stockbot_orders_submitted_total", "venue" => venue.to_owned(), "strategy" => strategy.to_owned()).increment(1);
}

/// The venue acknowledged an order after `latency` (order sent → ack).
pub fn order_acked(venue: &str, strategy: &str, latency: Duration) {
    let labels = [
        ("venue", venue.to_owned()),
        ("strategy", strategy.to_owned()),
    ];
    metrics::counter!("stockbot_orders_acked_total", &labels).increment(1);
    metrics::histogram!("stockbot_order_ack_latency_seconds", &labels)
        .record(latency.as_secs_f64());
}

/// The order was rejected.
pub fn order_rejected(venue: &str, strategy: &str, reason: RejectReason) {
    metrics::counter!("stockbot_orders_rejected_total", "venue" => venue.to_owned(), "strategy" => strategy.to_owned(), "reason" => reason.as_str()).increment(1);
}

/// An execution arrived; `partial` when the order is not yet complete.
pub fn fill(venue: &str, strategy: &str, side: Side, partial: bool) {
    metrics::counter!(
        "stockbot_fills_total",
        "venue" => venue.to_owned(),
        "strategy" => strategy.to_owned(),
        "side" => side.as_str(),
        "fill_type" => if partial { "partial" } else { "full" }
    )
    .increment(1);
}

/// The fill ratio (filled / ordered quantity) over the service's own window.
pub fn fill_ratio(venue: &str, strategy: &str, ratio: f64) {
    metrics::gauge!("stockbot_fill_ratio", "venue" => venue.to_owned(), "strategy" => strategy.to_owned()).set(ratio);
}

/// Slippage of one execution against the arrival price, in basis points (positive is worse).
pub fn slippage_bps(venue: &str, strategy: &str, bps: f64) {
    metrics::histogram!("stockbot_slippage_bps", "venue" => venue.to_owned(), "strategy" => strategy.to_owned()).record(bps);
}

/// Tick received → order sent.
pub fn tick_to_trade_latency(strategy: &str, latency: Duration) {
    metrics::histogram!("stockbot_tick_to_trade_latency_seconds", "strategy" => strategy.to_owned()).record(latency.as_secs_f64());
}

/// Age of the newest message of `feed`.
pub fn market_data_staleness(feed: &str, age: Duration) {
    metrics::gauge!("stockbot_market_data_staleness_seconds", "feed" => feed.to_owned())
        .set(age.as_secs_f64());
}

/// A sequence gap of `missed` messages on `feed`.
pub fn market_data_gap(feed: &str, missed: u64) {
    metrics::counter!("stockbot_market_data_sequence_gaps_total", "feed" => feed.to_owned())
        .increment(1);
    metrics::counter!("stockbot_market_data_missed_messages_total", "feed" => feed.to_owned())
        .increment(missed);
}

/// Gross exposure of `strategy` in `currency`.
pub fn exposure(strategy: &str, currency: &str, notional: f64) {
    metrics::gauge!("stockbot_exposure_notional", "strategy" => strategy.to_owned(), "currency" => currency.to_owned()).set(notional);
}

/// Use of the risk limit `limit` (1.0 = at the limit).
pub fn risk_limit_utilisation(limit: &str, ratio: f64) {
    metrics::gauge!("stockbot_risk_limit_utilisation_ratio", "limit" => limit.to_owned())
        .set(ratio);
}

/// Use of `venue`'s message rate limit (1.0 = at the limit).
pub fn venue_rate_limit_utilisation(venue: &str, ratio: f64) {
    metrics::gauge!("stockbot_venue_rate_limit_utilisation_ratio", "venue" => venue.to_owned())
        .set(ratio);
}

/// Profit and loss of `strategy` in `currency`.
pub fn pnl(strategy: &str, currency: &str, value: f64) {
    metrics::gauge!("stockbot_pnl", "strategy" => strategy.to_owned(), "currency" => currency.to_owned()).set(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockbot_telemetry_conventions::{
        Cardinality, label_cardinality, validate_label_name, validate_metric_name,
    };

    #[test]
    fn the_catalogue_follows_the_naming_and_cardinality_rules() {
        for def in CATALOGUE {
            validate_metric_name(def.name, def.kind, "stockbot").unwrap_or_else(|e| panic!("{e}"));
            for label in def.labels {
                validate_label_name(label).unwrap();
                assert_ne!(
                    label_cardinality(label),
                    Some(Cardinality::High),
                    "{} {label}",
                    def.name
                );
            }
            if def.kind == MetricKind::Histogram {
                assert!(def.buckets.windows(2).all(|w| w[0] < w[1]), "{}", def.name);
            } else {
                assert!(def.buckets.is_empty());
            }
            if !def.unit.is_empty() {
                assert!(def.name.ends_with(def.unit), "{}", def.name);
            }
        }
    }

    #[test]
    fn venue_texts_are_normalised() {
        assert_eq!(
            RejectReason::from_venue_text("Price outside LULD band"),
            RejectReason::PriceBand
        );
        assert_eq!(
            RejectReason::from_venue_text("Insufficient buying power"),
            RejectReason::InsufficientFunds
        );
        assert_eq!(
            RejectReason::from_venue_text("Throttle limit exceeded"),
            RejectReason::RateLimit
        );
        assert_eq!(
            RejectReason::from_venue_text("Duplicate ClOrdID"),
            RejectReason::Duplicate
        );
        assert_eq!(
            RejectReason::from_venue_text("Unknown symbol ZZZZ"),
            RejectReason::UnknownInstrument
        );
        assert_eq!(
            RejectReason::from_venue_text("gremlins"),
            RejectReason::Other
        );
    }
}
