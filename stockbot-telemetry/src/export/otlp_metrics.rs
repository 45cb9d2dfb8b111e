//! OTLP metrics push (feature `otlp`): the registry's series as an
//! `ExportMetricsServiceRequest` (cumulative temporality), sent by the shared OTLP client
//! (HTTP/protobuf to `/v1/metrics`, or gRPC) on the shared pusher thread. Only the retryable
//! answers are retried (OTLP spec); a partial success is counted, not retried.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::otlp_client::OtlpClient;
use super::push::{Outcome, PushJob};
use crate::collect::metrics::{Cell, MetricsRegistry};

/// A string attribute (shared by the OTLP encoders).
pub(crate) fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        key_strindex: 0,
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Builds the request from the registry's current state.
pub(crate) fn build_request(
    registry: &MetricsRegistry,
    resource: &[(String, String)],
    start_unix_nanos: u64,
    now_unix_nanos: u64,
) -> ExportMetricsServiceRequest {
    let mut metrics: Vec<Metric> = Vec::new();
    for view in registry.snapshot() {
        let attributes: Vec<KeyValue> = view.pairs.iter().map(|(k, v)| kv(k, v)).collect();
        let name = &view.family.name;
        if metrics.last().is_none_or(|m| &m.name != name) {
            let data = match view.cell {
                Cell::Counter(_) => metric::Data::Sum(Sum {
                    data_points: Vec::new(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                Cell::Gauge(_) => metric::Data::Gauge(Gauge {
                    data_points: Vec::new(),
                }),
                Cell::Histogram(_) => metric::Data::Histogram(Histogram {
                    data_points: Vec::new(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            };
            metrics.push(Metric {
                name: name.clone(),
                description: registry.help(name).unwrap_or_default(),
                unit: String::new(),
                metadata: Vec::new(),
                data: Some(data),
            });
        }
        let Some(metric) = metrics.last_mut() else {
            continue;
        };
        let number = |value| NumberDataPoint {
            attributes: attributes.clone(),
            start_time_unix_nano: start_unix_nanos,
            time_unix_nano: now_unix_nanos,
            exemplars: Vec::new(),
            flags: 0,
            value: Some(value),
        };
        match (&view.cell, metric.data.as_mut()) {
            (Cell::Counter(c), Some(metric::Data::Sum(sum))) => {
                let v = i64::try_from(c.value.load(Relaxed)).unwrap_or(i64::MAX);
                sum.data_points
                    .push(number(number_data_point::Value::AsInt(v)));
            }
            (Cell::Gauge(g), Some(metric::Data::Gauge(gauge))) => {
                gauge
                    .data_points
                    .push(number(number_data_point::Value::AsDouble(g.get())));
            }
            (Cell::Histogram(h), Some(metric::Data::Histogram(hist))) => {
                let bucket_counts: Vec<u64> = h.buckets.iter().map(|b| b.load(Relaxed)).collect();
                hist.data_points.push(HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start_unix_nanos,
                    time_unix_nano: now_unix_nanos,
                    count: bucket_counts.iter().sum(),
                    sum: Some(h.sum()),
                    bucket_counts,
                    explicit_bounds: h.bounds.to_vec(),
                    exemplars: Vec::new(),
                    flags: 0,
                    min: None,
                    max: None,
                });
            }
            _ => {}
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "stockbot-telemetry".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Pushes the registry to a Collector.
pub(crate) struct OtlpMetricsJob {
    pub(crate) client: OtlpClient,
    pub(crate) registry: Arc<MetricsRegistry>,
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) start_unix_nanos: u64,
}

impl PushJob for OtlpMetricsJob {
    fn push(&mut self, _agent: &ureq::Agent) -> Outcome {
        let request = build_request(
            &self.registry,
            &self.resource,
            self.start_unix_nanos,
            unix_nanos(SystemTime::now()),
        );
        match self
            .client
            .export::<_, ExportMetricsServiceResponse>(request)
        {
            // Partial success: counted once, as `rejected` (not also as `ok`), never retried.
            (Outcome::Ok, Some(answer))
                if answer
                    .partial_success
                    .as_ref()
                    .is_some_and(|p| p.rejected_data_points > 0) =>
            {
                Outcome::Rejected
            }
            (outcome, _) => outcome,
        }
    }
}

/// Resource attributes for OTLP (the same identity as the logs' `service.*` fields).
pub(crate) fn resource_attributes(
    config: &crate::Config,
    host_name: &str,
) -> Vec<(String, String)> {
    let s = &config.service;
    let mut attrs = vec![
        ("service.name".to_owned(), s.name.clone()),
        ("service.version".to_owned(), s.version.clone()),
        (
            "deployment.environment.name".to_owned(),
            s.environment.clone(),
        ),
        (
            "deployment.mode".to_owned(),
            s.deployment_mode.as_str().to_owned(),
        ),
        ("host.name".to_owned(), host_name.to_owned()),
    ];
    attrs.extend(
        s.resource_attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    attrs
}

/// Process start time, for the cumulative start timestamp.
pub(crate) fn now_unix_nanos() -> u64 {
    unix_nanos(SystemTime::now())
}
