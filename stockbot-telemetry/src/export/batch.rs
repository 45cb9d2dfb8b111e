//! The one batcher: encoded records accumulate until a count, byte or time limit is reached.

use std::time::Instant;

/// Limits of one batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub(crate) max_records: usize,
    pub(crate) max_bytes: usize,
}

/// Encoded records waiting to be handed to the sinks.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) bytes: Vec<u8>,
    pub(crate) records: usize,
    /// Per record: audit-class or not (log batches; empty for spans).
    pub(crate) audit: Vec<bool>,
    /// When the first record of the batch was added (the time limit is the worker's flush
    /// interval; this is kept for export latency).
    opened: Option<Instant>,
    limits: BatchLimits,
}

impl Batch {
    pub(crate) fn new(limits: BatchLimits) -> Self {
        Batch {
            bytes: Vec::with_capacity(limits.max_bytes.min(1 << 20)),
            records: 0,
            audit: Vec::new(),
            opened: None,
            limits,
        }
    }

    /// Marks that one more record was appended to `bytes`.
    pub(crate) fn record_added(&mut self, now: Instant) {
        self.records += 1;
        self.opened.get_or_insert(now);
    }

    /// Marks that one more log record, audit-class or not, was appended to `bytes`.
    pub(crate) fn line_added(&mut self, now: Instant, audit: bool) {
        self.records += 1;
        self.audit.push(audit);
        self.opened.get_or_insert(now);
    }

    /// Whether the count or byte limit is reached.
    pub(crate) fn is_full(&self) -> bool {
        self.records >= self.limits.max_records || self.bytes.len() >= self.limits.max_bytes
    }

    /// How long the oldest record of the batch has waited.
    pub(crate) fn age(&self, now: Instant) -> Option<std::time::Duration> {
        self.opened.map(|t| now.duration_since(t))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.records = 0;
        self.audit.clear();
        self.opened = None;
        if self.bytes.capacity() > 4 * self.limits.max_bytes.max(1 << 16) {
            self.bytes.shrink_to(self.limits.max_bytes.min(1 << 20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_by_count_bytes_and_time() {
        let limits = BatchLimits {
            max_records: 2,
            max_bytes: 10,
        };
        let now = Instant::now();
        let mut b = Batch::new(limits);
        assert!(!b.is_full() && b.is_empty());
        b.bytes.extend_from_slice(b"abc\n");
        b.record_added(now);
        assert!(!b.is_full());
        assert_eq!(b.age(now), Some(std::time::Duration::ZERO));
        b.bytes.extend_from_slice(b"defghijk\n");
        b.record_added(now);
        assert!(b.is_full());
        b.clear();
        assert!(b.is_empty() && b.age(now).is_none());
        b.bytes.extend_from_slice(b"0123456789\n");
        b.record_added(now);
        assert!(b.is_full());
    }
}
