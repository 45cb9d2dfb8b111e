//! Conventions of `stockbot-telemetry`, as data and pure functions.
//!
//! This crate has no dependencies and does no I/O. It is shared by the
//! proc-macro crate, which checks instrumentation at compile time, and by the
//! core crate, which enforces the same rules at run time, so both agree on
//! every rule by construction.
//!
//! # Log field schema
//!
//! Every structured log record follows one schema, versioned by
//! [`SCHEMA_VERSION`] and modelled on the Elastic Common Schema
//! ([`ECS_VERSION`]). The schema is the table returned by [`fields`]: one
//! [`FieldDef`] per field, with
//!
//! * a canonical dotted, ECS-style name (`order.cl_ord_id`),
//! * short aliases that may be used as field names in `tracing` macros
//!   (`cl_ord_id`, `client_order_id`); every alias is a valid Rust identifier,
//! * the expected [`FieldType`] (checked against the recorded [`ValueKind`]
//!   with [`FieldType::accepts`]),
//! * a [`Cardinality`] class and a [`Sensitivity`] class.
//!
//! [`lookup`] resolves a canonical name or alias; [`suggest`] proposes the
//! closest known name for a typo ("did you mean `cl_ord_id`?").
//!
//! # Cardinality
//!
//! * [`Cardinality::Low`]: a small bounded set (side, venue, strategy,
//!   outcome). Fine as a metric label.
//! * [`Cardinality::Medium`]: bounded but large (symbol, reject reason).
//!   Allowed as a metric label but subject to the per-metric series cap;
//!   discouraged.
//! * [`Cardinality::High`]: ids and free values (order ids, accounts, trace
//!   ids, prices, quantities). Never a metric label; fine on spans and logs.
//!
//! # Sensitivity
//!
//! [`Sensitivity::Public`] values are emitted as recorded,
//! [`Sensitivity::Pseudonymised`] values (account and user ids) are replaced
//! by a keyed hash before reaching any sink, and [`Sensitivity::Secret`]
//! values are always redacted. Names that are not in the table but look like
//! secrets (`db_password`, `x_api_key`, ...) are caught by [`is_secret_name`].
//!
//! # Audit events
//!
//! An event with the field `audit = true` is audit-class: it is never sampled
//! away and uses reserved queue capacity. Its `event.action` should be one of
//! [`AUDIT_ACTIONS`] (see [`is_audit_action`]).
//!
//! # Metric naming
//!
//! Metric names follow the Prometheus conventions, checked by
//! [`validate_metric_name`]: `[a-zA-Z_][a-zA-Z0-9_]*` without a leading `__`,
//! a namespace prefix (`stockbot_` by default), `_total` on counters and only
//! on counters, no histogram name ending in `_bucket`/`_count`/`_sum`, and
//! base units only ([`BASE_UNIT_SUFFIXES`]: seconds, bytes, basis points,
//! ratios). Label names are checked by [`validate_label_name`], and
//! [`label_cardinality`] tells whether a label is an acceptable dimension.
//!
//! # Examples
//!
//! Resolving a field and checking a recorded value:
//!
//! ```
//! use stockbot_telemetry_conventions::{lookup, suggest, Cardinality, Sensitivity, ValueKind};
//!
//! let field = lookup("cl_ord_id").expect("known alias");
//! assert_eq!(field.name, "order.cl_ord_id");
//! assert_eq!(field.cardinality, Cardinality::High);
//! assert_eq!(field.sensitivity, Sensitivity::Public);
//! assert!(!field.cardinality.allowed_as_metric_label());
//! assert!(field.ty.accepts(ValueKind::Str));
//! assert!(!field.ty.accepts(ValueKind::F64));
//!
//! assert_eq!(lookup("account").map(|f| f.sensitivity), Some(Sensitivity::Pseudonymised));
//! assert_eq!(suggest("cl_ordid"), Some("cl_ord_id"));
//! ```
//!
//! Validating metric and label names:
//!
//! ```
//! use stockbot_telemetry_conventions::{
//!     label_cardinality, validate_label_name, validate_metric_name, Cardinality, MetricKind,
//!     DEFAULT_NAMESPACE,
//! };
//!
//! assert!(validate_metric_name("stockbot_orders_submitted_total", MetricKind::Counter, DEFAULT_NAMESPACE).is_ok());
//! assert!(validate_metric_name("stockbot_order_latency_seconds", MetricKind::Histogram, DEFAULT_NAMESPACE).is_ok());
//!
//! let err = validate_metric_name("stockbot_order_latency_ms", MetricKind::Histogram, DEFAULT_NAMESPACE)
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "metric `stockbot_order_latency_ms` uses unit suffix `_ms`: use base unit `_seconds` (record seconds as f64)"
//! );
//!
//! assert!(validate_label_name("venue").is_ok());
//! assert_eq!(label_cardinality("venue"), Some(Cardinality::Low));
//! assert_eq!(label_cardinality("order_cl_ord_id"), Some(Cardinality::High));
//! ```

#![forbid(unsafe_code)]

mod naming;
mod schema;

pub use naming::{
    BASE_UNIT_SUFFIXES, DEFAULT_NAMESPACE, MetricKind, NamingError, label_cardinality,
    validate_label_name, validate_metric_name,
};
pub use schema::{
    AUDIT_ACTIONS, Cardinality, ECS_VERSION, FieldDef, FieldType, SCHEMA_VERSION, Sensitivity,
    ValueKind, fields, is_audit_action, is_secret_name, lookup, suggest,
};
