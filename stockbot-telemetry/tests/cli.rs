//! The `stockbot-telemetry generate …` command (feature `cli`): every output written, checked
//! by the real promtool and amtool with `--check`, bad input refused with the item named.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;

const SPEC: &str = r#"
service = "order-router"
team = "execution"
escalation = ["15m"]

[[slo]]
name = "order_acceptance"
objective = 0.999
ratio = { errors = { metric = "stockbot_orders_rejected_total" }, total = { metric = "stockbot_orders_submitted_total" } }
"#;

const ROUTING: &str = r#"
default_receiver = "default"

[[receiver]]
name = "default"

[[receiver]]
name = "oncall"
webhook = "http://127.0.0.1:9099/oncall"

[[receiver]]
name = "secondary"
webhook = "http://127.0.0.1:9099/secondary"

[[team]]
team = "execution"
page = "oncall"
ticket = "oncall"
escalation = ["secondary"]
"#;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stockbot-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cli(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stockbot-telemetry"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the command, which must succeed; its stdout.
fn ok(args: &[&str], cwd: &Path) -> String {
    let (code, out, err) = cli(args, cwd);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

#[test]
fn every_output_is_written_and_checked_by_the_real_tools() {
    let d = dir("ok");
    std::fs::write(d.join("alerting.toml"), SPEC).unwrap();
    std::fs::write(d.join("routing.toml"), ROUTING).unwrap();
    std::fs::write(
        d.join("telemetry.toml"),
        "[service]\nname = \"order-router\"\n",
    )
    .unwrap();
    let out = ok(
        &[
            "generate",
            "rules",
            "--spec",
            "alerting.toml",
            "--out",
            "gen",
            "--check",
        ],
        &d,
    );
    assert!(
        out.matches("SUCCESS").count() >= 2,
        "promtool check and test ran: {out}"
    );
    assert!(d.join("gen/order-router.rules.yml").is_file());
    assert!(d.join("gen/order-router.rules.test.yml").is_file());

    let out = ok(
        &[
            "generate",
            "alertmanager",
            "--notifications",
            "routing.toml",
            "--spec",
            "alerting.toml",
            "--out",
            "gen",
            "--check",
        ],
        &d,
    );
    assert!(out.contains("SUCCESS"), "amtool ran: {out}");

    ok(
        &[
            "generate",
            "dashboards",
            "--spec",
            "alerting.toml",
            "--out",
            "gen",
        ],
        &d,
    );
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("gen/order-router.dashboard.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["uid"], "stockbot-order-router");

    ok(
        &[
            "generate",
            "index-template",
            "--config",
            "telemetry.toml",
            "--out",
            "gen",
        ],
        &d,
    );
    let written: Vec<_> = std::fs::read_dir(d.join("gen"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".index-template.json") || n.ends_with(".ilm-policy.json"))
        .collect();
    assert_eq!(written.len(), 2, "{written:?}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn bad_input_is_refused_naming_the_item() {
    let d = dir("bad");
    std::fs::write(d.join("alerting.toml"), SPEC.replace("0.999", "1.5")).unwrap();
    let (code, _, err) = cli(&["generate", "rules", "--spec", "alerting.toml"], &d);
    assert_eq!(code, 1);
    assert!(
        err.contains("alerting.toml") && err.contains("slo[0].objective"),
        "{err}"
    );
    // The spec escalates once, the routing never: refused.
    std::fs::write(d.join("alerting.toml"), SPEC).unwrap();
    std::fs::write(
        d.join("routing.toml"),
        ROUTING.replace("escalation = [\"secondary\"]", ""),
    )
    .unwrap();
    let (code, _, err) = cli(
        &[
            "generate",
            "alertmanager",
            "--notifications",
            "routing.toml",
            "--spec",
            "alerting.toml",
        ],
        &d,
    );
    assert_eq!(code, 1);
    assert!(err.contains("escalation"), "{err}");
    let (code, _, err) = cli(&["generate", "graphs"], &d);
    assert_eq!(code, 1);
    assert!(err.contains("unknown output \"graphs\""), "{err}");
    let (code, _, err) = cli(&["make"], &d);
    assert_eq!(code, 2);
    assert!(err.contains("usage:"), "{err}");
    let _ = std::fs::remove_dir_all(d);
}
