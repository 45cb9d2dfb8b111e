//! Keeping context across tasks and threads: the current span (so trace ids follow the work)
//! and the current subscriber (so scoped test captures see spawned work).

use std::future::Future;
use std::sync::Arc;

use crate::collect::propagation::{
    Baggage, Carrier, PropagationError, TraceContext, extract, inject,
};
use crate::collect::span::SpanContext;
use crate::collect::subscriber::TelemetrySubscriber;

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

/// The W3C trace context of the current span (`None` outside any span, or when the current
/// subscriber is not this SDK's).
///
/// ```
/// let (dispatch, guard) = stockbot_telemetry::TelemetryBuilder::new({
///     let mut c = stockbot_telemetry::Config::for_service("router");
///     c.log.stdout = false;
///     c.log.file.enabled = false;
///     c.metrics.enabled = false;
///     c.traces.file.enabled = false;
///     c
/// })
/// .with_writer("null", std::io::sink())
/// .build_dispatch()
/// .unwrap();
/// tracing::dispatcher::with_default(&dispatch, || {
///     let span = tracing::info_span!("route_order");
///     let _e = span.enter();
///     let mut headers = std::collections::HashMap::new();
///     stockbot_telemetry::inject_current(&mut headers);
///     assert!(headers["traceparent"].starts_with("00-"));
/// });
/// drop(guard);
/// ```
pub fn current_context() -> Option<TraceContext> {
    with_span_context(&tracing::Span::current(), |sc| TraceContext {
        trace_id: sc.trace_id,
        span_id: sc.span_id,
        sampled: sc.sampled,
        trace_state: sc.trace_state.as_deref().cloned().unwrap_or_default(),
    })
}

/// Writes the current span's `traceparent` (and `baggage`, when given) into `carrier`: the
/// headers of an outgoing HTTP request or bus message. Nothing is written outside a span.
pub fn inject_current(carrier: &mut impl Carrier) {
    inject_current_with(&Baggage::default(), carrier);
}

/// As [`inject_current`], with baggage.
pub fn inject_current_with(baggage: &Baggage, carrier: &mut impl Carrier) {
    if let Some(ctx) = current_context() {
        inject(&ctx, baggage, carrier);
    }
}

/// Makes `span` continue the trace described by `carrier` (an incoming request's or message's
/// headers): the span takes the remote trace id, the remote span as its parent and the remote
/// sampling decision, and so do the spans created inside it afterwards. Call it right after
/// creating the span, before entering it.
///
/// Returns the baggage (empty when absent or malformed; a malformed `tracestate` or
/// `baggage` is dropped, per W3C, and reported in `Ok(Some(...))`'s second element).
///
/// # Errors
/// A malformed `traceparent`; the span then keeps its own new trace.
pub fn extract_into(
    span: &tracing::Span,
    carrier: &impl Carrier,
) -> Result<Option<(Baggage, Vec<PropagationError>)>, PropagationError> {
    let Some((ctx, baggage, problems)) = extract(carrier)? else {
        return Ok(None);
    };
    set_parent(span, &ctx);
    Ok(Some((baggage, problems)))
}

/// Makes `span` a child of the remote span `ctx` (see [`extract_into`]).
pub fn set_parent(span: &tracing::Span, ctx: &TraceContext) {
    update_span_context(span, |current| {
        let mut sc = current.clone();
        sc.trace_id = ctx.trace_id;
        sc.parent_span_id = Some(ctx.span_id);
        sc.sampled = ctx.sampled;
        // The span now starts this process's part of another trace: it is a local root
        // (its own keep decision, not the enclosing span's).
        sc.local_root = sc.span_id;
        sc.keep = Some(Arc::new(std::sync::atomic::AtomicBool::new(false)));
        sc.parent = None;
        sc.trace_state = (!ctx.trace_state.is_empty()).then(|| Arc::new(ctx.trace_state.clone()));
        sc.ensure_extras();
        Arc::new(sc)
    });
}

/// Links `span` to another span, usually of another trace: for example a cancel/replace
/// request's span to the span that sent the original order (whose context was saved with
/// [`current_context`] or arrived in a message's headers). Jaeger shows links as references;
/// `span.follows_from(&other)` does the same for a span of this process. Links past
/// `traces.limits.max_links` are counted, not kept; spans that are not recorded ignore links.
///
/// ```
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Clone, Default)]
/// # struct Buf(Arc<Mutex<Vec<u8>>>);
/// # impl std::io::Write for Buf {
/// #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
/// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// # }
/// let spans = Buf::default();
/// let (dispatch, guard) = stockbot_telemetry::TelemetryBuilder::new({
///     let mut c = stockbot_telemetry::Config::default();
///     c.log.stdout = false;
///     c.log.file.enabled = false;
///     c.metrics.enabled = false;
///     c.traces.file.enabled = false;
///     c
/// })
/// .with_writer("null", std::io::sink())
/// .with_span_writer("mem", spans.clone())
/// .build_dispatch()
/// .unwrap();
/// tracing::dispatcher::with_default(&dispatch, || {
///     let original = {
///         let _span = tracing::info_span!("new_order", cl_ord_id = "C-1").entered();
///         stockbot_telemetry::current_context().unwrap()
///     };
///     let replace = tracing::info_span!("replace_order", cl_ord_id = "C-2", orig_cl_ord_id = "C-1");
///     stockbot_telemetry::add_link(&replace, &original);
/// });
/// guard.shutdown(std::time::Duration::from_secs(5));
/// let text = String::from_utf8(spans.0.lock().unwrap().clone()).unwrap();
/// let (finished, _) = stockbot_telemetry::analysis::read_json_lines(&text);
/// let (original, replace) = (&finished[0], &finished[1]);
/// assert_eq!(replace.links[0].trace_id, original.trace_id);
/// assert_ne!(replace.trace_id, original.trace_id);
/// ```
pub fn add_link(span: &tracing::Span, ctx: &TraceContext) {
    let max_links = span
        .with_subscriber(|(_, dispatch)| {
            let layer = dispatch
                .downcast_ref::<crate::TelemetryLayer>()
                .or_else(|| {
                    dispatch
                        .downcast_ref::<TelemetrySubscriber>()
                        .map(|s| &s.layer)
                });
            layer.map(|layer| layer.limits().max_links)
        })
        .flatten()
        .unwrap_or(crate::config::SpanLimits::default().max_links);
    with_span_context(span, |sc| {
        if sc.is_recorded() {
            sc.add_link(ctx.trace_id, ctx.span_id, max_links);
        }
    });
}

/// Trace and span id of the current span when it is sampled (exported), for exemplars.
pub(crate) fn current_sampled_ids() -> Option<(u128, u64)> {
    with_span_context(&tracing::Span::current(), |sc| {
        sc.sampled.then_some((sc.trace_id, sc.span_id))
    })
    .flatten()
}

/// `f` on `span`'s context, whether the span belongs to the SDK's own subscriber or to a
/// `tracing_subscriber` registry with a [`TelemetryLayer`](crate::TelemetryLayer).
fn with_span_context<R>(span: &tracing::Span, f: impl FnOnce(&SpanContext) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(own) = dispatch.downcast_ref::<TelemetrySubscriber>() {
            return own.context(id).map(|sc| f(&sc));
        }
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let data = tracing_subscriber::registry::LookupSpan::span(registry, id)?;
        let ext = data.extensions();
        ext.get::<Arc<SpanContext>>().map(|sc| f(sc))
    })
    .flatten()
}

/// Replaces `span`'s context with `f(current)` (see [`with_span_context`]).
fn update_span_context(span: &tracing::Span, f: impl FnOnce(&SpanContext) -> Arc<SpanContext>) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(own) = dispatch.downcast_ref::<TelemetrySubscriber>() {
            own.update(id, f);
            return;
        }
        let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else {
            return;
        };
        let Some(data) = tracing_subscriber::registry::LookupSpan::span(registry, id) else {
            return;
        };
        let mut ext = data.extensions_mut();
        if let Some(current) = ext.get_mut::<Arc<SpanContext>>() {
            *current = f(current);
        }
    });
}
