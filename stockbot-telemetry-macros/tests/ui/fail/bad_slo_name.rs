use stockbot_telemetry::instrument_trade;

#[instrument_trade(slo = "Order-Submission")]
fn submit() {}

#[instrument_trade(slo = order_submission)]
fn cancel() {}

fn main() {}
