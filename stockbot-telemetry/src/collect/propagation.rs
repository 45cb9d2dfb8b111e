//! Context propagation across process boundaries: W3C Trace Context (`traceparent`,
//! `tracestate`) and W3C Baggage, parsed and formatted, and injected into / extracted from
//! header carriers (HTTP header maps, message-bus headers).
//!
//! Every parser here accepts arbitrary input and never panics: a header is either accepted
//! (and then formats back to an equivalent header) or refused with a [`PropagationError`]
//! that names the header and the problem, without echoing the (untrusted) input.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;

/// Header name of the W3C `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// Header name of the W3C `tracestate` header.
pub const TRACESTATE: &str = "tracestate";
/// Header name of the W3C `baggage` header.
pub const BAGGAGE: &str = "baggage";

/// Most list-members a `tracestate` may carry.
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Most list-members a `baggage` header may carry.
const MAX_BAGGAGE_ENTRIES: usize = 180;
/// Largest `baggage` header, in bytes.
const MAX_BAGGAGE_BYTES: usize = 8192;
/// Length of a version-00 `traceparent`.
const TRACEPARENT_LEN: usize = 55;

/// Why a header was refused.
///
/// `Display` names the header and the problem, e.g.
/// `invalid traceparent: trace id is all zeros`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PropagationError {
    /// The `traceparent` header is malformed.
    Traceparent(String),
    /// The `tracestate` header (or a member given to [`TraceState::insert`]) is malformed.
    Tracestate(String),
    /// The `baggage` header (or an entry given to [`Baggage::set`]) is malformed.
    Baggage(String),
}

impl fmt::Display for PropagationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropagationError::Traceparent(problem) => write!(f, "invalid traceparent: {problem}"),
            PropagationError::Tracestate(problem) => write!(f, "invalid tracestate: {problem}"),
            PropagationError::Baggage(problem) => write!(f, "invalid baggage: {problem}"),
        }
    }
}

impl std::error::Error for PropagationError {}

/// A `traceparent` error.
fn traceparent_error(problem: &str) -> PropagationError {
    PropagationError::Traceparent(problem.to_owned())
}

/// A `tracestate` error.
fn tracestate_error(problem: impl Into<String>) -> PropagationError {
    PropagationError::Tracestate(problem.into())
}

/// A `baggage` error.
fn baggage_error(problem: impl Into<String>) -> PropagationError {
    PropagationError::Baggage(problem.into())
}

/// HTTP optional whitespace (`OWS`): space or horizontal tab.
fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `s` without surrounding optional whitespace.
fn trim_ows(s: &str) -> &str {
    s.trim_matches(is_ows)
}

// ---------------------------------------------------------------------------------------------
// traceparent
// ---------------------------------------------------------------------------------------------

/// The propagated part of a span context (W3C trace context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id; never 0 in a valid context.
    pub trace_id: u128,
    /// The id of the parent span (the caller's span); never 0 in a valid context.
    pub span_id: u64,
    /// Whether the caller sampled the trace (trace-flags bit 0).
    pub sampled: bool,
    /// Vendor-specific trace state, propagated unchanged.
    pub trace_state: TraceState,
}

/// The value of a lowercase hex digit, `None` for anything else.
fn lower_hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// The value of a hex digit of either case, `None` for anything else.
fn any_hex_digit(b: u8) -> Option<u8> {
    lower_hex_digit(b.to_ascii_lowercase())
}

/// Parses lowercase hex digits (at most 32 of them) into a number.
fn parse_lower_hex(digits: &[u8]) -> Option<u128> {
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    digits.iter().try_fold(0u128, |acc, &b| {
        lower_hex_digit(b).map(|d| (acc << 4) | u128::from(d))
    })
}

/// Parses a `traceparent` header into `(trace_id, parent_id, trace_flags)`.
///
/// Follows the W3C rules: surrounding whitespace is ignored; the form is
/// `vv-<32 hex>-<16 hex>-<2 hex>` in lowercase hex; version `ff` is invalid; a version-`00`
/// header is exactly 55 characters; a higher version may carry more fields after a `-`
/// (they are ignored); an all-zero trace id or parent id is invalid.
///
/// # Errors
///
/// [`PropagationError::Traceparent`] naming the first problem found.
pub fn parse_traceparent(header: &str) -> Result<(u128, u64, u8), PropagationError> {
    let bytes = header.trim_ascii().as_bytes();
    if bytes.len() < TRACEPARENT_LEN {
        return Err(traceparent_error("too short"));
    }
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return Err(traceparent_error("fields are not separated by '-'"));
    }
    let version = parse_lower_hex(&bytes[0..2])
        .ok_or_else(|| traceparent_error("version is not two lowercase hex digits"))?;
    if version == 0xff {
        return Err(traceparent_error("version ff is invalid"));
    }
    if version == 0 && bytes.len() != TRACEPARENT_LEN {
        return Err(traceparent_error(
            "version 00 must be exactly 55 characters",
        ));
    }
    if bytes.len() > TRACEPARENT_LEN && bytes[TRACEPARENT_LEN] != b'-' {
        return Err(traceparent_error("trace flags are not followed by '-'"));
    }
    let trace_id = parse_lower_hex(&bytes[3..35])
        .ok_or_else(|| traceparent_error("trace id is not 32 lowercase hex digits"))?;
    let span_id = parse_lower_hex(&bytes[36..52])
        .and_then(|id| u64::try_from(id).ok())
        .ok_or_else(|| traceparent_error("parent id is not 16 lowercase hex digits"))?;
    let flags = parse_lower_hex(&bytes[53..55])
        .and_then(|flags| u8::try_from(flags).ok())
        .ok_or_else(|| traceparent_error("trace flags are not two lowercase hex digits"))?;
    if trace_id == 0 {
        return Err(traceparent_error("trace id is all zeros"));
    }
    if span_id == 0 {
        return Err(traceparent_error("parent id is all zeros"));
    }
    Ok((trace_id, span_id, flags))
}

/// Formats a version-`00` `traceparent` header in lowercase hex.
pub fn format_traceparent(trace_id: u128, span_id: u64, sampled: bool) -> String {
    format!(
        "00-{trace_id:032x}-{span_id:016x}-{:02x}",
        u8::from(sampled)
    )
}

// ---------------------------------------------------------------------------------------------
// tracestate
// ---------------------------------------------------------------------------------------------

/// `tracestate`: an ordered list of vendor `key=value` members (at most 32), kept as given.
///
/// Every member is validated against the W3C grammar, so [`TraceState::header_value`] always
/// produces a header that parses back to the same state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceState {
    /// The members, most recently updated first.
    members: Vec<(String, String)>,
}

/// Whether `b` may follow the first character of a `tracestate` key part.
fn is_tracestate_key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// Whether `key` is a valid `tracestate` key: a simple key
/// (`lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")`) or a multi-tenant key
/// (`tenant@system`, tenant up to 241 characters starting with a letter or digit, system up
/// to 14 characters starting with a letter).
fn is_valid_tracestate_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let rest_ok = |part: &[u8]| part.iter().all(|&b| is_tracestate_key_char(b));
    match key.split_once('@') {
        None => matches!(bytes.first(), Some(b'a'..=b'z')) && bytes.len() <= 256 && rest_ok(bytes),
        Some((tenant, system)) => {
            let (tenant, system) = (tenant.as_bytes(), system.as_bytes());
            matches!(tenant.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
                && tenant.len() <= 241
                && rest_ok(tenant)
                && matches!(system.first(), Some(b'a'..=b'z'))
                && system.len() <= 14
                && rest_ok(system)
        }
    }
}

/// Whether `value` is a valid `tracestate` value: 1 to 256 printable ASCII characters other
/// than `,` and `=`, not ending in a space.
fn is_valid_tracestate_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && bytes.last() != Some(&b' ')
}

impl TraceState {
    /// Parses a `tracestate` header.
    ///
    /// Empty list-members are ignored; a member with an invalid key or value, a duplicate key,
    /// or more than 32 members refuses the whole header.
    ///
    /// # Errors
    ///
    /// [`PropagationError::Tracestate`] naming the first problem found.
    pub fn parse(header: &str) -> Result<TraceState, PropagationError> {
        let mut members: Vec<(String, String)> = Vec::new();
        for member in header.split(',').map(trim_ows).filter(|m| !m.is_empty()) {
            if members.len() == MAX_TRACESTATE_MEMBERS {
                return Err(tracestate_error("more than 32 list-members"));
            }
            let position = members.len() + 1;
            let Some((key, value)) = member.split_once('=') else {
                return Err(tracestate_error(format!(
                    "list-member {position} has no '='"
                )));
            };
            if !is_valid_tracestate_key(key) {
                return Err(tracestate_error(format!(
                    "list-member {position} has an invalid key"
                )));
            }
            if !is_valid_tracestate_value(value) {
                return Err(tracestate_error(format!(
                    "list-member {position} has an invalid value"
                )));
            }
            if members.iter().any(|(k, _)| k == key) {
                return Err(tracestate_error(format!(
                    "list-member {position} repeats an earlier key"
                )));
            }
            members.push((key.to_owned(), value.to_owned()));
        }
        Ok(TraceState { members })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Returns a new state with `key=value` first (replacing an existing `key`), truncated to
    /// 32 members by dropping members from the end.
    ///
    /// # Errors
    ///
    /// [`PropagationError::Tracestate`] when `key` or `value` breaks the W3C grammar.
    pub fn insert(&self, key: &str, value: &str) -> Result<TraceState, PropagationError> {
        if !is_valid_tracestate_key(key) {
            return Err(tracestate_error("invalid key"));
        }
        if !is_valid_tracestate_value(value) {
            return Err(tracestate_error("invalid value"));
        }
        let mut members = Vec::with_capacity(MAX_TRACESTATE_MEMBERS);
        members.push((key.to_owned(), value.to_owned()));
        members.extend(
            self.members
                .iter()
                .filter(|(k, _)| k != key)
                .take(MAX_TRACESTATE_MEMBERS - 1)
                .cloned(),
        );
        Ok(TraceState { members })
    }

    /// The header value, `k1=v1,k2=v2`.
    pub fn header_value(&self) -> String {
        let mut out = String::new();
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        out
    }

    /// Whether the state has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// baggage
// ---------------------------------------------------------------------------------------------

/// W3C Baggage: ordered key/value entries with optional properties.
///
/// Values are held percent-decoded; [`Baggage::header_value`] percent-encodes them again.
/// Properties (the `;`-separated metadata after a value) are kept, normalised to
/// `name=value;flag` without optional whitespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baggage {
    /// `(key, decoded value, raw properties possibly empty)`, in header order.
    entries: Vec<(String, String, String)>,
}

/// Whether `b` is an RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Whether `s` is an RFC 7230 token (one or more `tchar`).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `b` is a W3C `baggage-octet`: printable ASCII other than space, `"`, `,`, `;`, `\`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// Percent-decodes a baggage value; a `%` not followed by two hex digits is kept literally and
/// byte sequences that are not UTF-8 become U+FFFD.
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let Some(hi) = bytes.get(i + 1).copied().and_then(any_hex_digit)
            && let Some(lo) = bytes.get(i + 2).copied().and_then(any_hex_digit)
        {
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends `value` to `out`, percent-encoding every byte outside the baggage-octet set and `%`.
fn percent_encode_into(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if is_baggage_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Length of `value` once percent-encoded.
fn percent_encoded_len(value: &str) -> usize {
    value
        .bytes()
        .map(|b| {
            if is_baggage_octet(b) && b != b'%' {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Length of one formatted entry, `key=encoded[;properties]`.
fn entry_len(key: &str, value: &str, properties: &str) -> usize {
    let props = if properties.is_empty() {
        0
    } else {
        properties.len() + 1
    };
    key.len() + 1 + percent_encoded_len(value) + props
}

/// Validates and normalises the properties of one list-member (the text after its first
/// `;`): each is `name` or `name=value`, name a token, value baggage-octets; empty properties
/// are dropped.
fn parse_properties(raw: &str, position: usize) -> Result<String, PropagationError> {
    let mut out = String::new();
    for property in raw.split(';').map(trim_ows).filter(|p| !p.is_empty()) {
        let (name, value) = match property.split_once('=') {
            Some((name, value)) => (trim_ows(name), Some(trim_ows(value))),
            None => (property, None),
        };
        if !is_token(name) {
            return Err(baggage_error(format!(
                "list-member {position} has a property with an invalid name"
            )));
        }
        if let Some(value) = value
            && !value.bytes().all(is_baggage_octet)
        {
            return Err(baggage_error(format!(
                "list-member {position} has a property with an invalid value"
            )));
        }
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    Ok(out)
}

impl Baggage {
    /// Parses a `baggage` header, e.g. `k1=v1;prop=x,k2=v2`.
    ///
    /// Keys are RFC 7230 tokens; values are percent-decoded (as UTF-8, invalid sequences
    /// becoming U+FFFD); whitespace around entries, keys, values and properties is trimmed;
    /// empty list-members are ignored; a repeated key keeps its first position and takes the
    /// last value.
    ///
    /// # Errors
    ///
    /// [`PropagationError::Baggage`] for a malformed list-member, more than 180 entries, or
    /// more than 8192 bytes (received, or once re-encoded).
    pub fn parse(header: &str) -> Result<Baggage, PropagationError> {
        if header.len() > MAX_BAGGAGE_BYTES {
            return Err(baggage_error("longer than 8192 bytes"));
        }
        let mut baggage = Baggage::default();
        let mut count = 0usize;
        for member in header.split(',').map(trim_ows).filter(|m| !m.is_empty()) {
            count += 1;
            if count > MAX_BAGGAGE_ENTRIES {
                return Err(baggage_error("more than 180 list-members"));
            }
            let (pair, properties) = match member.split_once(';') {
                Some((pair, properties)) => (pair, parse_properties(properties, count)?),
                None => (member, String::new()),
            };
            let Some((key, value)) = pair.split_once('=') else {
                return Err(baggage_error(format!("list-member {count} has no '='")));
            };
            let (key, value) = (trim_ows(key), trim_ows(value));
            if !is_token(key) {
                return Err(baggage_error(format!(
                    "list-member {count} has an invalid key"
                )));
            }
            if !value.bytes().all(is_baggage_octet) {
                return Err(baggage_error(format!(
                    "list-member {count} has an invalid value"
                )));
            }
            baggage.put(key, percent_decode(value), properties);
        }
        // Lenient decoding (a stray '%', bytes that are not UTF-8) can make the re-encoded
        // header longer than the one received; keep every accepted baggage formattable.
        if baggage.formatted_len() > MAX_BAGGAGE_BYTES {
            return Err(baggage_error("longer than 8192 bytes once re-encoded"));
        }
        Ok(baggage)
    }

    /// Replaces the entry `key` in place, or appends it.
    fn put(&mut self, key: &str, value: String, properties: String) {
        match self.entries.iter_mut().find(|(k, _, _)| k == key) {
            Some(entry) => {
                entry.1 = value;
                entry.2 = properties;
            }
            None => self.entries.push((key.to_owned(), value, properties)),
        }
    }

    /// Length of [`Baggage::header_value`], without building it.
    fn formatted_len(&self) -> usize {
        let entries: usize = self
            .entries
            .iter()
            .map(|(k, v, p)| entry_len(k, v, p))
            .sum();
        entries + self.entries.len().saturating_sub(1)
    }

    /// The (decoded) value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v.as_str())
    }

    /// Sets `key` to `value`, replacing an existing entry in place (and dropping its
    /// properties) or appending a new one.
    ///
    /// # Errors
    ///
    /// [`PropagationError::Baggage`] when `key` is not an RFC 7230 token, or when the result
    /// would exceed the W3C limits (180 entries, 8192 bytes once formatted), so that
    /// [`Baggage::header_value`] always yields a header that [`Baggage::parse`] accepts. The
    /// baggage is unchanged then.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), PropagationError> {
        if !is_token(key) {
            return Err(baggage_error("key is not a token"));
        }
        let existing = self.entries.iter().position(|(k, _, _)| k == key);
        if existing.is_none() && self.entries.len() >= MAX_BAGGAGE_ENTRIES {
            return Err(baggage_error("more than 180 list-members"));
        }
        let others: usize = self
            .entries
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != existing)
            .map(|(_, (k, v, p))| entry_len(k, v, p) + 1)
            .sum();
        if others + entry_len(key, value, "") > MAX_BAGGAGE_BYTES {
            return Err(baggage_error("longer than 8192 bytes"));
        }
        self.put(key, value.to_owned(), String::new());
        Ok(())
    }

    /// The entries as `(key, decoded value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(k, v, _)| (k.as_str(), v.as_str()))
    }

    /// The header value: `key=value[;properties]` joined by `,`, values percent-encoded
    /// (every byte outside the baggage-octet set, plus `%`), properties kept.
    pub fn header_value(&self) -> String {
        let mut out = String::new();
        for (i, (key, value, properties)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            percent_encode_into(value, &mut out);
            if !properties.is_empty() {
                out.push(';');
                out.push_str(properties);
            }
        }
        out
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

// ---------------------------------------------------------------------------------------------
// carriers
// ---------------------------------------------------------------------------------------------

/// Something headers can be read from and written to (HTTP header maps, message-bus headers).
pub trait Carrier {
    /// The value of header `key`. HTTP header names are case-insensitive; implementors decide
    /// how to match.
    fn get(&self, key: &str) -> Option<&str>;
    /// Sets header `key` to `value`, replacing any previous value.
    fn set(&mut self, key: &str, value: String);
}

/// Case-insensitive lookup: a map carrier looks for the exact key first, then scans for an
/// ASCII case-insensitive match. `set` removes every case variant of the key and inserts the
/// lowercase key.
impl<S: BuildHasher> Carrier for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key)
            .or_else(|| {
                self.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }

    fn set(&mut self, key: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(key));
        self.insert(key.to_ascii_lowercase(), value);
    }
}

/// Case-insensitive lookup: a list carrier looks for the exact key first, then for an ASCII
/// case-insensitive match. `set` replaces the first case variant of the key in place (under
/// the lowercase key), removes the others, or appends.
impl Carrier for Vec<(String, String)> {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k == key)
            .or_else(|| self.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, key: &str, value: String) {
        let lower = key.to_ascii_lowercase();
        match self.iter().position(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some(first) => {
                let mut i = 0;
                self.retain(|(k, _)| {
                    let keep = i <= first || !k.eq_ignore_ascii_case(key);
                    i += 1;
                    keep
                });
                if let Some(slot) = self.get_mut(first) {
                    *slot = (lower, value);
                }
            }
            None => self.push((lower, value)),
        }
    }
}

/// The header map of the `http` crate — what reqwest, hyper, axum and tonic use:
/// `inject_current(&mut headers)` before `reqwest::RequestBuilder::headers(headers)`, and
/// `extract_into(&span, request.headers())` in a server. Names are case-insensitive by
/// construction; a value that is not a valid header value is not written.
impl Carrier for http::HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        http::HeaderMap::get(self, key).and_then(|v| v.to_str().ok())
    }

    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) {
            self.insert(name, value);
        }
    }
}

/// Writes `traceparent` (plus `tracestate` if non-empty, plus `baggage` if non-empty).
///
/// A context with an all-zero trace id or span id is invalid and is not written (W3C);
/// the baggage still is.
pub fn inject(ctx: &TraceContext, baggage: &Baggage, carrier: &mut impl Carrier) {
    if ctx.trace_id != 0 && ctx.span_id != 0 {
        carrier.set(
            TRACEPARENT,
            format_traceparent(ctx.trace_id, ctx.span_id, ctx.sampled),
        );
        if !ctx.trace_state.is_empty() {
            carrier.set(TRACESTATE, ctx.trace_state.header_value());
        }
    }
    if !baggage.is_empty() {
        carrier.set(BAGGAGE, baggage.header_value());
    }
}

/// Reads the propagation headers.
///
/// `Ok(None)` when no `traceparent` is present; `Err` for a malformed `traceparent`. A
/// malformed `tracestate` is dropped (the context is kept, per W3C) and a malformed `baggage`
/// is returned empty; neither is an error, but their problems are returned in the third tuple
/// element so the caller can count them.
///
/// # Errors
///
/// [`PropagationError::Traceparent`] when the `traceparent` header is malformed.
pub fn extract(
    carrier: &impl Carrier,
) -> Result<Option<(TraceContext, Baggage, Vec<PropagationError>)>, PropagationError> {
    let Some(traceparent) = carrier.get(TRACEPARENT) else {
        return Ok(None);
    };
    let (trace_id, span_id, flags) = parse_traceparent(traceparent)?;
    let mut problems = Vec::new();
    let trace_state = match carrier.get(TRACESTATE).map(TraceState::parse) {
        Some(Ok(state)) => state,
        Some(Err(problem)) => {
            problems.push(problem);
            TraceState::default()
        }
        None => TraceState::default(),
    };
    let baggage = match carrier.get(BAGGAGE).map(Baggage::parse) {
        Some(Ok(baggage)) => baggage,
        Some(Err(problem)) => {
            problems.push(problem);
            Baggage::default()
        }
        None => Baggage::default(),
    };
    let ctx = TraceContext {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
        trace_state,
    };
    Ok(Some((ctx, baggage, problems)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
    const SPAN: u64 = 0x00f0_67aa_0ba9_02b7;

    fn refused(header: &str) -> bool {
        matches!(
            parse_traceparent(header),
            Err(PropagationError::Traceparent(_))
        )
    }

    #[test]
    fn traceparent_valid_round_trip() {
        assert_eq!(parse_traceparent(VALID), Ok((TRACE, SPAN, 1)));
        assert_eq!(format_traceparent(TRACE, SPAN, true), VALID);
        assert_eq!(
            format_traceparent(1, 2, false),
            "00-00000000000000000000000000000001-0000000000000002-00"
        );
        assert_eq!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            Ok((TRACE, SPAN, 0))
        );
        // Unknown flag bits are accepted and returned.
        assert_eq!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff"),
            Ok((TRACE, SPAN, 0xff))
        );
    }

    #[test]
    fn traceparent_uppercase_rejected() {
        assert!(refused(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"
        ));
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"
        ));
        assert!(refused(
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
    }

    #[test]
    fn traceparent_wrong_lengths_rejected() {
        for header in [
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b77-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00",
        ] {
            assert!(refused(header), "{header}");
        }
    }

    #[test]
    fn traceparent_version_ff_rejected() {
        let err = parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid traceparent: version ff is invalid"
        );
    }

    #[test]
    fn traceparent_zero_ids_rejected() {
        let err = parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid traceparent: trace id is all zeros"
        );
        let err = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid traceparent: parent id is all zeros"
        );
    }

    #[test]
    fn traceparent_extra_fields() {
        // Version 00 must not carry more fields.
        assert!(refused(&format!("{VALID}-extra")));
        assert!(refused(&format!("{VALID}-")));
        // A future version may, after a '-'.
        let future =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like";
        assert_eq!(parse_traceparent(future), Ok((TRACE, SPAN, 1)));
        assert_eq!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Ok((TRACE, SPAN, 1))
        );
        // ... but not glued to the flags.
        assert!(refused(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what-the-future-will-be-like"
        ));
        // Future versions still need valid first four fields.
        assert!(refused(
            "cc-00000000000000000000000000000000-00f067aa0ba902b7-01-more"
        ));
    }

    #[test]
    fn traceparent_whitespace() {
        assert_eq!(
            parse_traceparent(&format!("  {VALID}")),
            Ok((TRACE, SPAN, 1))
        );
        assert_eq!(
            parse_traceparent(&format!("{VALID} \t")),
            Ok((TRACE, SPAN, 1))
        );
        assert_eq!(
            parse_traceparent(&format!("\t {VALID}\t ")),
            Ok((TRACE, SPAN, 1))
        );
        // Whitespace inside is not allowed.
        assert!(refused(
            "00 -4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7- 1"
        ));
    }

    #[test]
    fn traceparent_garbage_rejected() {
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"
        ));
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01"
        ));
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"
        ));
        assert!(refused(
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01"
        ));
        assert!(refused(
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        // Multi-byte characters, including ones that put a char boundary mid-field.
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01"
        ));
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é"
        ));
        assert!(refused(
            "é0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        assert!(refused(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01😀"
        ));
        assert!(refused(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01😀"
        ));
        assert!(refused("😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"));
        assert!(refused("\u{0}\u{1}\u{7f}"));
        assert!(refused(""));
        assert!(refused("   "));
    }

    #[test]
    fn tracestate_multi_vendor() {
        let state = TraceState::parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").unwrap();
        assert_eq!(state.get("rojo"), Some("00f067aa0ba902b7"));
        assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(state.get("missing"), None);
        assert_eq!(
            state.header_value(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
        // Optional whitespace and empty list-members.
        let state = TraceState::parse(" rojo=00f067aa0ba902b7 ,\t,, congo=t61rcWkgMzE\t,").unwrap();
        assert_eq!(
            state.header_value(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
        // Values may contain spaces inside, and any printable ASCII but ',' and '='.
        let state = TraceState::parse("a=x y!~\"{}").unwrap();
        assert_eq!(state.get("a"), Some("x y!~\"{}"));
        assert!(TraceState::parse("").unwrap().is_empty());
        assert!(TraceState::parse(" , ,").unwrap().is_empty());
    }

    #[test]
    fn tracestate_tenant_keys() {
        let state = TraceState::parse("fw529a3039@dt=FVOSVDRp,1tenant@sys_-*/=1").unwrap();
        assert_eq!(state.get("fw529a3039@dt"), Some("FVOSVDRp"));
        assert_eq!(state.get("1tenant@sys_-*/"), Some("1"));
        assert!(TraceState::parse("tenant@1sys=1").is_err());
        assert!(TraceState::parse("tenant@abcdefghijklmno=1").is_err()); // system of 15
        assert!(TraceState::parse("tenant@abcdefghijklmn=1").is_ok()); // system of 14
        assert!(TraceState::parse("@sys=1").is_err());
        assert!(TraceState::parse("tenant@=1").is_err());
        assert!(TraceState::parse("a@b@c=1").is_err());
        assert!(TraceState::parse(&format!("{}@s=1", "t".repeat(241))).is_ok());
        assert!(TraceState::parse(&format!("{}@s=1", "t".repeat(242))).is_err());
        // A simple key must start with a letter.
        assert!(TraceState::parse("1abc=1").is_err());
    }

    #[test]
    fn tracestate_limits() {
        let members: Vec<String> = (0..32).map(|i| format!("k{i}=v{i}")).collect();
        let state = TraceState::parse(&members.join(",")).unwrap();
        assert_eq!(state.header_value(), members.join(","));
        let members: Vec<String> = (0..33).map(|i| format!("k{i}=v{i}")).collect();
        let err = TraceState::parse(&members.join(",")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid tracestate: more than 32 list-members"
        );
        assert!(TraceState::parse(&format!("{}=1", "k".repeat(256))).is_ok());
        assert!(TraceState::parse(&format!("{}=1", "k".repeat(257))).is_err());
        assert!(TraceState::parse(&format!("k={}", "v".repeat(256))).is_ok());
        assert!(TraceState::parse(&format!("k={}", "v".repeat(257))).is_err());
    }

    #[test]
    fn tracestate_duplicates_rejected() {
        let err = TraceState::parse("rojo=1,congo=2,rojo=3").unwrap_err();
        assert!(matches!(err, PropagationError::Tracestate(_)));
        assert!(err.to_string().starts_with("invalid tracestate: "));
    }

    #[test]
    fn tracestate_invalid_chars_rejected() {
        for header in [
            "Rojo=1",
            "ro jo=1",
            "ro.jo=1",
            "rojo=",
            "rojo",
            "rojo=a=b",
            "rojo=é",
            "rojo=a\tb",
            "rojo=a\u{7f}",
            "rojo =1",
            "rojo= ",
            "=1",
            "rojo=1,congo",
        ] {
            assert!(TraceState::parse(header).is_err(), "{header:?}");
        }
        // A trailing space before a ',' is optional whitespace, not part of the value.
        assert_eq!(
            TraceState::parse("rojo=1 ,congo=2").unwrap().get("rojo"),
            Some("1")
        );
    }

    #[test]
    fn tracestate_insert() {
        let state = TraceState::parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").unwrap();
        let moved = state.insert("congo", "new").unwrap();
        assert_eq!(moved.header_value(), "congo=new,rojo=00f067aa0ba902b7");
        let added = state.insert("ours", "1").unwrap();
        assert_eq!(
            added.header_value(),
            "ours=1,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
        // The original is unchanged.
        assert_eq!(
            state.header_value(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
        assert!(state.insert("Bad", "1").is_err());
        assert!(state.insert("ok", "a,b").is_err());
        assert!(state.insert("ok", "").is_err());
        // Truncated to 32 members, dropping from the end.
        let members: Vec<String> = (0..32).map(|i| format!("k{i}=v{i}")).collect();
        let full = TraceState::parse(&members.join(",")).unwrap();
        let inserted = full.insert("new", "x").unwrap();
        assert_eq!(
            TraceState::parse(&inserted.header_value()).unwrap(),
            inserted
        );
        assert_eq!(inserted.get("new"), Some("x"));
        assert_eq!(inserted.get("k30"), Some("v30"));
        assert_eq!(inserted.get("k31"), None);
        // Re-inserting an existing key in a full state drops nothing else.
        let reinserted = full.insert("k31", "y").unwrap();
        assert!(reinserted.header_value().starts_with("k31=y,k0=v0,"));
        assert_eq!(reinserted.get("k30"), Some("v30"));
    }

    #[test]
    fn baggage_round_trip() {
        let header = "userId=alice,serverNode=DF%2028,isProduction=false";
        let baggage = Baggage::parse(header).unwrap();
        assert_eq!(baggage.get("userId"), Some("alice"));
        assert_eq!(baggage.get("serverNode"), Some("DF 28"));
        assert_eq!(baggage.get("isProduction"), Some("false"));
        assert_eq!(baggage.len(), 3);
        assert_eq!(
            baggage.iter().collect::<Vec<_>>(),
            [
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false")
            ]
        );
        assert_eq!(baggage.header_value(), header);

        let mut baggage = Baggage::default();
        assert!(baggage.is_empty());
        baggage.set("odd", "a b,c;d é%\"\\").unwrap();
        assert_eq!(
            baggage.header_value(),
            "odd=a%20b%2Cc%3Bd%20%C3%A9%25%22%5C"
        );
        let parsed = Baggage::parse(&baggage.header_value()).unwrap();
        assert_eq!(parsed, baggage);
        assert_eq!(parsed.get("odd"), Some("a b,c;d é%\"\\"));
        // set replaces in place.
        baggage.set("second", "2").unwrap();
        baggage.set("odd", "1").unwrap();
        assert_eq!(baggage.header_value(), "odd=1,second=2");
    }

    #[test]
    fn baggage_decoding_is_lenient() {
        let baggage = Baggage::parse(" k1 = v1 ,\t k2\t=\tv%zz , k3=%E9%ff ,, k4=%c3%a9 ").unwrap();
        assert_eq!(baggage.get("k1"), Some("v1"));
        assert_eq!(baggage.get("k2"), Some("v%zz"));
        assert_eq!(baggage.get("k3"), Some("\u{fffd}\u{fffd}"));
        assert_eq!(baggage.get("k4"), Some("é"));
        // Repeated key: first position, last value.
        let baggage = Baggage::parse("a=1,b=2,a=3").unwrap();
        assert_eq!(baggage.header_value(), "a=3,b=2");
        assert_eq!(Baggage::parse("k=").unwrap().get("k"), Some(""));
        assert!(Baggage::parse("").unwrap().is_empty());
    }

    #[test]
    fn baggage_properties_kept() {
        let header = "key1=value1;property1;property2=x, key2 = value2 ; p = 3 ;; flag ";
        let baggage = Baggage::parse(header).unwrap();
        assert_eq!(baggage.get("key1"), Some("value1"));
        assert_eq!(baggage.get("key2"), Some("value2"));
        assert_eq!(
            baggage.header_value(),
            "key1=value1;property1;property2=x,key2=value2;p=3;flag"
        );
        assert_eq!(Baggage::parse(&baggage.header_value()).unwrap(), baggage);
        assert!(Baggage::parse("k=v;bad name=1").is_err());
        assert!(Baggage::parse("k=v;p=a b").is_err());
        assert!(Baggage::parse("k=v;=1").is_err());
    }

    #[test]
    fn baggage_limits() {
        let entries: Vec<String> = (0..180).map(|i| format!("k{i}=v")).collect();
        assert_eq!(Baggage::parse(&entries.join(",")).unwrap().len(), 180);
        let entries: Vec<String> = (0..181).map(|i| format!("k{i}=v")).collect();
        let err = Baggage::parse(&entries.join(",")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid baggage: more than 180 list-members"
        );

        let at_limit = format!("k={}", "v".repeat(8190));
        assert_eq!(at_limit.len(), 8192);
        assert!(Baggage::parse(&at_limit).is_ok());
        let err = Baggage::parse(&format!("{at_limit}v")).unwrap_err();
        assert_eq!(err.to_string(), "invalid baggage: longer than 8192 bytes");

        // set keeps the result within the limits.
        let mut baggage = Baggage::default();
        for i in 0..180 {
            baggage.set(&format!("k{i}"), "v").unwrap();
        }
        assert!(baggage.set("one-more", "v").is_err());
        baggage.set("k0", "replaced").unwrap();
        assert_eq!(baggage.formatted_len(), baggage.header_value().len());
        // A header that only exceeds the limit once re-encoded is refused too.
        let inflating = format!("k={}", "%ff".repeat(2730));
        assert!(inflating.len() <= 8192);
        assert!(Baggage::parse(&inflating).is_err());
        let mut big = Baggage::default();
        big.set("k", &"v".repeat(8190)).unwrap();
        assert!(big.set("k", &"v".repeat(8191)).is_err());
        big.set("k", &" ".repeat(2730)).unwrap(); // 2 + 3 * 2730 = 8192
        assert_eq!(big.header_value().len(), 8192);
        assert!(big.set("x", "").is_err());
        assert_eq!(Baggage::parse(&big.header_value()).unwrap(), big);
    }

    #[test]
    fn baggage_invalid_keys_rejected() {
        for header in [
            "ke y=1", "=1", "k(=1", "k\"=1", "ké=1", "novalue", "k=v,=x", "k=a b", "k=a\\b",
        ] {
            assert!(
                matches!(Baggage::parse(header), Err(PropagationError::Baggage(_))),
                "{header:?}"
            );
        }
        let mut baggage = Baggage::default();
        assert!(baggage.set("bad key", "v").is_err());
        assert!(baggage.set("", "v").is_err());
        assert!(baggage.set("k,", "v").is_err());
        assert!(baggage.is_empty());
    }

    fn context() -> TraceContext {
        TraceContext {
            trace_id: TRACE,
            span_id: SPAN,
            sampled: true,
            trace_state: TraceState::parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").unwrap(),
        }
    }

    fn baggage() -> Baggage {
        Baggage::parse("userId=alice,serverNode=DF%2028;region=ny4").unwrap()
    }

    #[test]
    fn carrier_case_insensitive_extraction() {
        let mut map = HashMap::new();
        map.insert("Traceparent".to_owned(), VALID.to_owned());
        map.insert("TraceState".to_owned(), "rojo=1".to_owned());
        map.insert("BAGGAGE".to_owned(), "k=v".to_owned());
        let (ctx, baggage, problems) = extract(&map).unwrap().unwrap();
        assert_eq!(
            (ctx.trace_id, ctx.span_id, ctx.sampled),
            (TRACE, SPAN, true)
        );
        assert_eq!(ctx.trace_state.get("rojo"), Some("1"));
        assert_eq!(baggage.get("k"), Some("v"));
        assert!(problems.is_empty());

        let list = vec![("TRACEPARENT".to_owned(), VALID.to_owned())];
        let (ctx, baggage, problems) = extract(&list).unwrap().unwrap();
        assert_eq!(ctx.trace_id, TRACE);
        assert!(ctx.trace_state.is_empty() && baggage.is_empty() && problems.is_empty());

        // Exact match wins over a case variant.
        let list = vec![
            ("X".to_owned(), "upper".to_owned()),
            ("x".to_owned(), "lower".to_owned()),
        ];
        assert_eq!(Carrier::get(&list, "x"), Some("lower"));
        assert_eq!(Carrier::get(&list, "X"), Some("upper"));
    }

    #[test]
    fn carrier_set_replaces_case_variants() {
        let mut map = HashMap::new();
        map.insert("Traceparent".to_owned(), "old".to_owned());
        Carrier::set(&mut map, "traceparent", "new".to_owned());
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("traceparent").map(String::as_str), Some("new"));

        let mut list = vec![
            ("a".to_owned(), "1".to_owned()),
            ("TraceParent".to_owned(), "old".to_owned()),
            ("b".to_owned(), "2".to_owned()),
            ("TRACEPARENT".to_owned(), "older".to_owned()),
        ];
        Carrier::set(&mut list, "traceparent", "new".to_owned());
        let expected: Vec<(String, String)> = [("a", "1"), ("traceparent", "new"), ("b", "2")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(list, expected);
        Carrier::set(&mut list, "Baggage", "k=v".to_owned());
        assert_eq!(list.last(), Some(&("baggage".to_owned(), "k=v".to_owned())));
    }

    #[test]
    fn inject_extract_round_trip() {
        let ctx = context();
        let bag = baggage();

        let mut map: HashMap<String, String> = HashMap::new();
        inject(&ctx, &bag, &mut map);
        assert_eq!(map.get(TRACEPARENT).map(String::as_str), Some(VALID));
        assert_eq!(
            map.get(TRACESTATE).map(String::as_str),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert_eq!(
            map.get(BAGGAGE).map(String::as_str),
            Some("userId=alice,serverNode=DF%2028;region=ny4")
        );
        let (got, got_bag, problems) = extract(&map).unwrap().unwrap();
        assert_eq!(got, ctx);
        assert_eq!(got_bag, bag);
        assert!(problems.is_empty());

        let mut list: Vec<(String, String)> = Vec::new();
        inject(&ctx, &bag, &mut list);
        assert_eq!(list.len(), 3);
        let (got, got_bag, problems) = extract(&list).unwrap().unwrap();
        assert_eq!(got, ctx);
        assert_eq!(got_bag, bag);
        assert!(problems.is_empty());

        // Empty state and baggage are not written; unsampled round-trips.
        let bare = TraceContext {
            sampled: false,
            trace_state: TraceState::default(),
            ..ctx
        };
        let mut list: Vec<(String, String)> = Vec::new();
        inject(&bare, &Baggage::default(), &mut list);
        assert_eq!(list.len(), 1);
        let (got, got_bag, _) = extract(&list).unwrap().unwrap();
        assert_eq!(got, bare);
        assert!(got_bag.is_empty());

        // An invalid context is not written; the baggage still is.
        let invalid = TraceContext {
            trace_id: 0,
            ..context()
        };
        let mut list: Vec<(String, String)> = Vec::new();
        inject(&invalid, &bag, &mut list);
        assert_eq!(list, vec![(BAGGAGE.to_owned(), bag.header_value())]);
        assert_eq!(extract(&list), Ok(None));
    }

    #[test]
    fn extract_tolerates_bad_tracestate_and_baggage() {
        let mut map = HashMap::new();
        map.insert(TRACEPARENT.to_owned(), VALID.to_owned());
        map.insert(TRACESTATE.to_owned(), "rojo=1,rojo=2".to_owned());
        map.insert(BAGGAGE.to_owned(), "bad key=1".to_owned());
        let (ctx, baggage, problems) = extract(&map).unwrap().unwrap();
        assert_eq!((ctx.trace_id, ctx.span_id), (TRACE, SPAN));
        assert!(ctx.trace_state.is_empty());
        assert!(baggage.is_empty());
        assert_eq!(problems.len(), 2);
        assert!(matches!(problems[0], PropagationError::Tracestate(_)));
        assert!(matches!(problems[1], PropagationError::Baggage(_)));

        // No traceparent: nothing to continue.
        let empty: HashMap<String, String> = HashMap::new();
        assert_eq!(extract(&empty), Ok(None));
        // A malformed traceparent is an error.
        let mut map = HashMap::new();
        map.insert(TRACEPARENT.to_owned(), "00-zz".to_owned());
        assert!(matches!(
            extract(&map),
            Err(PropagationError::Traceparent(_))
        ));
    }

    /// A small deterministic generator (64-bit LCG, high bits used).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }

        fn below(&mut self, n: usize) -> usize {
            self.next() as usize % n
        }
    }

    const PALETTE: &[char] = &[
        '0', '1', '9', 'a', 'b', 'f', 'g', 'z', 'A', 'F', 'Z', '-', '-', '-', ',', ',', '=', '=',
        ';', '%', '@', '_', '*', '/', ' ', '\t', '\n', '\r', '\u{0}', '\u{1}', '\u{7f}', '"', '\\',
        '.', '~', 'é', '€', '😀', '\u{fffd}', '\u{85}', '\u{a0}', '\u{2028}',
    ];

    fn random_string(rng: &mut Lcg) -> String {
        let seeds = [
            VALID,
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,t@s=v",
            "userId=alice,serverNode=DF%2028;p=1;q,isProduction=false",
        ];
        let mut chars: Vec<char> = if rng.below(2) == 0 {
            seeds[rng.below(seeds.len())].chars().collect()
        } else {
            Vec::new()
        };
        if chars.is_empty() {
            let len = rng.below(80);
            for _ in 0..len {
                let c = if rng.below(3) == 0 {
                    char::from_u32(rng.next() % 0x11_0000).unwrap_or('\u{fffd}')
                } else {
                    PALETTE[rng.below(PALETTE.len())]
                };
                chars.push(c);
            }
        } else {
            for _ in 0..rng.below(4) {
                let c = PALETTE[rng.below(PALETTE.len())];
                match rng.below(3) {
                    0 if !chars.is_empty() => {
                        let i = rng.below(chars.len());
                        chars[i] = c;
                    }
                    1 if !chars.is_empty() => {
                        chars.remove(rng.below(chars.len()));
                    }
                    _ => {
                        let i = rng.below(chars.len() + 1);
                        chars.insert(i, c);
                    }
                }
            }
        }
        chars.into_iter().collect()
    }

    #[test]
    fn fuzz_parsers_never_panic_and_round_trip() {
        let mut rng = Lcg(0x5eed_cafe);
        let (mut traceparents, mut states, mut baggages) = (0, 0, 0);
        for _ in 0..20_000 {
            let input = random_string(&mut rng);
            if let Ok((trace_id, span_id, flags)) = parse_traceparent(&input) {
                traceparents += 1;
                let formatted = format_traceparent(trace_id, span_id, flags & 1 == 1);
                assert_eq!(
                    parse_traceparent(&formatted),
                    Ok((trace_id, span_id, flags & 1)),
                    "{input:?}"
                );
            }
            if let Ok(state) = TraceState::parse(&input) {
                states += 1;
                assert_eq!(
                    TraceState::parse(&state.header_value()),
                    Ok(state),
                    "{input:?}"
                );
            }
            if let Ok(baggage) = Baggage::parse(&input) {
                baggages += 1;
                assert_eq!(
                    Baggage::parse(&baggage.header_value()),
                    Ok(baggage),
                    "{input:?}"
                );
            }
            let mut map = HashMap::new();
            map.insert(TRACEPARENT.to_owned(), input.clone());
            map.insert(TRACESTATE.to_owned(), input.clone());
            map.insert(BAGGAGE.to_owned(), input);
            if let Ok(Some((ctx, baggage, _))) = extract(&map) {
                let mut out: Vec<(String, String)> = Vec::new();
                inject(&ctx, &baggage, &mut out);
                let (again, again_baggage, problems) = extract(&out).unwrap().unwrap();
                assert_eq!(again, ctx);
                assert_eq!(again_baggage, baggage);
                assert!(problems.is_empty());
            }
        }
        // The generator reaches the accepting paths too, not only the refusals.
        assert!(traceparents > 100, "{traceparents}");
        assert!(states > 100, "{states}");
        assert!(baggages > 100, "{baggages}");
    }
}
