//! The risk check: refuses orders over the per-order notional limit or that would take the
//! strategy's gross exposure past its limit; publishes the limits' utilisation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use stockbot_telemetry::{TradeErrorKind, instrument_trade, trading};

use crate::http::{Handler, Incoming, text};

/// Largest notional of one order.
const ORDER_LIMIT: f64 = 150_000.0;
/// Largest gross exposure of a strategy (it decays: positions are assumed to be worked out).
const EXPOSURE_LIMIT: f64 = 2_000_000.0;

#[derive(Debug)]
enum RiskError {
    OrderTooLarge(f64),
    ExposureLimit(f64),
    Invalid(&'static str),
}

impl std::fmt::Display for RiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RiskError::OrderTooLarge(n) => write!(f, "order notional {n:.0} over {ORDER_LIMIT:.0}"),
            RiskError::ExposureLimit(n) => {
                write!(f, "exposure would reach {n:.0}, limit {EXPOSURE_LIMIT:.0}")
            }
            RiskError::Invalid(what) => write!(f, "invalid order: {what}"),
        }
    }
}

impl TradeErrorKind for RiskError {
    fn error_kind(&self) -> &'static str {
        match self {
            RiskError::OrderTooLarge(_) | RiskError::ExposureLimit(_) => "risk_limit",
            RiskError::Invalid(_) => "invalid_order",
        }
    }
}

pub(crate) fn handler() -> Handler {
    let exposure = Arc::new(Mutex::new(HashMap::<String, f64>::new()));
    let span = || tracing::info_span!("POST /check", otel.kind = "server");
    crate::http::post("/check", span, move |req: &Incoming| {
        let strategy = text(&req.body, "strategy", "unknown");
        let cl_ord_id = text(&req.body, "cl_ord_id", "");
        Ok(
            match check_order(&exposure, &req.body, &strategy, &cl_ord_id) {
                Ok(()) => json!({ "approved": true }),
                Err(e) => json!({ "approved": false, "reason": e.to_string() }),
            },
        )
    })
}

#[instrument_trade(operation = "risk_check", strategy = strategy, cl_ord_id = cl_ord_id, err)]
fn check_order(
    exposure: &Mutex<HashMap<String, f64>>,
    order: &Value,
    strategy: &str,
    cl_ord_id: &str,
) -> Result<(), RiskError> {
    let quantity = order["quantity"]
        .as_f64()
        .ok_or(RiskError::Invalid("quantity"))?;
    let price = order["price"].as_f64().ok_or(RiskError::Invalid("price"))?;
    let notional = quantity * price;
    trading::risk_limit_utilisation("order_notional", notional / ORDER_LIMIT);
    if notional > ORDER_LIMIT {
        return Err(RiskError::OrderTooLarge(notional));
    }
    let mut exposure = exposure.lock().unwrap_or_else(|p| p.into_inner());
    let gross = exposure.entry(strategy.to_owned()).or_insert(0.0);
    // Positions are worked out over time: the book decays by 2 % per order.
    *gross *= 0.98;
    let next = *gross + notional;
    trading::risk_limit_utilisation("gross_exposure", next / EXPOSURE_LIMIT);
    if next > EXPOSURE_LIMIT {
        return Err(RiskError::ExposureLimit(next));
    }
    *gross = next;
    trading::exposure(strategy, "USD", next);
    Ok(())
}
