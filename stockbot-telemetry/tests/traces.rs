//! Spans: head sampling, export of finished spans, propagation across services, analysis.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Buffer, config};
use stockbot_telemetry::analysis::{self, FinishedSpan, SpanKind};
use stockbot_telemetry::{Config, TelemetryBuilder, TelemetryGuard};
use tracing::{error, info, info_span};

struct Service {
    dispatch: tracing::Dispatch,
    guard: TelemetryGuard,
    spans: Buffer,
    logs: Buffer,
}

fn service(name: &str, tweak: impl FnOnce(&mut Config)) -> Service {
    let mut c = config();
    c.service.name = name.into();
    c.service.own_targets = vec!["traces".into()];
    tweak(&mut c);
    let (spans, logs) = (Buffer::default(), Buffer::default());
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", logs.clone())
        .with_span_writer("mem", spans.clone())
        .build_dispatch()
        .unwrap();
    Service {
        dispatch,
        guard,
        spans,
        logs,
    }
}

impl Service {
    fn finished(&self) -> Vec<FinishedSpan> {
        assert!(self.guard.flush(Duration::from_secs(10)));
        let (spans, malformed) = analysis::read_json_lines(&self.spans.text());
        assert_eq!(malformed, 0);
        spans
    }
}

#[test]
fn finished_spans_carry_ids_kinds_attributes_and_errors() {
    let s = service("order-router", |_| {});
    tracing::dispatcher::with_default(&s.dispatch, || {
        let root = info_span!(target: "traces", "route_order", otel.kind = "server", cl_ord_id = "C-1", venue = "XNAS", account = "ACC-9", api_key = "sk_live_0123456789abcdefABCD");
        let _r = root.enter();
        let child = info_span!(target: "traces", "risk_check", risk_check = "notional");
        let _c = child.enter();
        error!(target: "traces", "limit breached");
    });
    let spans = s.finished();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let child = spans.iter().find(|x| x.name == "risk_check").unwrap();
    let root = spans.iter().find(|x| x.name == "route_order").unwrap();
    assert_eq!(child.trace_id, root.trace_id);
    assert_eq!(child.parent_span_id, Some(root.span_id));
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.service, "order-router");
    assert_eq!(root.attribute("order.cl_ord_id"), Some("C-1"));
    assert_eq!(root.attribute("venue.name"), Some("XNAS"));
    assert_eq!(root.attribute("api_key"), Some("[REDACTED]"));
    assert!(root.attribute("account.id").unwrap().starts_with("pseu_"));
    assert!(!s.spans.text().contains("ACC-9") && !s.spans.text().contains("sk_live_"));
    assert!(child.error, "an error event marks its span");
    assert!(!root.error);
    assert!(
        root.start_unix_nanos <= child.start_unix_nanos
            && child.end_unix_nanos <= root.end_unix_nanos
    );
    // The log record inside carries the same ids.
    let logs = s.logs.user_lines();
    let record = logs
        .iter()
        .find(|m| m["message"] == "limit breached")
        .unwrap();
    assert_eq!(record["trace.id"], format!("{:032x}", root.trace_id));
    assert_eq!(record["span.id"], format!("{:016x}", child.span_id));
}

#[test]
fn unsampled_traces_are_not_exported_but_logs_keep_their_ids() {
    let s = service("strategy", |c| c.traces.sampler = "always_off".into());
    tracing::dispatcher::with_default(&s.dispatch, || {
        let span = info_span!(target: "traces", "decide");
        let _e = span.enter();
        info!(target: "traces", "signal");
    });
    assert!(s.finished().is_empty());
    let logs = s.logs.user_lines();
    assert!(
        logs.iter()
            .any(|m| m["message"] == "signal" && m.contains_key("trace.id"))
    );
}

#[test]
fn ratio_sampling_keeps_whole_traces_and_the_rate_limit_caps_them() {
    let s = service("md", |c| {
        c.traces.sampler = "parentbased_traceidratio".into();
        c.traces.sampler_arg = Some(0.5);
    });
    tracing::dispatcher::with_default(&s.dispatch, || {
        for _ in 0..400 {
            let root = info_span!(target: "traces", "tick");
            let _r = root.enter();
            let _c = info_span!(target: "traces", "normalize").entered();
        }
    });
    let spans = s.finished();
    let roots = spans.iter().filter(|x| x.name == "tick").count();
    let children = spans.iter().filter(|x| x.name == "normalize").count();
    assert_eq!(
        roots, children,
        "parent-based: a sampled root keeps its children"
    );
    assert!((120..280).contains(&roots), "{roots} of 400 at ratio 0.5");

    let limited = service("md2", |c| c.traces.max_traces_per_second = Some(3.0));
    tracing::dispatcher::with_default(&limited.dispatch, || {
        for _ in 0..200 {
            let _r = info_span!(target: "traces", "tick").entered();
        }
    });
    assert!(
        limited.finished().len() <= 5,
        "a burst of 200 traces is cut to the bucket"
    );
}

#[test]
fn one_order_is_one_trace_across_services() {
    let strategy = service("strategy", |_| {});
    let router = service("order-router", |_| {});
    let mut headers: HashMap<String, String> = HashMap::new();
    tracing::dispatcher::with_default(&strategy.dispatch, || {
        let decide = info_span!(target: "traces", "decide", cl_ord_id = "C-7");
        let _d = decide.enter();
        let call = info_span!(target: "traces", "route_order", otel.kind = "client", peer.service = "order-router");
        let _c = call.enter();
        stockbot_telemetry::inject_current(&mut headers);
    });
    assert!(headers["traceparent"].starts_with("00-") && headers["traceparent"].ends_with("-01"));
    tracing::dispatcher::with_default(&router.dispatch, || {
        let server = info_span!(target: "traces", "route_order", otel.kind = "server");
        stockbot_telemetry::extract_into(&server, &headers)
            .unwrap()
            .unwrap();
        let _s = server.enter();
        let _v = info_span!(target: "traces", "send_to_venue", otel.kind = "client", peer.service = "exchange").entered();
    });
    let mut all = strategy.finished();
    all.extend(router.finished());
    assert_eq!(all.len(), 4);
    let trace = all[0].trace_id;
    assert!(all.iter().all(|s| s.trace_id == trace), "{all:#?}");
    let client = all
        .iter()
        .find(|s| s.service == "strategy" && s.kind == SpanKind::Client)
        .unwrap();
    let server = all
        .iter()
        .find(|s| s.service == "order-router" && s.kind == SpanKind::Server)
        .unwrap();
    assert_eq!(server.parent_span_id, Some(client.span_id));
    let edges = analysis::dependency_graph(&all);
    let pairs: Vec<(&str, &str)> = edges
        .iter()
        .map(|e| (e.caller.as_str(), e.callee.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("order-router", "exchange"), ("strategy", "order-router")]
    );
    let path: Vec<&str> = analysis::critical_path(&all, trace)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        path,
        ["decide", "route_order", "route_order", "send_to_venue"]
    );
}

#[test]
fn a_remote_unsampled_parent_is_respected_and_bad_traceparents_are_refused() {
    let s = service("router", |_| {});
    tracing::dispatcher::with_default(&s.dispatch, || {
        let unsampled: HashMap<String, String> = [(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".to_owned(),
        )]
        .into();
        let span = info_span!(target: "traces", "handle");
        stockbot_telemetry::extract_into(&span, &unsampled).unwrap();
        let _e = span.enter();
        let _c = info_span!(target: "traces", "child").entered();

        let bad: HashMap<String, String> = [(
            "traceparent".to_owned(),
            "00-XYZ-00f067aa0ba902b7-01".to_owned(),
        )]
        .into();
        let span = info_span!(target: "traces", parent: None, "handle_bad");
        assert!(stockbot_telemetry::extract_into(&span, &bad).is_err());
    });
    let names: Vec<String> = s.finished().into_iter().map(|x| x.name).collect();
    assert_eq!(
        names,
        ["handle_bad"],
        "the unsampled remote trace is not exported; the bad header starts a new trace"
    );
}

#[test]
fn latency_histograms_carry_exemplars_pointing_at_the_trace_in_openmetrics() {
    let mut c = config();
    c.service.own_targets = vec!["traces".into()];
    let spans = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", std::io::sink())
        .with_span_writer("mem", spans.clone())
        .build_dispatch()
        .unwrap();
    let recorder = guard.metrics_recorder().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        metrics::with_local_recorder(&recorder, || {
            let span = info_span!(target: "traces", "route_order");
            let _e = span.enter();
            stockbot_telemetry::trading::order_acked("XNAS", "mm", Duration::from_micros(150));
            stockbot_telemetry::trading::order_submitted("XNAS", "mm");
        });
    });
    let om = guard.render_openmetrics().unwrap();
    let text = guard.render_metrics().unwrap();
    assert!(guard.flush(Duration::from_secs(10)));
    let (finished, _) = analysis::read_json_lines(&spans.text());
    let root = finished.iter().find(|s| s.name == "route_order").unwrap();
    let exemplar = format!(
        r#" # {{trace_id="{:032x}",span_id="{:016x}"}} 0.00015 "#,
        root.trace_id, root.span_id
    );
    let bucket = om
        .lines()
        .find(|l| {
            l.starts_with("stockbot_order_ack_latency_seconds_bucket{")
                && l.contains(exemplar.trim_end())
        })
        .unwrap_or_else(|| panic!("no exemplar {exemplar} in\n{om}"));
    assert!(bucket.contains(r#"le="0.00025""#), "{bucket}");
    assert!(
        om.contains("# TYPE stockbot_orders_submitted counter\n"),
        "{om}"
    );
    assert!(om.contains("stockbot_orders_submitted_total{"), "{om}");
    assert!(om.contains("# TYPE target info\n"), "{om}");
    assert!(om.ends_with("# EOF\n"));
    // The 0.0.4 text stays free of exemplars (promtool 2.42 lints only that format).
    assert!(!text.contains("trace_id=") && !text.contains("# EOF"));
    assert!(text.contains("# TYPE stockbot_orders_submitted_total counter\n"));
}

#[test]
fn local_keep_rules_export_unsampled_traces_with_errors_audit_or_slow_spans() {
    let s = service("order-router", |c| {
        c.traces.sampler = "always_off".into();
        c.traces.keep.enabled = true;
        c.traces.keep.slower_than = Some(Duration::from_millis(40));
        c.traces.keep.max_spans_per_trace = 3;
    });
    tracing::dispatcher::with_default(&s.dispatch, || {
        {
            let _r = info_span!(target: "traces", "with_error").entered();
            let _c = info_span!(target: "traces", "venue_call").entered();
            error!(target: "traces", "venue rejected");
        }
        {
            let _r = info_span!(target: "traces", "boring").entered();
            let _c = info_span!(target: "traces", "boring_child").entered();
        }
        {
            let _r = info_span!(target: "traces", "order_event", audit = true).entered();
        }
        {
            let _r = info_span!(target: "traces", "slow").entered();
            std::thread::sleep(Duration::from_millis(50));
        }
        {
            let _r = info_span!(target: "traces", "big", error = "boom").entered();
            for _ in 0..10 {
                let _c = info_span!(target: "traces", "many").entered();
            }
        }
    });
    let spans = s.finished();
    let count = |name: &str| spans.iter().filter(|x| x.name == name).count();
    assert_eq!((count("with_error"), count("venue_call")), (1, 1));
    assert_eq!(
        (count("boring"), count("boring_child")),
        (0, 0),
        "nothing special: discarded"
    );
    assert_eq!(count("order_event"), 1);
    assert_eq!(count("slow"), 1);
    assert_eq!((count("big"), count("many")), (1, 3), "bounded per trace");
    let stats = s.guard.span_stats().unwrap();
    assert_eq!(stats.dropped["keep_buffer_full"], 7);
    assert!(stats.accounted_for(), "{stats:?}");
}

#[test]
fn audit_spans_are_never_head_sampled_away() {
    let s = service("risk", |c| c.traces.sampler = "always_off".into());
    tracing::dispatcher::with_default(&s.dispatch, || {
        let _r = info_span!(target: "traces", "kill_switch", audit = true).entered();
        let _n = info_span!(target: "traces", "ordinary").entered();
    });
    let names: Vec<String> = s.finished().into_iter().map(|x| x.name).collect();
    assert_eq!(
        names,
        ["ordinary", "kill_switch"],
        "the audit span and the spans under it are exported"
    );
}

#[test]
fn a_span_continuing_a_remote_trace_is_its_own_local_root_for_keep_rules() {
    let s = service("consumer", |c| {
        c.traces.sampler = "always_off".into();
        c.traces.keep.enabled = true;
    });
    let headers: HashMap<String, String> = [(
        "traceparent".to_owned(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".to_owned(),
    )]
    .into();
    tracing::dispatcher::with_default(&s.dispatch, || {
        let _consume = info_span!(target: "traces", "consume_loop").entered();
        for _ in 0..3 {
            let handle = info_span!(target: "traces", "handle_message");
            stockbot_telemetry::extract_into(&handle, &headers).unwrap();
            let _h = handle.enter();
            error!(target: "traces", "bad message");
        }
        // Released when each message's span closes, not held until the loop ends.
        assert_eq!(s.finished().len(), 3);
    });
}

#[test]
fn a_root_that_never_closes_cannot_starve_the_keep_rules() {
    // A loop span stays open while its ticks fill the keep buffer; a later trace with an
    // error must still be kept, by evicting the oldest held trace (counted).
    let s2 = service("loop2", |c| {
        c.traces.sampler = "always_off".into();
        c.traces.keep.enabled = true;
        c.traces.keep.max_spans_per_trace = 2;
        c.traces.keep.max_buffered_spans = 2;
    });
    tracing::dispatcher::with_default(&s2.dispatch, || {
        let forever = info_span!(target: "traces", "run_loop").entered();
        for _ in 0..2 {
            let _tick = info_span!(target: "traces", parent: forever.id(), "tick").entered();
        }
        {
            let _r = info_span!(target: "traces", parent: None, "failing_order").entered();
            let _c = info_span!(target: "traces", "venue_call").entered();
            error!(target: "traces", "rejected");
        }
        let names: Vec<String> = s2.finished().into_iter().map(|x| x.name).collect();
        assert_eq!(names, ["venue_call", "failing_order"]);
        let stats = s2.guard.span_stats().unwrap();
        assert_eq!(
            stats.dropped["keep_buffer_full"], 2,
            "the stale loop's ticks were evicted and counted"
        );
        drop(forever);
    });
}

#[test]
fn events_links_status_and_tracestate_reach_the_finished_span() {
    let s = service("order-router", |_| {});
    tracing::dispatcher::with_default(&s.dispatch, || {
        let incoming: HashMap<String, String> = [
            (
                "traceparent".to_owned(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ),
            (
                "tracestate".to_owned(),
                "desk=fx,rojo=00f067aa0ba902b7".to_owned(),
            ),
        ]
        .into();
        let original = {
            let _s = info_span!(target: "traces", "new_order", cl_ord_id = "C-1").entered();
            stockbot_telemetry::current_context().unwrap()
        };
        let replace = info_span!(target: "traces", "replace_order", cl_ord_id = "C-2");
        stockbot_telemetry::extract_into(&replace, &incoming).unwrap();
        stockbot_telemetry::add_link(&replace, &original);
        let _e = replace.enter();
        info!(target: "traces", symbol = "AAPL", api_key = "sk_live_0123456789abcdefABCD", "replace sent");
        error!(target: "traces", venue = "XNAS", "venue rejected the replace");
        error!(target: "traces", "second error");
        // The tracestate travels on: what we inject carries it.
        let mut out = HashMap::new();
        stockbot_telemetry::inject_current(&mut out);
        assert_eq!(out["tracestate"], "desk=fx,rojo=00f067aa0ba902b7");
    });
    let spans = s.finished();
    let original = spans.iter().find(|x| x.name == "new_order").unwrap();
    let replace = spans.iter().find(|x| x.name == "replace_order").unwrap();
    assert_eq!(replace.trace_state, "desk=fx,rojo=00f067aa0ba902b7");
    assert_eq!(
        replace.links,
        [analysis::SpanLink {
            trace_id: original.trace_id,
            span_id: original.span_id
        }]
    );
    assert!(replace.error);
    assert_eq!(
        replace.status_message, "venue rejected the replace",
        "the first error"
    );
    let names: Vec<&str> = replace.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["replace sent", "venue rejected the replace", "second error"]
    );
    let sent = replace.event("replace sent").unwrap();
    assert_eq!(sent.attribute("level"), Some("INFO"));
    assert_eq!(
        sent.attribute("instrument.symbol"),
        Some("AAPL"),
        "schema names"
    );
    assert_eq!(sent.attribute("api_key"), Some("[REDACTED]"));
    assert!(
        sent.unix_nanos >= replace.start_unix_nanos && sent.unix_nanos <= replace.end_unix_nanos
    );
    assert!(!s.spans.text().contains("sk_live_0123456789abcdefABCD"));
}

#[test]
fn thousands_of_attributes_events_and_links_are_bounded_and_counted() {
    let s = service("order-router", |c| {
        c.traces.limits.max_attributes = 4;
        c.traces.limits.max_events = 10;
        c.traces.limits.max_links = 2;
    });
    tracing::dispatcher::with_default(&s.dispatch, || {
        let others: Vec<_> = (0..5)
            .map(|i| {
                let _s = info_span!(target: "traces", "other", n = i).entered();
                stockbot_telemetry::current_context().unwrap()
            })
            .collect();
        let span = info_span!(
            target: "traces",
            "wide",
            a = 1, b = 2, c = 3, d = 4, e = 5, f = 6,
            error = tracing::field::Empty
        );
        for o in &others {
            stockbot_telemetry::add_link(&span, o);
        }
        // An error field past the limit still marks the span as failed.
        span.record("error", "boom");
        span.record("error", "boom again"); // the same dropped field: counted once
        let _e = span.enter();
        for i in 0..5000 {
            info!(target: "traces", i, "tick");
        }
    });
    let spans = s.finished();
    let wide = spans.iter().find(|x| x.name == "wide").unwrap();
    // code.namespace is added at export on top of the 4 fields kept.
    assert_eq!(wide.attributes.len(), 5, "{:?}", wide.attributes);
    assert_eq!(wide.dropped.attributes, 3, "f, e and the late `error`");
    assert!(wide.error);
    assert_eq!(wide.events.len(), 10);
    assert_eq!(wide.dropped.events, 4990);
    assert_eq!(wide.links.len(), 2);
    assert_eq!(wide.dropped.links, 3);
    let stats = s.guard.span_stats().unwrap();
    assert_eq!(stats.truncated, 3 + 4990 + 3, "{stats:?}");
}

#[stockbot_telemetry::instrument_trade(operation = "ack_order")]
fn ack_order(venue: &str) -> Result<(), String> {
    let _ = venue;
    Ok(())
}

#[stockbot_telemetry::instrument_trade(operation = "heartbeat")]
fn heartbeat() {}

#[test]
fn instrument_trade_durations_carry_exemplars_of_their_own_span() {
    let spans = Buffer::default();
    let (dispatch, guard) = TelemetryBuilder::new(config())
        .with_writer("mem", std::io::sink())
        .with_span_writer("mem", spans.clone())
        .build_dispatch()
        .unwrap();
    let recorder = guard.metrics_recorder().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        metrics::with_local_recorder(&recorder, || {
            ack_order("XNAS").unwrap();
            heartbeat();
        });
    });
    let om = guard.render_openmetrics().unwrap();
    assert!(guard.flush(Duration::from_secs(10)));
    let (finished, _) = analysis::read_json_lines(&spans.text());
    for (operation, label) in [("ack_order", r#"venue="XNAS""#), ("heartbeat", "")] {
        let span = finished.iter().find(|s| s.name == operation).unwrap();
        let exemplar = format!(
            r#"# {{trace_id="{:032x}",span_id="{:016x}"}}"#,
            span.trace_id, span.span_id
        );
        assert!(
            om.lines()
                .any(|l| l.starts_with("stockbot_trade_duration_seconds_bucket{")
                    && l.contains(&format!(r#"operation="{operation}""#))
                    && l.contains(label)
                    && l.contains(&exemplar)),
            "no exemplar {exemplar} for {operation} in\n{om}"
        );
    }
}

/// One workload of every span operation: fields, `record`, children on this and another
/// thread, explicit parents, roots, follows-from links, events, errors, remote parents.
fn span_workload() {
    let incoming: HashMap<String, String> = [(
        "traceparent".to_owned(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    )]
    .into();
    let root = info_span!(target: "traces", "route_order", cl_ord_id = "C-1", venue = tracing::field::Empty);
    root.record("venue", "XNAS");
    let cause = root.in_scope(|| {
        let child = info_span!(target: "traces", "risk_check", risk_check = "notional");
        child.in_scope(|| error!(target: "traces", "limit breached"));
        child
    });
    let explicit = info_span!(target: "traces", parent: &root, "send_to_venue");
    explicit.follows_from(&cause);
    let detached = info_span!(target: "traces", parent: None, "heartbeat");
    let remote = info_span!(target: "traces", "on_fill");
    stockbot_telemetry::extract_into(&remote, &incoming).unwrap();
    remote.in_scope(|| info!(target: "traces", "fill booked"));
    // A span entered on one thread and closed on another.
    let moved = root.in_scope(|| info_span!(target: "traces", "ack_order"));
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            moved.in_scope(|| info!(target: "traces", "acked"));
            drop(moved);
        })
    })
    .join()
    .unwrap();
    drop((root, cause, explicit, detached, remote));
}

/// The shape of a trace: who is whose parent (by name), attributes, events, links, errors.
fn shape(spans: &[FinishedSpan]) -> Vec<String> {
    let name_of = |id: u64| {
        spans
            .iter()
            .find(|s| s.span_id == id)
            .map_or("remote".to_owned(), |s| s.name.clone())
    };
    let mut out: Vec<String> = spans
        .iter()
        .map(|s| {
            let same_trace: Vec<&str> = spans
                .iter()
                .filter(|o| o.trace_id == s.trace_id && o.span_id != s.span_id)
                .map(|o| o.name.as_str())
                .collect();
            let mut same_trace = same_trace;
            same_trace.sort_unstable();
            format!(
                "{} parent={:?} trace_with={same_trace:?} error={} attrs={:?} events={:?} links={:?}",
                s.name,
                s.parent_span_id.map(name_of),
                s.error,
                s.attributes
                    .iter()
                    .filter(|(k, _)| !k.starts_with("thread") && !k.starts_with("code."))
                    .collect::<Vec<_>>(),
                s.events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
                s.links.iter().map(|l| name_of(l.span_id)).collect::<Vec<_>>(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_layer_in_a_registry_records_what_the_sdk_subscriber_records() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let own = service("order-router", |_| {});
    tracing::dispatcher::with_default(&own.dispatch, span_workload);
    let own_spans = own.finished();

    let mut c = config();
    c.service.name = "order-router".into();
    let (spans, logs) = (common::Buffer::default(), common::Buffer::default());
    let (layer, guard) = TelemetryBuilder::new(c)
        .with_writer("mem", logs.clone())
        .with_span_writer("mem", spans.clone())
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, span_workload);
    assert!(guard.flush(Duration::from_secs(10)));
    let (layer_spans, malformed) = analysis::read_json_lines(&spans.text());
    assert_eq!(malformed, 0);

    assert_eq!(own_spans.len(), 6, "{own_spans:#?}");
    assert_eq!(shape(&own_spans), shape(&layer_spans));
    let remote = own_spans.iter().find(|s| s.name == "on_fill").unwrap();
    assert_eq!(remote.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    let heartbeat = own_spans.iter().find(|s| s.name == "heartbeat").unwrap();
    assert_eq!(heartbeat.parent_span_id, None);
    let root = own_spans.iter().find(|s| s.name == "route_order").unwrap();
    assert_ne!(
        heartbeat.trace_id, root.trace_id,
        "parent: None starts a trace"
    );
    assert_eq!(root.attribute("venue.name"), Some("XNAS"), "recorded later");
    let acked = own.logs.user_lines();
    let acked = acked.iter().find(|l| l["message"] == "acked").unwrap();
    assert_eq!(acked["span.name"], "ack_order", "{acked:?}");
}

#[test]
fn scoped_subscribers_on_one_thread_do_not_see_each_others_spans() {
    let (a, b) = (service("svc-a", |_| {}), service("svc-b", |_| {}));
    tracing::dispatcher::with_default(&a.dispatch, || {
        let _outer = info_span!(target: "traces", "outer").entered();
        tracing::dispatcher::with_default(&b.dispatch, || {
            let _inner = info_span!(target: "traces", "inner").entered();
            assert!(stockbot_telemetry::current_context().is_some());
        });
        // Back in `a`: its span is current again.
        let ctx = stockbot_telemetry::current_context().unwrap();
        let _sibling = info_span!(target: "traces", "sibling").entered();
        assert_eq!(
            stockbot_telemetry::current_context().unwrap().trace_id,
            ctx.trace_id
        );
    });
    let (a, b) = (a.finished(), b.finished());
    let inner = b.iter().find(|s| s.name == "inner").unwrap();
    assert_eq!(
        inner.parent_span_id, None,
        "another subscriber's span is no parent"
    );
    let outer = a.iter().find(|s| s.name == "outer").unwrap();
    let sibling = a.iter().find(|s| s.name == "sibling").unwrap();
    assert_eq!(sibling.parent_span_id, Some(outer.span_id));
}

#[test]
fn tens_of_thousands_of_live_spans_keep_their_own_ids() {
    let s = service("order-router", |c| {
        c.traces.queue_capacity = 1 << 16;
    });
    const LIVE: usize = 20_000; // several pages of the span table
    tracing::dispatcher::with_default(&s.dispatch, || {
        let root = info_span!(target: "traces", "batch");
        let open: Vec<_> = (0..LIVE)
            .map(|i| info_span!(target: "traces", parent: &root, "order", seq = i))
            .collect();
        // Every live span still knows its own context.
        let ids: std::collections::HashSet<u64> = open
            .iter()
            .map(|span| span.in_scope(|| stockbot_telemetry::current_context().unwrap().span_id))
            .collect();
        assert_eq!(ids.len(), LIVE);
        // Closing and reopening reuses slots: ids stay unique across generations.
        drop(open);
        for _ in 0..3 {
            let _again: Vec<_> = (0..1_000)
                .map(|i| info_span!(target: "traces", parent: &root, "order", seq = i))
                .collect();
        }
    });
    let spans = s.finished();
    assert_eq!(spans.len(), LIVE + 3_000 + 1);
    let unique: std::collections::HashSet<u64> = spans.iter().map(|s| s.span_id).collect();
    assert_eq!(unique.len(), spans.len());
    let root = spans.iter().find(|s| s.name == "batch").unwrap();
    assert!(
        spans
            .iter()
            .filter(|s| s.name == "order")
            .all(|s| s.parent_span_id == Some(root.span_id))
    );
}

#[test]
fn a_stale_span_id_is_no_parent_and_no_link() {
    let s = service("order-router", |_| {});
    tracing::dispatcher::with_default(&s.dispatch, || {
        let stale = {
            let old = info_span!(target: "traces", "old");
            old.id().unwrap()
        };
        // The closed span's slot is reused by the next span of this thread.
        let fresh = info_span!(target: "traces", "fresh");
        let orphan = info_span!(target: "traces", parent: stale.clone(), "orphan");
        orphan.follows_from(stale);
        drop((fresh, orphan));
    });
    let spans = s.finished();
    let fresh = spans.iter().find(|x| x.name == "fresh").unwrap();
    let orphan = spans.iter().find(|x| x.name == "orphan").unwrap();
    assert_eq!(
        orphan.parent_span_id, None,
        "a closed span is nobody's parent"
    );
    assert_ne!(
        orphan.trace_id, fresh.trace_id,
        "not the new occupant's trace either"
    );
    assert!(orphan.links.is_empty(), "{:?}", orphan.links);
}

/// RELIABILITY.md scenario 13 for spans: CR/LF, terminal escapes, quotes, forged JSON lines,
/// `U+2028`, a 1 MiB string and bytes that are not UTF-8 (through `Debug`) in span fields, in
/// `record`ed fields and in events give one valid JSON line per span, with every text value
/// back exactly as given (escaped, not mangled), and no panic.
#[test]
fn hostile_span_values_give_one_valid_line_per_span_and_come_back_unchanged() {
    let s = service("order-router", |_| {});
    let huge = "x".repeat(1 << 20);
    let hostile = [
        "line\r\nbreak",
        "\u{1b}[31mred\u{1b}[0m\u{7}",
        "quote\" back\\slash\ttab",
        "{\"forged\":true}\n{\"level\":\"ERROR\"}",
        "\u{2028}sep\u{2029}\u{0}nul",
        huge.as_str(),
    ];
    let raw: &[u8] = &[0xff, 0xfe, b'a', 0x80];
    tracing::dispatcher::with_default(&s.dispatch, || {
        for (i, v) in hostile.iter().enumerate() {
            let span = info_span!(target: "traces", "route_order", seq = i as u64, note = *v, raw = ?raw, later = tracing::field::Empty);
            span.record("later", *v);
            span.in_scope(|| info!(target: "traces", detail = *v, "hostile event"));
        }
    });
    let spans = s.finished();
    assert_eq!(spans.len(), hostile.len(), "one record per span");
    assert_eq!(
        s.spans.text().lines().count(),
        hostile.len(),
        "one line per span"
    );
    for span in &spans {
        let seq: usize = span.attribute("seq").unwrap().parse().unwrap();
        for field in ["note", "later"] {
            let got = span.attribute(field).unwrap();
            if hostile[seq].len() < 1000 {
                assert!(got == hostile[seq], "seq {seq} {field}: {got:?}");
            } else {
                // The 1 MiB value is cut and says so.
                assert!(
                    got.len() < 64 * 1024 && got.starts_with("xxx") && got.contains("truncated"),
                    "seq {seq} {field}: {} bytes, ends {:?}",
                    got.len(),
                    &got[got.len().saturating_sub(60)..]
                );
            }
        }
        assert_eq!(span.attribute("raw"), Some("[255, 254, 97, 128]"));
    }
}
