//! Buffering and export: the one bounded queue, batcher, retry policy and drop accounting that
//! every signal and sink shares, the background worker, and the sinks.

pub(crate) mod accounting;
pub(crate) mod batch;
pub(crate) mod encode;
pub(crate) mod exposition;
#[cfg(feature = "otlp")]
pub(crate) mod otlp_client;
#[cfg(feature = "otlp")]
pub(crate) mod otlp_logs;
#[cfg(feature = "otlp")]
pub(crate) mod otlp_metrics;
#[cfg(feature = "otlp")]
pub(crate) mod otlp_traces;
pub(crate) mod pipeline;
pub(crate) mod push;
pub(crate) mod queue;
pub(crate) mod retry;
pub(crate) mod scrape;
pub(crate) mod shipper;
pub(crate) mod sink;
pub(crate) mod span_worker;
pub(crate) mod spool;
mod sync;
pub(crate) mod tls;
pub(crate) mod worker;

/// gzip at the fastest level (request bodies of the exporters).
pub(crate) fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}
