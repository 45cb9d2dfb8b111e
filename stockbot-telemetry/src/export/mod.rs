//! Buffering and export: the one bounded queue, batcher, retry policy and drop accounting that
//! every signal and sink shares, the background worker, and the sinks.

pub(crate) mod accounting;
pub(crate) mod batch;
pub(crate) mod encode;
pub(crate) mod exposition;
#[cfg(feature = "otlp")]
pub(crate) mod otlp_client;
#[cfg(feature = "otlp")]
pub(crate) mod otlp_metrics;
#[cfg(feature = "otlp")]
pub(crate) mod otlp_traces;
pub(crate) mod pipeline;
pub(crate) mod push;
pub(crate) mod queue;
pub(crate) mod retry;
pub(crate) mod scrape;
pub(crate) mod sink;
pub(crate) mod span_worker;
pub(crate) mod worker;
