//! The Prometheus scrape endpoint: `GET /metrics` on a loopback address by default, served by
//! one named thread. Rendering happens on that thread, never on a caller's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::exposition::Format;

/// Renders the exposition on demand.
pub(crate) type RenderFn = Arc<dyn Fn(Format) -> String + Send + Sync>;

/// The credentials a scraper must present, when configured.
pub(crate) struct Access {
    /// The expected `Authorization` value: `Basic …` or `Bearer …`.
    pub(crate) expected: crate::config::Secret,
    /// Requests refused for missing or wrong credentials.
    pub(crate) refused: Arc<std::sync::atomic::AtomicU64>,
}

impl Access {
    /// Whether `header` (the request's `Authorization` value) carries the expected
    /// credentials: the scheme compared without case (RFC 7235), the credentials in constant
    /// time.
    fn admits(&self, header: Option<&str>) -> bool {
        let Some((scheme, credentials)) = header.and_then(|h| h.trim().split_once(' ')) else {
            return false;
        };
        let (want_scheme, want) = self.expected.expose().split_once(' ').unwrap_or(("", ""));
        scheme.eq_ignore_ascii_case(want_scheme)
            && constant_time_eq(credentials.trim().as_bytes(), want.as_bytes())
    }

    fn challenge(&self) -> &'static str {
        if self.expected.expose().starts_with("Basic ") {
            "WWW-Authenticate: Basic realm=\"metrics\", charset=\"UTF-8\""
        } else {
            "WWW-Authenticate: Bearer realm=\"metrics\""
        }
    }
}

/// Compares without an early exit on the first differing byte (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A running scrape endpoint.
pub(crate) struct ScrapeServer {
    addr: SocketAddr,
    server: Option<Arc<tiny_http::Server>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ScrapeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ScrapeServer {
    /// Binds `addr` (an error if the port is taken) and starts serving; with `access`, only
    /// to scrapers that present its credentials.
    pub(crate) fn start(
        addr: SocketAddr,
        render: RenderFn,
        access: Option<Access>,
    ) -> std::io::Result<Self> {
        let server = tiny_http::Server::http(addr)
            .map(Arc::new)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::AddrInUse, e.to_string()))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("scrape endpoint bound to a non-IP address"))?;
        let header = |f: Format| -> std::io::Result<tiny_http::Header> {
            format!("Content-Type: {}", f.content_type())
                .parse()
                .map_err(|()| std::io::Error::other("invalid content type header"))
        };
        let content_types = [header(Format::Text)?, header(Format::OpenMetrics)?];
        let challenge = match &access {
            Some(a) => Some(
                a.challenge()
                    .parse::<tiny_http::Header>()
                    .map_err(|()| std::io::Error::other("invalid challenge header"))?,
            ),
            None => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (srv, stop2) = (Arc::clone(&server), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("stockbot-telemetry-scrape".into())
            .spawn(move || {
                // Nothing logged from here reaches our own pipeline (no feedback loop).
                let _quiet = tracing::dispatcher::set_default(&tracing::Dispatch::none());
                while !stop2.load(Ordering::Acquire) {
                    match srv.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(request)) => {
                            if let Some(access) = &access {
                                let header = request
                                    .headers()
                                    .iter()
                                    .find(|h| h.field.equiv("Authorization"))
                                    .map(|h| h.value.as_str().to_owned());
                                if !access.admits(header.as_deref()) {
                                    access.refused.fetch_add(1, Ordering::Relaxed);
                                    let mut response =
                                        tiny_http::Response::from_string("unauthorized\n")
                                            .with_status_code(401);
                                    if let Some(c) = &challenge {
                                        response.add_header(c.clone());
                                    }
                                    let _ = request.respond(response);
                                    continue;
                                }
                            }
                            serve(request, &render, &content_types);
                        }
                        Ok(None) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        Ok(ScrapeServer {
            addr: bound,
            server: Some(server),
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving; waits for the thread until `deadline` (a scraper stuck reading a response
    /// must not hold shutdown).
    pub(crate) fn stop_by(&mut self, deadline: std::time::Instant) {
        self.stop.store(true, Ordering::Release);
        if let Some(server) = &self.server {
            server.unblock();
        }
        if let Some(t) = self.thread.take() {
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        // The last reference: dropping it closes the listening socket.
        self.server = None;
    }
}

impl Drop for ScrapeServer {
    fn drop(&mut self) {
        self.stop_by(std::time::Instant::now() + Duration::from_secs(1));
    }
}

fn serve(request: tiny_http::Request, render: &RenderFn, content_types: &[tiny_http::Header; 2]) {
    let path = request.url().split('?').next().unwrap_or("");
    let response = match (request.method(), path) {
        (tiny_http::Method::Get, "/metrics") => {
            // A panic while rendering must not kill the endpoint.
            // Content negotiation: OpenMetrics (with exemplars) when the scraper asks for it.
            let accept = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Accept"))
                .map(|h| h.value.as_str().to_owned());
            let format = Format::negotiate(accept.as_deref());
            let content_type = &content_types[usize::from(format == Format::OpenMetrics)];
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| render(format))) {
                Ok(body) => {
                    tiny_http::Response::from_string(body).with_header(content_type.clone())
                }
                Err(_) => {
                    tiny_http::Response::from_string("rendering failed\n").with_status_code(500)
                }
            }
        }
        (tiny_http::Method::Get, _) => {
            tiny_http::Response::from_string("not found; metrics are at /metrics\n")
                .with_status_code(404)
        }
        _ => tiny_http::Response::from_string("method not allowed\n").with_status_code(405),
    };
    let _ = request.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ScrapeAuth, Secret};

    fn access(auth: &ScrapeAuth) -> Access {
        Access {
            expected: auth.header_value(),
            refused: Arc::default(),
        }
    }

    #[test]
    fn basic_credentials_are_checked_scheme_without_case() {
        let a = access(&ScrapeAuth::Basic {
            username: "prometheus".into(),
            password: Secret::new("s3cret"),
        });
        // base64("prometheus:s3cret")
        assert!(a.admits(Some("Basic cHJvbWV0aGV1czpzM2NyZXQ=")));
        assert!(a.admits(Some("basic  cHJvbWV0aGV1czpzM2NyZXQ= ")));
        assert!(!a.admits(Some("Basic cHJvbWV0aGV1czpzM2NyZXR=")));
        assert!(!a.admits(Some("Bearer cHJvbWV0aGV1czpzM2NyZXQ=")));
        assert!(!a.admits(Some("Basic")));
        assert!(!a.admits(None));
        assert!(a.challenge().contains("Basic realm"));
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let a = access(&ScrapeAuth::Bearer(Secret::new("abc.DEF-123")));
        assert!(a.admits(Some("Bearer abc.DEF-123")));
        assert!(!a.admits(Some("Bearer abc.DEF-12")));
        assert!(!a.admits(Some("Bearer abc.DEF-1234")));
        assert!(!a.admits(Some("Bearer ABC.DEF-123")));
        assert!(a.challenge().contains("Bearer realm"));
    }
}
