//! A fake OpenTelemetry Collector for tests: an OTLP receiver on a loopback port — HTTP/protobuf
//! ([`FakeOtlpReceiver::start`]) or gRPC ([`FakeOtlpReceiver::start_grpc`], a real `tonic`
//! server) — that decodes the real protobuf payloads (gzip-compressed or not) and answers with
//! scripted faults: statuses (HTTP, or gRPC codes with `RetryInfo`), delays, dropped
//! connections, partial successes and garbage bodies.
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
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

use crate::http_server::{HttpServer, Request, Response};

/// The OTLP protobuf types (`opentelemetry-proto`), to decode and inspect what arrived.
pub use opentelemetry_proto as proto;

/// Largest request body accepted (bigger ones get 413, or `RESOURCE_EXHAUSTED` over gRPC).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// The gRPC method of trace exports.
pub const GRPC_TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// The gRPC method of log exports.
pub const GRPC_LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
/// The gRPC method of metrics exports.
pub const GRPC_METRICS: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// One scripted answer.
///
/// Over gRPC an HTTP status maps to its gRPC code (200 → `OK`, 429 → `RESOURCE_EXHAUSTED`,
/// 503 → `UNAVAILABLE`, 504 → `DEADLINE_EXCEEDED`, 400 → `INVALID_ARGUMENT`, other 4xx/5xx →
/// `INTERNAL`), [`Reply::retry_after`] becomes a `google.rpc.RetryInfo` detail, and
/// [`Reply::close`] answers `UNAVAILABLE` (tonic cannot drop a connection mid-call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    status: u16,
    grpc_code: Option<i32>,
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
            grpc_code: None,
            retry_after: None,
            delay: Duration::ZERO,
            close: false,
            body: Vec::new(),
        }
    }
    /// A gRPC status code (e.g. 14 for `UNAVAILABLE`); over HTTP it answers 500 unless it
    /// is 0 (`OK`, answered 200).
    pub fn grpc(code: i32) -> Self {
        Reply {
            grpc_code: Some(code),
            ..Reply::status(if code == 0 { 200 } else { 500 })
        }
    }
    /// Adds `Retry-After: <secs>` (over gRPC: a `RetryInfo` with that delay).
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
    /// 200 (gRPC `OK`) with a partial success: `rejected` items refused, with `message`. The
    /// wire form is the same for spans, data points and log records.
    pub fn partial_success(rejected: i64, message: &str) -> Self {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        let response = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message.to_owned(),
            }),
        };
        Reply::ok().body(response.encode_to_vec())
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
    /// The body (decompressed when it came gzip-compressed; over gRPC, the decoded message
    /// encoded again).
    pub body: Vec<u8>,
    /// It came gzip-compressed (`Content-Encoding: gzip`, or gRPC's `grpc-encoding: gzip`).
    pub gzip: bool,
    /// The status the receiver answered (0 if it dropped the connection).
    pub answered: u16,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http_server::header(&self.headers, name)
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
    server: Server,
}

enum Server {
    /// Held for its `Drop`, which stops it.
    Http(#[allow(dead_code, reason = "stops the server when dropped")] HttpServer),
    Grpc {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    },
}

impl std::fmt::Debug for FakeOtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOtlpReceiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The HTTP receiver's answer to one request: the next scripted reply, recorded.
fn answer(request: Request, state: &Mutex<State>) -> Response {
    let reply = state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .script
        .pop_front()
        .unwrap_or_else(Reply::ok);
    let answered = if reply.close { 0 } else { reply.status };
    let mut response = Response::new(reply.status, "application/x-protobuf", reply.body);
    response.delay = reply.delay;
    response.close = reply.close;
    if let Some(s) = reply.retry_after {
        response.headers.push(("retry-after".into(), s.to_string()));
    }
    // Recorded when the answer is due (after the scripted delay), as a real receiver would.
    std::thread::sleep(reply.delay);
    response.delay = Duration::ZERO;
    state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .received
        .push(Received {
            path: request.path,
            headers: request.headers,
            body: request.body,
            gzip: request.gzip,
            answered,
            at: std::time::Instant::now(),
        });
    response
}

impl FakeOtlpReceiver {
    /// Starts on a free loopback port.
    ///
    /// # Errors
    /// If no loopback port can be bound.
    pub fn start() -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        let server = HttpServer::start(
            "fake-otlp",
            MAX_BODY,
            Arc::new(move |request| answer(request, &st)),
        )?;
        Ok(FakeOtlpReceiver {
            addr: server.addr,
            state,
            server: Server::Http(server),
        })
    }

    /// Starts an OTLP/gRPC receiver (trace, metrics and logs services, gzip accepted) on a free
    /// loopback port. Requests are recorded with the gRPC method's path, e.g.
    /// `/opentelemetry.proto.collector.trace.v1.TraceService/Export`; [`Self::traces`] and
    /// [`Self::metrics`] read both transports.
    ///
    /// # Errors
    /// If no loopback port can be bound or the server's runtime cannot start.
    pub fn start_grpc() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("fake-otlp-grpc".into())
            .spawn(move || runtime.block_on(grpc::serve(listener, st, sp)))?;
        Ok(FakeOtlpReceiver {
            addr,
            state,
            server: Server::Grpc {
                stop,
                thread: Some(thread),
            },
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
            .filter(|r| {
                (r.path == "/v1/metrics" || r.path == GRPC_METRICS)
                    && (200..300).contains(&r.answered)
            })
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
            .filter(|r| {
                (r.path == "/v1/traces" || r.path == GRPC_TRACES)
                    && (200..300).contains(&r.answered)
            })
            .map(|r| {
                ExportTraceServiceRequest::decode(r.body.as_slice())
                    .expect("valid OTLP trace protobuf")
            })
            .collect()
    }

    /// The log export requests answered with 2xx, decoded.
    ///
    /// # Panics
    /// If a body is not a valid `ExportLogsServiceRequest`.
    pub fn logs(
        &self,
    ) -> Vec<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest> {
        self.received()
            .into_iter()
            .filter(|r| {
                (r.path == "/v1/logs" || r.path == GRPC_LOGS) && (200..300).contains(&r.answered)
            })
            .map(|r| {
                opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(
                    r.body.as_slice(),
                )
                .expect("valid OTLP logs protobuf")
            })
            .collect()
    }

    /// Every log record of every accepted log export, in arrival order.
    pub fn log_records(&self) -> Vec<opentelemetry_proto::tonic::logs::v1::LogRecord> {
        self.logs()
            .into_iter()
            .flat_map(|r| r.resource_logs)
            .flat_map(|rl| rl.scope_logs)
            .flat_map(|sl| sl.log_records)
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
        if let Server::Grpc { stop, thread } = &mut self.server {
            stop.store(true, Ordering::Release);
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// The gRPC side: a tonic server whose two services record and answer from the script.
mod grpc {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
        LogsService, LogsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsServiceRequest, ExportLogsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message;
    use tonic::codec::CompressionEncoding;
    use tonic::{Code, Request, Response, Status};
    use tonic_types::{ErrorDetails, StatusExt as _};

    use super::{GRPC_LOGS, GRPC_METRICS, GRPC_TRACES, MAX_BODY, Received, Reply, State};

    #[derive(Clone)]
    struct Fake {
        state: Arc<Mutex<State>>,
    }

    fn code_of(reply: &Reply) -> Code {
        if let Some(code) = reply.grpc_code {
            return Code::from_i32(code);
        }
        match reply.status {
            200..=299 => Code::Ok,
            429 => Code::ResourceExhausted,
            502 | 503 => Code::Unavailable,
            504 => Code::DeadlineExceeded,
            400 => Code::InvalidArgument,
            _ => Code::Internal,
        }
    }

    impl Fake {
        async fn answer<Req: Message, Resp: Message + Default>(
            &self,
            path: &str,
            request: Request<Req>,
        ) -> Result<Response<Resp>, Status> {
            let headers = request
                .metadata()
                .iter()
                .filter_map(|kv| match kv {
                    tonic::metadata::KeyAndValueRef::Ascii(k, v) => Some((
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )),
                    tonic::metadata::KeyAndValueRef::Binary(..) => None,
                })
                .collect::<Vec<_>>();
            let gzip = headers
                .iter()
                .any(|(k, v)| k == "grpc-encoding" && v == "gzip");
            let body = request.get_ref().encode_to_vec();
            let reply = self
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .script
                .pop_front()
                .unwrap_or_else(Reply::ok);
            tokio::time::sleep(reply.delay).await;
            let code = if reply.close {
                Code::Unavailable
            } else {
                code_of(&reply)
            };
            self.state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .received
                .push(Received {
                    path: path.to_owned(),
                    headers,
                    body,
                    gzip,
                    answered: if code == Code::Ok {
                        200
                    } else {
                        reply.status.max(300)
                    },
                    at: std::time::Instant::now(),
                });
            if code == Code::Ok {
                return Ok(Response::new(
                    Resp::decode(reply.body.as_slice()).unwrap_or_default(),
                ));
            }
            let message = format!("scripted {code:?}");
            Err(match reply.retry_after {
                Some(secs) => Status::with_error_details(
                    code,
                    message,
                    ErrorDetails::with_retry_info(Some(Duration::from_secs(secs))),
                ),
                None => Status::new(code, message),
            })
        }
    }

    #[tonic::codegen::async_trait]
    impl TraceService for Fake {
        async fn export(
            &self,
            request: Request<ExportTraceServiceRequest>,
        ) -> Result<Response<ExportTraceServiceResponse>, Status> {
            self.answer(GRPC_TRACES, request).await
        }
    }

    #[tonic::codegen::async_trait]
    impl LogsService for Fake {
        async fn export(
            &self,
            request: Request<ExportLogsServiceRequest>,
        ) -> Result<Response<ExportLogsServiceResponse>, Status> {
            self.answer(GRPC_LOGS, request).await
        }
    }

    #[tonic::codegen::async_trait]
    impl MetricsService for Fake {
        async fn export(
            &self,
            request: Request<ExportMetricsServiceRequest>,
        ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
            self.answer(GRPC_METRICS, request).await
        }
    }

    pub(super) async fn serve(
        listener: TcpListener,
        state: Arc<Mutex<State>>,
        stop: Arc<AtomicBool>,
    ) {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let fake = Fake { state };
        let stopped = async move {
            while !stop.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let _ = tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(fake.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(MAX_BODY),
            )
            .add_service(
                LogsServiceServer::new(fake.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(MAX_BODY),
            )
            .add_service(
                MetricsServiceServer::new(fake)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(MAX_BODY),
            )
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stopped,
            )
            .await;
    }
}
