//! A small trading service on the embedded defaults: JSON logs on stdout and in a rolling file
//! under `./logs`, metrics on `http://127.0.0.1:9464/metrics`, no backend needed.
//!
//! ```text
//! cargo run -p examples --bin quickstart -- --orders 20
//! cargo run -p examples --bin quickstart -- --duration 60   # keep running (and serving metrics)
//! ```

use std::time::{Duration, Instant};

use stockbot_telemetry::trading::{self, RejectReason, Side};
use tracing::{debug, error, info, info_span, warn};

#[derive(Debug)]
struct VenueCredentials {
    #[allow(dead_code)]
    user: &'static str,
    #[allow(dead_code)]
    api_key: &'static str,
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let duration = arg("--duration")
        .map(|s| s.parse().map(Duration::from_secs_f64))
        .transpose()?;
    let orders: u64 = arg("--orders")
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(if duration.is_some() { u64::MAX } else { 10 });

    // Defaults, then STOCKBOT_CONFIG's file, then OTEL_* / RUST_LOG / STOCKBOT_* variables.
    let mut config = stockbot_telemetry::Config::load()?;
    if config.service.name == "unknown_service" {
        config.service.name = "quickstart".into();
    }
    config.service.version = env!("CARGO_PKG_VERSION").into();
    config.service.deployment_mode = stockbot_telemetry::DeploymentMode::Paper;
    config
        .log
        .sampling
        .push(stockbot_telemetry::SamplingRule::new(
            "quickstart::market_data",
        ));
    let guard = stockbot_telemetry::init(config)?;

    let creds = VenueCredentials {
        user: "desk-7",
        api_key: "sk_live_51HxAbCdEfGh0123456789",
    };
    info!(venue = "XNAS", ?creds, "connected to venue");
    // A dependency that logs through the `log` crate lands in the same schema.
    log::info!(target: "legacy_gateway::session", "FIX session established");

    let start = Instant::now();
    let mut n = 0;
    while n < orders && duration.is_none_or(|d| start.elapsed() < d) {
        let cl_ord_id = format!("C-{:05}", 1000 + n);
        let venue = if n % 3 == 0 { "BATS" } else { "XNAS" };
        let span = info_span!("route_order", cl_ord_id = %cl_ord_id, symbol = "AAPL", strategy = "mean-revert", venue);
        let _entered = span.enter();
        for seq in 0..50u64 {
            debug!(target: "quickstart::market_data", seq_num = n * 50 + seq, "tick");
        }
        trading::tick_to_trade_latency("mean-revert", Duration::from_micros(40 + n % 30));
        trading::order_submitted(venue, "mean-revert");
        info!(
            side = "buy",
            quantity = 100u64,
            price = 189.25,
            account = "ACC-0042",
            audit = true,
            event.action = "order_submitted",
            "order submitted"
        );
        match n % 5 {
            3 => {
                let reason = RejectReason::from_venue_text("Price outside LULD band");
                trading::order_rejected(venue, "mean-revert", reason);
                warn!(
                    reject_reason = reason.as_str(),
                    audit = true,
                    event.action = "order_rejected",
                    "order rejected"
                );
            }
            4 => error!(
                error.kind = "timeout",
                "venue did not acknowledge within 250ms"
            ),
            _ => {
                trading::order_acked(
                    venue,
                    "mean-revert",
                    Duration::from_micros(150 + (n * 37) % 400),
                );
                trading::fill(venue, "mean-revert", Side::Buy, n % 2 == 0);
                trading::slippage_bps(venue, "mean-revert", ((n % 7) as f64 - 3.0) * 0.4);
                info!(
                    fill_qty = 100u64,
                    fill_price = 189.24,
                    slippage_bps = -0.53,
                    audit = true,
                    event.action = "order_filled",
                    "order filled"
                );
            }
        }
        trading::pnl("mean-revert", "USD", n as f64 * 1.5);
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }

    let log_file = guard.log_file().map(|p| p.display().to_string());
    let metrics = guard.metrics_addr().map(|a| format!("http://{a}/metrics"));
    let report = guard.shutdown(Duration::from_secs(5));
    eprintln!("\n{n} orders routed\n{report}");
    if let Some(file) = log_file {
        eprintln!("log file: {file}");
    }
    if let Some(url) = metrics {
        eprintln!("metrics were served on {url}");
    }
    Ok(())
}
