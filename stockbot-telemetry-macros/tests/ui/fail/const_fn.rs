use stockbot_telemetry::instrument_trade;

#[instrument_trade(operation = "tick_size")]
const fn tick_size() -> u32 {
    1
}

fn main() {}
