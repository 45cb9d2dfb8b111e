//! Retention and search for logs shipped to Elasticsearch: the index template and ILM policy
//! generated from the log schema, installing them, and fetching every record of one trace or
//! one order — from Elasticsearch, or from the local rolling files when no Elasticsearch is
//! configured.
//!
//! ```
//! let mut config = stockbot_telemetry::Config::for_service("order-router");
//! let template = stockbot_telemetry::elasticsearch::index_template(&config);
//! assert_eq!(template["index_patterns"][0], "logs-order-router-*");
//! let props = &template["template"]["mappings"]["properties"];
//! // Microseconds survive: `date` would keep milliseconds only.
//! assert_eq!(props["@timestamp"]["type"], "date_nanos");
//! assert_eq!(props["order"]["properties"]["cl_ord_id"]["type"], "keyword");
//! assert_eq!(props["message"]["type"], "match_only_text");
//!
//! let policy = stockbot_telemetry::elasticsearch::ilm_policy(&config);
//! assert_eq!(policy["policy"]["phases"]["delete"]["min_age"], "30d");
//! ```
//!
//! Mapping choices: identifiers, names and enumerations are `keyword` (exact match,
//! aggregations); `message` and `error.message` are `match_only_text` (full-text search,
//! no scoring storage); numbers are `long` / `double`, flags `boolean`; `@timestamp` is
//! `date_nanos` because Elasticsearch's `date` keeps milliseconds and MiFID II RTS 25 asks for
//! microseconds; fields outside the schema (`extra.*`) are `keyword` up to 1024 characters.

use std::time::Duration;

use serde_json::{Map, Value, json};
use stockbot_telemetry_conventions::{self as conventions, FieldType};

use crate::config::{Config, ElasticsearchConfig};
use crate::error::{Error, ErrorKind};

/// The data stream the logs go to: `log.elasticsearch.data_stream`, or
/// `logs-<service>-default`.
pub fn data_stream(config: &Config) -> String {
    config
        .log
        .elasticsearch
        .as_ref()
        .and_then(|e| e.data_stream.clone())
        .unwrap_or_else(|| format!("logs-{}-default", config.service.name.to_ascii_lowercase()))
}

/// The index template's and the ILM policy's name: `<service>-logs`.
pub fn template_name(config: &Config) -> String {
    format!("{}-logs", config.service.name.to_ascii_lowercase())
}

fn es_type(name: &str, ty: FieldType) -> Value {
    match (name, ty) {
        ("message" | "error.message" | "error.stack_trace", _) => {
            json!({"type": "match_only_text"})
        }
        (_, FieldType::Timestamp) => json!({"type": "date_nanos"}),
        (_, FieldType::I64 | FieldType::U64) => json!({"type": "long"}),
        (_, FieldType::F64 | FieldType::Number) => json!({"type": "double"}),
        (_, FieldType::Bool) => json!({"type": "boolean"}),
        _ => json!({"type": "keyword", "ignore_above": 1024}),
    }
}

/// Inserts a dotted field name as nested `properties`; a name that is already an object (or
/// a leaf under which another field would go) is left as it is.
fn insert_path(properties: &mut Map<String, Value>, name: &str, mapping: Value) {
    match name.split_once('.') {
        None => {
            properties.entry(name.to_owned()).or_insert(mapping);
        }
        Some((head, rest)) => {
            let entry = properties
                .entry(head.to_owned())
                .or_insert_with(|| json!({"properties": {}}));
            if let Some(children) = entry.get_mut("properties").and_then(Value::as_object_mut) {
                insert_path(children, rest, mapping);
            }
        }
    }
}

/// The composable index template for the log data stream, its mappings generated from the log
/// schema (and the service's own `log.fields`).
pub fn index_template(config: &Config) -> Value {
    let mut properties = Map::new();
    insert_path(&mut properties, "@timestamp", json!({"type": "date_nanos"}));
    for field in conventions::fields() {
        if field.name == "@timestamp" {
            continue;
        }
        insert_path(&mut properties, field.name, es_type(field.name, field.ty));
    }
    for field in &config.log.fields {
        // Validated at init; a field that does not parse is left to dynamic mapping.
        if let Ok((ty, _)) = crate::process::schema::parse_custom_field(field) {
            insert_path(&mut properties, &field.name, es_type(&field.name, ty));
        }
    }
    let prefix = data_stream(config);
    let pattern = match prefix.rsplit_once('-') {
        Some((base, _namespace)) => format!("{base}-*"),
        None => format!("{prefix}*"),
    };
    json!({
        "index_patterns": [pattern],
        "data_stream": {},
        "priority": 200,
        "template": {
            "settings": {
                "index.lifecycle.name": template_name(config),
                "index.codec": "best_compression"
            },
            "mappings": {
                "dynamic_templates": [{
                    "extra_fields_as_keywords": {
                        "path_match": "extra.*",
                        "mapping": {"type": "keyword", "ignore_above": 1024}
                    }
                }],
                "properties": properties
            }
        },
        "_meta": {
            "description": "stockbot-telemetry log records",
            "schema.version": conventions::SCHEMA_VERSION,
        }
    })
}

/// Elasticsearch's duration units, rounded down to whole days, hours, minutes or seconds.
fn es_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The ILM policy: rollover by age or primary shard size in the hot phase, delete after the
/// retention (`log.elasticsearch.retention`).
pub fn ilm_policy(config: &Config) -> Value {
    let r = config
        .log
        .elasticsearch
        .as_ref()
        .map(|e| e.retention.clone())
        .unwrap_or_default();
    json!({
        "policy": {
            "phases": {
                "hot": {
                    "actions": {
                        "rollover": {
                            "max_age": es_duration(r.rollover_max_age),
                            "max_primary_shard_size": r.rollover_max_primary_shard_size
                        }
                    }
                },
                "delete": {
                    "min_age": es_duration(r.delete_after),
                    "actions": {"delete": {}}
                }
            },
            "_meta": {"description": "stockbot-telemetry log retention"}
        }
    })
}

fn es_config(config: &Config) -> Result<&ElasticsearchConfig, Error> {
    // The same checks as `init`: https with a CA, no credentials in the URL.
    config.validate()?;
    config.log.elasticsearch.as_ref().ok_or_else(|| {
        Error::invalid(
            "log.elasticsearch",
            "<none>",
            "no Elasticsearch configured (set log.elasticsearch.url or STOCKBOT_ELASTICSEARCH_URL)",
        )
    })
}

fn request(
    es: &ElasticsearchConfig,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<Value, Error> {
    let url = format!("{}{path}", es.url.trim_end_matches('/'));
    let ca = match &es.ca_file {
        Some(path) => Some(crate::export::tls::load_ca_file(path).map_err(|reason| {
            Error::invalid("log.elasticsearch.ca_file", path.display(), reason)
        })?),
        None => None,
    };
    let agent = crate::export::tls::agent(es.timeout, ca.as_ref());
    let mut builder = match method {
        "PUT" => agent.put(&url),
        _ => agent.post(&url),
    }
    .header("Content-Type", "application/json");
    if let Some(auth) = &es.auth {
        builder = builder.header("Authorization", auth.header_value().expose());
    }
    let backend = |status: Option<u16>, message: String| -> Error {
        ErrorKind::Backend {
            target: url.clone(),
            status,
            message,
        }
        .into()
    };
    let mut response = builder
        .send(body.to_string())
        .map_err(|e| backend(None, e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| backend(Some(status), e.to_string()))?;
    if !(200..300).contains(&status) {
        let mut message = text;
        message.truncate(crate::collect::record::cut_point(&message, 512));
        return Err(backend(Some(status), message));
    }
    serde_json::from_str(&text)
        .map_err(|e| backend(Some(status), format!("not a JSON answer: {e}")))
}

/// Installs the ILM policy and the index template (idempotent: both are PUT).
///
/// # Errors
/// No Elasticsearch configured, or Elasticsearch refused or could not be reached
/// ([`ErrorKind::Backend`]).
pub fn install(config: &Config) -> Result<(), Error> {
    let es = es_config(config)?;
    let name = template_name(config);
    request(
        es,
        "PUT",
        &format!("/_ilm/policy/{name}"),
        &ilm_policy(config),
    )?;
    request(
        es,
        "PUT",
        &format!("/_index_template/{name}"),
        &index_template(config),
    )?;
    Ok(())
}

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogQuery {
    /// Every record of one trace (`trace.id`).
    TraceId(String),
    /// Every record of one order: its `order.cl_ord_id`, or a cancel/replace naming it as
    /// `order.orig_cl_ord_id`.
    ClOrdId(String),
}

impl LogQuery {
    fn matches(&self, record: &Value) -> bool {
        let field = |k: &str| record.get(k).and_then(Value::as_str);
        match self {
            LogQuery::TraceId(id) => field("trace.id") == Some(id.as_str()),
            LogQuery::ClOrdId(id) => {
                field("order.cl_ord_id") == Some(id.as_str())
                    || field("order.orig_cl_ord_id") == Some(id.as_str())
            }
        }
    }

    fn es_query(&self) -> Value {
        match self {
            LogQuery::TraceId(id) => json!({"term": {"trace.id": id}}),
            LogQuery::ClOrdId(id) => json!({"bool": {"should": [
                {"term": {"order.cl_ord_id": id}},
                {"term": {"order.orig_cl_ord_id": id}}
            ], "minimum_should_match": 1}}),
        }
    }
}

/// Every record matching `query`, oldest first, at most `limit`: from Elasticsearch when
/// `log.elasticsearch` is configured, otherwise from the rolling log files in
/// `log.file.directory` (active and rotated; lines that are not JSON are skipped).
///
/// # Errors
/// Elasticsearch refused or could not be reached, or the log directory cannot be read
/// ([`ErrorKind::Backend`]).
pub fn search(config: &Config, query: &LogQuery, limit: usize) -> Result<Vec<Value>, Error> {
    if config.log.elasticsearch.is_some() {
        let es = es_config(config)?;
        let body = json!({
            "size": limit,
            "query": query.es_query(),
            "sort": [{"@timestamp": "asc"}]
        });
        let answer = request(
            es,
            "POST",
            &format!("/{}/_search", data_stream(config)),
            &body,
        )?;
        return Ok(answer["hits"]["hits"]
            .as_array()
            .map(|hits| hits.iter().map(|h| h["_source"].clone()).collect())
            .unwrap_or_default());
    }
    let dir = &config.log.file.directory;
    let backend = |e: std::io::Error| -> Error {
        ErrorKind::Backend {
            target: dir.display().to_string(),
            status: None,
            message: e.to_string(),
        }
        .into()
    };
    let prefix = config.file_prefix();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(backend)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            // This service's log file and its rotations only (not another service's with a
            // longer name, not the span or dead-letter files).
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n == format!("{prefix}.log")
                    || crate::export::sink::file::is_rotated_name(n, &prefix)
            })
        })
        .collect();
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).map_err(backend)?;
        let text = String::from_utf8_lossy(&bytes);
        found.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|r| query.matches(r)),
        );
    }
    found.sort_by(|a, b| {
        let ts = |v: &Value| v["@timestamp"].as_str().unwrap_or("").to_owned();
        ts(a).cmp(&ts(b))
    });
    found.truncate(limit);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_field_is_mapped_without_conflicts() {
        let t = index_template(&Config::for_service("Order-Router"));
        assert_eq!(t["index_patterns"][0], "logs-order-router-*");
        let props = &t["template"]["mappings"]["properties"];
        for field in conventions::fields() {
            let mut node = props;
            let parts: Vec<&str> = field.name.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                node = &node[*part];
                if i + 1 < parts.len() {
                    node = &node["properties"];
                }
            }
            assert!(node["type"].is_string(), "{} is not mapped", field.name);
        }
        assert_eq!(props["order"]["properties"]["quantity"]["type"], "double");
        assert_eq!(props["process"]["properties"]["pid"]["type"], "long");
        assert_eq!(props["audit"]["type"], "boolean");
    }

    #[test]
    fn retention_is_written_in_elasticsearch_units() {
        let mut c = Config::for_service("router");
        let mut es = ElasticsearchConfig::new("http://127.0.0.1:9200");
        es.retention.delete_after = Duration::from_secs(7 * 86_400);
        es.retention.rollover_max_age = Duration::from_secs(6 * 3600);
        c.log.elasticsearch = Some(es);
        let p = ilm_policy(&c);
        assert_eq!(p["policy"]["phases"]["delete"]["min_age"], "7d");
        assert_eq!(
            p["policy"]["phases"]["hot"]["actions"]["rollover"]["max_age"],
            "6h"
        );
        assert_eq!(es_duration(Duration::from_secs(90)), "90s");
    }
}
