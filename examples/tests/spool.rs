//! The disk spool of the network sinks (RELIABILITY.md scenario 10, and scenario 12 for the
//! spool and dead-letter files): a process killed with SIGKILL mid-write loses no acknowledged
//! record; a full disk (a real `EFBIG` from `ulimit -f`) falls back to memory and drop
//! counters without stopping the process; audit-class records use the spool's reserve; the
//! spool never holds a secret. Every run checks the accounting identity and, after replay,
//! that Elasticsearch holds each record once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use stockbot_telemetry::{ElasticsearchConfig, SpoolConfig, TelemetryBuilder, TelemetryGuard};
use stockbot_telemetry_testing::elasticsearch::{EsReply, FakeElasticsearch};
use stockbot_telemetry_testing::prometheus::free_port;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stockbot-spool-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An address nobody listens on.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// How many times each order number was stored.
fn stored(es: &FakeElasticsearch) -> BTreeMap<u64, usize> {
    es.count_numbered("order.cl_ord_id", "C-")
}

/// Runs `log-load` against a live fake cluster with no new records, until the spool is
/// drained; the cluster and the run's report.
fn replay(spool: &str) -> (FakeElasticsearch, BTreeMap<String, String>) {
    let es = FakeElasticsearch::start().unwrap();
    let report = run_load(load(&[
        "--es",
        &es.url(),
        "--spool",
        spool,
        "--count",
        "0",
        "--drain",
    ]));
    (es, report)
}

/// The `report …` line of `log-load` as key/value pairs.
fn report(line: &str) -> BTreeMap<String, String> {
    line.strip_prefix("report ")
        .unwrap_or_else(|| panic!("not a report: {line}"))
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn num(r: &BTreeMap<String, String>, key: &str) -> u64 {
    r[key].parse().unwrap()
}

fn load(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_log-load"));
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// Runs `log-load` to the end; its report.
fn run_load(mut cmd: Command) -> BTreeMap<String, String> {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "log-load failed: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("report "))
        .unwrap_or_else(|| panic!("no report in {stdout}"));
    report(line)
}

/// The child's stdout lines, read on a thread (so waiting for one has a bound).
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    rx
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "seg"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn scenario_10_a_process_killed_mid_write_replays_every_acknowledged_record() {
    let dir = tmp("kill");
    let spool = dir.join("spool");
    let spool_arg = spool.to_str().unwrap();
    // The backend is down: records go to the spool; every 500 records the child flushes and
    // prints what is acknowledged (delivered or fsynced).
    let mut child = load(&[
        "--es",
        &dead_url(),
        "--spool",
        spool_arg,
        "--count",
        "10000000",
        "--rate",
        "5000",
        "--ack-every",
        "500",
    ])
    .spawn()
    .unwrap();
    let rx = lines(&mut child);
    let mut acked = 0u64;
    while acked < 3000 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the child acknowledges progress");
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
        }
    }
    // Mid-write: it keeps emitting and spooling at 5000 records/s.
    std::thread::sleep(Duration::from_millis(230));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The last progress line it printed: at least this many records were emitted.
    let emitted = rx
        .iter()
        .filter_map(|l| l.strip_prefix("at ").and_then(|n| n.parse::<u64>().ok()))
        .max()
        .unwrap_or(acked)
        .max(acked);
    assert!(!segment_files(&spool.join("elasticsearch")).is_empty());

    // Restart against a live backend: the spool is replayed, then drained.
    let (es, r) = replay(spool_arg);
    let seen = stored(&es);
    for seq in 0..acked {
        assert_eq!(
            seen.get(&seq),
            Some(&1),
            "acknowledged record {seq} replayed once"
        );
    }
    assert!(seen.values().all(|&n| n == 1), "nothing stored twice");
    // Everything recovered is written (with this run's own few start-up records).
    assert_eq!(
        num(&r, "recovered") + num(&r, "emitted"),
        num(&r, "written"),
        "{r:?}"
    );
    assert!(num(&r, "recovered") >= acked, "{r:?}");
    assert_eq!(num(&r, "spool_bytes"), 0, "drained: {r:?}");
    assert_eq!(r["accounted"], "true", "{r:?}");
    // The SIGKILL loss window: what was emitted but not yet appended (records in the queue
    // and the worker's open batch); reported, not asserted (timing varies).
    eprintln!(
        "killed after {acked} acknowledged and at least {emitted} emitted; {} replayed, {} lost (at most), {} corrupt frames skipped",
        seen.len(),
        emitted.saturating_sub(seen.len() as u64),
        r["corrupt"]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn scenario_10_a_full_disk_falls_back_to_memory_and_counts_and_never_exits() {
    let dir = tmp("full");
    let spool = dir.join("spool");
    let spool_arg = spool.to_str().unwrap();
    // `ulimit -f 2048`: writes past 2 MiB fail with EFBIG (SIGXFSZ ignored), as on a full
    // disk, while about 9 MB of records come.
    let mut cmd = Command::new("bash");
    cmd.args([
        "-c",
        r#"ulimit -f 2048 && trap "" XFSZ && exec "$0" "$@""#,
        env!("CARGO_BIN_EXE_log-load"),
        "--es",
        &dead_url(),
        "--spool",
        spool_arg,
        "--count",
        "20000",
    ])
    .stdout(Stdio::piped());
    let first = run_load(cmd);
    assert!(num(&first, "write_errors") > 0, "{first:?}");
    assert!(num(&first, "buffer_full") > 0, "{first:?}");
    assert!(num(&first, "spooled") > 0, "{first:?}");
    assert!(num(&first, "spool_bytes") <= 2048 * 1024, "{first:?}");
    assert_eq!(first["accounted"], "true", "{first:?}");
    assert_eq!(
        num(&first, "emitted"),
        num(&first, "written") + num(&first, "dropped") + num(&first, "buffered"),
        "{first:?}"
    );
    let on_disk: u64 = segment_files(&spool.join("elasticsearch"))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk <= 2048 * 1024);

    // What was spooled is shipped by the next run, once each.
    let (es, second) = replay(spool_arg);
    let seen = stored(&es);
    assert_eq!(
        num(&second, "recovered"),
        num(&first, "spooled"),
        "{second:?}"
    );
    assert!(seen.len() as u64 <= num(&second, "recovered"));
    assert!(
        seen.len() > 1000,
        "several frames made it before the disk filled"
    );
    assert!(seen.values().all(|&n| n == 1));
    assert_eq!(
        num(&second, "corrupt"),
        0,
        "failed writes left no partial frame"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn service(es_url: &str, spool: &Path, secrets: bool) -> (tracing::Dispatch, TelemetryGuard) {
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.log.schema = stockbot_telemetry::SchemaMode::Lenient;
    config.log.filter = "info,stockbot_telemetry=off".into();
    config.pipeline.flush_interval = Duration::from_millis(50);
    let mut es = ElasticsearchConfig::new(es_url);
    es.timeout = Duration::from_millis(300);
    es.dead_letter = Some(spool.with_file_name("dead-letter.log"));
    config.log.elasticsearch = Some(es);
    config.log.shipping.memory_max_bytes = 64 << 10;
    let mut s = SpoolConfig::new(spool);
    s.max_bytes = 1 << 20;
    s.fsync_interval = Duration::from_millis(50);
    config.log.shipping.spool = Some(s);
    if secrets {
        config.log.redaction.secret_fields.push("pin_code".into());
    }
    TelemetryBuilder::new(config).build_dispatch().unwrap()
}

#[test]
fn audit_records_use_the_spool_reserve_when_memory_and_the_spool_are_full() {
    let dir = tmp("audit");
    let spool = dir.join("spool");
    let (dispatch, guard) = service(&dead_url(), &spool, false);
    let note = "n".repeat(200);
    tracing::dispatcher::with_default(&dispatch, || {
        for seq in 0..6000u64 {
            tracing::info!(
                seq,
                cl_ord_id = format!("C-{seq}").as_str(),
                note = note.as_str(),
                "order routed"
            );
        }
        // Memory and the spool (but for its reserve) fill up while the backend is down.
        guard.flush(Duration::from_secs(10));
        for seq in 100_000..100_100u64 {
            tracing::info!(
                audit = true,
                seq,
                cl_ord_id = format!("C-{seq}").as_str(),
                "order accepted"
            );
        }
    });
    let report = guard.shutdown(Duration::from_secs(20));
    let stats = &report.stats;
    let es_sink = stats.sink("elasticsearch").unwrap();
    assert!(es_sink.dropped["buffer_full"] > 0, "{stats:?}");
    assert!(es_sink.spool_bytes <= 1 << 20, "{stats:?}");
    assert!(stats.accounted_for(), "{stats:?}");
    assert_eq!(
        stats.emitted,
        es_sink.written + es_sink.dropped_total() + stats.dropped_total() + es_sink.buffered
    );

    let es = FakeElasticsearch::start().unwrap();
    let (_dispatch, guard) = service(&es.url(), &spool, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while guard
        .stats()
        .sink("elasticsearch")
        .is_some_and(|s| s.spool_bytes > 0 || s.buffered > 0)
    {
        assert!(std::time::Instant::now() < deadline, "the spool drains");
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = stored(&es);
    for seq in 100_000..100_100u64 {
        assert_eq!(seen.get(&seq), Some(&1), "audit record {seq} kept");
    }
    assert!(seen.values().all(|&n| n == 1));
    let replay = guard.shutdown(Duration::from_secs(10)).stats;
    let es_sink = replay.sink("elasticsearch").unwrap();
    // The spool also held the SDK's own start-up records.
    assert!(es_sink.recovered >= seen.len() as u64);
    assert_eq!(es_sink.written, es_sink.recovered + replay.emitted);
    assert!(replay.accounted_for(), "{replay:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn scenario_12_no_secret_reaches_the_spool_the_dead_letter_file_or_elasticsearch() {
    let secrets = [
        "hunter2-very-secret",
        "4111111111111111",
        "DE89370400440532013000",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "AKIAIOSFODNN7EXAMPLE",
        "s3cr3t-bearer-token-value",
        "ACC-0042-PRIVATE",
        "pin-7741",
    ];
    let emit = |dispatch: &tracing::Dispatch| {
        tracing::dispatcher::with_default(dispatch, || {
            tracing::info!(password = "hunter2-very-secret", cl_ord_id = "C-1", "login");
            tracing::info!(
                cl_ord_id = "C-2",
                "card 4111111111111111, iban DE89370400440532013000"
            );
            tracing::info!(
                cl_ord_id = "C-3",
                header = "Authorization: Bearer s3cr3t-bearer-token-value",
                "header"
            );
            tracing::info!(
                cl_ord_id = "C-4",
                note = "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc aws AKIAIOSFODNN7EXAMPLE",
                "keys"
            );
            tracing::info!(
                cl_ord_id = "C-5",
                account = "ACC-0042-PRIVATE",
                pin_code = "pin-7741",
                "account activity"
            );
        });
    };
    let dir = tmp("secrets");
    let spool = dir.join("spool");
    // Backend down: everything goes to the spool.
    let (dispatch, guard) = service(&dead_url(), &spool, true);
    emit(&dispatch);
    assert!(guard.flush(Duration::from_secs(20)));
    let report = guard.shutdown(Duration::from_secs(10));
    assert!(report.stats.sink("elasticsearch").unwrap().spooled >= 5);
    let mut spooled = Vec::new();
    for f in segment_files(&spool.join("elasticsearch")) {
        spooled.extend(std::fs::read(f).unwrap());
    }
    assert!(String::from_utf8_lossy(&spooled).contains("C-5"));

    // Replayed into a cluster that refuses every item of its first request (dead letter);
    // the rest, and the same records emitted again, are stored.
    let es = FakeElasticsearch::start().unwrap();
    es.script([EsReply::items([400; 5])]);
    let (dispatch, guard) = service(&es.url(), &spool, true);
    emit(&dispatch);
    let stats = guard.shutdown(Duration::from_secs(20)).stats;
    let es_sink = stats.sink("elasticsearch").unwrap();
    let rejected = es_sink.dropped["rejected"];
    assert!((1..=5).contains(&rejected), "{stats:?}");
    assert!(es_sink.recovered >= 5, "{stats:?}");
    assert!(stats.accounted_for(), "{stats:?}");
    let dead_letter = std::fs::read_to_string(dir.join("dead-letter.log")).unwrap();
    assert_eq!(dead_letter.lines().count() as u64, rejected);
    assert_eq!(es.documents().len() as u64, es_sink.written);
    let shipped: String = es
        .documents()
        .iter()
        .map(|d| d.source.to_string())
        .collect();
    assert!(shipped.contains("C-5"));
    for (sink, text) in [
        ("spool", String::from_utf8_lossy(&spooled).into_owned()),
        ("dead letter", dead_letter),
        ("elasticsearch", shipped),
    ] {
        for s in secrets {
            assert!(
                !text.contains(s),
                "secret {s:?} reached the {sink}:\n{text}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
