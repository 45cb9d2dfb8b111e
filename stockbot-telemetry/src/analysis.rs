//! Latency analysis and service dependency mapping over a set of finished spans.
//!
//! The span pipeline writes every finished span as one JSON line ([`to_json_line`]); this module
//! reads such files back ([`read_json_lines`], which skips and counts malformed lines) and answers
//! the questions asked while chasing latency in the trading path:
//!
//! * [`stage_breakdown`] — per `(service, name)` stage: count, errors, p50/p99/max and the *self*
//!   time (time in the stage not covered by its children), rendered by [`stages_table`];
//! * [`slowest`] — the slowest individual spans;
//! * [`critical_path`] — the chain of spans that gated the end of one trace;
//! * [`dependency_graph`] — which service calls which, how often, how often it failed and how
//!   long the calls took, rendered by [`graph_to_dot`] (Graphviz) or [`graph_to_mermaid`].
//!
//! Every function accepts arbitrary input without panicking: spans whose parent is missing are
//! treated as roots, cycles in parent links are walked at most once, a span that ends before it
//! starts has a zero duration, and when several spans share a `(trace_id, span_id)` the first
//! one in the input is the one parent links resolve to (each of them is still counted).
//!
//! ```
//! use stockbot_telemetry::analysis::{self, FinishedSpan, SpanKind};
//!
//! let server = FinishedSpan {
//!     trace_id: 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c,
//!     span_id: 1,
//!     parent_span_id: None,
//!     name: "route_order".to_owned(),
//!     service: "order-router".to_owned(),
//!     kind: SpanKind::Server,
//!     start_unix_nanos: 1_000,
//!     end_unix_nanos: 5_000,
//!     error: false,
//!     attributes: vec![("order.cl_ord_id".to_owned(), "C-1".to_owned())],
//!     ..Default::default()
//! };
//! let venue = FinishedSpan {
//!     span_id: 2,
//!     parent_span_id: Some(1),
//!     name: "send_to_venue".to_owned(),
//!     kind: SpanKind::Client,
//!     start_unix_nanos: 2_000,
//!     end_unix_nanos: 4_500,
//!     attributes: vec![("peer.service".to_owned(), "exchange".to_owned())],
//!     ..server.clone()
//! };
//!
//! // Spans travel as JSON lines.
//! let text = format!("{}\n{}\n", analysis::to_json_line(&server), analysis::to_json_line(&venue));
//! let (spans, malformed) = analysis::read_json_lines(&text);
//! assert_eq!(malformed, 0);
//! assert_eq!(spans, vec![server, venue]);
//!
//! let stages = analysis::stage_breakdown(&spans);
//! assert_eq!(stages[0].name, "route_order");
//! assert_eq!(stages[0].self_nanos, 1_500); // 4µs minus the 2.5µs spent calling the venue
//! assert_eq!(analysis::format_duration(stages[0].p99_nanos), "4.0µs");
//!
//! let path = analysis::critical_path(&spans, spans[0].trace_id);
//! assert_eq!(path.len(), 2);
//!
//! // The venue is not instrumented: its name comes from the client span's `peer.service`.
//! let edges = analysis::dependency_graph(&spans);
//! assert_eq!(edges.len(), 1);
//! assert_eq!((edges[0].caller.as_str(), edges[0].callee.as_str()), ("order-router", "exchange"));
//!
//! println!("{}", analysis::stages_table(&stages));
//! println!("{}", analysis::graph_to_dot(&edges));
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------------------
// Input type
// ---------------------------------------------------------------------------------------------

/// Kind of a span (OpenTelemetry semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    /// An operation internal to a service (the default).
    #[default]
    Internal,
    /// The server side of a synchronous request (e.g. handling an RPC).
    Server,
    /// The client side of a synchronous request (e.g. sending an RPC).
    Client,
    /// The sending side of an asynchronous message.
    Producer,
    /// The receiving side of an asynchronous message.
    Consumer,
}

impl SpanKind {
    /// The lowercase name used in JSON lines: `"internal"`, `"server"`, `"client"`,
    /// `"producer"` or `"consumer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }

    /// Parses the name produced by [`SpanKind::as_str`] (exact, lowercase); `None` otherwise.
    pub fn parse(s: &str) -> Option<SpanKind> {
        match s {
            "internal" => Some(Self::Internal),
            "server" => Some(Self::Server),
            "client" => Some(Self::Client),
            "producer" => Some(Self::Producer),
            "consumer" => Some(Self::Consumer),
            _ => None,
        }
    }

    /// Whether a span of this kind calls out to another service.
    fn is_outgoing(self) -> bool {
        matches!(self, Self::Client | Self::Producer)
    }

    /// Whether a span of this kind handles a call from another service.
    fn is_incoming(self) -> bool {
        matches!(self, Self::Server | Self::Consumer)
    }
}

/// An event recorded inside a span: a log event of a recorded span, with its fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpanEvent {
    /// The event's message.
    pub name: String,
    /// When it happened, nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
    /// Its fields (string form, schema names, redacted), and `level`.
    pub attributes: Vec<(String, String)>,
}

impl SpanEvent {
    /// The value of the first attribute named `key`, if any.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A link from a span to another span (of the same trace or another one): `follows_from`, or
/// [`add_link`](crate::add_link) for an order's cancel/replace chain across traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SpanLink {
    /// The linked span's trace.
    pub trace_id: u128,
    /// The linked span.
    pub span_id: u64,
}

/// A finished span, as analysed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FinishedSpan {
    /// The trace the span belongs to (W3C trace id).
    pub trace_id: u128,
    /// The span's id, unique within its trace.
    pub span_id: u64,
    /// The id of the parent span in the same trace; `None` for a root span.
    pub parent_span_id: Option<u64>,
    /// The operation name, e.g. `"route_order"`.
    pub name: String,
    /// The name of the service that recorded the span, e.g. `"order-router"`.
    pub service: String,
    /// The span's kind.
    pub kind: SpanKind,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// Whether the span recorded an error status.
    pub error: bool,
    /// A few attributes (string form), e.g. ("order.cl_ord_id", "C-1"), ("peer.service", "exchange").
    pub attributes: Vec<(String, String)>,
    /// The status description: the first error event's message; empty when none.
    pub status_message: String,
    /// The W3C `tracestate` the trace arrived with; empty when none.
    pub trace_state: String,
    /// Events recorded inside the span, in order.
    pub events: Vec<SpanEvent>,
    /// Links to other spans.
    pub links: Vec<SpanLink>,
    /// Attributes, events and links not kept because of `traces.limits`.
    pub dropped: DroppedCounts,
}

/// How much of a span its limits cut off (OTLP's `dropped_*_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DroppedCounts {
    /// Attributes over `max_attributes`.
    pub attributes: u32,
    /// Events over `max_events`.
    pub events: u32,
    /// Links over `max_links`.
    pub links: u32,
}

impl FinishedSpan {
    /// The first event named `name`, if any.
    pub fn event(&self, name: &str) -> Option<&SpanEvent> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The span's duration in nanoseconds; zero when it ends before it starts.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    /// The value of the first attribute named `key`, if any.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The end time used for ordering: never before the start.
    fn effective_end(&self) -> u64 {
        self.end_unix_nanos.max(self.start_unix_nanos)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON lines
// ---------------------------------------------------------------------------------------------

/// Deepest nesting of unknown JSON values that the reader skips over.
const MAX_JSON_DEPTH: usize = 64;

/// Encodes one span as a single JSON line (no trailing newline).
///
/// Ids are lowercase hex (32 digits for the trace id, 16 for span ids), times are integers and
/// attributes become a JSON object whose members keep the order (and any duplicates) of
/// [`FinishedSpan::attributes`]. Control characters, U+2028 and U+2029 are written as `\uXXXX`
/// escapes, so the line never contains a raw line break.
pub fn to_json_line(span: &FinishedSpan) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "{{\"trace_id\":\"{:032x}\",\"span_id\":\"{:016x}\",\"parent_span_id\":",
        span.trace_id, span.span_id
    );
    match span.parent_span_id {
        Some(parent) => {
            let _ = write!(out, "\"{parent:016x}\"");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"name\":");
    push_json_string(&mut out, &span.name);
    out.push_str(",\"service\":");
    push_json_string(&mut out, &span.service);
    let _ = write!(
        out,
        ",\"kind\":\"{}\",\"start_unix_nanos\":{},\"end_unix_nanos\":{},\"error\":{},\"attributes\":{{",
        span.kind.as_str(),
        span.start_unix_nanos,
        span.end_unix_nanos,
        span.error
    );
    for (i, (key, value)) in span.attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, key);
        out.push(':');
        push_json_string(&mut out, value);
    }
    out.push('}');
    if !span.status_message.is_empty() {
        out.push_str(",\"status_message\":");
        push_json_string(&mut out, &span.status_message);
    }
    if !span.trace_state.is_empty() {
        out.push_str(",\"trace_state\":");
        push_json_string(&mut out, &span.trace_state);
    }
    if !span.events.is_empty() {
        out.push_str(",\"events\":[");
        for (i, e) in span.events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            push_json_string(&mut out, &e.name);
            let _ = write!(out, ",\"unix_nanos\":{},\"attributes\":{{", e.unix_nanos);
            for (j, (key, value)) in e.attributes.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, key);
                out.push(':');
                push_json_string(&mut out, value);
            }
            out.push_str("}}");
        }
        out.push(']');
    }
    if !span.links.is_empty() {
        out.push_str(",\"links\":[");
        for (i, l) in span.links.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"trace_id\":\"{:032x}\",\"span_id\":\"{:016x}\"}}",
                l.trace_id, l.span_id
            );
        }
        out.push(']');
    }
    let d = span.dropped;
    if d != DroppedCounts::default() {
        let _ = write!(
            out,
            ",\"dropped_attributes_count\":{},\"dropped_events_count\":{},\"dropped_links_count\":{}",
            d.attributes, d.events, d.links
        );
    }
    out.push('}');
    out
}

/// Decodes one JSON line written by [`to_json_line`]; `None` if the line is malformed.
///
/// The reader accepts any JSON whitespace, escapes (`\uXXXX` including surrogate pairs) and
/// upper- or lowercase hex ids, but requires exactly 32 hex digits for `trace_id` and 16 for
/// `span_id` / `parent_span_id`, non-negative integer times that fit in a `u64`, and a known
/// `kind`. `trace_id`, `span_id`, `name`, `service`, `kind`, `start_unix_nanos` and
/// `end_unix_nanos` are required; a missing `parent_span_id` means no parent, a missing `error`
/// means `false` and missing `attributes` means none; `status_message`, `trace_state`,
/// `events` (`[{"name", "unix_nanos", "attributes"}]`), `links` (`[{"trace_id", "span_id"}]`)
/// and the `dropped_*_count` members are optional too. Attribute values may also be numbers or
/// booleans (kept as their JSON text); `null` attribute values are dropped. Unknown members are
/// ignored; a known member given twice makes the line malformed, as does anything but
/// whitespace after the object.
pub fn parse_json_line(line: &str) -> Option<FinishedSpan> {
    let mut c = Cursor::new(line);
    let mut trace_id = None;
    let mut span_id = None;
    let mut parent_span_id: Option<Option<u64>> = None;
    let mut name = None;
    let mut service = None;
    let mut kind = None;
    let mut start = None;
    let mut end = None;
    let mut error = None;
    let mut attributes: Option<Vec<(String, String)>> = None;
    let mut status_message = None;
    let mut trace_state = None;
    let mut events = None;
    let mut links = None;
    let mut dropped = [None; 3];

    c.expect(b'{')?;
    if !c.accept(b'}') {
        loop {
            let key = c.string()?;
            c.expect(b':')?;
            match key.as_str() {
                "trace_id" => set_once(&mut trace_id, parse_hex(&c.string()?, 32)?)?,
                "span_id" => set_once(&mut span_id, parse_hex_u64(&c.string()?)?)?,
                "parent_span_id" => {
                    let parent = if c.accept_literal("null") {
                        None
                    } else {
                        Some(parse_hex_u64(&c.string()?)?)
                    };
                    set_once(&mut parent_span_id, parent)?;
                }
                "name" => set_once(&mut name, c.string()?)?,
                "service" => set_once(&mut service, c.string()?)?,
                "kind" => set_once(&mut kind, SpanKind::parse(&c.string()?)?)?,
                "start_unix_nanos" => set_once(&mut start, c.u64_number()?)?,
                "end_unix_nanos" => set_once(&mut end, c.u64_number()?)?,
                "error" => {
                    let value = if c.accept_literal("true") {
                        true
                    } else if c.accept_literal("false") {
                        false
                    } else {
                        return None;
                    };
                    set_once(&mut error, value)?;
                }
                "attributes" => set_once(&mut attributes, c.attributes()?)?,
                "status_message" => set_once(&mut status_message, c.string()?)?,
                "trace_state" => set_once(&mut trace_state, c.string()?)?,
                "events" => set_once(&mut events, c.events()?)?,
                "links" => set_once(&mut links, c.links()?)?,
                "dropped_attributes_count" => set_once(&mut dropped[0], c.u32_number()?)?,
                "dropped_events_count" => set_once(&mut dropped[1], c.u32_number()?)?,
                "dropped_links_count" => set_once(&mut dropped[2], c.u32_number()?)?,
                _ => c.skip_value(0)?,
            }
            if c.accept(b',') {
                continue;
            }
            c.expect(b'}')?;
            break;
        }
    }
    c.skip_ws();
    if !c.at_end() {
        return None;
    }
    Some(FinishedSpan {
        trace_id: trace_id?,
        span_id: span_id?,
        parent_span_id: parent_span_id.unwrap_or(None),
        name: name?,
        service: service?,
        kind: kind?,
        start_unix_nanos: start?,
        end_unix_nanos: end?,
        error: error.unwrap_or(false),
        attributes: attributes.unwrap_or_default(),
        status_message: status_message.unwrap_or_default(),
        trace_state: trace_state.unwrap_or_default(),
        events: events.unwrap_or_default(),
        links: links.unwrap_or_default(),
        dropped: DroppedCounts {
            attributes: dropped[0].unwrap_or(0),
            events: dropped[1].unwrap_or(0),
            links: dropped[2].unwrap_or(0),
        },
    })
}

/// Decodes a JSON-lines text, returning the spans in input order and the number of malformed
/// lines that were skipped.
///
/// Blank (whitespace-only) lines are ignored without being counted; `\r\n` line endings and a
/// leading byte-order mark are accepted.
pub fn read_json_lines(text: &str) -> (Vec<FinishedSpan>, usize) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut spans = Vec::new();
    let mut malformed = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_json_line(line) {
            Some(span) => spans.push(span),
            None => malformed += 1,
        }
    }
    (spans, malformed)
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Stores `value` in an empty slot; `None` if the slot was already filled (duplicate member).
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// Parses exactly `width` hex digits.
fn parse_hex(s: &str, width: usize) -> Option<u128> {
    if s.len() != width || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

/// Parses a 16-digit hex span id.
fn parse_hex_u64(s: &str) -> Option<u64> {
    u64::try_from(parse_hex(s, 16)?).ok()
}

/// A minimal JSON reader over one line.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Consumes `byte` (after whitespace) if it comes next.
    fn accept(&mut self, byte: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.accept(byte).then_some(())
    }

    /// Consumes `word` (after whitespace) if it comes next.
    fn accept_literal(&mut self, word: &str) -> bool {
        self.skip_ws();
        let rest = self.text.as_bytes().get(self.pos..).unwrap_or_default();
        if rest.starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Reads a string literal, decoding escapes.
    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            match self.peek()? {
                b'"' => {
                    out.push_str(self.text.get(run..self.pos)?);
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(self.text.get(run..self.pos)?);
                    self.pos += 1;
                    let escape = self.peek()?;
                    self.pos += 1;
                    let decoded = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    out.push(decoded);
                    run = self.pos;
                }
                0x00..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
    }

    /// Reads four hex digits.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.as_bytes().get(self.pos..self.pos + 4)?;
        let mut value = 0;
        for &d in digits {
            value = value * 16 + char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(value)
    }

    /// Decodes the rest of a `\u` escape (the `\u` already consumed), joining surrogate pairs.
    fn unicode_escape(&mut self) -> Option<char> {
        let high = self.hex4()?;
        match high {
            0xD800..=0xDBFF => {
                let rest = self.text.as_bytes().get(self.pos..)?;
                if !rest.starts_with(b"\\u") {
                    return None;
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return None;
                }
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            }
            0xDC00..=0xDFFF => None,
            _ => char::from_u32(high),
        }
    }

    /// Reads a non-negative JSON integer that fits in a `u64`.
    fn u64_number(&mut self) -> Option<u64> {
        self.skip_ws();
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let digits = self.text.get(start..self.pos)?;
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        digits.parse().ok()
    }

    /// Skips over any JSON number.
    fn skip_number(&mut self) -> Option<()> {
        self.skip_ws();
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.skip_digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.require_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.require_digits()?;
        }
        Some(())
    }

    fn skip_digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Option<()> {
        let start = self.pos;
        self.skip_digits();
        (self.pos > start).then_some(())
    }

    /// Reads the attributes object.
    fn u32_number(&mut self) -> Option<u32> {
        u32::try_from(self.u64_number()?).ok()
    }

    /// `[item, ...]`, each item read by `item`.
    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut out = Vec::new();
        self.expect(b'[')?;
        if self.accept(b']') {
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            if self.accept(b',') {
                continue;
            }
            self.expect(b']')?;
            return Some(out);
        }
    }

    /// `{"key": value, ...}`, each member read by `member` (false: malformed).
    fn object(&mut self, mut member: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.accept(b'}') {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(self, &key)?;
            if self.accept(b',') {
                continue;
            }
            return self.expect(b'}');
        }
    }

    fn events(&mut self) -> Option<Vec<SpanEvent>> {
        self.array(|c| {
            let mut event = SpanEvent::default();
            c.object(|c, key| {
                match key {
                    "name" => event.name = c.string()?,
                    "unix_nanos" => event.unix_nanos = c.u64_number()?,
                    "attributes" => event.attributes = c.attributes()?,
                    _ => c.skip_value(0)?,
                }
                Some(())
            })?;
            Some(event)
        })
    }

    fn links(&mut self) -> Option<Vec<SpanLink>> {
        self.array(|c| {
            let (mut trace_id, mut span_id) = (None, None);
            c.object(|c, key| {
                match key {
                    "trace_id" => trace_id = Some(parse_hex(&c.string()?, 32)?),
                    "span_id" => span_id = Some(parse_hex_u64(&c.string()?)?),
                    _ => c.skip_value(0)?,
                }
                Some(())
            })?;
            Some(SpanLink {
                trace_id: trace_id?,
                span_id: span_id?,
            })
        })
    }

    fn attributes(&mut self) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        self.expect(b'{')?;
        if self.accept(b'}') {
            return Some(out);
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            if let Some(value) = self.attribute_value()? {
                out.push((key, value));
            }
            if self.accept(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Some(out);
        }
    }

    /// Reads a scalar attribute value: `Some(None)` for `null`.
    fn attribute_value(&mut self) -> Option<Option<String>> {
        self.skip_ws();
        match self.peek()? {
            b'"' => Some(Some(self.string()?)),
            b't' | b'f' => {
                if self.accept_literal("true") {
                    Some(Some("true".to_owned()))
                } else if self.accept_literal("false") {
                    Some(Some("false".to_owned()))
                } else {
                    None
                }
            }
            b'n' => self.accept_literal("null").then_some(None),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                self.skip_number()?;
                Some(Some(self.text.get(start..self.pos)?.to_owned()))
            }
            _ => None,
        }
    }

    /// Skips over any JSON value, nested at most [`MAX_JSON_DEPTH`] deep.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_JSON_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'"' => {
                self.string()?;
                Some(())
            }
            b'{' => {
                self.pos += 1;
                if self.accept(b'}') {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.expect(b':')?;
                    self.skip_value(depth + 1)?;
                    if self.accept(b',') {
                        continue;
                    }
                    return self.expect(b'}');
                }
            }
            b'[' => {
                self.pos += 1;
                if self.accept(b']') {
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if self.accept(b',') {
                        continue;
                    }
                    return self.expect(b']');
                }
            }
            b't' => self.accept_literal("true").then_some(()),
            b'f' => self.accept_literal("false").then_some(()),
            b'n' => self.accept_literal("null").then_some(()),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Span tree
// ---------------------------------------------------------------------------------------------

/// Parent/child links over a set of spans.
///
/// Links are resolved within a trace by span id; when several spans share a `(trace_id,
/// span_id)`, the first one is canonical: children attach to it, and every duplicate shares its
/// children. A span naming itself as parent has no parent.
struct Tree<'a> {
    spans: Vec<&'a FinishedSpan>,
    canonical: HashMap<(u128, u64), usize>,
    children: Vec<Vec<usize>>,
}

impl<'a> Tree<'a> {
    fn new(spans: Vec<&'a FinishedSpan>) -> Self {
        let mut canonical = HashMap::with_capacity(spans.len());
        for (i, span) in spans.iter().enumerate() {
            canonical.entry((span.trace_id, span.span_id)).or_insert(i);
        }
        let mut tree = Self {
            children: vec![Vec::new(); spans.len()],
            spans,
            canonical,
        };
        for i in 0..tree.spans.len() {
            if let Some(parent) = tree.parent(i)
                && let Some(list) = tree.children.get_mut(parent)
            {
                list.push(i);
            }
        }
        tree
    }

    fn span(&self, i: usize) -> Option<&'a FinishedSpan> {
        self.spans.get(i).copied()
    }

    /// Index of the canonical span with the same `(trace_id, span_id)` as span `i`.
    fn canonical_of(&self, i: usize) -> Option<usize> {
        let span = self.span(i)?;
        self.canonical.get(&(span.trace_id, span.span_id)).copied()
    }

    fn is_canonical(&self, i: usize) -> bool {
        self.canonical_of(i) == Some(i)
    }

    /// Index of the (canonical) parent of span `i`, if it is in the set.
    fn parent(&self, i: usize) -> Option<usize> {
        let span = self.span(i)?;
        let parent_id = span.parent_span_id?;
        if parent_id == span.span_id {
            return None;
        }
        let parent = *self.canonical.get(&(span.trace_id, parent_id))?;
        (parent != i).then_some(parent)
    }

    /// Children of span `i` (those of its canonical span for a duplicate).
    fn children(&self, i: usize) -> &[usize] {
        self.canonical_of(i)
            .and_then(|c| self.children.get(c))
            .map_or(&[], Vec::as_slice)
    }

    /// Time in span `i` not covered by any of its children (children clipped to the span).
    fn self_nanos(&self, i: usize) -> u64 {
        let Some(span) = self.span(i) else { return 0 };
        let (lo, hi) = (span.start_unix_nanos, span.effective_end());
        let mut covered: Vec<(u64, u64)> = self
            .children(i)
            .iter()
            .filter_map(|&c| self.span(c))
            .map(|c| (c.start_unix_nanos.max(lo), c.effective_end().min(hi)))
            .filter(|(s, e)| s < e)
            .collect();
        covered.sort_unstable();
        let mut total: u64 = 0;
        let mut current: Option<(u64, u64)> = None;
        for (s, e) in covered {
            match current {
                Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
                Some((cs, ce)) => {
                    total = total.saturating_add(ce - cs);
                    current = Some((s, e));
                }
                None => current = Some((s, e)),
            }
        }
        if let Some((cs, ce)) = current {
            total = total.saturating_add(ce - cs);
        }
        span.duration_nanos().saturating_sub(total)
    }
}

/// Nearest-rank percentile of ascending `sorted` values; 0 when empty.
fn percentile(sorted: &[u64], pct: u64) -> u64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0;
    };
    let rank = (u128::from(pct) * sorted.len() as u128)
        .div_ceil(100)
        .max(1);
    let index = usize::try_from(rank - 1).unwrap_or(last).min(last);
    sorted.get(index).copied().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Analyses
// ---------------------------------------------------------------------------------------------

/// Per-stage latency: spans grouped by (service, name).
#[derive(Debug, Clone, PartialEq)]
pub struct StageStats {
    /// The service that recorded the spans.
    pub service: String,
    /// The span name (the stage).
    pub name: String,
    /// Number of spans in the stage.
    pub count: usize,
    /// Number of those spans that recorded an error.
    pub errors: usize,
    /// Median duration (nearest rank).
    pub p50_nanos: u64,
    /// 99th percentile duration (nearest rank).
    pub p99_nanos: u64,
    /// Longest duration.
    pub max_nanos: u64,
    /// Sum of the durations (saturating).
    pub total_nanos: u64,
    /// Time in this stage not covered by its children (self time), summed over its spans.
    pub self_nanos: u64,
}

/// Groups spans by `(service, name)` and computes each stage's latency statistics.
///
/// Percentiles use the nearest-rank method on the sorted durations. Self time is a span's
/// duration minus the union of its children's intervals (clipped to the span), so concurrent
/// children are not subtracted twice. The result is sorted by `total_nanos` descending, ties by
/// `(service, name)`.
pub fn stage_breakdown(spans: &[FinishedSpan]) -> Vec<StageStats> {
    #[derive(Default)]
    struct Acc {
        errors: usize,
        durations: Vec<u64>,
        total: u64,
        self_time: u64,
    }

    let tree = Tree::new(spans.iter().collect());
    let mut groups: BTreeMap<(&str, &str), Acc> = BTreeMap::new();
    for (i, span) in spans.iter().enumerate() {
        let acc = groups
            .entry((span.service.as_str(), span.name.as_str()))
            .or_default();
        let duration = span.duration_nanos();
        acc.errors += usize::from(span.error);
        acc.durations.push(duration);
        acc.total = acc.total.saturating_add(duration);
        acc.self_time = acc.self_time.saturating_add(tree.self_nanos(i));
    }
    let mut stages: Vec<StageStats> = groups
        .into_iter()
        .map(|((service, name), mut acc)| {
            acc.durations.sort_unstable();
            StageStats {
                service: service.to_owned(),
                name: name.to_owned(),
                count: acc.durations.len(),
                errors: acc.errors,
                p50_nanos: percentile(&acc.durations, 50),
                p99_nanos: percentile(&acc.durations, 99),
                max_nanos: acc.durations.last().copied().unwrap_or(0),
                total_nanos: acc.total,
                self_nanos: acc.self_time,
            }
        })
        .collect();
    // Stable: ties keep the (service, name) order of the map.
    stages.sort_by_key(|s| std::cmp::Reverse(s.total_nanos));
    stages
}

/// The `n` longest spans, by duration descending; ties by start time, then input order.
pub fn slowest(spans: &[FinishedSpan], n: usize) -> Vec<&FinishedSpan> {
    let mut sorted: Vec<&FinishedSpan> = spans.iter().collect();
    sorted.sort_by(|a, b| {
        b.duration_nanos()
            .cmp(&a.duration_nanos())
            .then(a.start_unix_nanos.cmp(&b.start_unix_nanos))
    });
    sorted.truncate(n);
    sorted
}

/// The critical path of one trace, root → leaf; empty for an unknown trace id.
///
/// Starting at the root (the span without a parent in the set; the earliest-starting one if
/// several), repeatedly descend into the child that ends last (the one that gates the parent's
/// end).
///
/// Ties between children ending at the same time go to the one that started last, then to the
/// later one in the input. If every span of the trace sits in a parent cycle (no root), the walk
/// starts at the earliest-starting span. No span is visited twice, so the path is never longer
/// than the number of spans in the trace.
pub fn critical_path(spans: &[FinishedSpan], trace_id: u128) -> Vec<&FinishedSpan> {
    let tree = Tree::new(spans.iter().filter(|s| s.trace_id == trace_id).collect());
    let count = tree.spans.len();
    let earliest = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates.min_by_key(|&i| (tree.span(i).map_or(u64::MAX, |s| s.start_unix_nanos), i))
    };
    let root =
        earliest(&mut (0..count).filter(|&i| tree.is_canonical(i) && tree.parent(i).is_none()))
            .or_else(|| earliest(&mut (0..count).filter(|&i| tree.is_canonical(i))));
    let Some(mut current) = root else {
        return Vec::new();
    };

    let mut visited = vec![false; count];
    let mut path = Vec::new();
    for _ in 0..count {
        let Some(span) = tree.span(current) else {
            break;
        };
        if let Some(seen) = visited.get_mut(current) {
            *seen = true;
        }
        path.push(span);
        let next = tree
            .children(current)
            .iter()
            .copied()
            .filter(|&c| !visited.get(c).copied().unwrap_or(true))
            .filter_map(|c| tree.span(c).map(|s| (c, s)))
            .max_by_key(|&(_, s)| (s.effective_end(), s.start_unix_nanos));
        match next {
            Some((c, _)) => current = c,
            None => break,
        }
    }
    path
}

/// One caller → callee edge of the service dependency graph.
///
/// The service dependency graph has an edge caller → callee for every client (or producer) span
/// in service A whose child server (or consumer) span is in service B != A; if a client span has
/// no child in the set, its `peer.service` attribute is used as the callee if present. Edge
/// stats: call count, error count (client span error or child error), p50/p99 of the client span
/// durations.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// The calling service.
    pub caller: String,
    /// The called service.
    pub callee: String,
    /// Number of client (or producer) spans making the call.
    pub calls: usize,
    /// Number of calls where the client span or the callee's span recorded an error.
    pub errors: usize,
    /// Median client span duration (nearest rank).
    pub p50_nanos: u64,
    /// 99th percentile client span duration (nearest rank).
    pub p99_nanos: u64,
}

/// Builds the service dependency graph (see [`Edge`]), sorted by `(caller, callee)`.
///
/// A client (or producer) span counts once per distinct callee service among its server (or
/// consumer) children. When it has no server or consumer child in the set, its non-empty
/// `peer.service` attribute names the callee instead (only the client span's error counts then).
/// Calls within one service (callee == caller) are not edges.
pub fn dependency_graph(spans: &[FinishedSpan]) -> Vec<Edge> {
    #[derive(Default)]
    struct Acc {
        errors: usize,
        durations: Vec<u64>,
    }

    let tree = Tree::new(spans.iter().collect());
    let mut edges: BTreeMap<(&str, &str), Acc> = BTreeMap::new();
    for (i, client) in spans.iter().enumerate() {
        if !client.kind.is_outgoing() {
            continue;
        }
        let handlers: Vec<&FinishedSpan> = tree
            .children(i)
            .iter()
            .filter_map(|&c| tree.span(c))
            .filter(|c| c.kind.is_incoming())
            .collect();
        // (callee, error) for each distinct callee of this call.
        let mut callees: Vec<(&str, bool)> = Vec::new();
        if handlers.is_empty() {
            if let Some(peer) = client.attribute("peer.service") {
                callees.push((peer, client.error));
            }
        } else {
            for handler in handlers {
                let error = client.error || handler.error;
                match callees.iter_mut().find(|(s, _)| *s == handler.service) {
                    Some((_, e)) => *e |= error,
                    None => callees.push((handler.service.as_str(), error)),
                }
            }
        }
        for (callee, error) in callees {
            if callee.is_empty() || callee == client.service {
                continue;
            }
            let acc = edges.entry((client.service.as_str(), callee)).or_default();
            acc.errors += usize::from(error);
            acc.durations.push(client.duration_nanos());
        }
    }
    edges
        .into_iter()
        .map(|((caller, callee), mut acc)| {
            acc.durations.sort_unstable();
            Edge {
                caller: caller.to_owned(),
                callee: callee.to_owned(),
                calls: acc.durations.len(),
                errors: acc.errors,
                p50_nanos: percentile(&acc.durations, 50),
                p99_nanos: percentile(&acc.durations, 99),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// The label of an edge: `"12 calls, 1 errors, p99 3.2ms"`.
fn edge_label(edge: &Edge) -> String {
    format!(
        "{} calls, {} errors, p99 {}",
        edge.calls,
        edge.errors,
        format_duration(edge.p99_nanos)
    )
}

/// Quotes `s` as a Graphviz string (control characters become spaces).
fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders the graph in Graphviz DOT:
///
/// ```text
/// digraph services {
///   "strategy" -> "order-router" [label="12 calls, 1 errors, p99 3.2ms"];
/// }
/// ```
///
/// Service names are quoted with `"` and `\` escaped; control characters become spaces.
pub fn graph_to_dot(edges: &[Edge]) -> String {
    let mut out = String::from("digraph services {\n");
    for edge in edges {
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            dot_quote(&edge.caller),
            dot_quote(&edge.callee),
            dot_quote(&edge_label(edge))
        );
    }
    out.push_str("}\n");
    out
}

/// Makes `s` safe inside a quoted Mermaid label, using Mermaid's `#...;` entity codes.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Renders the graph as a Mermaid flowchart:
///
/// ```text
/// graph LR
///   svc_strategy["strategy"]
///   svc_order_router["order-router"]
///   svc_strategy -->|"12 calls, 1 errors, p99 3.2ms"| svc_order_router
/// ```
///
/// Node ids are `svc_` followed by the service name with every character outside `[A-Za-z0-9_]`
/// replaced by `_` (made unique with a numeric suffix when two names collide); the service names
/// themselves appear as quoted labels with `"`, `#`, `<`, `>` and `&` written as entity codes.
pub fn graph_to_mermaid(edges: &[Edge]) -> String {
    let mut ids: HashMap<&str, String> = HashMap::new();
    let mut used: HashSet<String> = HashSet::new();
    let mut out = String::from("graph LR\n");
    for service in edges
        .iter()
        .flat_map(|e| [e.caller.as_str(), e.callee.as_str()])
    {
        if ids.contains_key(service) {
            continue;
        }
        let mut base = String::from("svc_");
        base.extend(service.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        }));
        let mut id = base.clone();
        let mut suffix = 2_u64;
        while used.contains(&id) {
            id = format!("{base}_{suffix}");
            suffix += 1;
        }
        let _ = writeln!(out, "  {id}[\"{}\"]", mermaid_text(service));
        used.insert(id.clone());
        ids.insert(service, id);
    }
    for edge in edges {
        let caller = ids.get(edge.caller.as_str()).map_or("svc_", String::as_str);
        let callee = ids.get(edge.callee.as_str()).map_or("svc_", String::as_str);
        let _ = writeln!(
            out,
            "  {caller} -->|\"{}\"| {callee}",
            mermaid_text(&edge_label(edge))
        );
    }
    out
}

/// Renders stages as an aligned plain-text table.
///
/// A header line, then one line per stage with columns `service`, `stage`, `count`, `errors`,
/// `p50`, `p99`, `max`, `self`, durations formatted by [`format_duration`]. Text columns are
/// left-aligned, numeric ones right-aligned; control characters in names become spaces. Every
/// line ends with `\n`.
pub fn stages_table(stages: &[StageStats]) -> String {
    const HEADER: [&str; 8] = [
        "service", "stage", "count", "errors", "p50", "p99", "max", "self",
    ];
    let plain = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let rows: Vec<[String; 8]> = stages
        .iter()
        .map(|s| {
            [
                plain(&s.service),
                plain(&s.name),
                s.count.to_string(),
                s.errors.to_string(),
                format_duration(s.p50_nanos),
                format_duration(s.p99_nanos),
                format_duration(s.max_nanos),
                format_duration(s.self_nanos),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (col, (cell, &width)) in row.iter().zip(&widths).enumerate() {
            if col > 0 {
                line.push_str("  ");
            }
            if col < 2 {
                let _ = write!(line, "{cell:<width$}");
            } else {
                let _ = write!(line, "{cell:>width$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Formats a duration for humans: `"850ns"`, `"12.3µs"`, `"4.5ms"`, `"1.2s"`.
///
/// Below a microsecond the value is exact; otherwise it has one decimal (rounded half up) in the
/// largest unit that keeps it below 1000 after rounding (seconds are never promoted further).
pub fn format_duration(nanos: u64) -> String {
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    let units: [(u128, &str); 3] = [(1_000, "µs"), (1_000_000, "ms"), (1_000_000_000, "s")];
    let mut formatted = String::new();
    for (divisor, unit) in units {
        // Tenths of the unit, rounded half up.
        let tenths = (u128::from(nanos) * 10 + divisor / 2) / divisor;
        formatted = format!("{}.{}{unit}", tenths / 10, tenths % 10);
        if tenths < 10_000 {
            break;
        }
    }
    formatted
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use SpanKind::{Client, Consumer, Internal, Producer, Server};

    const BASE: u64 = 1_700_000_000_000_000_000;
    const US: u64 = 1_000;

    #[allow(clippy::too_many_arguments)]
    fn span(
        trace_id: u128,
        span_id: u64,
        parent: Option<u64>,
        service: &str,
        name: &str,
        kind: SpanKind,
        start_us: u64,
        end_us: u64,
    ) -> FinishedSpan {
        FinishedSpan {
            trace_id,
            span_id,
            parent_span_id: parent,
            name: name.to_owned(),
            service: service.to_owned(),
            kind,
            start_unix_nanos: BASE + start_us * US,
            end_unix_nanos: BASE + end_us * US,
            error: false,
            attributes: Vec::new(),
            ..Default::default()
        }
    }

    fn with_attr(mut s: FinishedSpan, key: &str, value: &str) -> FinishedSpan {
        s.attributes.push((key.to_owned(), value.to_owned()));
        s
    }

    fn with_error(mut s: FinishedSpan, error: bool) -> FinishedSpan {
        s.error = error;
        s
    }

    fn trace_id(n: u64) -> u128 {
        0x0af7_6519_16cd_43dd_8448_eb21_0000_0000 + u128::from(n)
    }

    /// One order flowing through the platform. `extra_us` is added to the venue round trip
    /// (and so to every span waiting for it); `router_error` fails the order-router's server
    /// span; `venue_failed` fails the venue call and everything waiting on it.
    fn order_trace(
        n: u64,
        extra_us: u64,
        router_error: bool,
        venue_failed: bool,
    ) -> Vec<FinishedSpan> {
        let e = extra_us;
        // (id, parent id or 0, service, name, kind, start µs, end µs), relative to the trace.
        let rows = [
            (1, 0, "market-data", "tick", Server, 0, 900 + e),
            (2, 1, "market-data", "normalize", Internal, 10, 40),
            (3, 1, "market-data", "publish_tick", Producer, 50, 120),
            (4, 3, "strategy", "on_tick", Consumer, 130, 880 + e),
            (5, 4, "strategy", "decide", Internal, 150, 850 + e),
            (6, 5, "strategy", "compute_signal", Internal, 160, 190),
            (7, 5, "strategy", "route_order", Client, 200, 800 + e),
            (8, 5, "strategy", "log_decision", Internal, 300, 350),
            (9, 7, "order-router", "route_order", Server, 250, 780 + e),
            (10, 9, "order-router", "risk_check", Internal, 260, 600),
            (11, 9, "order-router", "send_to_venue", Client, 610, 760 + e),
        ];
        let offset = n * 10_000; // each trace starts 10ms after the previous one
        let cl_ord_id = format!("C-{n}");
        rows.into_iter()
            .map(|(k, parent, service, name, kind, start, end)| {
                let parent = (parent != 0).then_some(n * 100 + parent);
                let (start, end) = (offset + start, offset + end);
                let s = span(
                    trace_id(n),
                    n * 100 + k,
                    parent,
                    service,
                    name,
                    kind,
                    start,
                    end,
                );
                match k {
                    7 => with_error(
                        with_attr(
                            with_attr(s, "peer.service", "order-router"),
                            "order.cl_ord_id",
                            &cl_ord_id,
                        ),
                        venue_failed,
                    ),
                    9 => with_error(
                        with_attr(s, "order.cl_ord_id", &cl_ord_id),
                        router_error || venue_failed,
                    ),
                    11 => with_error(with_attr(s, "peer.service", "exchange"), venue_failed),
                    _ => s,
                }
            })
            .collect()
    }

    fn fixture() -> Vec<FinishedSpan> {
        let mut spans = Vec::new();
        spans.extend(order_trace(1, 0, false, false));
        spans.extend(order_trace(2, 100, false, false));
        spans.extend(order_trace(3, 200, true, false));
        spans.extend(order_trace(4, 1_000, false, true));
        spans
    }

    fn names<'a>(spans: &[&'a FinishedSpan]) -> Vec<&'a str> {
        spans.iter().map(|s| s.name.as_str()).collect()
    }

    fn stage<'a>(stages: &'a [StageStats], service: &str, name: &str) -> &'a StageStats {
        stages
            .iter()
            .find(|s| s.service == service && s.name == name)
            .unwrap_or_else(|| panic!("no stage {service}/{name}"))
    }

    #[test]
    fn span_kind_names_round_trip() {
        for kind in [Internal, Server, Client, Producer, Consumer] {
            assert_eq!(SpanKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SpanKind::default(), Internal);
        assert_eq!(SpanKind::parse("Server"), None);
        assert_eq!(SpanKind::parse(""), None);
    }

    #[test]
    fn span_accessors() {
        let s = with_attr(
            with_attr(
                span(1, 1, None, "a", "x", Client, 10, 25),
                "peer.service",
                "b",
            ),
            "peer.service",
            "c",
        );
        assert_eq!(s.duration_nanos(), 15 * US);
        assert_eq!(s.attribute("peer.service"), Some("b"));
        assert_eq!(s.attribute("missing"), None);
        let backwards = span(1, 2, None, "a", "x", Internal, 25, 10);
        assert_eq!(backwards.duration_nanos(), 0);
    }

    #[test]
    fn stage_breakdown_counts_percentiles_and_self_time() {
        let spans = fixture();
        let stages = stage_breakdown(&spans);
        assert_eq!(stages.len(), 11);
        assert!(
            stages
                .windows(2)
                .all(|w| w[0].total_nanos >= w[1].total_nanos)
        );
        assert!(stages.iter().all(|s| s.count == 4));
        // The tick is the longest stage: 900µs + extra per trace.
        assert_eq!(
            (stages[0].service.as_str(), stages[0].name.as_str()),
            ("market-data", "tick")
        );
        assert_eq!(stages[0].total_nanos, (4 * 900 + 1_300) * US);

        // Client side of the order routing: 600, 700, 800, 1600µs.
        let client = stage(&stages, "strategy", "route_order");
        assert_eq!(client.errors, 1);
        assert_eq!(client.p50_nanos, 700 * US);
        assert_eq!(client.p99_nanos, 1_600 * US);
        assert_eq!(client.max_nanos, 1_600 * US);
        assert_eq!(client.total_nanos, 3_700 * US);
        // Self time: the 50µs before the server starts + 20µs after it ends, per call.
        assert_eq!(client.self_nanos, 4 * 70 * US);

        // Server side: 530, 630, 730, 1530µs; children risk_check (340µs) and
        // send_to_venue (150µs + extra) leave 40µs of self time per call.
        let server = stage(&stages, "order-router", "route_order");
        assert_eq!(server.errors, 2);
        assert_eq!(server.p50_nanos, 630 * US);
        assert_eq!(server.p99_nanos, 1_530 * US);
        assert_eq!(server.self_nanos, 4 * 40 * US);

        // decide's children overlap (log_decision runs during route_order): the union is
        // subtracted, not the sum: 700 - (30 + 600) = 70µs.
        assert_eq!(stage(&stages, "strategy", "decide").self_nanos, 4 * 70 * US);
        // A child entirely outside its parent's interval (the async consumer) is not subtracted.
        let publish = stage(&stages, "market-data", "publish_tick");
        assert_eq!(publish.self_nanos, publish.total_nanos);
        // Leaves: self time is the whole duration.
        let venue = stage(&stages, "order-router", "send_to_venue");
        assert_eq!(venue.self_nanos, venue.total_nanos);
        assert_eq!(venue.errors, 1);
        assert_eq!(venue.p50_nanos, 250 * US);
        assert_eq!(venue.p99_nanos, 1_150 * US);
        assert_eq!(
            stage(&stages, "market-data", "tick").self_nanos,
            (4 * 800 + 1_300) * US
        );
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), 50);
        assert_eq!(percentile(&values, 99), 99);
        assert_eq!(percentile(&values[..1], 99), 1);
        assert_eq!(percentile(&values[..10], 99), 10);
        assert_eq!(percentile(&values[..10], 50), 5);
        assert_eq!(percentile(&[], 50), 0);
    }

    #[test]
    fn slowest_spans_by_duration_then_start() {
        let spans = fixture();
        let top = slowest(&spans, 3);
        assert_eq!(names(&top), ["tick", "on_tick", "decide"]);
        assert!(top.iter().all(|s| s.trace_id == trace_id(4)));
        assert_eq!(slowest(&spans, 1000).len(), spans.len());
        assert!(slowest(&spans, 0).is_empty());

        let ties = vec![
            span(1, 1, None, "a", "late", Internal, 50, 60),
            span(1, 2, None, "a", "early", Internal, 10, 20),
            span(1, 3, None, "a", "short", Internal, 0, 5),
        ];
        assert_eq!(names(&slowest(&ties, 3)), ["early", "late", "short"]);
    }

    #[test]
    fn critical_path_follows_last_ending_child() {
        let spans = fixture();
        let path = critical_path(&spans, trace_id(2));
        let ids: Vec<u64> = path.iter().map(|s| s.span_id).collect();
        // tick → publish_tick (ends after normalize) → on_tick → decide → route_order client
        // (ends after compute_signal and log_decision, though log_decision starts later)
        // → route_order server → send_to_venue (ends after the longer risk_check).
        assert_eq!(ids, [201, 203, 204, 205, 207, 209, 211]);
        assert!(path.iter().all(|s| s.trace_id == trace_id(2)));
        assert!(critical_path(&spans, 0xdead).is_empty());
        assert!(critical_path(&[], trace_id(1)).is_empty());
    }

    #[test]
    fn critical_path_root_is_earliest_parentless_span() {
        // Missing parents: both spans are roots; the earlier one wins.
        let spans = vec![
            span(7, 2, Some(99), "a", "late_orphan", Server, 20, 90),
            span(7, 3, Some(98), "a", "early_orphan", Server, 10, 30),
            span(7, 4, Some(3), "a", "child", Internal, 12, 28),
        ];
        assert_eq!(names(&critical_path(&spans, 7)), ["early_orphan", "child"]);
        // A span naming itself as its parent is a root, not a loop.
        let selfish = vec![span(8, 5, Some(5), "a", "me", Internal, 0, 10)];
        assert_eq!(critical_path(&selfish, 8).len(), 1);
    }

    #[test]
    fn cycles_do_not_hang() {
        // A is the parent of B, B is the parent of A: no root at all.
        let two = vec![
            span(9, 1, Some(2), "a", "A", Internal, 0, 100),
            span(9, 2, Some(1), "a", "B", Internal, 50, 150),
        ];
        let path = critical_path(&two, 9);
        assert_eq!(names(&path), ["A", "B"]);
        let stages = stage_breakdown(&two);
        assert_eq!(stage(&stages, "a", "A").self_nanos, 50 * US);
        assert_eq!(stage(&stages, "a", "B").self_nanos, 50 * US);

        // A detached three-cycle next to a real root.
        let three = vec![
            span(9, 10, Some(12), "a", "C1", Internal, 0, 500),
            span(9, 11, Some(10), "a", "C2", Internal, 0, 500),
            span(9, 12, Some(11), "a", "C3", Internal, 0, 500),
            span(9, 20, None, "a", "root", Server, 5, 50),
            span(9, 21, Some(20), "a", "leaf", Internal, 6, 40),
        ];
        assert_eq!(names(&critical_path(&three, 9)), ["root", "leaf"]);

        // Duplicate ids can make a loop reachable from the root: root → D → X → D' (a
        // duplicate of D, sharing D's children) → X again. Every span is visited at most once.
        let dup = vec![
            span(9, 30, None, "a", "R", Server, 0, 100),
            span(9, 31, Some(30), "a", "D", Internal, 1, 90),
            span(9, 32, Some(31), "a", "X", Internal, 2, 80),
            span(9, 31, Some(32), "a", "D'", Internal, 3, 70),
        ];
        let path = critical_path(&dup, 9);
        assert_eq!(names(&path), ["R", "D", "X", "D'"]);
        let _ = stage_breakdown(&dup);
        let _ = dependency_graph(&dup);
    }

    #[test]
    fn end_before_start_is_a_zero_duration() {
        let spans = vec![
            span(5, 1, None, "a", "root", Server, 0, 100),
            span(5, 2, Some(1), "a", "backwards", Internal, 80, 20),
            span(5, 3, Some(1), "a", "normal", Internal, 10, 30),
        ];
        let stages = stage_breakdown(&spans);
        let backwards = stage(&stages, "a", "backwards");
        assert_eq!(
            (
                backwards.total_nanos,
                backwards.self_nanos,
                backwards.max_nanos
            ),
            (0, 0, 0)
        );
        assert_eq!(stage(&stages, "a", "root").self_nanos, 80 * US);
        // The backwards span "ends" at its start (80µs), after `normal` (30µs).
        assert_eq!(names(&critical_path(&spans, 5)), ["root", "backwards"]);
        let root_backwards = vec![span(6, 1, None, "a", "r", Server, 100, 0)];
        assert_eq!(stage_breakdown(&root_backwards)[0].self_nanos, 0);
    }

    #[test]
    fn duplicate_ids_are_counted_and_share_children() {
        let original = span(4, 1, None, "a", "root", Server, 0, 100);
        let spans = vec![
            original.clone(),
            span(4, 2, Some(1), "a", "child", Internal, 10, 60),
            original,
        ];
        let stages = stage_breakdown(&spans);
        let root = stage(&stages, "a", "root");
        assert_eq!(root.count, 2);
        assert_eq!(root.self_nanos, 2 * 50 * US);
        assert_eq!(critical_path(&spans, 4).len(), 2);
    }

    #[test]
    fn dependency_graph_edges() {
        let spans = fixture();
        let edges = dependency_graph(&spans);
        assert_eq!(
            edges,
            vec![
                Edge {
                    caller: "market-data".into(),
                    callee: "strategy".into(),
                    calls: 4,
                    errors: 0,
                    p50_nanos: 70 * US,
                    p99_nanos: 70 * US,
                },
                // Not instrumented: named by peer.service; the failed venue call counts.
                Edge {
                    caller: "order-router".into(),
                    callee: "exchange".into(),
                    calls: 4,
                    errors: 1,
                    p50_nanos: 250 * US,
                    p99_nanos: 1_150 * US,
                },
                // Errors: trace 3 (server only) and trace 4 (client and server, counted once).
                Edge {
                    caller: "strategy".into(),
                    callee: "order-router".into(),
                    calls: 4,
                    errors: 2,
                    p50_nanos: 700 * US,
                    p99_nanos: 1_600 * US,
                },
            ]
        );
    }

    #[test]
    fn dependency_graph_edge_cases() {
        let spans = vec![
            // Loopback call into the same service: no edge, even with a peer.service.
            with_attr(
                span(3, 1, None, "a", "self_call", Client, 0, 10),
                "peer.service",
                "z",
            ),
            span(3, 2, Some(1), "a", "handle", Server, 1, 9),
            // peer.service naming the caller itself: no edge.
            with_attr(
                span(3, 3, None, "a", "loop", Client, 0, 10),
                "peer.service",
                "a",
            ),
            // No child, no peer.service: no edge. Empty peer.service: no edge.
            span(3, 4, None, "a", "anon", Client, 0, 10),
            with_attr(
                span(3, 5, None, "a", "blank", Client, 0, 10),
                "peer.service",
                "",
            ),
            // An internal child does not name the callee: fall back to peer.service.
            with_attr(
                span(3, 6, None, "a", "call_b", Client, 0, 10),
                "peer.service",
                "b",
            ),
            span(3, 7, Some(6), "a", "serialize", Internal, 1, 2),
            // The server child wins over a (wrong) peer.service.
            with_attr(
                span(3, 8, None, "a", "call_c", Client, 0, 20),
                "peer.service",
                "wrong",
            ),
            with_error(span(3, 9, Some(8), "c", "handle", Server, 1, 19), true),
            // A server span with a server child of another service is not a call.
            span(3, 10, None, "c", "srv", Server, 0, 10),
            span(3, 11, Some(10), "d", "srv", Server, 1, 9),
        ];
        let edges = dependency_graph(&spans);
        let pairs: Vec<(&str, &str, usize, usize)> = edges
            .iter()
            .map(|e| (e.caller.as_str(), e.callee.as_str(), e.calls, e.errors))
            .collect();
        assert_eq!(pairs, [("a", "b", 1, 0), ("a", "c", 1, 1)]);
        assert!(dependency_graph(&[]).is_empty());
    }

    #[test]
    fn dot_output() {
        let edges = dependency_graph(&fixture());
        let dot = graph_to_dot(&edges);
        assert!(dot.starts_with("digraph services {\n"));
        assert!(dot.ends_with("}\n"));
        assert!(dot.contains(
            "  \"strategy\" -> \"order-router\" [label=\"4 calls, 2 errors, p99 1.6ms\"];\n"
        ));
        assert!(dot.contains(
            "  \"order-router\" -> \"exchange\" [label=\"4 calls, 1 errors, p99 1.2ms\"];\n"
        ));
        assert_eq!(dot.lines().count(), 2 + edges.len());

        let weird = vec![Edge {
            caller: "we\"ird\\svc".into(),
            callee: "new\nline".into(),
            calls: 12,
            errors: 1,
            p50_nanos: 1_000,
            p99_nanos: 3_200_000,
        }];
        assert_eq!(
            graph_to_dot(&weird),
            "digraph services {\n  \"we\\\"ird\\\\svc\" -> \"new line\" [label=\"12 calls, 1 errors, p99 3.2ms\"];\n}\n"
        );
        assert_eq!(graph_to_dot(&[]), "digraph services {\n}\n");
    }

    #[test]
    fn mermaid_output() {
        let edges = dependency_graph(&fixture());
        let mermaid = graph_to_mermaid(&edges);
        assert!(mermaid.starts_with("graph LR\n"));
        assert!(mermaid.contains("  svc_order_router[\"order-router\"]\n"));
        assert!(
            mermaid.contains(
                "  svc_strategy -->|\"4 calls, 2 errors, p99 1.6ms\"| svc_order_router\n"
            )
        );
        assert!(
            mermaid.contains(
                "  svc_market_data -->|\"4 calls, 0 errors, p99 70.0µs\"| svc_strategy\n"
            )
        );
        // 4 nodes + 3 edges.
        assert_eq!(mermaid.lines().count(), 1 + 4 + 3);

        let edge = |caller: &str, callee: &str| Edge {
            caller: caller.into(),
            callee: callee.into(),
            calls: 1,
            errors: 0,
            p50_nanos: 0,
            p99_nanos: 850,
        };
        let clash = vec![edge("a-b", "a_b"), edge("end", "x\"<y>#&z")];
        let text = graph_to_mermaid(&clash);
        assert_eq!(
            text,
            "graph LR\n  svc_a_b[\"a-b\"]\n  svc_a_b_2[\"a_b\"]\n  svc_end[\"end\"]\n  \
             svc_x__y___z[\"x#quot;#lt;y#gt;#35;#amp;z\"]\n  \
             svc_a_b -->|\"1 calls, 0 errors, p99 850ns\"| svc_a_b_2\n  \
             svc_end -->|\"1 calls, 0 errors, p99 850ns\"| svc_x__y___z\n"
        );
        assert_eq!(graph_to_mermaid(&[]), "graph LR\n");
    }

    #[test]
    fn table_output() {
        let stages = stage_breakdown(&fixture());
        let table = stages_table(&stages);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 1 + stages.len());
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "service", "stage", "count", "errors", "p50", "p99", "max", "self"
            ]
        );
        // Columns line up: every row has the same width (the last column is right-aligned).
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{table}");
        let row: Vec<&str> = lines
            .iter()
            .find(|l| l.starts_with("strategy ") && l.contains("route_order"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        assert_eq!(
            row,
            [
                "strategy",
                "route_order",
                "4",
                "1",
                "700.0µs",
                "1.6ms",
                "1.6ms",
                "280.0µs"
            ]
        );
        assert_eq!(stages_table(&[]).lines().count(), 1);
    }

    #[test]
    fn durations_are_human_readable() {
        assert_eq!(format_duration(0), "0ns");
        assert_eq!(format_duration(850), "850ns");
        assert_eq!(format_duration(999), "999ns");
        assert_eq!(format_duration(1_000), "1.0µs");
        assert_eq!(format_duration(12_345), "12.3µs");
        assert_eq!(format_duration(12_350), "12.4µs");
        assert_eq!(format_duration(999_949), "999.9µs");
        assert_eq!(format_duration(999_950), "1.0ms");
        assert_eq!(format_duration(4_500_000), "4.5ms");
        assert_eq!(format_duration(1_200_000_000), "1.2s");
        assert_eq!(format_duration(3_600_000_000_000), "3600.0s");
        assert_eq!(format_duration(u64::MAX), "18446744073.7s");
    }

    #[test]
    fn json_round_trip_with_hostile_strings() {
        let nasty = FinishedSpan {
            trace_id: u128::MAX,
            span_id: 0,
            parent_span_id: Some(u64::MAX),
            name: "ordre \"spécial\" \\ / \n\r\t\u{0}\u{7}\u{8}\u{c}\u{1f}\u{7f}\u{85} 📈 中文 \u{2028}\u{2029}"
                .to_owned(),
            service: "strategy™".to_owned(),
            kind: Producer,
            start_unix_nanos: u64::MAX,
            end_unix_nanos: 0,
            error: true,
            attributes: vec![
                ("order.cl_ord_id".to_owned(), "C-1\"; DROP".to_owned()),
                (String::new(), String::new()),
                ("ключ\u{1}".to_owned(), "🦀\u{10ffff}".to_owned()),
                ("dup".to_owned(), "1".to_owned()),
                ("dup".to_owned(), "2".to_owned()),
            ],
            ..Default::default()
        };
        let line = to_json_line(&nasty);
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{2028}'));
        assert!(line.starts_with(
            "{\"trace_id\":\"ffffffffffffffffffffffffffffffff\",\"span_id\":\"0000000000000000\""
        ));
        assert_eq!(parse_json_line(&line), Some(nasty.clone()));

        let mut plain = span(
            trace_id(1),
            0xabc,
            None,
            "market-data",
            "tick",
            Server,
            1,
            2,
        );
        for kind in [Internal, Server, Client, Consumer] {
            plain.kind = kind;
            let line = to_json_line(&plain);
            assert!(line.contains(&format!("\"kind\":\"{}\"", kind.as_str())));
            assert!(line.contains("\"parent_span_id\":null"));
            assert!(line.contains("\"attributes\":{}"));
            assert_eq!(parse_json_line(&line).as_ref(), Some(&plain));
        }

        let spans = fixture();
        let text: String = spans.iter().map(|s| to_json_line(s) + "\n").collect();
        assert_eq!(read_json_lines(&text), (spans, 0));
    }

    #[test]
    fn json_reader_accepts_other_writers() {
        let line = " { \"span_id\" : \"00000000000000AB\" , \"trace_id\":\"0AF7651916CD43DD8448EB211C80319C\",\
                    \"name\":\"caf\\u00e9 \\ud83d\\udcc8 \\/\\\"x\\\"\", \"service\":\"s\",\"kind\":\"client\",\
                    \"start_unix_nanos\":0,\"end_unix_nanos\":18446744073709551615,\
                    \"resource\":{\"nested\":[1,-2.5e-3,true,null,{\"a\":[]}]},\
                    \"attributes\":{\"http.status_code\":200,\"retry\":false,\"gone\":null,\"x\":\"y\"} }\r";
        let span = parse_json_line(line).expect("valid line");
        assert_eq!(span.trace_id, 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c);
        assert_eq!(span.span_id, 0xab);
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.name, "café 📈 /\"x\"");
        assert_eq!(span.kind, Client);
        assert_eq!(span.end_unix_nanos, u64::MAX);
        assert!(!span.error);
        assert_eq!(
            span.attributes,
            vec![
                ("http.status_code".to_owned(), "200".to_owned()),
                ("retry".to_owned(), "false".to_owned()),
                ("x".to_owned(), "y".to_owned()),
            ]
        );
    }

    #[test]
    fn malformed_lines_are_rejected() {
        let good = to_json_line(&with_attr(
            span(trace_id(1), 1, Some(2), "a", "b", Server, 1, 2),
            "k",
            "v",
        ));
        assert!(parse_json_line(&good).is_some());
        let bad = [
            String::new(),
            "{}".to_owned(),
            "[]".to_owned(),
            "null".to_owned(),
            good.replace("\"server\"", "\"Server\""),
            good.replace("\"trace_id\":\"0af7", "\"trace_id\":\"0af"),
            good.replace("\"trace_id\":\"0af7", "\"trace_id\":\"+af7"),
            good.replace("\"trace_id\":\"0af7", "\"trace_id\":\"0ag7"),
            good.replace("\"span_id\":\"0000000000000001\"", "\"span_id\":1"),
            good.replace(
                "\"parent_span_id\":\"0000000000000002\"",
                "\"parent_span_id\":\"2\"",
            ),
            good.replace(":1700000000000001000", ":-1700000000000001000"),
            good.replace(":1700000000000001000", ":1700000000000001000.0"),
            good.replace(":1700000000000001000", ":1.7e18"),
            good.replace(":1700000000000001000", ":01700000000000001000"),
            good.replace(":1700000000000001000", ":18446744073709551616"),
            good.replace(":1700000000000001000", ":\"1700000000000001000\""),
            good.replace("\"error\":false", "\"error\":0"),
            good.replace("\"error\":false", "\"error\":fals"),
            good.replace("\"name\":\"b\"", "\"name\":\"b\\x\""),
            good.replace("\"name\":\"b\"", "\"name\":\"b\\ud83d\""),
            good.replace("\"name\":\"b\"", "\"name\":\"b\\ude00\""),
            good.replace("\"name\":\"b\"", "\"name\":\"b\\ud83d\\u0041\""),
            good.replace("\"name\":\"b\"", "\"name\":\"b\\u12\""),
            good.replace("\"name\":\"b\"", "\"name\":\"b\tc\""),
            good.replace("\"name\":\"b\"", "\"name\":\"b\",\"name\":\"c\""),
            good.replace("\"name\":\"b\",", ""),
            good.replace("\"k\":\"v\"", "\"k\":[\"v\"]"),
            good.replace("\"k\":\"v\"", "\"k\":\"v\","),
            good.replace(",\"error\"", ",,\"error\""),
            good.replace("}}", "}"),
            format!("{good} x"),
            format!("{good}{good}"),
            format!("{}{}", "[".repeat(10_000), good),
            good.replace(
                "\"attributes\"",
                &format!("\"deep\":{},\"attributes\"", "[".repeat(100_000)),
            ),
        ];
        for line in &bad {
            assert_eq!(parse_json_line(line), None, "accepted: {line}");
        }
        // Every strict prefix of a valid line is malformed.
        for (i, _) in good.char_indices().skip(1) {
            assert_eq!(parse_json_line(&good[..i]), None);
        }
    }

    #[test]
    fn events_links_status_and_dropped_counts_round_trip() {
        let span = FinishedSpan {
            trace_id: 7,
            span_id: 9,
            name: "replace_order".into(),
            service: "router".into(),
            status_message: "venue \"rejected\"\n".into(),
            trace_state: "desk=fx".into(),
            events: vec![SpanEvent {
                name: "sent".into(),
                unix_nanos: 42,
                attributes: vec![("level".into(), "INFO".into())],
            }],
            links: vec![SpanLink {
                trace_id: u128::MAX,
                span_id: 1,
            }],
            dropped: DroppedCounts {
                attributes: 1,
                events: 2,
                links: 3,
            },
            ..Default::default()
        };
        let line = to_json_line(&span);
        assert_eq!(parse_json_line(&line), Some(span.clone()), "{line}");
        // The optional members are left out when empty: old readers see the old format.
        let plain = FinishedSpan {
            name: "x".into(),
            trace_id: 1,
            span_id: 1,
            ..Default::default()
        };
        assert!(!to_json_line(&plain).contains("events"));
        // A link without its ids, or a count that does not fit, makes the line malformed.
        for bad in [
            line.replace("\"span_id\":\"0000000000000001\"", "\"x\":1"),
            line.replace(
                "\"dropped_events_count\":2",
                "\"dropped_events_count\":99999999999",
            ),
            line.replace("\"events\":[", "\"events\":{"),
        ] {
            assert_eq!(parse_json_line(&bad), None, "{bad}");
        }
    }

    #[test]
    fn read_json_lines_skips_and_counts_malformed() {
        let spans = fixture();
        let mut text = String::from("\u{feff}");
        text.push_str(&to_json_line(&spans[0]));
        text.push_str("\r\n\n   \n{\"truncated\":\n");
        text.push_str(&to_json_line(&spans[1]));
        text.push_str("\nnot json at all\n");
        text.push_str(&to_json_line(&spans[2])[..40]);
        text.push('\n');
        text.push_str(&to_json_line(&spans[3]));
        let (read, malformed) = read_json_lines(&text);
        assert_eq!(
            read,
            vec![spans[0].clone(), spans[1].clone(), spans[3].clone()]
        );
        assert_eq!(malformed, 3);
        assert_eq!(read_json_lines(""), (Vec::new(), 0));
    }

    /// A tiny deterministic pseudo-random generator for the robustness tests.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn random_span_soups_never_panic() {
        let mut rng = Lcg(42);
        let kinds = [Internal, Server, Client, Producer, Consumer];
        let times = [0, 1, u64::MAX, u64::MAX - 1, BASE];
        for _ in 0..50 {
            let count = rng.below(80);
            let spans: Vec<FinishedSpan> = (0..count)
                .map(|_| {
                    let pick_time = |rng: &mut Lcg| {
                        if rng.below(4) == 0 {
                            times[rng.below(5) as usize]
                        } else {
                            BASE + rng.below(1_000)
                        }
                    };
                    let mut s = FinishedSpan {
                        trace_id: u128::from(rng.below(3)),
                        span_id: rng.below(30),
                        parent_span_id: (rng.below(5) != 0).then(|| rng.below(30)),
                        name: format!("op{}", rng.below(4)),
                        service: format!("svc{}", rng.below(4)),
                        kind: kinds[rng.below(5) as usize],
                        start_unix_nanos: pick_time(&mut rng),
                        end_unix_nanos: pick_time(&mut rng),
                        error: rng.below(3) == 0,
                        attributes: Vec::new(),
                        ..Default::default()
                    };
                    if rng.below(2) == 0 {
                        s.attributes
                            .push(("peer.service".into(), format!("svc{}", rng.below(5))));
                    }
                    s
                })
                .collect();
            let stages = stage_breakdown(&spans);
            assert_eq!(stages.iter().map(|s| s.count).sum::<usize>(), spans.len());
            for s in &stages {
                assert!(s.self_nanos <= s.total_nanos || s.total_nanos == u64::MAX);
                assert!(s.p50_nanos <= s.p99_nanos && s.p99_nanos <= s.max_nanos);
            }
            for t in 0..3 {
                let in_trace = spans.iter().filter(|s| s.trace_id == t).count();
                let path = critical_path(&spans, t);
                assert!(path.len() <= in_trace);
                assert_eq!(path.is_empty(), in_trace == 0);
            }
            let edges = dependency_graph(&spans);
            assert!(
                edges
                    .windows(2)
                    .all(|w| (&w[0].caller, &w[0].callee) < (&w[1].caller, &w[1].callee))
            );
            let _ = (
                graph_to_dot(&edges),
                graph_to_mermaid(&edges),
                stages_table(&stages),
            );
            let _ = slowest(&spans, 5);
            for s in &spans {
                assert_eq!(parse_json_line(&to_json_line(s)).as_ref(), Some(s));
            }
        }
    }

    #[test]
    fn mutated_json_lines_never_panic() {
        let mut rng = Lcg(7);
        let base = to_json_line(&with_attr(
            span(
                trace_id(3),
                9,
                Some(8),
                "order-router",
                "rout\u{e9} \"x\"",
                Server,
                1,
                2,
            ),
            "emoji",
            "📈\\u0041",
        ));
        let pieces = [
            "\"", "\\", "\\u", "\\ud83d", "{", "}", "[", ":", ",", "0", "-", "é", "📈", " ", "\n",
            "null",
        ];
        let mut accepted = 0;
        for _ in 0..5_000 {
            let mut line = base.clone();
            for _ in 0..=rng.below(3) {
                let boundaries: Vec<usize> = line
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain([line.len()])
                    .collect();
                let at = boundaries[rng.below(boundaries.len() as u64) as usize];
                let piece = pieces[rng.below(pieces.len() as u64) as usize];
                match rng.below(3) {
                    0 => line.insert_str(at, piece),
                    1 => line.truncate(at),
                    _ => {
                        let end = boundaries.iter().copied().find(|&b| b > at).unwrap_or(at);
                        line.replace_range(at..end, piece);
                    }
                }
            }
            if let Some(span) = parse_json_line(&line) {
                accepted += 1;
                assert_eq!(parse_json_line(&to_json_line(&span)), Some(span));
            }
        }
        assert!(accepted < 5_000);
    }
}

/// Every span of one order, across traces and services: the spans whose `order.cl_ord_id` is
/// `cl_ord_id` or another id of its cancel/replace chain (ids linked through
/// `order.orig_cl_ord_id`, in both directions), plus their descendants in the same trace (which
/// need not repeat the id). Sorted by start time.
///
/// This is how an order is followed when a replace starts a new trace: the order ids are span
/// attributes, and the chain of original ids links the traces.
pub fn order_spans<'a>(spans: &'a [FinishedSpan], cl_ord_id: &str) -> Vec<&'a FinishedSpan> {
    let mut ids: Vec<&str> = vec![cl_ord_id];
    // Grow the chain to a fixpoint (at most one new id per span, so bounded).
    loop {
        let before = ids.len();
        for s in spans {
            let (id, orig) = (
                s.attribute("order.cl_ord_id"),
                s.attribute("order.orig_cl_ord_id"),
            );
            if let (Some(id), Some(orig)) = (id, orig) {
                if ids.contains(&id) && !ids.contains(&orig) {
                    ids.push(orig);
                }
                if ids.contains(&orig) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        if ids.len() == before {
            break;
        }
    }
    let matched: std::collections::HashSet<(u128, u64)> = spans
        .iter()
        .filter(|s| {
            s.attribute("order.cl_ord_id")
                .is_some_and(|id| ids.contains(&id))
        })
        .map(|s| (s.trace_id, s.span_id))
        .collect();
    let parents: std::collections::HashMap<(u128, u64), u64> = spans
        .iter()
        .filter_map(|s| Some(((s.trace_id, s.span_id), s.parent_span_id?)))
        .collect();
    let mut out: Vec<&FinishedSpan> = spans
        .iter()
        .filter(|s| {
            let mut key = (s.trace_id, s.span_id);
            for _ in 0..=spans.len() {
                if matched.contains(&key) {
                    return true;
                }
                match parents.get(&key) {
                    Some(&p) => key = (s.trace_id, p),
                    None => return false,
                }
            }
            false
        })
        .collect();
    out.sort_by_key(|s| s.start_unix_nanos);
    out
}

#[cfg(test)]
mod order_tests {
    use super::*;

    fn span(
        trace: u128,
        id: u64,
        parent: Option<u64>,
        start: u64,
        attrs: &[(&str, &str)],
    ) -> FinishedSpan {
        FinishedSpan {
            trace_id: trace,
            span_id: id,
            parent_span_id: parent,
            name: format!("s{id}"),
            service: "order-router".into(),
            kind: SpanKind::Internal,
            start_unix_nanos: start,
            end_unix_nanos: start + 10,
            error: false,
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn an_order_is_followed_through_its_replace_chain_across_traces() {
        let spans = vec![
            span(1, 10, None, 100, &[("order.cl_ord_id", "C-1")]),
            span(1, 11, Some(10), 110, &[]),
            span(
                2,
                20,
                None,
                200,
                &[("order.cl_ord_id", "C-2"), ("order.orig_cl_ord_id", "C-1")],
            ),
            span(
                3,
                30,
                None,
                300,
                &[("order.cl_ord_id", "C-3"), ("order.orig_cl_ord_id", "C-2")],
            ),
            span(3, 31, Some(30), 310, &[]),
            span(4, 40, None, 400, &[("order.cl_ord_id", "C-9")]),
        ];
        for id in ["C-1", "C-2", "C-3"] {
            let found: Vec<u64> = order_spans(&spans, id).iter().map(|s| s.span_id).collect();
            assert_eq!(found, [10, 11, 20, 30, 31], "{id}");
        }
        assert_eq!(order_spans(&spans, "C-9").len(), 1);
        assert!(order_spans(&spans, "unknown").is_empty());
    }
}
