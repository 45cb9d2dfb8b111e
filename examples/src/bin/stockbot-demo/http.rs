//! Loopback HTTP between the services: a small JSON server whose requests continue the
//! caller's trace, and a client that injects the current trace context.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

/// An incoming request: path, headers (the trace context carrier) and JSON body.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Value,
}

impl Incoming {
    /// Makes `span` continue the caller's trace (a request without context starts its own).
    pub(crate) fn continue_trace(&self, span: &tracing::Span) {
        if let Err(e) = stockbot_telemetry::extract_into(span, &self.headers) {
            tracing::warn!(error.message = %e, "bad trace context from the caller");
        }
    }
}

/// What a handler answers: JSON, or an HTTP status and a message.
pub(crate) type Answer = Result<Value, (u16, String)>;

/// A request handler.
pub(crate) type Handler = Arc<dyn Fn(&Incoming) -> Answer + Send + Sync>;

/// A handler of `POST <path>`: it runs inside the server span `span()` makes, which
/// continues the caller's trace.
pub(crate) fn post(
    path: &'static str,
    span: fn() -> tracing::Span,
    handle: impl Fn(&Incoming) -> Answer + Send + Sync + 'static,
) -> Handler {
    Arc::new(move |req: &Incoming| {
        if req.path != path {
            return Err((404, format!("no route {}", req.path)));
        }
        let span = span();
        req.continue_trace(&span);
        span.in_scope(|| handle(req))
    })
}

/// The text field `key` of a request body, or `default`.
pub(crate) fn text(body: &Value, key: &str, default: &str) -> String {
    body[key].as_str().unwrap_or(default).to_owned()
}

/// The server: `threads` threads answering on a free loopback port.
pub(crate) struct Server {
    inner: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(handler: Handler, threads: usize) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        // Answers go out at once (accepted sockets inherit it): without it, Nagle's algorithm
        // and the caller's delayed ACK add milliseconds to every small answer.
        nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::TcpNoDelay, &true)
            .map_err(std::io::Error::other)?;
        let inner = Arc::new(
            tiny_http::Server::from_listener(listener, None).map_err(std::io::Error::other)?,
        );
        let addr = inner
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("not an IP listener"))?;
        let threads = (0..threads)
            .map(|i| {
                let (server, handler) = (Arc::clone(&inner), Arc::clone(&handler));
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        while let Ok(request) = server.recv() {
                            answer(request, &*handler);
                        }
                    })
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Server {
            inner,
            threads,
            addr,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the threads (requests in progress finish).
    pub(crate) fn stop(self) {
        for _ in &self.threads {
            self.inner.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn answer(mut request: tiny_http::Request, handler: &(dyn Fn(&Incoming) -> Answer + Send + Sync)) {
    let mut text = String::new();
    let body = match std::io::Read::read_to_string(request.as_reader(), &mut text) {
        Ok(_) if text.is_empty() => Ok(Value::Null),
        Ok(_) => serde_json::from_str(&text).map_err(|e| (400, format!("bad JSON: {e}"))),
        Err(e) => Err((400, format!("unreadable body: {e}"))),
    };
    let result = body.and_then(|body| {
        handler(&Incoming {
            path: request.url().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect(),
            body,
        })
    });
    let (status, body) = match result {
        Ok(v) => (200, v.to_string()),
        Err((status, message)) => (status, serde_json::json!({ "error": message }).to_string()),
    };
    let json = "Content-Type: application/json"
        .parse::<tiny_http::Header>()
        .expect("a valid header");
    let response = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(json);
    let _ = request.respond(response);
}

/// A call that did not get a 200 answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No answer (refused, timed out).
    Transport(String),
    /// An answer with another status.
    Status(u16, String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "no answer: {e}"),
            CallError::Status(s, m) => write!(f, "answered {s}: {m}"),
        }
    }
}

/// A client of one downstream service.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    pub(crate) fn new(base: &str) -> Client {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("a client without TLS always builds");
        Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// POSTs `body` inside the client span `span` (which ends with the call).
    pub(crate) fn call(
        &self,
        span: tracing::Span,
        path: &str,
        body: &Value,
    ) -> Result<Value, CallError> {
        span.in_scope(|| self.post(path, body))
    }

    /// POSTs `body` with the current trace context (call it inside the client span).
    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        let mut headers = reqwest::header::HeaderMap::new();
        stockbot_telemetry::inject_current(&mut headers);
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .headers(headers)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = answer.status().as_u16();
        let text = answer
            .text()
            .map_err(|e| CallError::Transport(e.to_string()))?;
        if status != 200 {
            return Err(CallError::Status(status, text));
        }
        serde_json::from_str(&text).map_err(|e| CallError::Status(status, format!("bad JSON: {e}")))
    }
}
