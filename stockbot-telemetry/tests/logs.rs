//! The log pipeline end to end: schema, enrichment, redaction, escaping, truncation, spans,
//! sampling, filters and golden output.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{Buffer, config, with_capture};
use serde_json::{Value, json};
use stockbot_telemetry::{SamplingRule, SchemaMode, SimClock, TelemetryBuilder};
use tracing::{info, info_span, warn};

#[test]
fn golden_output_is_pinned() {
    let sim = SimClock::new(UNIX_EPOCH + Duration::from_micros(1_732_400_000_123_456));
    let buf = Buffer::default();
    let mut c = config();
    c.service.deployment_mode = stockbot_telemetry::DeploymentMode::Paper;
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", buf.clone())
        .with_sim_clock(sim.clone())
        .build_dispatch()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        info!(target: "logs::orders", cl_ord_id = "C-1001", symbol = "AAPL", side = "buy", quantity = 100u64, price = 189.25, venue = "XNAS", "order accepted");
        sim.advance(Duration::from_micros(250));
        warn!(target: "logs::orders", reject_reason = "price_band", audit = true, "order rejected");
        sim.advance(Duration::from_micros(1));
        info!(target: "logs::orders", account = "ACC-7788", password = "hunter2", "login with card 4111 1111 1111 1111");
        info!(target: "other_crate::net", retries = 3, "dependency event\r\nwith \u{1b}[31mcontrol\u{1b}[0m chars");
    });
    assert!(guard.flush(Duration::from_secs(10)));
    // Normalise what legitimately varies between runs and machines, keeping the raw text
    // (and so the field order) otherwise.
    let normalised: String = buf
        .text()
        .lines()
        .filter(|l| !l.contains(r#""log.logger":"stockbot_telemetry""#))
        .map(|line| {
            let m: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
            let mut line = line.to_owned();
            for (k, v) in [
                ("process.pid", "1"),
                ("process.thread.name", "\"test\""),
                ("event.ingested", "\"INGESTED\""),
                ("log.origin.file.line", "1"),
            ] {
                if let Some(actual) = m.get(k) {
                    line = line.replace(&format!("\"{k}\":{actual}"), &format!("\"{k}\":{v}"));
                }
            }
            line + "\n"
        })
        .collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/logs.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &normalised).unwrap();
    }
    let expected =
        std::fs::read_to_string(path).expect("golden file (run with UPDATE_GOLDEN=1 to create)");
    assert_eq!(
        normalised, expected,
        "output differs from {path}; review and rerun with UPDATE_GOLDEN=1"
    );
    // Field order: @timestamp first, then level and message (serde_json keeps insertion order
    // only with preserve_order, so check the raw text).
    for line in buf.text().lines() {
        assert!(line.starts_with(r#"{"@timestamp":""#), "{line}");
        assert!(line.contains(r#"Z","log.level":""#), "{line}");
    }
}

#[test]
fn records_carry_identity_and_schema_fields() {
    let (_, buf, _guard) = with_capture(config(), || {
        info!(target: "logs", order_id = "O-1", cl_ord_id = "C-1", strategy = "mm-1", "hello");
    });
    let lines = buf.user_lines();
    assert_eq!(lines.len(), 1);
    let r = &lines[0];
    for (k, v) in [
        ("message", json!("hello")),
        ("log.level", json!("INFO")),
        ("ecs.version", json!("8.11.0")),
        ("schema.version", json!("1.0.0")),
        ("service.name", json!("test-service")),
        ("service.version", json!("1.2.3")),
        ("service.environment", json!("dev")),
        ("deployment.mode", json!("live")),
        ("host.name", json!("test-host")),
        ("event.dataset", json!("test-service.log")),
        ("log.logger", json!("logs")),
        ("order.id", json!("O-1")),
        ("order.cl_ord_id", json!("C-1")),
        ("strategy.name", json!("mm-1")),
    ] {
        assert_eq!(r.get(k), Some(&v), "{k} in {r:?}");
    }
    assert_eq!(r["process.pid"], json!(std::process::id()));
    let ts = r["@timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z'));
}

#[test]
fn strict_mode_reports_unknown_and_mistyped_fields_once_per_call_site() {
    let (_, buf, guard) = with_capture(config(), || {
        for _ in 0..3 {
            info!(target: "logs", cl_ordid = "C-1", quantity = "lots", "typo");
        }
    });
    let lines = buf.lines();
    let events: Vec<_> = lines.iter().filter(|m| m["message"] == "typo").collect();
    assert_eq!(events.len(), 3);
    for e in &events {
        assert_eq!(e["extra.cl_ordid"], "C-1");
        assert_eq!(e["extra.quantity"], "lots");
        let errors = e["schema.errors"].as_str().unwrap();
        assert!(
            errors.contains("unknown field `cl_ordid` (did you mean `cl_ord_id`?)"),
            "{errors}"
        );
        assert!(
            errors.contains("field `quantity` expects number, got str"),
            "{errors}"
        );
    }
    let diagnostics: Vec<_> = lines
        .iter()
        .filter(|m| m["log.logger"] == "stockbot_telemetry::schema")
        .collect();
    assert_eq!(diagnostics.len(), 1, "{lines:#?}");
    assert_eq!(diagnostics[0]["log.level"], "ERROR");
    assert!(
        diagnostics[0]["message"]
            .as_str()
            .unwrap()
            .contains("tests/logs.rs")
    );
    let stats = guard.stats();
    assert_eq!(stats.unknown_fields, 3);
    assert_eq!(stats.type_errors, 3);
}

#[test]
fn dependencies_and_lenient_mode_pass_without_schema_errors() {
    let mut c = config();
    let (_, buf, _) = with_capture(c.clone(), || {
        info!(target: "hyper::client", pool_size = 4, "dependency");
    });
    let r = &buf.user_lines()[0];
    assert_eq!(r["extra.pool_size"], 4);
    assert!(!r.contains_key("schema.errors"));

    c.log.schema = SchemaMode::Lenient;
    let (_, buf, guard) = with_capture(c, || info!(target: "logs", mystery = true, "own"));
    let r = &buf.user_lines()[0];
    assert_eq!(r["extra.mystery"], true);
    assert!(!r.contains_key("schema.errors"));
    assert!(
        buf.lines()
            .iter()
            .all(|m| m["log.logger"] != "stockbot_telemetry::schema")
    );
    assert_eq!(guard.stats().unknown_fields, 1);
}

#[test]
fn custom_fields_extend_the_schema() {
    let mut c = config();
    c.log.fields.push(stockbot_telemetry::CustomField::new(
        "signal_strength",
        "f64",
    ));
    let (_, buf, _) = with_capture(
        c,
        || info!(target: "logs", signal_strength = 0.75, "signal"),
    );
    let r = &buf.user_lines()[0];
    assert_eq!(r["signal_strength"], 0.75);
    assert!(!r.contains_key("schema.errors"));
}

#[test]
fn reserved_fields_cannot_be_overridden() {
    let (_, buf, _) = with_capture(
        config(),
        || info!(target: "logs", message = "spoof", host.name = "evil"),
    );
    let r = &buf.user_lines()[0];
    assert_eq!(r["host.name"], "test-host");
    assert_eq!(r["extra.host.name"], "evil");
    assert!(r["schema.errors"].as_str().unwrap().contains("reserved"));
}

#[derive(Debug)]
#[allow(dead_code)]
struct LoginRequest {
    user: &'static str,
    password: &'static str,
    api_key: &'static str,
}

#[test]
fn secrets_never_reach_the_sink() {
    let secrets = [
        "hunter2-very-secret",
        "4111111111111111",
        "4111 1111 1111 1111",
        "DE89370400440532013000",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "ACC-0042-PRIVATE",
        "s3cr3t-bearer-token-value",
    ];
    let (_, buf, guard) = with_capture(config(), || {
        let req = LoginRequest {
            user: "ops",
            password: "hunter2-very-secret",
            api_key: "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        };
        info!(target: "logs", ?req, "login request");
        info!(target: "logs", password = "hunter2-very-secret", "field by class");
        info!(target: "logs", "card 4111111111111111 and 4111 1111 1111 1111, iban DE89370400440532013000");
        info!(target: "logs", header = "Authorization: Bearer s3cr3t-bearer-token-value", "header");
        info!(target: "logs", url = "https://ops:hunter2-very-secret@broker.example/api", "connecting");
        info!(target: "logs", note = "aws AKIAIOSFODNN7EXAMPLE jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "keys");
        info!(target: "logs", account = "ACC-0042-PRIVATE", "account activity");
        let span = info_span!("session", account_id = "ACC-0042-PRIVATE");
        let _e = span.enter();
        info!(target: "logs", "inside session");
    });
    let text = buf.text();
    for s in secrets {
        assert!(!text.contains(s), "secret {s:?} leaked:\n{text}");
    }
    let lines = buf.user_lines();
    let account = lines
        .iter()
        .find(|m| m["message"] == "account activity")
        .unwrap();
    let pseudonym = account["account.id"].as_str().unwrap();
    assert!(pseudonym.starts_with("pseu_"), "{pseudonym}");
    let in_span = lines
        .iter()
        .find(|m| m["message"] == "inside session")
        .unwrap();
    assert_eq!(
        in_span["account.id"], pseudonym,
        "same key, same pseudonym: searchable"
    );
    assert!(guard.stats().redactions >= 8);
}

#[test]
fn hostile_values_give_one_escaped_line_per_event() {
    let huge = "x".repeat(1 << 20);
    let (_, buf, guard) = with_capture(config(), || {
        info!(target: "logs", blob = huge.as_str(), shown = %huge, "big");
        info!(target: "logs", "line one\r\nline two\n\u{1b}[2J\u{0}\u{7}");
        info!(target: "logs", bytes = ?b"\xff\xfe invalid utf8", "bytes");
        info!(target: "logs", nan = f64::NAN, inf = f64::INFINITY, "floats");
    });
    let text = buf.text();
    let user: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""log.logger":"logs""#))
        .collect();
    assert_eq!(user.len(), 4, "{text}");
    let big: Value = serde_json::from_str(user[0]).unwrap();
    let blob = big["extra.blob"].as_str().unwrap();
    assert!(
        blob.len() < 9000 && blob.ends_with("…[truncated 1040384 of 1048576 bytes]"),
        "{}",
        &blob[blob.len() - 60..]
    );
    let shown = big["extra.shown"].as_str().unwrap();
    assert!(shown.len() < 9000 && shown.ends_with("…[truncated]"));
    assert_eq!(big["log.truncated"], true);
    let ctl: Value = serde_json::from_str(user[1]).unwrap();
    assert_eq!(ctl["message"], "line one\r\nline two\n\u{1b}[2J\u{0}\u{7}");
    assert!(!user[1].contains('\u{1b}') && !user[1].contains('\r'));
    let floats: Value = serde_json::from_str(user[3]).unwrap();
    assert_eq!(floats["extra.nan"], Value::Null);
    assert_eq!(guard.stats().truncated, 1);
}

#[test]
fn spans_give_ids_and_their_fields_to_events() {
    let (_, buf, _) = with_capture(config(), || {
        let root = info_span!("route_order", cl_ord_id = "C-9", venue = "XNAS");
        let _r = root.enter();
        info!(target: "logs", "in root");
        let child = info_span!("risk_check", risk_check = "notional");
        let _c = child.enter();
        info!(target: "logs", venue = "BATS", "in child");
    });
    let lines = buf.user_lines();
    let (root, child) = (&lines[0], &lines[1]);
    assert_eq!(root["order.cl_ord_id"], "C-9");
    assert_eq!(root["span.name"], "route_order");
    assert_eq!(child["span.name"], "risk_check");
    assert_eq!(
        child["order.cl_ord_id"], "C-9",
        "inherited from the parent span"
    );
    assert_eq!(child["venue.name"], "BATS", "the event's own value wins");
    assert_eq!(child["risk.check"], "notional");
    assert_eq!(root["trace.id"], child["trace.id"]);
    assert_ne!(root["span.id"], child["span.id"]);
    assert_eq!(root["trace.id"].as_str().unwrap().len(), 32);
    assert_eq!(root["span.id"].as_str().unwrap().len(), 16);
}

#[test]
fn noisy_call_sites_are_sampled_but_audit_events_never() {
    let mut c = config();
    c.log.sampling.push(SamplingRule {
        target: "logs::feed".into(),
        first: 5,
        thereafter: 10,
        interval: Duration::from_secs(3600),
    });
    let (_, buf, guard) = with_capture(c, || {
        for i in 0..105u64 {
            tracing::debug!(target: "logs::feed", seq_num = i, "tick");
            info!(target: "logs::feed", seq_num = i, audit = true, "fill");
        }
    });
    let lines = buf.user_lines();
    let ticks: Vec<_> = lines.iter().filter(|m| m["message"] == "tick").collect();
    assert_eq!(ticks.len(), 5 + 10);
    assert_eq!(ticks[5]["log.sampled_away"], 9);
    assert_eq!(lines.iter().filter(|m| m["message"] == "fill").count(), 105);
    assert_eq!(guard.stats().sampled_away, 90);
}

#[test]
fn level_filter_changes_at_run_time() {
    let mut c = config();
    c.log.filter = "info".into();
    let buf = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::debug!(target: "logs", "hidden");
        guard.set_filter("debug").unwrap();
        tracing::debug!(target: "logs", "shown");
        assert!(guard.set_filter("debug,x=loud").is_err());
        guard.set_filter("warn,logs=error").unwrap();
        warn!(target: "logs", "hidden again");
        warn!(target: "elsewhere", "shown too");
    });
    assert!(guard.flush(Duration::from_secs(10)));
    let messages: Vec<_> = buf
        .user_lines()
        .iter()
        .map(|m| m["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages, vec!["shown", "shown too"]);
}

#[test]
fn mistyped_sensitive_fields_keep_their_class() {
    let mut c = config();
    c.log.redaction.secret_fields.push("pin_code".into());
    let (_, buf, _) = with_capture(c, || {
        info!(target: "logs", account = 12_345_678u64, pin_code = 4321, password = 99, "mistyped");
    });
    let text = buf.text();
    assert!(
        !text.contains("12345678") && !text.contains("4321"),
        "{text}"
    );
    let r = &buf.user_lines()[0];
    assert!(
        r["extra.account"].as_str().unwrap().starts_with("pseu_"),
        "{r:?}"
    );
    assert_eq!(r["extra.pin_code"], "[REDACTED]");
    assert_eq!(r["extra.password"], "[REDACTED]");
}

#[test]
fn no_key_is_written_twice() {
    let (_, buf, _) = with_capture(config(), || {
        let span = info_span!("req", pool_size = 1, quantity = "lots");
        let _e = span.enter();
        info!(target: "logs", pool_size = 2, quantity = "many", "x");
    });
    let line = buf
        .text()
        .lines()
        .find(|l| l.contains(r#""message":"x""#))
        .unwrap()
        .to_owned();
    for key in [r#""extra.pool_size":"#, r#""extra.quantity":"#] {
        assert_eq!(line.matches(key).count(), 1, "{line}");
    }
    let r: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(r["extra.pool_size"], 2, "the event's own value wins");
}

#[test]
fn events_inside_an_audit_span_are_never_sampled() {
    let mut c = config();
    c.log.sampling.push(SamplingRule {
        target: "logs::fills".into(),
        first: 1,
        thereafter: 1000,
        interval: Duration::from_secs(3600),
    });
    let (_, buf, _) = with_capture(c, || {
        let span = info_span!("fill", audit = true, cl_ord_id = "C-1");
        let _e = span.enter();
        for _ in 0..50 {
            info!(target: "logs::fills", "filled");
        }
    });
    assert_eq!(
        buf.user_lines()
            .iter()
            .filter(|m| m["message"] == "filled")
            .count(),
        50
    );
}

#[test]
fn a_cut_value_does_not_leak_the_head_of_a_secret() {
    let mut c = config();
    c.log.max_field_bytes = 64;
    let (_, buf, _) = with_capture(c, || {
        let note = format!("{}4111 1111 1111 1111", "x ".repeat(25));
        info!(target: "logs", note = note.as_str(), "cut");
    });
    let text = buf.text();
    assert!(!text.contains("4111"), "{text}");
}

#[test]
fn foreign_lines_and_fix_messages_become_redacted_searchable_records() {
    let buf = Buffer::default();
    let (_dispatch, guard) = TelemetryBuilder::new(config())
        .with_writer("mem", buf.clone())
        .build_dispatch()
        .unwrap();
    let fix = [
        "8=FIX.4.4|9=150|35=D|49=BROKER|56=XNAS|11=C-2001|55=AAPL|54=1|38=100|44=189.25|40=2|59=0|1=ACC-7788|10=012|",
        "8=FIX.4.4\u{1}35=8\u{1}11=C-2001\u{1}39=8\u{1}58=price band\u{1}10=200\u{1}",
        "8=FIX.4.4|35=A|553=trader1|554=hunter2-fix-password|89=sig-secret-value|79=ALLOC-991|",
    ];
    for line in fix {
        guard.ingest_line("fix-gateway", line);
    }
    guard.ingest_line(
        "risk-sidecar",
        r#"level=warn msg="limit near" cl_ord_id=C-2001 usage=0.93 api_key=sk_live_0123456789abcdefABCD"#,
    );
    guard.ingest_line(
        "feed-handler",
        r#"{"level":"error","msg":"gap","seq":{"expected":10,"got":12}}"#,
    );
    guard.ingest_line("legacy", "plain text from a legacy tool");
    assert!(guard.flush(Duration::from_secs(10)));
    let text = buf.text();
    for secret in [
        "ACC-7788",
        "hunter2-fix-password",
        "sk_live_0123456789abcdefABCD",
    ] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["log.logger"] == "ingest")
        .collect();
    assert_eq!(records.len(), 6);
    let order: Vec<&Value> = records
        .iter()
        .filter(|r| r["order.cl_ord_id"] == "C-2001")
        .collect();
    assert_eq!(order.len(), 3, "the order's records, whatever their source");
    let new_order = &records[0];
    assert_eq!(new_order["message"], "FIX NewOrderSingle");
    assert_eq!(new_order["order.side"], "buy");
    assert_eq!(new_order["order.quantity"].as_f64(), Some(100.0));
    assert_eq!(new_order["instrument.symbol"], "AAPL");
    assert!(
        new_order["account.id"]
            .as_str()
            .unwrap()
            .starts_with("pseu_")
    );
    assert_eq!(new_order["extra.ingest.source"], "fix-gateway");
    assert_eq!(
        records[1]["log.level"], "WARN",
        "a rejected execution report"
    );
    assert_eq!(records[1]["order.status"], "rejected");
    assert_eq!(records[3]["log.level"], "WARN");
    assert_eq!(records[4]["extra.seq.got"], json!(12));
    assert_eq!(records[5]["message"], "plain text from a legacy tool");
    let stats = guard.shutdown(Duration::from_secs(10)).stats;
    assert!(stats.accounted_for(), "{stats:?}");
}
