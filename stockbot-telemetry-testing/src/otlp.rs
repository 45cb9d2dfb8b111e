//! A fake OpenTelemetry Collector for tests: an OTLP/HTTP receiver on a loopback port that
//! decodes the real protobuf payloads and answers with scripted faults.
//!
//! ```
//! use stockbot_telemetry_testing::otlp::{FakeOtlpReceiver, Reply};
//!
//! let receiver = FakeOtlpReceiver::start().unwrap();
//! receiver.script([Reply::status(503).retry_after(1), Reply::ok()]);
//! let endpoint = format!("{}/v1/metrics", receiver.url());
//! assert!(endpoint.starts_with("http://127.0.0.1:"));
//! assert!(receiver.metrics().is_empty());
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

/// The OTLP protobuf types (`opentelemetry-proto`), to decode and inspect what arrived.
pub use opentelemetry_proto as proto;

/// Largest request body accepted (bigger ones get 413).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    status: u16,
    retry_after: Option<u64>,
    delay: Duration,
    close: bool,
    body: Vec<u8>,
}

impl Reply {
    /// 200 with an empty (full success) response.
    pub fn ok() -> Self {
        Reply::status(200)
    }
    /// Any status with an empty body.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            retry_after: None,
            delay: Duration::ZERO,
            close: false,
            body: Vec::new(),
        }
    }
    /// Adds `Retry-After: <secs>`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
    /// Waits before answering.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    /// Drops the connection without answering.
    pub fn close() -> Self {
        Reply {
            close: true,
            ..Reply::ok()
        }
    }
    /// A raw response body (e.g. an encoded partial-success response, or garbage).
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request path, e.g. `/v1/metrics`.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as sent.
    pub body: Vec<u8>,
    /// The status the receiver answered (0 if it dropped the connection).
    pub answered: u16,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    received: Vec<Received>,
}

/// The receiver; stops on drop.
pub struct FakeOtlpReceiver {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeOtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOtlpReceiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn handle(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if len > MAX_BODY {
            stream.write_all(
                b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let reply = state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .script
            .pop_front()
            .unwrap_or_else(Reply::ok);
        std::thread::sleep(reply.delay);
        let answered = if reply.close { 0 } else { reply.status };
        state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .received
            .push(Received {
                path,
                headers,
                body,
                answered,
                at: std::time::Instant::now(),
            });
        if reply.close {
            return Ok(());
        }
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        if let Some(s) = reply.retry_after {
            head.push_str(&format!("retry-after: {s}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(&reply.body)?;
    }
}

impl FakeOtlpReceiver {
    /// Starts on a free loopback port.
    ///
    /// # Errors
    /// If no loopback port can be bound.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("fake-otlp".into())
            .spawn(move || {
                while !sp.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let st = Arc::clone(&st);
                            std::thread::spawn(move || {
                                let _ = handle(stream, &st);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })?;
        Ok(FakeOtlpReceiver {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues answers for the next requests (afterwards: 200).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .script
            .extend(replies);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .received
            .clone()
    }

    /// The metrics export requests answered with 2xx, decoded.
    ///
    /// # Panics
    /// If a body is not a valid `ExportMetricsServiceRequest` (that is what the test is for).
    pub fn metrics(&self) -> Vec<ExportMetricsServiceRequest> {
        self.received()
            .into_iter()
            .filter(|r| r.path == "/v1/metrics" && (200..300).contains(&r.answered))
            .map(|r| {
                ExportMetricsServiceRequest::decode(r.body.as_slice())
                    .expect("valid OTLP metrics protobuf")
            })
            .collect()
    }
}

impl FakeOtlpReceiver {
    /// The trace export requests answered with 2xx, decoded.
    ///
    /// # Panics
    /// If a body is not a valid `ExportTraceServiceRequest`.
    pub fn traces(&self) -> Vec<ExportTraceServiceRequest> {
        self.received()
            .into_iter()
            .filter(|r| r.path == "/v1/traces" && (200..300).contains(&r.answered))
            .map(|r| {
                ExportTraceServiceRequest::decode(r.body.as_slice())
                    .expect("valid OTLP trace protobuf")
            })
            .collect()
    }

    /// Every span of every accepted trace export, in arrival order.
    pub fn spans(&self) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
        self.traces()
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }
}

impl Drop for FakeOtlpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
