//! The order router: sends each order to the venue, records the order lifecycle metrics of the
//! business catalogue, and serves the `order_submission` SLO (its calls are the SLO's events).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use stockbot_telemetry::trading::{self, RejectReason, Side};
use stockbot_telemetry::{TradeErrorKind, instrument_trade};

use crate::http::{CallError, Client, Handler, Incoming, text};
use crate::service::VENUE;

/// Why an order could not be submitted (a venue's reject is an answer, not a failure).
#[derive(Debug)]
enum RouteError {
    Invalid(String),
    Venue(CallError),
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::Invalid(e) => write!(f, "invalid order: {e}"),
            RouteError::Venue(e) => write!(f, "venue {VENUE}: {e}"),
        }
    }
}

impl TradeErrorKind for RouteError {
    fn error_kind(&self) -> &'static str {
        match self {
            RouteError::Invalid(_) => "invalid_order",
            RouteError::Venue(CallError::Transport(_)) => "venue_unreachable",
            RouteError::Venue(CallError::Status(..)) => "venue_error",
        }
    }
}

pub(crate) fn handler(venue: Client) -> Handler {
    let venue = Arc::new(venue);
    let span = || tracing::info_span!("POST /orders", otel.kind = "server");
    crate::http::post("/orders", span, move |req: &Incoming| {
        let strategy = text(&req.body, "strategy", "unknown");
        let cl_ord_id = text(&req.body, "cl_ord_id", "");
        submit_order(&venue, &req.body, &strategy, &cl_ord_id).map_err(|e| match e {
            RouteError::Invalid(m) => (400, m),
            RouteError::Venue(e) => (502, e.to_string()),
        })
    })
}

#[instrument_trade(operation = "submit_order", slo = "order_submission", venue = VENUE,
                   strategy = strategy, cl_ord_id = cl_ord_id, err, audit)]
fn submit_order(
    venue: &Client,
    order: &Value,
    strategy: &str,
    cl_ord_id: &str,
) -> Result<Value, RouteError> {
    let side = match order["side"].as_str() {
        Some("buy") => Side::Buy,
        Some("sell") => Side::Sell,
        other => return Err(RouteError::Invalid(format!("side {other:?}"))),
    };
    let quantity = order["quantity"]
        .as_u64()
        .filter(|q| *q > 0)
        .ok_or_else(|| RouteError::Invalid("quantity".into()))?;
    let price = order["price"].as_f64().unwrap_or(0.0);
    trading::order_submitted(VENUE, strategy);
    let sent = Instant::now();
    let span = tracing::info_span!(
        "venue.send",
        otel.kind = "client",
        peer.service = "exchange-sim"
    );
    let answer = venue
        .call(span, "/orders", order)
        .map_err(RouteError::Venue)?;
    trading::order_acked(VENUE, strategy, sent.elapsed());
    match answer["status"].as_str() {
        Some("rejected") => {
            let text = answer["reason"].as_str().unwrap_or("");
            trading::order_rejected(VENUE, strategy, RejectReason::from_venue_text(text));
            tracing::warn!(
                cl_ord_id,
                venue = VENUE,
                reject_reason = text,
                "venue rejected the order"
            );
        }
        Some(status) => {
            let filled = answer["filled"].as_u64().unwrap_or(0);
            let avg_px = answer["avg_px"].as_f64().unwrap_or(price);
            trading::fill(VENUE, strategy, side, status == "partial");
            trading::fill_ratio(VENUE, strategy, filled as f64 / quantity as f64);
            if price > 0.0 {
                let signed = if side == Side::Buy { 1.0 } else { -1.0 };
                trading::slippage_bps(VENUE, strategy, signed * (avg_px - price) / price * 1e4);
            }
            tracing::info!(
                cl_ord_id,
                venue = VENUE,
                fill_qty = filled,
                fill_price = avg_px,
                ord_status = status,
                "order executed"
            );
        }
        None => {
            return Err(RouteError::Venue(CallError::Status(
                200,
                format!("answer without status: {answer}"),
            )));
        }
    }
    Ok(json!({ "cl_ord_id": cl_ord_id, "venue": VENUE, "report": answer }))
}
