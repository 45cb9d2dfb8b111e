//! Process-wide capture: plain `std::thread::spawn` is caught. One test in this binary.

use stockbot_telemetry_testing::Capture;

#[test]
fn global_capture_sees_plain_threads() {
    let capture = Capture::global();
    std::thread::spawn(|| tracing::info!(venue = "XNAS", "from a plain thread"))
        .join()
        .unwrap();
    capture
        .logs()
        .message("from a plain thread")
        .field("venue", "XNAS")
        .assert_one();
    capture.assert_schema_valid();
}
