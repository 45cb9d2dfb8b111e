#![allow(unused_variables)]

use stockbot_telemetry::instrument_trade;

#[instrument_trade(operation = "submit_order", outcome = result)]
fn submit(result: &str) {}

fn main() {}
