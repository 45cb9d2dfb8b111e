#![allow(unused_variables)]

use stockbot_telemetry::instrument_trade;

#[instrument_trade(operation = "submit_order", cl_ordid = id)]
fn submit(id: &str) {}

fn main() {}
