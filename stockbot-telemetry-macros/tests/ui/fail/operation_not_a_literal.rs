#![allow(unused_variables)]

use stockbot_telemetry::instrument_trade;

const OP: &str = "submit_order";

#[instrument_trade(operation = OP)]
fn submit() {}

fn main() {}
