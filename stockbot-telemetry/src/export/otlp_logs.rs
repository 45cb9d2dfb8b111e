//! OTLP log export (feature `otlp`): a sink of the log pipeline. Each batch of encoded records
//! (redacted JSON lines) becomes one `ExportLogsServiceRequest` — `@timestamp` as the time,
//! `log.level` as the severity, `message` as the body, `trace.id`/`span.id` as the trace
//! context, every other field as an attribute, the service identity as the resource — sent by
//! the shared [`BatchExporter`] (HTTP/protobuf to `/v1/logs`, or gRPC), from the sink's shipper
//! (the same memory buffer, spool and retries as Elasticsearch). A partial success is counted
//! as rejected records, never retried; a refused request too; an unavailable receiver leaves
//! the records to the shipper, which retries (or spools) them.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

use super::otlp_client::{BatchExporter, ExportFailure};
use super::otlp_metrics::{kv, now_unix_nanos};
use super::shipper::{Delivery, Parcel, Transport};

/// Fields that describe the service: they are the resource, not repeated on every record.
const RESOURCE_FIELDS: [&str; 5] = [
    "service.name",
    "service.version",
    "service.environment",
    "deployment.mode",
    "host.name",
];

/// Nanoseconds since the Unix epoch of an RFC 3339 UTC timestamp as we write it
/// (`2024-11-23T22:13:20.123456Z`, any number of fraction digits up to 9).
fn parse_timestamp(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, u32, u32) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (hh, mm, ss): (u64, u64, u64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32)
    };
    let days = u64::try_from(crate::collect::clock::days_from_civil(y, m, day)).ok()?;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000_000) + nanos)
}

fn severity(level: &str) -> SeverityNumber {
    match level {
        "TRACE" => SeverityNumber::Trace,
        "DEBUG" => SeverityNumber::Debug,
        "INFO" => SeverityNumber::Info,
        "WARN" => SeverityNumber::Warn,
        "ERROR" => SeverityNumber::Error,
        _ => SeverityNumber::Unspecified,
    }
}

fn hex_bytes(s: &str, len: usize) -> Vec<u8> {
    if s.len() != len * 2 {
        return Vec::new();
    }
    (0..len)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()
        .unwrap_or_default()
}

fn any_value(v: &Value) -> AnyValue {
    let value = match v {
        Value::String(s) => any_value::Value::StringValue(s.clone()),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or_default()),
        },
        other => any_value::Value::StringValue(other.to_string()),
    };
    AnyValue { value: Some(value) }
}

/// One encoded record as an OTLP log record.
fn log_record(record: &Map<String, Value>, observed: u64) -> LogRecord {
    let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or("");
    let level = text("log.level");
    let trace_id = hex_bytes(text("trace.id"), 16);
    LogRecord {
        time_unix_nano: parse_timestamp(text("@timestamp")).unwrap_or(observed),
        observed_time_unix_nano: observed,
        severity_number: severity(level) as i32,
        severity_text: level.to_owned(),
        body: record.get("message").map(any_value),
        attributes: record
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "@timestamp" | "log.level" | "message" | "trace.id" | "span.id"
                ) && !RESOURCE_FIELDS.contains(&k.as_str())
            })
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: Some(any_value(v)),
                key_strindex: 0,
            })
            .collect(),
        dropped_attributes_count: 0,
        flags: u32::from(!trace_id.is_empty()),
        trace_id,
        span_id: hex_bytes(text("span.id"), 8),
        event_name: String::new(),
    }
}

/// The request for encoded records (JSON lines); also which lines are not records.
pub(crate) fn build_request<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
    resource: &[(String, String)],
) -> (ExportLogsServiceRequest, Vec<usize>) {
    let observed = now_unix_nanos();
    let mut malformed = Vec::new();
    let log_records = lines
        .into_iter()
        .enumerate()
        .filter_map(
            |(i, line)| match serde_json::from_slice::<Map<String, Value>>(line) {
                Ok(record) => Some(log_record(&record, observed)),
                Err(_) => {
                    malformed.push(i);
                    None
                }
            },
        )
        .collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "stockbot-telemetry".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    (request, malformed)
}

/// Log records to a Collector over OTLP.
pub(crate) struct OtlpLogSink {
    exporter: BatchExporter,
    resource: Vec<(String, String)>,
}

impl OtlpLogSink {
    pub(crate) fn new(exporter: BatchExporter, resource: Vec<(String, String)>) -> Self {
        OtlpLogSink { exporter, resource }
    }
}

impl Transport for OtlpLogSink {
    fn budget(&self) -> std::time::Duration {
        self.exporter.budget()
    }

    fn send(&mut self, parcel: &Parcel, out: &mut [Delivery]) {
        let (request, malformed) =
            build_request((0..parcel.len()).map(|i| parcel.line(i)), &self.resource);
        for &i in &malformed {
            out[i] = Delivery::Rejected;
        }
        let sent = match self
            .exporter
            .try_export::<_, ExportLogsServiceResponse>(&request)
        {
            Ok(response) => {
                // A partial success says how many were refused, not which: the first ones
                // are counted as refused (the count is what matters).
                let mut rejected = response
                    .and_then(|r| r.partial_success)
                    .map_or(0, |p| usize::try_from(p.rejected_log_records).unwrap_or(0));
                for d in out.iter_mut().filter(|d| **d == Delivery::Failed) {
                    *d = if rejected > 0 {
                        rejected -= 1;
                        Delivery::Rejected
                    } else {
                        Delivery::Done
                    };
                }
                return;
            }
            Err(ExportFailure::Refused) => Delivery::Rejected,
            Err(ExportFailure::Unavailable) => Delivery::Failed,
        };
        for d in out.iter_mut() {
            *d = if *d == Delivery::Rejected {
                Delivery::Rejected
            } else {
                sent
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_unix_nanos() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2024-11-23T22:13:20.123456Z"),
            Some(1_732_400_000_123_456_000)
        );
        assert_eq!(
            parse_timestamp("2000-02-29T00:00:01.5Z"),
            Some(951_782_401_500_000_000)
        );
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2024-11-23 22:13:20Z",
            "2024-11-23T22:13:20.1234567890Z",
            "2024-11-23T22:13:20+01:00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_map_to_otlp_fields_and_garbage_lines_are_counted() {
        let lines = concat!(
            r#"{"@timestamp":"2024-11-23T22:13:20.123456Z","log.level":"WARN","message":"order rejected","service.name":"router","trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","span.id":"00f067aa0ba902b7","order.cl_ord_id":"C-1","order.quantity":100,"order.price":1.5,"audit":true}"#,
            "\n",
            "not json\n",
        );
        let (request, malformed) = build_request(
            lines
                .as_bytes()
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty()),
            &[("service.name".into(), "router".into())],
        );
        assert_eq!(malformed, [1]);
        let records = &request.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.time_unix_nano, 1_732_400_000_123_456_000);
        assert_eq!(r.severity_number, SeverityNumber::Warn as i32);
        assert_eq!(r.trace_id.len(), 16);
        assert_eq!(
            r.span_id,
            vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        let attr = |k: &str| {
            r.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
        };
        assert_eq!(
            attr("order.quantity").unwrap().value,
            Some(any_value::Value::IntValue(100))
        );
        assert_eq!(
            attr("order.price").unwrap().value,
            Some(any_value::Value::DoubleValue(1.5))
        );
        assert!(attr("service.name").is_none(), "the resource carries it");
        assert!(attr("message").is_none());
    }
}
