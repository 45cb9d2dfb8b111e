use stockbot_telemetry::{TradeErrorKind, instrument_trade};

#[derive(Debug)]
pub struct Rejected;
impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rejected")
    }
}
impl TradeErrorKind for Rejected {
    fn error_kind(&self) -> &'static str {
        "rejected"
    }
}

pub struct Order {
    pub cl_ord_id: String,
    pub venue: String,
}

pub struct Strategy {
    name: String,
    sent: u32,
}

impl Strategy {
    #[instrument_trade(operation = "submit_order", venue = order.venue, strategy = self.name,
                       cl_ord_id = order.cl_ord_id, err)]
    pub fn submit(&mut self, order: &Order) -> Result<u32, Rejected> {
        self.sent += 1;
        if self.sent > 10 {
            return Err(Rejected);
        }
        Ok(self.sent)
    }

    #[instrument_trade(operation = "quote", strategy = self.name, level = "debug", slo = "quotes")]
    pub async fn quote(&self, symbol: &str) -> Option<f64> {
        (!symbol.is_empty()).then_some(1.0)
    }
}

#[instrument_trade(name = "risk.check", operation = "risk_check", ret)]
pub fn check<Q: Into<f64> + Copy + std::fmt::Display>(quantity: Q, limit: f64) -> bool {
    quantity.into() <= limit
}

#[instrument_trade(operation = "fills", audit, skip(venue))]
pub fn fills(venue: &str) -> impl Iterator<Item = u32> {
    let _ = venue;
    0..3
}

#[instrument_trade(operation = "parse_qty")]
pub fn parse_qty(text: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = text.trim().parse()?;
    Ok(n)
}

#[instrument_trade(operation = "heartbeat", metric = "stockbot_session", slo = "session")]
pub async fn heartbeat() {}

/// A parameter named like an attribute the macro sets is not captured (no duplicate label).
#[instrument_trade(operation = "apply")]
pub fn apply(operation: &str, outcome: u8) -> usize {
    operation.len() + usize::from(outcome)
}

/// Patterns in parameters and `where` clauses.
#[instrument_trade(operation = "spread")]
pub fn spread<T>((bid, ask): (T, T)) -> T
where
    T: std::ops::Sub<Output = T> + Copy,
{
    ask - bid
}

mod renamed {
    use stockbot_telemetry as telemetry;

    #[telemetry::instrument_trade(crate = telemetry, operation = "renamed", slo = "renamed")]
    pub fn renamed() -> u8 {
        1
    }
}

fn main() {
    let mut s = Strategy { name: "mm".into(), sent: 0 };
    let order = Order { cl_ord_id: "C-1".into(), venue: "XNAS".into() };
    assert_eq!(s.submit(&order).unwrap(), 1);
    let _quote = s.quote("AAPL");
    assert!(check(5u8, 10.0));
    assert_eq!(fills("XNAS").count(), 3);
    assert_eq!(parse_qty(" 7 ").unwrap(), 7);
    let _hb = heartbeat();
    assert_eq!(renamed::renamed(), 1);
    assert_eq!(apply("x", 1), 2);
    assert_eq!(spread((1, 3)), 2);
}
