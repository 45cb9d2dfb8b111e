//! Procedural macros of `stockbot-telemetry`.
//!
//! This crate will carry `#[instrument_trade]`, which gives a trading function its span, RED
//! metrics and error record, with attribute keys and metric names checked at compile time
//! against `stockbot-telemetry-conventions` (the same rules the core enforces at run time).
//! It exports nothing yet: the attribute needs the metrics and trace pipelines of the core,
//! which come first. Do not depend on this crate directly; the core crate will re-export it.
