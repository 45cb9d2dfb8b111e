//! A load generator for log shipping: emits numbered order records (`order.cl_ord_id` =
//! `C-<n>`) to Elasticsearch with an optional disk spool, acknowledging progress on stdout.
//! The spool's crash tests run it as a child process and kill it; operators can use it to
//! rehearse an outage against their own cluster.
//!
//! ```text
//! log-load --es http://127.0.0.1:9200 --spool /tmp/spool --from 0 --count 100000 \
//!          --rate 20000 --ack-every 1000 [--audit-every 10] [--drain]
//! ```
//!
//! Prints `acked <n>` once every record below `n` is delivered or fsynced to the spool
//! (after each `--ack-every` records), `at <n>` after every 100 records emitted, then, at
//! the end, one `report …` line with the
//! shipping counters. `--drain` waits (up to 60 s) until the spool is empty before stopping.

use std::io::Write;
use std::time::{Duration, Instant};

use stockbot_telemetry::{ElasticsearchConfig, SpoolConfig, TelemetryBuilder};

#[derive(Debug)]
struct Args {
    es: String,
    spool: Option<String>,
    from: u64,
    count: u64,
    rate: u64,
    ack_every: u64,
    audit_every: u64,
    drain: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        es: String::new(),
        spool: None,
        from: 0,
        count: 0,
        rate: 0,
        ack_every: 0,
        audit_every: 0,
        drain: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--es" => args.es = value()?,
            "--spool" => args.spool = Some(value()?),
            "--from" => args.from = number(value()?)?,
            "--count" => args.count = number(value()?)?,
            "--rate" => args.rate = number(value()?)?,
            "--ack-every" => args.ack_every = number(value()?)?,
            "--audit-every" => args.audit_every = number(value()?)?,
            "--drain" => args.drain = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.es.is_empty() {
        return Err("--es <url> is required".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("log-load: {e}");
            std::process::exit(2);
        }
    };
    let mut config = stockbot_telemetry_testing::load_config("log-load");
    let mut es = ElasticsearchConfig::new(&args.es);
    es.timeout = Duration::from_millis(300);
    config.log.elasticsearch = Some(es);
    config.log.shipping.memory_max_bytes = 256 << 10;
    if let Some(dir) = &args.spool {
        let mut spool = SpoolConfig::new(dir);
        spool.max_bytes = 64 << 20;
        spool.fsync_interval = Duration::from_millis(100);
        config.log.shipping.spool = Some(spool);
    }
    let (dispatch, guard) = match TelemetryBuilder::new(config).build_dispatch() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("log-load: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout();
    let start = Instant::now();
    let padding = "x".repeat(160);
    tracing::dispatcher::with_default(&dispatch, || {
        for (i, seq) in (args.from..args.from + args.count).enumerate() {
            let i = i as u64 + 1;
            let cl_ord_id = format!("C-{seq}");
            if args.audit_every > 0 && seq.is_multiple_of(args.audit_every) {
                tracing::info!(
                    audit = true,
                    seq,
                    cl_ord_id = cl_ord_id.as_str(),
                    note = padding.as_str(),
                    "order accepted"
                );
            } else {
                tracing::info!(
                    seq,
                    cl_ord_id = cl_ord_id.as_str(),
                    note = padding.as_str(),
                    "order routed"
                );
            }
            if args.ack_every > 0
                && i.is_multiple_of(args.ack_every)
                && guard.flush(Duration::from_secs(10))
            {
                let _ = writeln!(out, "acked {}", seq + 1);
                let _ = out.flush();
            } else if i.is_multiple_of(100) {
                let _ = writeln!(out, "at {}", seq + 1);
                let _ = out.flush();
            }
            if args.rate > 0 {
                let due = start + Duration::from_secs_f64(i as f64 / args.rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
    });
    if guard.flush(Duration::from_secs(10)) {
        let _ = writeln!(out, "acked {}", args.from + args.count);
    }
    if args.drain {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            let stats = guard.stats();
            let es = stats.sink("elasticsearch");
            if es.is_some_and(|s| s.buffered == 0 && s.spool_bytes == 0) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let report = guard.shutdown(Duration::from_secs(20));
    let stats = &report.stats;
    let es = stats.sink("elasticsearch");
    let field = |f: fn(&stockbot_telemetry::SinkStats) -> u64| es.map_or(0, f);
    let _ = writeln!(
        out,
        "report completed={} emitted={} written={} dropped={} buffer_full={} buffered={} spooled={} recovered={} spool_bytes={} corrupt={} write_errors={} accounted={}",
        report.completed,
        stats.emitted,
        field(|s| s.written),
        stats.dropped_total() + field(|s| s.dropped_total()),
        field(|s| s.dropped.get("buffer_full").copied().unwrap_or(0)),
        stats.buffered() + field(|s| s.buffered),
        field(|s| s.spooled),
        field(|s| s.recovered),
        field(|s| s.spool_bytes),
        field(|s| s.spool_corrupt_frames),
        field(|s| s.spool_write_errors),
        stats.accounted_for(),
    );
}
