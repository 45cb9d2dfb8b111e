//! The Grafana dashboard of a service: RED panels of `#[instrument_trade]` functions, each
//! SLO's error ratio and remaining budget, the business metrics, and the SDK's own health —
//! with the metric names the code emits and a `deployment_mode` variable (live by default).

use serde_json::{Value, json};

use super::{AlertSpec, Sli};

/// One panel: title, unit, and its queries with their legends.
struct Panel {
    title: String,
    unit: &'static str,
    queries: Vec<(String, &'static str)>,
}

fn panel(title: &str, unit: &'static str, queries: Vec<(String, &'static str)>) -> Panel {
    Panel {
        title: title.to_owned(),
        unit,
        queries,
    }
}

pub(super) fn dashboard(spec: &AlertSpec) -> Value {
    let sel = format!(
        "service={},deployment_mode=\"$deployment_mode\"",
        Value::String(spec.service.clone())
    );
    let rate = |m: &str| format!("rate({m}{{{sel}}}[$__rate_interval])");
    let p99 = |m: &str, by: &str| {
        format!(
            "histogram_quantile(0.99, sum by (le, {by}) (rate({m}_bucket{{{sel}}}[$__rate_interval])))"
        )
    };
    let mut rows: Vec<(&str, Vec<Panel>)> = Vec::new();
    rows.push((
        "Requests, errors, duration (#[instrument_trade])",
        vec![
            panel(
                "Calls per second",
                "reqps",
                vec![(
                    format!(
                        "sum by (operation, outcome) ({})",
                        rate("stockbot_trade_calls_total")
                    ),
                    "{{operation}} {{outcome}}",
                )],
            ),
            panel(
                "Error ratio",
                "percentunit",
                vec![(
                    format!(
                        "sum by (operation) ({}) / sum by (operation) ({})",
                        rate("stockbot_trade_errors_total"),
                        rate("stockbot_trade_calls_total")
                    ),
                    "{{operation}}",
                )],
            ),
            panel(
                "Duration p99",
                "s",
                vec![(
                    p99("stockbot_trade_duration_seconds", "operation"),
                    "{{operation}}",
                )],
            ),
        ],
    ));
    let mut slo_panels = Vec::new();
    for slo in &spec.slos {
        let s = Value::String(slo.name.clone());
        let kind = match slo.sli {
            Sli::Ratio { .. } => "bad events",
            Sli::Latency { .. } => "slow events",
        };
        slo_panels.push(Panel {
            title: format!("SLO {}: {kind} ratio (5m, 1h) vs budget", slo.name),
            unit: "percentunit",
            queries: vec![
                (
                    format!("slo:sli_error:ratio_rate5m{{slo={s},{sel}}}"),
                    "{{slo}} 5m",
                ),
                (
                    format!("slo:sli_error:ratio_rate1h{{slo={s},{sel}}}"),
                    "{{slo}} 1h",
                ),
                (
                    format!(
                        "vector({}) and on () count(slo:sli_error:ratio_rate5m{{slo={s},{sel}}})",
                        ((1.0 - slo.objective) * 1e12).round() / 1e12
                    ),
                    "error budget",
                ),
            ],
        });
        slo_panels.push(Panel {
            title: format!("SLO {}: error budget remaining", slo.name),
            unit: "percentunit",
            queries: vec![
                (
                    format!("slo:error_budget_remaining:ratio{{slo={s},{sel}}}"),
                    "{{slo}}",
                ),
                // Each process's own view (since it started, at most the window).
                (
                    format!("stockbot_slo_error_budget_remaining_ratio{{slo={s},{sel}}}"),
                    "{{instance}} (process view)",
                ),
            ],
        });
    }
    if !slo_panels.is_empty() {
        rows.push(("Service level objectives", slo_panels));
    }
    rows.push((
        "Trading",
        vec![
            panel(
                "Orders per second",
                "reqps",
                vec![
                    (
                        format!(
                            "sum by (venue) ({})",
                            rate("stockbot_orders_submitted_total")
                        ),
                        "submitted {{venue}}",
                    ),
                    (
                        format!(
                            "sum by (venue, reason) ({})",
                            rate("stockbot_orders_rejected_total")
                        ),
                        "rejected {{venue}} {{reason}}",
                    ),
                    (
                        format!(
                            "sum by (venue, fill_type) ({})",
                            rate("stockbot_fills_total")
                        ),
                        "fills {{venue}} {{fill_type}}",
                    ),
                ],
            ),
            panel(
                "Latency p99",
                "s",
                vec![
                    (
                        p99("stockbot_order_ack_latency_seconds", "venue"),
                        "ack {{venue}}",
                    ),
                    (
                        p99("stockbot_tick_to_trade_latency_seconds", "strategy"),
                        "tick-to-trade {{strategy}}",
                    ),
                ],
            ),
            panel(
                "Market data staleness p99 and gaps",
                "s",
                vec![
                    (
                        p99("stockbot_market_data_staleness_seconds", "feed"),
                        "staleness {{feed}}",
                    ),
                    (
                        format!(
                            "sum by (feed) ({})",
                            rate("stockbot_market_data_sequence_gaps_total")
                        ),
                        "gaps/s {{feed}}",
                    ),
                ],
            ),
            panel(
                "Risk and rate-limit utilisation",
                "percentunit",
                vec![
                    (
                        format!("max by (limit) (stockbot_risk_limit_utilisation_ratio{{{sel}}})"),
                        "{{limit}}",
                    ),
                    (
                        format!(
                            "max by (venue) (stockbot_venue_rate_limit_utilisation_ratio{{{sel}}})"
                        ),
                        "rate limit {{venue}}",
                    ),
                ],
            ),
            panel(
                "PnL and exposure",
                "none",
                vec![
                    (
                        format!("sum by (strategy, currency) (stockbot_pnl{{{sel}}})"),
                        "pnl {{strategy}} {{currency}}",
                    ),
                    (
                        format!(
                            "sum by (strategy, currency) (stockbot_exposure_notional{{{sel}}})"
                        ),
                        "exposure {{strategy}} {{currency}}",
                    ),
                ],
            ),
        ],
    ));
    rows.push((
        "Telemetry SDK health",
        vec![
            panel(
                "Dropped records per second",
                "reqps",
                vec![(
                    format!(
                        "sum by (signal, sink, reason) ({})",
                        rate("stockbot_telemetry_dropped_total")
                    ),
                    "{{signal}} {{sink}} {{reason}}",
                )],
            ),
            panel(
                "Exported records per second",
                "reqps",
                vec![(
                    format!(
                        "sum by (signal, sink) ({})",
                        rate("stockbot_telemetry_exported_total")
                    ),
                    "{{signal}} {{sink}}",
                )],
            ),
            panel(
                "Queue depth",
                "none",
                vec![(
                    format!("max by (signal) (stockbot_telemetry_queue_depth{{{sel}}})"),
                    "{{signal}}",
                )],
            ),
        ],
    ));

    let mut panels = Vec::new();
    let mut id = 1;
    let mut y = 0;
    for (title, row) in rows {
        panels.push(json!({
            "id": id, "type": "row", "title": title, "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
        }));
        id += 1;
        y += 1;
        for (i, p) in row.iter().enumerate() {
            let targets: Vec<Value> = p
                .queries
                .iter()
                .enumerate()
                .map(|(k, (expr, legend))| {
                    json!({
                        "refId": char::from(b'A' + k as u8).to_string(),
                        "expr": expr,
                        "legendFormat": legend,
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    })
                })
                .collect();
            panels.push(json!({
                "id": id,
                "type": "timeseries",
                "title": p.title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 8, "x": (i % 3) * 8, "y": y + (i / 3) as i64 * 8},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": true}},
                "targets": targets,
            }));
            id += 1;
        }
        y += row.len().div_ceil(3) as i64 * 8;
    }
    let options: Vec<Value> = ["live", "paper", "backtest"]
        .iter()
        .map(|m| json!({"text": m, "value": m, "selected": *m == spec.deployment_mode}))
        .collect();
    json!({
        "title": format!("{} (stockbot)", spec.service),
        "uid": format!("stockbot-{}", spec.service),
        "tags": ["stockbot", spec.team],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "editable": true,
        "templating": {"list": [
            {
                "name": "datasource", "label": "Prometheus", "type": "datasource",
                "query": "prometheus",
            },
            {
                "name": "deployment_mode", "label": "Deployment mode", "type": "custom",
                "query": "live,paper,backtest",
                "current": {"text": spec.deployment_mode, "value": spec.deployment_mode},
                "options": options,
            },
        ]},
        "panels": panels,
    })
}
