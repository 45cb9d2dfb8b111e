use stockbot_telemetry::instrument_trade;

#[instrument_trade(operation = "event_loop")]
fn event_loop() -> ! {
    loop {}
}

fn main() {}
