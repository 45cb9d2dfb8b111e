//! The simulated exchange (`exchange-sim`): matches each order at once — a full fill, a
//! partial fill, or a reject — with occasional latency spikes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use stockbot_telemetry::instrument_trade;

use crate::http::{Handler, Incoming};
use crate::service::{Rng, VENUE};

/// An order as the venue reads it.
#[derive(Debug)]
struct VenueOrder {
    cl_ord_id: String,
    symbol: String,
    side: String,
    quantity: u64,
    price: f64,
}

pub(crate) fn handler() -> Handler {
    let rng = Arc::new(Rng::new());
    let span = || tracing::info_span!("POST /orders", otel.kind = "server");
    crate::http::post("/orders", span, move |req: &Incoming| {
        let order = parse(&req.body).map_err(|e| (400, e))?;
        Ok(match_order(&order, &rng))
    })
}

fn parse(body: &Value) -> Result<VenueOrder, String> {
    let text = |k: &str| {
        body[k]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("`{k}` missing"))
    };
    Ok(VenueOrder {
        cl_ord_id: text("cl_ord_id")?,
        symbol: text("symbol")?,
        side: text("side")?,
        quantity: body["quantity"].as_u64().ok_or("`quantity` missing")?,
        price: body["price"].as_f64().ok_or("`price` missing")?,
    })
}

/// 5 % rejects, 20 % partial fills, the rest filled; 1 % of orders wait 30–80 ms.
#[instrument_trade(operation = "match_order", venue = VENUE, symbol = order.symbol,
                   side = order.side, cl_ord_id = order.cl_ord_id)]
fn match_order(order: &VenueOrder, rng: &Rng) -> Value {
    let pause = if rng.unit() < 0.01 {
        rng.range(0.030, 0.080)
    } else {
        rng.range(0.000_2, 0.002)
    };
    std::thread::sleep(Duration::from_secs_f64(pause));
    let draw = rng.unit();
    if draw < 0.05 {
        let reason = if rng.unit() < 0.5 {
            "price outside the band"
        } else {
            "insufficient liquidity at limit"
        };
        tracing::warn!(cl_ord_id = %order.cl_ord_id, symbol = %order.symbol, reject_reason = reason, "order rejected");
        return json!({ "status": "rejected", "reason": reason, "filled": 0 });
    }
    let filled = if draw < 0.25 {
        ((order.quantity as f64) * rng.range(0.3, 0.9)).max(1.0) as u64
    } else {
        order.quantity
    };
    // Price improvement or slippage of up to 2 basis points.
    let avg_px = order.price * (1.0 + rng.range(-0.0002, 0.0002));
    tracing::info!(
        audit = true,
        cl_ord_id = %order.cl_ord_id,
        symbol = %order.symbol,
        side = %order.side,
        last_qty = filled,
        last_px = avg_px,
        "fill"
    );
    json!({
        "status": if filled == order.quantity { "filled" } else { "partial" },
        "filled": filled,
        "avg_px": avg_px,
    })
}
