//! A small trading service on the embedded defaults: JSON logs on stdout and in a rolling file
//! under `./logs`, no backend needed.
//!
//! ```text
//! cargo run -p examples --bin quickstart -- --orders 20
//! ```

use std::time::Duration;

use tracing::{debug, error, info, info_span, warn};

#[derive(Debug)]
struct VenueCredentials {
    #[allow(dead_code)]
    user: &'static str,
    #[allow(dead_code)]
    api_key: &'static str,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let orders: u64 = std::env::args()
        .skip_while(|a| a != "--orders")
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10);

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

    for n in 0..orders {
        let cl_ord_id = format!("C-{:05}", 1000 + n);
        let span = info_span!("route_order", cl_ord_id = %cl_ord_id, symbol = "AAPL", strategy = "mean-revert");
        let _entered = span.enter();
        for seq in 0..50u64 {
            debug!(target: "quickstart::market_data", seq_num = n * 50 + seq, "tick");
        }
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
            3 => warn!(
                reject_reason = "price_band",
                audit = true,
                event.action = "order_rejected",
                "order rejected"
            ),
            4 => error!(
                error.kind = "timeout",
                "venue did not acknowledge within 250ms"
            ),
            _ => info!(
                fill_qty = 100u64,
                fill_price = 189.24,
                slippage_bps = -0.53,
                audit = true,
                event.action = "order_filled",
                "order filled"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let log_file = guard.log_file().map(|p| p.display().to_string());
    let report = guard.shutdown(Duration::from_secs(5));
    eprintln!("\n{report}");
    if let Some(file) = log_file {
        eprintln!("log file: {file}");
    }
    Ok(())
}
