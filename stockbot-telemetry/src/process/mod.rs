//! Processing on the worker, before any sink: schema enforcement, enrichment, redaction,
//! pseudonymisation, escaping — and encoding into one ECS-compatible JSON line.

pub(crate) mod head_sampling;
pub(crate) mod keep;
pub(crate) mod redact;
pub(crate) mod sample;
pub(crate) mod schema;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use stockbot_telemetry_conventions::{self as conventions, FieldType, Sensitivity, ValueKind};
use tracing_core::Level;

use crate::collect::clock::{RecordClock, write_rfc3339_micros};
use crate::collect::record::{INTERNAL, LogRecord, TRUNCATED, Value};
use crate::collect::span::OwnedValue;
use crate::config::{Config, SchemaMode};
use crate::export::accounting::Accounting;
use crate::export::encode::{
    write_f64, write_hex, write_i64, write_key, write_prefixed_key, write_str, write_u64,
};
use redact::{Redactor, SecretKind};
use schema::{Resolved, Schema};

/// Namespace of fields that are not in the schema.
pub(crate) const EXTRA_PREFIX: &str = "extra.";
const REDACTED: &str = "[REDACTED]";

/// A field value, whatever record or span it came from.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl V<'_> {
    fn kind(self) -> ValueKind {
        match self {
            V::Str(_) => ValueKind::Str,
            V::I64(_) => ValueKind::I64,
            V::U64(_) => ValueKind::U64,
            V::F64(_) => ValueKind::F64,
            V::Bool(_) => ValueKind::Bool,
        }
    }

    fn to_text(self) -> String {
        match self {
            V::Str(s) => s.to_owned(),
            V::I64(v) => v.to_string(),
            V::U64(v) => v.to_string(),
            V::F64(v) => v.to_string(),
            V::Bool(v) => v.to_string(),
        }
    }

    fn fits(self, ty: FieldType) -> bool {
        ty.accepts(self.kind())
            && match (ty, self) {
                (FieldType::U64, V::I64(v)) => v >= 0,
                (FieldType::I64, V::U64(v)) => i64::try_from(v).is_ok(),
                _ => true,
            }
    }
}

fn owned(v: &OwnedValue) -> V<'_> {
    match v {
        OwnedValue::Str(s) => V::Str(s),
        OwnedValue::I64(v) => V::I64(*v),
        OwnedValue::U64(v) => V::U64(*v),
        OwnedValue::F64(v) => V::F64(*v),
        OwnedValue::Bool(v) => V::Bool(*v),
    }
}

/// Whether `target` is `prefix` or inside module `prefix`.
pub(crate) fn target_in(target: &str, prefix: &str) -> bool {
    target == prefix || (target.starts_with(prefix) && target[prefix.len()..].starts_with("::"))
}

/// Turns captured records into JSON lines.
#[derive(Debug)]
pub(crate) struct Processor {
    schema: Schema,
    redactor: Redactor,
    patterns: bool,
    strict: bool,
    own_targets: Vec<String>,
    /// Pre-encoded enrichment fields, starting with `,`.
    header: Vec<u8>,
    clock: Arc<RecordClock>,
    reported_sites: HashSet<usize>,
    hits: Vec<SecretKind>,
    /// Keys written for the current record (canonical names and `extra.` names), so no key
    /// appears twice.
    written: Vec<Arc<str>>,
    written_extra: Vec<&'static str>,
    errors: String,
}

impl Processor {
    pub(crate) fn new(
        config: &Config,
        host_name: &str,
        pseudonym_key: &[u8],
        clock: Arc<RecordClock>,
    ) -> Self {
        let s = &config.service;
        let mut header = Vec::with_capacity(256);
        header.push(b'{');
        let mut pair = |k: &str, v: &str| {
            write_key(&mut header, k);
            write_str(&mut header, v);
        };
        pair("ecs.version", conventions::ECS_VERSION);
        pair("schema.version", conventions::SCHEMA_VERSION);
        pair("service.name", &s.name);
        pair("service.version", &s.version);
        pair("service.environment", &s.environment);
        pair("deployment.mode", s.deployment_mode.as_str());
        pair("host.name", host_name);
        let dataset = config
            .log
            .dataset
            .clone()
            .unwrap_or_else(|| format!("{}.log", s.name));
        pair("event.dataset", &dataset);
        write_key(&mut header, "process.pid");
        write_u64(&mut header, u64::from(std::process::id()));
        header[0] = b',';

        Processor {
            schema: Schema::new(&config.log.fields, &config.log.redaction.secret_fields),
            redactor: Redactor::new(pseudonym_key),
            patterns: config.log.redaction.patterns,
            strict: config.log.schema == SchemaMode::Strict,
            own_targets: config.own_targets(),
            header,
            clock,
            reported_sites: HashSet::new(),
            hits: Vec::new(),
            written: Vec::new(),
            written_extra: Vec::new(),
            errors: String::new(),
        }
    }

    /// Encodes one record as a JSON line into `out`. Schema diagnostics for the SDK to emit
    /// are pushed to `diagnostics`.
    pub(crate) fn encode(
        &mut self,
        rec: &LogRecord,
        out: &mut Vec<u8>,
        acct: &Accounting,
        diagnostics: &mut Vec<LogRecord>,
    ) {
        self.written.clear();
        self.written_extra.clear();
        self.errors.clear();
        let target = rec.text(rec.target);
        let strict_here = self.strict
            && (rec.flags & INTERNAL != 0
                || self
                    .own_targets
                    .iter()
                    .any(|t| t == "*" || target_in(target, t)));

        out.push(b'{');
        write_key(out, "@timestamp");
        out.push(b'"');
        write_rfc3339_micros(out, self.clock.unix_nanos(rec.stamp));
        out.push(b'"');
        write_key(out, "log.level");
        write_str(out, level_str(rec.level));
        write_key(out, "message");
        let message = rec.message.map_or("", |m| rec.text(m));
        self.write_text(out, message, acct);
        out.extend_from_slice(&self.header);
        if let Some(thread) = &rec.thread {
            write_key(out, "process.thread.name");
            write_str(out, thread);
        }
        write_key(out, "log.logger");
        write_str(out, target);
        if let Some(file) = rec.file {
            write_key(out, "log.origin.file.name");
            write_str(out, rec.text(file));
        }
        if let Some(line) = rec.line {
            write_key(out, "log.origin.file.line");
            write_u64(out, u64::from(line));
        }
        if let Some(span) = &rec.span {
            write_key(out, "trace.id");
            write_hex(out, span.trace_id, 32);
            write_key(out, "span.id");
            write_hex(out, u128::from(span.span_id), 16);
            write_key(out, "span.name");
            write_str(out, span.name);
        }
        for field in &rec.fields {
            let v = match field.value {
                Value::Str(t) => V::Str(rec.text(t)),
                Value::I64(v) => V::I64(v),
                Value::U64(v) => V::U64(v),
                Value::F64(v) => V::F64(v),
                Value::Bool(v) => V::Bool(v),
            };
            self.write_field(out, field.name, v, acct, false);
        }
        if let Some(span) = &rec.span {
            for (name, value) in span.inherited() {
                self.write_field(out, name, owned(value), acct, true);
            }
        }
        if rec.flags & TRUNCATED != 0 {
            acct.truncated
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            write_key(out, "log.truncated");
            out.extend_from_slice(b"true");
        }
        if rec.sampled_away > 0 {
            write_key(out, "log.sampled_away");
            write_u64(out, rec.sampled_away);
        }
        if self.clock.is_simulated() {
            write_key(out, "event.ingested");
            out.push(b'"');
            write_rfc3339_micros(out, self.clock.wall_now());
            out.push(b'"');
        }
        if strict_here && !self.errors.is_empty() {
            write_key(out, "schema.errors");
            write_str(out, &self.errors);
            if rec.callsite != 0 && self.reported_sites.insert(rec.callsite) {
                let location = match (rec.file, rec.line) {
                    (Some(f), Some(l)) => format!("{}:{l}", rec.text(f)),
                    _ => target.to_owned(),
                };
                diagnostics.push(LogRecord::internal(
                    rec.stamp,
                    Level::ERROR,
                    "stockbot_telemetry::schema",
                    format!(
                        "schema violation in event at {location} (target {target}): {}",
                        self.errors
                    ),
                ));
            }
        }
        out.extend_from_slice(b"}\n");
    }

    fn violation(&mut self, text: std::fmt::Arguments<'_>) {
        if !self.errors.is_empty() {
            self.errors.push_str("; ");
        }
        let _ = self.errors.write_fmt(text);
    }

    fn write_field(
        &mut self,
        out: &mut Vec<u8>,
        name: &'static str,
        v: V<'_>,
        acct: &Accounting,
        inherited: bool,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        let (canonical, ty, sensitivity) = match self.schema.resolve(name) {
            Resolved::Known(info) => (info.canonical.clone(), info.ty, info.sensitivity),
            Resolved::Reserved => {
                self.violation(format_args!("field `{name}` is reserved for the SDK"));
                return self.write_extra(out, name, v, heuristic(name), acct);
            }
            Resolved::Unknown => {
                acct.unknown_fields.fetch_add(1, Relaxed);
                match self.schema.suggest(name) {
                    Some(s) => {
                        self.violation(format_args!("unknown field `{name}` (did you mean `{s}`?)"))
                    }
                    None => self.violation(format_args!(
                        "unknown field `{name}` (declare it in log.fields or use a schema field)"
                    )),
                }
                return self.write_extra(out, name, v, heuristic(name), acct);
            }
        };
        if self.written.contains(&canonical) {
            if !inherited {
                self.violation(format_args!("field `{canonical}` given twice"));
            }
            return;
        }
        if !v.fits(ty) {
            acct.type_errors.fetch_add(1, Relaxed);
            self.violation(format_args!(
                "field `{name}` expects {}, got {}",
                ty.name(),
                v.kind().name()
            ));
            let text = v.to_text();
            // Keep the field's class: a mistyped account id is still pseudonymised, a mistyped
            // secret still redacted.
            return self.write_extra(out, name, V::Str(&text), sensitivity, acct);
        }
        self.written.push(Arc::clone(&canonical));
        write_key(out, &canonical);
        self.write_value(out, sensitivity, v, acct);
    }

    fn write_extra(
        &mut self,
        out: &mut Vec<u8>,
        name: &'static str,
        v: V<'_>,
        sensitivity: Sensitivity,
        acct: &Accounting,
    ) {
        if self.written_extra.contains(&name) {
            // The event's own value came first; an inherited one with the same name is skipped.
            return;
        }
        self.written_extra.push(name);
        write_prefixed_key(out, EXTRA_PREFIX, name);
        self.write_value(out, sensitivity, v, acct);
    }

    fn write_value(
        &mut self,
        out: &mut Vec<u8>,
        sensitivity: Sensitivity,
        v: V<'_>,
        acct: &Accounting,
    ) {
        match sensitivity {
            Sensitivity::Secret => {
                acct.redactions
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                write_str(out, REDACTED);
            }
            Sensitivity::Pseudonymised => {
                let pseudonym = self.redactor.pseudonymise(&v.to_text());
                write_str(out, &pseudonym);
            }
            _ => match v {
                V::Str(s) => self.write_text(out, s, acct),
                V::I64(n) => write_i64(out, n),
                V::U64(n) => write_u64(out, n),
                V::F64(n) => write_f64(out, n),
                V::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            },
        }
    }

    /// A free-text value: secrets found by pattern are replaced, then it is escaped.
    fn write_text(&mut self, out: &mut Vec<u8>, s: &str, acct: &Accounting) {
        if !self.patterns {
            return write_str(out, s);
        }
        self.hits.clear();
        let clean = self.redactor.redact_text(s, &mut self.hits);
        if !self.hits.is_empty() {
            acct.redactions
                .fetch_add(self.hits.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        write_str(out, &clean);
    }
}

/// Class of a name that is not in the schema: secret if it looks like one.
fn heuristic(name: &str) -> Sensitivity {
    if conventions::is_secret_name(name) {
        Sensitivity::Secret
    } else {
        Sensitivity::Public
    }
}

pub(crate) fn level_str(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        _ => "TRACE",
    }
}
