//! Lines that do not come from this SDK — JSON lines and logfmt from child processes or
//! sidecars, and FIX messages from a gateway — parsed into records of the log schema, so the
//! order flow of a FIX session is searchable by client order id like everything else.
//!
//! [`parse_line`] only parses; [`TelemetryGuard::ingest_line`](crate::TelemetryGuard::ingest_line)
//! sends the result through the pipeline, where it gets the same enrichment and redaction as
//! any record (a FIX `Account` is pseudonymised, a `Password` redacted).
//!
//! ```
//! use stockbot_telemetry::ingest::{LineFormat, ParsedValue, parse_line};
//!
//! let fix = "8=FIX.4.4|9=120|35=D|49=BROKER|56=XNAS|11=C-1001|55=AAPL|54=1|38=100|44=189.25|40=2|59=0|1=ACC-77|10=123|";
//! let parsed = parse_line(fix);
//! assert_eq!(parsed.format, LineFormat::Fix);
//! assert_eq!(parsed.message, "FIX NewOrderSingle");
//! assert_eq!(parsed.field("order.cl_ord_id"), Some(&ParsedValue::Str("C-1001".into())));
//! assert_eq!(parsed.field("order.side"), Some(&ParsedValue::Str("buy".into())));
//! assert_eq!(parsed.field("order.quantity"), Some(&ParsedValue::F64(100.0)));
//!
//! let logfmt = parse_line(r#"level=warn msg="venue slow" venue=XNAS latency_ms=12"#);
//! assert_eq!(logfmt.format, LineFormat::Logfmt);
//! assert_eq!(logfmt.level, Some(tracing::Level::WARN));
//! assert_eq!(logfmt.message, "venue slow");
//! ```

use std::fmt::Write as _;

use tracing::Level;

/// What a line turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// A JSON object.
    Json,
    /// `key=value` pairs (values may be double-quoted).
    Logfmt,
    /// A FIX message (`8=FIX…`, fields separated by SOH or `|`).
    Fix,
    /// Anything else: the whole line is the message.
    Plain,
}

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedValue {
    /// Text.
    Str(String),
    /// An integer.
    I64(i64),
    /// A number with a fraction (or a FIX quantity or price).
    F64(f64),
    /// A flag.
    Bool(bool),
}

/// A parsed line: schema field names (canonical or aliases the pipeline maps), values, level
/// and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// The format recognised.
    pub format: LineFormat,
    /// The level, when the line carries one.
    pub level: Option<Level>,
    /// The message (for FIX: `FIX <MsgType name>`).
    pub message: String,
    /// The fields, in line order.
    pub fields: Vec<(String, ParsedValue)>,
}

impl ParsedLine {
    /// The first field named `name`.
    pub fn field(&self, name: &str) -> Option<&ParsedValue> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// A `'static` field name for the pipeline: the schema's own, or one of at most 1024 other
/// names kept for the process's lifetime (`None` past that bound).
pub(crate) fn field_name(name: &str) -> Option<&'static str> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static OTHERS: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    const MAX_OTHER_NAMES: usize = 1024;
    if let Some(def) = stockbot_telemetry_conventions::lookup(name) {
        // Aliases map to their canonical name downstream; keep the canonical one here.
        return Some(def.name);
    }
    let mut others = OTHERS.lock().unwrap_or_else(|p| p.into_inner());
    let others = others.get_or_insert_with(HashSet::new);
    if let Some(known) = others.get(name) {
        return Some(known);
    }
    if others.len() >= MAX_OTHER_NAMES || name.is_empty() || name.len() > 128 {
        return None;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    others.insert(leaked);
    Some(leaked)
}

/// Recognises and parses one line (never fails: an unrecognised line is [`LineFormat::Plain`]).
pub fn parse_line(line: &str) -> ParsedLine {
    let line = line.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim_start();
    if trimmed.starts_with("8=FIX") {
        return parse_fix(trimmed);
    }
    if trimmed.starts_with('{')
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_str(trimmed)
    {
        return parse_json(map);
    }
    if let Some(parsed) = parse_logfmt(trimmed) {
        return parsed;
    }
    ParsedLine {
        format: LineFormat::Plain,
        level: None,
        message: line.to_owned(),
        fields: Vec::new(),
    }
}

fn level_of(s: &str) -> Option<Level> {
    // pino / bunyan numeric levels.
    if let Ok(n) = s.trim().parse::<u32>() {
        return Some(match n {
            0..=10 => Level::TRACE,
            11..=20 => Level::DEBUG,
            21..=30 => Level::INFO,
            31..=40 => Level::WARN,
            _ => Level::ERROR,
        });
    }
    match s.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" | "information" | "notice" => Some(Level::INFO),
        "warn" | "warning" => Some(Level::WARN),
        "error" | "err" | "fatal" | "critical" | "crit" | "panic" => Some(Level::ERROR),
        _ => None,
    }
}

fn scalar(s: &str) -> ParsedValue {
    if let Ok(i) = s.parse::<i64>() {
        return ParsedValue::I64(i);
    }
    if s.contains('.')
        && let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return ParsedValue::F64(f);
    }
    match s {
        "true" => ParsedValue::Bool(true),
        "false" => ParsedValue::Bool(false),
        _ => ParsedValue::Str(s.to_owned()),
    }
}

/// Takes level and message keys out of `fields`.
fn finish(format: LineFormat, mut fields: Vec<(String, ParsedValue)>) -> ParsedLine {
    let take = |fields: &mut Vec<(String, ParsedValue)>, keys: &[&str]| {
        let i = fields
            .iter()
            .position(|(k, _)| keys.contains(&k.as_str()))?;
        match fields.remove(i).1 {
            ParsedValue::Str(s) => Some(s),
            ParsedValue::I64(n) => Some(n.to_string()),
            ParsedValue::F64(f) => Some(f.to_string()),
            ParsedValue::Bool(b) => Some(b.to_string()),
        }
    };
    let level =
        take(&mut fields, &["level", "lvl", "log.level", "severity"]).and_then(|l| level_of(&l));
    let message = take(&mut fields, &["msg", "message"]).unwrap_or_default();
    ParsedLine {
        format,
        level,
        message,
        fields,
    }
}

fn flatten(prefix: &str, value: serde_json::Value, out: &mut Vec<(String, ParsedValue)>) {
    use serde_json::Value as J;
    match value {
        J::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        J::String(s) => out.push((prefix.to_owned(), ParsedValue::Str(s))),
        J::Bool(b) => out.push((prefix.to_owned(), ParsedValue::Bool(b))),
        J::Number(n) => out.push((
            prefix.to_owned(),
            match n.as_i64() {
                Some(i) => ParsedValue::I64(i),
                None => ParsedValue::F64(n.as_f64().unwrap_or_default()),
            },
        )),
        J::Null => {}
        other => out.push((prefix.to_owned(), ParsedValue::Str(other.to_string()))),
    }
}

fn parse_json(map: serde_json::Map<String, serde_json::Value>) -> ParsedLine {
    let mut fields = Vec::new();
    flatten("", serde_json::Value::Object(map), &mut fields);
    finish(LineFormat::Json, fields)
}

/// `key=value key2="quoted value"`; `None` unless every token is a pair with a plain key.
fn parse_logfmt(line: &str) -> Option<ParsedLine> {
    let mut fields = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = &rest[..eq];
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return None;
        }
        rest = &rest[eq + 1..];
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(match n {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end? + 1..];
            ParsedValue::Str(value)
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let v = scalar(&rest[..end]);
            rest = &rest[end..];
            v
        };
        fields.push((key.to_owned(), value));
        rest = rest.trim_start();
    }
    (!fields.is_empty()).then(|| finish(LineFormat::Logfmt, fields))
}

/// FIX tags the parser names, with the schema field (canonical name or alias) they go to.
/// Sensitive tags map to names the pipeline redacts (names with a secret marker:
/// `fix.password`, `fix.signature`, … for Password, NewPassword, RawData, Signature,
/// SecureData, EncryptedPassword, EncryptedNewPassword) or pseudonymises (`account`: the first
/// of Account, AllocAccount, ClearingAccount; later ones are dropped). Other tags, and repeated
/// ones, go together into `fix.other_tags` (`tag=value|…`).
const FIX_TAGS: &[(u32, &str)] = &[
    (1, "account"),
    (6, "fix.avg_px"),
    (11, "order.cl_ord_id"),
    (14, "fix.cum_qty"),
    (17, "fill.id"),
    (31, "fix.last_px"),
    (32, "fix.last_qty"),
    (34, "fix.msg_seq_num"),
    (35, "fix.msg_type"),
    (37, "order.id"),
    (38, "order.quantity"),
    (39, "order.status"),
    (40, "order.type"),
    (41, "order.orig_cl_ord_id"),
    (44, "order.price"),
    (49, "fix.sender_comp_id"),
    (52, "fix.sending_time"),
    (54, "order.side"),
    (55, "instrument.symbol"),
    (56, "fix.target_comp_id"),
    (58, "fix.text"),
    (59, "order.time_in_force"),
    (60, "event.venue_time"),
    (79, "account"),
    (89, "fix.signature"),
    (91, "fix.secure_data_secret"),
    (96, "fix.raw_data_secret"),
    (100, "venue.name"),
    (103, "fix.ord_rej_reason"),
    (150, "fix.exec_type"),
    (151, "fix.leaves_qty"),
    (440, "account"),
    (553, "fix.username"),
    (554, "fix.password"),
    (925, "fix.new_password"),
    (1402, "fix.encrypted_password"),
    (1404, "fix.encrypted_new_password"),
];

/// Tags that are framing, not content.
const FIX_FRAMING: [u32; 3] = [8, 9, 10];

fn msg_type_name(v: &str) -> &str {
    match v {
        "0" => "Heartbeat",
        "1" => "TestRequest",
        "3" => "Reject",
        "5" => "Logout",
        "8" => "ExecutionReport",
        "9" => "OrderCancelReject",
        "A" => "Logon",
        "D" => "NewOrderSingle",
        "F" => "OrderCancelRequest",
        "G" => "OrderCancelReplaceRequest",
        "H" => "OrderStatusRequest",
        "j" => "BusinessMessageReject",
        other => other,
    }
}

/// Enumerated FIX values in the schema's words.
fn fix_value(tag: u32, v: &str) -> ParsedValue {
    let named = match (tag, v) {
        (54, "1") => "buy",
        (54, "2") => "sell",
        (54, "5") => "sell_short",
        (40, "1") => "market",
        (40, "2") => "limit",
        (40, "3") => "stop",
        (40, "4") => "stop_limit",
        (59, "0") => "day",
        (59, "1") => "gtc",
        (59, "3") => "ioc",
        (59, "4") => "fok",
        (39 | 150, "0") => "new",
        (39 | 150, "1") => "partially_filled",
        (39 | 150, "2") => "filled",
        (39 | 150, "4") => "cancelled",
        (39 | 150, "5") => "replaced",
        (39 | 150, "8") => "rejected",
        (39 | 150, "F") => "trade",
        (35, t) => msg_type_name(t),
        _ => "",
    };
    if !named.is_empty() {
        return ParsedValue::Str(named.to_owned());
    }
    match tag {
        6 | 14 | 31 | 32 | 38 | 44 | 151 => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map_or_else(|| ParsedValue::Str(v.to_owned()), ParsedValue::F64),
        34 => v
            .parse::<i64>()
            .map_or_else(|_| ParsedValue::Str(v.to_owned()), ParsedValue::I64),
        _ => ParsedValue::Str(v.to_owned()),
    }
}

fn parse_fix(line: &str) -> ParsedLine {
    let separator = if line.contains('\u{1}') { '\u{1}' } else { '|' };
    let mut fields = Vec::new();
    let mut malformed = 0usize;
    let mut msg_type = String::new();
    let mut other = String::new();
    for part in line.split(separator).filter(|p| !p.is_empty()) {
        let Some((tag, value)) = part.split_once('=') else {
            malformed += 1;
            continue;
        };
        let Ok(tag) = tag.trim().parse::<u32>() else {
            malformed += 1;
            continue;
        };
        if FIX_FRAMING.contains(&tag) {
            continue;
        }
        if tag == 35 {
            msg_type = msg_type_name(value).to_owned();
        }
        match FIX_TAGS.binary_search_by_key(&tag, |(t, _)| *t) {
            // One field per name: a repeated tag (repeating groups) goes with the others,
            // except a second account tag, which is dropped (only `account` is pseudonymised).
            Ok(i) if fields.iter().any(|(k, _)| k == FIX_TAGS[i].1) => {
                if FIX_TAGS[i].1 != "account" {
                    if !other.is_empty() {
                        other.push('|');
                    }
                    let _ = write!(other, "{tag}={value}");
                }
            }
            Ok(i) => fields.push((FIX_TAGS[i].1.to_owned(), fix_value(tag, value))),
            // Other tags share one field (a field name per tag would let one message use up
            // the names a process may create); the value is still scanned for secrets.
            Err(_) => {
                if !other.is_empty() {
                    other.push('|');
                }
                let _ = write!(other, "{tag}={value}");
            }
        }
    }
    if !other.is_empty() {
        fields.push(("fix.other_tags".into(), ParsedValue::Str(other)));
    }
    if malformed > 0 {
        fields.push((
            "fix.malformed_fields".into(),
            ParsedValue::I64(malformed as i64),
        ));
    }
    let level = match fields.iter().find(|(k, _)| k == "order.status") {
        Some((_, ParsedValue::Str(s))) if s == "rejected" => Level::WARN,
        _ if msg_type == "Reject" || msg_type == "BusinessMessageReject" => Level::WARN,
        _ => Level::INFO,
    };
    let mut message = String::from("FIX");
    if !msg_type.is_empty() {
        let _ = write!(message, " {msg_type}");
    }
    ParsedLine {
        format: LineFormat::Fix,
        level: Some(level),
        message,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_tags_are_sorted_for_the_lookup() {
        assert!(FIX_TAGS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn fix_messages_with_soh_or_pipes_and_malformed_ones() {
        let soh = "8=FIX.4.4\u{1}9=150\u{1}35=8\u{1}49=XNAS\u{1}56=BROKER\u{1}11=C-1002\u{1}41=C-1001\u{1}37=V-9\u{1}17=E-1\u{1}150=F\u{1}39=1\u{1}55=MSFT\u{1}54=2\u{1}32=50\u{1}31=410.5\u{1}151=50\u{1}10=201\u{1}";
        let p = parse_line(soh);
        assert_eq!(p.format, LineFormat::Fix);
        assert_eq!(p.message, "FIX ExecutionReport");
        assert_eq!(
            p.field("order.orig_cl_ord_id"),
            Some(&ParsedValue::Str("C-1001".into()))
        );
        assert_eq!(
            p.field("order.status"),
            Some(&ParsedValue::Str("partially_filled".into()))
        );
        assert_eq!(p.field("fix.last_px"), Some(&ParsedValue::F64(410.5)));
        assert_eq!(
            p.field("order.side"),
            Some(&ParsedValue::Str("sell".into()))
        );
        assert!(p.field("fix.other_tags").is_none(), "framing dropped");

        let reject = parse_line("8=FIX.4.2|35=8|11=C-9|39=8|58=price band|9999=x|garbage|=1|");
        assert_eq!(reject.level, Some(Level::WARN));
        assert_eq!(
            reject.field("fix.other_tags"),
            Some(&ParsedValue::Str("9999=x".into()))
        );
        assert_eq!(
            reject.field("fix.malformed_fields"),
            Some(&ParsedValue::I64(2))
        );

        let logon = parse_line("8=FIX.4.4|35=A|553=trader1|554=hunter2|");
        assert_eq!(
            logon.field("fix.password"),
            Some(&ParsedValue::Str("hunter2".into())),
            "named `password`: the pipeline redacts it"
        );
    }

    #[test]
    fn json_logfmt_and_plain_lines() {
        let j = parse_line(
            r#"{"level":"error","msg":"disk full","ctx":{"path":"/data","free":0},"ok":false,"n":null}"#,
        );
        assert_eq!(j.format, LineFormat::Json);
        assert_eq!(j.level, Some(Level::ERROR));
        assert_eq!(j.message, "disk full");
        let pino = parse_line(r#"{"level":40,"msg":5}"#);
        assert_eq!(
            (pino.level, pino.message.as_str()),
            (Some(Level::WARN), "5")
        );
        assert_eq!(j.field("ctx.path"), Some(&ParsedValue::Str("/data".into())));
        assert_eq!(j.field("ctx.free"), Some(&ParsedValue::I64(0)));
        assert!(j.field("n").is_none());

        let l = parse_line(
            r#"ts=2024-11-23T22:13:20Z lvl=info msg="order \"C-1\" sent" cl_ord_id=C-1 qty=100 px=1.5 ok=true"#,
        );
        assert_eq!(l.format, LineFormat::Logfmt);
        assert_eq!(l.message, r#"order "C-1" sent"#);
        assert_eq!(l.field("qty"), Some(&ParsedValue::I64(100)));
        assert_eq!(l.field("px"), Some(&ParsedValue::F64(1.5)));
        assert_eq!(l.field("ok"), Some(&ParsedValue::Bool(true)));

        for plain in [
            "just words here",
            "a=b then words",
            r#"k="unterminated"#,
            "",
            "{not json",
        ] {
            let p = parse_line(plain);
            assert_eq!(p.format, LineFormat::Plain, "{plain}");
            assert_eq!(p.message, plain);
        }
    }
}
