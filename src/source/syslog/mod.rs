//! Syslog listeners: `--listen syslog+udp://ADDR`, `syslog+tcp://ADDR`, `syslog+tls://ADDR`.
//!
//! All listeners run as tasks on one small tokio runtime. Each task frames what it receives into
//! [`LineBatch`]es, one batch stream per peer (the `source` of an event is
//! `syslog+udp://PEER_IP:PORT` and so on), and hands them to a *bridge* thread that does the
//! blocking send into the pipeline's channel. The bridge is why an async task never blocks a
//! runtime worker on a full channel: the tasks await a small async channel instead, and the
//! pipeline's backpressure reaches a TCP sender as a full receive window.
//!
//! UDP has no backpressure: when the pipeline is behind, a datagram batch is dropped and
//! counted (`channel_full`) rather than queued without bound. The kernel receive buffer is
//! enlarged ([`UDP_RECEIVE_BUFFER`]) so that short bursts are absorbed before that happens.
//!
//! Limits, each counted when hit, never a crash: message size (`--max-line`, longer messages
//! are cut), [`MAX_CONNECTIONS`] open TCP/TLS connections (more are closed at once),
//! [`IDLE_TIMEOUT`] per connection, [`HANDSHAKE_TIMEOUT`] for TLS.
//!
//! ```
//! use secpipe::source::syslog::{ListenSpec, Transport};
//! let spec = ListenSpec::parse("syslog+tcp://127.0.0.1:6514").unwrap();
//! assert_eq!(spec.transport, Transport::Tcp);
//! assert_eq!(spec.addr.port(), 6514);
//! assert!(ListenSpec::parse("http://127.0.0.1:80").is_err());
//! ```

mod stream;
pub mod tls;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::sync::mpsc;

use crate::frame::LineBatch;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Open TCP/TLS connections allowed at once, over all listeners; more are refused and counted.
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A TLS client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A partial batch is handed on after this long, so a live alert is not held back waiting for
/// more messages to fill it.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);
/// SO_RCVBUF asked for on UDP sockets (the kernel may cap it at `net.core.rmem_max`).
pub const UDP_RECEIVE_BUFFER: usize = 8 * 1024 * 1024;
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

/// Listeners bound and ready to be started with [`Listeners::spawn`].
pub struct Listeners {
    bound: Vec<(ListenSpec, Bound)>,
    max_connections: usize,
    idle_timeout: Duration,
}

/// What every listener task shares.
#[derive(Clone)]
struct Context {
    bridge: mpsc::Sender<LineBatch>,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
    max_line: usize,
    connections: Arc<tokio::sync::Semaphore>,
    idle_timeout: Duration,
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
        Ok(Listeners {
            bound,
            max_connections: MAX_CONNECTIONS,
            idle_timeout: IDLE_TIMEOUT,
        })
    }

    /// Change the connection cap (default [`MAX_CONNECTIONS`]) and the idle timeout (default
    /// [`IDLE_TIMEOUT`]).
    ///
    /// ```
    /// use secpipe::source::syslog::{ListenSpec, Listeners};
    /// let spec = ListenSpec::parse("syslog+tcp://127.0.0.1:0").unwrap();
    /// let listeners = Listeners::bind(&[spec], None)
    ///     .unwrap()
    ///     .with_limits(16, std::time::Duration::from_secs(60));
    /// assert_ne!(listeners.specs()[0].addr.port(), 0);
    /// ```
    pub fn with_limits(mut self, max_connections: usize, idle_timeout: Duration) -> Listeners {
        self.max_connections = max_connections;
        self.idle_timeout = idle_timeout;
        self
    }

    /// The bound listeners (with the ports the kernel picked for port 0).
    pub fn specs(&self) -> Vec<ListenSpec> {
        self.bound.iter().map(|(s, _)| s.clone()).collect()
    }

    /// Start the listener tasks on `runtime` and the bridge thread that feeds `tx`. The
    /// returned thread ends once every listener has stopped (on `shutdown`) and everything it
    /// received is in `tx`.
    pub fn spawn(
        self,
        runtime: &tokio::runtime::Handle,
        tx: Sender<LineBatch>,
        shutdown: Shutdown,
        metrics: Arc<Metrics>,
        max_line: usize,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let (bridge, mut from_tasks) = mpsc::channel::<LineBatch>(BRIDGE_BATCHES);
        let ctx = Context {
            bridge,
            shutdown,
            metrics,
            max_line,
            connections: Arc::new(tokio::sync::Semaphore::new(self.max_connections)),
            idle_timeout: self.idle_timeout,
        };
        // Converting std sockets to tokio ones registers them with this runtime's reactor.
        let _guard = runtime.enter();
        for (spec, socket) in self.bound {
            let ctx = ctx.clone();
            let url: Arc<str> = spec.url().into();
            match socket {
                Bound::Udp(s) => {
                    let s = tokio::net::UdpSocket::from_std(s)?;
                    runtime.spawn(udp::serve(s, url, ctx));
                }
                Bound::Tcp(l) => {
                    let l = tokio::net::TcpListener::from_std(l)?;
                    runtime.spawn(stream::serve(l, url, Transport::Tcp, None, ctx));
                }
                Bound::Tls(l, acceptor) => {
                    let l = tokio::net::TcpListener::from_std(l)?;
                    runtime.spawn(stream::serve(l, url, Transport::Tls, Some(acceptor), ctx));
                }
            }
        }
        // The tasks hold the only bridge senders now: when the last one ends, `blocking_recv`
        // returns None and the bridge drops `tx`, which is how the pipeline learns that the
        // listeners are done.
        drop(ctx);
        std::thread::Builder::new()
            .name("syslog-bridge".into())
            .spawn(move || {
                while let Some(batch) = from_tasks.blocking_recv() {
                    if tx.send(batch).is_err() {
                        break;
                    }
                }
            })
    }
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
            self.batch.received = crate::pipeline::now_micros();
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

    /// Open a listener with tight limits on a runtime of its own; returns what the pipeline
    /// would get, the metrics, the shutdown switch and the bridge thread.
    fn start_tcp(
        max_connections: usize,
        idle: Duration,
    ) -> (
        std::net::SocketAddr,
        crossbeam_channel::Receiver<LineBatch>,
        Arc<Metrics>,
        Shutdown,
        tokio::runtime::Runtime,
        std::thread::JoinHandle<()>,
    ) {
        let runtime = crate::shutdown::io_runtime().expect("runtime");
        let spec = ListenSpec::parse("syslog+tcp://127.0.0.1:0").expect("spec");
        let listeners = Listeners::bind(&[spec], None)
            .expect("bind")
            .with_limits(max_connections, idle);
        let addr = listeners.specs()[0].addr;
        let (tx, rx) = crossbeam_channel::bounded(64);
        let metrics = Arc::new(Metrics::new());
        let shutdown = Shutdown::new();
        let bridge = listeners
            .spawn(
                runtime.handle(),
                tx,
                shutdown.clone(),
                metrics.clone(),
                1024,
            )
            .expect("spawn");
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
        let (addr, rx, metrics, shutdown, _runtime, bridge) = start_tcp(2, Duration::from_secs(60));
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
            start_tcp(8, Duration::from_millis(200));
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

    #[test]
    fn tls_without_a_certificate_is_a_usage_error() {
        let spec = ListenSpec::parse("syslog+tls://127.0.0.1:0").expect("spec");
        let err = Listeners::bind(&[spec], None).err().expect("must fail");
        assert!(err.contains("--tls-cert"), "{err}");
    }
}
