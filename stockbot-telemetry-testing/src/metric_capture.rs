//! Assertions over captured metrics: the exposition the SDK would serve, parsed into samples.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One sample of the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series name as exposed (`…_bucket`, `…_sum`, `…_count` for histograms).
    pub name: String,
    /// Labels, the SDK's global labels (service, environment, deployment_mode) included.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// A snapshot of every metric of a capture.
#[derive(Debug, Clone)]
pub struct Metrics {
    text: String,
    samples: Vec<Sample>,
}

fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(eq) = s[i..].find('=') else { break };
        let key = s[i..i + eq].trim_start_matches(',').to_owned();
        let mut j = i + eq + 2; // skip `="`
        let start = j;
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        labels.insert(key, unescape(&s[start..j.min(s.len())]));
        i = j + 1;
    }
    labels
}

impl Metrics {
    /// Parses a Prometheus text exposition.
    ///
    /// # Panics
    /// If a sample line is malformed (that would be an SDK bug).
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (series, value) = line
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("bad sample: {line}"));
                let value = match value {
                    "NaN" => f64::NAN,
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
                };
                let (name, labels) = match series.split_once('{') {
                    Some((n, rest)) => (n.to_owned(), parse_labels(rest.trim_end_matches('}'))),
                    None => (series.to_owned(), BTreeMap::new()),
                };
                Sample {
                    name,
                    labels,
                    value,
                }
            })
            .collect();
        Metrics {
            text: text.to_owned(),
            samples,
        }
    }

    /// Every sample.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The exposition text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Samples named `name` whose labels include all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// Sum of the samples named `name` matching `labels` (0 when none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|s| s.value).sum()
    }

    fn fail(&self, what: &str, name: &str) -> ! {
        let base = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        let mut dump = String::new();
        for s in self.samples.iter().filter(|s| s.name.starts_with(base)) {
            let _ = writeln!(dump, "  {} {:?} {}", s.name, s.labels, s.value);
        }
        if dump.is_empty() {
            dump = format!("  (no series of `{base}`; captured metrics: {})\n", {
                let mut names: Vec<_> = self.samples.iter().map(|s| s.name.as_str()).collect();
                names.dedup();
                names.join(", ")
            });
        }
        panic!("{what}\n{dump}");
    }

    /// Asserts the value of counter or gauge `name` (summed over series matching `labels`).
    ///
    /// # Panics
    /// Otherwise, with every series of the metric.
    #[track_caller]
    pub fn assert_value(&self, name: &str, labels: &[(&str, &str)], expected: f64) {
        let v = self.value(name, labels);
        if (v - expected).abs() > 1e-9 {
            self.fail(
                &format!("`{name}` {labels:?} is {v}, expected {expected}"),
                name,
            );
        }
    }

    /// Asserts counter `name` (matching `labels`) grew by `by` since `earlier`.
    ///
    /// # Panics
    /// Otherwise, with every series of the metric.
    #[track_caller]
    pub fn assert_increased(
        &self,
        earlier: &Metrics,
        name: &str,
        labels: &[(&str, &str)],
        by: f64,
    ) {
        let delta = self.value(name, labels) - earlier.value(name, labels);
        if (delta - by).abs() > 1e-9 {
            self.fail(
                &format!("`{name}` {labels:?} increased by {delta}, expected {by}"),
                name,
            );
        }
    }

    /// Asserts histogram `name` (matching `labels`) observed at least one value ≥ `v`, at
    /// bucket resolution: some observation landed above the largest bucket bound below `v`.
    ///
    /// # Panics
    /// Otherwise, with every series of the metric.
    #[track_caller]
    pub fn assert_observed_at_least(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        let count = self.value(&format!("{name}_count"), labels);
        let below: f64 = self
            .find(&format!("{name}_bucket"), labels)
            .iter()
            .filter_map(|s| {
                let le: f64 = s.labels.get("le")?.parse().ok()?;
                (le < v).then_some((le, s.value))
            })
            .fold((f64::NEG_INFINITY, 0.0), |best, (le, n)| {
                if le > best.0 { (le, n) } else { best }
            })
            .1;
        if count - below <= 0.0 {
            self.fail(
                &format!("`{name}` {labels:?} observed no value ≥ {v} ({count} observations)"),
                name,
            );
        }
    }

    /// Asserts no series of `name` carries label `label`.
    ///
    /// # Panics
    /// Otherwise, with every series of the metric.
    #[track_caller]
    pub fn assert_no_label(&self, name: &str, label: &str) {
        if self
            .samples
            .iter()
            .any(|s| s.name.starts_with(name) && s.labels.contains_key(label))
        {
            self.fail(
                &format!("a series of `{name}` carries label `{label}`"),
                name,
            );
        }
    }

    /// Asserts at most `n` label sets of counter or gauge `name` exist.
    ///
    /// # Panics
    /// Otherwise, with every series of the metric.
    #[track_caller]
    pub fn assert_series_at_most(&self, name: &str, n: usize) {
        let count = self.samples.iter().filter(|s| s.name == name).count();
        if count > n {
            self.fail(
                &format!("`{name}` has {count} series, expected at most {n}"),
                name,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_labels_and_special_values() {
        let m = Metrics::parse(
            "# TYPE a_total counter\na_total{k=\"x \\\"y\\\" \\\\ z\",v=\"1\"} 3\ng NaN\nh_bucket{le=\"+Inf\"} 2\n",
        );
        assert_eq!(m.samples()[0].labels["k"], "x \"y\" \\ z");
        assert_eq!(m.value("a_total", &[("v", "1")]), 3.0);
        assert!(m.samples()[1].value.is_nan());
        assert_eq!(m.samples()[2].labels["le"], "+Inf");
    }
}
