//! `#[instrument_trade]`: span, RED metrics and error record for every supported function
//! shape and outcome, asserted with the testing crate.

use std::fmt;

use stockbot_telemetry::{TradeErrorKind, instrument_trade};
use stockbot_telemetry_testing::Capture;

#[derive(Debug)]
enum OrderError {
    Timeout,
    Rejected(&'static str),
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::Timeout => write!(f, "venue timed out"),
            OrderError::Rejected(why) => write!(f, "rejected: {why}"),
        }
    }
}

impl TradeErrorKind for OrderError {
    fn error_kind(&self) -> &'static str {
        match self {
            OrderError::Timeout => "timeout",
            OrderError::Rejected(_) => "rejected",
        }
    }
}

struct Order {
    cl_ord_id: String,
    venue: &'static str,
    symbol: &'static str,
}

struct Router {
    name: &'static str,
    sent: u32,
}

impl Router {
    #[instrument_trade(operation = "submit_order", venue = order.venue, strategy = self.name,
                       cl_ord_id = order.cl_ord_id, symbol = order.symbol, err)]
    fn submit(&mut self, order: &Order, fail: Option<OrderError>) -> Result<u32, OrderError> {
        if let Some(e) = fail {
            return Err(e);
        }
        self.sent += 1;
        Ok(self.sent)
    }

    #[instrument_trade(operation = "cancel_order", venue = order.venue, strategy = self.name)]
    async fn cancel(&self, order: &Order) -> Result<(), String> {
        tokio::task::yield_now().await;
        if order.cl_ord_id.is_empty() {
            Err("no id".into())
        } else {
            Ok(())
        }
    }
}

#[instrument_trade(operation = "price_check", level = "debug", ret)]
fn price_check<T: Into<f64>>(limit: T, price: f64) -> Option<f64> {
    let limit = limit.into();
    (price <= limit).then_some(price)
}

#[instrument_trade(audit, operation = "kill_switch")]
fn kill_switch(venue: &str) -> impl Iterator<Item = u8> {
    assert!(!venue.is_empty());
    [1u8, 2].into_iter()
}

static VENUE_LOOKUPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn next_venue() -> &'static str {
    VENUE_LOOKUPS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    "XLON"
}

#[instrument_trade(operation = "route", venue = next_venue())]
fn route() {}

#[instrument_trade(operation = "explode")]
fn explode(venue: &str) {
    if venue == "XBOOM" {
        panic!("venue adapter crashed");
    }
}

#[instrument_trade(operation = "slow_ack", skip(venue))]
async fn slow_ack(venue: &str) -> u8 {
    let _ = venue;
    std::future::pending::<()>().await;
    1
}

fn order(id: &str) -> Order {
    Order {
        cl_ord_id: id.into(),
        venue: "XNAS",
        symbol: "AAPL",
    }
}

#[test]
fn ok_and_error_outcomes_give_span_metrics_and_error_record() {
    let capture = Capture::start();
    let mut router = Router {
        name: "mm",
        sent: 0,
    };
    assert_eq!(router.submit(&order("C-1"), None).unwrap(), 1);
    assert!(
        router
            .submit(&order("C-2"), Some(OrderError::Timeout))
            .is_err()
    );
    assert!(
        router
            .submit(&order("C-3"), Some(OrderError::Rejected("price band")))
            .is_err()
    );

    let spans = capture.spans();
    let ok = spans
        .named("submit_order")
        .attribute("order.cl_ord_id", "C-1")
        .error(false)
        .assert_one();
    assert_eq!(ok.attribute("venue.name"), Some("XNAS"));
    assert_eq!(ok.attribute("strategy.name"), Some("mm"));
    assert_eq!(ok.attribute("instrument.symbol"), Some("AAPL"));
    assert_eq!(ok.attribute("operation"), Some("submit_order"));
    let failed = spans
        .named("submit_order")
        .attribute("order.cl_ord_id", "C-2")
        .error(true)
        .assert_one();
    assert_eq!(failed.attribute("error.kind"), Some("timeout"));
    assert!(
        failed
            .event("submit_order failed: venue timed out")
            .is_some(),
        "`err` puts the message in the one error record: {failed:?}"
    );

    let m = capture.metrics();
    let base = [
        ("operation", "submit_order"),
        ("venue", "XNAS"),
        ("strategy", "mm"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = base.to_vec();
        l.push(extra);
        l
    };
    m.assert_value("stockbot_trade_calls_total", &with(("outcome", "ok")), 1.0);
    m.assert_value(
        "stockbot_trade_calls_total",
        &with(("outcome", "error")),
        2.0,
    );
    m.assert_value(
        "stockbot_trade_errors_total",
        &with(("error_kind", "timeout")),
        1.0,
    );
    m.assert_value(
        "stockbot_trade_errors_total",
        &with(("error_kind", "rejected")),
        1.0,
    );
    m.assert_no_label("stockbot_trade_calls_total", "cl_ord_id");
    m.assert_no_label("stockbot_trade_calls_total", "symbol");
    assert_eq!(
        m.value(
            "stockbot_trade_duration_seconds_count",
            &with(("outcome", "error"))
        ),
        2.0
    );

    let logs = capture.logs();
    logs.level("ERROR")
        .field("error.kind", "rejected")
        .field("error.message", "rejected: price band")
        .field("event.outcome", "failure")
        .field("order.cl_ord_id", "C-3")
        .assert_one();
    logs.level("ERROR").assert_count(2);
    capture.assert_schema_valid();
}

#[test]
fn attribute_expressions_are_evaluated_once_per_call() {
    let capture = Capture::start();
    route();
    route();
    assert_eq!(VENUE_LOOKUPS.load(std::sync::atomic::Ordering::SeqCst), 2);
    capture
        .spans()
        .named("route")
        .attribute("venue.name", "XLON")
        .assert_count(2);
    capture.metrics().assert_value(
        "stockbot_trade_calls_total",
        &[("operation", "route"), ("venue", "XLON"), ("outcome", "ok")],
        2.0,
    );
}

#[test]
fn async_methods_generic_functions_and_impl_trait_returns_are_instrumented() {
    let capture = Capture::start();
    let router = Router {
        name: "mm",
        sent: 0,
    };
    capture.block_on(async {
        router.cancel(&order("C-9")).await.unwrap();
        assert!(router.cancel(&order("")).await.is_err());
    });
    assert_eq!(price_check(101u8, 100.5), Some(100.5));
    assert_eq!(price_check(99.0f32, 100.5), None);
    assert_eq!(kill_switch("XNAS").count(), 2);

    let spans = capture.spans();
    spans.named("cancel_order").error(false).assert_one();
    spans.named("cancel_order").error(true).assert_one();
    spans.named("price_check").assert_count(2);
    let kill = spans.named("kill_switch").assert_one();
    assert_eq!(kill.attribute("audit"), Some("true"));
    assert_eq!(
        kill.attribute("venue.name"),
        Some("XNAS"),
        "parameter captured"
    );

    let m = capture.metrics();
    m.assert_value(
        "stockbot_trade_errors_total",
        &[
            ("operation", "cancel_order"),
            ("venue", "XNAS"),
            ("strategy", "mm"),
            ("error_kind", "error"),
        ],
        1.0,
    );
    m.assert_value(
        "stockbot_trade_calls_total",
        &[("operation", "price_check"), ("outcome", "ok")],
        2.0,
    );
    m.assert_value(
        "stockbot_trade_calls_total",
        &[
            ("operation", "kill_switch"),
            ("venue", "XNAS"),
            ("outcome", "ok"),
        ],
        1.0,
    );
}

#[test]
fn a_panic_is_recorded_and_reraised_and_a_dropped_future_is_cancelled() {
    let capture = Capture::start();
    let caught = std::panic::catch_unwind(|| explode("XBOOM"));
    assert!(caught.is_err(), "the panic goes on");
    explode("XNAS");
    capture.block_on(async {
        let timed_out =
            tokio::time::timeout(std::time::Duration::from_millis(20), slow_ack("XNAS")).await;
        assert!(timed_out.is_err());
    });
    let m = capture.metrics();
    m.assert_value(
        "stockbot_trade_calls_total",
        &[
            ("operation", "explode"),
            ("venue", "XBOOM"),
            ("outcome", "panic"),
        ],
        1.0,
    );
    m.assert_value(
        "stockbot_trade_errors_total",
        &[
            ("operation", "explode"),
            ("venue", "XBOOM"),
            ("error_kind", "panic"),
        ],
        1.0,
    );
    m.assert_value(
        "stockbot_trade_calls_total",
        &[
            ("operation", "explode"),
            ("venue", "XNAS"),
            ("outcome", "ok"),
        ],
        1.0,
    );
    m.assert_value(
        "stockbot_trade_calls_total",
        &[("operation", "slow_ack"), ("outcome", "cancelled")],
        1.0,
    );
    m.assert_no_label("stockbot_trade_calls_total", "cl_ord_id");
    capture
        .spans()
        .named("explode")
        .attribute("error.kind", "panic")
        .error(true)
        .assert_one();
    capture
        .logs()
        .level("ERROR")
        .field("error.kind", "cancelled")
        .field("operation", "slow_ack")
        .assert_one();
    capture.assert_schema_valid();
}
