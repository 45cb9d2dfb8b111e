//! RELIABILITY.md scenario 12: one corpus of realistic secrets — provider API keys, JWTs,
//! `Authorization` headers, passwords in URLs and in FIX logons, IBANs and bank account
//! numbers, Luhn-valid card numbers with and without separators, a PEM private key — placed
//! everywhere an application puts text: log messages, log fields, span fields (at creation and
//! through `record`), span events, error chains (`&dyn Error`, `%err`, `?err`), `Debug` and
//! pretty `Debug` output of structs, metric label values and ingested lines. Then the bytes of
//! every sink are searched, and none holds any of them: stdout (the real stdout of a child
//! process), the rolling log file, the span file, Elasticsearch `_bulk` documents, the disk
//! spool, the Elasticsearch dead-letter file, OTLP logs, traces and metrics (decoded protobuf
//! and the raw request bodies) and `/metrics` (text and OpenMetrics).
//!
//! Every sink must also show that the corpus reached it (redaction markers, the records' ids),
//! so a sink that received nothing cannot pass.

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stockbot_telemetry::{
    Config, ElasticsearchConfig, OtlpLogsConfig, OtlpMetricsConfig, OtlpTracesConfig, SchemaMode,
    SpoolConfig, TelemetryBuilder, TelemetryGuard,
};
use stockbot_telemetry_testing::elasticsearch::{EsReply, FakeElasticsearch};
use stockbot_telemetry_testing::otlp::FakeOtlpReceiver;
use stockbot_telemetry_testing::prometheus::{free_port, get};

/// Selects the child's role in [`scenario_12_no_secret_reaches_stdout`].
const EMITTER_ENV: &str = "STOCKBOT_SECRETS_EMITTER";

/// One secret of the corpus.
#[derive(Debug)]
struct Secret {
    /// What it is.
    what: &'static str,
    /// The secret in the context an application writes it in (`Authorization: Bearer …`,
    /// `aws_secret_access_key=…`), one line unless it is a PEM block.
    text: String,
    /// The bare secret, also placed under secret-named keys (`api_key: ApiKey("…")`).
    value: String,
    /// What must never appear in a sink: the secret, and the parts that identify it (a grouped
    /// number's compact form, a token without its prefix).
    needles: Vec<String>,
}

fn secret(what: &'static str, text: String, value: &str, needles: &[&str]) -> Secret {
    assert!(text.contains(value), "{what}: the text holds the value");
    let mut all: Vec<String> = needles.iter().map(|n| (*n).to_owned()).collect();
    all.push(value.to_owned());
    Secret {
        what,
        text,
        value: value.to_owned(),
        needles: all,
    }
}

fn luhn_valid(number: &str) -> bool {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, dd) if dd > 9 => dd - 9,
            (_, dd) => dd,
        })
        .sum();
    (13..=19).contains(&digits.len()) && sum.is_multiple_of(10)
}

fn iban_valid(iban: &str) -> bool {
    let compact: String = iban.chars().filter(|c| !c.is_whitespace()).collect();
    let (head, rest) = compact.split_at(4);
    let mut rem = 0u32;
    for c in rest.chars().chain(head.chars()) {
        rem = match c.to_digit(36) {
            Some(d) if d < 10 => (rem * 10 + d) % 97,
            Some(d) => (rem * 100 + d) % 97,
            None => return false,
        };
    }
    rem == 1
}

/// The corpus. The card numbers and IBANs are checked to be valid, so that a miss is the
/// redactor's and not the corpus's.
fn corpus() -> Vec<Secret> {
    let cards = [
        ("Visa card with spaces", "4539 1488 0343 6467"),
        ("Mastercard with dashes", "5425-2334-3010-9903"),
        ("Amex card, compact", "371449635398431"),
        ("Discover card, compact", "6011000990139424"),
        ("another Visa card with spaces", "4916 3385 0608 2832"),
    ];
    let ibans = [
        ("IBAN, compact", "GB29NWBK60161331926819"),
        ("IBAN in groups of four", "DE44 5001 0517 5407 3249 31"),
        (
            "IBAN with letters in the BBAN",
            "FR14 2004 1010 0505 0001 3M02 606",
        ),
    ];
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
               eyJzdWIiOiJvcmRlci1yb3V0ZXIiLCJzY29wZSI6InRyYWRlIiwiZXhwIjoxNzY0MDAwMDAwfQ.\
               Qm9ndXNTaWduYXR1cmVGb3JUZXN0c09ubHkxMjM0NTY";
    let pem_body = "MIIEowIBAAKCAQEAzt7QXq9vKp3LmZ2Yc6Hb1Jd5Fs0Ga8Ue2R8nT2vQ9xLm4Kp7";
    let mut corpus = vec![
        secret(
            "AWS access key id",
            "loaded aws credentials: access key AKIAZ7QX3MPLE4KVN2RT".into(),
            "AKIAZ7QX3MPLE4KVN2RT",
            &[],
        ),
        secret(
            "AWS secret access key",
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Ex4mpLe".into(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Ex4mpLe",
            &["bPxRfiCYzq8Ex4mpLe"],
        ),
        secret(
            "GitHub classic token",
            "git push with ghp_R8nT2vQ9xLm4Kp7Zw3Yc6Hb1Jd5Fs0Ga8Ue2 failed".into(),
            "ghp_R8nT2vQ9xLm4Kp7Zw3Yc6Hb1Jd5Fs0Ga8Ue2",
            &["R8nT2vQ9xLm4Kp7Zw3Yc6Hb1Jd5Fs0Ga8Ue2"],
        ),
        secret(
            "GitHub fine-grained token",
            "GH_TOKEN github_pat_11AZQ4KXY0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789abcdefGHIJKLmnop"
                .into(),
            "github_pat_11AZQ4KXY0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789abcdefGHIJKLmnop",
            &["mNoPqRsTuVwXyZ0123456789abcdefGHIJKLmnop"],
        ),
        secret(
            "Stripe live secret key",
            "charging via stripe key sk_live_51HqLyjWDarjtT1zdp7dcXyZ3kQ9vRt".into(),
            "sk_live_51HqLyjWDarjtT1zdp7dcXyZ3kQ9vRt",
            &["51HqLyjWDarjtT1zdp7dcXyZ3kQ9vRt"],
        ),
        secret(
            "Slack bot token",
            "slack alert with xoxb-2048163527-4096327154-Kq7ZtW9pLm3XvB8nRc2YdH5s".into(),
            "xoxb-2048163527-4096327154-Kq7ZtW9pLm3XvB8nRc2YdH5s",
            &["Kq7ZtW9pLm3XvB8nRc2YdH5s"],
        ),
        secret(
            "Google API key",
            "maps lookup key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".into(),
            "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
            &["SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"],
        ),
        secret(
            "OpenAI project key",
            "summariser uses sk-proj-Xq9T2mV7kL4pR8wZ3nY6bC1dF5gH0jK2sA7eU4iO".into(),
            "sk-proj-Xq9T2mV7kL4pR8wZ3nY6bC1dF5gH0jK2sA7eU4iO",
            &["Xq9T2mV7kL4pR8wZ3nY6bC1dF5gH0jK2sA7eU4iO"],
        ),
        secret(
            "JWT",
            format!("session {jwt} expired"),
            jwt,
            &[
                "eyJzdWIiOiJvcmRlci1yb3V0ZXIiLCJzY29wZSI6InRyYWRlIiwiZXhwIjoxNzY0MDAwMDAwfQ",
                "Qm9ndXNTaWduYXR1cmVGb3JUZXN0c09ubHkxMjM0NTY",
            ],
        ),
        secret(
            "Authorization: Bearer header",
            "Authorization: Bearer 9f86d081884c7d659a2feaa0c55ad015a3bf".into(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf",
            &[],
        ),
        secret(
            "Authorization: Basic header",
            "authorization: Basic b3JkZXItcm91dGVyOlRyNGQzci1QYTU1".into(),
            "b3JkZXItcm91dGVyOlRyNGQzci1QYTU1",
            &[],
        ),
        secret(
            "password in an https URL",
            "GET https://svc-router:Tr4d3rPa55w0rd@broker.internal:8443/fix/session failed"
                .into(),
            "Tr4d3rPa55w0rd",
            &[],
        ),
        secret(
            "password in a database URL",
            "pool: postgres://app:s3cr3t-Db-pw-2291@db.internal:5432/trades".into(),
            "s3cr3t-Db-pw-2291",
            &[],
        ),
        secret(
            "password pair",
            "login user=ops password=Hunter2-Sup3r-S3cret".into(),
            "Hunter2-Sup3r-S3cret",
            &[],
        ),
        secret(
            "FIX logon password",
            "8=FIX.4.4|9=70|35=A|49=BOT|56=XNAS|553=ops|554=Fix-Pa55-77310|10=012|".into(),
            "Fix-Pa55-77310",
            &[],
        ),
        secret(
            "bank account number",
            r#"BankDetails { holder: "Ops Ltd", account_number: "7305519842", sort_code: "60-16-13" }"#
                .into(),
            "7305519842",
            &[],
        ),
        secret(
            "US bank account",
            "payout routing=021000021 bank_account=4420773615".into(),
            "4420773615",
            &[],
        ),
        secret(
            "PEM private key",
            format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----"
            ),
            pem_body,
            &[],
        ),
    ];
    for (what, card) in cards {
        assert!(luhn_valid(card), "{card}");
        let compact: String = card.chars().filter(char::is_ascii_digit).collect();
        corpus.push(secret(
            what,
            format!("payment declined for card {card}: insufficient funds"),
            card,
            &[&compact],
        ));
    }
    for (what, iban) in ibans {
        assert!(iban_valid(iban), "{iban}");
        let compact: String = iban.chars().filter(|c| !c.is_whitespace()).collect();
        corpus.push(secret(
            what,
            format!("withdrawal of 2500.00 EUR to {iban} queued"),
            iban,
            &[&compact, &compact[4..]],
        ));
    }
    corpus
}

/// A transport error, the source of [`SubmitError`].
#[derive(Debug)]
struct GatewayError {
    detail: String,
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gateway refused the request: {}", self.detail)
    }
}

impl Error for GatewayError {}

/// An error with a `source()` chain whose secret is only in the cause.
#[derive(Debug)]
struct SubmitError {
    order: String,
    source: GatewayError,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order {} was not submitted", self.order)
    }
}

impl Error for SubmitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// A request as an application would dump it with `?` or `{:#?}`.
#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct Outbound {
    venue: &'static str,
    payload: String,
    attempt: u32,
}

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct ApiKey(String);

#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct Token(String);

/// Credentials held in newtypes, as applications often do.
#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug")]
struct Vault {
    user: &'static str,
    api_key: ApiKey,
    token: Option<Token>,
}

/// Emits the corpus through every kind of placement. Each record carries `cl_ord_id = S-<i>`.
fn emit(corpus: &[Secret], dispatch: &tracing::Dispatch, guard: &TelemetryGuard) {
    tracing::dispatcher::with_default(dispatch, || {
        for (i, s) in corpus.iter().enumerate() {
            let id = format!("S-{i}");
            let (text, what) = (s.text.as_str(), s.what);
            // Log messages and fields.
            tracing::info!(cl_ord_id = id.as_str(), "placement=message {what}: {text}");
            tracing::info!(cl_ord_id = id.as_str(), detail = text, "placement=field");
            tracing::info!(
                cl_ord_id = id.as_str(),
                shown = %text,
                dumped = ?text,
                "placement=display_and_debug_fields"
            );
            // The bare secret under field names that say what it is.
            tracing::info!(
                cl_ord_id = id.as_str(),
                account_number = s.value.as_str(),
                card_number = s.value.as_str(),
                client_secret = s.value.as_str(),
                "placement=secret_named_fields"
            );
            // Span attributes: at creation and through `record`; events inside the span.
            let span = tracing::info_span!(
                "secret_probe",
                cl_ord_id = id.as_str(),
                detail = text,
                note = tracing::field::Empty,
                shown = tracing::field::Empty,
                iban = tracing::field::Empty,
            );
            span.record("note", text);
            span.record("shown", tracing::field::display(text));
            span.record("iban", s.value.as_str());
            let entered = span.enter();
            tracing::warn!(detail = text, "placement=span_event {text}");
            // Error chains: the secret is in the cause only.
            let err = SubmitError {
                order: id.clone(),
                source: GatewayError {
                    detail: text.to_owned(),
                },
            };
            tracing::error!(
                cl_ord_id = id.as_str(),
                error = &err as &(dyn Error + 'static),
                "placement=error_chain"
            );
            tracing::error!(cl_ord_id = id.as_str(), err = %err.source, "placement=error_display");
            tracing::error!(cl_ord_id = id.as_str(), err = ?err, "placement=error_debug");
            tracing::error!(
                cl_ord_id = id.as_str(),
                "placement=error_in_message {err:?}"
            );
            drop(entered);
            // `Debug` of structs, compact and pretty, with the secret in a plain field and in
            // newtypes under secret-named fields.
            let req = Outbound {
                venue: "XNAS",
                payload: text.to_owned(),
                attempt: 1,
            };
            let vault = Vault {
                user: "ops",
                api_key: ApiKey(s.value.clone()),
                token: Some(Token(s.value.clone())),
            };
            tracing::info!(cl_ord_id = id.as_str(), req = ?req, vault = ?vault, "placement=debug");
            tracing::info!(
                cl_ord_id = id.as_str(),
                "placement=pretty_debug {req:#?} {vault:#?}"
            );
            // Lines of other processes.
            if !text.contains('\n') {
                guard.ingest_line(
                    "sidecar",
                    &format!(r#"level=warn msg="placement=ingest {text}" detail="{text}""#),
                );
            }
        }
    });
    if let Some(recorder) = guard.metrics_recorder() {
        let _scope = tracing::dispatcher::set_default(dispatch);
        metrics::with_local_recorder(&recorder, || {
            for s in corpus {
                // Label values: the secret in context, and the bare secret under a
                // secret-named label.
                metrics::counter!("stockbot_secret_probes_total", "venue" => s.text.clone())
                    .increment(1);
                metrics::histogram!("stockbot_secret_probe_seconds", "outcome" => s.text.clone())
                    .record(0.25);
                metrics::gauge!(
                    "stockbot_secret_probe_ratio",
                    "venue" => "XNAS",
                    "x_api_key" => s.value.clone()
                )
                .set(0.5);
            }
        });
    }
}

/// What is wrong with one sink's bytes (as text): each needle of the corpus found in it, and
/// each piece of `evidence` missing (then the corpus did not reach the sink, and finding no
/// secret there proves nothing).
fn problems(sink: &str, text: &str, corpus: &[Secret], evidence: &[&str]) -> Vec<String> {
    let leaked: BTreeSet<String> = corpus
        .iter()
        .flat_map(|s| {
            s.needles
                .iter()
                .filter(|n| text.contains(n.as_str()))
                .map(move |n| format!("{sink}: leaked the {} ({n})", s.what))
        })
        .collect();
    let missing = evidence
        .iter()
        .filter(|e| !text.contains(**e))
        .map(|e| format!("{sink}: does not hold {e:?} ({} bytes)", text.len()));
    leaked.into_iter().chain(missing).collect()
}

/// Checks every sink, then fails with the problems of all of them.
fn assert_clean<'a>(
    corpus: &[Secret],
    sinks: impl IntoIterator<Item = (&'a str, String, &'a [&'a str])>,
) {
    let all: Vec<String> = sinks
        .into_iter()
        .flat_map(|(sink, text, evidence)| problems(sink, &text, corpus, evidence))
        .collect();
    assert!(
        all.is_empty(),
        "{} problem(s):\n{}",
        all.len(),
        all.join("\n")
    );
}

/// Every file under `dir`, concatenated (lossy UTF-8).
fn read_tree(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            out.push_str(&read_tree(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push_str(&String::from_utf8_lossy(&bytes));
            out.push('\n');
        }
    }
    out
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stockbot-secrets-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn base_config() -> Config {
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.log.schema = SchemaMode::Lenient;
    config.log.filter = "info".into();
    config.pipeline.flush_interval = Duration::from_millis(50);
    config.traces.flush_interval = Duration::from_millis(50);
    config
}

/// Elasticsearch at `es_url` with the disk spool and the dead-letter file under `dir`.
fn with_elasticsearch(config: &mut Config, es_url: &str, dir: &Path) {
    let mut es = ElasticsearchConfig::new(es_url);
    es.timeout = Duration::from_millis(500);
    es.dead_letter = Some(dir.join("dead-letter.log"));
    es.dead_letter_max_bytes = 16 << 20;
    config.log.elasticsearch = Some(es);
    config.log.shipping.memory_max_bytes = 64 << 10;
    let mut spool = SpoolConfig::new(dir.join("spool"));
    spool.max_bytes = 8 << 20;
    spool.fsync_interval = Duration::from_millis(50);
    config.log.shipping.spool = Some(spool);
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Markers every log sink holds once the corpus went through it.
const LOG_EVIDENCE: &[&str] = &[
    "S-0",
    "[REDACTED:api_key]",
    "[REDACTED:card]",
    "[REDACTED:iban]",
    "[REDACTED:url_password]",
    "[REDACTED:bearer]",
    "[REDACTED:basic]",
    "[REDACTED:jwt]",
    "[REDACTED:private_key]",
    "[REDACTED:secret]",
];

#[test]
fn scenario_12_no_secret_reaches_files_elasticsearch_the_spool_otlp_or_metrics() {
    let corpus = corpus();
    let dir = tmp("sinks");

    // 1. Elasticsearch is down: the records wait in the disk spool.
    let mut config = base_config();
    with_elasticsearch(
        &mut config,
        &format!("http://127.0.0.1:{}", free_port()),
        &dir,
    );
    let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
    emit(&corpus, &dispatch, &guard);
    let report = guard.shutdown(Duration::from_secs(20));
    let in_spool = report.stats.sink("elasticsearch").unwrap().spooled;
    assert!(in_spool > 0, "{:?}", report.stats);
    let spooled = read_tree(&dir.join("spool"));

    // 2. Elasticsearch is back but refuses every item: the replayed spool goes to the
    //    dead-letter file.
    let refusing = FakeElasticsearch::start().unwrap();
    refusing.script(std::iter::repeat_n(EsReply::items([400; 10_000]), 1_000));
    let mut config = base_config();
    with_elasticsearch(&mut config, &refusing.url(), &dir);
    let (_dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
    wait_until("the spool is replayed", || {
        let stats = guard.stats();
        let es = stats.sink("elasticsearch").unwrap();
        es.recovered >= in_spool && es.buffered == 0
    });
    let report = guard.shutdown(Duration::from_secs(20));
    let es_sink = report.stats.sink("elasticsearch").unwrap();
    // Every record refused: the recovered ones and the few this run logged itself.
    assert_eq!(
        es_sink.dropped["rejected"],
        es_sink.recovered + report.stats.emitted,
        "{:?}",
        report.stats
    );
    assert!(report.stats.accounted_for(), "{:?}", report.stats);
    let dead_letter = std::fs::read_to_string(dir.join("dead-letter.log")).unwrap();

    // 3. Every sink at once, Elasticsearch storing what it gets.
    let es = FakeElasticsearch::start().unwrap();
    let otlp = FakeOtlpReceiver::start().unwrap();
    let logs_dir = dir.join("logs");
    let mut config = base_config();
    with_elasticsearch(&mut config, &es.url(), &dir);
    config.log.file.enabled = true;
    config.log.file.directory = logs_dir.clone();
    config.traces.file.enabled = true;
    config.log.otlp = Some(OtlpLogsConfig::new(format!("{}/v1/logs", otlp.url())));
    config.traces.otlp = Some(OtlpTracesConfig::new(format!("{}/v1/traces", otlp.url())));
    config.metrics.otlp = Some(OtlpMetricsConfig {
        endpoint: format!("{}/v1/metrics", otlp.url()),
        interval: Duration::from_millis(100),
        ..OtlpMetricsConfig::default()
    });
    config.metrics.listen = "127.0.0.1:0".into();
    let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
    emit(&corpus, &dispatch, &guard);
    assert!(guard.flush(Duration::from_secs(20)));
    wait_until("OTLP metrics hold the probes", || {
        format!("{:?}", otlp.metrics()).contains("stockbot_secret_probe_ratio")
    });
    let (status, scraped) = get(guard.metrics_addr().unwrap().port(), "/metrics").unwrap();
    assert_eq!(status, 200);
    let openmetrics = guard.render_openmetrics().unwrap();
    let log_redactions = guard.stats().redactions;
    let span_redactions = guard.span_stats().unwrap().redactions;
    let label_redactions: f64 = guard
        .render_metrics()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("stockbot_telemetry_metric_label_redactions_total"))
        .and_then(|rest| rest.rsplit_once(' '))
        .map_or(0.0, |(_, v)| v.parse().unwrap());
    let report = guard.shutdown(Duration::from_secs(20));
    assert!(report.completed, "{:?}", report.stats);
    assert!(report.stats.accounted_for(), "{:?}", report.stats);
    let es_sink = report.stats.sink("elasticsearch").unwrap();
    assert_eq!(es_sink.written, es.documents().len() as u64);

    let documents = es.documents();
    let mut stored = String::new();
    for d in &documents {
        stored.push_str(&d.source.to_string());
        stored.push('\n');
        collect_strings(&d.source, &mut stored);
    }
    let raw_otlp: String = otlp
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let files = read_tree(&logs_dir);
    let span_lines: Vec<&str> = files
        .lines()
        .filter(|l| l.starts_with("{\"trace_id\""))
        .collect();
    let span_lines = span_lines.join("\n");
    assert!(
        files.contains("of metric `stockbot_secret_probes_total` held secrets"),
        "the redacted label values are reported"
    );
    let metric_evidence: &[&str] = &[
        "stockbot_secret_probes_total",
        "[REDACTED:card]",
        "[REDACTED]",
    ];
    assert_clean(
        &corpus,
        [
            ("the disk spool", spooled, LOG_EVIDENCE),
            ("the rolling files (logs and spans)", files, LOG_EVIDENCE),
            (
                "the span file",
                span_lines,
                &["secret_probe", "[REDACTED:card]"][..],
            ),
            ("the dead-letter file", dead_letter, LOG_EVIDENCE),
            ("the Elasticsearch documents", stored, LOG_EVIDENCE),
            (
                "the OTLP logs (decoded)",
                format!("{:?}", otlp.logs()),
                LOG_EVIDENCE,
            ),
            (
                "the OTLP traces (decoded)",
                format!("{:?}", otlp.traces()),
                &[
                    "secret_probe",
                    "placement=span_event",
                    "[REDACTED:card]",
                    "[REDACTED:iban]",
                ][..],
            ),
            (
                "the OTLP metrics (decoded)",
                format!("{:?}", otlp.metrics()),
                metric_evidence,
            ),
            ("the OTLP request bodies", raw_otlp, LOG_EVIDENCE),
            ("/metrics", scraped, metric_evidence),
            ("/metrics as OpenMetrics", openmetrics, metric_evidence),
        ],
    );
    // Redactions are counted where they happen, on the workers.
    assert!(
        log_redactions >= corpus.len() as u64 * 8,
        "{log_redactions}"
    );
    assert!(
        span_redactions >= corpus.len() as u64 * 3,
        "{span_redactions}"
    );
    // Three metrics carry each secret as a label value, and each is counted when registered.
    assert!(
        label_redactions >= corpus.len() as f64 * 3.0,
        "{label_redactions}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every string inside a JSON value, one per line (unescaped).
fn collect_strings(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

/// The stdout sink writes to the process's real stdout, which no in-process capture sees: the
/// test runs itself again as a child that emits the corpus with `log.stdout` on, and searches
/// what the child wrote to stdout and stderr.
#[test]
fn scenario_12_no_secret_reaches_stdout() {
    const NAME: &str = "scenario_12_no_secret_reaches_stdout";
    let corpus = corpus();
    if std::env::var_os(EMITTER_ENV).is_some() {
        let mut config = base_config();
        config.log.stdout = true;
        let (dispatch, guard) = TelemetryBuilder::new(config).build_dispatch().unwrap();
        emit(&corpus, &dispatch, &guard);
        assert!(guard.shutdown(Duration::from_secs(20)).completed);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(EMITTER_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the emitter failed: {stderr}");
    let records = stdout
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("placement="))
        .count();
    assert!(records >= corpus.len() * 10, "{records} records on stdout");
    assert_clean(
        &corpus,
        [
            ("stdout", stdout.into_owned(), LOG_EVIDENCE),
            ("stderr", stderr.into_owned(), &[][..]),
        ],
    );
}
