//! The small HTTP/1.1 server behind the fake backends: keep-alive connections on a loopback
//! port, one thread per connection, `Content-Length` bodies (gzip decoded), and a handler that
//! may delay its answer or drop the connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as received.
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path and query.
    pub(crate) path: String,
    /// Headers, names lowercased.
    pub(crate) headers: Vec<(String, String)>,
    /// The body, decompressed when it came gzip-encoded.
    pub(crate) body: Vec<u8>,
    pub(crate) gzip: bool,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The value of header `name` (lowercase) in a recorded header list.
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What to answer.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) delay: Duration,
    /// Drop the connection without answering.
    pub(crate) close: bool,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
            delay: Duration::ZERO,
            close: false,
        }
    }
}

pub(crate) type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// The server; stops on drop.
pub(crate) struct HttpServer {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves on a free loopback port; bodies over `max_body` get 413.
    pub(crate) fn start(name: &str, max_body: usize, handler: Handler) -> std::io::Result<Self> {
        HttpServer::start_with(name, max_body, handler, None)
    }

    /// As [`HttpServer::start`], over TLS when `tls` is given.
    pub(crate) fn start_with(
        name: &str,
        max_body: usize,
        handler: Handler,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let sp = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while !sp.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                            // Answers go out at once (no Nagle delay against delayed ACKs).
                            let _ = stream.set_nodelay(true);
                            let handler = Arc::clone(&handler);
                            let tls = tls.clone();
                            std::thread::spawn(move || {
                                let _ = match tls {
                                    Some(config) => rustls::ServerConnection::new(config)
                                        .map_err(std::io::Error::other)
                                        .and_then(|conn| {
                                            serve(
                                                rustls::StreamOwned::new(conn, stream),
                                                max_body,
                                                &handler,
                                            )
                                        }),
                                    None => serve(stream, max_body, &handler),
                                };
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })?;
        Ok(HttpServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn simple(stream: &mut impl Write, status: &str) -> std::io::Result<()> {
    stream.write_all(
        format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
    )
}

fn serve<S: Read + Write>(stream: S, max_body: usize, handler: &Handler) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
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
        if len > max_body {
            return simple(reader.get_mut(), "413 Payload Too Large");
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let gzip = headers
            .iter()
            .any(|(k, v)| k == "content-encoding" && v.eq_ignore_ascii_case("gzip"));
        if gzip {
            let mut plain = Vec::new();
            let decoded = flate2::read::GzDecoder::new(body.as_slice())
                .take(max_body as u64 + 1)
                .read_to_end(&mut plain);
            if decoded.is_err() {
                return simple(reader.get_mut(), "400 Bad Request");
            }
            if plain.len() > max_body {
                return simple(reader.get_mut(), "413 Payload Too Large");
            }
            body = plain;
        }
        let response = handler(Request {
            method,
            path,
            headers,
            body,
            gzip,
        });
        std::thread::sleep(response.delay);
        if response.close {
            return Ok(());
        }
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            response.status,
            response.body.len()
        );
        for (k, v) in &response.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut answer = head.into_bytes();
        answer.extend_from_slice(&response.body);
        let stream = reader.get_mut();
        stream.write_all(&answer)?;
        stream.flush()?;
    }
}

/// A throw-away certificate authority and a server certificate it signed for `127.0.0.1` and
/// `localhost`, for TLS fakes.
pub(crate) struct TestPki {
    /// The CA certificate (PEM), to trust in the client under test.
    pub(crate) ca_pem: String,
    pub(crate) server: Arc<rustls::ServerConfig>,
}

impl TestPki {
    pub(crate) fn generate() -> std::io::Result<Self> {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
        let err = std::io::Error::other;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "stockbot-telemetry-testing CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(err)?)
            .map_err(err)?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(err)?;
        leaf.subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        let leaf_key = KeyPair::generate().map_err(err)?;
        let leaf_cert = leaf.signed_by(&leaf_key, &ca).map_err(err)?;
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        );
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone(), ca.der().clone()], key)
        .map_err(std::io::Error::other)?;
        Ok(TestPki {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        })
    }
}
