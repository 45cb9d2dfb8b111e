//! The level filter: `RUST_LOG`-style directives, changeable at run time.

use std::sync::{Arc, RwLock};

use tracing_core::{LevelFilter, Metadata};
use tracing_subscriber::filter::Targets;

/// Parses `info,order_router=debug,hyper=off`.
pub(crate) fn parse_filter(directives: &str) -> Result<Targets, String> {
    if directives.trim().is_empty() {
        return Err("must not be empty (write `off` to disable logging)".into());
    }
    directives.parse::<Targets>().map_err(|e| e.to_string())
}

/// The current filter, shared by the layer and the guard.
#[derive(Debug, Clone)]
pub(crate) struct SharedFilter {
    inner: Arc<RwLock<Targets>>,
    /// Set for the process-wide pipeline: its filter also sets the `log` crate's max level.
    drives_log: Arc<std::sync::atomic::AtomicBool>,
}

impl SharedFilter {
    pub(crate) fn new(targets: Targets) -> Self {
        SharedFilter {
            inner: Arc::new(RwLock::new(targets)),
            drives_log: Arc::default(),
        }
    }

    pub(crate) fn enabled(&self, meta: &Metadata<'_>) -> bool {
        match self.inner.read() {
            Ok(t) => t.would_enable(meta.target(), meta.level()),
            Err(poisoned) => poisoned
                .into_inner()
                .would_enable(meta.target(), meta.level()),
        }
    }

    pub(crate) fn max_level(&self) -> LevelFilter {
        match self.inner.read() {
            Ok(t) => max_level_of(&t),
            Err(poisoned) => max_level_of(&poisoned.into_inner()),
        }
    }

    /// Swaps the directives and makes every call site re-evaluate its interest.
    pub(crate) fn replace(&self, targets: Targets) {
        let level = max_level_of(&targets);
        match self.inner.write() {
            Ok(mut t) => *t = targets,
            Err(poisoned) => *poisoned.into_inner() = targets,
        }
        if self.drives_log.load(std::sync::atomic::Ordering::Acquire) {
            log::set_max_level(to_log_level(level));
        }
        tracing_core::callsite::rebuild_interest_cache();
    }

    /// Marks this filter as the process-wide one (see `drives_log`).
    pub(crate) fn drive_log_max_level(&self) {
        self.drives_log
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

fn max_level_of(targets: &Targets) -> LevelFilter {
    let mut max = targets.default_level().unwrap_or(LevelFilter::OFF);
    for (_, level) in targets.iter() {
        if level > max {
            max = level;
        }
    }
    max
}

pub(crate) fn to_log_level(level: LevelFilter) -> log::LevelFilter {
    match level.into_level() {
        None => log::LevelFilter::Off,
        Some(tracing_core::Level::ERROR) => log::LevelFilter::Error,
        Some(tracing_core::Level::WARN) => log::LevelFilter::Warn,
        Some(tracing_core::Level::INFO) => log::LevelFilter::Info,
        Some(tracing_core::Level::DEBUG) => log::LevelFilter::Debug,
        Some(_) => log::LevelFilter::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_max_level() {
        let f = SharedFilter::new(parse_filter("warn,order_router=debug").unwrap());
        assert_eq!(f.max_level(), LevelFilter::DEBUG);
        f.replace(parse_filter("error").unwrap());
        assert_eq!(f.max_level(), LevelFilter::ERROR);
        assert!(parse_filter("").is_err());
        assert!(parse_filter("info,foo=loud").is_err());
    }
}
