//! Keeping context across tasks and threads: the current span (so trace ids follow the work)
//! and the current subscriber (so scoped test captures see spawned work).

use std::future::Future;

use tracing::Instrument as _;
use tracing::instrument::WithSubscriber as _;

/// `tokio::spawn` that carries the current span and subscriber into the task.
///
/// Plain `tokio::spawn` loses both: on a multi-thread runtime the task may run on a thread
/// where a scoped (test) subscriber is not the default, and events inside it would lose their
/// trace id. Must be called from within a tokio runtime, like `tokio::spawn`.
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let handle = stockbot_telemetry::spawn(async { tracing::info!("inside the task"); 42 });
/// assert_eq!(handle.await.unwrap(), 42);
/// # });
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_span().with_current_subscriber())
}

/// `std::thread::spawn` that carries the current span and subscriber into the thread.
///
/// ```
/// let handle = stockbot_telemetry::spawn_thread(|| tracing::info!("on a worker thread"));
/// handle.join().unwrap();
/// ```
pub fn spawn_thread<F, T>(f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let span = tracing::Span::current();
    std::thread::spawn(move || tracing::dispatcher::with_default(&dispatch, || span.in_scope(f)))
}
