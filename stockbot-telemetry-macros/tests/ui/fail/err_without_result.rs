#![allow(unused_variables)]

use stockbot_telemetry::instrument_trade;

#[instrument_trade(operation = "submit_order", err)]
fn submit() -> Option<u32> {
    None
}

fn main() {}
