//! The final report: counts from the services' last scrape, latency per stage and the
//! dependency graph from their span files, and the SDK's own drop counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use stockbot_telemetry::analysis::{self, FinishedSpan};
use stockbot_telemetry_testing::Metrics;

use crate::service::SERVICES;

pub(crate) struct Report {
    pub(crate) json: Value,
    pub(crate) text: String,
}

fn spans_of(dir: &Path) -> Vec<FinishedSpan> {
    let mut spans = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("logs")) else {
        return spans;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_span_file = SERVICES
            .iter()
            .any(|s| name.starts_with(&format!("{s}-spans.")));
        if is_span_file && let Ok(text) = std::fs::read_to_string(entry.path()) {
            spans.extend(analysis::read_json_lines(&text).0);
        }
    }
    spans
}

pub(crate) fn build(
    dir: &Path,
    ran: Duration,
    ticks: u64,
    scraped: &BTreeMap<&str, String>,
) -> Result<Report, Box<dyn std::error::Error>> {
    let samples = |service: &str| Metrics::parse(scraped.get(service).map_or("", String::as_str));
    let (router, risk, strategy) = (
        samples("order-router"),
        samples("risk"),
        samples("strategy"),
    );
    let count =
        |s: &Metrics, name: &str, filter: &[(&str, &str)]| s.value(name, filter).round() as u64;
    let signals = count(
        &strategy,
        "stockbot_trade_calls_total",
        &[("operation", "place_order")],
    );
    let risk_refused = count(
        &risk,
        "stockbot_trade_errors_total",
        &[("operation", "risk_check"), ("error_kind", "risk_limit")],
    );
    let submitted = count(&router, "stockbot_orders_submitted_total", &[]);
    let full = count(&router, "stockbot_fills_total", &[("fill_type", "full")]);
    let partial = count(&router, "stockbot_fills_total", &[("fill_type", "partial")]);
    let rejected = count(&router, "stockbot_orders_rejected_total", &[]);
    let failed = count(
        &router,
        "stockbot_trade_errors_total",
        &[("operation", "submit_order")],
    );

    let spans = spans_of(dir);
    let stages = analysis::stage_breakdown(&spans);
    let edges = analysis::dependency_graph(&spans);
    let mut sdk = serde_json::Map::new();
    for service in SERVICES {
        let text = std::fs::read_to_string(dir.join(format!("{service}.report.json")))
            .map_err(|e| format!("no shutdown report of {service}: {e}"))?;
        sdk.insert(service.to_owned(), serde_json::from_str(&text)?);
    }

    let mut text = String::new();
    writeln!(
        text,
        "\nstock-bot demo: {} services over {:.1} s",
        SERVICES.len(),
        ran.as_secs_f64()
    )?;
    writeln!(text, "  ticks published     {ticks}")?;
    writeln!(
        text,
        "  order signals       {signals} ({risk_refused} refused by risk)"
    )?;
    writeln!(
        text,
        "  orders submitted    {submitted} to XSIM ({failed} failed to reach it)"
    )?;
    writeln!(
        text,
        "  fills               {} ({full} full, {partial} partial)",
        full + partial
    )?;
    writeln!(text, "  venue rejects       {rejected}")?;
    writeln!(text, "\nlatency per stage (spans: service / stage)")?;
    let top: Vec<_> = stages.iter().take(14).cloned().collect();
    write!(text, "{}", analysis::stages_table(&top))?;
    writeln!(text, "\nservice dependency graph")?;
    for e in &edges {
        writeln!(
            text,
            "  {:<13} -> {:<13} {:>6} calls {:>4} errors  p50 {:>9}  p99 {:>9}",
            e.caller,
            e.callee,
            e.calls,
            e.errors,
            analysis::format_duration(e.p50_nanos),
            analysis::format_duration(e.p99_nanos)
        )?;
    }
    writeln!(
        text,
        "\nSDK (logs emitted / dropped, spans emitted / dropped)"
    )?;
    for (service, r) in &sdk {
        writeln!(
            text,
            "  {service:<13} {:>7} / {:<4} {:>7} / {}",
            r["logs"]["emitted"],
            r["logs"]["dropped"],
            r["spans"]["emitted"],
            r["spans"]["dropped"]
        )?;
    }
    writeln!(text, "\nreport: {}", dir.join("report.json").display())?;

    let json = json!({
        "seconds": ran.as_secs_f64(),
        "ticks": ticks,
        "order_signals": signals,
        "risk_refused": risk_refused,
        "orders_submitted": submitted,
        "submit_failures": failed,
        "fills": { "full": full, "partial": partial },
        "venue_rejects": rejected,
        "stages": stages.iter().map(|s| json!({
            "service": s.service, "stage": s.name, "count": s.count, "errors": s.errors,
            "p50_seconds": s.p50_nanos as f64 / 1e9, "p99_seconds": s.p99_nanos as f64 / 1e9,
        })).collect::<Vec<_>>(),
        "dependencies": edges.iter().map(|e| json!({
            "caller": e.caller, "callee": e.callee, "calls": e.calls, "errors": e.errors,
            "p50_seconds": e.p50_nanos as f64 / 1e9, "p99_seconds": e.p99_nanos as f64 / 1e9,
        })).collect::<Vec<_>>(),
        "sdk": sdk,
    });
    Ok(Report { json, text })
}
