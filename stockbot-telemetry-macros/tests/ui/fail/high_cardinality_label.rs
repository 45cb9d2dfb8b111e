#![allow(unused_variables)]

use stockbot_telemetry::instrument_trade;

#[instrument_trade(operation = "submit_order", cl_ord_id = id, venue = venue, labels(venue, cl_ord_id))]
fn submit(id: &str, venue: &str) {}

fn main() {}
