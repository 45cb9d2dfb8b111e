//! A TCP proxy on a loopback port in front of a backend (a fake Elasticsearch or OTLP
//! receiver), whose behaviour a test switches while the SDK ships through it: pass, add
//! latency, black-hole connections, reset them, or refuse them. Put its URL in the SDK's
//! configuration instead of the backend's.
//!
//! ```
//! use std::time::Duration;
//! use stockbot_telemetry_testing::elasticsearch::FakeElasticsearch;
//! use stockbot_telemetry_testing::fault_proxy::{Fault, FaultProxy};
//!
//! let es = FakeElasticsearch::start().unwrap();
//! let proxy = FaultProxy::start(&es.url()).unwrap();
//! proxy.set(Fault::BlackHole); // connections accepted, never answered
//! // ... configure `log.elasticsearch.url = proxy.url()`, emit, assert on the drops ...
//! proxy.set(Fault::Pass); // the backend is back
//! assert!(proxy.url().starts_with("http://127.0.0.1:"));
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does with connections (new ones; [`Fault::Refuse`] and
/// [`Fault::BlackHole`] also stop forwarding on open ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    Pass,
    /// Forward, holding every chunk this long first (a slow network or backend).
    Delay(Duration),
    /// Accept, read and discard, never answer: the client waits for its timeout.
    BlackHole,
    /// Accept, let the request arrive, then reset the connection (RST: the request's unread
    /// bytes are discarded by closing). Open forwarded connections are closed (FIN).
    Reset,
    /// Refuse connections: the listening socket is closed (`ECONNREFUSED`) until another
    /// fault is set, when it is opened again on the same port.
    Refuse,
}

/// A running proxy; stops (and closes every connection) when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    /// Bumped on every [`FaultProxy::set`]: open connections re-check the fault.
    generation: AtomicUsize,
    stop: AtomicBool,
    accepted: AtomicUsize,
}

impl Shared {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port…` or
    /// `host:port`; only the address is used), passing traffic until told otherwise.
    ///
    /// # Errors
    /// An upstream that is not `host:port` on an IP address, or a failure to listen.
    pub fn start(upstream: &str) -> io::Result<Self> {
        let hostport = upstream
            .split("://")
            .last()
            .unwrap_or(upstream)
            .split('/')
            .next()
            .unwrap_or_default();
        let upstream: SocketAddr = hostport.parse().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("upstream `{hostport}`: {e}"),
            )
        })?;
        let listener = listen_outside_ephemeral_range()?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            fault: Mutex::new(Fault::Pass),
            generation: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
        });
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || serve(listener, addr, &shared)
            })?;
        Ok(FaultProxy {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`: the URL to configure instead of the backend's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the behaviour: for new connections at once; open forwarded connections stop
    /// forwarding at their next chunk under `BlackHole`, `Reset` or `Refuse`; connections
    /// accepted as black holes stay so until their client closes them.
    pub fn set(&self, fault: Fault) {
        *self
            .shared
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fault;
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Acquire)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const POLL: Duration = Duration::from_millis(10);

/// A loopback listener on a port below the kernel's ephemeral range. Under `Refuse` the port is
/// closed for a while: an ephemeral port could meanwhile become the source port of an outgoing
/// connection — even of a client connecting to this very port, which then connects to itself
/// (TCP simultaneous open on loopback) — and the proxy could not listen again until that
/// connection closed. Ports outside the range are never handed out that way.
fn listen_outside_ephemeral_range() -> io::Result<TcpListener> {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    const FIRST: u16 = 10_000;
    if low > FIRST + 100 {
        let span = u64::from(low - FIRST);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into())
            ^ u64::from(std::process::id()) << 20;
        for i in 0..200u64 {
            let port = FIRST + ((seed.wrapping_add(i * 7919)) % span) as u16;
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
                return Ok(listener);
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
}

fn serve(listener: TcpListener, addr: SocketAddr, shared: &Arc<Shared>) {
    let mut listener = Some(listener);
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::Acquire) {
        match (shared.fault(), &listener) {
            (Fault::Refuse, Some(_)) => listener = None,
            (Fault::Refuse, None) => {}
            (_, None) => listener = TcpListener::bind(addr).ok(),
            (_, Some(_)) => {}
        }
        let Some(l) = &listener else {
            std::thread::sleep(POLL);
            continue;
        };
        let _ = l.set_nonblocking(true);
        match l.accept() {
            Ok((client, _)) => {
                shared.accepted.fetch_add(1, Ordering::AcqRel);
                let shared = Arc::clone(shared);
                if let Ok(t) = std::thread::Builder::new()
                    .name("fault-proxy-conn".into())
                    .spawn(move || connection(client, &shared))
                {
                    connections.push(t);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
        connections.retain(|t| !t.is_finished());
    }
    drop(listener);
    for t in connections {
        let _ = t.join();
    }
}

/// One client connection, handled by the fault in force when it arrived.
fn connection(client: TcpStream, shared: &Arc<Shared>) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(POLL * 5));
    match shared.fault() {
        Fault::Pass | Fault::Delay(_) => forward(client, shared),
        Fault::BlackHole => black_hole(client, shared),
        Fault::Reset => reset(client),
        Fault::Refuse => drop(client),
    }
}

fn black_hole(mut client: TcpStream, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    while !shared.stop.load(Ordering::Acquire) {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn reset(client: TcpStream) {
    // Wait for the request, leave it unread: closing a socket with unread data sends RST.
    let mut probe = [0u8; 1];
    let _ = client.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = client.peek(&mut probe);
    drop(client);
}

fn forward(client: TcpStream, shared: &Arc<Shared>) {
    let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(2)) else {
        return;
    };
    let _ = upstream.set_read_timeout(Some(POLL * 5));
    let (Ok(client_w), Ok(upstream_w)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let back = {
        let shared = Arc::clone(shared);
        std::thread::spawn(move || pump(upstream, client_w, &shared))
    };
    pump(client, upstream_w, shared);
    let _ = back.join();
}

/// Copies `from` to `to` under the fault in force: delayed, or cut off when the fault turns
/// into a black hole, a reset or a refusal.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        match shared.fault() {
            Fault::Pass => {}
            Fault::Delay(d) => std::thread::sleep(d),
            // Open connections stop forwarding: what arrives from now on is discarded.
            Fault::BlackHole => continue,
            Fault::Reset | Fault::Refuse => break,
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An upstream that answers every line with the line upper-cased.
    fn echo_upper() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn ask(proxy: &FaultProxy, timeout: Duration) -> io::Result<String> {
        let mut s = TcpStream::connect_timeout(&proxy.addr(), timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"ping")?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    #[test]
    fn every_fault_does_what_it_says_and_pass_restores_the_backend() {
        let proxy = FaultProxy::start(&format!("http://{}/_bulk", echo_upper())).unwrap();
        assert_eq!(ask(&proxy, Duration::from_secs(5)).unwrap(), "PING");

        proxy.set(Fault::Delay(Duration::from_millis(300)));
        let t = Instant::now();
        assert_eq!(ask(&proxy, Duration::from_secs(5)).unwrap(), "PING");
        assert!(t.elapsed() >= Duration::from_millis(300));

        proxy.set(Fault::BlackHole);
        let err = ask(&proxy, Duration::from_millis(300)).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );

        proxy.set(Fault::Reset);
        // Reset, or (if the close raced the read) an end of stream: never an answer.
        match ask(&proxy, Duration::from_secs(5)) {
            Ok(answer) => assert_eq!(answer, ""),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}"),
        }

        proxy.set(Fault::Refuse);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match TcpStream::connect(proxy.addr()) {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                _ if Instant::now() < deadline => std::thread::sleep(POLL),
                other => panic!("still accepting: {other:?}"),
            }
        }

        proxy.set(Fault::Pass);
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = loop {
            match ask(&proxy, Duration::from_secs(5)) {
                Ok(a) => break a,
                Err(_) if Instant::now() < deadline => std::thread::sleep(POLL),
                Err(e) => panic!("not back: {e}"),
            }
        };
        assert_eq!(answer, "PING");
        assert!(proxy.accepted() >= 5);
    }

    #[test]
    fn an_upstream_that_is_not_an_address_is_refused() {
        let err = FaultProxy::start("http://es.example:9200").unwrap_err();
        assert!(err.to_string().contains("es.example:9200"), "{err}");
    }
}
