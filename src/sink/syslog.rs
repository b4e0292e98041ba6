//! `--alerts syslog+udp://HOST:PORT`, `syslog+tcp://HOST:PORT` and `syslog+tls://HOST:PORT`:
//! every alert as one RFC 5424 message ([`super::encode::rfc5424`]) to a syslog server or SIEM;
//! over TCP framed by octet counting (RFC 6587 §3.4.1), over TLS the same (RFC 5425 §4.3),
//! over UDP one datagram per alert (RFC 5426).
//!
//! TLS checks the server's certificate against the system's CAs or the `ca_file` option, for
//! the URL's host or the `server_name` option ([`super::tls`]). A server it cannot trust is
//! never sent an alert: the refusal is reported on stderr (once per distinct reason), the
//! connection is tried again like a TCP one, and the alerts waiting meanwhile are counted as
//! not delivered at the stop.
//!
//! A syslog server can be slow, restarting or gone: the sink runs on its own thread, from a queue
//! that drops and counts when full or from the spool in `--state` ([`super::spool`]), so it never
//! stalls detection or the other outputs. Over TCP a broken connection is opened again (waiting a
//! little longer each time, at most [`MAX_BACKOFF`]) and the alert sent again; an alert given up on
//! at the stop is counted as not delivered. UDP has no delivery to wait for: what the kernel
//! refuses is counted, nothing is retried.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Remote;
use rustls::pki_types::ServerName;
use serde::Deserialize;

use super::encode::Encoding;
use super::queue::Transport;
use crate::metrics::SinkMetrics;

/// Longest wait between two attempts to reach the server again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connect attempt gives up after this long (then waits and tries again).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which transport the server takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogTransport {
    Udp,
    Tcp,
    /// TCP with TLS (RFC 5425).
    Tls,
}

/// The optional settings of a syslog sink (`syslog = { … }` in `secpipe.toml`, or the query of
/// a `syslog+tls://` URL: `?ca_file=/etc/secpipe/siem-ca.pem`). TLS only.
///
/// ```
/// use secpipe::sink::syslog::SyslogOptions;
/// let o: SyslogOptions = toml::from_str(r#"ca_file = "/etc/secpipe/siem-ca.pem""#).unwrap();
/// assert_eq!(o.ca_file.as_deref(), Some("/etc/secpipe/siem-ca.pem".as_ref()));
/// let typo = toml::from_str::<SyslogOptions>(r#"servername = "siem""#).unwrap_err().to_string();
/// assert!(typo.contains("unknown field `servername`") && typo.contains("`server_name`"), "{typo}");
/// ```
#[derive(Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SyslogOptions {
    /// PEM file of the CAs to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not the URL's host (a server
    /// reached by IP address).
    pub server_name: Option<String>,
}

/// One syslog destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConfig {
    pub transport: SyslogTransport,
    /// `HOST:PORT`, resolved when the sink opens.
    pub address: String,
    pub options: SyslogOptions,
}

impl SyslogConfig {
    /// `syslog+udp://HOST:PORT`, `syslog+tcp://HOST:PORT` or
    /// `syslog+tls://HOST:PORT[?ca_file=…&server_name=…]`; `None` when `spec` is not a syslog
    /// address at all.
    ///
    /// ```
    /// use secpipe::sink::syslog::{SyslogConfig, SyslogTransport};
    /// let c = SyslogConfig::parse("syslog+tcp://siem.example:6514").unwrap().unwrap();
    /// assert_eq!((c.transport, c.address.as_str()), (SyslogTransport::Tcp, "siem.example:6514"));
    /// assert!(SyslogConfig::parse("syslog+udp://no-port").unwrap().is_err());
    /// assert!(SyslogConfig::parse("alerts.jsonl").is_none());
    /// let tls = SyslogConfig::parse("syslog+tls://10.0.0.5:6514?server_name=siem.example");
    /// let tls = tls.unwrap().unwrap();
    /// assert_eq!(tls.options.server_name.as_deref(), Some("siem.example"));
    /// let typo = SyslogConfig::parse("syslog+tls://siem.example:6514?ca=/x.pem").unwrap();
    /// assert!(typo.unwrap_err().contains("unknown field `ca`"));
    /// ```
    pub fn parse(spec: &str) -> Option<Result<SyslogConfig, String>> {
        let (transport, rest) = if let Some(rest) = spec.strip_prefix("syslog+udp://") {
            (SyslogTransport::Udp, rest)
        } else if let Some(rest) = spec.strip_prefix("syslog+tcp://") {
            (SyslogTransport::Tcp, rest)
        } else if let Some(rest) = spec.strip_prefix("syslog+tls://") {
            (SyslogTransport::Tls, rest)
        } else {
            return None;
        };
        Some(
            super::spec_options::split::<SyslogOptions>(rest)
                .map_err(|e| format!("{spec}: {e}"))
                .and_then(|(address, options)| {
                    SyslogConfig::with_options(transport, address, options)
                }),
        )
    }

    /// A server at `address` (`HOST:PORT`) with its settings checked: the TLS settings are
    /// refused for UDP and TCP, where they would be silently ignored.
    ///
    /// ```
    /// use secpipe::sink::syslog::{SyslogConfig, SyslogOptions, SyslogTransport};
    /// let options = SyslogOptions { server_name: Some("siem.example".into()), ..Default::default() };
    /// let bad = SyslogConfig::with_options(SyslogTransport::Tcp, "siem:514", options);
    /// assert!(bad.unwrap_err().contains("syslog+tls only"));
    /// ```
    pub fn with_options(
        transport: SyslogTransport,
        address: &str,
        options: SyslogOptions,
    ) -> Result<SyslogConfig, String> {
        let address = address.trim_end_matches('/');
        let has_port = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        let config = SyslogConfig {
            transport,
            address: address.to_string(),
            options,
        };
        if !has_port {
            return Err(format!("{}: give the server as HOST:PORT", config.name()));
        }
        if transport != SyslogTransport::Tls && config.options != SyslogOptions::default() {
            return Err(format!(
                "{}: ca_file and server_name are for syslog+tls only",
                config.name()
            ));
        }
        if transport == SyslogTransport::Tls {
            super::tls::server_name(&config.address, config.options.server_name.as_deref())
                .map_err(|e| format!("{}: {e}", config.name()))?;
        }
        Ok(config)
    }

    /// The sink's name in messages.
    pub fn name(&self) -> String {
        let scheme = match self.transport {
            SyslogTransport::Udp => "syslog+udp",
            SyslogTransport::Tcp => "syslog+tcp",
            SyslogTransport::Tls => "syslog+tls",
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
                tls: None,
                stream: None,
                backoff: Duration::ZERO,
                reported: None,
                name: name.clone(),
                metrics: SinkMetrics::default(),
            }),
            SyslogTransport::Tls => {
                let config = super::tls::client_config(self.options.ca_file.as_deref())
                    .map_err(|e| format!("--alerts {name}: {e}"))?;
                let server_name =
                    super::tls::server_name(&self.address, self.options.server_name.as_deref())
                        .map_err(|e| format!("--alerts {name}: {e}"))?;
                Box::new(Tcp {
                    server,
                    tls: Some((config, server_name)),
                    stream: None,
                    backoff: Duration::ZERO,
                    reported: None,
                    name: name.clone(),
                    metrics: SinkMetrics::default(),
                })
            }
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

/// Octet-counted messages on one connection (TLS or not), opened again when it breaks.
struct Tcp {
    server: SocketAddr,
    /// For `syslog+tls`: whom to trust, and the name the certificate must carry.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    stream: Option<Box<dyn Write + Send>>,
    /// The wait before the next attempt after a failure (doubles up to [`MAX_BACKOFF`]).
    backoff: Duration,
    /// The last TLS failure reported on stderr: a server refused for one reason is reported
    /// once, not at every attempt.
    reported: Option<String>,
    name: String,
    /// Where reconnects are counted as retries.
    metrics: SinkMetrics,
}

impl Tcp {
    /// Connect, and over TLS finish the handshake: a certificate that is not trusted or not
    /// for this server fails here, before anything is sent.
    fn connect(&self) -> io::Result<Box<dyn Write + Send>> {
        let mut stream = TcpStream::connect_timeout(&self.server, CONNECT_TIMEOUT)?;
        let _ = stream.set_nodelay(true);
        let Some((config, server_name)) = &self.tls else {
            return Ok(Box::new(stream));
        };
        let mut tls = rustls::ClientConnection::new(config.clone(), server_name.clone())
            .map_err(io::Error::other)?;
        // A server that accepts and never answers must not hold the handshake for ever.
        stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        while tls.is_handshaking() {
            tls.complete_io(&mut stream)?;
        }
        Ok(Box::new(rustls::StreamOwned::new(tls, stream)))
    }

    fn try_send(&mut self, frame: &[u8]) -> io::Result<()> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = self.connect()?;
                self.stream.insert(stream)
            }
        };
        stream.write_all(frame)?;
        // TLS buffers a record until flushed.
        stream.flush()
    }

    /// Say why a TLS server is refused, once per reason (a plain TCP server that is down is
    /// waited for quietly, as before).
    fn report(&mut self, error: &io::Error) {
        if self.tls.is_none() {
            return;
        }
        let reason = error.to_string();
        if self.reported.as_deref() != Some(reason.as_str()) {
            crate::report::warn(&format!(
                "alerts: {}: {reason}; alerts wait (and are counted if not delivered) while it is tried again",
                self.name
            ));
            self.reported = Some(reason);
        }
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
                    self.reported = None;
                    return Ok(());
                }
                Err(e) => {
                    self.report(&e);
                    self.metrics.retried();
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

    fn observe(&mut self, metrics: SinkMetrics) {
        self.metrics = metrics;
    }
}
