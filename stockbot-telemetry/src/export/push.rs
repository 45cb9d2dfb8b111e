//! Periodic pushes, on a background thread: to a Prometheus Pushgateway (batch jobs only — a
//! service that runs continuously is scraped: the whole exposition is PUT to the job's group on
//! an interval, once more at shutdown, and then the group is deleted, because the Pushgateway
//! never forgets a group on its own) and, with the `otlp` feature, OTLP metrics to a
//! Collector. Failures are counted and retried with the shared backoff policy; nothing here
//! ever runs on a caller's thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::retry::{Backoff, RetryPolicy};
use super::scrape::RenderFn;

/// Settings of the pusher.
#[derive(Debug, Clone)]
pub(crate) struct PushSettings {
    /// `http://host:port` of the Pushgateway.
    pub(crate) url: String,
    pub(crate) job: String,
    /// Only for jobs that run once per host.
    pub(crate) instance: Option<String>,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) delete_on_shutdown: bool,
}

impl PushSettings {
    /// `<url>/metrics/job/<job>[/instance/<instance>]`.
    pub(crate) fn group_url(&self) -> String {
        let mut url = format!(
            "{}/metrics/job/{}",
            self.url.trim_end_matches('/'),
            self.job
        );
        if let Some(instance) = &self.instance {
            url.push_str("/instance/");
            url.push_str(instance);
        }
        url
    }
}

/// Outcome counters (exported as `stockbot_telemetry_push_total{target,result}`).
#[derive(Debug, Default)]
pub(crate) struct PushStats {
    pub(crate) ok: AtomicU64,
    /// Failed and retried with backoff (connection errors, timeouts, 429/502/503/504).
    pub(crate) failed: AtomicU64,
    /// Refused by the receiver (other 4xx/5xx): not retried, counted.
    pub(crate) rejected: AtomicU64,
}

/// What one push achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// Retry after the backoff (or the server's `Retry-After`).
    Retry(Option<Duration>),
    /// Not retryable: wait for the next interval.
    Rejected,
}

/// Classifies an HTTP answer: 2xx ok; 429, 502, 503, 504 retryable (OTLP's list; `Retry-After`
/// honoured); anything else refused.
pub(crate) fn classify(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Outcome {
    match response {
        Ok(r) if r.status().is_success() => Outcome::Ok,
        Ok(r) => match r.status().as_u16() {
            429 | 502 | 503 | 504 => Outcome::Retry(
                r.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            ),
            _ => Outcome::Rejected,
        },
        Err(_) => Outcome::Retry(None),
    }
}

/// One destination of periodic pushes.
pub(crate) trait PushJob: Send + 'static {
    /// Sends the current state once.
    fn push(&mut self, agent: &ureq::Agent) -> Outcome;
    /// After the final push at shutdown (e.g. delete the Pushgateway group).
    fn finish(&mut self, _agent: &ureq::Agent) {}
}

/// The Pushgateway: PUT the exposition to the job's group; delete the group at the end.
pub(crate) struct PushgatewayJob {
    pub(crate) settings: PushSettings,
    pub(crate) render: RenderFn,
}

impl PushJob for PushgatewayJob {
    fn push(&mut self, agent: &ureq::Agent) -> Outcome {
        classify(
            agent
                .put(&self.settings.group_url())
                .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                .send((self.render)(super::exposition::Format::Text)),
        )
    }

    fn finish(&mut self, agent: &ureq::Agent) {
        if self.settings.delete_on_shutdown {
            let _ = agent.delete(&self.settings.group_url()).call();
        }
    }
}

/// A running pusher thread.
#[derive(Debug)]
pub(crate) struct Pusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    timeout: Duration,
}

impl Pusher {
    /// Pushes every `interval` on a thread named `stockbot-telemetry-<name>`; failures back off
    /// with the shared retry policy (never faster than 200 ms, never slower than `interval`).
    pub(crate) fn start(
        name: &str,
        interval: Duration,
        timeout: Duration,
        mut job: Box<dyn PushJob>,
        stats: Arc<PushStats>,
    ) -> std::io::Result<Self> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("stockbot-telemetry-{name}"))
            .spawn(move || {
                // Our HTTP client's own logs never come back into the pipeline.
                let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(timeout))
                    .http_status_as_error(false)
                    .build()
                    .into();
                let floor = Duration::from_millis(200);
                let mut backoff = Backoff::new(RetryPolicy {
                    initial: floor,
                    max: interval.max(floor),
                    ..RetryPolicy::default()
                });
                let count = |outcome: Outcome| match outcome {
                    Outcome::Ok => stats.ok.fetch_add(1, Relaxed),
                    Outcome::Retry(_) => stats.failed.fetch_add(1, Relaxed),
                    Outcome::Rejected => stats.rejected.fetch_add(1, Relaxed),
                };
                let mut next = Instant::now();
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    match stop_rx.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                    let now = Instant::now();
                    let outcome = job.push(&agent);
                    count(outcome);
                    next = match outcome {
                        // A server's Retry-After is obeyed (capped by the policy at 60 s); our
                        // own backoff never waits longer than the interval.
                        Outcome::Retry(Some(after)) => now + backoff.failed(now, Some(after)),
                        Outcome::Retry(None) => {
                            now + backoff.failed(now, None).min(interval.max(floor))
                        }
                        _ => {
                            backoff.succeeded();
                            now + interval
                        }
                    };
                }
                // The final state, then whatever ends the job.
                count(job.push(&agent));
                job.finish(&agent);
            })?;
        Ok(Pusher {
            stop: Some(stop_tx),
            thread: Some(thread),
            timeout,
        })
    }

    /// Asks for the final push (without waiting).
    pub(crate) fn signal(&mut self) {
        drop(self.stop.take());
    }

    /// Asks for the final push and waits for it until `deadline` at the latest (past that the
    /// thread finishes on its own).
    pub(crate) fn stop_by(&mut self, deadline: Instant) {
        self.signal();
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }

    /// As [`stop_by`](Self::stop_by), with twice the request timeout plus a second.
    pub(crate) fn stop(&mut self) {
        self.stop_by(Instant::now() + self.timeout * 2 + Duration::from_secs(1));
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grouping_key_has_the_instance_only_when_asked() {
        let mut s = PushSettings {
            url: "http://127.0.0.1:9091/".into(),
            job: "eod_reconciliation".into(),
            instance: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            delete_on_shutdown: true,
        };
        assert_eq!(
            s.group_url(),
            "http://127.0.0.1:9091/metrics/job/eod_reconciliation"
        );
        s.instance = Some("ny4-batch-1".into());
        assert_eq!(
            s.group_url(),
            "http://127.0.0.1:9091/metrics/job/eod_reconciliation/instance/ny4-batch-1"
        );
    }

    #[test]
    fn a_gateway_that_is_down_is_counted_and_never_blocks_stop() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = PushSettings {
            url: format!("http://127.0.0.1:{port}"),
            job: "batch".into(),
            instance: None,
            interval: Duration::from_millis(20),
            timeout: Duration::from_millis(200),
            delete_on_shutdown: true,
        };
        let stats = Arc::new(PushStats::default());
        let (interval, timeout) = (settings.interval, settings.timeout);
        let render: RenderFn = Arc::new(|_| "# nothing\n".to_owned());
        let job = Box::new(PushgatewayJob { settings, render });
        let mut pusher = Pusher::start("push", interval, timeout, job, Arc::clone(&stats)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        pusher.stop();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(stats.failed.load(Relaxed) >= 2, "{stats:?}");
        assert_eq!(stats.ok.load(Relaxed), 0);
    }
}
