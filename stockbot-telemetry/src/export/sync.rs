//! The synchronisation primitives of the queue, the pipeline's flush/shutdown handshake and the
//! drop accounting (`queue.rs`, `pipeline.rs`, `accounting.rs`), in one place:
//! `tests/loom_queue.rs` compiles those three files against its own `sync` module with loom's
//! primitives, to check emit, flush, shutdown and a dying worker racing in every interleaving.
//! Those files take every lock, condition variable and atomic from here, never from `std`.

pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Waits on `cv` while `condition` holds, at most `timeout`. Poisoning is ignored: every update
/// made under these locks is complete or not started.
pub(crate) fn wait_timeout_while<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
    condition: impl FnMut(&mut T) -> bool,
) -> MutexGuard<'a, T> {
    cv.wait_timeout_while(guard, timeout, condition)
        .unwrap_or_else(|p| p.into_inner())
        .0
}

/// Waits on `cv` for a notification, at most `timeout` (may wake spuriously). Poisoning is
/// ignored, as above.
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    cv.wait_timeout(guard, timeout)
        .unwrap_or_else(|p| p.into_inner())
        .0
}
