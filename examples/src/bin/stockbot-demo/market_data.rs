//! The market-data feed: a random walk of bid/ask ticks for a few symbols, published to the
//! strategy at a steady rate. Each tick starts a trace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use stockbot_telemetry::trading;

use crate::http::{Client, Handler, Incoming};
use crate::service::Rng;

/// The simulated venue feed.
const FEED: &str = "sim-feed";

const SYMBOLS: [(&str, f64); 4] = [
    ("AAPL", 190.0),
    ("MSFT", 420.0),
    ("NVDA", 880.0),
    ("SPY", 510.0),
];

/// The publishing thread.
pub(crate) struct Feed {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Feed {
    /// Stops publishing and waits for the tick in flight.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts publishing `rate` ticks a second to the strategy. `POST /control/stop` stops the
/// ticks (the orchestrator quiesces the platform with it) and answers how many were sent.
pub(crate) fn start(strategy: Client, rate: f64) -> std::io::Result<(Handler, Feed)> {
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = {
        let (stop, published) = (Arc::clone(&stop), Arc::clone(&published));
        std::thread::Builder::new()
            .name("feed".into())
            .spawn(move || {
                publish(&strategy, rate, &stop, &published);
                drop(done_tx);
            })?
    };
    let done = std::sync::Mutex::new(done_rx);
    let handler: Handler = {
        let stop = Arc::clone(&stop);
        Arc::new(move |req: &Incoming| {
            if req.path != "/control/stop" {
                return Err((404, format!("no route {}", req.path)));
            }
            stop.store(true, Ordering::Relaxed);
            // Disconnects when the feed thread has finished its last tick.
            let _ = done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .recv_timeout(Duration::from_secs(10));
            Ok(json!({ "ticks": published.load(Ordering::Relaxed) }))
        })
    };
    Ok((
        handler,
        Feed {
            stop,
            thread: Some(thread),
        },
    ))
}

fn publish(strategy: &Client, rate: f64, stop: &AtomicBool, published: &AtomicU64) {
    let rng = Rng::new();
    let mut prices: Vec<f64> = SYMBOLS.iter().map(|(_, p)| *p).collect();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    let mut seq: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let i = (seq as usize) % SYMBOLS.len();
        let symbol = SYMBOLS[i].0;
        // A random walk with a pull back to the start: something to trade on.
        prices[i] *=
            1.0 + rng.range(-0.002, 0.002) + (SYMBOLS[i].1 - prices[i]) / SYMBOLS[i].1 * 0.01;
        let mid = prices[i];
        // The venue's feed as the market-data service sees it: usually fresh, now and then a
        // hiccup of up to 1.5 s, and rare sequence gaps (messages lost upstream).
        let lag = if rng.unit() < 0.005 {
            rng.range(0.3, 1.5)
        } else {
            rng.range(0.000_1, 0.002)
        };
        trading::market_data_staleness(FEED, Duration::from_secs_f64(lag));
        if rng.unit() < 0.002 {
            let missed = rng.range(1.0, 6.0) as u64;
            trading::market_data_gap(FEED, missed);
            tracing::warn!(
                seq_gap = missed,
                seq_num = seq,
                "sequence gap on the venue feed"
            );
        }
        let half_spread = mid * 0.0001;
        seq += 1;
        let tick = json!({
            "seq": seq,
            "symbol": symbol,
            "bid": mid - half_spread,
            "ask": mid + half_spread,
            "sent_unix_nanos": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
        });
        {
            // The span ends here, before the pause.
            let span = tracing::info_span!(
                "publish_tick",
                otel.kind = "client",
                peer.service = "strategy",
                symbol,
                seq_num = seq
            );
            if let Err(e) = span.in_scope(|| strategy.post("/tick", &tick)) {
                tracing::warn!(parent: &span, symbol, error.message = %e, "tick not delivered");
            }
        }
        published.fetch_add(1, Ordering::Relaxed);
        next += period;
        let now = Instant::now();
        match next.checked_duration_since(now) {
            Some(wait) => std::thread::sleep(wait),
            // Behind schedule: do not try to catch up with a burst.
            None => next = now,
        }
    }
}
