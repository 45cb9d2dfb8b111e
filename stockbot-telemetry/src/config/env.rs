//! Environment variables: the `OTEL_*` conventions first, then ours (`STOCKBOT_*`).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{Config, Secret};
use crate::error::Error;

pub(super) fn apply<I, K, V>(config: &mut Config, vars: I) -> Result<(), Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut otel: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut otel_service_name = None;
    let mut rust_log = None;
    let mut stockbot_log = None;
    let mut resource = None;
    let mut rest = Vec::new();
    for (key, value) in vars {
        let (key, value) = (key.as_ref(), value.as_ref());
        match key {
            "OTEL_SERVICE_NAME" => otel_service_name = Some(value.to_owned()),
            "OTEL_RESOURCE_ATTRIBUTES" => resource = Some(value.to_owned()),
            "RUST_LOG" => rust_log = Some(value.to_owned()),
            "STOCKBOT_LOG" => stockbot_log = Some(value.to_owned()),
            k if k.starts_with("STOCKBOT_") => rest.push((k.to_owned(), value.to_owned())),
            k if k.starts_with("OTEL_") => {
                otel.insert(k.to_owned(), value.to_owned());
            }
            _ => {}
        }
    }
    // OTel: OTEL_SERVICE_NAME takes precedence over service.name in the resource attributes.
    if let Some(attrs) = resource {
        apply_resource_attributes(config, &attrs)?;
    }
    if let Some(name) = otel_service_name.filter(|n| !n.is_empty()) {
        config.service.name = name;
    }
    if let Some(filter) = stockbot_log.or(rust_log).filter(|f| !f.is_empty()) {
        config.log.filter = filter;
    }
    apply_otel_metrics(config, &otel)?;
    match otel.get("OTEL_LOGS_EXPORTER").map(|v| v.trim()) {
        None | Some("") => {}
        Some("none") => config.log.otlp = None,
        Some("otlp") => {
            let o = config.log.otlp.get_or_insert_with(|| {
                crate::config::OtlpExporterConfig::new("http://localhost:4318/v1/logs")
            });
            apply_otlp_exporter(&otel, "LOGS", "/v1/logs", OtlpTarget::of(o))?;
        }
        Some(other) => {
            return Err(Error::invalid(
                "OTEL_LOGS_EXPORTER",
                other,
                "expected otlp or none",
            ));
        }
    }
    if let Some(s) = otel
        .get("OTEL_TRACES_SAMPLER")
        .filter(|s| !s.trim().is_empty())
    {
        crate::process::head_sampling::parse_sampler(s, None)
            .map_err(|e| Error::invalid("OTEL_TRACES_SAMPLER", s, e))?;
        config.traces.sampler = s.trim().to_owned();
    }
    if let Some(a) = otel
        .get("OTEL_TRACES_SAMPLER_ARG")
        .filter(|s| !s.trim().is_empty())
    {
        config.traces.sampler_arg = Some(parse("OTEL_TRACES_SAMPLER_ARG", a)?);
    }
    match otel.get("OTEL_TRACES_EXPORTER").map(|v| v.trim()) {
        Some("none") => config.traces.enabled = false,
        None | Some("") | Some("otlp") => apply_otel_traces(config, &otel)?,
        Some(other) => {
            return Err(Error::invalid(
                "OTEL_TRACES_EXPORTER",
                other,
                "expected otlp or none",
            ));
        }
    }
    for (key, value) in rest {
        apply_one(config, &key, &value)?;
    }
    Ok(())
}

/// The OTLP span exporter (on when an endpoint variable is set, or already configured) and the
/// batch span processor's `OTEL_BSP_*` and span limits' `OTEL_SPAN_*` variables.
fn apply_otel_traces(
    config: &mut Config,
    otel: &std::collections::HashMap<String, String>,
) -> Result<(), Error> {
    let t = &mut config.traces;
    if let Some(ms) = otel.get("OTEL_BSP_SCHEDULE_DELAY") {
        t.flush_interval = Duration::from_millis(parse("OTEL_BSP_SCHEDULE_DELAY", ms)?);
    }
    if let Some(n) = otel.get("OTEL_BSP_MAX_QUEUE_SIZE") {
        t.queue_capacity = parse("OTEL_BSP_MAX_QUEUE_SIZE", n)?;
    }
    if let Some(n) = otel.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
        t.batch_max_spans = parse("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", n)?;
    }
    for (key, limit) in [
        (
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
            &mut t.limits.max_attributes,
        ),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", &mut t.limits.max_events),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", &mut t.limits.max_links),
    ] {
        if let Some(n) = otel.get(key) {
            *limit = parse(key, n)?;
        }
    }
    let wanted = otel.contains_key("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        || otel.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT");
    if t.otlp.is_none() && wanted {
        t.otlp = Some(crate::config::OtlpTracesConfig::new(""));
    }
    let Some(o) = &mut t.otlp else {
        return Ok(());
    };
    apply_otlp_exporter(otel, "TRACES", "/v1/traces", OtlpTarget::of(o))?;
    // The exporter's own timeout variables win over the batch processor's.
    let exporter_timeout = [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .any(|k| otel.get(*k).is_some_and(|v| !v.trim().is_empty()));
    if let Some(ms) = otel.get("OTEL_BSP_EXPORT_TIMEOUT")
        && !exporter_timeout
    {
        o.timeout = Duration::from_millis(parse("OTEL_BSP_EXPORT_TIMEOUT", ms)?);
    }
    Ok(())
}

/// The settings of one signal's OTLP exporter that the `OTEL_EXPORTER_OTLP_*` variables set.
struct OtlpTarget<'a> {
    endpoint: &'a mut String,
    protocol: &'a mut crate::config::OtlpProtocol,
    compression: &'a mut crate::config::OtlpCompression,
    timeout: &'a mut Duration,
    headers: &'a mut std::collections::BTreeMap<String, Secret>,
}

impl<'a> OtlpTarget<'a> {
    fn of(o: &'a mut crate::config::OtlpExporterConfig) -> Self {
        OtlpTarget {
            endpoint: &mut o.endpoint,
            protocol: &mut o.protocol,
            compression: &mut o.compression,
            timeout: &mut o.timeout,
            headers: &mut o.headers,
        }
    }
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL_}{PROTOCOL,ENDPOINT,HEADERS,TIMEOUT,COMPRESSION}`, the
/// signal-specific variable first. The generic endpoint gets the signal's path appended for
/// `http/protobuf` and is used as is for `grpc`.
fn apply_otlp_exporter(
    otel: &std::collections::HashMap<String, String>,
    signal: &str,
    path: &str,
    target: OtlpTarget<'_>,
) -> Result<(), Error> {
    let var = |what: &str| format!("OTEL_EXPORTER_OTLP_{signal}_{what}");
    let get = |what: &str| -> Option<(String, String)> {
        let specific = var(what);
        let generic = format!("OTEL_EXPORTER_OTLP_{what}");
        [specific, generic].into_iter().find_map(|k| {
            otel.get(&k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (k, v.trim().to_owned()))
        })
    };
    if let Some((key, value)) = get("PROTOCOL") {
        *target.protocol = parse(&key, &value)?;
    }
    if let Some(e) = otel.get(&var("ENDPOINT")).filter(|v| !v.trim().is_empty()) {
        *target.endpoint = e.trim().to_owned();
    } else if let Some(base) = otel
        .get("OTEL_EXPORTER_OTLP_ENDPOINT")
        .filter(|v| !v.trim().is_empty())
    {
        let base = base.trim().trim_end_matches('/');
        *target.endpoint = match target.protocol {
            crate::config::OtlpProtocol::HttpProtobuf => format!("{base}{path}"),
            crate::config::OtlpProtocol::Grpc => base.to_owned(),
        };
    }
    if let Some((key, headers)) = get("HEADERS") {
        target.headers.extend(parse_headers(&key, &headers)?);
    }
    if let Some((key, ms)) = get("TIMEOUT") {
        *target.timeout = Duration::from_millis(parse(&key, &ms)?);
    }
    if let Some((key, value)) = get("COMPRESSION") {
        *target.compression = parse(&key, &value)?;
    }
    Ok(())
}

/// `k1=v1,k2=v2`, values percent-decoded, kept as secrets (never echoed in errors).
fn parse_headers(
    key: &str,
    headers: &str,
) -> Result<std::collections::BTreeMap<String, Secret>, Error> {
    let mut out = std::collections::BTreeMap::new();
    for pair in headers.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::invalid(
                key,
                "<redacted>",
                "entries must be key=value",
            ));
        };
        let v = percent_decode(v.trim())
            .ok_or_else(|| Error::invalid(key, "<redacted>", "bad percent-encoding"))?;
        out.insert(k.trim().to_owned(), Secret::new(v));
    }
    Ok(out)
}

/// `OTEL_METRICS_EXPORTER` and the OTLP exporter variables, signal-specific ones first.
fn apply_otel_metrics(
    config: &mut Config,
    otel: &std::collections::HashMap<String, String>,
) -> Result<(), Error> {
    match otel.get("OTEL_METRICS_EXPORTER").map(|v| v.trim()) {
        None | Some("") | Some("prometheus") => {}
        Some("none") => {
            config.metrics.listen = String::new();
            config.metrics.otlp = None;
        }
        Some("otlp") => {
            let o = config.metrics.otlp.get_or_insert_with(Default::default);
            apply_otlp_exporter(
                otel,
                "METRICS",
                "/v1/metrics",
                OtlpTarget {
                    endpoint: &mut o.endpoint,
                    protocol: &mut o.protocol,
                    compression: &mut o.compression,
                    timeout: &mut o.timeout,
                    headers: &mut o.headers,
                },
            )?;
            if let Some(ms) = otel.get("OTEL_METRIC_EXPORT_INTERVAL") {
                o.interval = Duration::from_millis(parse("OTEL_METRIC_EXPORT_INTERVAL", ms)?);
            }
        }
        Some(other) => {
            return Err(Error::invalid(
                "OTEL_METRICS_EXPORTER",
                other,
                "expected otlp, prometheus or none",
            ));
        }
    }
    Ok(())
}

fn apply_one(config: &mut Config, key: &str, value: &str) -> Result<(), Error> {
    match key {
        "STOCKBOT_SERVICE_VERSION" => config.service.version = value.to_owned(),
        "STOCKBOT_ENVIRONMENT" => config.service.environment = value.to_owned(),
        "STOCKBOT_DEPLOYMENT_MODE" => config.service.deployment_mode = parse(key, value)?,
        "STOCKBOT_LOG_SCHEMA" => config.log.schema = parse(key, value)?,
        "STOCKBOT_LOG_STDOUT" => config.log.stdout = parse_bool(key, value)?,
        "STOCKBOT_LOG_FILE" => config.log.file.enabled = parse_bool(key, value)?,
        "STOCKBOT_LOG_DIR" => config.log.file.directory = PathBuf::from(value),
        "STOCKBOT_ELASTICSEARCH_URL" => {
            config
                .log
                .elasticsearch
                .get_or_insert_with(|| crate::config::ElasticsearchConfig::new(""))
                .url = value.trim().to_owned();
        }
        "STOCKBOT_ELASTICSEARCH_DATA_STREAM" => {
            config
                .log
                .elasticsearch
                .get_or_insert_with(|| crate::config::ElasticsearchConfig::new(""))
                .data_stream = Some(value.trim().to_owned());
        }
        "STOCKBOT_ELASTICSEARCH_API_KEY" => {
            config
                .log
                .elasticsearch
                .get_or_insert_with(|| crate::config::ElasticsearchConfig::new(""))
                .auth = Some(crate::config::ElasticsearchAuth::ApiKey(Secret::new(
                value.trim(),
            )));
        }
        "STOCKBOT_LOG_MAX_FIELD_BYTES" => config.log.max_field_bytes = parse(key, value)?,
        "STOCKBOT_PSEUDONYM_KEY" => {
            config.log.redaction.pseudonym_key = Some(Secret::new(value));
        }
        "STOCKBOT_QUEUE_CAPACITY" => config.pipeline.queue_capacity = parse(key, value)?,
        "STOCKBOT_FLUSH_INTERVAL" => config.pipeline.flush_interval = parse_duration(key, value)?,
        "STOCKBOT_METRICS" => config.metrics.enabled = parse_bool(key, value)?,
        "STOCKBOT_TRACES_MAX_PER_SECOND" => {
            config.traces.max_traces_per_second = Some(parse(key, value)?);
        }
        "STOCKBOT_METRICS_LISTEN" => config.metrics.listen = value.trim().to_owned(),
        "STOCKBOT_METRICS_BEARER_TOKEN" => {
            config.metrics.auth =
                Some(crate::config::ScrapeAuth::Bearer(Secret::new(value.trim())));
        }
        "STOCKBOT_METRICS_NAMESPACE" => config.metrics.namespace = value.trim().to_owned(),
        "STOCKBOT_METRICS_MAX_SERIES" => config.metrics.max_series_per_metric = parse(key, value)?,
        "STOCKBOT_SYSTEM_METRICS" => config.metrics.system.enabled = parse_bool(key, value)?,
        "STOCKBOT_PUSHGATEWAY_URL" => {
            push(config).url = value.trim().to_owned();
        }
        "STOCKBOT_PUSH_JOB" => push(config).job = value.trim().to_owned(),
        "STOCKBOT_PUSH_INSTANCE" => push(config).instance = Some(value.trim().to_owned()),
        "STOCKBOT_WORKER_CPUS" => {
            config.pipeline.worker_cpus = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| parse::<usize>(key, s))
                .collect::<Result<_, _>>()?;
        }
        // STOCKBOT_CONFIG is read by Config::load; other STOCKBOT_* variables may belong to
        // the service itself.
        _ => {}
    }
    Ok(())
}

fn push(config: &mut Config) -> &mut crate::config::PushConfig {
    config
        .metrics
        .push
        .get_or_insert_with(|| crate::config::PushConfig::new("", ""))
}

fn parse<T: FromStr>(key: &str, value: &str) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| Error::invalid(key, value, e.to_string()))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(key, value, "expected true or false")),
    }
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, Error> {
    humantime::parse_duration(value.trim())
        .map_err(|e| Error::invalid(key, value, format!("{e} (write e.g. 250ms, 5s, 7d)")))
}

/// `key1=value1,key2=value2`, values percent-encoded (W3C Baggage octet rules).
fn apply_resource_attributes(config: &mut Config, attrs: &str) -> Result<(), Error> {
    const VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
    for pair in attrs.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::invalid(
                VAR,
                attrs,
                format!("entry {pair:?} is not key=value"),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::invalid(
                VAR,
                attrs,
                format!("entry {pair:?} has an empty key"),
            ));
        }
        let value = percent_decode(value.trim()).ok_or_else(|| {
            Error::invalid(VAR, attrs, format!("bad percent-encoding in {pair:?}"))
        })?;
        match key {
            "service.name" => config.service.name = value,
            "service.version" => config.service.version = value,
            "deployment.environment" | "deployment.environment.name" => {
                config.service.environment = value;
            }
            "host.name" => config.service.host_name = Some(value),
            "deployment.mode" => {
                config.service.deployment_mode = value.parse().map_err(|e: String| {
                    Error::invalid(VAR, attrs, format!("deployment.mode: {e}"))
                })?;
            }
            _ => {
                config
                    .service
                    .resource_attributes
                    .insert(key.to_owned(), value);
            }
        }
    }
    Ok(())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeploymentMode, SchemaMode};
    use crate::error::ErrorKind;

    fn field_of(err: &Error) -> &str {
        match err.kind() {
            ErrorKind::InvalidConfig { field, .. } => field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn otel_variables_are_honoured() {
        let mut c = Config::default();
        c.apply_env([
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,service.version=1.2.3,deployment.environment=prod,team=execution%20desk"),
            ("OTEL_SERVICE_NAME", "order-router"),
            ("RUST_LOG", "debug"),
            ("UNRELATED", "x"),
        ])
        .unwrap();
        assert_eq!(c.service.name, "order-router");
        assert_eq!(c.service.version, "1.2.3");
        assert_eq!(c.service.environment, "prod");
        assert_eq!(c.service.resource_attributes["team"], "execution desk");
        assert_eq!(c.log.filter, "debug");
    }

    #[test]
    fn stockbot_variables_win_and_parse() {
        let mut c = Config::default();
        c.apply_env([
            ("RUST_LOG", "debug"),
            ("STOCKBOT_LOG", "warn,order_router=trace"),
            ("STOCKBOT_DEPLOYMENT_MODE", "Paper"),
            ("STOCKBOT_LOG_SCHEMA", "strict"),
            ("STOCKBOT_LOG_STDOUT", "off"),
            ("STOCKBOT_QUEUE_CAPACITY", "4096"),
            ("STOCKBOT_FLUSH_INTERVAL", "250ms"),
            ("STOCKBOT_WORKER_CPUS", "0, 1"),
            ("STOCKBOT_PSEUDONYM_KEY", "0123456789abcdef0123"),
        ])
        .unwrap();
        assert_eq!(c.log.filter, "warn,order_router=trace");
        assert_eq!(c.service.deployment_mode, DeploymentMode::Paper);
        assert_eq!(c.log.schema, SchemaMode::Strict);
        assert!(!c.log.stdout);
        assert_eq!(c.pipeline.queue_capacity, 4096);
        assert_eq!(c.pipeline.flush_interval, Duration::from_millis(250));
        assert_eq!(c.pipeline.worker_cpus, vec![0, 1]);
        assert!(!format!("{c:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn otlp_exporter_variables_are_honoured_signal_specific_first() {
        use crate::config::{OtlpCompression, OtlpProtocol};
        let mut c = Config::default();
        c.apply_env([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k%20ey,tenant=desk"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-api-key=traces-key"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://collector:4317",
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4096"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "256"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "64"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "16"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "8"),
        ])
        .unwrap();
        let t = c.traces.otlp.as_ref().unwrap();
        assert_eq!(t.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(t.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(t.compression, OtlpCompression::Gzip);
        assert_eq!(t.timeout, Duration::from_millis(2500));
        assert_eq!(t.headers["x-api-key"].expose(), "traces-key");
        let m = c.metrics.otlp.as_ref().unwrap();
        assert_eq!(m.protocol, OtlpProtocol::Grpc);
        assert_eq!(m.endpoint, "http://collector:4317");
        assert_eq!(m.headers["x-api-key"].expose(), "k ey");
        assert_eq!(m.headers["tenant"].expose(), "desk");
        assert_eq!(c.traces.flush_interval, Duration::from_millis(250));
        assert_eq!(c.traces.queue_capacity, 4096);
        assert_eq!(c.traces.batch_max_spans, 256);
        assert_eq!(
            (
                c.traces.limits.max_attributes,
                c.traces.limits.max_events,
                c.traces.limits.max_links
            ),
            (64, 16, 8)
        );

        // gRPC: the generic endpoint is the server's root, no signal path.
        let mut c = Config::default();
        c.apply_env([
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ])
        .unwrap();
        assert_eq!(
            c.traces.otlp.as_ref().unwrap().endpoint,
            "http://collector:4317"
        );
    }

    #[test]
    fn logs_exporter_and_elasticsearch_variables_are_honoured() {
        let mut c = Config::default();
        c.apply_env([
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-tenant=desk"),
            ("STOCKBOT_ELASTICSEARCH_URL", "http://es:9200"),
            ("STOCKBOT_ELASTICSEARCH_API_KEY", "c2VjcmV0"),
            ("STOCKBOT_ELASTICSEARCH_DATA_STREAM", "logs-router-prod"),
        ])
        .unwrap();
        let o = c.log.otlp.as_ref().unwrap();
        assert_eq!(o.endpoint, "http://collector:4318/v1/logs");
        assert_eq!(o.headers["x-tenant"].expose(), "desk");
        let es = c.log.elasticsearch.as_ref().unwrap();
        assert_eq!(es.url, "http://es:9200");
        assert_eq!(es.data_stream.as_deref(), Some("logs-router-prod"));
        assert!(
            matches!(&es.auth, Some(crate::config::ElasticsearchAuth::ApiKey(k)) if k.expose() == "c2VjcmV0")
        );
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
        let err = Config::default()
            .apply_env([("OTEL_LOGS_EXPORTER", "kafka")])
            .unwrap_err();
        assert_eq!(field_of(&err), "OTEL_LOGS_EXPORTER");
    }

    #[test]
    fn the_scrape_bearer_token_comes_from_the_environment_and_stays_secret() {
        let mut c = Config::default();
        c.apply_env([("STOCKBOT_METRICS_BEARER_TOKEN", " scrape-Token_0123456789 ")])
            .unwrap();
        assert!(matches!(
            &c.metrics.auth,
            Some(crate::config::ScrapeAuth::Bearer(t)) if t.expose() == "scrape-Token_0123456789"
        ));
        assert!(!format!("{c:?}").contains("scrape-Token"));
        c.validate().unwrap();
    }

    #[test]
    fn the_exporter_timeout_wins_over_the_batch_processor_timeout() {
        let mut c = Config::default();
        c.apply_env([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "30000"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
        ])
        .unwrap();
        assert_eq!(c.traces.otlp.unwrap().timeout, Duration::from_secs(2));
        let mut c = Config::default();
        c.apply_env([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "30000"),
        ])
        .unwrap();
        assert_eq!(c.traces.otlp.unwrap().timeout, Duration::from_secs(30));
    }

    #[test]
    fn unsupported_otlp_protocols_and_compressions_are_named() {
        for (key, value, says) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "not supported"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "carrier-pigeon",
                "http/protobuf or grpc",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "gzip or none"),
        ] {
            let err = Config::default()
                .apply_env([
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    (key, value),
                ])
                .unwrap_err();
            assert_eq!(field_of(&err), key);
            let text = err.to_string();
            assert!(text.contains(value) && text.contains(says), "{text}");
        }
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        for (key, value) in [
            ("STOCKBOT_DEPLOYMENT_MODE", "prod"),
            ("STOCKBOT_LOG_SCHEMA", "loose"),
            ("STOCKBOT_LOG_STDOUT", "maybe"),
            ("STOCKBOT_QUEUE_CAPACITY", "-5"),
            ("STOCKBOT_FLUSH_INTERVAL", "soon"),
            ("STOCKBOT_WORKER_CPUS", "0,x"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name"),
            ("OTEL_RESOURCE_ATTRIBUTES", "a=%zz"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "-1"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
        ] {
            let err = Config::default().apply_env([(key, value)]).unwrap_err();
            assert_eq!(field_of(&err), key);
            let text = err.to_string();
            assert!(text.contains(key), "{text}");
        }
    }
}
