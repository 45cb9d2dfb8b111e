//! The process-wide entry point: installs once, bridges the `log` crate, refuses a second call.
//! (One test in this binary: it sets process globals.)

mod common;

use std::time::Duration;

use common::{Buffer, config};
use stockbot_telemetry::{ErrorKind, TelemetryBuilder};

#[test]
fn init_installs_globals_once_and_bridges_log_records() {
    let buf = Buffer::default();
    let mut c = config();
    c.log.filter = "info".into();
    c.log.sampling.push(stockbot_telemetry::SamplingRule {
        target: "noisy_dep".into(),
        first: 2,
        thereafter: 1000,
        interval: Duration::from_secs(3600),
    });
    let guard = TelemetryBuilder::new(c)
        .with_writer("mem", buf.clone())
        .install()
        .unwrap();

    tracing::info!(target: "logs", "from tracing");
    log::info!(target: "legacy_dep::client", "from the log crate: {}", 42);
    log::debug!(target: "legacy_dep::client", "filtered out");
    std::thread::spawn(|| tracing::info!(target: "logs", "from a plain thread"))
        .join()
        .unwrap();

    // A second call is an error, never a panic, and changes nothing.
    let err = stockbot_telemetry::init(config()).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::AlreadyInitialized { .. }),
        "{err}"
    );

    guard.set_filter("debug").unwrap();
    log::debug!(target: "legacy_dep::client", "now shown");
    // Sampling applies to `log` records by their real target and call site.
    for _ in 0..20 {
        log::info!(target: "noisy_dep::pool", "connection recycled");
    }

    assert!(guard.flush(Duration::from_secs(10)));
    let lines = buf.user_lines();
    let messages: Vec<&str> = lines
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "from tracing",
            "from the log crate: 42",
            "from a plain thread",
            "now shown",
            "connection recycled",
            "connection recycled"
        ]
    );
    assert_eq!(guard.stats().sampled_away, 18);
    let bridged = &lines[1];
    assert_eq!(bridged["log.logger"], "legacy_dep::client");
    assert_eq!(
        bridged["log.origin.file.name"],
        "stockbot-telemetry/tests/init.rs"
    );
    assert!(bridged.get("extra.log.target").is_none(), "{bridged:?}");
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(
        report.completed && report.stats.accounted_for(),
        "{report:?}"
    );
}
