//! A batch job pushes to a real Pushgateway (Debian's `prometheus-pushgateway`): its group
//! appears while it runs, keyed by job only, and is deleted when the job ends. Fails (never
//! skips) when the binary is missing (`scripts/install-test-deps.sh` installs it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stockbot_telemetry::{PushConfig, TelemetryBuilder};
use stockbot_telemetry_testing::prometheus::{free_port, get};

const PUSHGATEWAY_BIN: &str = "/usr/bin/prometheus-pushgateway";

struct Gateway(Child, String, u16);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_gateway() -> Gateway {
    assert!(
        std::path::Path::new(PUSHGATEWAY_BIN).exists(),
        "{PUSHGATEWAY_BIN} not found: install the Debian package `prometheus-pushgateway` (scripts/install-test-deps.sh does)"
    );
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(PUSHGATEWAY_BIN)
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the pushgateway");
    let gateway = Gateway(child, addr, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !get(gateway.2, "/-/ready").is_ok_and(|(status, _)| status == 200) {
        assert!(Instant::now() < deadline, "pushgateway not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    gateway
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_batch_job_pushes_while_it_runs_and_its_group_is_deleted_at_the_end() {
    let gateway = start_gateway();
    let mut config = stockbot_telemetry_testing::test_config();
    let mut push = PushConfig::new(format!("http://{}", gateway.1), "eod_reconciliation");
    push.interval = Duration::from_millis(100);
    config.metrics.push = Some(push);
    let (_, guard) = TelemetryBuilder::new(config)
        .with_writer("mem", std::io::sink())
        .build()
        .unwrap();
    let recorder = guard.metrics_recorder().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("stockbot_reconciled_trades_total", "venue" => "XNAS").increment(42);
    });
    wait_until("the pushgateway has our group", || {
        get(gateway.2, "/metrics").is_ok_and(|(_, b)| {
            b.lines().any(|l| {
                l.starts_with("stockbot_reconciled_trades_total{")
                    && l.contains(r#"job="eod_reconciliation""#)
                    && l.contains(r#"instance="""#)
                    && l.ends_with(" 42")
            })
        })
    });
    let rendered = guard.render_metrics().unwrap();
    assert!(rendered.contains(r#"stockbot_telemetry_push_total{service="test-service",environment="dev",deployment_mode="live",target="pushgateway",result="ok"}"#), "{rendered}");
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.completed);
    let (_, body) = get(gateway.2, "/metrics").unwrap();
    assert!(
        !body.contains("eod_reconciliation"),
        "group deleted at the end of the job:\n{body}"
    );
}
