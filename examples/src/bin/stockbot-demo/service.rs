//! One service's process: configuration, `init`, the HTTP server, and a clean shutdown when
//! the orchestrator closes its stdin.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use stockbot_telemetry::alerting::AlertSpec;

use crate::Args;
use crate::http::{Handler, Server};

/// The services, in start order (a service's downstream services start before it).
pub(crate) const SERVICES: [&str; 5] = [
    "exchange-sim",
    "order-router",
    "risk",
    "strategy",
    "market-data",
];

/// The simulated venue's MIC.
pub(crate) const VENUE: &str = "XSIM";
/// The strategy's name.
pub(crate) const STRATEGY: &str = "mean-revert";

/// The SLOs and alerts of each service: the files in `deploy/alerting/`, the ones the
/// Prometheus rules are generated from — one source, no drift.
fn alert_spec(service: &str) -> Option<&'static str> {
    match service {
        "order-router" => Some(include_str!(
            "../../../../deploy/alerting/order-router.toml"
        )),
        "strategy" => Some(include_str!("../../../../deploy/alerting/strategy.toml")),
        "market-data" => Some(include_str!("../../../../deploy/alerting/market-data.toml")),
        _ => None,
    }
}

/// Runs service `name` until its stdin closes.
pub(crate) fn run(name: &str, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let module = match name {
        "market-data" => "market_data",
        "strategy" => "strategy",
        "risk" => "risk",
        "order-router" => "router",
        "exchange-sim" => "exchange",
        other => return Err(format!("unknown service {other:?}; services: {SERVICES:?}").into()),
    };
    // Defaults, then STOCKBOT_CONFIG's file, then OTEL_* / RUST_LOG / STOCKBOT_* variables.
    let mut config = stockbot_telemetry::Config::load()?;
    config.service.name = name.to_owned();
    config.service.version = env!("CARGO_PKG_VERSION").to_owned();
    // One binary hosts every service: this process's own code is its module.
    config.service.own_targets = vec![format!("stockbot_demo::{module}")];
    if config.log.file.directory == Path::new("logs") {
        config.log.file.directory = args.run_dir.join("logs");
    }
    if config.metrics.listen == stockbot_telemetry::MetricsConfig::default().listen {
        config.metrics.listen = "127.0.0.1:0".into();
    }
    if let Some(spec) = alert_spec(name) {
        AlertSpec::from_toml(spec)?.apply_to(&mut config)?;
    }
    let guard = stockbot_telemetry::init(config)?;
    let downstream = |service: &str| {
        args.downstream
            .iter()
            .find(|(n, _)| n == service)
            .map(|(_, url)| crate::http::Client::new(url))
            .ok_or_else(|| format!("{name} needs --downstream {service}=URL"))
    };
    let mut background = None;
    let handler: Handler = match name {
        "exchange-sim" => crate::exchange::handler(),
        "order-router" => crate::router::handler(downstream("exchange-sim")?),
        "risk" => crate::risk::handler(),
        "strategy" => crate::strategy::handler(downstream("risk")?, downstream("order-router")?),
        _ => {
            let (handler, feed) = crate::market_data::start(downstream("strategy")?, args.rate)?;
            background = Some(feed);
            handler
        }
    };
    let server = Server::start(handler, 4)?;
    let addresses = json!({
        "service": name,
        "http": format!("http://{}", server.addr()),
        "metrics": guard.metrics_addr().map(|a| format!("http://{a}/metrics")),
        "pid": std::process::id(),
    });
    write_atomically(
        &args.run_dir.join(format!("{name}.json")),
        &addresses.to_string(),
    )?;
    tracing::info!(url.full = %format!("http://{}", server.addr()), "{name} started");

    // The orchestrator closes stdin to stop us (Ctrl-C goes to it, not to us).
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    if let Some(feed) = background {
        feed.stop();
    }
    server.stop();
    tracing::info!("{name} stopping");
    let report = guard.shutdown(Duration::from_secs(5));
    let spans = report.spans.as_ref();
    let summary = json!({
        "service": name,
        "completed": report.completed,
        "logs": {
            "emitted": report.stats.emitted,
            "dropped": report.dropped(),
            "buffered": report.still_buffered(),
        },
        "spans": {
            "emitted": spans.map_or(0, |s| s.emitted),
            "dropped": spans.map_or(0, |s| s.dropped_total() + s.sinks.iter().map(|k| k.dropped_total()).sum::<u64>()),
        },
    });
    write_atomically(
        &args.run_dir.join(format!("{name}.report.json")),
        &summary.to_string(),
    )?;
    Ok(())
}

/// Writes `text` to `path` through a temporary file and a rename: readers never see half.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// A small deterministic-enough random source (xorshift), shared by a service's threads.
#[derive(Debug)]
pub(crate) struct Rng(Mutex<u64>);

impl Rng {
    pub(crate) fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32;
        Rng(Mutex::new(seed | 1))
    }

    /// A number in [0, 1).
    pub(crate) fn unit(&self) -> f64 {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in [low, high).
    pub(crate) fn range(&self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}
