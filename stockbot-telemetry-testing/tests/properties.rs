//! Property tests (proptest) with hostile input: arbitrary field values (any Unicode, control
//! characters, ANSI escapes, quotes, megabyte strings, bytes that are not UTF-8 through
//! `Debug`), arbitrary metric names and label sets, arbitrary `traceparent` / `tracestate` /
//! `baggage` headers. Nothing panics; every event is exactly one line of valid JSON; the
//! exposition stays valid text format 0.0.4 (checked line by line here and by `promtool` at
//! the end); every accepted `traceparent` is valid W3C and round-trips.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use stockbot_telemetry::propagation::{extract, format_traceparent, inject, parse_traceparent};
use stockbot_telemetry::{Config, SchemaMode, TelemetryBuilder, TelemetryGuard};
use stockbot_telemetry_testing::prometheus::promtool_check_metrics;

/// An in-memory sink the tests read back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    /// Everything written since the last call.
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

const MAX_FIELD_BYTES: usize = 4096;

fn pipeline() -> (tracing::Dispatch, TelemetryGuard, Buffer) {
    let mut c = Config::for_service("properties");
    c.log.stdout = false;
    c.log.file.enabled = false;
    c.log.schema = SchemaMode::Lenient;
    c.log.max_field_bytes = MAX_FIELD_BYTES;
    c.metrics.listen = String::new();
    c.metrics.system.enabled = false;
    c.metrics.max_series_per_metric = 50;
    c.traces.file.enabled = false;
    c.pipeline.queue_capacity = 1 << 14;
    c.pipeline.queue_max_bytes = 256 << 20;
    c.log.redaction.pseudonym_key = Some(stockbot_telemetry::Secret::new("properties-key-0123"));
    let buffer = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", buffer.clone())
        .build_dispatch()
        .unwrap();
    (dispatch, guard, buffer)
}

/// Hostile text: any Unicode (control characters included), the characters JSON and the
/// exposition must escape, terminal escapes and fake log lines, sometimes megabyte-sized.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        3 => "[\\x00-\\x1f\\x7f\"\\\\{}=,\\u{2028}\\u{2029}\\u{feff}é€😀]{0,40}",
        1 => Just("\u{1b}[31mred\u{1b}[0m\r\n{\"level\":\"ERROR\",\"message\":\"forged\"}\n".to_owned()),
        1 => (1usize..1_200_000, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
    ]
}

/// The JSON lines of the records the test emitted (not the SDK's own start-up records).
fn user_lines(bytes: &[u8]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let text = std::str::from_utf8(bytes).expect("the sink received UTF-8");
    text.split_terminator('\n')
        .map(|line| match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(m)) => m,
            other => panic!("not a JSON object ({other:?}): {line}"),
        })
        .filter(|m| m.get("log.logger").and_then(|v| v.as_str()) != Some("stockbot_telemetry"))
        .collect()
}

/// Text no redaction pattern can match (no digits, no credential-like syntax).
fn plain(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_ascii_digit() || matches!(c, ':' | '=' | '@' | '.'))
        && !s.to_ascii_lowercase().contains("bearer")
        && !s.to_ascii_lowercase().contains("basic")
        && !s.contains("eyJ")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_event_is_one_valid_json_line_whatever_its_fields_hold(
        events in prop::collection::vec(
            (hostile_text(), hostile_text(), prop::collection::vec(any::<u8>(), 0..64)),
            1..6,
        ),
    ) {
        let (dispatch, guard, buffer) = pipeline();
        tracing::dispatcher::with_default(&dispatch, || {
            for (message, value, bytes) in &events {
                // `Debug` of bytes that are not UTF-8, and of an `OsStr` made from them.
                let os = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes);
                tracing::info!(
                    target: "properties",
                    text = %value,
                    raw = ?bytes.as_slice(),
                    lossy = ?String::from_utf8_lossy(bytes),
                    os = ?os,
                    "{message}"
                );
            }
        });
        prop_assert!(guard.flush(Duration::from_secs(30)));
        let lines = user_lines(&buffer.take());
        prop_assert_eq!(lines.len(), events.len(), "one record per event");
        for (line, (message, value, _)) in lines.iter().zip(&events) {
            let got_message = line["message"].as_str().unwrap();
            let got_value = line["extra.text"].as_str().unwrap();
            // Kept whole when short and plain, else cut with a marker (never longer than
            // the limit plus the marker).
            for (got, sent) in [(got_message, message), (got_value, value)] {
                if sent.len() <= MAX_FIELD_BYTES && plain(sent) {
                    prop_assert_eq!(got, sent.as_str());
                } else if sent.len() > MAX_FIELD_BYTES {
                    prop_assert!(got.contains("[truncated"), "{}", &got[..got.len().min(200)]);
                    prop_assert!(got.len() <= MAX_FIELD_BYTES + 64);
                }
            }
            prop_assert!(line.contains_key("extra.raw") && line.contains_key("extra.os"));
        }
        let report = guard.shutdown(Duration::from_secs(10));
        prop_assert_eq!(report.dropped(), 0);
    }

    #[test]
    fn the_exposition_stays_valid_whatever_names_and_labels_are_asked_for(
        metrics in prop::collection::vec(
            (
                metric_name(),
                prop::collection::vec((label_name(), hostile_text()), 0..4),
                -1e12f64..1e12,
            ),
            1..12,
        ),
    ) {
        let (_, guard, _) = pipeline();
        let recorder = guard.metrics_recorder().unwrap();
        metrics::with_local_recorder(&recorder, || {
            for (name, labels, value) in &metrics {
                let labels: Vec<metrics::Label> = labels
                    .iter()
                    .map(|(k, v)| metrics::Label::new(k.clone(), v.clone()))
                    .collect();
                metrics::counter!(format!("{name}_total"), labels.clone()).increment(1);
                metrics::counter!(name.clone(), labels.clone()).increment(1);
                metrics::gauge!(format!("{name}_level"), labels.clone()).set(*value);
                metrics::histogram!(format!("{name}_seconds"), labels).record(value.abs());
            }
        });
        let text = guard.render_metrics().unwrap();
        check_exposition(&text)?;
        // And Prometheus' own linter, on every case.
        promtool_check_metrics(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        drop(guard);
    }

    #[test]
    fn any_traceparent_is_refused_or_round_trips_as_valid_w3c(header in traceparent()) {
        if let Ok((trace_id, span_id, flags)) = parse_traceparent(&header) {
            prop_assert!(trace_id != 0 && span_id != 0);
            let again = format_traceparent(trace_id, span_id, flags & 1 == 1);
            prop_assert!(is_w3c(&again), "{}", again);
            let (t, s, f) = parse_traceparent(&again).unwrap();
            prop_assert_eq!((t, s, f & 1), (trace_id, span_id, flags & 1));
        }
    }

    #[test]
    fn valid_contexts_round_trip(trace_id in 1u128.., span_id in 1u64.., sampled in any::<bool>()) {
        let header = format_traceparent(trace_id, span_id, sampled);
        prop_assert!(is_w3c(&header));
        let (t, s, f) = parse_traceparent(&header).unwrap();
        prop_assert_eq!((t, s, f & 1 == 1), (trace_id, span_id, sampled));
    }

    #[test]
    fn any_headers_extract_without_panic_and_inject_valid_ones(
        traceparent in traceparent(),
        tracestate in hostile_text(),
        baggage in hostile_text(),
    ) {
        let carrier: HashMap<String, String> = [
            ("traceparent".to_owned(), traceparent),
            ("tracestate".to_owned(), tracestate),
            ("baggage".to_owned(), baggage),
        ]
        .into();
        if let Ok(Some((ctx, baggage, _problems))) = extract(&carrier) {
            let mut out: HashMap<String, String> = HashMap::new();
            inject(&ctx, &baggage, &mut out);
            prop_assert!(is_w3c(&out["traceparent"]), "{:?}", out);
            // What we send on is valid again, and carries the same context.
            let (again, _, problems) = extract(&out).unwrap().unwrap();
            prop_assert!(problems.is_empty(), "{:?} from {:?}", problems, out);
            prop_assert_eq!(again.trace_id, ctx.trace_id);
            prop_assert_eq!(again.span_id, ctx.span_id);
            prop_assert_eq!(again.sampled, ctx.sampled);
            prop_assert!(out.get("tracestate").is_none_or(|s| s.len() <= 512));
        }
    }
}

#[test]
fn promtool_accepts_the_expositions_of_hostile_metrics() {
    // Generated by this test itself (proptest's runner, in this thread): the same strategies.
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let (_, guard, _) = pipeline();
    let recorder = guard.metrics_recorder().unwrap();
    let strategy = prop::collection::vec(
        (
            metric_name(),
            prop::collection::vec((label_name(), hostile_text()), 0..4),
        ),
        1..12,
    );
    runner
        .run(&strategy, |metrics| {
            metrics::with_local_recorder(&recorder, || {
                for (name, labels) in &metrics {
                    let labels: Vec<metrics::Label> = labels
                        .iter()
                        .map(|(k, v)| metrics::Label::new(k.clone(), v.clone()))
                        .collect();
                    metrics::counter!(format!("{name}_total"), labels.clone()).increment(1);
                    metrics::gauge!(format!("{name}_level"), labels.clone()).set(1.5);
                    metrics::histogram!(format!("{name}_seconds"), labels).record(0.5);
                }
            });
            Ok(())
        })
        .unwrap();
    let text = guard.render_metrics().unwrap();
    check_exposition(&text).unwrap_or_else(|e| panic!("{e}"));
    promtool_check_metrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

/// Names a user might pass: valid ones of our namespace, and anything at all.
fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "stockbot_[a-z][a-z0-9_]{0,20}",
        1 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        2 => any::<String>(),
        1 => "stockbot_[a-z_]{0,5}(__|:|-| |\\.|\\n|\"|\\{)[a-z_]{0,5}",
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9_]{0,10}",
        1 => "__[a-z]{0,5}",
        1 => any::<String>(),
        1 => Just("le".to_owned()),
        1 => Just("service".to_owned()),
        1 => Just("quantile".to_owned()),
    ]
}

/// `traceparent` candidates: anything, and near-valid headers with one part broken.
fn traceparent() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => "[0-9a-fA-F]{2}-[0-9a-fA-F]{32}-[0-9a-fA-F]{16}-[0-9a-fA-F]{2}(-[ -~]{0,10})?",
        1 => "00-[0]{32}-[0-9a-f]{16}-01",
        1 => "00-[0-9a-f]{32}-[0]{16}-01",
        1 => "ff-[0-9a-f]{32}-[0-9a-f]{16}-01",
        1 => "[ \\t]{0,3}00-[0-9a-f]{31,33}-[0-9a-f]{15,17}-0[0-3][ \\t]{0,3}",
    ]
}

/// `00-<32 lower hex>-<16 lower hex>-<2 lower hex>`, ids not all zero.
fn is_w3c(h: &str) -> bool {
    let parts: Vec<&str> = h.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0')
}

/// Text format 0.0.4, line by line: valid metric and label names, properly escaped label
/// values, parseable values, one `HELP` and one `TYPE` per family, before its samples, and no
/// series twice.
fn check_exposition(text: &str) -> Result<(), TestCaseError> {
    let mut described: HashMap<String, (bool, bool)> = HashMap::new();
    let mut series = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            prop_assert!(valid_metric_name(name), "bad HELP name: {}", line);
            let entry = described.entry(name.to_owned()).or_default();
            prop_assert!(!entry.0, "second HELP: {}", line);
            entry.0 = true;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap_or_default();
            prop_assert!(valid_metric_name(name), "bad TYPE name: {}", line);
            prop_assert!(
                matches!(
                    parts.next(),
                    Some("counter" | "gauge" | "histogram" | "summary" | "untyped")
                ),
                "bad TYPE: {}",
                line
            );
            let entry = described.entry(name.to_owned()).or_default();
            prop_assert!(!entry.1, "second TYPE: {}", line);
            entry.1 = true;
        } else if line.starts_with('#') {
            prop_assert!(false, "unexpected comment: {}", line);
        } else if !line.is_empty() {
            let (name, labels, value) = parse_sample(line)
                .ok_or_else(|| TestCaseError::fail(format!("unparseable sample: {line:?}")))?;
            prop_assert!(valid_metric_name(&name), "bad name: {}", line);
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| described.contains_key(*f)))
                .unwrap_or(&name);
            prop_assert!(
                described.get(family) == Some(&(true, true)),
                "sample before its HELP and TYPE: {}",
                line
            );
            prop_assert!(
                value == "+Inf"
                    || value == "-Inf"
                    || value == "NaN"
                    || value.parse::<f64>().is_ok(),
                "bad value: {}",
                line
            );
            let mut seen = std::collections::HashSet::new();
            for (k, _) in &labels {
                prop_assert!(valid_label_name(k), "bad label name {:?}: {}", k, line);
                prop_assert!(seen.insert(k.clone()), "label twice: {}", line);
            }
            let mut key = labels.clone();
            key.sort();
            prop_assert!(series.insert((name.clone(), key)), "series twice: {}", line);
        }
    }
    Ok(())
}

fn valid_metric_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with("__")
}

/// A sample line's metric name, labels and value.
type Sample = (String, Vec<(String, String)>, String);

/// `name{k="v",...} value`, with `\\`, `\"` and `\n` the only escapes inside values.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &body[start + 1..];
                break;
            }
            let eq = body[start..].find('=')? + start;
            let key = body[start..eq].to_owned();
            while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        _ => return None,
                    },
                    '\n' => return None,
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            match chars.peek()?.1 {
                ',' => {
                    chars.next();
                }
                '}' => {}
                _ => return None,
            }
        }
    }
    let value = rest.strip_prefix(' ')?;
    (!value.is_empty() && !value.contains(' ')).then(|| (name, labels, value.to_owned()))
}
