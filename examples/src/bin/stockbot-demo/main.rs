//! The stock-bot demo platform: a small trading system of five services — a market-data feed
//! (simulated ticks), a strategy, a risk check, an order router and a simulated exchange with
//! fills, partial fills, rejects and latency spikes — each its own process with `init` in
//! `main`, talking over loopback HTTP with W3C trace context, so one order is one distributed
//! trace across the services.
//!
//! ```text
//! cargo run -p examples --bin stockbot-demo -- --duration 30s
//! ```
//!
//! Embedded defaults, no backend needed: JSON logs on stdout and in rolling files under
//! `demo-run/logs`, spans in `demo-run/logs/<service>-spans.log`, each service's metrics on a
//! loopback port listed in `demo-run/prometheus-targets.json` (a Prometheus file_sd file). It
//! stops after `--duration` or at Ctrl-C, shuts every service down cleanly and prints a report:
//! orders, fills, rejects, latency per stage, the service dependency graph, the SDK's drop
//! counts. `OTEL_EXPORTER_OTLP_ENDPOINT`, `STOCKBOT_ELASTICSEARCH_URL` or `STOCKBOT_CONFIG`
//! (a file with `[metrics.push]`) make the same binary ship to real backends.
//!
//! Options: `--duration 30s` (default: until Ctrl-C), `--rate 50` (ticks per second),
//! `--run-dir demo-run`, `--linger 0s` (keep the services up this long after the ticks stop,
//! so a scraper sees the final counts).

mod exchange;
mod http;
mod market_data;
mod orchestrator;
mod report;
mod risk;
mod router;
mod service;
mod strategy;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The command line.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    /// Run this one service (what the orchestrator starts its children with).
    pub(crate) service: Option<String>,
    /// `name=url` of the services this one calls.
    pub(crate) downstream: Vec<(String, String)>,
    pub(crate) duration: Option<Duration>,
    pub(crate) linger: Duration,
    pub(crate) rate: f64,
    pub(crate) run_dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        service: None,
        downstream: Vec::new(),
        duration: None,
        linger: Duration::ZERO,
        rate: 50.0,
        run_dir: PathBuf::from("demo-run"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let duration = |v: String| {
            humantime::parse_duration(&v).map_err(|e| format!("{flag} {v:?}: {e} (e.g. 30s, 2m)"))
        };
        match flag.as_str() {
            "--service" => args.service = Some(value()?),
            "--downstream" => {
                let v = value()?;
                let (name, url) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--downstream {v:?}: expected name=url"))?;
                args.downstream.push((name.to_owned(), url.to_owned()));
            }
            "--duration" => args.duration = Some(duration(value()?)?),
            "--linger" => args.linger = duration(value()?)?,
            "--rate" => {
                let v = value()?;
                args.rate = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| r.is_finite() && *r > 0.0 && *r <= 10_000.0)
                    .ok_or_else(|| format!("--rate {v:?}: ticks per second, in (0, 10000]"))?;
            }
            "--run-dir" => args.run_dir = PathBuf::from(value()?),
            "-h" | "--help" => {
                return Err(String::from(
                    "usage: stockbot-demo [--duration 30s] [--rate 50] [--run-dir demo-run] [--linger 0s]",
                ));
            }
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("stockbot-demo: {message}");
            return ExitCode::from(2);
        }
    };
    let result = match &args.service {
        Some(name) => service::run(name, &args),
        None => orchestrator::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let who = args.service.as_deref().unwrap_or("stockbot-demo");
            eprintln!("{who}: {e}");
            ExitCode::FAILURE
        }
    }
}
