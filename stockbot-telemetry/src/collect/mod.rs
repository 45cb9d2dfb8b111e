//! Collection on the caller's thread: the `tracing` layer, the `log` bridge, the clock, and the
//! compact records handed to the pipeline.

pub(crate) mod clock;
pub(crate) mod filter;
mod layer;
pub(crate) mod metrics;
pub(crate) mod periodic;
pub mod propagation;
pub(crate) mod record;
pub(crate) mod slo;
pub(crate) mod span;
pub(crate) mod subscriber;
pub(crate) mod system;

pub use layer::TelemetryLayer;
pub(crate) use layer::{LogCollector, SpanCollector};
pub(crate) use span::random_u64;
