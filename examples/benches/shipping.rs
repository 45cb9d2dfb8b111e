//! Log shipping to Elasticsearch, measured end to end: sustained records per second shipped to
//! the fake Elasticsearch running in its own process (redaction on; gzip off and on), and the
//! process's memory during a backend outage at a fixed input rate, without and with the disk
//! spool. Absolute figures (no peer runs here); reported in `docs/performance.md`.
//!
//! Run: `cargo bench -p examples --bench shipping` (60 s outage), or `-- --quick` (10 s).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stockbot_telemetry::{
    Config, ElasticsearchConfig, SpoolConfig, TelemetryBuilder, TelemetryGuard,
};

fn config(url: String, gzip: bool) -> Config {
    let mut c = Config::for_service("bench-router");
    c.service.host_name = Some("bench-host".into());
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.metrics.enabled = false;
    c.traces.enabled = false;
    c.pipeline.queue_capacity = 65_536;
    c.pipeline.batch_max_records = 4096;
    c.pipeline.batch_max_bytes = 4 * 1024 * 1024;
    c.log.redaction.pseudonym_key = Some(stockbot_telemetry::Secret::new("bench-key-0123456789"));
    let mut es = ElasticsearchConfig::new(url);
    es.gzip = gzip;
    es.timeout = Duration::from_secs(5);
    es.dead_letter = Some(std::env::temp_dir().join("stockbot-bench-dead-letter.log"));
    c.log.elasticsearch = Some(es);
    c
}

/// One ~300-byte record (before enrichment): an order event with ids, an account to
/// pseudonymise and a value the redactor scans.
fn emit(i: u64) {
    tracing::info!(
        cl_ord_id = i,
        symbol = "AAPL",
        venue = "XNAS",
        side = "buy",
        quantity = 100u64,
        price = 189.25,
        account = "ACC-0012345",
        "order routed to venue after risk check passed"
    );
}

/// Emits `n` records without ever letting the queue or the sink's memory buffer fill (that
/// would measure drops, not shipping), and waits until every one is written: the elapsed
/// time.
fn sustained(dispatch: &tracing::Dispatch, guard: &TelemetryGuard, n: u64) -> Duration {
    let start = Instant::now();
    tracing::dispatcher::with_default(dispatch, || {
        for i in 0..n {
            if i % 1024 == 0 {
                while {
                    let s = guard.stats();
                    // The 64 MiB memory buffer holds ~70 000 of these records.
                    s.queued > 48_000 || s.sinks.iter().any(|k| k.buffered > 24_000)
                } {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            emit(i);
        }
    });
    assert!(guard.flush(Duration::from_secs(120)));
    start.elapsed()
}

fn throughput(n: u64, gzip: bool) {
    let mut fake = Command::new(env!("CARGO_BIN_EXE_fake-elasticsearch"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the fake-elasticsearch binary");
    let mut out = BufReader::new(fake.stdout.take().unwrap());
    let mut url = String::new();
    out.read_line(&mut url).unwrap();
    let mut config = config(url.trim().to_owned(), gzip);
    config.log.shipping.memory_max_bytes = 64 << 20;
    let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
    let elapsed = sustained(&dispatch, &guard, n);
    let stats = guard.shutdown(Duration::from_secs(30)).stats;
    let sink = stats.sink("elasticsearch").unwrap();
    let mut stdin = fake.stdin.take().unwrap();
    writeln!(stdin, "count").unwrap();
    let mut count = String::new();
    out.read_line(&mut count).unwrap();
    drop(stdin);
    let _ = fake.wait();
    println!(
        "shipping gzip={}: {n} records in {:.2} s = {:.0} records/s; written {}, dropped {}, stored by the fake {}",
        if gzip { "on " } else { "off" },
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        sink.written,
        sink.dropped_total() + stats.dropped.values().sum::<u64>(),
        count.trim()
    );
}

/// The same load into a writer that discards: what the pipeline itself sustains (capture,
/// enrichment, redaction, encoding), for reference.
fn pipeline_only(n: u64) {
    let mut c = config(String::new(), false);
    c.log.elasticsearch = None;
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("null", std::io::sink())
        .build_dispatch()
        .unwrap();
    let elapsed = sustained(&dispatch, &guard, n);
    println!(
        "pipeline only (null writer): {n} records in {:.2} s = {:.0} records/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}

fn outage(duration: Duration, rate: u64, spool: bool) {
    // Nobody listens on this port: every request fails at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = config(format!("http://127.0.0.1:{port}"), false);
    let spool_dir =
        std::env::temp_dir().join(format!("stockbot-bench-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool_dir);
    if spool {
        let mut s = SpoolConfig::new(&spool_dir);
        s.max_bytes = 4 << 30;
        config.log.shipping.spool = Some(s);
    }
    // The queue, the batch being encoded, the sink's memory buffer and the batch it holds.
    let bound = config.pipeline.queue_max_bytes
        + 2 * config.pipeline.batch_max_bytes
        + config.log.shipping.memory_max_bytes;
    let before = stockbot_telemetry_testing::rss_bytes();
    let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
    let start = Instant::now();
    let mut peak = 0;
    let mut emitted = 0u64;
    tracing::dispatcher::with_default(&dispatch, || {
        while start.elapsed() < duration {
            let second = Instant::now();
            for _ in 0..rate / 10 {
                emit(emitted);
                emitted += 1;
            }
            peak = peak.max(stockbot_telemetry_testing::rss_bytes());
            std::thread::sleep(Duration::from_millis(100).saturating_sub(second.elapsed()));
        }
    });
    let stats = guard.shutdown(Duration::from_secs(30)).stats;
    let sink = stats.sink("elasticsearch").unwrap();
    println!(
        "outage {} s at {rate} records/s, spool {}: emitted {emitted}, dropped {} ({:?}), spooled {} ({:.1} MiB on disk), other still buffered {}; RSS before {:.1} MiB, peak {:.1} MiB, growth {:.1} MiB; memory bound (queue + 2 batches + shipper memory) {:.1} MiB",
        duration.as_secs(),
        if spool { "on " } else { "off" },
        sink.dropped_total() + stats.dropped.values().sum::<u64>(),
        sink.dropped
            .iter()
            .filter(|(_, n)| **n > 0)
            .collect::<Vec<_>>(),
        sink.spooled,
        sink.spool_bytes as f64 / 1048576.0,
        stats.queued + stats.in_flight + sink.buffered - sink.spooled,
        before as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        peak.saturating_sub(before) as f64 / 1048576.0,
        bound as f64 / 1048576.0,
    );
    let _ = std::fs::remove_dir_all(&spool_dir);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 100_000 } else { 500_000 };
    // Outages first: the process's RSS is then not inflated by the throughput runs.
    let outage_for = Duration::from_secs(if quick { 10 } else { 60 });
    outage(outage_for, 20_000, false);
    outage(outage_for, 20_000, true);
    pipeline_only(n);
    throughput(n, false);
    throughput(n, true);
}
