#![allow(unused_variables)]

use stockbot_telemetry::instrument_trade;

#[instrument_trade(operation = "submit order!")]
fn submit() {}

fn main() {}
