//! Syslog listeners: `--listen syslog+udp://ADDR`, `syslog+tcp://ADDR`, `syslog+tls://ADDR`.
//!
//! All listeners run as tasks on one small tokio runtime. Each task frames what it receives into
//! [`LineBatch`]es, one batch stream per peer (the `source` of an event is
//! `syslog+udp://PEER_IP:PORT` and so on), and hands them to a *bridge* thread that does the
//! blocking send into the pipeline's channel. The bridge is why an async task never blocks a
//! runtime worker on a full channel: the tasks await a small async channel instead, and the
//! pipeline's backpressure reaches a TCP sender as a full receive window.
//!
//! UDP has no backpressure towards the sender, so it reaches the kernel instead: the UDP task
//! waits for the pipeline like a TCP task does, datagrams queue in a large kernel receive
//! buffer ([`UDP_RECEIVE_BUFFER`]), and only what overflows that buffer is lost; the kernel
//! counts it and secpipe reports it (`dropped{reason="udp_receive_buffer"}`). Many senders
//! cost nothing extra: there is no per-sender queue to overflow (see `udp.rs`).
//!
//! Limits, each counted when hit, never a crash ([`Limits`]):
//! - message size (`--max-line`): longer messages are cut; the bytes cut are counted
//!   (`dropped_bytes{reason="truncated"}`), as are the bytes of a message a connection never
//!   finished (`incomplete_frame`), and all of them in the summary's `dropped bytes`;
//! - open TCP/TLS connections, derived from the descriptor limit (which secpipe raises to its
//!   hard maximum at start, [`raise_descriptor_limit`]) minus [`FILE_HEADROOM`] for the
//!   archive, followed files and the metrics endpoint, and at most [`MAX_CONNECTIONS`]; at the
//!   cap the connection that has been quiet longest makes room (`evicted`), and when none has
//!   been quiet for [`EVICT_QUIET_AFTER`] the newcomer is closed (`connection_limit`);
//! - connections per client address ([`Limits::max_per_address`], `address_limit`);
//! - [`LINE_DEADLINE`] to finish a message once it has started, so a sender dribbling one byte
//!   a minute (slowloris) is closed (`line_deadline`) instead of holding its slot;
//! - [`IDLE_TIMEOUT`] per connection, [`HANDSHAKE_TIMEOUT`] for TLS (`tls_handshake`).
//!
//! ```
//! use secpipe::source::syslog::{ListenSpec, Transport};
//! let spec = ListenSpec::parse("syslog+tcp://127.0.0.1:6514").unwrap();
//! assert_eq!(spec.transport, Transport::Tcp);
//! assert_eq!(spec.addr.port(), 6514);
//! assert!(ListenSpec::parse("http://127.0.0.1:80").is_err());
//! ```

mod admission;
mod stream;
pub mod tls;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Liveness, ReadReport, Source, SourceContext, SourceHandle};
use crate::frame::LineBatch;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Open TCP/TLS connections allowed at once, over all listeners, at most (fewer when the
/// descriptor limit is low). Each costs up to a read buffer, a partial message and a batch.
pub const MAX_CONNECTIONS: usize = 1024;
/// Descriptors kept free for everything that is not a syslog connection: archive files and
/// their directories, followed files, state, metrics scrapes, the runtime's own.
pub const FILE_HEADROOM: usize = 256;
/// Connections per client address, at most (a relay or NAT may carry several hosts).
pub const MAX_PER_ADDRESS: usize = 64;
/// At the connection cap, a connection that has completed no message for this long may be
/// closed to make room for a new one.
pub const EVICT_QUIET_AFTER: Duration = Duration::from_secs(5);
/// A message must be complete this long after its first byte arrived.
pub const LINE_DEADLINE: Duration = Duration::from_secs(30);
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A TLS client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A partial batch is handed on after this long, so a live alert is not held back waiting for
/// more messages to fill it.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);
/// Receive buffer asked for on UDP sockets: at 50,000 datagrams/s, about a second of traffic
/// (the kernel caps it at `net.core.rmem_max` unless secpipe has CAP_NET_ADMIN).
pub const UDP_RECEIVE_BUFFER: usize = 16 * 1024 * 1024;
/// Batches waiting between the listener tasks and the bridge thread.
const BRIDGE_BATCHES: usize = 16;

/// Which syslog transport a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// RFC 5426: one message per datagram.
    Udp,
    /// RFC 6587: newline framing or octet counting, detected per connection.
    Tcp,
    /// RFC 5425: TLS, always octet counting.
    Tls,
}

impl Transport {
    /// The URL scheme, also the prefix of each event's `source`.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Udp => "syslog+udp",
            Transport::Tcp => "syslog+tcp",
            Transport::Tls => "syslog+tls",
        }
    }
}

/// One `--listen` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl ListenSpec {
    /// Parse `syslog+udp://ADDR:PORT` (also `+tcp`, `+tls`; IPv6 as `[::1]:514`).
    pub fn parse(text: &str) -> Result<ListenSpec, String> {
        let (scheme, addr) = text.split_once("://").ok_or_else(|| {
            format!("{text}: expected syslog+udp://ADDR, syslog+tcp://ADDR or syslog+tls://ADDR")
        })?;
        let transport = match scheme {
            "syslog+udp" => Transport::Udp,
            "syslog+tcp" => Transport::Tcp,
            "syslog+tls" => Transport::Tls,
            other => {
                return Err(format!(
                    "{text}: unknown scheme {other:?}; use syslog+udp, syslog+tcp or syslog+tls"
                ));
            }
        };
        let addr = addr
            .trim_end_matches('/')
            .parse::<SocketAddr>()
            .map_err(|e| format!("{text}: {e}; write the address as IP:PORT, e.g. 0.0.0.0:514"))?;
        Ok(ListenSpec { transport, addr })
    }

    /// The listener's own URL (with the port actually bound), used as its metrics label.
    pub fn url(&self) -> String {
        format!("{}://{}", self.transport.scheme(), self.addr)
    }
}

/// A socket bound before the pipeline starts, so that a taken port is a usage error at once.
enum Bound {
    Udp(std::net::UdpSocket),
    Tcp(std::net::TcpListener),
    Tls(std::net::TcpListener, Arc<tokio_rustls::TlsAcceptor>),
}

/// The limits on TCP/TLS connections (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_address: usize,
    pub evict_quiet_after: Duration,
    pub line_deadline: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// The defaults, with the connection cap derived from the descriptor limit
    /// `open_files` (the soft `RLIMIT_NOFILE`).
    ///
    /// ```
    /// use secpipe::source::syslog::{Limits, MAX_CONNECTIONS};
    /// assert_eq!(Limits::for_descriptors(1_048_576).max_connections, MAX_CONNECTIONS);
    /// // The usual soft limit of 1,024 leaves room for the archive's files.
    /// assert_eq!(Limits::for_descriptors(1024).max_connections, 768);
    /// assert_eq!(Limits::for_descriptors(64).max_connections, 32);
    /// ```
    pub fn for_descriptors(open_files: u64) -> Limits {
        let open_files = usize::try_from(open_files).unwrap_or(usize::MAX);
        let max_connections = if open_files > 2 * FILE_HEADROOM {
            (open_files - FILE_HEADROOM).min(MAX_CONNECTIONS)
        } else {
            open_files / 2
        };
        Limits {
            max_connections: max_connections.max(1),
            max_per_address: MAX_PER_ADDRESS,
            evict_quiet_after: EVICT_QUIET_AFTER,
            line_deadline: LINE_DEADLINE,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Raise the soft descriptor limit (`RLIMIT_NOFILE`) to the hard one, and return the soft limit
/// now in force. Listeners call it before deriving their connection cap: a soft limit of 1,024
/// with a cap of 1,024 connections let idle connections take the descriptors the archive needed
/// for its next file (issue 10.6).
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit, a live local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    Ok(limit.rlim_cur)
}

/// Listeners bound and ready to be started as a [`Source`].
pub struct Listeners {
    bound: Vec<(ListenSpec, Bound)>,
    limits: Limits,
}

/// What every listener task shares.
#[derive(Clone)]
struct Context {
    bridge: mpsc::Sender<LineBatch>,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    max_line: usize,
    admission: Arc<admission::Admission>,
    limits: Limits,
    /// What every listener received and dropped, for the summary.
    received: Arc<Received>,
}

/// Bytes received and bytes dropped (cut lines, unfinished or bad frames) on every listener of
/// a run: the summary's counts, which `--metrics` splits by listener and reason.
#[derive(Default)]
struct Received {
    bytes: AtomicU64,
    dropped_bytes: AtomicU64,
}

impl Context {
    /// Count `n` bytes received from `url`.
    fn bytes_read(&self, url: &str, n: u64) {
        self.metrics.bytes_read(url, n);
        self.received.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Count `n` bytes dropped for `reason`.
    fn dropped_bytes(&self, reason: &'static str, n: u64) {
        self.metrics.dropped_bytes(reason, n);
        self.received.dropped_bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// `--listen` and `--tls-cert`/`--tls-key`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenConfig {
    pub specs: Vec<ListenSpec>,
    /// Certificate chain and private key (PEM) for `syslog+tls`.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl ListenConfig {
    /// Bind every listener now, before anything is read (a taken port is a usage error). Where
    /// each listens is said when they start, once the rest of the run (alert outputs included)
    /// has been built.
    pub fn bind(&self) -> Result<Listeners, String> {
        let acceptor = match &self.tls {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        Listeners::bind(&self.specs, acceptor)
    }
}

impl Source for Listeners {
    fn liveness(&self) -> Liveness {
        Liveness::Live
    }

    fn start(self: Box<Self>, ctx: &SourceContext) -> Result<SourceHandle, String> {
        for spec in self.specs() {
            crate::report::note(&format!("listening on {}", spec.url()));
        }
        self.spawn(ctx)
    }
}

impl Listeners {
    /// Bind every spec. `tls` is required when a spec is `syslog+tls`.
    pub fn bind(
        specs: &[ListenSpec],
        tls: Option<Arc<tokio_rustls::TlsAcceptor>>,
    ) -> Result<Listeners, String> {
        let mut bound = Vec::new();
        for spec in specs {
            let socket = match spec.transport {
                Transport::Udp => Bound::Udp(udp::bind(spec.addr).map_err(|e| at(spec, e))?),
                Transport::Tcp => Bound::Tcp(bind_tcp(spec.addr).map_err(|e| at(spec, e))?),
                Transport::Tls => {
                    let acceptor = tls
                        .clone()
                        .ok_or_else(|| format!("{}: needs --tls-cert and --tls-key", spec.url()))?;
                    Bound::Tls(bind_tcp(spec.addr).map_err(|e| at(spec, e))?, acceptor)
                }
            };
            let addr = match &socket {
                Bound::Udp(s) => s.local_addr(),
                Bound::Tcp(l) | Bound::Tls(l, _) => l.local_addr(),
            }
            .map_err(|e| at(spec, e))?;
            bound.push((
                ListenSpec {
                    transport: spec.transport,
                    addr,
                },
                socket,
            ));
        }
        // Without the raise, the default limits still hold; only the cap is then smaller.
        let open_files = raise_descriptor_limit().unwrap_or(1024);
        Ok(Listeners {
            bound,
            limits: Limits::for_descriptors(open_files),
        })
    }

    /// The limits in force ([`Limits::for_descriptors`] of the raised descriptor limit).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Replace the connection limits.
    ///
    /// ```
    /// use secpipe::source::syslog::{ListenSpec, Listeners};
    /// let spec = ListenSpec::parse("syslog+tcp://127.0.0.1:0").unwrap();
    /// let listeners = Listeners::bind(&[spec], None).unwrap();
    /// let limits = listeners.limits();
    /// let listeners = listeners.with_limits(secpipe::source::syslog::Limits {
    ///     max_connections: 16,
    ///     ..limits
    /// });
    /// assert_eq!(listeners.limits().max_connections, 16);
    /// assert_ne!(listeners.specs()[0].addr.port(), 0);
    /// ```
    pub fn with_limits(mut self, limits: Limits) -> Listeners {
        self.limits = limits;
        self
    }

    /// The bound listeners (with the ports the kernel picked for port 0).
    pub fn specs(&self) -> Vec<ListenSpec> {
        self.bound.iter().map(|(s, _)| s.clone()).collect()
    }

    /// Start the listener tasks on the context's runtime and the bridge thread that feeds the
    /// pipeline. The returned thread ends once every listener has stopped (on shutdown) and
    /// everything it received is sent on.
    fn spawn(self, source: &SourceContext) -> Result<SourceHandle, String> {
        let inputs = self.bound.len() as u64;
        let received = Arc::new(Received::default());
        let (bridge, mut from_tasks) = mpsc::channel::<LineBatch>(BRIDGE_BATCHES);
        let runtime = &source.runtime;
        let tx = source.tx.clone();
        let ctx = Context {
            bridge,
            shutdown: source.shutdown.clone(),
            metrics: source.metrics.clone(),
            max_line: source.max_line,
            received: received.clone(),
            admission: Arc::new(admission::Admission::new(
                self.limits.max_connections,
                self.limits.max_per_address,
                self.limits.evict_quiet_after,
            )),
            limits: self.limits,
        };
        // Converting std sockets to tokio ones registers them with this runtime's reactor.
        let _guard = runtime.enter();
        for (spec, socket) in self.bound {
            let ctx = ctx.clone();
            let url: Arc<str> = spec.url().into();
            match socket {
                Bound::Udp(s) => {
                    let s = tokio::net::UdpSocket::from_std(s).map_err(start_error)?;
                    runtime.spawn(udp::serve(s, url, ctx));
                }
                Bound::Tcp(l) => {
                    let l = tokio::net::TcpListener::from_std(l).map_err(start_error)?;
                    runtime.spawn(stream::serve(l, url, Transport::Tcp, None, ctx));
                }
                Bound::Tls(l, acceptor) => {
                    let l = tokio::net::TcpListener::from_std(l).map_err(start_error)?;
                    runtime.spawn(stream::serve(l, url, Transport::Tls, Some(acceptor), ctx));
                }
            }
        }
        // The tasks hold the only bridge senders now: when the last one ends, `blocking_recv`
        // returns None and the bridge drops `tx`, which is how the pipeline learns that the
        // listeners are done.
        drop(ctx);
        SourceHandle::spawn("syslog-bridge", move || {
            while let Some(batch) = from_tasks.blocking_recv() {
                if tx.send(batch).is_err() {
                    break;
                }
            }
            // Everything the listeners received has been sent on: what they read.
            let mut report = ReadReport {
                inputs,
                ..ReadReport::default()
            };
            report.frames.bytes = received.bytes.load(Ordering::Relaxed);
            report.frames.dropped_bytes = received.dropped_bytes.load(Ordering::Relaxed);
            report
        })
    }
}

fn start_error(e: std::io::Error) -> String {
    format!("cannot start the syslog listeners: {e}")
}

fn at(spec: &ListenSpec, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", spec.url())
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    // A restarted secpipe must be able to bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Numbers messages per peer and batches them; shared by the UDP and stream readers.
struct PeerBatch {
    source: Arc<str>,
    batch: LineBatch,
    /// When the first message of the current batch arrived.
    started: Option<tokio::time::Instant>,
    /// When the last message arrived.
    last_active: tokio::time::Instant,
}

impl PeerBatch {
    fn new(source: Arc<str>) -> PeerBatch {
        PeerBatch {
            batch: LineBatch::new(source.clone(), 1, 0),
            source,
            started: None,
            last_active: tokio::time::Instant::now(),
        }
    }

    fn push(&mut self, message: &[u8], truncated: bool) {
        if self.batch.is_empty() {
            self.batch.received = crate::event::now_micros();
            self.started = Some(tokio::time::Instant::now());
        }
        self.last_active = tokio::time::Instant::now();
        self.batch.push(message, truncated);
    }

    /// Time to hand the batch on: full, or old enough that waiting longer delays alerts.
    fn due(&self) -> bool {
        self.batch.is_full() || self.started.is_some_and(|t| t.elapsed() >= FLUSH_AFTER)
    }

    /// Take the batch (if any), leaving an empty one that continues the line numbering.
    fn take(&mut self) -> Option<LineBatch> {
        if self.batch.is_empty() {
            return None;
        }
        self.started = None;
        let next = LineBatch::new(self.source.clone(), self.batch.next_line(), 0);
        Some(std::mem::replace(&mut self.batch, next))
    }
}

/// Strip the transport's trailer from one received message: syslog senders end datagrams and
/// octet-counted frames with `\n` or NUL (or both) often enough that keeping them would put a
/// newline into every `raw`.
fn trim_trailer(message: &[u8]) -> &[u8] {
    let mut end = message.len();
    while end > 0 && matches!(message[end - 1], b'\n' | b'\0' | b'\r') {
        end -= 1;
    }
    &message[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_reject() {
        let v6 = ListenSpec::parse("syslog+udp://[::1]:514").expect("v6");
        assert_eq!(v6.url(), "syslog+udp://[::1]:514");
        assert_eq!(
            ListenSpec::parse("syslog+tls://0.0.0.0:6514/")
                .expect("tls")
                .transport,
            Transport::Tls
        );
        assert!(ListenSpec::parse("syslog+tcp://localhost").is_err());
        assert!(ListenSpec::parse("0.0.0.0:514").is_err());
    }

    #[test]
    fn trailers_are_trimmed_but_inner_newlines_kept() {
        assert_eq!(trim_trailer(b"a\nb\n\0"), b"a\nb");
        assert_eq!(trim_trailer(b"\n"), b"");
    }

    /// Limits for a test: generous, with the ones a test is about set by the caller.
    fn test_limits(max_connections: usize, idle: Duration) -> Limits {
        Limits {
            max_connections,
            max_per_address: 1000,
            evict_quiet_after: Duration::from_secs(600),
            line_deadline: Duration::from_secs(600),
            idle_timeout: idle,
        }
    }

    /// What [`start`] returns: the listener's address, what the pipeline would get, the
    /// metrics, the shutdown switch, the runtime and the bridge thread.
    type Started = (
        std::net::SocketAddr,
        crossbeam_channel::Receiver<LineBatch>,
        Arc<Metrics>,
        Shutdown,
        tokio::runtime::Runtime,
        SourceHandle,
    );

    /// Open a TCP listener with tight limits on a runtime of its own.
    fn start_tcp(limits: Limits) -> Started {
        start("syslog+tcp://127.0.0.1:0", Some(limits))
    }

    /// Open the listener `url` (with `limits`, else the defaults) on a runtime of its own.
    fn start(url: &str, limits: Option<Limits>) -> Started {
        let runtime = crate::shutdown::io_runtime().expect("runtime");
        let spec = ListenSpec::parse(url).expect("spec");
        let mut listeners = Listeners::bind(&[spec], None).expect("bind");
        if let Some(limits) = limits {
            listeners = listeners.with_limits(limits);
        }
        let addr = listeners.specs()[0].addr;
        let (tx, rx) = crossbeam_channel::bounded(64);
        let metrics = Arc::new(Metrics::new());
        let shutdown = Shutdown::new();
        let ctx = SourceContext {
            tx,
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
            runtime: runtime.handle().clone(),
            max_line: 1024,
        };
        let bridge = listeners.spawn(&ctx).expect("spawn");
        (addr, rx, metrics, shutdown, runtime, bridge)
    }

    fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
        let start = std::time::Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "gave up waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn connections_over_the_cap_are_closed_and_counted() {
        use std::io::{Read, Write};
        let (addr, rx, metrics, shutdown, _runtime, bridge) =
            start_tcp(test_limits(2, Duration::from_secs(60)));
        let mut first = std::net::TcpStream::connect(addr).expect("first");
        let mut second = std::net::TcpStream::connect(addr).expect("second");
        first.write_all(b"one\n").expect("write");
        second.write_all(b"two\n").expect("write");
        wait_until("two open connections", || {
            metrics.render().contains("secpipe_connections_open 2")
        });
        let mut third = std::net::TcpStream::connect(addr).expect("third connects");
        third
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut buf = [0u8; 1];
        // Closed by secpipe without a byte: EOF (or a reset).
        assert!(matches!(third.read(&mut buf), Ok(0) | Err(_)));
        assert!(
            metrics
                .render()
                .contains(r#"secpipe_dropped_total{reason="connection_limit"} 1"#)
        );
        let read_both = format!("secpipe_lines_read_total{{input=\"syslog+tcp://{addr}\"}} 2");
        wait_until("both lines read", || metrics.render().contains(&read_both));
        drop((first, second));
        shutdown.trigger();
        bridge.join().expect("bridge");
        let lines: usize = rx.try_iter().map(|b| b.len()).sum();
        assert_eq!(lines, 2);
    }

    #[test]
    fn an_idle_connection_is_closed_and_its_batch_handed_on() {
        use std::io::{Read, Write};
        let (addr, rx, metrics, shutdown, _runtime, bridge) =
            start_tcp(test_limits(8, Duration::from_millis(200)));
        let mut quiet = std::net::TcpStream::connect(addr).expect("connect");
        quiet.write_all(b"<13>only line\n").expect("write");
        quiet
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut buf = [0u8; 1];
        assert!(
            matches!(quiet.read(&mut buf), Ok(0) | Err(_)),
            "closed when idle"
        );
        wait_until("the connection to be counted closed", || {
            metrics.render().contains("secpipe_connections_open 0")
        });
        shutdown.trigger();
        bridge.join().expect("bridge");
        let got: Vec<Vec<u8>> = rx
            .try_iter()
            .flat_map(|b| b.lines().map(|(_, l, _)| l.to_vec()).collect::<Vec<_>>())
            .collect();
        assert_eq!(got, vec![b"<13>only line".to_vec()]);
    }

    /// A TCP connection to `addr` from the loopback address `from` (any 127.0.0.0/8 address
    /// is local on Linux), so tests can play several client hosts.
    fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> std::net::TcpStream {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let local = std::net::SocketAddr::from((from, 0));
        socket.bind(&local.into()).expect("bind the client address");
        socket.connect(&addr.into()).expect("connect");
        socket.into()
    }

    /// Whether the server closed `stream`, waiting up to the test's patience.
    fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
        use std::io::Read;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut buf = [0u8; 1];
        matches!(stream.read(&mut buf), Ok(0) | Err(_))
    }

    fn lines_of(rx: &crossbeam_channel::Receiver<LineBatch>) -> Vec<Vec<u8>> {
        rx.try_iter()
            .flat_map(|b| b.lines().map(|(_, l, _)| l.to_vec()).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn idle_connections_at_the_cap_make_room_for_a_real_client() {
        use std::io::Write;
        let limits = Limits {
            evict_quiet_after: Duration::from_millis(300),
            ..test_limits(4, Duration::from_secs(600))
        };
        let (addr, rx, metrics, shutdown, _runtime, bridge) = start_tcp(limits);
        // The attack: every slot taken by connections that never send a byte, from several
        // addresses so that the per-address cap is not what stops them.
        let mut idle: Vec<std::net::TcpStream> = (0..4u8)
            .map(|i| connect_from([127, 0, 0, 10 + i], addr))
            .collect();
        wait_until("four idle connections", || {
            metrics.render().contains("secpipe_connections_open 4")
        });
        std::thread::sleep(Duration::from_millis(400));
        let mut real = connect_from([127, 0, 0, 2], addr);
        real.write_all(b"<13>a real client gets through\n")
            .expect("write");
        let read = format!("secpipe_lines_read_total{{input=\"syslog+tcp://{addr}\"}} 1");
        wait_until("the real client's line", || {
            metrics.render().contains(&read)
        });
        assert!(
            metrics
                .render()
                .contains(r#"secpipe_dropped_total{reason="evicted"} 1"#),
            "{}",
            metrics.render()
        );
        // The longest-quiet connection is the one that went.
        assert!(closed_by_server(&mut idle[0]));
        drop((idle, real));
        shutdown.trigger();
        bridge.join().expect("bridge");
        assert_eq!(
            lines_of(&rx),
            vec![b"<13>a real client gets through".to_vec()]
        );
    }

    #[test]
    fn a_slowloris_connection_is_closed_at_the_line_deadline_and_counted() {
        use std::io::{Read, Write};
        let limits = Limits {
            line_deadline: Duration::from_millis(500),
            ..test_limits(8, Duration::from_secs(600))
        };
        let (addr, rx, metrics, shutdown, _runtime, bridge) = start_tcp(limits);
        let mut slow = std::net::TcpStream::connect(addr).expect("connect");
        slow.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        // One byte every 100 ms: never idle, never a complete line.
        let start = std::time::Instant::now();
        let mut closed = false;
        while !closed && start.elapsed() < Duration::from_secs(30) {
            if slow.write_all(b"x").is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 1];
            closed = match slow.read(&mut buf) {
                Ok(n) => n == 0,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            };
        }
        assert!(closed, "the slow connection was never closed");
        wait_until("the connection to be counted closed", || {
            metrics.render().contains("secpipe_connections_open 0")
        });
        assert!(
            metrics
                .render()
                .contains(r#"secpipe_dropped_total{reason="line_deadline"} 1"#)
        );
        shutdown.trigger();
        bridge.join().expect("bridge");
        // What it did send is kept as a (partial) line, like a last line without newline.
        let lines = lines_of(&rx);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].iter().all(|&b| b == b'x'));
    }

    #[test]
    fn connections_per_address_are_capped_and_counted() {
        let limits = Limits {
            max_per_address: 2,
            ..test_limits(100, Duration::from_secs(600))
        };
        let (addr, _rx, metrics, shutdown, _runtime, bridge) = start_tcp(limits);
        let _one = connect_from([127, 0, 0, 1], addr);
        let _two = connect_from([127, 0, 0, 1], addr);
        wait_until("two open connections", || {
            metrics.render().contains("secpipe_connections_open 2")
        });
        let mut three = connect_from([127, 0, 0, 1], addr);
        assert!(closed_by_server(&mut three));
        assert!(
            metrics
                .render()
                .contains(r#"secpipe_dropped_total{reason="address_limit"} 1"#)
        );
        let _other = connect_from([127, 0, 0, 3], addr);
        wait_until("another address still admitted", || {
            metrics.render().contains("secpipe_connections_open 3")
        });
        shutdown.trigger();
        drop((_one, _two, _other));
        bridge.join().expect("bridge");
    }

    #[test]
    fn bytes_of_cut_and_unfinished_frames_are_counted() {
        use std::io::Write;
        let (addr, rx, metrics, shutdown, _runtime, bridge) =
            start_tcp(test_limits(8, Duration::from_secs(600)));
        // Octet counted: one 2,000-byte message (max_line is 1,024 here), then a frame that
        // promises 100 bytes and delivers 3 before the sender leaves.
        let mut sender = std::net::TcpStream::connect(addr).expect("connect");
        let big = "y".repeat(2000);
        write!(sender, "2000 {big}100 abc").expect("write");
        drop(sender);
        wait_until("the connection to close", || {
            let m = metrics.render();
            m.contains("secpipe_connections_open 0")
                && m.contains(r#"secpipe_dropped_bytes_total{reason="incomplete_frame"}"#)
        });
        let m = metrics.render();
        assert!(
            m.contains(r#"secpipe_dropped_bytes_total{reason="truncated"} 976"#),
            "{m}"
        );
        assert!(
            m.contains(r#"secpipe_dropped_bytes_total{reason="incomplete_frame"} 3"#),
            "{m}"
        );
        assert!(
            m.contains(r#"secpipe_dropped_total{reason="incomplete_frame"} 1"#),
            "{m}"
        );
        // Every byte read is counted as read, the lost ones included: "2000 ", the message,
        // "100 abc".
        let total = 5 + big.len() + 7;
        assert!(
            m.contains(&format!(
                "secpipe_bytes_read_total{{input=\"syslog+tcp://{addr}\"}} {total}"
            )),
            "{m}"
        );
        shutdown.trigger();
        bridge.join().expect("bridge");
        assert_eq!(lines_of(&rx).len(), 1);
    }

    #[test]
    fn udp_lines_keep_their_own_peer_and_line_number_in_mixed_batches() {
        let (addr, rx, metrics, shutdown, _runtime, bridge) =
            start("syslog+udp://127.0.0.1:0", None);
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("a");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("b");
        for i in 1..=3 {
            a.send_to(format!("a{i}").as_bytes(), addr).expect("send");
            b.send_to(format!("b{i}").as_bytes(), addr).expect("send");
        }
        let url = format!("secpipe_lines_read_total{{input=\"syslog+udp://{addr}\"}} 6");
        wait_until("six datagrams read", || metrics.render().contains(&url));
        shutdown.trigger();
        bridge.join().expect("bridge");
        let batches: Vec<LineBatch> = rx.try_iter().collect();
        let mut got = Vec::new();
        for batch in &batches {
            let mut lines = batch.lines();
            for (source, _, run) in batch.runs() {
                for (number, text, _) in lines.by_ref().take(run.len()) {
                    got.push((
                        source.to_string(),
                        number,
                        String::from_utf8_lossy(text).into_owned(),
                    ));
                }
            }
        }
        let source_of =
            |s: &std::net::UdpSocket| format!("syslog+udp://{}", s.local_addr().expect("addr"));
        let mut expected = Vec::new();
        for i in 1..=3u64 {
            expected.push((source_of(&a), i, format!("a{i}")));
            expected.push((source_of(&b), i, format!("b{i}")));
        }
        // Arrival order on loopback is send order. (Whether the six share one batch depends on
        // the 50 ms flush; either way each line keeps its own peer and number.)
        assert_eq!(got, expected);
    }

    #[test]
    fn tls_without_a_certificate_is_a_usage_error() {
        let spec = ListenSpec::parse("syslog+tls://127.0.0.1:0").expect("spec");
        let err = Listeners::bind(&[spec], None).err().expect("must fail");
        assert!(err.contains("--tls-cert"), "{err}");
    }
}
