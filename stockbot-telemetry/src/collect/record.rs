//! What the caller's thread captures: a compact copy of an event, encoded later by the worker.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use smallvec::SmallVec;
use tracing_core::field::{Field as TracingField, Visit};
use tracing_core::{Level, Metadata};

use super::span::SpanContext;

/// A string held by a record: static, or a range of the record's text arena.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Text {
    Static(&'static str),
    Range(u32, u32),
}

/// A captured field value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value {
    Str(Text),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) value: Value,
}

/// Flags of a record.
pub(crate) const AUDIT: u8 = 1;
pub(crate) const TRUNCATED: u8 = 2;
pub(crate) const INTERNAL: u8 = 4;

/// One log event as captured on the caller's thread.
#[derive(Debug)]
pub(crate) struct LogRecord {
    pub(crate) stamp: u64,
    pub(crate) level: Level,
    pub(crate) target: Text,
    pub(crate) file: Option<Text>,
    pub(crate) line: Option<u32>,
    pub(crate) message: Option<Text>,
    pub(crate) fields: SmallVec<[Field; 8]>,
    pub(crate) text: String,
    pub(crate) span: Option<Arc<SpanContext>>,
    pub(crate) thread: Option<Arc<str>>,
    pub(crate) flags: u8,
    pub(crate) sampled_away: u64,
    /// Identifies the call site (for once-per-call-site diagnostics).
    pub(crate) callsite: usize,
}

impl crate::export::pipeline::Item for LogRecord {
    fn size_bytes(&self) -> usize {
        LogRecord::size_bytes(self)
    }
    fn is_audit(&self) -> bool {
        LogRecord::is_audit(self)
    }
}

impl LogRecord {
    pub(crate) fn new(stamp: u64, meta: &'static Metadata<'static>) -> Self {
        LogRecord {
            stamp,
            level: *meta.level(),
            target: Text::Static(meta.target()),
            file: meta.file().map(Text::Static),
            line: meta.line(),
            message: None,
            fields: SmallVec::new(),
            text: String::new(),
            span: None,
            thread: None,
            flags: 0,
            sampled_away: 0,
            callsite: meta as *const Metadata<'static> as usize,
        }
    }

    /// A record created by the SDK itself (diagnostics), not by a call site.
    pub(crate) fn internal(
        stamp: u64,
        level: Level,
        target: &'static str,
        message: String,
    ) -> Self {
        let len = message.len() as u32;
        LogRecord {
            stamp,
            level,
            target: Text::Static(target),
            file: None,
            line: None,
            message: Some(Text::Range(0, len)),
            fields: SmallVec::new(),
            text: message,
            span: None,
            thread: None,
            flags: INTERNAL,
            sampled_away: 0,
            callsite: 0,
        }
    }

    pub(crate) fn text(&self, t: Text) -> &str {
        match t {
            Text::Static(s) => s,
            Text::Range(a, b) => self.text.get(a as usize..b as usize).unwrap_or(""),
        }
    }

    /// Approximate memory held, for the queue's byte bound.
    pub(crate) fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.text.capacity()
    }

    pub(crate) fn is_audit(&self) -> bool {
        self.flags & AUDIT != 0
    }

    /// Copies `value` into the arena, cut at `limit` bytes (on a char boundary) with a marker.
    pub(crate) fn copy_text(&mut self, value: &str, limit: usize) -> Text {
        let start = self.text.len();
        if value.len() <= limit {
            self.text.push_str(value);
        } else {
            let cut = cut_point(value, limit);
            self.text.push_str(&value[..cut]);
            let _ = write!(
                self.text,
                "…[truncated {} of {} bytes]",
                value.len() - cut,
                value.len()
            );
            self.flags |= TRUNCATED;
        }
        Text::Range(start as u32, self.text.len() as u32)
    }

    /// Formats `value` into the arena, stopping at `limit` bytes.
    /// (`%value` fields arrive as a `Debug` that prints with `Display`.)
    pub(crate) fn format_text(&mut self, value: &dyn fmt::Debug, limit: usize) -> Text {
        let start = self.text.len();
        let mut w = Limited {
            out: &mut self.text,
            left: limit,
            cut: false,
            straddled: false,
        };
        let _ = write!(w, "{value:?}");
        if w.cut {
            if w.straddled {
                trim_partial_token(&mut self.text, start);
            }
            self.text.push_str("…[truncated]");
            self.flags |= TRUNCATED;
        }
        Text::Range(start as u32, self.text.len() as u32)
    }

    fn format_error(&mut self, err: &(dyn std::error::Error + 'static), limit: usize) -> Text {
        let start = self.text.len();
        let mut w = Limited {
            out: &mut self.text,
            left: limit,
            cut: false,
            straddled: false,
        };
        let mut res = write!(w, "{err}");
        let mut source = err.source();
        while let (Ok(()), Some(cause)) = (res, source) {
            res = write!(w, ": {cause}");
            source = cause.source();
        }
        if w.cut {
            if w.straddled {
                trim_partial_token(&mut self.text, start);
            }
            self.text.push_str("…[truncated]");
            self.flags |= TRUNCATED;
        }
        Text::Range(start as u32, self.text.len() as u32)
    }
}

/// Characters that can belong to a secret token (card digits, keys, JWT segments).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=' | '~')
}

/// Longest partial token removed at a cut: secrets (card numbers, API keys, passwords) are
/// shorter; longer runs (blobs, hex dumps) keep their head.
const MAX_TRIMMED_TOKEN: usize = 128;

/// Where to cut `s` to at most `limit` bytes: on a character boundary, and before a token
/// that straddles the limit, so that the head of a secret (part of a card number or an API
/// key) never survives the cut where redaction can no longer recognise it.
pub(crate) fn cut_point(s: &str, limit: usize) -> usize {
    let cut = floor_char_boundary(s, limit);
    let bytes = s.as_bytes();
    let straddles = s[cut..].chars().next().is_some_and(|c| {
        is_token_char(c)
            || (matches!(c, ' ' | '-')
                && cut > 0
                && bytes[cut - 1].is_ascii_digit()
                && bytes.get(cut + 1).is_some_and(u8::is_ascii_digit))
    });
    if !straddles {
        return cut;
    }
    token_start(s, cut)
}

/// Start of the token that ends at `end` (or `end` itself when that token is longer than
/// [`MAX_TRIMMED_TOKEN`]).
fn token_start(s: &str, end: usize) -> usize {
    // Digit groups separated by single spaces or dashes ("4111 1111 1111 1111") count as one
    // token, so a cut card number loses all its groups.
    let bytes = s.as_bytes();
    let mut start = end;
    for (i, c) in s[..end].char_indices().rev() {
        let joins_digits = matches!(c, ' ' | '-')
            && i > 0
            && bytes[i - 1].is_ascii_digit()
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !(is_token_char(c) || joins_digits) {
            break;
        }
        start = i;
        if end - start > MAX_TRIMMED_TOKEN {
            return end;
        }
    }
    start
}

/// After a cut of formatted text at the end of `text` (starting at `start`), removes a
/// trailing partial token (see [`cut_point`]).
fn trim_partial_token(text: &mut String, start: usize) {
    let keep = token_start(&text[start..], text.len() - start);
    text.truncate(start + keep);
}

/// A `fmt::Write` that stops (with an error, which ends the formatting) after `left` bytes.
struct Limited<'a> {
    out: &'a mut String,
    left: usize,
    cut: bool,
    /// The cut fell inside a token (see [`cut_point`]).
    straddled: bool,
}

impl fmt::Write for Limited<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() <= self.left {
            self.out.push_str(s);
            self.left -= s.len();
            Ok(())
        } else {
            let cut = floor_char_boundary(s, self.left);
            self.out.push_str(&s[..cut]);
            self.left = 0;
            self.cut = true;
            self.straddled = s[cut..].chars().next().is_some_and(is_token_char);
            Err(fmt::Error)
        }
    }
}

pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Visits an event's fields into a record.
pub(crate) struct EventVisitor<'a> {
    pub(crate) record: &'a mut LogRecord,
    pub(crate) limit: usize,
    /// The event comes from the `log` bridge: its `log.*` fields are metadata, not fields.
    pub(crate) bridged: bool,
}

impl EventVisitor<'_> {
    fn push(&mut self, field: &TracingField, value: Value) {
        if self.bridged && field.name().starts_with("log.") {
            return;
        }
        self.record.fields.push(Field {
            name: field.name(),
            value,
        });
    }
}

impl Visit for EventVisitor<'_> {
    fn record_f64(&mut self, field: &TracingField, value: f64) {
        self.push(field, Value::F64(value));
    }
    fn record_i64(&mut self, field: &TracingField, value: i64) {
        self.push(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &TracingField, value: u64) {
        self.push(field, Value::U64(value));
    }
    fn record_i128(&mut self, field: &TracingField, value: i128) {
        match i64::try_from(value) {
            Ok(v) => self.push(field, Value::I64(v)),
            Err(_) => self.record_debug(field, &value),
        }
    }
    fn record_u128(&mut self, field: &TracingField, value: u128) {
        match u64::try_from(value) {
            Ok(v) => self.push(field, Value::U64(v)),
            Err(_) => self.record_debug(field, &value),
        }
    }
    fn record_bool(&mut self, field: &TracingField, value: bool) {
        if field.name() == "audit" && value {
            self.record.flags |= AUDIT;
        }
        self.push(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &TracingField, value: &str) {
        if self.bridged && field.name().starts_with("log.") {
            return;
        }
        let t = self.record.copy_text(value, self.limit);
        if field.name() == "message" {
            self.record.message = Some(t);
        } else {
            self.push(field, Value::Str(t));
        }
    }
    fn record_error(&mut self, field: &TracingField, value: &(dyn std::error::Error + 'static)) {
        let t = self.record.format_error(value, self.limit);
        self.push(field, Value::Str(t));
    }
    fn record_debug(&mut self, field: &TracingField, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.bridged && name.starts_with("log.") {
            return;
        }
        let t = self.record.format_text(value, self.limit);
        if name == "message" {
            self.record.message = Some(t);
        } else {
            self.push(field, Value::Str(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CS: tracing_core::callsite::DefaultCallsite =
        tracing_core::callsite::DefaultCallsite::new(&META);
    static META: Metadata<'static> = tracing_core::metadata!(
        name: "test",
        target: "t",
        level: Level::INFO,
        fields: &[],
        callsite: &CS,
        kind: tracing_core::metadata::Kind::EVENT,
    );

    #[test]
    fn truncates_on_char_boundaries_with_a_marker() {
        let mut r = LogRecord::new(0, &META);
        let big = "é".repeat(100);
        let t = r.copy_text(&big, 5);
        assert_eq!(r.text(t), "éé…[truncated 196 of 200 bytes]");
        assert!(r.flags & TRUNCATED != 0);
        struct Huge;
        impl fmt::Debug for Huge {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for _ in 0..1_000_000 {
                    f.write_str("ab")?;
                }
                Ok(())
            }
        }
        let t = r.format_text(&Huge, 300);
        assert_eq!(
            r.text(t),
            format!("{}…[truncated]", "ab".repeat(150)),
            "a long run keeps its head"
        );
        struct Words;
        impl fmt::Debug for Words {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("card 4111111111111111 and more")
            }
        }
        let t = r.format_text(&Words, 10);
        assert_eq!(r.text(t), "card …[truncated]", "a cut token is dropped");
    }

    #[test]
    fn a_cut_never_leaves_the_head_of_a_token() {
        assert_eq!(cut_point("card 4111111111111111 end", 10), 5);
        assert_eq!(cut_point("abc def", 5), 4);
        assert_eq!(cut_point("abc def", 3), 3);
        assert_eq!(cut_point("4111111111111111", 8), 0);
        let mut r = LogRecord::new(0, &META);
        let t = r.copy_text("paid with 4111 1111 1111 1111", 17);
        assert_eq!(r.text(t), "paid with …[truncated 19 of 29 bytes]");
    }

    #[test]
    fn error_chains_are_flattened() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("send failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let mut r = LogRecord::new(0, &META);
        let e = Outer(std::io::Error::other("connection reset"));
        let t = r.format_error(&e, 1000);
        assert_eq!(r.text(t), "send failed: connection reset");
    }
}
