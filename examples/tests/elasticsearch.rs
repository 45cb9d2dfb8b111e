//! Shipping logs to Elasticsearch (`_bulk` into a data stream) against the fake, which parses
//! the real NDJSON: RELIABILITY.md scenarios 1 (429 then recovery), 2 (mixed per-item
//! statuses), 3 (413 and oversize records) and 6 (a backend that stalls), each checking the
//! accounting identity exactly with a unique id per record.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use stockbot_telemetry::{
    ElasticsearchAuth, ElasticsearchConfig, PipelineStats, Secret, TelemetryBuilder, TelemetryGuard,
};
use stockbot_telemetry_testing::elasticsearch::{EsReply, FakeElasticsearch};

fn service(
    es: &FakeElasticsearch,
    adjust: impl FnOnce(&mut ElasticsearchConfig),
) -> (tracing::Dispatch, TelemetryGuard, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "stockbot-es-{}-{}",
        std::process::id(),
        stockbot_telemetry_testing::prometheus::free_port()
    ));
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.log.schema = stockbot_telemetry::SchemaMode::Lenient;
    // Only this test's records (not the SDK's own start-up and drop-warning records), so the
    // scripted per-item statuses line up with them.
    config.log.filter = "info,stockbot_telemetry=off".into();
    config.pipeline.flush_interval = Duration::from_millis(50);
    let mut es_config = ElasticsearchConfig::new(es.url());
    es_config.timeout = Duration::from_secs(2);
    es_config.auth = Some(ElasticsearchAuth::ApiKey(Secret::new(
        "es-api-key-0123456789",
    )));
    es_config.dead_letter = Some(dir.join("dead-letter.log"));
    adjust(&mut es_config);
    config.log.elasticsearch = Some(es_config);
    assert!(!format!("{config:?}").contains("es-api-key-0123456789"));
    let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
    (dispatch, guard, dir)
}

/// Emits `n` records with unique sequence numbers starting at `from`.
fn emit(dispatch: &tracing::Dispatch, from: u64, n: u64) {
    tracing::dispatcher::with_default(dispatch, || {
        for seq in from..from + n {
            tracing::info!(seq, cl_ord_id = format!("C-{seq}").as_str(), "order routed");
        }
    });
}

/// How many times each sequence number was stored (the SDK's own records, e.g. its drop
/// warnings, are shipped too: only ours are counted).
fn stored(es: &FakeElasticsearch) -> BTreeMap<u64, usize> {
    for d in es.documents() {
        assert_eq!(d.index, "logs-order-router-default");
    }
    es.count_numbered("order.cl_ord_id", "C-")
}

fn sink(stats: &PipelineStats) -> &stockbot_telemetry::SinkStats {
    stats.sink("elasticsearch").unwrap()
}

#[test]
fn scenario_1_throttling_then_recovery_loses_nothing_and_honours_retry_after() {
    let es = FakeElasticsearch::start().unwrap();
    es.script([
        EsReply::status(429).retry_after(1),
        EsReply::status(429),
        EsReply::status(503),
    ]);
    let (dispatch, guard, _) = service(&es, |_| {});
    let start = Instant::now();
    emit(&dispatch, 0, 200);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "callers never wait"
    );
    let report = guard.shutdown(Duration::from_secs(30));
    assert!(report.completed, "{report}");
    let seen = stored(&es);
    assert_eq!(seen.len(), 200, "every record stored");
    assert!(seen.values().all(|&n| n == 1), "none stored twice");
    let requests = es.requests();
    assert_eq!(requests[0].answered, 429);
    assert!(
        requests[1].at.duration_since(requests[0].at) >= Duration::from_millis(950),
        "no retry before Retry-After"
    );
    assert!(requests.iter().all(|r| r.header("authorization")
        == Some("ApiKey es-api-key-0123456789")
        && r.header("content-type") == Some("application/x-ndjson")));
    let stats = report.stats;
    assert_eq!(sink(&stats).written, stats.emitted);
    assert_eq!(sink(&stats).dropped_total(), 0);
    assert!(stats.accounted_for(), "{stats:?}");
}

/// Scenario 1 as specified: a sustained throttling period (several seconds of `429`s, with and
/// without `Retry-After`, then `503`s) under a steady load from the caller's thread. Nothing is
/// lost, no retry comes before `Retry-After`, the backoff is jittered and capped, the shipper's
/// buffer stays within its bound; the caller's emit latency is reported (not asserted).
#[test]
fn scenario_1_sustained_throttling_under_steady_load_loses_nothing() {
    let es = FakeElasticsearch::start().unwrap();
    let with_header = 3;
    let mut script = vec![EsReply::status(429).retry_after(1); with_header];
    script.extend(vec![EsReply::status(429); 6]);
    script.extend(vec![EsReply::status(503); 2]);
    let throttled = script.len();
    es.script(script);
    let (dispatch, guard, _) = service(&es, |_| {});
    // 500 records/s for 6 s, timing each call; the pipeline's state sampled every 100 ms.
    let (rate, secs) = (500u64, 6u64);
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut max_buffered = 0;
    let mut next_sample = start;
    tracing::dispatcher::with_default(&dispatch, || {
        for seq in 0..rate * secs {
            let id = format!("C-{seq}");
            let t = Instant::now();
            tracing::info!(seq, cl_ord_id = id.as_str(), "order routed");
            latencies.push(t.elapsed());
            if Instant::now() >= next_sample {
                let stats = guard.stats();
                let s = sink(&stats);
                max_buffered = max_buffered.max(s.buffered);
                assert_eq!(s.dropped_total() + stats.dropped_total(), 0, "{stats:?}");
                next_sample += Duration::from_millis(100);
            }
            let due = start + Duration::from_secs_f64((seq + 1) as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    });
    let report = guard.shutdown(Duration::from_secs(60));
    assert!(report.completed, "{report}");
    let seen = stored(&es);
    let requests = es.requests();
    let answered: Vec<u16> = requests.iter().map(|r| r.answered).collect();
    // The shutdown began while the backend still throttled: delivery went on until it
    // recovered (the deadline allows it) instead of giving up after one more try.
    assert_eq!(
        seen.len() as u64,
        rate * secs,
        "every record stored: {:?}, answers {answered:?}",
        report.stats
    );
    assert!(seen.values().all(|&n| n == 1), "none stored twice");
    let stats = &report.stats;
    assert_eq!(sink(stats).dropped_total() + stats.dropped_total(), 0);
    assert!(stats.accounted_for(), "{stats:?}");
    // The throttled requests, then the retries that got through.
    assert!(requests.len() > throttled, "{} requests", requests.len());
    let gaps: Vec<Duration> = requests
        .windows(2)
        .take(throttled)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect();
    for (i, gap) in gaps.iter().enumerate() {
        if i < with_header {
            assert!(
                *gap >= Duration::from_millis(950),
                "Retry-After honoured: {gaps:?}"
            );
        }
        // Capped (5 s), with a generous margin for a loaded machine.
        assert!(*gap <= Duration::from_secs(8), "backoff capped: {gaps:?}");
    }
    let outage = requests[throttled].at.duration_since(requests[0].at);
    assert!(
        outage >= Duration::from_secs(3),
        "a sustained outage: {outage:?}"
    );
    // The buffer held the outage's records, within its bound (16 MiB; records are < 1 KiB).
    assert!(
        max_buffered > 0 && max_buffered < 16 * 1024,
        "{max_buffered}"
    );
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "scenario 1: outage {outage:?}, gaps {gaps:?}, most records held {max_buffered}; emit latency p50 {:?} p99 {:?} p99.9 {:?} max {:?}",
        at(0.5),
        at(0.99),
        at(0.999),
        latencies[latencies.len() - 1]
    );
}

#[test]
fn scenario_2_only_throttled_and_failed_items_are_resent_and_refusals_go_to_dead_letter() {
    let es = FakeElasticsearch::start().unwrap();
    // The first item is the SDK's start-up record; then our five records.
    es.script([EsReply::items([201, 201, 429, 503, 400, 409])]);
    let (dispatch, guard, dir) = service(&es, |_| {});
    emit(&dispatch, 0, 5);
    let report = guard.shutdown(Duration::from_secs(30));
    let requests = es.requests();
    assert_eq!(requests[0].items.len(), 6);
    assert_eq!(
        requests[1].items,
        requests[0].items[2..4].to_vec(),
        "only the 429 and 503 items, with their original _ids"
    );
    let seen = stored(&es);
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    let stats = report.stats;
    let es_sink = sink(&stats);
    // 201, the two re-sent items and 409 (already stored) are written; so are the SDK's own
    // records that followed (its drop warning).
    assert_eq!(es_sink.written, stats.emitted - 1);
    assert_eq!(es_sink.dropped["rejected"], 1);
    assert!(
        requests[2..].iter().all(|r| r.items.len() < 6),
        "the batch is never re-sent whole"
    );
    assert!(stats.accounted_for(), "{stats:?}");
    let dead = std::fs::read_to_string(dir.join("dead-letter.log")).unwrap();
    assert_eq!(dead.lines().count(), 1);
    let entry: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(entry["status"], 400);
    assert_eq!(entry["error"]["type"], "document_parsing_exception");
    assert_eq!(entry["record"]["order.cl_ord_id"], "C-3");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn scenario_3_too_large_requests_are_split_and_oversize_records_dropped_and_counted() {
    // The server takes at most 6 KiB per request: a batch of 40 records (~12 KiB) is split.
    let es = FakeElasticsearch::with_max_body(6 * 1024).unwrap();
    let (dispatch, guard, _) = service(&es, |c| c.max_bulk_bytes = 1024 * 1024);
    emit(&dispatch, 0, 40);
    // One record bigger than the server's limit on its own: dropped after the splits.
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(
            cl_ord_id = "C-1000",
            blob = "x".repeat(7000).as_str(),
            "huge"
        );
    });
    let report = guard.shutdown(Duration::from_secs(30));
    let seen = stored(&es);
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|&n| n == 1));
    assert!(es.requests().iter().any(|r| r.answered == 413));
    let stats = report.stats;
    assert_eq!(sink(&stats).written, stats.emitted - 1);
    assert_eq!(sink(&stats).dropped["oversize"], 1);
    assert!(stats.accounted_for(), "{stats:?}");

    // A record over our own request limit never leaves the process.
    let es = FakeElasticsearch::start().unwrap();
    let (dispatch, guard, _) = service(&es, |c| c.max_bulk_bytes = 2048);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(
            cl_ord_id = "C-1",
            blob = "y".repeat(3000).as_str(),
            "too big"
        );
        tracing::info!(cl_ord_id = "C-2", "fits");
    });
    let stats = guard.shutdown(Duration::from_secs(30)).stats;
    assert_eq!(stored(&es).keys().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(sink(&stats).dropped["oversize"], 1);
    assert!(es.requests().iter().all(|r| r.bytes <= 2048));
    assert!(stats.accounted_for());
}

#[test]
fn scenario_6_a_stalled_backend_times_out_and_callers_never_block() {
    let es = FakeElasticsearch::start().unwrap();
    es.script([EsReply::ok().delay(Duration::from_secs(3))]);
    let (dispatch, guard, _) = service(&es, |c| c.timeout = Duration::from_millis(500));
    let start = Instant::now();
    emit(&dispatch, 0, 50);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "callers never wait"
    );
    let report = guard.shutdown(Duration::from_secs(30));
    let seen = stored(&es);
    // The stalled request may have stored its items before its answer came too late: the
    // re-send then gets 409s, which count as success, so nothing is stored twice.
    assert_eq!(seen.len(), 50);
    assert!(seen.values().all(|&n| n == 1));
    let stats = report.stats;
    assert_eq!(sink(&stats).written, stats.emitted);
    assert!(stats.accounted_for(), "{stats:?}");
}

#[test]
fn gzip_bodies_and_basic_auth_are_sent_and_a_dead_backend_is_counted() {
    let es = FakeElasticsearch::start().unwrap();
    let (dispatch, guard, _) = service(&es, |c| {
        c.gzip = true;
        c.auth = Some(ElasticsearchAuth::Basic {
            username: "elastic".into(),
            password: Secret::new("changeme"),
        });
    });
    emit(&dispatch, 0, 10);
    guard.shutdown(Duration::from_secs(30));
    let r = &es.requests()[0];
    assert!(r.gzip);
    assert_eq!(
        r.header("authorization"),
        Some("Basic ZWxhc3RpYzpjaGFuZ2VtZQ==")
    );
    assert_eq!(stored(&es).len(), 10);

    // Nobody listening: every record is counted as failed, nothing blocks.
    let port = stockbot_telemetry_testing::prometheus::free_port();
    let dead = FakeElasticsearch::start().unwrap();
    drop(dead);
    let es = FakeElasticsearch::start().unwrap();
    let (dispatch, guard, _) = service(&es, |c| {
        c.url = format!("http://127.0.0.1:{port}");
        c.timeout = Duration::from_millis(300);
    });
    let start = Instant::now();
    emit(&dispatch, 0, 20);
    assert!(start.elapsed() < Duration::from_secs(2));
    // Delivery is retried until the shutdown's deadline, then what is left is counted.
    let stats = guard.shutdown(Duration::from_secs(3)).stats;
    assert_eq!(sink(&stats).written, 0);
    assert_eq!(sink(&stats).dropped_total(), stats.emitted, "{stats:?}");
    assert!(stats.emitted >= 20);
    assert!(stats.accounted_for());
}

/// Runs the `stockbot-logs` binary with the given environment.
fn stockbot_logs(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stockbot-logs"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn retention_is_installed_and_an_order_is_found_by_its_ids_from_the_cli() {
    let es = FakeElasticsearch::start().unwrap();
    let url = es.url();
    let env = [
        ("OTEL_SERVICE_NAME", "order-router"),
        ("STOCKBOT_ELASTICSEARCH_URL", url.as_str()),
        ("STOCKBOT_ELASTICSEARCH_API_KEY", "es-api-key-0123456789"),
    ];
    let (ok, _, err) = stockbot_logs(&["install"], &env);
    assert!(ok, "{err}");
    let template = &es.index_templates()["order-router-logs"];
    assert_eq!(template["index_patterns"][0], "logs-order-router-*");
    assert_eq!(
        template["template"]["settings"]["index.lifecycle.name"],
        "order-router-logs"
    );
    assert!(es.ilm_policies().contains_key("order-router-logs"));

    // Ship an order's records, then fetch them back by client order id and by trace id.
    let (dispatch, guard, _) = service(&es, |_| {});
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("replace_order");
        let _e = span.enter();
        tracing::info!(cl_ord_id = "C-2", orig_cl_ord_id = "C-1", "replace sent");
        tracing::info!(cl_ord_id = "C-9", "another order");
    });
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(cl_ord_id = "C-1", "order sent");
    });
    assert!(guard.shutdown(Duration::from_secs(20)).completed);
    let (ok, out, err) = stockbot_logs(&["search", "--cl-ord-id", "C-1"], &env);
    assert!(ok, "{err}");
    let found: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = found.iter().filter_map(|r| r["message"].as_str()).collect();
    assert_eq!(messages, ["replace sent", "order sent"], "oldest first");
    let trace = found[0]["trace.id"].as_str().unwrap().to_owned();
    let (ok, out, _) = stockbot_logs(&["search", "--trace-id", &trace], &env);
    assert!(ok);
    assert_eq!(
        out.lines().count(),
        2,
        "both records of the replace's trace"
    );

    // Bad usage and a dead backend are clear errors.
    let (ok, _, err) = stockbot_logs(&["search"], &env);
    assert!(!ok && err.contains("--trace-id"), "{err}");
    drop(es);
    let (ok, _, err) = stockbot_logs(&["install"], &env);
    assert!(!ok && err.contains(&url), "{err}");
    assert!(!err.contains("es-api-key-0123456789"));
}

#[test]
fn without_elasticsearch_search_reads_the_local_files() {
    let dir = std::env::temp_dir().join(format!(
        "stockbot-logs-cli-{}-{}",
        std::process::id(),
        stockbot_telemetry_testing::prometheus::free_port()
    ));
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.log.file.enabled = true;
    config.log.file.directory = dir.clone();
    let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(cl_ord_id = "C-5", "order sent");
        tracing::info!(cl_ord_id = "C-6", "other");
    });
    assert!(guard.shutdown(Duration::from_secs(20)).completed);
    let dir_text = dir.display().to_string();
    let (ok, out, err) = stockbot_logs(
        &["search", "--cl-ord-id", "C-5"],
        &[
            ("OTEL_SERVICE_NAME", "order-router"),
            ("STOCKBOT_LOG_DIR", dir_text.as_str()),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("order sent"));
    // Another service whose name starts the same is not read.
    std::fs::write(
        dir.join("order-router-eu.log"),
        r#"{"@timestamp":"2024-01-01T00:00:00Z","message":"not ours","order.cl_ord_id":"C-5"}"#,
    )
    .unwrap();
    let (ok, out, _) = stockbot_logs(
        &["search", "--cl-ord-id", "C-5"],
        &[
            ("OTEL_SERVICE_NAME", "order-router"),
            ("STOCKBOT_LOG_DIR", dir_text.as_str()),
        ],
    );
    assert!(ok);
    assert!(!out.contains("not ours"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tls_is_verified_against_the_configured_ca_and_an_untrusted_server_is_refused_and_counted() {
    let es = FakeElasticsearch::start_tls().unwrap();
    assert!(es.url().starts_with("https://127.0.0.1:"));
    let dir = std::env::temp_dir().join(format!(
        "stockbot-es-tls-{}-{}",
        std::process::id(),
        stockbot_telemetry_testing::prometheus::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("http_ca.crt");
    std::fs::write(&ca, es.ca_pem().unwrap()).unwrap();

    // Trusting the cluster's CA: shipped.
    let (dispatch, guard, _) = service(&es, |c| c.ca_file = Some(ca.clone()));
    emit(&dispatch, 0, 10);
    let stats = guard.shutdown(Duration::from_secs(20)).stats;
    assert_eq!(stored(&es).len(), 10);
    assert_eq!(sink(&stats).written, stats.emitted);

    // Without it (Mozilla's roots only): the self-signed chain is refused, never accepted,
    // and every record is counted.
    let before = es.requests().len();
    let (dispatch, guard, _) = service(&es, |c| c.timeout = Duration::from_millis(500));
    emit(&dispatch, 100, 10);
    let stats = guard.shutdown(Duration::from_secs(3)).stats;
    assert_eq!(sink(&stats).written, 0);
    assert_eq!(sink(&stats).dropped_total(), stats.emitted, "{stats:?}");
    assert!(stats.accounted_for());
    assert_eq!(es.requests().len(), before, "no request got through");
    assert_eq!(stored(&es).len(), 10);

    // A CA file that is not PEM is refused at start-up, naming the setting.
    let bad = dir.join("not-a-cert.pem");
    std::fs::write(&bad, "hello").unwrap();
    let mut config = stockbot_telemetry_testing::test_config();
    let mut es_config = ElasticsearchConfig::new(es.url());
    es_config.ca_file = Some(bad);
    config.log.elasticsearch = Some(es_config);
    let err = TelemetryBuilder::new(config).build_dispatch().unwrap_err();
    assert!(
        err.to_string().contains("log.elasticsearch.ca_file"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_proxy_that_refuses_every_size_ends_in_oversize_drops_within_the_budget() {
    // Every request is too large for this "proxy": the sink splits down to single records,
    // then drops them as oversize — and stops when the batch's budget is spent.
    let es = FakeElasticsearch::with_max_body(64).unwrap();
    let (dispatch, guard, _) = service(&es, |c| c.timeout = Duration::from_millis(500));
    emit(&dispatch, 0, 20);
    let start = Instant::now();
    let stats = guard.shutdown(Duration::from_secs(30)).stats;
    assert!(start.elapsed() < Duration::from_secs(20), "bounded");
    let es_sink = sink(&stats);
    assert_eq!(es_sink.written, 0);
    assert_eq!(es_sink.dropped_total(), stats.emitted, "{stats:?}");
    assert!(es_sink.dropped["oversize"] > 0);
    assert!(stats.accounted_for());
}
