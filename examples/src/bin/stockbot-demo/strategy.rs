//! The strategy (`mean-revert`): on each tick, compares the mid price with its moving average
//! and, when it strays, sends an order — risk check first, then the order router.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use stockbot_telemetry::trading::{self};
use stockbot_telemetry::{TradeErrorKind, instrument_trade};

use crate::http::{CallError, Client, Handler, Incoming};
use crate::service::{Rng, STRATEGY};

struct State {
    risk: Client,
    router: Client,
    averages: Mutex<HashMap<String, f64>>,
    next_id: AtomicU64,
    rng: Rng,
}

#[derive(Debug)]
enum OrderError {
    Refused(String),
    Downstream(&'static str, CallError),
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderError::Refused(reason) => write!(f, "refused by risk: {reason}"),
            OrderError::Downstream(who, e) => write!(f, "{who}: {e}"),
        }
    }
}

impl TradeErrorKind for OrderError {
    fn error_kind(&self) -> &'static str {
        match self {
            OrderError::Refused(_) => "risk_limit",
            OrderError::Downstream(..) => "downstream",
        }
    }
}

pub(crate) fn handler(risk: Client, router: Client) -> Handler {
    let state = Arc::new(State {
        risk,
        router,
        averages: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        rng: Rng::new(),
    });
    let span = || tracing::info_span!("POST /tick", otel.kind = "server");
    crate::http::post("/tick", span, move |req: &Incoming| {
        let received = Instant::now();
        let symbol = req.body["symbol"]
            .as_str()
            .ok_or((400, "`symbol` missing".to_owned()))?
            .to_owned();
        Ok(on_tick(&state, &req.body, &symbol, received))
    })
}

#[instrument_trade(operation = "on_tick", strategy = STRATEGY, symbol = symbol, level = "debug")]
fn on_tick(state: &State, tick: &Value, symbol: &str, received: Instant) -> Value {
    let (bid, ask) = (
        tick["bid"].as_f64().unwrap_or(0.0),
        tick["ask"].as_f64().unwrap_or(0.0),
    );
    let mid = (bid + ask) / 2.0;
    if let Some(sent) = tick["sent_unix_nanos"].as_u64() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        trading::market_data_staleness("sim-feed", Duration::from_nanos(now.saturating_sub(sent)));
    }
    let deviation = {
        let mut averages = state.averages.lock().unwrap_or_else(|p| p.into_inner());
        let avg = averages.entry(symbol.to_owned()).or_insert(mid);
        let deviation = (mid - *avg) / *avg;
        *avg = *avg * 0.9 + mid * 0.1;
        deviation
    };
    // Mean reversion: sell what rose, buy what fell — on 60 % of the signals.
    if deviation.abs() < 0.0005 || state.rng.unit() > 0.6 {
        return json!({ "action": "none" });
    }
    let side = if deviation > 0.0 { "sell" } else { "buy" };
    let cl_ord_id = format!(
        "C-{}-{}",
        std::process::id(),
        state.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let quantity = state.rng.range(10.0, 400.0).round() as u64;
    let order = json!({
        "cl_ord_id": cl_ord_id,
        "strategy": STRATEGY,
        "symbol": symbol,
        "side": side,
        "quantity": quantity,
        "price": if side == "buy" { ask } else { bid },
    });
    match place_order(state, &order, &cl_ord_id, side, received) {
        Ok(report) => json!({ "action": "order", "cl_ord_id": cl_ord_id, "report": report }),
        Err(e) => json!({ "action": "order", "cl_ord_id": cl_ord_id, "error": e.to_string() }),
    }
}

#[instrument_trade(operation = "place_order", strategy = STRATEGY, cl_ord_id = cl_ord_id, side = side, err)]
fn place_order(
    state: &State,
    order: &Value,
    cl_ord_id: &str,
    side: &str,
    received: Instant,
) -> Result<Value, OrderError> {
    let span = tracing::info_span!("risk.check", otel.kind = "client", peer.service = "risk");
    let verdict =
        (state.risk.call(span, "/check", order)).map_err(|e| OrderError::Downstream("risk", e))?;
    if verdict["approved"] != Value::Bool(true) {
        let reason = verdict["reason"].as_str().unwrap_or("no reason").to_owned();
        return Err(OrderError::Refused(reason));
    }
    trading::tick_to_trade_latency(STRATEGY, received.elapsed());
    let span = tracing::info_span!(
        "order.route",
        otel.kind = "client",
        peer.service = "order-router"
    );
    let report = (state.router.call(span, "/orders", order))
        .map_err(|e| OrderError::Downstream("order-router", e))?;
    tracing::info!(cl_ord_id, side, ord_status = %report["report"]["status"].as_str().unwrap_or("?"), "order done");
    Ok(report)
}
