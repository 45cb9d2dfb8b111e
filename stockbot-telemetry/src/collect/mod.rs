//! Collection on the caller's thread: the `tracing` layer, the `log` bridge, the clock, and the
//! compact records handed to the pipeline.

pub(crate) mod clock;
pub(crate) mod filter;
mod layer;
pub(crate) mod metrics;
pub(crate) mod record;
pub(crate) mod span;
pub(crate) mod system;

pub(crate) use layer::LogCollector;
pub use layer::TelemetryLayer;
pub(crate) use span::random_u64;
