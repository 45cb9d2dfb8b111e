//! The orchestrator: starts the five services as child processes (downstream first), waits,
//! quiesces the platform, collects the final metrics, stops the services in order and prints
//! the report.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Args;
use crate::service::{SERVICES, write_atomically};

struct Running {
    name: &'static str,
    child: Child,
    http: String,
    metrics: Option<String>,
}

/// Which services each one calls.
fn downstream(name: &str) -> &'static [&'static str] {
    match name {
        "order-router" => &["exchange-sim"],
        "strategy" => &["risk", "order-router"],
        "market-data" => &["strategy"],
        _ => &[],
    }
}

pub(crate) fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let dir = &args.run_dir;
    std::fs::create_dir_all(dir.join("metrics"))?;
    for name in SERVICES {
        for stale in [format!("{name}.json"), format!("{name}.report.json")] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))?;
    }
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut running: Vec<Running> = Vec::new();
    for name in SERVICES {
        match start(&exe, name, args, &running) {
            Ok(r) => running.push(r),
            Err(e) => {
                stop_all(&mut running);
                return Err(e);
            }
        }
    }
    let targets: Vec<Value> = running
        .iter()
        .filter_map(|r| {
            let url = r.metrics.as_deref()?;
            let host = url
                .trim_start_matches("http://")
                .trim_end_matches("/metrics");
            Some(json!({ "targets": [host], "labels": { "service": r.name } }))
        })
        .collect();
    write_atomically(
        &dir.join("prometheus-targets.json"),
        &Value::Array(targets).to_string(),
    )?;
    eprintln!(
        "stockbot-demo: {} services up ({}); logs and spans in {}; Prometheus targets in {}; {}",
        running.len(),
        running
            .iter()
            .map(|r| format!("{} {}", r.name, r.metrics.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(", "),
        dir.join("logs").display(),
        dir.join("prometheus-targets.json").display(),
        match args.duration {
            Some(d) => format!("stopping after {}", humantime::format_duration(d)),
            None => "Ctrl-C stops".into(),
        }
    );
    while !interrupted.load(Ordering::Relaxed)
        && args.duration.is_none_or(|d| started.elapsed() < d)
    {
        let exited = running
            .iter_mut()
            .find_map(|r| matches!(r.child.try_wait(), Ok(Some(_))).then_some(r.name));
        if let Some(name) = exited {
            stop_all(&mut running);
            return Err(format!("{name} exited early; see its log").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ran = started.elapsed();

    // Quiesce: no new ticks; every request chain has finished when this returns.
    let feed = running
        .iter()
        .find(|r| r.name == "market-data")
        .map(|r| r.http.clone());
    let ticks = feed
        .and_then(|url| {
            crate::http::Client::new(&url)
                .post("/control/stop", &Value::Null)
                .ok()
        })
        .and_then(|v| v["ticks"].as_u64())
        .unwrap_or(0);
    if !args.linger.is_zero() {
        std::thread::sleep(args.linger);
    }
    let mut scraped = BTreeMap::new();
    for r in &running {
        if let Some(url) = &r.metrics {
            let text = reqwest::blocking::get(url).and_then(|a| a.text())?;
            std::fs::write(dir.join("metrics").join(format!("{}.prom", r.name)), &text)?;
            scraped.insert(r.name, text);
        }
    }
    stop_all(&mut running);
    let report = crate::report::build(dir, ran, ticks, &scraped)?;
    write_atomically(
        &dir.join("report.json"),
        &serde_json::to_string_pretty(&report.json)?,
    )?;
    println!("{}", report.text);
    Ok(())
}

fn start(
    exe: &Path,
    name: &'static str,
    args: &Args,
    running: &[Running],
) -> Result<Running, Box<dyn std::error::Error>> {
    let mut command = Command::new(exe);
    command
        .args(["--service", name, "--run-dir"])
        .arg(&args.run_dir)
        .args(["--rate", &args.rate.to_string()])
        .stdin(Stdio::piped());
    for callee in downstream(name) {
        let r = running
            .iter()
            .find(|r| r.name == *callee)
            .ok_or_else(|| format!("{callee} must start before {name}"))?;
        command
            .arg("--downstream")
            .arg(format!("{callee}={}", r.http));
    }
    // Its own process group: Ctrl-C reaches the orchestrator, which stops the services in order.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn()?;
    let file = args.run_dir.join(format!("{name}.json"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            return Ok(Running {
                name,
                http: v["http"].as_str().unwrap_or_default().to_owned(),
                metrics: v["metrics"].as_str().map(str::to_owned),
                child,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} did not start ({status})").into());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{name} did not start within 30 s").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the services upstream first (closing their stdin), each within 15 s or killed.
fn stop_all(running: &mut Vec<Running>) {
    while let Some(mut r) = running.pop() {
        drop(r.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match r.child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("stockbot-demo: {} exited with {status}", r.name);
                    }
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    eprintln!("stockbot-demo: {} did not stop within 15 s: killed", r.name);
                    let _ = r.child.kill();
                    let _ = r.child.wait();
                    break;
                }
            }
        }
    }
}
