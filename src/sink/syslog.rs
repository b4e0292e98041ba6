//! `--alerts syslog+udp://HOST:PORT` and `syslog+tcp://HOST:PORT`: every alert as one RFC 5424
//! message ([`super::encode::rfc5424`]) to a syslog server or SIEM; over TCP framed by octet
//! counting (RFC 6587 §3.4.1), over UDP one datagram per alert (RFC 5426).
//!
//! A syslog server can be slow, restarting or gone: the sink runs on its own thread behind a
//! queue that drops and counts when full ([`WhenFull::Drop`]), so it never stalls detection or
//! the other outputs. Over TCP a broken connection is opened again (waiting a little longer
//! each time, at most [`MAX_BACKOFF`]) and the alert sent again; an alert given up on at the
//! stop is counted as not delivered. UDP has no delivery to wait for: what the kernel refuses
//! is counted, nothing is retried.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use super::Remote;
use super::encode::Encoding;
use super::queue::Transport;

/// Longest wait between two attempts to reach the server again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connect attempt gives up after this long (then waits and tries again).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which transport the server takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogTransport {
    Udp,
    Tcp,
}

/// One syslog destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    pub transport: SyslogTransport,
    /// `HOST:PORT`, resolved when the sink opens.
    pub address: String,
}

impl SyslogConfig {
    /// `syslog+udp://HOST:PORT` or `syslog+tcp://HOST:PORT`; `None` when `spec` is not a syslog
    /// address at all.
    ///
    /// ```
    /// use secpipe::sink::syslog::{SyslogConfig, SyslogTransport};
    /// let c = SyslogConfig::parse("syslog+tcp://siem.example:6514").unwrap().unwrap();
    /// assert_eq!((c.transport, c.address.as_str()), (SyslogTransport::Tcp, "siem.example:6514"));
    /// assert!(SyslogConfig::parse("syslog+udp://no-port").unwrap().is_err());
    /// assert!(SyslogConfig::parse("alerts.jsonl").is_none());
    /// ```
    pub fn parse(spec: &str) -> Option<Result<SyslogConfig, String>> {
        let (transport, rest) = if let Some(rest) = spec.strip_prefix("syslog+udp://") {
            (SyslogTransport::Udp, rest)
        } else if let Some(rest) = spec.strip_prefix("syslog+tcp://") {
            (SyslogTransport::Tcp, rest)
        } else {
            return None;
        };
        let address = rest.trim_end_matches('/');
        let has_port = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        Some(if has_port {
            Ok(SyslogConfig {
                transport,
                address: address.to_string(),
            })
        } else {
            Err(format!("{spec}: give the server as HOST:PORT"))
        })
    }

    /// The sink's name in messages.
    pub fn name(&self) -> String {
        let scheme = match self.transport {
            SyslogTransport::Udp => "syslog+udp",
            SyslogTransport::Tcp => "syslog+tcp",
        };
        format!("{scheme}://{}", self.address)
    }

    /// Resolve the address and make the transport. The server need not be up yet: TCP
    /// connects on the first alert, and again whenever the connection breaks.
    pub fn remote(&self) -> Result<Remote, String> {
        let name = self.name();
        let server = self
            .address
            .to_socket_addrs()
            .map_err(|e| format!("--alerts {name}: {e}"))?
            .next()
            .ok_or_else(|| format!("--alerts {name}: no address"))?;
        let transport: Box<dyn Transport> = match self.transport {
            SyslogTransport::Udp => {
                Box::new(Udp::connect(server).map_err(|e| format!("--alerts {name}: {e}"))?)
            }
            SyslogTransport::Tcp => Box::new(Tcp {
                server,
                stream: None,
                backoff: Duration::ZERO,
            }),
        };
        Ok(Remote {
            name,
            transport,
            encoding: Encoding::Syslog,
        })
    }
}

/// One datagram per alert, to a connected socket.
struct Udp(UdpSocket);

impl Udp {
    fn connect(server: SocketAddr) -> io::Result<Udp> {
        let local: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(server)?;
        Ok(Udp(socket))
    }
}

impl Transport for Udp {
    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let message = line.strip_suffix(b"\n").unwrap_or(line);
        // A refusal (no server listening: an ICMP error from an earlier datagram) is this
        // alert's loss, counted as undelivered; the next alert is tried again.
        self.0.send(message).map(|_| ())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn stops_on_error(&self) -> bool {
        false
    }
}

/// Octet-counted messages on one connection, opened again when it breaks.
struct Tcp {
    server: SocketAddr,
    stream: Option<TcpStream>,
    /// The wait before the next attempt after a failure (doubles up to [`MAX_BACKOFF`]).
    backoff: Duration,
}

impl Tcp {
    fn try_send(&mut self, frame: &[u8]) -> io::Result<()> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect_timeout(&self.server, CONNECT_TIMEOUT)?;
                let _ = stream.set_nodelay(true);
                self.stream.insert(stream)
            }
        };
        stream.write_all(frame)
    }
}

impl Transport for Tcp {
    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let message = line.strip_suffix(b"\n").unwrap_or(line);
        let mut frame = format!("{} ", message.len()).into_bytes();
        frame.extend_from_slice(message);
        // Until it is sent: a server that is down or restarting is waited for here, on the
        // sink's own thread, while the queue in front of it drops and counts.
        loop {
            match self.try_send(&frame) {
                Ok(()) => {
                    self.backoff = Duration::ZERO;
                    return Ok(());
                }
                Err(_) => {
                    self.stream = None;
                    std::thread::sleep(self.backoff);
                    self.backoff =
                        (self.backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                }
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
