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

/// The OTLP span exporter: on when an endpoint variable is set.
fn apply_otel_traces(
    config: &mut Config,
    otel: &std::collections::HashMap<String, String>,
) -> Result<(), Error> {
    let Some(endpoint) = otlp_endpoint(otel, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces")
    else {
        return Ok(());
    };
    let o = config
        .traces
        .otlp
        .get_or_insert_with(|| crate::config::OtlpTracesConfig::new(""));
    o.endpoint = endpoint;
    if let Some((key, headers)) = first(
        otel,
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ) {
        o.headers = parse_headers(key, headers)?;
    }
    if let Some((key, ms)) = first(
        otel,
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ) {
        o.timeout = Duration::from_millis(parse(key, ms)?);
    }
    Ok(())
}

/// The signal's endpoint: its own variable as given, else the generic
/// `OTEL_EXPORTER_OTLP_ENDPOINT` with the signal's path appended (OTLP/HTTP rules).
fn otlp_endpoint(
    otel: &std::collections::HashMap<String, String>,
    specific: &str,
    path: &str,
) -> Option<String> {
    if let Some(e) = otel.get(specific).filter(|v| !v.trim().is_empty()) {
        return Some(e.trim().to_owned());
    }
    let base = otel
        .get("OTEL_EXPORTER_OTLP_ENDPOINT")
        .filter(|v| !v.trim().is_empty())?;
    Some(format!("{}{path}", base.trim().trim_end_matches('/')))
}

/// The signal-specific variable if set, else the generic one.
fn first<'a>(
    otel: &'a std::collections::HashMap<String, String>,
    specific: &'static str,
    generic: &'static str,
) -> Option<(&'static str, &'a str)> {
    otel.get(specific)
        .map(|v| (specific, v.as_str()))
        .or_else(|| otel.get(generic).map(|v| (generic, v.as_str())))
        .filter(|(_, v)| !v.trim().is_empty())
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
            if let Some(endpoint) =
                otlp_endpoint(otel, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "/v1/metrics")
            {
                o.endpoint = endpoint;
            }
            if let Some((key, headers)) = first(
                otel,
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ) {
                o.headers.extend(parse_headers(key, headers)?);
            }
            if let Some((key, ms)) = first(
                otel,
                "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ) {
                o.timeout = Duration::from_millis(parse(key, ms)?);
            }
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
        ] {
            let err = Config::default().apply_env([(key, value)]).unwrap_err();
            assert_eq!(field_of(&err), key);
            let text = err.to_string();
            assert!(text.contains(key), "{text}");
        }
    }
}
