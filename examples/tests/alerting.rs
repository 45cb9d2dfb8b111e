//! SLOs and alert rules as code, proven by the real Prometheus tools: the generated rule file
//! passes `promtool check rules`, and the generated `promtool test rules` cases — every alert
//! firing under synthetic series that breach it and quiet under series that do not — pass.
//! Bad specs are refused with errors that name the item.

use std::time::Duration;

use stockbot_telemetry::alerting::{
    Alert, AlertSpec, BurnWindow, Chat, Condition, Notifications, Override, Query, Receiver,
    Rotation, ServiceRoute, Severity, Shift, Slo, Smtp, TeamRoute,
};
use stockbot_telemetry_testing::alertmanager::{jiff, notified_at};
use stockbot_telemetry_testing::prometheus::{amtool, promtool};

/// The order router's spec: a ratio SLO, a latency SLO with a traffic guard, an SLO over
/// the calls of tied functions, a multi-condition alert and a gauge threshold.
fn spec() -> AlertSpec {
    let mut spec = AlertSpec::new("order-router", "execution");
    spec.slos.push(Slo::ratio(
        "order_acceptance",
        0.999,
        Query::metric("stockbot_orders_rejected_total"),
        Query::metric("stockbot_orders_submitted_total"),
    ));
    let mut latency = Slo::latency(
        "ack_latency",
        0.99,
        "stockbot_order_ack_latency_seconds",
        Duration::from_millis(5),
    );
    latency.min_rate = 1.0;
    spec.slos.push(latency);
    // The functions tied to it with `#[instrument_trade(slo = "order_submission")]`.
    spec.slos.push(Slo::calls("order_submission", 0.999));
    spec.alerts.push(Alert::high_reject_ratio(0.05, 10.0));
    spec.alerts.push(Alert::new(
        "RiskLimitNearlyUsed",
        Severity::Ticket,
        "A risk limit is more than 90 % used",
        vec![Condition::gauge(
            Query::metric("stockbot_risk_limit_utilisation_ratio"),
            ">",
            0.9,
        )],
    ));
    spec.absent
        .push("stockbot_tick_to_trade_latency_seconds".into());
    // A gauge in seconds: absent as itself (it has no `_count`).
    spec.absent
        .push("stockbot_market_data_staleness_seconds".into());
    // Pages escalate: the secondary after 15 minutes, the desk manager after an hour.
    spec.escalation = vec![Duration::from_secs(900), Duration::from_secs(3600)];
    spec
}

/// The routing: every kind of receiver, two teams, escalation tiers, a service override.
fn notifications() -> Notifications {
    let mut email = Receiver::new("execution-tickets");
    email.email = vec!["execution-team@stockbot.example".into()];
    let mut oncall = Receiver::new("execution-oncall");
    oncall.pagerduty_key_file = Some("/etc/alertmanager/secrets/pagerduty-execution".into());
    oncall.sms_webhook = Some("http://127.0.0.1:9099/sms".into());
    let mut secondary = Receiver::new("execution-secondary");
    secondary.chat = Some(Chat::new(
        "/etc/alertmanager/secrets/slack-execution",
        "#execution-oncall",
    ));
    let mut manager = Receiver::new("desk-manager");
    manager.sms_webhook = Some("http://127.0.0.1:9099/sms-manager".into());
    let mut risk = Receiver::new("risk-oncall");
    risk.webhook = Some("http://127.0.0.1:9099/risk".into());
    let mut fix = Receiver::new("fix-gateway-team");
    fix.webhook = Some("http://127.0.0.1:9099/fix".into());
    let fallback = Receiver::new("default");
    let mut execution = TeamRoute::new("execution", "execution-oncall", "execution-tickets");
    execution.escalation = vec!["execution-secondary".into(), "desk-manager".into()];
    execution.services.push(ServiceRoute::new(
        "fix-gateway",
        Some(Severity::Ticket),
        "fix-gateway-team",
    ));
    let mut n = Notifications::new(
        vec![email, oncall, secondary, manager, risk, fix, fallback],
        vec![
            execution,
            TeamRoute::new("risk", "risk-oncall", "risk-oncall"),
        ],
        "default",
    );
    n.smtp = Some(Smtp::new("127.0.0.1:25", "alertmanager@stockbot.example"));
    n
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stockbot-alerting-{name}-{}-{}",
        std::process::id(),
        stockbot_telemetry_testing::prometheus::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn generated_rules_pass_promtool_check_and_their_generated_unit_tests() {
    let spec = spec();
    let dir = tmp("rules");
    let rules = spec.prometheus_rules().unwrap();
    assert!(rules.contains("absent(stockbot_tick_to_trade_latency_seconds_count{"));
    assert!(rules.contains("absent(stockbot_market_data_staleness_seconds{"));
    assert!(!rules.contains("stockbot_market_data_staleness_seconds_count"));
    std::fs::write(dir.join("rules.yml"), &rules).unwrap();
    let out = promtool(&["check", "rules", dir.join("rules.yml").to_str().unwrap()])
        .unwrap_or_else(|e| panic!("{e}\n--- rules ---\n{rules}"));
    assert!(out.contains("SUCCESS"), "{out}");

    // Every selector is the live traffic of this service.
    for line in rules.lines().filter(|l| l.contains("expr:")) {
        if line.contains("_total{") || line.contains("_seconds") {
            assert!(
                line.contains(r#"deployment_mode=\"live\""#) || line.contains("slo:"),
                "{line}"
            );
        }
    }

    let tests = spec.prometheus_rule_tests("rules.yml").unwrap();
    std::fs::write(dir.join("tests.yml"), &tests.yaml).unwrap();
    let out = promtool(&["test", "rules", dir.join("tests.yml").to_str().unwrap()])
        .unwrap_or_else(|e| panic!("{e}\n--- tests ---\n{}", tests.yaml));
    assert!(out.contains("SUCCESS"), "{out}");

    // Each alert is shown to fire and to stay quiet.
    for name in [
        "OrderAcceptanceBurnRatePage",
        "OrderAcceptanceBurnRateTicket",
        "AckLatencyBurnRatePage",
        "AckLatencyBurnRateTicket",
        "HighRejectRatio",
        "RiskLimitNearlyUsed",
        "ServiceDown",
        "MetricAbsent(stockbot_orders_submitted_total)",
        "MetricAbsent(stockbot_order_ack_latency_seconds_count)",
        "MetricAbsent(stockbot_tick_to_trade_latency_seconds_count)",
        "TelemetryDropping",
    ] {
        assert_eq!(
            tests.coverage.get(name),
            Some(&(true, true)),
            "{name}: {:?}",
            tests.coverage
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_broken_rule_fails_its_generated_test() {
    // The test cases are not a tautology: the same cases against rules whose page thresholds
    // were tampered with (never reachable) fail in promtool.
    let spec = spec();
    let dir = tmp("tamper");
    let rules = spec
        .prometheus_rules()
        .unwrap()
        .replace("> 0.0144", "> 14.4")
        .replace("> 0.006", "> 6");
    assert!(rules.contains("> 14.4") && rules.contains("> 6 "));
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    let tests = spec.prometheus_rule_tests("rules.yml").unwrap();
    std::fs::write(dir.join("tests.yml"), &tests.yaml).unwrap();
    let err = promtool(&["test", "rules", dir.join("tests.yml").to_str().unwrap()]).unwrap_err();
    assert!(
        err.to_string().contains("OrderAcceptanceBurnRatePage"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_burn_rate_thresholds_follow_the_workbook() {
    let spec = spec();
    let rules = spec.prometheus_rules().unwrap();
    // 99.9 % over 30 days: budget 0.001; 2 % in 1 h → burn 14.4 → 0.0144; 5 % in 6 h → 6 →
    // 0.006; 10 % in 1 d → 3 → 0.003; 10 % in 3 d → 1 → 0.001.
    for t in ["> 0.0144", "> 0.006", "> 0.003", "> 0.001"] {
        assert!(rules.contains(t), "{t} missing:\n{rules}");
    }
    assert_eq!(
        BurnWindow::defaults()[0].burn_rate(Duration::from_secs(30 * 86_400)),
        14.4
    );
    // The latency threshold is the bucket the rule reads.
    assert!(rules.contains(r#"le=\"0.005\""#), "{rules}");
}

#[test]
fn bad_specs_are_refused_naming_the_item() {
    type Mutation = Box<dyn Fn(&mut AlertSpec)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|s| s.slos[0].objective = 1.0), "slo[0].objective"),
        (Box::new(|s| s.slos[0].objective = 0.0), "slo[0].objective"),
        (
            Box::new(|s| s.slos[1].window = Duration::ZERO),
            "slo[1].window",
        ),
        (
            Box::new(|s| s.slos[1].window = Duration::from_secs(3600)),
            "slo[1].window",
        ),
        (
            Box::new(|s| {
                s.slos.push(Slo::ratio(
                    "fills",
                    0.99,
                    Query::metric("stockbot_fils_total"),
                    Query::metric("stockbot_orders_submitted_total"),
                ))
            }),
            "slo[3].ratio.errors.metric",
        ),
        (Box::new(|s| s.slos.push(s.slos[0].clone())), "slo[3].name"),
        (
            Box::new(|s| s.alerts[0].when[0].op = "=>".into()),
            "alert[0].when[0].op",
        ),
        (Box::new(|s| s.alerts[1].when.clear()), "alert[1].when"),
        (
            Box::new(|s| s.alerts[0].when[0].value = 1.5),
            "alert[0].when[0].value",
        ),
        (
            Box::new(|s| s.absent.push("stockbot_nothing_total".into())),
            "absent[2]",
        ),
        (
            Box::new(|s| {
                s.slos[0] = Slo::latency("x", 0.9, "stockbot_fill_ratio", Duration::from_millis(1))
            }),
            "slo[0].latency.metric",
        ),
    ];
    for (mutate, field) in cases {
        let mut s = spec();
        mutate(&mut s);
        let err = s.prometheus_rules().unwrap_err().to_string();
        assert!(err.contains(field), "expected {field} in: {err}");
    }
    // A service's own metric is accepted once declared.
    let mut s = spec();
    s.slos.push(Slo::ratio(
        "quotes",
        0.99,
        Query::metric("stockbot_quotes_stale_total"),
        Query::metric("stockbot_quotes_total"),
    ));
    assert!(s.prometheus_rules().is_err());
    s.metrics = vec![
        "stockbot_quotes_stale_total".into(),
        "stockbot_quotes_total".into(),
    ];
    s.prometheus_rules().unwrap();
}

#[test]
fn the_same_spec_reads_from_toml() {
    let text = r#"
service = "order-router"
team = "execution"

[[slo]]
name = "order_acceptance"
objective = 0.999
window = "30d"
ratio = { errors = { metric = "stockbot_orders_rejected_total" }, total = { metric = "stockbot_orders_submitted_total" } }

[[slo]]
name = "ack_latency"
objective = 0.99
latency = { metric = "stockbot_order_ack_latency_seconds", threshold = "5ms" }

[[slo]]
name = "order_submission"
objective = 0.999
calls = {}

[[alert]]
name = "HighRejectRatio"
severity = "page"
for = "5m"
summary = "More than 5 % of orders rejected while more than 10 orders a minute are sent"
when = [
  { ratio = { numerator = { metric = "stockbot_orders_rejected_total" }, denominator = { metric = "stockbot_orders_submitted_total" } }, op = ">", value = 0.05 },
  { rate = { metric = "stockbot_orders_submitted_total" }, per = "1m", op = ">", value = 10 },
]
"#;
    let from_file = AlertSpec::from_toml(text).unwrap();
    let mut from_code = spec();
    from_code.slos[1].min_rate = 0.0;
    from_code.alerts.truncate(1);
    from_code.absent.clear();
    from_code.escalation.clear();
    assert_eq!(from_file, from_code);
    let err = AlertSpec::from_toml("service = \"a\"\nteam = \"b\"\n[[slo]]\nname = \"x\"\nobjective = 2.0\nratio = { errors = { metric = \"stockbot_orders_rejected_total\" }, total = { metric = \"stockbot_orders_submitted_total\" } }\n").unwrap_err();
    assert!(err.to_string().contains("slo[0].objective"), "{err}");
    let err = AlertSpec::from_toml("service = \"a\"\nteam = \"b\"\nslos = []\n").unwrap_err();
    assert!(err.to_string().contains("slos"), "{err}");
}

#[test]
fn latency_thresholds_become_bucket_boundaries() {
    let mut spec = spec();
    spec.slos.push(Slo::latency(
        "tick_to_trade",
        0.999,
        "stockbot_tick_to_trade_latency_seconds",
        Duration::from_micros(75),
    ));
    let mut config = stockbot_telemetry::Config::for_service("order-router");
    spec.apply_to(&mut config).unwrap();
    let b = &config.metrics.buckets["stockbot_tick_to_trade_latency_seconds"];
    assert!(b.contains(&0.000_075), "{b:?}");
    assert!(b.windows(2).all(|w| w[0] < w[1]), "sorted: {b:?}");
    // Already a boundary: unchanged.
    let ack = &config.metrics.buckets["stockbot_order_ack_latency_seconds"];
    assert_eq!(ack.iter().filter(|&&x| x == 0.005).count(), 1);
}

#[test]
fn the_alertmanager_config_passes_amtool_and_routes_each_label_set_to_its_receiver() {
    let n = notifications();
    n.check_spec(&spec()).unwrap();
    let dir = tmp("am");
    let config = n.alertmanager_config().unwrap();
    let file = dir.join("alertmanager.yml");
    std::fs::write(&file, &config).unwrap();
    let out = amtool(&["check-config", file.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("{e}\n--- config ---\n{config}"));
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(!config.contains("routing_key\":") && config.contains("routing_key_file"));

    let config_flag = format!("--config.file={}", file.display());
    let table: &[(&[&str], &str)] = &[
        (
            &["team=execution", "service=order-router", "severity=page"],
            "execution-oncall",
        ),
        (
            &[
                "team=execution",
                "service=order-router",
                "severity=page",
                "tier=2",
            ],
            "execution-secondary",
        ),
        (
            &[
                "team=execution",
                "service=order-router",
                "severity=page",
                "tier=3",
            ],
            "desk-manager",
        ),
        (
            &["team=execution", "service=order-router", "severity=ticket"],
            "execution-tickets",
        ),
        (
            &["team=execution", "service=fix-gateway", "severity=ticket"],
            "fix-gateway-team",
        ),
        (
            &["team=execution", "service=fix-gateway", "severity=page"],
            "execution-oncall",
        ),
        (
            &["team=risk", "service=risk-engine", "severity=page"],
            "risk-oncall",
        ),
        (
            &[
                "team=risk",
                "service=risk-engine",
                "severity=page",
                "tier=2",
            ],
            "risk-oncall",
        ),
        (&["team=unknown", "severity=page"], "default"),
    ];
    for (labels, receiver) in table {
        let mut args = vec!["config", "routes", "test", config_flag.as_str()];
        let verify = format!("--verify.receivers={receiver}");
        args.push(&verify);
        args.extend_from_slice(labels);
        let out = amtool(&args).unwrap_or_else(|e| panic!("{labels:?} → {receiver}: {e}"));
        // stdout has the receivers; stderr (appended) may hold a warning about the flags.
        assert_eq!(out.lines().next(), Some(*receiver), "{labels:?}: {out}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_routing_is_refused_naming_the_item() {
    type Mutation = Box<dyn Fn(&mut Notifications)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|n| n.receivers[1] = Receiver::new("execution-oncall")),
            "receiver[1]",
        ),
        (
            Box::new(|n| n.receivers[1].sms_webhook = Some("ftp://x".into())),
            "receiver[1].sms_webhook",
        ),
        (Box::new(|n| n.smtp = None), "receiver[0].email"),
        (
            Box::new(|n| n.receivers[0].email = vec!["not-an-address".into()]),
            "receiver[0].email[0]",
        ),
        (
            Box::new(|n| n.receivers[2].chat.as_mut().unwrap().channel = "general".into()),
            "receiver[2].chat.channel",
        ),
        (
            Box::new(|n| n.teams[0].page = "nobody".into()),
            "team[0].page",
        ),
        (
            Box::new(|n| n.teams[0].escalation.push("ghost".into())),
            "team[0].escalation[2]",
        ),
        (
            Box::new(|n| {
                n.default_receiver = "ghost".into();
                n.receivers[6].webhook = Some("http://127.0.0.1:9099/default".into());
            }),
            "default_receiver",
        ),
        (
            Box::new(|n| n.receivers.push(Receiver::new("default"))),
            "receiver[7].name",
        ),
    ];
    for (mutate, field) in cases {
        let mut n = notifications();
        mutate(&mut n);
        let err = n.alertmanager_config().unwrap_err().to_string();
        assert!(err.contains(field), "expected {field} in: {err}");
    }
    // The alert spec and the routing must agree on the team and its tiers.
    let mut s = spec();
    s.escalation.pop();
    let err = notifications().check_spec(&s).unwrap_err().to_string();
    assert!(err.contains("escalation"), "{err}");
    s.team = "nobody".into();
    assert!(
        notifications()
            .check_spec(&s)
            .unwrap_err()
            .to_string()
            .contains("nobody")
    );
}

#[test]
fn the_routing_reads_from_toml() {
    let text = r##"
default_receiver = "default"
smtp = { smarthost = "127.0.0.1:25", from = "alertmanager@stockbot.example" }

[[receiver]]
name = "default"

[[receiver]]
name = "execution-oncall"
pagerduty_key_file = "/etc/alertmanager/secrets/pagerduty-execution"

[[receiver]]
name = "execution-tickets"
email = ["execution-team@stockbot.example"]

[[team]]
team = "execution"
page = "execution-oncall"
ticket = "execution-tickets"
services = [{ service = "fix-gateway", severity = "ticket", receiver = "execution-oncall" }]
"##;
    let n = Notifications::from_toml(text).unwrap();
    assert_eq!(n.teams[0].services[0].severity, Some(Severity::Ticket));
    assert_eq!(n.group_by, ["alertname", "service", "slo"]);
    let config = n.alertmanager_config().unwrap();
    assert!(config.contains("routing_key_file"));
    let err =
        Notifications::from_toml(&text.replace("page = \"execution-oncall\"", "page = \"ghost\""))
            .unwrap_err()
            .to_string();
    assert!(err.contains("team[0].page"), "{err}");
    let err = Notifications::from_toml(&format!("{text}\nunknown = 1\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown"), "{err}");
}

/// The routing with rotations: a weekly primary in London (with an override) and a daily
/// secondary (escalation tier 2) in New York, listed for four weeks across both DST changes.
fn rota() -> Notifications {
    let mut n = notifications();
    for name in ["alice", "bob", "carol"] {
        let mut r = Receiver::new(name);
        r.webhook = Some(format!("http://127.0.0.1:9099/{name}"));
        n.receivers.push(r);
    }
    let mut primary = Rotation::new(
        "execution-primary",
        "execution",
        vec!["alice".into(), "bob".into()],
        Shift::Weekly,
        "09:00",
        "2027-03-22",
        "Europe/London",
    );
    primary.overrides.push(Override::new(
        "carol",
        "2027-03-24 12:00",
        "2027-03-25 12:00",
    ));
    n.rotations.push(primary);
    let mut secondary = Rotation::new(
        "execution-secondary",
        "execution",
        vec!["carol".into(), "alice".into()],
        Shift::Daily,
        "18:00",
        "2027-03-22",
        "America/New_York",
    );
    secondary.tier = 2;
    n.rotations.push(secondary);
    n.schedule_from = Some("2027-03-22".into());
    n.schedule_weeks = 4;
    n
}

fn utc(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[test]
fn on_call_rotations_compile_to_time_intervals_and_route_by_the_clock() {
    let n = rota();
    let dir = tmp("rota");
    let file = dir.join("alertmanager.yml");
    let config = n.alertmanager_config().unwrap();
    std::fs::write(&file, &config).unwrap();
    let out = amtool(&["check-config", file.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("{e}\n--- config ---\n{config}"));
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(config.contains("location: \"Europe/London\""), "{config}");

    // Who gets a page when (amtool ignores time intervals: our evaluator of the same config).
    let json = n.alertmanager_json().unwrap();
    let page = [
        ("team", "execution"),
        ("service", "order-router"),
        ("severity", "page"),
    ];
    let tier2 = [
        ("team", "execution"),
        ("service", "order-router"),
        ("severity", "page"),
        ("tier", "2"),
    ];
    type Labels<'a> = &'a [(&'a str, &'a str)];
    let table: &[(Labels<'_>, &str, &[&str])] = &[
        // Before the first hand-over (09:00 London): nobody on the rota, the team's receiver.
        (&page, "2027-03-22T08:30:00Z", &["execution-oncall"]),
        (&page, "2027-03-22T09:30:00Z", &["alice"]),
        // The override.
        (&page, "2027-03-24T13:00:00Z", &["carol"]),
        (&page, "2027-03-25T12:30:00Z", &["alice"]),
        // London is on summer time from 28 March: the 09:00 hand-over is 08:00 UTC.
        (&page, "2027-03-29T07:30:00Z", &["alice"]),
        (&page, "2027-03-29T08:30:00Z", &["bob"]),
        (&page, "2027-04-05T08:30:00Z", &["alice"]),
        // Past the four listed weeks: the team's receiver (regenerate).
        (&page, "2027-04-25T12:00:00Z", &["execution-oncall"]),
        // The daily secondary in New York (summer time since 14 March: 18:00 is 22:00 UTC).
        (&tier2, "2027-03-22T21:30:00Z", &["execution-secondary"]),
        (&tier2, "2027-03-22T22:30:00Z", &["carol"]),
        (&tier2, "2027-03-23T22:30:00Z", &["alice"]),
        (&tier2, "2027-03-24T22:30:00Z", &["carol"]),
        // Tickets do not follow the rota.
        (
            &[
                ("team", "execution"),
                ("service", "order-router"),
                ("severity", "ticket"),
            ],
            "2027-03-24T13:00:00Z",
            &["execution-tickets"],
        ),
    ];
    for (labels, at, expected) in table {
        let got = notified_at(&json, labels, utc(at)).unwrap();
        assert_eq!(got, *expected, "{labels:?} at {at}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_rotations_are_refused_naming_the_item() {
    type Mutation = Box<dyn Fn(&mut Notifications)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|n| n.rotations[0].members.clear()),
            "rotation[0].members",
        ),
        (
            Box::new(|n| {
                let mut again = n.rotations[0].clone();
                again.name = "execution-backup".into();
                n.rotations.push(again);
            }),
            "overlaps rotation execution-primary",
        ),
        (
            Box::new(|n| {
                n.rotations[0].overrides.push(Override::new(
                    "bob",
                    "2027-03-25 00:00",
                    "2027-03-26 00:00",
                ))
            }),
            "rotation[0].overrides[1]",
        ),
        (
            Box::new(|n| n.rotations[0].members.push("dave".into())),
            "rotation[0].members[2]",
        ),
        (
            Box::new(|n| n.rotations[0].handover = "9am".into()),
            "rotation[0].handover",
        ),
        (Box::new(|n| n.rotations[1].tier = 4), "rotation[1].tier"),
        (
            Box::new(|n| n.rotations[0].start = "2027-02-30".into()),
            "rotation[0].start",
        ),
        (
            Box::new(|n| n.rotations[0].time_zone = "London".into()),
            "rotation[0].time_zone",
        ),
        (Box::new(|n| n.schedule_from = None), "schedule_from"),
        (
            Box::new(|n| n.rotations[0].team = "nobody".into()),
            "rotation[0].team",
        ),
    ];
    for (mutate, field) in cases {
        let mut n = rota();
        mutate(&mut n);
        let err = n.alertmanager_config().unwrap_err().to_string();
        assert!(err.contains(field), "expected {field} in: {err}");
    }
}
