//! A small YAML writer for the generated files: block mappings and sequences, every string
//! double-quoted with JSON escapes (valid YAML), so nothing a user wrote can change the
//! structure.

use std::fmt::Write as _;

use serde_json::Value;

/// `value` as a YAML document.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    block(&mut out, value, 0);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(o) if o.is_empty() => out.push_str("{}"),
        // Nested collections are written as blocks by the callers.
        other => out.push_str(&other.to_string()),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

fn key(out: &mut String, k: &str) {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !k.starts_with('-');
    if plain {
        out.push_str(k);
    } else {
        out.push_str(&Value::String(k.to_owned()).to_string());
    }
}

fn block(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, val) in o {
                out.push_str(&pad);
                key(out, k);
                out.push(':');
                if is_block(val) {
                    out.push('\n');
                    block(out, val, indent + 2);
                } else {
                    out.push(' ');
                    scalar(out, val);
                    out.push('\n');
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                out.push_str(&pad);
                out.push_str("- ");
                if is_block(item) {
                    // The first line of the item goes after the dash.
                    let mut inner = String::new();
                    block(&mut inner, item, indent + 2);
                    out.push_str(inner.trim_start());
                } else {
                    scalar(out, item);
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            scalar(out, other);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blocks_nest_and_strings_are_quoted() {
        let v = json!({
            "groups": [
                {"name": "a: b", "rules": [{"record": "x", "labels": {"slo": "q\"uote"}}]},
                {"name": "empty", "rules": []}
            ],
            "n": 1.5,
            "weird key": true
        });
        assert_eq!(
            to_yaml(&v),
            "groups:\n  - name: \"a: b\"\n    rules:\n      - labels:\n          slo: \"q\\\"uote\"\n        record: \"x\"\n  - name: \"empty\"\n    rules: []\nn: 1.5\n\"weird key\": true\n"
        );
    }
}
