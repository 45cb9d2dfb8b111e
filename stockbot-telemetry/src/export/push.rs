//! Push to a Prometheus Pushgateway — for batch jobs only (a service that runs continuously is
//! scraped). A background thread PUTs the whole exposition to the job's group on an interval,
//! pushes once more at shutdown and then deletes the group, because the Pushgateway never
//! forgets a group on its own. Failures are counted and retried with the shared backoff
//! policy; nothing here ever runs on a caller's thread.

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

/// Outcome counters (exported as `stockbot_telemetry_push_total{result}`).
#[derive(Debug, Default)]
pub(crate) struct PushStats {
    pub(crate) ok: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) deleted: AtomicU64,
}

/// The running pusher.
#[derive(Debug)]
pub(crate) struct Pusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    timeout: Duration,
}

enum Outcome {
    Ok,
    Retry(Option<Duration>),
}

fn put(agent: &ureq::Agent, url: &str, body: String) -> Outcome {
    let response = agent
        .put(url)
        .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .send(body);
    match response {
        Ok(r) if r.status().is_success() => Outcome::Ok,
        Ok(r) => {
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Outcome::Retry(retry_after)
        }
        Err(_) => Outcome::Retry(None),
    }
}

impl Pusher {
    pub(crate) fn start(
        settings: PushSettings,
        render: RenderFn,
        stats: Arc<PushStats>,
    ) -> std::io::Result<Self> {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread_stats = stats;
        let timeout = settings.timeout;
        let thread = std::thread::Builder::new()
            .name("stockbot-telemetry-push".into())
            .spawn(move || {
                // Our HTTP client's own logs never come back into the pipeline.
                let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(settings.timeout))
                    .http_status_as_error(false)
                    .build()
                    .into();
                let url = settings.group_url();
                let mut backoff = Backoff::new(RetryPolicy {
                    initial: Duration::from_millis(200),
                    max: settings.interval.max(Duration::from_millis(200)),
                    ..RetryPolicy::default()
                });
                let mut next = Instant::now();
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    match stop_rx.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                    let now = Instant::now();
                    match put(&agent, &url, render()) {
                        Outcome::Ok => {
                            thread_stats.ok.fetch_add(1, Relaxed);
                            backoff.succeeded();
                            next = now + settings.interval;
                        }
                        Outcome::Retry(after) => {
                            thread_stats.failed.fetch_add(1, Relaxed);
                            next = now
                                + backoff
                                    .failed(now, after)
                                    .min(settings.interval.max(Duration::from_millis(200)));
                        }
                    }
                }
                // Final push, then forget the group (the Pushgateway never does by itself).
                match put(&agent, &url, render()) {
                    Outcome::Ok => thread_stats.ok.fetch_add(1, Relaxed),
                    Outcome::Retry(_) => thread_stats.failed.fetch_add(1, Relaxed),
                };
                if settings.delete_on_shutdown
                    && agent
                        .delete(&url)
                        .call()
                        .is_ok_and(|r| r.status().is_success())
                {
                    thread_stats.deleted.fetch_add(1, Relaxed);
                }
            })?;
        Ok(Pusher {
            stop: Some(stop_tx),
            thread: Some(thread),
            timeout,
        })
    }

    /// Asks for the final push and delete, and waits for them (at most twice the request
    /// timeout plus a second; past that the thread finishes on its own).
    pub(crate) fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + self.timeout * 2 + Duration::from_secs(1);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
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
        let mut pusher = Pusher::start(
            settings,
            Arc::new(|| "# nothing\n".to_owned()),
            Arc::clone(&stats),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        pusher.stop();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(stats.failed.load(Relaxed) >= 2, "{stats:?}");
        assert_eq!(stats.ok.load(Relaxed), 0);
    }
}
