//! The schema at run time: the conventions table plus the service's own fields, resolved by
//! the names used in events (canonical dotted names or short aliases).

use std::collections::HashMap;
use std::sync::Arc;

use stockbot_telemetry_conventions::{self as conventions, FieldType, Sensitivity};

use crate::config::CustomField;

/// Fields the SDK writes itself; events cannot set them.
pub(crate) const RESERVED_FIELDS: &[&str] = &[
    "@timestamp",
    "log.level",
    "ecs.version",
    "schema.version",
    "service.name",
    "service.version",
    "service.environment",
    "host.name",
    "process.pid",
    "process.thread.name",
    "deployment.mode",
    "event.dataset",
    "event.ingested",
    "log.logger",
    "log.origin.file.name",
    "log.origin.file.line",
    "log.truncated",
    "log.sampled_away",
    "trace.id",
    "span.id",
    "span.name",
    "schema.errors",
];

/// How a field name resolves.
#[derive(Debug, Clone)]
pub(crate) struct FieldInfo {
    pub(crate) canonical: Arc<str>,
    pub(crate) ty: FieldType,
    pub(crate) sensitivity: Sensitivity,
}

#[derive(Debug)]
pub(crate) enum Resolved<'a> {
    Known(&'a FieldInfo),
    Reserved,
    Unknown,
}

/// Name → field, for built-in and custom fields and their aliases.
#[derive(Debug)]
pub(crate) struct Schema {
    by_name: HashMap<Box<str>, FieldInfo>,
}

impl Schema {
    pub(crate) fn new(custom: &[CustomField], extra_secrets: &[String]) -> Self {
        let mut by_name = HashMap::new();
        for def in conventions::fields() {
            if RESERVED_FIELDS.contains(&def.name) || def.name == "message" {
                continue;
            }
            let info = FieldInfo {
                canonical: def.name.into(),
                ty: def.ty,
                sensitivity: def.sensitivity,
            };
            for alias in def.aliases {
                by_name.insert((*alias).into(), info.clone());
            }
            by_name.insert(def.name.into(), info);
        }
        for field in custom {
            if let Ok((ty, sensitivity)) = parse_custom_field(field) {
                by_name.insert(
                    field.name.as_str().into(),
                    FieldInfo {
                        canonical: field.name.as_str().into(),
                        ty,
                        sensitivity,
                    },
                );
            }
        }
        for name in extra_secrets {
            by_name.insert(
                name.as_str().into(),
                FieldInfo {
                    canonical: name.as_str().into(),
                    ty: FieldType::String,
                    sensitivity: Sensitivity::Secret,
                },
            );
        }
        Schema { by_name }
    }

    pub(crate) fn resolve(&self, name: &str) -> Resolved<'_> {
        if let Some(info) = self.by_name.get(name) {
            return Resolved::Known(info);
        }
        if RESERVED_FIELDS.contains(&name) {
            return Resolved::Reserved;
        }
        Resolved::Unknown
    }

    /// Suggestion for an unknown name ("did you mean …").
    pub(crate) fn suggest(&self, name: &str) -> Option<&'static str> {
        conventions::suggest(name)
    }
}

/// Parses a custom field's type and sensitivity; the error names the sub-field.
pub(crate) fn parse_custom_field(
    field: &CustomField,
) -> Result<(FieldType, Sensitivity), (&'static str, String, String)> {
    let name = &field.name;
    let valid_name = !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if !valid_name {
        return Err((
            "name",
            name.clone(),
            "must be a dotted name of letters, digits and '_' (e.g. strategy.signal_strength)"
                .into(),
        ));
    }
    let ty = match field.ty.as_str() {
        "string" => FieldType::String,
        "i64" => FieldType::I64,
        "u64" => FieldType::U64,
        "f64" => FieldType::F64,
        "bool" => FieldType::Bool,
        "timestamp" => FieldType::Timestamp,
        "number" => FieldType::Number,
        other => {
            return Err((
                "type",
                other.into(),
                "expected one of string, i64, u64, f64, bool, timestamp, number".into(),
            ));
        }
    };
    match field.cardinality.as_str() {
        "low" | "medium" | "high" => {}
        other => {
            return Err((
                "cardinality",
                other.into(),
                "expected low, medium or high".into(),
            ));
        }
    }
    let sensitivity = match field.sensitivity.as_str() {
        "public" => Sensitivity::Public,
        "pseudonymised" | "pseudonymized" => Sensitivity::Pseudonymised,
        "secret" => Sensitivity::Secret,
        other => {
            return Err((
                "sensitivity",
                other.into(),
                "expected public, pseudonymised or secret".into(),
            ));
        }
    };
    Ok((ty, sensitivity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_aliases_custom_and_reserved() {
        let schema = Schema::new(
            &[CustomField::new("strategy.signal_strength", "f64")],
            &["pin_code".into()],
        );
        match schema.resolve("cl_ord_id") {
            Resolved::Known(info) => assert_eq!(&*info.canonical, "order.cl_ord_id"),
            other => panic!("{other:?}"),
        }
        match schema.resolve("strategy.signal_strength") {
            Resolved::Known(info) => assert_eq!(info.ty, FieldType::F64),
            other => panic!("{other:?}"),
        }
        match schema.resolve("pin_code") {
            Resolved::Known(info) => assert_eq!(info.sensitivity, Sensitivity::Secret),
            other => panic!("{other:?}"),
        }
        assert!(matches!(schema.resolve("service.name"), Resolved::Reserved));
        assert!(matches!(schema.resolve("cl_ordid"), Resolved::Unknown));
        assert_eq!(schema.suggest("cl_ordid"), Some("cl_ord_id"));
    }
}
