//! The soak (RELIABILITY.md scenario 15, issue #10 item 7): the `soak` binary emits numbered
//! order records to Elasticsearch and one span per record over OTLP/HTTP from two threads at
//! a steady rate, while this test flaps both backends through `FaultProxy`s on a fixed
//! schedule — passing, throttled (`429` with and without `Retry-After`), refusing connections,
//! black-holed, slow, resetting. Then the backends come back and the load process flushes and
//! shuts down.
//!
//! Asserted: the accounting identity for logs and spans (`emitted = written + dropped +
//! buffered`, `buffered = 0` at the end), every stored record and span exactly once, the
//! shutdown completes, and the load process's memory after warm-up stays within its
//! configured bounds plus a margin (it never grows with the outage). Reported (never asserted:
//! CI machines are noisy): RSS over time and the emitting threads' latency percentiles per
//! phase. A minute in CI; `STOCKBOT_SOAK_SECS=600` for a longer run (`STOCKBOT_SOAK_RATE`:
//! records per second and thread, default 500), and
//! `STOCKBOT_SOAK_REPORT=<file>` writes the report as Markdown (docs/reliability.md quotes one).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stockbot_telemetry_testing::elasticsearch::{EsReply, FakeElasticsearch};
use stockbot_telemetry_testing::fault_proxy::{Fault, FaultProxy};
use stockbot_telemetry_testing::otlp::FakeOtlpReceiver;

/// The fault schedule (name, milliseconds), repeated; the load process gets the same one so it
/// can attribute its latency samples to phases.
const PHASES: [(&str, u64); 7] = [
    ("pass", 4000),
    ("throttled", 3000),
    ("refused", 3000),
    ("recovered", 3000),
    ("black_hole", 3000),
    ("slow", 3000),
    ("reset", 2000),
];

fn phase_at(elapsed: Duration) -> usize {
    let cycle: u64 = PHASES.iter().map(|p| p.1).sum();
    let mut t = elapsed.as_millis() as u64 % cycle;
    for (i, (_, ms)) in PHASES.iter().enumerate() {
        if t < *ms {
            return i;
        }
        t -= ms;
    }
    PHASES.len() - 1
}

fn fault_of(phase: &str) -> Fault {
    match phase {
        "refused" => Fault::Refuse,
        "black_hole" => Fault::BlackHole,
        "slow" => Fault::Delay(Duration::from_millis(300)),
        "reset" => Fault::Reset,
        _ => Fault::Pass,
    }
}

/// `key=value` pairs of a report line.
fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn num(f: &BTreeMap<String, String>, key: &str) -> u64 {
    f.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in {f:?}"))
}

#[test]
fn scenario_15_soak_with_flapping_backends_keeps_memory_bounded_and_loses_nothing_silently() {
    let secs: u64 = std::env::var("STOCKBOT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // Records per second and emitting thread (two threads; each record also opens a span).
    let rate: u64 = std::env::var("STOCKBOT_SOAK_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let long = secs > 120;
    let es = FakeElasticsearch::start().unwrap();
    if long {
        // Long runs keep only ids and counts (memory of this process, not the load's).
        es.discard_sources();
    }
    let receiver = FakeOtlpReceiver::start().unwrap();
    let es_proxy = FaultProxy::start(&es.url()).unwrap();
    let otlp_proxy = FaultProxy::start(&receiver.url()).unwrap();
    let schedule: Vec<String> = PHASES.iter().map(|(n, ms)| format!("{n}:{ms}")).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--es", &es_proxy.url(), "--otlp", &otlp_proxy.url()])
        .args([
            "--secs",
            &secs.to_string(),
            "--threads",
            "2",
            "--rate",
            &rate.to_string(),
        ])
        .args(["--phases", &schedule.join(",")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    // Drive the faults until the load stops emitting; then the backends stay up.
    let mut lines = Vec::new();
    let mut current = usize::MAX;
    let mut faults_applied = 0;
    // The backends' side every 10 s: t, phase, connections the proxy accepted, documents stored.
    let mut backend: Vec<(u64, &str, usize, u64)> = Vec::new();
    let limit = Duration::from_secs(secs + 120);
    loop {
        let phase = phase_at(start.elapsed());
        if phase != current {
            current = phase;
            let name = PHASES[phase].0;
            es_proxy.set(fault_of(name));
            otlp_proxy.set(fault_of(name));
            // A throttling period ends with its phase: answers not used by then are dropped.
            es.clear_script();
            if name == "throttled" {
                es.script([
                    EsReply::status(429).retry_after(1),
                    EsReply::status(429),
                    EsReply::status(429).retry_after(1),
                ]);
            }
            faults_applied += 1;
        }
        if start.elapsed().as_secs() >= backend.len() as u64 * 10 {
            backend.push((
                start.elapsed().as_secs(),
                PHASES[phase].0,
                es_proxy.accepted(),
                es.stored_count(),
            ));
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                let done = line.starts_with("emitting done");
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        assert!(start.elapsed() < limit, "the load never finished emitting");
    }
    es_proxy.set(Fault::Pass);
    otlp_proxy.set(Fault::Pass);
    // The load process flushes (up to 60 s) and shuts down (up to 30 s): it never hangs.
    let flush_limit = Instant::now() + Duration::from_secs(150);
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                assert!(Instant::now() < flush_limit, "the load process hangs");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "the load process failed: {lines:#?}");
    assert!(faults_applied > PHASES.len(), "a whole schedule ran");

    // The accounting identity, and every record and span exactly once.
    let report = |signal: &str| {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("report signal={signal} ")))
            .unwrap_or_else(|| panic!("no {signal} report in {lines:#?}"));
        fields(line)
    };
    let (logs, spans) = (report("logs"), report("spans"));
    // Memory: after warm-up, within the configured bounds (log queue 8 MiB, shipper memory
    // 4 MiB, the span queue and shipper) plus a margin — an outage must not grow it.
    let samples: Vec<BTreeMap<String, String>> = lines
        .iter()
        .filter(|l| l.starts_with("rss "))
        .map(|l| fields(l))
        .collect();
    let rss: Vec<(u64, u64)> = samples
        .iter()
        .map(|f| (num(f, "t"), num(f, "kib")))
        .collect();
    // Every tenth sample: t (s), RSS (KiB), log records written, dropped, held.
    let series: Vec<(u64, u64, u64, u64, u64)> = samples
        .iter()
        .step_by(10)
        .map(|f| {
            let n = |k| num(f, k);
            (n("t"), n("kib"), n("written"), n("dropped"), n("buffered"))
        })
        .collect();
    let warm_up = (secs / 5).max(10);
    let at_warm_up = rss
        .iter()
        .filter(|(t, _)| *t <= warm_up)
        .map(|r| r.1)
        .max()
        .expect("RSS samples during warm-up");
    let after = rss
        .iter()
        .filter(|(t, _)| *t > warm_up)
        .map(|r| r.1)
        .max()
        .expect("RSS samples after warm-up");
    let last = rss.last().unwrap().1;
    let bound_kib = 64 * 1024;
    let latency: Vec<&String> = lines.iter().filter(|l| l.starts_with("latency ")).collect();
    let drops: Vec<&String> = lines.iter().filter(|l| l.starts_with("drops ")).collect();
    let text = format!(
        "soak: {secs} s, 2 threads x {rate} records/s (one log record and one span each), schedule {}\n\
         RSS (KiB): end of warm-up ({warm_up} s) {at_warm_up}, max after {after}, last {last}, \
         growth {} (bound {bound_kib})\n\
         logs: {logs:?}\nspans: {spans:?}\n{}\n{}\n\
         every 10 s (t s, RSS KiB, logs written, dropped, held): {series:?}\n\
         backend every 10 s (t s, phase, connections to Elasticsearch, documents): {backend:?}\n",
        schedule.join(","),
        after.saturating_sub(at_warm_up),
        drops
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        latency
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let flushed = lines.iter().find(|l| l.starts_with("flushed"));
    let text = format!("{text}final flush: {flushed:?}\n");
    println!("{text}");
    if let Ok(path) = std::env::var("STOCKBOT_SOAK_REPORT") {
        std::fs::write(path, &text).unwrap();
    }
    for (signal, r) in [("logs", &logs), ("spans", &spans)] {
        assert_eq!(r["accounted"], "true", "{signal}: {r:?}");
        assert_eq!(r["completed"], "true", "{signal}: {r:?}");
        assert_eq!(num(r, "buffered"), 0, "{signal}: {r:?}");
        assert_eq!(
            num(r, "written") + num(r, "dropped"),
            num(r, "emitted"),
            "{signal}: {r:?}"
        );
        assert!(num(r, "emitted") > 0, "{signal}: {r:?}");
    }
    // A request that timed out has an unknown outcome: the receiver may have taken it after
    // the client gave up. Those records are counted as `sink_error` (an upper bound of the
    // loss), so what arrived lies between what was counted written and that plus them.
    let unknown = |signal: &str| {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("drops signal={signal} ")))
            .unwrap_or_else(|| panic!("no {signal} drops in {lines:#?}"));
        fields(line)
            .get("sink_error")
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let (written, stored) = (num(&logs, "written"), es.stored_count());
    assert!(
        written <= stored && stored <= written + unknown("logs"),
        "logs: {written} written, {stored} stored, {} unknown",
        unknown("logs")
    );
    if !long {
        let stored = es.count_numbered("order.cl_ord_id", "C-");
        assert!(
            stored.values().all(|&c| c == 1),
            "a record was stored twice"
        );
    }
    let received = receiver.spans();
    let ids: HashSet<&[u8]> = received.iter().map(|s| s.span_id.as_slice()).collect();
    assert_eq!(ids.len(), received.len(), "a span arrived twice");
    let (written, arrived) = (num(&spans, "written"), ids.len() as u64);
    assert!(
        written <= arrived && arrived <= written + unknown("spans"),
        "spans: {written} written, {arrived} arrived, {} unknown",
        unknown("spans")
    );

    assert!(
        after <= at_warm_up + bound_kib,
        "memory grew past its bounds after warm-up:\n{text}"
    );
    assert!(latency.len() >= 2 * PHASES.len(), "{text}");
}
