//! Validation: every check names the field and the value.

use std::time::Duration;

use stockbot_telemetry_conventions as conventions;

use super::Config;
use crate::error::Error;
use crate::process::schema::{RESERVED_FIELDS, parse_custom_field};

const MAX_FIELD_BYTES_LIMIT: usize = 16 * 1024 * 1024;

pub(super) fn validate(config: &Config) -> Result<(), Error> {
    let mut slo_names = std::collections::BTreeSet::new();
    for (i, slo) in config.slos.iter().enumerate() {
        crate::alerting::check_slo(&format!("slo[{i}]"), slo)?;
        if !slo_names.insert(slo.name.as_str()) {
            return Err(Error::invalid(
                format!("slo[{i}].name"),
                &slo.name,
                "is declared twice",
            ));
        }
    }
    let s = &config.service;
    non_empty_text("service.name", &s.name)?;
    non_empty_text("service.environment", &s.environment)?;
    no_control("service.version", &s.version)?;
    if let Some(host) = &s.host_name {
        non_empty_text("service.host_name", host)?;
    }
    for (i, target) in s.own_targets.iter().enumerate() {
        non_empty_text(&format!("service.own_targets[{i}]"), target)?;
    }

    let log = &config.log;
    crate::collect::filter::parse_filter(&log.filter)
        .map_err(|reason| Error::invalid("log.filter", &log.filter, reason))?;
    if !(64..=MAX_FIELD_BYTES_LIMIT).contains(&log.max_field_bytes) {
        return Err(Error::invalid(
            "log.max_field_bytes",
            log.max_field_bytes,
            format!("must be between 64 and {MAX_FIELD_BYTES_LIMIT}"),
        ));
    }
    if let Some(es) = &log.elasticsearch {
        check_elasticsearch(es)?;
    }
    if let Some(o) = &log.otlp {
        check_otlp("log.otlp", &o.endpoint, o.protocol, o.timeout, &o.headers)?;
    }
    if let Some(dataset) = &log.dataset {
        non_empty_text("log.dataset", dataset)?;
    }
    check_shipping(&log.shipping)?;
    if log.file.enabled {
        let f = &log.file;
        if f.directory.as_os_str().is_empty() {
            return Err(Error::invalid(
                "log.file.directory",
                "",
                "must not be empty",
            ));
        }
        let prefix = config.file_prefix();
        if prefix.is_empty() || prefix.contains(['/', '\\']) || prefix.starts_with('.') {
            return Err(Error::invalid(
                "log.file.prefix",
                &prefix,
                "must be a plain file name (no path separators, not starting with '.')",
            ));
        }
        positive_u64("log.file.max_file_bytes", f.max_file_bytes)?;
        positive_duration("log.file.max_file_age", f.max_file_age)?;
        positive_duration("log.file.max_age", f.max_age)?;
        if f.max_files == 0 {
            return Err(Error::invalid(
                "log.file.max_files",
                0,
                "must be at least 1",
            ));
        }
    }
    if let Some(key) = &log.redaction.pseudonym_key
        && key.expose().len() < 16
    {
        // Never echo the key itself.
        return Err(Error::invalid(
            "log.redaction.pseudonym_key",
            "<redacted>",
            "must be at least 16 bytes",
        ));
    }
    for (i, name) in log.redaction.secret_fields.iter().enumerate() {
        let field = format!("log.redaction.secret_fields[{i}]");
        non_empty_text(&field, name)?;
        if name == "message"
            || name.starts_with("extra.")
            || RESERVED_FIELDS.contains(&name.as_str())
        {
            return Err(Error::invalid(field, name, "is written by the SDK itself"));
        }
    }
    for (i, rule) in log.sampling.iter().enumerate() {
        non_empty_text(&format!("log.sampling[{i}].target"), &rule.target)?;
        positive_u64(&format!("log.sampling[{i}].thereafter"), rule.thereafter)?;
        positive_duration(&format!("log.sampling[{i}].interval"), rule.interval)?;
    }
    for (i, field) in log.fields.iter().enumerate() {
        let path = format!("log.fields[{i}]");
        parse_custom_field(field).map_err(|(what, value, reason)| {
            Error::invalid(format!("{path}.{what}"), value, reason)
        })?;
        if field.name == "message" || field.name.starts_with("extra.") {
            return Err(Error::invalid(
                format!("{path}.name"),
                &field.name,
                "`message` and the `extra.` namespace are the SDK's",
            ));
        }
        if RESERVED_FIELDS.contains(&field.name.as_str())
            || conventions::lookup(&field.name).is_some()
        {
            return Err(Error::invalid(
                format!("{path}.name"),
                &field.name,
                "already defined by the built-in schema",
            ));
        }
    }

    validate_metrics(&config.metrics)?;
    let t = &config.traces;
    crate::process::head_sampling::parse_sampler(&t.sampler, t.sampler_arg)
        .map_err(|e| Error::invalid("traces.sampler", &t.sampler, e))?;
    if let Some(r) = t.max_traces_per_second
        && !(r.is_finite() && r > 0.0)
    {
        return Err(Error::invalid(
            "traces.max_traces_per_second",
            r,
            "must be a positive number",
        ));
    }
    if t.enabled {
        if t.queue_capacity == 0 {
            return Err(Error::invalid(
                "traces.queue_capacity",
                0,
                "must be at least 1",
            ));
        }
        if t.batch_max_spans == 0 {
            return Err(Error::invalid(
                "traces.batch_max_spans",
                0,
                "must be at least 1",
            ));
        }
        positive_duration("traces.flush_interval", t.flush_interval)?;
        if t.keep.enabled {
            if t.keep.max_spans_per_trace == 0 {
                return Err(Error::invalid(
                    "traces.keep.max_spans_per_trace",
                    0,
                    "must be at least 1",
                ));
            }
            if t.keep.max_buffered_spans < t.keep.max_spans_per_trace {
                return Err(Error::invalid(
                    "traces.keep.max_buffered_spans",
                    t.keep.max_buffered_spans,
                    "must be at least traces.keep.max_spans_per_trace",
                ));
            }
        }
        if let Some(o) = &t.otlp {
            check_otlp(
                "traces.otlp",
                &o.endpoint,
                o.protocol,
                o.timeout,
                &o.headers,
            )?;
        }
        if t.file.enabled {
            positive_u64("traces.file.max_file_bytes", t.file.max_file_bytes)?;
            if t.file.max_files == 0 {
                return Err(Error::invalid(
                    "traces.file.max_files",
                    0,
                    "must be at least 1",
                ));
            }
            positive_duration("traces.file.max_age", t.file.max_age)?;
        }
    }

    let p = &config.pipeline;
    if p.queue_capacity == 0 || p.queue_capacity > 16 * 1024 * 1024 {
        return Err(Error::invalid(
            "pipeline.queue_capacity",
            p.queue_capacity,
            "must be between 1 and 16777216",
        ));
    }
    if p.audit_reserve >= p.queue_capacity {
        return Err(Error::invalid(
            "pipeline.audit_reserve",
            p.audit_reserve,
            format!(
                "must be smaller than pipeline.queue_capacity ({})",
                p.queue_capacity
            ),
        ));
    }
    if p.queue_max_bytes < 64 * 1024 {
        return Err(Error::invalid(
            "pipeline.queue_max_bytes",
            p.queue_max_bytes,
            "must be at least 65536",
        ));
    }
    if p.batch_max_records == 0 {
        return Err(Error::invalid(
            "pipeline.batch_max_records",
            0,
            "must be at least 1",
        ));
    }
    if p.batch_max_bytes < 1024 {
        return Err(Error::invalid(
            "pipeline.batch_max_bytes",
            p.batch_max_bytes,
            "must be at least 1024",
        ));
    }
    if p.flush_interval.is_zero() || p.flush_interval > Duration::from_secs(60) {
        return Err(Error::invalid(
            "pipeline.flush_interval",
            humantime::format_duration(p.flush_interval),
            "must be between 1ns and 60s",
        ));
    }
    if !p.worker_cpus.is_empty() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if let Some(bad) = p.worker_cpus.iter().find(|&&c| c >= cores) {
            return Err(Error::invalid(
                "pipeline.worker_cpus",
                bad,
                format!("this machine has cores 0..{}", cores - 1),
            ));
        }
    }
    Ok(())
}

fn validate_metrics(m: &crate::config::MetricsConfig) -> Result<(), Error> {
    if !m.enabled {
        return Ok(());
    }
    let ns_ok = !m.namespace.is_empty()
        && m.namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !m.namespace.starts_with(|c: char| c.is_ascii_digit())
        && !m.namespace.starts_with("__");
    if !ns_ok {
        return Err(Error::invalid(
            "metrics.namespace",
            &m.namespace,
            "must be a Prometheus name: letters, digits and '_', not starting with a digit or '__'",
        ));
    }
    if !m.listen.trim().is_empty() {
        m.listen
            .trim()
            .parse::<std::net::SocketAddr>()
            .map_err(|e| {
                Error::invalid(
                    "metrics.listen",
                    &m.listen,
                    format!("{e} (write ip:port, e.g. 127.0.0.1:9464)"),
                )
            })?;
    }
    match &m.auth {
        Some(crate::config::ScrapeAuth::Basic { username, password }) => {
            if username.is_empty() || username.contains(':') {
                return Err(Error::invalid(
                    "metrics.auth.basic.username",
                    username,
                    "must be non-empty and contain no `:`",
                ));
            }
            if password.expose().is_empty() {
                return Err(Error::invalid(
                    "metrics.auth.basic.password",
                    "<empty>",
                    "must not be empty",
                ));
            }
        }
        Some(crate::config::ScrapeAuth::Bearer(token)) => {
            // RFC 6750 `b64token`; the value itself is never echoed.
            let t = token.expose();
            let body = t.trim_end_matches('=');
            let ok = !body.is_empty()
                && body
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c));
            if !ok {
                return Err(Error::invalid(
                    "metrics.auth.bearer",
                    "<secret>",
                    "must be a non-empty token of letters, digits and -._~+/ (then `=` padding)",
                ));
            }
        }
        None => {}
    }
    if m.max_series_per_metric == 0 {
        return Err(Error::invalid(
            "metrics.max_series_per_metric",
            0,
            "must be at least 1",
        ));
    }
    check_buckets("metrics.default_buckets", &m.default_buckets)?;
    for (name, bounds) in &m.buckets {
        check_buckets(&format!("metrics.buckets.{name}"), bounds)?;
    }
    if m.system.enabled {
        positive_duration("metrics.system.interval", m.system.interval)?;
    }
    positive_duration("metrics.slo_interval", m.slo_interval)?;
    if let Some(o) = &m.otlp {
        check_otlp(
            "metrics.otlp",
            &o.endpoint,
            o.protocol,
            o.timeout,
            &o.headers,
        )?;
        positive_duration("metrics.otlp.interval", o.interval)?;
    }
    if let Some(p) = &m.push {
        let rest = p.url.strip_prefix("http://");
        let host_ok = rest.is_some_and(|r| {
            let host = r.trim_end_matches('/');
            !host.is_empty() && !host.contains('/') && !host.contains('@')
        });
        if !host_ok {
            return Err(Error::invalid(
                "metrics.push.url",
                shown_url(&p.url),
                "must be http://host:port of the Pushgateway, without credentials (https is not supported for pushes yet)",
            ));
        }
        grouping_value("metrics.push.job", &p.job)?;
        if let Some(instance) = &p.instance {
            grouping_value("metrics.push.instance", instance)?;
        }
        positive_duration("metrics.push.interval", p.interval)?;
        positive_duration("metrics.push.timeout", p.timeout)?;
    }
    Ok(())
}

/// The Elasticsearch shipper's settings.
fn check_elasticsearch(es: &crate::config::ElasticsearchConfig) -> Result<(), Error> {
    let rest = es
        .url
        .strip_prefix("https://")
        .or_else(|| es.url.strip_prefix("http://"));
    if es.url.starts_with("https://") && !crate::export::tls::AVAILABLE {
        return Err(Error::invalid(
            "log.elasticsearch.url",
            shown_url(&es.url),
            crate::export::tls::MISSING,
        ));
    }
    if rest.is_none_or(|r| r.trim_end_matches('/').is_empty() || r.contains('@')) {
        return Err(Error::invalid(
            "log.elasticsearch.url",
            shown_url(&es.url),
            "must be an https:// (or http://) host:port URL without credentials (put them in log.elasticsearch.auth)",
        ));
    }
    if let Some(ds) = &es.data_stream {
        let bad = ds.is_empty()
            || ds.len() > 255
            || ds.starts_with(['-', '_', '+', '.'])
            || ds.chars().any(|c| {
                c.is_ascii_uppercase() || c.is_whitespace() || "\\/*?\"<>|,#:".contains(c)
            });
        if bad {
            return Err(Error::invalid(
                "log.elasticsearch.data_stream",
                ds,
                "not a valid data stream name: lowercase, no spaces or \\/*?\"<>|,#:, not starting with - _ + .",
            ));
        }
    }
    if !(1024..=10 * 1024 * 1024).contains(&es.max_bulk_bytes) {
        return Err(Error::invalid(
            "log.elasticsearch.max_bulk_bytes",
            es.max_bulk_bytes,
            "must be between 1024 and 10485760 (10 MiB)",
        ));
    }
    positive_duration("log.elasticsearch.timeout", es.timeout)?;
    if let Some(ca) = &es.ca_file {
        if !es.url.starts_with("https://") {
            return Err(Error::invalid(
                "log.elasticsearch.ca_file",
                ca.display(),
                "a CA file needs an https:// url",
            ));
        }
        crate::export::tls::load_ca_file(ca)
            .map_err(|reason| Error::invalid("log.elasticsearch.ca_file", ca.display(), reason))?;
    }
    if let Some(crate::config::ElasticsearchAuth::Basic { username, .. }) = &es.auth
        && (username.is_empty() || username.contains(':'))
    {
        return Err(Error::invalid(
            "log.elasticsearch.auth.basic.username",
            username,
            "must be non-empty and contain no `:`",
        ));
    }
    Ok(())
}

fn check_shipping(s: &crate::config::ShippingConfig) -> Result<(), Error> {
    if s.memory_max_bytes < 64 * 1024 {
        return Err(Error::invalid(
            "log.shipping.memory_max_bytes",
            s.memory_max_bytes,
            "must be at least 65536 (64 KiB)",
        ));
    }
    let Some(spool) = &s.spool else {
        return Ok(());
    };
    if spool.directory.as_os_str().is_empty() {
        return Err(Error::invalid(
            "log.shipping.spool.directory",
            "",
            "must not be empty",
        ));
    }
    if spool.max_bytes < 1024 * 1024 {
        return Err(Error::invalid(
            "log.shipping.spool.max_bytes",
            spool.max_bytes,
            "must be at least 1048576 (1 MiB)",
        ));
    }
    if spool.audit_reserve() >= spool.max_bytes {
        return Err(Error::invalid(
            "log.shipping.spool.audit_reserve_bytes",
            spool.audit_reserve(),
            "must be smaller than log.shipping.spool.max_bytes",
        ));
    }
    positive_duration("log.shipping.spool.fsync_interval", spool.fsync_interval)?;
    if spool.fsync_interval > Duration::from_secs(60) {
        return Err(Error::invalid(
            "log.shipping.spool.fsync_interval",
            humantime::format_duration(spool.fsync_interval),
            "must be at most 60s (it bounds what a power loss can take)",
        ));
    }
    Ok(())
}

/// What an error may show of a URL: never its credentials (`user:password@`).
fn shown_url(url: &str) -> &str {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        "<redacted: the URL carries credentials>"
    } else {
        url
    }
}

/// One OTLP exporter's settings (metrics and traces share the rules).
fn check_otlp(
    field: &str,
    endpoint: &str,
    protocol: crate::config::OtlpProtocol,
    timeout: Duration,
    headers: &std::collections::BTreeMap<String, crate::config::Secret>,
) -> Result<(), Error> {
    if cfg!(not(feature = "otlp")) {
        return Err(Error::invalid(
            field,
            shown_url(endpoint),
            "this build has no OTLP export: enable the `otlp` feature of stockbot-telemetry",
        ));
    }
    let has_credentials = shown_url(endpoint) != endpoint;
    if !endpoint.starts_with("http://") || endpoint.len() <= "http://".len() || has_credentials {
        return Err(Error::invalid(
            format!("{field}.endpoint"),
            shown_url(endpoint),
            "must be an http:// URL of the receiver, without credentials (put them in headers; https is not supported yet)",
        ));
    }
    if protocol == crate::config::OtlpProtocol::Grpc
        && let Some(name) = headers
            .keys()
            .find(|k| k.to_ascii_lowercase().ends_with("-bin"))
    {
        return Err(Error::invalid(
            format!("{field}.headers"),
            name,
            "gRPC metadata names ending in -bin carry binary values; give a text header",
        ));
    }
    if protocol == crate::config::OtlpProtocol::Grpc && cfg!(not(feature = "otlp-grpc")) {
        return Err(Error::invalid(
            format!("{field}.protocol"),
            "grpc",
            "this build has no OTLP/gRPC export: enable the `otlp-grpc` feature of stockbot-telemetry",
        ));
    }
    positive_duration(&format!("{field}.timeout"), timeout)?;
    check_headers(&format!("{field}.headers"), headers)
}

/// Header names must be HTTP tokens and values visible ASCII (or spaces/tabs): a header the
/// HTTP client would refuse would otherwise fail every export. Values are never echoed.
fn check_headers(
    field: &str,
    headers: &std::collections::BTreeMap<String, crate::config::Secret>,
) -> Result<(), Error> {
    for (name, value) in headers {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(Error::invalid(
                format!("{field}.{name}"),
                name,
                "is not a valid HTTP header name",
            ));
        }
        if !value
            .expose()
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(Error::invalid(
                format!("{field}.{name}"),
                "<redacted>",
                "header values must be printable ASCII",
            ));
        }
    }
    Ok(())
}

fn grouping_value(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(Error::invalid(
            field,
            value,
            "must be non-empty letters, digits, '_', '-' or '.'",
        ));
    }
    Ok(())
}

fn check_buckets(field: &str, bounds: &[f64]) -> Result<(), Error> {
    let shown = format!("{bounds:?}");
    if bounds.is_empty() {
        return Err(Error::invalid(field, shown, "needs at least one bucket"));
    }
    if bounds.iter().any(|b| !b.is_finite()) {
        return Err(Error::invalid(
            field,
            shown,
            "bounds must be finite (+Inf is implicit)",
        ));
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid(
            field,
            shown,
            "bounds must be strictly increasing",
        ));
    }
    Ok(())
}

fn non_empty_text(field: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, value, "must not be empty"));
    }
    no_control(field, value)
}

fn no_control(field: &str, value: &str) -> Result<(), Error> {
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            value,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn positive_u64(field: &str, value: u64) -> Result<(), Error> {
    if value == 0 {
        return Err(Error::invalid(field, value, "must be greater than 0"));
    }
    Ok(())
}

fn positive_duration(field: &str, value: Duration) -> Result<(), Error> {
    if value.is_zero() {
        return Err(Error::invalid(field, "0s", "must be greater than 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CustomField, SamplingRule, Secret};
    use crate::error::ErrorKind;

    fn expect_field(config: &Config, expected: &str) {
        let err = config.validate().unwrap_err();
        match err.kind() {
            ErrorKind::InvalidConfig { field, .. } => assert_eq!(field, expected, "{err}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn urls_with_credentials_are_refused_and_never_echoed() {
        let url = "http://desk:hunter2@127.0.0.1:4318";
        let mut es = Config::default();
        es.log.elasticsearch = Some(crate::config::ElasticsearchConfig::new(url));
        let mut push = Config::default();
        push.metrics.push = Some(crate::config::PushConfig::new(url, "batch"));
        let mut otlp = Config::default();
        otlp.traces.otlp = Some(crate::config::OtlpTracesConfig::new(url));
        for (config, field) in [
            (es, "log.elasticsearch.url"),
            (push, "metrics.push.url"),
            (otlp, "traces.otlp"),
        ] {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        assert_eq!(shown_url("http://host:1/a@b"), "http://host:1/a@b");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let mut c = Config::default();
        c.service.name = " ".into();
        expect_field(&c, "service.name");

        let mut c = Config::default();
        c.log.filter = "info,foo=loud".into();
        expect_field(&c, "log.filter");

        let mut c = Config::default();
        c.log.file.max_file_bytes = 0;
        expect_field(&c, "log.file.max_file_bytes");

        let mut c = Config::default();
        c.log.file.prefix = Some("../escape".into());
        expect_field(&c, "log.file.prefix");

        let mut c = Config::default();
        c.pipeline.audit_reserve = c.pipeline.queue_capacity;
        expect_field(&c, "pipeline.audit_reserve");

        let mut c = Config::default();
        c.pipeline.queue_capacity = 0;
        expect_field(&c, "pipeline.queue_capacity");

        let mut c = Config::default();
        c.pipeline.worker_cpus = vec![100_000];
        expect_field(&c, "pipeline.worker_cpus");

        let mut c = Config::default();
        c.log.sampling.push(SamplingRule {
            thereafter: 0,
            ..SamplingRule::new("feed")
        });
        expect_field(&c, "log.sampling[0].thereafter");

        let mut c = Config::default();
        c.log
            .fields
            .push(CustomField::new("strategy.signal", "float"));
        expect_field(&c, "log.fields[0].type");

        let mut c = Config::default();
        c.log
            .fields
            .push(CustomField::new("order.cl_ord_id", "string"));
        expect_field(&c, "log.fields[0].name");
    }

    #[test]
    fn bad_otlp_headers_are_refused_without_echo() {
        let mut c = Config::default();
        let mut o = crate::config::OtlpTracesConfig::new("http://127.0.0.1:4318/v1/traces");
        o.headers
            .insert("x-api-key".into(), Secret::new("line\nbreak-secret"));
        c.traces.otlp = Some(o);
        let err = c.validate().unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("break-secret"), "{text}");
        assert!(text.contains("traces.otlp"), "{text}");
    }

    #[test]
    fn binary_grpc_header_names_and_bad_elasticsearch_settings_are_named() {
        let mut c = Config::default();
        let mut o = crate::config::OtlpTracesConfig::new("http://127.0.0.1:4317");
        o.protocol = crate::config::OtlpProtocol::Grpc;
        o.headers
            .insert("x-token-bin".into(), Secret::new("secret-value"));
        c.traces.otlp = Some(o);
        let text = c.validate().unwrap_err().to_string();
        // Without the `otlp` feature the exporter itself is refused first.
        assert!(
            (text.contains("x-token-bin") || cfg!(not(feature = "otlp")))
                && !text.contains("secret-value"),
            "{text}"
        );

        for (tweak, field) in [
            (
                (|e: &mut crate::config::ElasticsearchConfig| e.url = "ftp://es:9200".into())
                    as fn(&mut crate::config::ElasticsearchConfig),
                "log.elasticsearch.url",
            ),
            (
                |e| e.url = "http://user:pw@es:9200".into(),
                "log.elasticsearch.url",
            ),
            (
                |e| e.data_stream = Some("Logs-Upper".into()),
                "log.elasticsearch.data_stream",
            ),
            (
                |e| e.max_bulk_bytes = 64 * 1024 * 1024,
                "log.elasticsearch.max_bulk_bytes",
            ),
            (|e| e.timeout = Duration::ZERO, "log.elasticsearch.timeout"),
        ] {
            let mut c = Config::default();
            let mut es = crate::config::ElasticsearchConfig::new("http://127.0.0.1:9200");
            tweak(&mut es);
            c.log.elasticsearch = Some(es);
            expect_field(&c, field);
            let err = c.validate().unwrap_err();
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn short_pseudonym_key_is_refused_without_echo() {
        let mut c = Config::default();
        c.log.redaction.pseudonym_key = Some(Secret::new("hunter2"));
        let err = c.validate().unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        expect_field(&c, "log.redaction.pseudonym_key");
    }

    #[test]
    fn negative_sizes_in_toml_are_parse_errors_naming_the_key() {
        let err = toml::from_str::<Config>("[pipeline]\nqueue_capacity = -5\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("queue_capacity"), "{text}");
        let err = toml::from_str::<Config>("[log]\nfiltr = \"info\"\n").unwrap_err();
        assert!(err.to_string().contains("filtr"), "{err}");
    }
}
