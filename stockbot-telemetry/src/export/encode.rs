//! JSON encoding helpers: every string is escaped so that one record is exactly one line and
//! no control character (CR, LF, ANSI escapes) reaches a terminal or a log agent raw.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string (with quotes).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_inner(out, s);
    out.push(b'"');
}

/// Appends `s` escaped, without quotes.
pub(crate) fn write_str_inner(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `,"key":` (or `"key":` right after the opening brace).
pub(crate) fn write_key(out: &mut Vec<u8>, key: &str) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    write_str(out, key);
    out.push(b':');
}

/// Appends `,"prefix<key>":`.
pub(crate) fn write_prefixed_key(out: &mut Vec<u8>, prefix: &str, key: &str) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    out.push(b'"');
    write_str_inner(out, prefix);
    write_str_inner(out, key);
    out.extend_from_slice(b"\":");
}

pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

/// Finite floats as JSON numbers; NaN and infinities (not representable in JSON) as `null`.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Lowercase hex of `width` digits.
pub(crate) fn write_hex(out: &mut Vec<u8>, v: u128, width: usize) {
    out.push(b'"');
    for i in (0..width).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_control_characters() {
        assert_eq!(s("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(s("line1\r\nline2"), r#""line1\r\nline2""#);
        assert_eq!(s("\u{1b}[31mred\u{7f}"), r#""\u001b[31mred\u007f""#);
        assert_eq!(s("héllo → ✓"), "\"héllo → ✓\"");
        let parsed: String = serde_json::from_str(&s("\u{0}\u{1f}x\ty")).unwrap();
        assert_eq!(parsed, "\u{0}\u{1f}x\ty");
    }

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        write_i64(&mut out, i64::MIN);
        out.push(b' ');
        write_u64(&mut out, 0);
        out.push(b' ');
        write_f64(&mut out, f64::NAN);
        out.push(b' ');
        write_f64(&mut out, 101.25);
        out.push(b' ');
        write_hex(&mut out, 0xab, 4);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-9223372036854775808 0 null 101.25 \"00ab\""
        );
    }
}
