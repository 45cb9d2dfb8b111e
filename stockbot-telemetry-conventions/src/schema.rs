//! The log field schema: field table, types, cardinality and sensitivity
//! classes, secret-name heuristic and audit actions.

/// Version of the stockbot log schema described by [`fields`].
pub const SCHEMA_VERSION: &str = "1.0.0";

/// Version of the Elastic Common Schema the log schema follows.
pub const ECS_VERSION: &str = "8.11.0";

/// Type a schema field expects its value to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldType {
    /// A UTF-8 string.
    String,
    /// A signed 64-bit integer.
    I64,
    /// An unsigned 64-bit integer.
    U64,
    /// A 64-bit float.
    F64,
    /// A boolean.
    Bool,
    /// A point in time: an RFC 3339 string or an integer of Unix nanoseconds.
    Timestamp,
    /// Any number, integer or float (quantities, which may be fractional).
    Number,
}

impl FieldType {
    /// Lowercase name of the type: `"string"`, `"i64"`, `"u64"`, `"f64"`,
    /// `"bool"`, `"timestamp"` or `"number"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::I64 => "i64",
            Self::U64 => "u64",
            Self::F64 => "f64",
            Self::Bool => "bool",
            Self::Timestamp => "timestamp",
            Self::Number => "number",
        }
    }

    /// Whether a value of kind `actual` is acceptable for a field of this type.
    ///
    /// Integers are accepted for either integer type (the caller checks the
    /// range), integers are accepted where a float is expected, and
    /// timestamps accept strings (RFC 3339) and integers (Unix nanoseconds).
    #[must_use]
    pub const fn accepts(self, actual: ValueKind) -> bool {
        use ValueKind as K;
        match self {
            Self::String => matches!(actual, K::Str),
            Self::I64 | Self::U64 => matches!(actual, K::I64 | K::U64),
            Self::F64 | Self::Number => matches!(actual, K::F64 | K::I64 | K::U64),
            Self::Bool => matches!(actual, K::Bool),
            Self::Timestamp => matches!(actual, K::Str | K::I64 | K::U64),
        }
    }
}

/// Kind of a value actually recorded (what the core sees at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// A string (or anything recorded through `Display`/`Debug`).
    Str,
    /// A signed 64-bit integer.
    I64,
    /// An unsigned 64-bit integer.
    U64,
    /// A 64-bit float.
    F64,
    /// A boolean.
    Bool,
}

impl ValueKind {
    /// Lowercase name of the kind: `"str"`, `"i64"`, `"u64"`, `"f64"` or `"bool"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Str => "str",
            Self::I64 => "i64",
            Self::U64 => "u64",
            Self::F64 => "f64",
            Self::Bool => "bool",
        }
    }
}

/// How many distinct values a field takes, which decides where it may be used.
///
/// Ordered from `Low` to `High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cardinality {
    /// A small bounded set (side, venue, strategy, outcome): fine as a metric
    /// label.
    Low,
    /// Bounded but large (symbol, reject reason): allowed as a metric label but
    /// subject to the per-metric series cap, and discouraged.
    Medium,
    /// Ids and free values (order ids, account, trace id, prices,
    /// quantities): never a metric label; fine on spans and logs.
    High,
}

impl Cardinality {
    /// Whether a field of this class may be used as a metric label
    /// (`Low` and `Medium`).
    #[must_use]
    pub const fn allowed_as_metric_label(self) -> bool {
        matches!(self, Self::Low | Self::Medium)
    }

    /// Lowercase name of the class: `"low"`, `"medium"` or `"high"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// How a field's value must be treated before it reaches a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sensitivity {
    /// Emitted as recorded.
    Public,
    /// Replaced by a keyed hash before any sink, so records stay joinable
    /// without exposing the value.
    Pseudonymised,
    /// Always redacted.
    Secret,
}

/// Definition of one field of the log schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// Canonical dotted, ECS-style name, e.g. `"order.cl_ord_id"`.
    pub name: &'static str,
    /// Short names accepted in `tracing` macros, e.g. `["cl_ord_id",
    /// "client_order_id"]`. Each is a valid Rust identifier, unique across
    /// the table and never another field's canonical name.
    pub aliases: &'static [&'static str],
    /// Type the value is expected to have.
    pub ty: FieldType,
    /// Cardinality class of the value.
    pub cardinality: Cardinality,
    /// Sensitivity class of the value.
    pub sensitivity: Sensitivity,
    /// `true` only for the `audit` field itself: an event carrying
    /// `audit = true` is audit-class (never sampled, reserved queue
    /// capacity). `false` for every other field.
    pub audit: bool,
    /// One-line description of the field.
    pub description: &'static str,
}

/// Public field, not the audit marker.
const fn public(
    name: &'static str,
    aliases: &'static [&'static str],
    ty: FieldType,
    cardinality: Cardinality,
    description: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        aliases,
        ty,
        cardinality,
        sensitivity: Sensitivity::Public,
        audit: false,
        description,
    }
}

/// Pseudonymised, high-cardinality string field.
const fn pseudonymised(
    name: &'static str,
    aliases: &'static [&'static str],
    description: &'static str,
) -> FieldDef {
    FieldDef {
        sensitivity: Sensitivity::Pseudonymised,
        ..public(
            name,
            aliases,
            FieldType::String,
            Cardinality::High,
            description,
        )
    }
}

/// Secret, high-cardinality string field.
const fn secret(
    name: &'static str,
    aliases: &'static [&'static str],
    description: &'static str,
) -> FieldDef {
    FieldDef {
        sensitivity: Sensitivity::Secret,
        ..public(
            name,
            aliases,
            FieldType::String,
            Cardinality::High,
            description,
        )
    }
}

use Cardinality::{High, Low, Medium};
use FieldType as T;

#[rustfmt::skip]
static FIELDS: &[FieldDef] = &[
    // --- Produced by the SDK ---
    public("@timestamp", &[], T::Timestamp, High, "Time the event occurred, as recorded by the SDK."),
    public("log.level", &[], T::String, Low, "Severity of the event: trace, debug, info, warn or error."),
    public("message", &[], T::String, High, "Human-readable message of the event."),
    public("ecs.version", &[], T::String, Low, "Version of the Elastic Common Schema the record follows."),
    public("schema.version", &[], T::String, Low, "Version of the stockbot log schema the record follows."),
    public("service.name", &[], T::String, Low, "Name of the service that emitted the event."),
    public("service.version", &[], T::String, Low, "Version of the service that emitted the event."),
    public("service.environment", &[], T::String, Low, "Deployment environment, e.g. prod, staging or dev."),
    public("host.name", &[], T::String, Medium, "Name of the host the service runs on."),
    public("process.pid", &[], T::I64, High, "Process id of the emitting process."),
    public("process.thread.name", &[], T::String, Medium, "Name of the thread that emitted the event."),
    public("deployment.mode", &[], T::String, Low, "Trading mode of the deployment, e.g. live, paper or backtest."),
    public("event.dataset", &[], T::String, Low, "Dataset the event belongs to, e.g. stockbot.orders."),
    public("event.ingested", &[], T::Timestamp, High, "Time the event was handed to the sink."),
    public("log.logger", &[], T::String, Medium, "The tracing target (usually the module path) that emitted the event."),
    public("log.origin.file.name", &[], T::String, Medium, "Source file that emitted the event."),
    public("log.origin.file.line", &[], T::I64, Medium, "Source line that emitted the event."),
    public("log.truncated", &[], T::Bool, Low, "Whether the message or a field value was truncated to the size limit."),
    public("log.sampled_away", &[], T::U64, High, "Number of similar events dropped by sampling since the last one emitted."),
    public("trace.id", &[], T::String, High, "W3C trace id of the active trace."),
    public("span.id", &[], T::String, High, "Id of the active span."),
    public("span.name", &[], T::String, Medium, "Name of the active span."),
    public("schema.errors", &[], T::String, High, "Schema violations found in the event (wrong types, unknown fields)."),
    // --- Event fields set by users ---
    public("event.action", &["action"], T::String, Low, "What happened, e.g. order_submitted; see AUDIT_ACTIONS."),
    public("event.outcome", &["outcome"], T::String, Low, "Outcome of the action: success, failure or unknown."),
    public("event.duration", &["duration_ns"], T::I64, High, "Duration of the action in nanoseconds."),
    public("event.venue_time", &["transact_time", "venue_time"], T::Timestamp, High, "The venue's own event time, e.g. FIX TransactTime."),
    public("error.message", &["error"], T::String, High, "Error message."),
    public("error.kind", &["error_kind"], T::String, Low, "Class of the error, e.g. timeout, rejected, io."),
    public("error.stack_trace", &["stack_trace", "backtrace"], T::String, High, "Stack trace or backtrace of the error."),
    FieldDef {
        audit: true,
        ..public("audit", &[], T::Bool, Low, "Marks an audit-class event: never sampled, uses reserved queue capacity.")
    },
    public("operation", &[], T::String, Low, "Name of the logical operation being performed."),
    public("http.request.method", &["http_method"], T::String, Low, "HTTP request method."),
    public("http.response.status_code", &["status_code", "http_status"], T::I64, Low, "HTTP response status code."),
    public("url.full", &["url"], T::String, High, "Full URL of the request."),
    pseudonymised("user.id", &["user_id"], "Id of the user; pseudonymised before any sink."),
    // --- Trading ---
    public("order.id", &["order_id"], T::String, High, "Venue-assigned order id (FIX OrderID)."),
    public("order.cl_ord_id", &["cl_ord_id", "client_order_id"], T::String, High, "Client-assigned order id (FIX ClOrdID)."),
    public("order.orig_cl_ord_id", &["orig_cl_ord_id"], T::String, High, "ClOrdID of the order being cancelled or replaced (FIX OrigClOrdID)."),
    public("order.side", &["side"], T::String, Low, "Order side: buy, sell or sell_short."),
    public("order.type", &["ord_type", "order_type"], T::String, Low, "Order type, e.g. market, limit, stop."),
    public("order.time_in_force", &["time_in_force", "tif"], T::String, Low, "Time in force, e.g. day, gtc, ioc, fok."),
    public("order.status", &["ord_status", "order_status"], T::String, Low, "Order status, e.g. new, partially_filled, filled, cancelled."),
    public("order.quantity", &["quantity", "qty", "order_qty"], T::Number, High, "Ordered quantity."),
    public("order.price", &["price"], T::F64, High, "Limit price of the order."),
    public("instrument.symbol", &["symbol"], T::String, Medium, "Ticker symbol of the instrument."),
    public("instrument.id", &["instrument", "instrument_id"], T::String, Medium, "Identifier of the instrument, e.g. ISIN or FIGI."),
    public("venue.name", &["venue"], T::String, Low, "Trading venue or broker."),
    public("strategy.name", &["strategy"], T::String, Low, "Trading strategy that originated the action."),
    pseudonymised("account.id", &["account", "account_id"], "Trading account; pseudonymised before any sink."),
    public("fill.id", &["exec_id", "fill_id"], T::String, High, "Execution id of a fill (FIX ExecID)."),
    public("fill.quantity", &["fill_qty", "last_qty"], T::Number, High, "Quantity of a fill (FIX LastQty)."),
    public("fill.price", &["fill_price", "last_px"], T::F64, High, "Price of a fill (FIX LastPx)."),
    public("reject.reason", &["reject_reason"], T::String, Medium, "Why an order or request was rejected."),
    public("risk.check", &["risk_check"], T::String, Low, "Name of the risk check that was evaluated."),
    public("risk.limit_utilisation", &["limit_utilisation"], T::F64, High, "Fraction of the risk limit in use, as a ratio."),
    public("currency", &["ccy"], T::String, Low, "ISO 4217 currency code."),
    public("pnl.amount", &["pnl"], T::F64, High, "Profit and loss amount, in the event's currency."),
    public("slippage.bps", &["slippage_bps"], T::F64, High, "Slippage against the reference price, in basis points."),
    public("market_data.sequence", &["seq_num"], T::U64, High, "Sequence number of a market data message."),
    public("market_data.gap", &["seq_gap"], T::U64, High, "Number of market data messages missed in a sequence gap."),
    // --- Secrets: always redacted ---
    secret("password", &["passwd"], "A password; always redacted."),
    secret("api_key", &["apikey"], "An API key; always redacted."),
    secret("token", &["access_token", "refresh_token"], "An access or refresh token; always redacted."),
    secret("secret", &["client_secret"], "A secret value; always redacted."),
    secret("http.request.headers.authorization", &["authorization"], "HTTP Authorization header; always redacted."),
];

/// The whole field table of the log schema (version [`SCHEMA_VERSION`]).
#[must_use]
pub fn fields() -> &'static [FieldDef] {
    FIELDS
}

/// Looks a field up by canonical name or alias (exact, case-sensitive).
///
/// This is a linear scan of a small table; callers on a hot path should cache
/// the result per call site.
#[must_use]
pub fn lookup(name: &str) -> Option<&'static FieldDef> {
    FIELDS
        .iter()
        .find(|f| f.name == name || f.aliases.contains(&name))
}

/// The closest canonical name or alias to `name`, for "did you mean ...?"
/// messages.
///
/// Uses the Damerau–Levenshtein distance (optimal string alignment, so an
/// adjacent transposition counts as one edit), ignoring ASCII case. Returns
/// a candidate only if its distance is at most `max(1, len / 3)`, where `len`
/// is the number of characters in `name`; ties go to the earlier entry of the
/// table (canonical name before aliases).
#[must_use]
pub fn suggest(name: &str) -> Option<&'static str> {
    let input: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
    let max_distance = (input.len() / 3).max(1);
    let mut best: Option<(usize, &'static str)> = None;
    let candidates = FIELDS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()));
    for candidate in candidates {
        let cand: Vec<char> = candidate.chars().map(|c| c.to_ascii_lowercase()).collect();
        if cand.len().abs_diff(input.len()) > max_distance {
            continue;
        }
        let distance = osa_distance(&input, &cand);
        if distance <= max_distance && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance (restricted Damerau–Levenshtein).
fn osa_distance(a: &[char], b: &[char]) -> usize {
    // Three rolling rows: i-2, i-1 and i.
    let mut before_prev: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before_prev[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before_prev, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Lowercase substrings that mark a field name as secret-looking.
const SECRET_MARKERS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "auth_header",
    "credential",
    "private_key",
    "cookie",
    "session_key",
    "access_key",
    "signature",
    "account_number",
    "accountnumber",
    "bank_account",
    "bankaccount",
    "card_number",
    "cardnumber",
    "iban",
    "cvv",
    "cvc",
];

/// Whether a field with this name must be redacted.
///
/// Fields of the table are decided by the table: `true` exactly for
/// [`Sensitivity::Secret`] fields. Other names are matched heuristically:
/// `true` if the lowercased name contains any of `password`, `passwd`, `pwd`,
/// `secret`, `token`, `api_key`, `apikey`, `api-key`, `authorization`,
/// `auth_header`, `credential`, `private_key`, `cookie`, `session_key`,
/// `access_key`, `signature`, or a bank or card detail: `account_number`,
/// `accountnumber`, `bank_account`, `bankaccount`, `card_number`, `cardnumber`,
/// `iban`, `cvv`, `cvc`.
#[must_use]
pub fn is_secret_name(name: &str) -> bool {
    if let Some(field) = lookup(name) {
        return field.sensitivity == Sensitivity::Secret;
    }
    let lower = name.to_lowercase();
    SECRET_MARKERS.iter().any(|marker| lower.contains(marker))
}

/// Values of `event.action` that identify audit events.
pub const AUDIT_ACTIONS: &[&str] = &[
    "order_submitted",
    "order_acked",
    "order_filled",
    "order_partially_filled",
    "order_rejected",
    "order_cancelled",
    "order_replaced",
    "risk_breach",
    "kill_switch",
];

/// Whether `action` is one of [`AUDIT_ACTIONS`] (exact, case-sensitive).
#[must_use]
pub fn is_audit_action(action: &str) -> bool {
    AUDIT_ACTIONS.contains(&action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const RUST_KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super",
        "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box",
        "do", "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
        "_",
    ];

    fn is_rust_identifier(s: &str) -> bool {
        let mut chars = s.chars();
        let Some(first) = chars.next() else {
            return false;
        };
        (first == '_' || first.is_ascii_alphabetic())
            && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
            && !RUST_KEYWORDS.contains(&s)
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for f in fields() {
            for key in std::iter::once(f.name).chain(f.aliases.iter().copied()) {
                if let Some(owner) = seen.insert(key, f.name) {
                    panic!("`{key}` is used by both `{owner}` and `{}`", f.name);
                }
            }
        }
    }

    #[test]
    fn aliases_are_rust_identifiers() {
        for f in fields() {
            for alias in f.aliases {
                assert!(is_rust_identifier(alias), "alias `{alias}` of `{}`", f.name);
                assert_ne!(*alias, f.name);
            }
        }
    }

    #[test]
    fn canonical_names_are_well_formed() {
        for f in fields() {
            assert!(!f.name.is_empty());
            assert!(!f.name.starts_with('.') && !f.name.ends_with('.') && !f.name.contains(".."));
            let body = f.name.strip_prefix('@').unwrap_or(f.name);
            assert!(
                body.chars()
                    .all(|c| c == '_' || c == '.' || c.is_ascii_lowercase() || c.is_ascii_digit()),
                "canonical name `{}`",
                f.name
            );
            assert!(!f.description.is_empty(), "description of `{}`", f.name);
            assert!(!f.description.contains('\n'), "description of `{}`", f.name);
        }
    }

    #[test]
    fn lookup_finds_every_name_and_alias() {
        for f in fields() {
            assert!(std::ptr::eq(lookup(f.name).unwrap(), f), "{}", f.name);
            for alias in f.aliases {
                assert!(std::ptr::eq(lookup(alias).unwrap(), f), "{alias}");
            }
        }
        assert_eq!(lookup("no_such_field"), None);
        assert_eq!(lookup("CL_ORD_ID"), None, "lookup is case-sensitive");
        assert_eq!(lookup(""), None);
    }

    #[test]
    fn required_fields_have_expected_shape() {
        use Sensitivity::{Pseudonymised, Public, Secret};
        let expected: &[(&str, FieldType, Cardinality, Sensitivity)] = &[
            ("@timestamp", T::Timestamp, High, Public),
            ("log.level", T::String, Low, Public),
            ("message", T::String, High, Public),
            ("ecs.version", T::String, Low, Public),
            ("schema.version", T::String, Low, Public),
            ("service.name", T::String, Low, Public),
            ("service.version", T::String, Low, Public),
            ("service.environment", T::String, Low, Public),
            ("host.name", T::String, Medium, Public),
            ("process.pid", T::I64, High, Public),
            ("process.thread.name", T::String, Medium, Public),
            ("deployment.mode", T::String, Low, Public),
            ("event.dataset", T::String, Low, Public),
            ("event.ingested", T::Timestamp, High, Public),
            ("log.logger", T::String, Medium, Public),
            ("log.origin.file.name", T::String, Medium, Public),
            ("log.origin.file.line", T::I64, Medium, Public),
            ("log.truncated", T::Bool, Low, Public),
            ("log.sampled_away", T::U64, High, Public),
            ("trace.id", T::String, High, Public),
            ("span.id", T::String, High, Public),
            ("span.name", T::String, Medium, Public),
            ("schema.errors", T::String, High, Public),
            ("event.action", T::String, Low, Public),
            ("event.outcome", T::String, Low, Public),
            ("event.duration", T::I64, High, Public),
            ("event.venue_time", T::Timestamp, High, Public),
            ("error.message", T::String, High, Public),
            ("error.kind", T::String, Low, Public),
            ("error.stack_trace", T::String, High, Public),
            ("audit", T::Bool, Low, Public),
            ("operation", T::String, Low, Public),
            ("http.request.method", T::String, Low, Public),
            ("http.response.status_code", T::I64, Low, Public),
            ("url.full", T::String, High, Public),
            ("user.id", T::String, High, Pseudonymised),
            ("order.id", T::String, High, Public),
            ("order.cl_ord_id", T::String, High, Public),
            ("order.orig_cl_ord_id", T::String, High, Public),
            ("order.side", T::String, Low, Public),
            ("order.type", T::String, Low, Public),
            ("order.time_in_force", T::String, Low, Public),
            ("order.status", T::String, Low, Public),
            ("order.quantity", T::Number, High, Public),
            ("order.price", T::F64, High, Public),
            ("instrument.symbol", T::String, Medium, Public),
            ("instrument.id", T::String, Medium, Public),
            ("venue.name", T::String, Low, Public),
            ("strategy.name", T::String, Low, Public),
            ("account.id", T::String, High, Pseudonymised),
            ("fill.id", T::String, High, Public),
            ("fill.quantity", T::Number, High, Public),
            ("fill.price", T::F64, High, Public),
            ("reject.reason", T::String, Medium, Public),
            ("risk.check", T::String, Low, Public),
            ("risk.limit_utilisation", T::F64, High, Public),
            ("currency", T::String, Low, Public),
            ("pnl.amount", T::F64, High, Public),
            ("slippage.bps", T::F64, High, Public),
            ("market_data.sequence", T::U64, High, Public),
            ("market_data.gap", T::U64, High, Public),
            ("password", T::String, High, Secret),
            ("api_key", T::String, High, Secret),
            ("token", T::String, High, Secret),
            ("secret", T::String, High, Secret),
            (
                "http.request.headers.authorization",
                T::String,
                High,
                Secret,
            ),
        ];
        for &(name, ty, cardinality, sensitivity) in expected {
            let f = lookup(name).unwrap_or_else(|| panic!("missing field `{name}`"));
            assert_eq!(f.name, name);
            assert_eq!(
                (f.ty, f.cardinality, f.sensitivity),
                (ty, cardinality, sensitivity),
                "{name}"
            );
        }
        assert_eq!(expected.len(), fields().len(), "table has untested fields");
    }

    #[test]
    fn required_aliases() {
        let expected: &[(&str, &str)] = &[
            ("action", "event.action"),
            ("outcome", "event.outcome"),
            ("duration_ns", "event.duration"),
            ("transact_time", "event.venue_time"),
            ("venue_time", "event.venue_time"),
            ("error", "error.message"),
            ("error_kind", "error.kind"),
            ("order_id", "order.id"),
            ("cl_ord_id", "order.cl_ord_id"),
            ("client_order_id", "order.cl_ord_id"),
            ("orig_cl_ord_id", "order.orig_cl_ord_id"),
            ("side", "order.side"),
            ("ord_type", "order.type"),
            ("order_type", "order.type"),
            ("time_in_force", "order.time_in_force"),
            ("tif", "order.time_in_force"),
            ("ord_status", "order.status"),
            ("quantity", "order.quantity"),
            ("qty", "order.quantity"),
            ("order_qty", "order.quantity"),
            ("price", "order.price"),
            ("symbol", "instrument.symbol"),
            ("instrument", "instrument.id"),
            ("venue", "venue.name"),
            ("strategy", "strategy.name"),
            ("account", "account.id"),
            ("account_id", "account.id"),
            ("exec_id", "fill.id"),
            ("fill_id", "fill.id"),
            ("fill_qty", "fill.quantity"),
            ("last_qty", "fill.quantity"),
            ("fill_price", "fill.price"),
            ("last_px", "fill.price"),
            ("reject_reason", "reject.reason"),
            ("risk_check", "risk.check"),
            ("seq_num", "market_data.sequence"),
            ("passwd", "password"),
            ("apikey", "api_key"),
            ("access_token", "token"),
            ("refresh_token", "token"),
            ("authorization", "http.request.headers.authorization"),
        ];
        for &(alias, canonical) in expected {
            assert_eq!(lookup(alias).map(|f| f.name), Some(canonical), "{alias}");
        }
    }

    #[test]
    fn only_the_audit_field_is_audit() {
        let audit: Vec<&str> = fields()
            .iter()
            .filter(|f| f.audit)
            .map(|f| f.name)
            .collect();
        assert_eq!(audit, ["audit"]);
    }

    #[test]
    fn secret_fields_are_high_cardinality_strings() {
        for f in fields()
            .iter()
            .filter(|f| f.sensitivity == Sensitivity::Secret)
        {
            assert_eq!(f.ty, FieldType::String, "{}", f.name);
            assert_eq!(f.cardinality, Cardinality::High, "{}", f.name);
        }
    }

    #[test]
    fn is_secret_name_agrees_with_table() {
        for f in fields() {
            let secret = f.sensitivity == Sensitivity::Secret;
            for key in std::iter::once(f.name).chain(f.aliases.iter().copied()) {
                assert_eq!(is_secret_name(key), secret, "{key}");
            }
        }
    }

    #[test]
    fn is_secret_name_heuristic() {
        for name in [
            "db_password",
            "DB_PASSWORD",
            "user_passwd",
            "ftp_pwd",
            "client_secret_value",
            "bearer_token",
            "x_api_key",
            "ApiKey",
            "x-api-key",
            "Authorization_Value",
            "auth_header",
            "aws_credentials",
            "private_key_pem",
            "set_cookie",
            "session_key",
            "aws_access_key_id",
            "request_signature",
            "account_number",
            "beneficiary_accountNumber",
            "bank_account_no",
            "card_number",
            "cardNumber",
            "payout_iban",
            "cvv2",
            "card_cvc",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "cl_ord_id",
            "symbol",
            "my_field",
            "tok",
            "author",
            "session_id",
            "account",
            "account_id",
            "accounting_period",
            "card_type",
            "bank_name",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn audit_actions() {
        for action in AUDIT_ACTIONS {
            assert!(is_audit_action(action));
        }
        assert_eq!(AUDIT_ACTIONS.len(), 9);
        assert!(is_audit_action("kill_switch"));
        assert!(!is_audit_action("Order_Filled"));
        assert!(!is_audit_action("heartbeat"));
        assert!(!is_audit_action(""));
    }

    #[test]
    fn field_type_accepts() {
        use ValueKind::{Bool, F64, I64, Str, U64};
        let all = [Str, I64, U64, F64, Bool];
        let table: &[(FieldType, &[ValueKind])] = &[
            (T::String, &[Str]),
            (T::I64, &[I64, U64]),
            (T::U64, &[U64, I64]),
            (T::F64, &[F64, I64, U64]),
            (T::Bool, &[Bool]),
            (T::Timestamp, &[Str, I64, U64]),
            (T::Number, &[I64, U64, F64]),
        ];
        for &(ty, accepted) in table {
            for kind in all {
                assert_eq!(
                    ty.accepts(kind),
                    accepted.contains(&kind),
                    "{} <- {}",
                    ty.name(),
                    kind.name()
                );
            }
        }
    }

    #[test]
    fn type_and_class_names() {
        let names: Vec<&str> = [
            T::String,
            T::I64,
            T::U64,
            T::F64,
            T::Bool,
            T::Timestamp,
            T::Number,
        ]
        .into_iter()
        .map(FieldType::name)
        .collect();
        assert_eq!(
            names,
            ["string", "i64", "u64", "f64", "bool", "timestamp", "number"]
        );
        assert_eq!(ValueKind::Str.name(), "str");
        assert_eq!(Low.name(), "low");
        assert_eq!(Medium.name(), "medium");
        assert_eq!(High.name(), "high");
    }

    #[test]
    fn cardinality_order_and_labels() {
        assert!(Low < Medium && Medium < High);
        assert!(Low.allowed_as_metric_label());
        assert!(Medium.allowed_as_metric_label());
        assert!(!High.allowed_as_metric_label());
    }

    #[test]
    fn suggest_typos() {
        assert_eq!(suggest("cl_ordid"), Some("cl_ord_id"));
        assert_eq!(suggest("zzzzzz"), None);
        // Transposition counts as one edit.
        assert_eq!(suggest("smybol"), Some("symbol"));
        // Case-insensitive.
        assert_eq!(suggest("CL_ORD_ID"), Some("cl_ord_id"));
        assert_eq!(suggest("Venue"), Some("venue"));
        // Canonical names are candidates too.
        assert_eq!(suggest("order.cl_ordid"), Some("order.cl_ord_id"));
        assert_eq!(suggest("instrument.symbl"), Some("instrument.symbol"));
        // Short names allow a single edit.
        assert_eq!(suggest("sid"), Some("side"));
        assert_eq!(suggest("qtx"), Some("qty"));
        assert_eq!(suggest("abc"), None);
        assert_eq!(suggest(""), None);
    }

    #[test]
    fn suggest_threshold() {
        // len 10 -> max distance 3.
        assert_eq!(suggest("clx_ordxid"), Some("cl_ord_id"));
        // len 6 -> max distance 2; "price" is 2 edits away from "prxcex".
        assert_eq!(suggest("prxcex"), Some("price"));
        assert_eq!(suggest("pxxcex"), None);
    }

    #[test]
    fn osa_distance_basics() {
        let d = |a: &str, b: &str| {
            osa_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("", ""), 0);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("ab", "ba"), 1);
        assert_eq!(d("ca", "abc"), 3);
        assert_eq!(d("cl_ordid", "cl_ord_id"), 1);
    }
}
