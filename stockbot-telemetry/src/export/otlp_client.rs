//! The OTLP client the span and metrics exporters share: one export request over
//! HTTP/protobuf (`ureq`) or gRPC (`tonic`, on a private current-thread runtime built lazily on
//! the export thread), optionally gzip-compressed, with the answer classified for the shared
//! retry policy:
//!
//! * HTTP: 2xx ok; 429/502/503/504 and connection errors retried, `Retry-After` honoured;
//!   anything else refused.
//! * gRPC: `OK` ok; `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `UNAVAILABLE`,
//!   `DATA_LOSS` retried, and `RESOURCE_EXHAUSTED` only when the server sent a
//!   `google.rpc.RetryInfo` (whose delay is honoured like `Retry-After`); anything else refused.
//!
//! Responses are read up to [`MAX_RESPONSE_BYTES`]; every request is bounded by the timeout.
//! Nothing here runs on a caller's thread.

use std::io::Read;
use std::time::Duration;

use prost::Message;

use super::push::{Outcome, classify};
use super::retry::{Backoff, RetryPolicy};
use crate::config::{OtlpCompression, OtlpProtocol, Secret};

/// Largest response body read (OTLP: cap what a receiver can make us buffer).
pub(crate) const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Which collector service a request is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    #[cfg_attr(not(feature = "otlp-grpc"), expect(dead_code, reason = "gRPC only"))]
    fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }
}

/// One exporter's connection settings and client.
pub(crate) struct OtlpClient {
    signal: Signal,
    endpoint: String,
    headers: Vec<(String, Secret)>,
    gzip: bool,
    transport: Transport,
}

impl std::fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are secrets: names only.
        f.debug_struct("OtlpClient")
            .field("signal", &self.signal)
            .field("endpoint", &self.endpoint)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

enum Transport {
    Http(ureq::Agent),
    #[cfg(feature = "otlp-grpc")]
    Grpc(grpc::GrpcTransport),
}

impl OtlpClient {
    pub(crate) fn new(
        signal: Signal,
        endpoint: String,
        protocol: OtlpProtocol,
        compression: OtlpCompression,
        headers: &std::collections::BTreeMap<String, Secret>,
        timeout: Duration,
    ) -> Self {
        let headers: Vec<(String, Secret)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let transport = match protocol {
            #[cfg(feature = "otlp-grpc")]
            OtlpProtocol::Grpc => Transport::Grpc(grpc::GrpcTransport::new(&endpoint, timeout)),
            // Validation refuses gRPC in builds without it.
            _ => Transport::Http(
                ureq::Agent::config_builder()
                    .timeout_global(Some(timeout))
                    .http_status_as_error(false)
                    .build()
                    .into(),
            ),
        };
        OtlpClient {
            signal,
            endpoint,
            headers,
            gzip: compression == OtlpCompression::Gzip,
            transport,
        }
    }

    /// Sends one export request. On success, the decoded response (`None` when it could not
    /// be decoded: the data was accepted all the same).
    pub(crate) fn export<Req, Resp>(&mut self, request: Req) -> (Outcome, Option<Resp>)
    where
        Req: Message + Send + 'static,
        Resp: Message + Default + Send + 'static,
    {
        match &mut self.transport {
            Transport::Http(agent) => {
                let mut body = request.encode_to_vec();
                let mut builder = agent
                    .post(&self.endpoint)
                    .header("Content-Type", "application/x-protobuf");
                if self.gzip {
                    body = super::gzip(&body);
                    builder = builder.header("Content-Encoding", "gzip");
                }
                for (k, v) in &self.headers {
                    builder = builder.header(k.as_str(), v.expose());
                }
                let mut response = builder.send(body);
                let mut decoded = None;
                if let Ok(r) = response.as_mut()
                    && r.status().is_success()
                {
                    let mut answer = Vec::new();
                    let _ = r
                        .body_mut()
                        .as_reader()
                        .take(MAX_RESPONSE_BYTES as u64)
                        .read_to_end(&mut answer);
                    decoded = Resp::decode(answer.as_slice()).ok();
                }
                (classify(response), decoded)
            }
            #[cfg(feature = "otlp-grpc")]
            Transport::Grpc(g) => {
                g.unary(self.signal.grpc_path(), request, &self.headers, self.gzip)
            }
        }
    }
}

/// Attempts per batch (the first one and retries).
const MAX_ATTEMPTS: u32 = 5;

/// The client of a batched signal (spans, log records) with its retry state: one batch is
/// sent with the OTLP retry rules, and every attempt ends within twice the timeout (no
/// attempt starts that could not end in time).
pub(crate) struct BatchExporter {
    client: OtlpClient,
    timeout: Duration,
    backoff: Backoff,
}

impl BatchExporter {
    /// The exporter `o` describes.
    pub(crate) fn of(signal: Signal, o: &crate::config::OtlpExporterConfig) -> Self {
        let client = OtlpClient::new(
            signal,
            o.endpoint.clone(),
            o.protocol,
            o.compression,
            &o.headers,
            o.timeout,
        );
        BatchExporter::new(client, o.timeout)
    }

    /// The longest one `export` takes (its attempts all end within twice the timeout).
    pub(crate) fn budget(&self) -> Duration {
        self.timeout * 2
    }

    pub(crate) fn new(client: OtlpClient, timeout: Duration) -> Self {
        BatchExporter {
            client,
            timeout,
            backoff: Backoff::new(RetryPolicy {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
                max_retry_after: Duration::from_secs(30),
                ..RetryPolicy::default()
            }),
        }
    }

    /// Sends `request` until accepted, refused, or out of attempts or time. On success, the
    /// decoded response (`None` if it could not be read: the batch was accepted all the same).
    pub(crate) fn export<Req, Resp>(&mut self, request: &Req) -> std::io::Result<Option<Resp>>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Default + Send + 'static,
    {
        self.try_export(request).map_err(|e| {
            std::io::Error::other(match e {
                ExportFailure::Refused => "the receiver refused the batch",
                ExportFailure::Unavailable => "the receiver stayed unavailable",
            })
        })
    }

    /// As [`export`](Self::export), telling a refusal (not retryable) from unavailability.
    pub(crate) fn try_export<Req, Resp>(
        &mut self,
        request: &Req,
    ) -> Result<Option<Resp>, ExportFailure>
    where
        Req: Message + Clone + Send + 'static,
        Resp: Message + Default + Send + 'static,
    {
        let deadline = std::time::Instant::now() + self.timeout * 2;
        for attempt in 1..=MAX_ATTEMPTS {
            match self.client.export::<Req, Resp>(request.clone()) {
                (Outcome::Ok, response) => {
                    self.backoff.succeeded();
                    return Ok(response);
                }
                (Outcome::Rejected, _) => return Err(ExportFailure::Refused),
                (Outcome::Retry(after), _) if attempt < MAX_ATTEMPTS => {
                    let now = std::time::Instant::now();
                    let wait = self.backoff.failed(now, after);
                    if now + wait + self.timeout > deadline {
                        break;
                    }
                    std::thread::sleep(wait);
                }
                (Outcome::Retry(_), _) => {}
            }
        }
        Err(ExportFailure::Unavailable)
    }
}

/// Why a batch was not exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFailure {
    /// The receiver refused it (4xx other than 429; a non-retryable gRPC code).
    Refused,
    /// Unreachable, or retryable answers until out of attempts or time.
    Unavailable,
}

#[cfg(feature = "otlp-grpc")]
mod grpc {
    use std::time::Duration;

    use prost::Message;
    use tonic::Code;
    use tonic::codec::CompressionEncoding;
    use tonic::codegen::http::uri::PathAndQuery;
    use tonic::metadata::{MetadataKey, MetadataValue};
    use tonic::transport::{Channel, Endpoint};
    use tonic_types::StatusExt as _;

    use super::MAX_RESPONSE_BYTES;
    use crate::config::Secret;
    use crate::export::push::Outcome;

    /// A gRPC channel on a current-thread runtime owned by the export thread (created on first
    /// use, so it is built, driven and dropped there, never on a caller's async thread).
    pub(super) struct GrpcTransport {
        origin: String,
        timeout: Duration,
        live: Option<(tokio::runtime::Runtime, Channel)>,
    }

    impl GrpcTransport {
        pub(super) fn new(endpoint: &str, timeout: Duration) -> Self {
            GrpcTransport {
                origin: origin(endpoint),
                timeout,
                live: None,
            }
        }

        fn connect(
            &mut self,
            timeout: Duration,
        ) -> Option<&mut (tokio::runtime::Runtime, Channel)> {
            if self.live.is_none() {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                let channel = lazy_channel(&self.origin, timeout, &runtime)?;
                self.live = Some((runtime, channel));
            }
            self.live.as_mut()
        }

        pub(super) fn unary<Req, Resp>(
            &mut self,
            path: &'static str,
            request: Req,
            headers: &[(String, Secret)],
            gzip: bool,
        ) -> (Outcome, Option<Resp>)
        where
            Req: Message + Send + 'static,
            Resp: Message + Default + Send + 'static,
        {
            let timeout = self.timeout;
            let Some((runtime, channel)) = self.connect(timeout) else {
                return (Outcome::Retry(None), None);
            };
            let mut request = tonic::Request::new(request);
            for (k, v) in headers {
                // Validation checked names and values; a pair gRPC cannot carry is skipped.
                if let (Ok(key), Ok(value)) = (
                    MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
                    MetadataValue::try_from(v.expose()),
                ) {
                    request.metadata_mut().insert(key, value);
                }
            }
            request.set_timeout(timeout);
            let mut client = tonic::client::Grpc::new(channel.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(MAX_RESPONSE_BYTES);
            if gzip {
                client = client.send_compressed(CompressionEncoding::Gzip);
            }
            // Errors say whether the connection itself is suspect (see below).
            let call = async move {
                client
                    .ready()
                    .await
                    .map_err(|_| (Outcome::Retry(None), true))?;
                let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
                client
                    .unary(request, PathAndQuery::from_static(path), codec)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|status| {
                        // The connection is suspect when the status is the channel's own: its
                        // request timeout (`Cancelled`) or a transport error (the status then
                        // carries it as its source). An answer of the server (`UNAVAILABLE`
                        // as backpressure, say) keeps the connection.
                        let suspect = status.code() == tonic::Code::Cancelled
                            || std::error::Error::source(&status).is_some();
                        (classify(&status), suspect)
                    })
            };
            let answer = runtime.block_on(async {
                tokio::time::timeout(timeout, call)
                    .await
                    .unwrap_or(Err((Outcome::Retry(None), true)))
            });
            match answer {
                Ok(response) => (Outcome::Ok, Some(response)),
                Err((outcome, suspect)) => {
                    if suspect {
                        // A connection that timed out or broke may be a black hole (accepted,
                        // never answered) that HTTP/2 would keep reusing: the next attempt
                        // connects afresh.
                        self.reset_channel();
                    }
                    (outcome, None)
                }
            }
        }

        /// Drops the channel and its runtime (with whatever connection and background tasks
        /// they hold): the next call starts from scratch.
        fn reset_channel(&mut self) {
            if let Some((runtime, channel)) = self.live.take() {
                drop(channel);
                runtime.shutdown_background();
            }
        }
    }

    /// A channel to `origin` that connects on first use, bounded by `timeout`.
    fn lazy_channel(
        origin: &str,
        timeout: Duration,
        runtime: &tokio::runtime::Runtime,
    ) -> Option<Channel> {
        let endpoint = Endpoint::from_shared(origin.to_owned())
            .ok()?
            .connect_timeout(timeout)
            .timeout(timeout);
        let _entered = runtime.enter();
        Some(endpoint.connect_lazy())
    }

    impl Drop for GrpcTransport {
        fn drop(&mut self) {
            // Never wait for the runtime's blocking tasks (a DNS lookup stuck in
            // `getaddrinfo`): shutdown must not hang on them.
            self.reset_channel();
        }
    }

    /// `scheme://authority` of the endpoint: a gRPC service's path is fixed by the protocol.
    fn origin(endpoint: &str) -> String {
        let (scheme, rest) = endpoint.split_once("://").unwrap_or(("http", endpoint));
        let authority = rest.split('/').next().unwrap_or(rest);
        format!("{scheme}://{authority}")
    }

    /// The OTLP/gRPC retry rules.
    pub(super) fn classify(status: &tonic::Status) -> Outcome {
        let delay = || status.get_details_retry_info().and_then(|r| r.retry_delay);
        match status.code() {
            Code::Ok => Outcome::Ok,
            Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss => Outcome::Retry(delay()),
            // Retryable only when the server says when (OTLP spec).
            Code::ResourceExhausted => match delay() {
                Some(d) => Outcome::Retry(Some(d)),
                None => Outcome::Rejected,
            },
            _ => Outcome::Rejected,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use tonic_types::ErrorDetails;

        #[test]
        fn grpc_codes_follow_the_otlp_retry_rules() {
            assert_eq!(
                classify(&tonic::Status::unavailable("down")),
                Outcome::Retry(None)
            );
            assert_eq!(
                classify(&tonic::Status::invalid_argument("bad")),
                Outcome::Rejected
            );
            assert_eq!(
                classify(&tonic::Status::resource_exhausted("slow down")),
                Outcome::Rejected,
                "no RetryInfo: not retryable"
            );
            let with_delay = tonic::Status::with_error_details(
                Code::ResourceExhausted,
                "slow down",
                ErrorDetails::with_retry_info(Some(Duration::from_secs(3))),
            );
            assert_eq!(
                classify(&with_delay),
                Outcome::Retry(Some(Duration::from_secs(3)))
            );
        }

        #[test]
        fn the_origin_drops_any_path() {
            assert_eq!(origin("http://c:4317/v1/traces"), "http://c:4317");
            assert_eq!(origin("http://c:4317"), "http://c:4317");
        }
    }
}
