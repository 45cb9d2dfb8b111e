//! RELIABILITY.md scenario 7 with the real exporters: shutdown with the backends up, refusing
//! connections, or black-holed, called with no runtime, from async code on a current-thread
//! runtime, and from a task of a multi-thread runtime. Up: everything is delivered. Down: the
//! shutdown returns by its deadline (the bound below is generous: it proves "never hangs", not
//! speed) and its report says what was not delivered (dropped or still buffered), with the
//! accounting identity exact.

use std::time::{Duration, Instant};

use stockbot_telemetry::{
    ElasticsearchConfig, OtlpTracesConfig, ShutdownReport, TelemetryBuilder, TelemetryGuard,
};
use stockbot_telemetry_testing::elasticsearch::FakeElasticsearch;
use stockbot_telemetry_testing::fault_proxy::{Fault, FaultProxy};
use stockbot_telemetry_testing::otlp::FakeOtlpReceiver;

const DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
enum Caller {
    NoRuntime,
    CurrentThread,
    MultiThreadTask,
}

fn service(es: &str, otlp: &str) -> (tracing::Dispatch, TelemetryGuard) {
    let mut config = stockbot_telemetry_testing::test_config();
    config.service.name = "order-router".into();
    config.log.filter = "info,stockbot_telemetry=off".into();
    config.traces.sampler = "always_on".into();
    let mut e = ElasticsearchConfig::new(es);
    e.timeout = Duration::from_millis(500);
    config.log.elasticsearch = Some(e);
    let mut o = OtlpTracesConfig::new(format!("{otlp}/v1/traces"));
    o.timeout = Duration::from_millis(500);
    config.traces.otlp = Some(o);
    TelemetryBuilder::new(config).build_dispatch().unwrap()
}

fn shutdown(guard: TelemetryGuard, caller: Caller) -> ShutdownReport {
    match caller {
        Caller::NoRuntime => guard.shutdown(DEADLINE),
        Caller::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                tokio::task::yield_now().await;
                guard.shutdown(DEADLINE)
            }),
        Caller::MultiThreadTask => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                tokio::spawn(async move { guard.shutdown(DEADLINE) })
                    .await
                    .unwrap()
            })
        }
    }
}

#[test]
fn scenario_7_shutdown_with_real_exporters_up_or_down_on_every_runtime() {
    for fault in [Fault::Pass, Fault::Refuse, Fault::BlackHole] {
        for caller in [
            Caller::NoRuntime,
            Caller::CurrentThread,
            Caller::MultiThreadTask,
        ] {
            let case = format!("{fault:?} {caller:?}");
            let es = FakeElasticsearch::start().unwrap();
            let receiver = FakeOtlpReceiver::start().unwrap();
            let es_proxy = FaultProxy::start(&es.url()).unwrap();
            let otlp_proxy = FaultProxy::start(&receiver.url()).unwrap();
            let (dispatch, guard) = service(&es_proxy.url(), &otlp_proxy.url());
            es_proxy.set(fault);
            otlp_proxy.set(fault);
            tracing::dispatcher::with_default(&dispatch, || {
                for seq in 0..200u64 {
                    let _s = tracing::info_span!("route_order", seq).entered();
                    tracing::info!(seq, cl_ord_id = format!("C-{seq}").as_str(), "order routed");
                }
            });
            let start = Instant::now();
            let report = shutdown(guard, caller);
            let took = start.elapsed();
            assert!(took < DEADLINE + Duration::from_secs(5), "{case}: {took:?}");
            let spans = report.spans.clone().expect("spans were recorded");
            for (signal, stats, sink) in [
                ("logs", &report.stats, "elasticsearch"),
                ("spans", &spans, "otlp"),
            ] {
                assert!(stats.accounted_for(), "{case} {signal}: {stats:?}");
                let s = stats.sink(sink).unwrap();
                let lost = stats.dropped_total() + s.dropped_total();
                let left = stats.buffered() + s.buffered;
                assert_eq!(s.written + lost + left, stats.emitted, "{case} {signal}");
                if matches!(fault, Fault::Pass) {
                    assert!(report.completed, "{case}: {report:?}");
                    assert_eq!((lost, left), (0, 0), "{case} {signal}: {stats:?}");
                } else {
                    // Nothing could be delivered: the report says so.
                    assert_eq!(s.written, 0, "{case} {signal}: {stats:?}");
                    assert!(lost + left >= 200, "{case} {signal}: {stats:?}");
                }
                if matches!(fault, Fault::Refuse) {
                    // Refusals are quick: the shutdown finishes in time and counts everything.
                    assert!(report.completed, "{case}: {report:?}");
                    assert_eq!(left, 0, "{case} {signal}: {stats:?}");
                }
            }
            if matches!(fault, Fault::Pass) {
                assert_eq!(es.stored_count(), report.stats.emitted, "{case}");
                assert_eq!(receiver.spans().len() as u64, spans.emitted, "{case}");
            }
        }
    }
}
