//! Where encoded batches go. Sinks are internal: stdout, the rolling file, and writers handed
//! to the builder (tests, custom agents).

pub(crate) mod elasticsearch;
pub(crate) mod file;

use std::io::{self, Write};

/// What a sink did with a batch it accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    /// Records the receiver refused inside an accepted batch (OTLP partial success,
    /// Elasticsearch 4xx items).
    pub(crate) rejected: u64,
    /// Records still failing when the sink's retries ran out.
    pub(crate) failed: u64,
    /// Single records too large for one request.
    pub(crate) oversize: u64,
    /// Records handed to an asynchronous stage (a network sink's shipper) that counts their
    /// outcome itself.
    pub(crate) deferred: u64,
}

/// A destination of encoded JSON-lines batches.
pub(crate) trait Sink: Send {
    /// Writes a batch of complete lines.
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<Written>;
    /// Pushes buffered bytes to the OS.
    fn flush(&mut self) -> io::Result<()>;
    /// Writes a batch whose lines are flagged audit-class or not (`audit` has one flag per
    /// line, or is empty when the caller does not know).
    fn write_lines(&mut self, bytes: &[u8], audit: &[bool]) -> io::Result<Written> {
        let _ = audit;
        self.write_batch(bytes)
    }
    /// Waits until everything handed over is delivered or safely spooled, or `deadline`
    /// passes; returns whether it was. Synchronous sinks are always done.
    fn sync(&mut self, deadline: std::time::Instant) -> bool {
        let _ = deadline;
        true
    }
    /// Tells the sink's own thread, if it has one, to wind up by `deadline` without waiting for
    /// it, so that several sinks stop in parallel (`close` then waits).
    fn stop(&mut self, deadline: std::time::Instant) {
        let _ = deadline;
    }
    /// Delivers or spools what it holds and stops the sink's own thread, if it has one, by
    /// `deadline` (final: it is dropped next); returns whether it finished in time.
    fn close(&mut self, deadline: std::time::Instant) -> bool {
        let _ = deadline;
        true
    }
    /// Gives the sink its counters, for sinks that count outcomes themselves.
    fn bind(&mut self, acct: &std::sync::Arc<super::accounting::Accounting>, index: usize) {
        let _ = (acct, index);
    }
}

/// Any `Write`: stdout, a pipe, an in-memory buffer.
pub(crate) struct WriterSink {
    writer: Box<dyn Write + Send>,
    /// A write failed part-way: the next batch starts with a newline so a half-written line
    /// never merges with the next record.
    torn: bool,
}

impl WriterSink {
    pub(crate) fn new(writer: Box<dyn Write + Send>) -> Self {
        WriterSink {
            writer,
            torn: false,
        }
    }
}

impl Sink for WriterSink {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<Written> {
        if self.torn {
            self.writer.write_all(b"\n")?;
            self.torn = false;
        }
        let result = self
            .writer
            .write_all(bytes)
            .and_then(|()| self.writer.flush());
        self.torn = result.is_err();
        result.map(|()| Written::default())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Sink for file::RollingFile {
    fn write_batch(&mut self, bytes: &[u8]) -> io::Result<Written> {
        file::RollingFile::write_batch(self, bytes).map(|()| Written::default())
    }
    fn flush(&mut self) -> io::Result<()> {
        file::RollingFile::flush(self)
    }
}
