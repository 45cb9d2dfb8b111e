#![allow(unused_variables)]

use stockbot_telemetry::instrument_trade;

#[instrument_trade(operation = "submit_order", level = "loud", strategyy = s, labels(account))]
fn submit(s: &str, account: &str) {}

fn main() {
    // The function is still emitted: calling it adds no further error.
    submit("mm", "ACC-1");
}
