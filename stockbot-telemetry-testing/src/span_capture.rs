//! Assertions over captured spans (the finished spans the SDK exported, as JSON lines).

use std::fmt::Write as _;
use std::sync::Arc;

pub use stockbot_telemetry::analysis::{FinishedSpan, SpanEvent, SpanKind, SpanLink};

type Filter = (String, Arc<dyn Fn(&FinishedSpan) -> bool + Send + Sync>);

/// A query over captured spans: add filters (each returns a new query), then assert.
#[derive(Clone)]
pub struct Spans {
    all: Arc<Vec<FinishedSpan>>,
    filters: Vec<Filter>,
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans")
            .field("captured", &self.all.len())
            .field(
                "filters",
                &self.filters.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Spans {
    pub(crate) fn new(all: Vec<FinishedSpan>) -> Self {
        Spans {
            all: Arc::new(all),
            filters: Vec::new(),
        }
    }

    fn with(
        &self,
        description: String,
        f: impl Fn(&FinishedSpan) -> bool + Send + Sync + 'static,
    ) -> Self {
        let mut next = self.clone();
        next.filters.push((description, Arc::new(f)));
        next
    }

    /// Spans named `name`.
    pub fn named(&self, name: &str) -> Self {
        let n = name.to_owned();
        self.with(format!("name = {name:?}"), move |s| s.name == n)
    }

    /// Spans whose attribute `key` (canonical name, e.g. `order.cl_ord_id`) is `value`.
    pub fn attribute(&self, key: &str, value: &str) -> Self {
        let (k, v) = (key.to_owned(), value.to_owned());
        self.with(format!("{key} = {value:?}"), move |s| {
            s.attribute(&k) == Some(v.as_str())
        })
    }

    /// Spans of `kind`.
    pub fn kind(&self, kind: SpanKind) -> Self {
        self.with(format!("kind = {}", kind.as_str()), move |s| s.kind == kind)
    }

    /// Spans with (or without) error status.
    pub fn error(&self, error: bool) -> Self {
        self.with(format!("error = {error}"), move |s| s.error == error)
    }

    /// Direct children of `parent`.
    pub fn child_of(&self, parent: &FinishedSpan) -> Self {
        let (trace, id) = (parent.trace_id, parent.span_id);
        self.with(format!("child of {:016x}", id), move |s| {
            s.trace_id == trace && s.parent_span_id == Some(id)
        })
    }

    /// Spans whose status description (the first error event's message) is `message`.
    pub fn status_message(&self, message: &str) -> Self {
        let m = message.to_owned();
        self.with(format!("status message = {message:?}"), move |s| {
            s.status_message == m
        })
    }

    /// Spans with an event whose message is `name`.
    pub fn with_event(&self, name: &str) -> Self {
        let n = name.to_owned();
        self.with(format!("has event {name:?}"), move |s| {
            s.event(&n).is_some()
        })
    }

    /// Spans with an event `name` whose attribute `key` is `value` (e.g. `level` = `ERROR`).
    pub fn with_event_attribute(&self, name: &str, key: &str, value: &str) -> Self {
        let (n, k, v) = (name.to_owned(), key.to_owned(), value.to_owned());
        self.with(
            format!("has event {name:?} with {key} = {value:?}"),
            move |s| {
                s.events
                    .iter()
                    .any(|e| e.name == n && e.attribute(&k) == Some(v.as_str()))
            },
        )
    }

    /// Spans linked to `target` (by `follows_from` or `stockbot_telemetry::add_link`).
    pub fn linked_to(&self, target: &FinishedSpan) -> Self {
        let link = SpanLink {
            trace_id: target.trace_id,
            span_id: target.span_id,
        };
        self.with(format!("linked to {:016x}", link.span_id), move |s| {
            s.links.contains(&link)
        })
    }

    /// Spans of the trace `trace_id`.
    pub fn in_trace(&self, trace_id: u128) -> Self {
        self.with(format!("trace = {trace_id:032x}"), move |s| {
            s.trace_id == trace_id
        })
    }

    /// Root spans of this process (no parent, or a remote parent not captured here).
    pub fn roots(&self) -> Self {
        let all = Arc::clone(&self.all);
        self.with("root".into(), move |s| {
            s.parent_span_id.is_none_or(|p| {
                !all.iter()
                    .any(|o| o.trace_id == s.trace_id && o.span_id == p)
            })
        })
    }

    /// The matching spans.
    pub fn collect(&self) -> Vec<FinishedSpan> {
        self.all
            .iter()
            .filter(|s| self.filters.iter().all(|(_, f)| f(s)))
            .cloned()
            .collect()
    }

    fn fail(&self, what: &str) -> ! {
        let filters: Vec<_> = self.filters.iter().map(|(d, _)| d.as_str()).collect();
        let mut dump = format!("captured {} span(s):\n", self.all.len());
        for s in self.all.iter() {
            let _ = write!(
                dump,
                "  {} [{}] {} trace={:032x} span={:016x} parent={} {}µs{}",
                s.service,
                s.kind.as_str(),
                s.name,
                s.trace_id,
                s.span_id,
                s.parent_span_id.map_or("-".into(), |p| format!("{p:016x}")),
                s.duration_nanos() / 1000,
                if s.error { " ERROR" } else { "" }
            );
            for (k, v) in &s.attributes {
                let _ = write!(dump, " {k}={v:?}");
            }
            if !s.status_message.is_empty() {
                let _ = write!(dump, " status={:?}", s.status_message);
            }
            for l in &s.links {
                let _ = write!(dump, " link={:016x}", l.span_id);
            }
            dump.push('\n');
            for e in &s.events {
                let _ = write!(dump, "    event {:?}", e.name);
                for (k, v) in &e.attributes {
                    let _ = write!(dump, " {k}={v:?}");
                }
                dump.push('\n');
            }
        }
        panic!(
            "{what}\n  query: {}\n{dump}",
            if filters.is_empty() {
                "(all spans)".into()
            } else {
                filters.join(", ")
            }
        );
    }

    /// Asserts exactly one span matches and returns it.
    ///
    /// # Panics
    /// Otherwise, with a dump of every captured span.
    #[track_caller]
    pub fn assert_one(&self) -> FinishedSpan {
        let found = self.collect();
        if found.len() != 1 {
            self.fail(&format!(
                "expected exactly one matching span, found {}",
                found.len()
            ));
        }
        found.into_iter().next().expect("one span")
    }

    /// Asserts exactly `n` spans match.
    ///
    /// # Panics
    /// Otherwise, with a dump.
    #[track_caller]
    pub fn assert_count(&self, n: usize) -> Vec<FinishedSpan> {
        let found = self.collect();
        if found.len() != n {
            self.fail(&format!(
                "expected {n} matching spans, found {}",
                found.len()
            ));
        }
        found
    }

    /// Asserts no span matches.
    ///
    /// # Panics
    /// Otherwise, with a dump.
    #[track_caller]
    pub fn assert_none(&self) {
        let n = self.collect().len();
        if n != 0 {
            self.fail(&format!("expected no matching span, found {n}"));
        }
    }

    /// Asserts every matching span has attribute `key` (and that at least one matches).
    ///
    /// # Panics
    /// Otherwise, with a dump.
    #[track_caller]
    pub fn assert_every_has(&self, key: &str) {
        let found = self.collect();
        if found.is_empty() {
            self.fail("expected matching spans, found none");
        }
        if let Some(s) = found.iter().find(|s| s.attribute(key).is_none()) {
            self.fail(&format!(
                "span {:?} ({:016x}) has no attribute `{key}`",
                s.name, s.span_id
            ));
        }
    }
}
