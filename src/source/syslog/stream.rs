//! Syslog over TCP (RFC 6587) and TLS (RFC 5425): one task per connection.
//!
//! RFC 6587 allows two framings and gives no way to announce which one a sender uses, so it is
//! decided per connection from its first bytes: an octet-counted frame starts with its length,
//! digits and a space; a newline-framed syslog message starts with `<` (its PRI) or, from
//! sloppier senders, a date or a word. TLS (RFC 5425) is always octet counted.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::admission::Ticket;
use super::{Context, FLUSH_AFTER, HANDSHAKE_TIMEOUT, PeerBatch, Transport};
use crate::frame::LineFramer;
use crate::frame::octet::OctetDecoder;

/// Per-connection read buffer: big enough for bursts, small enough for a thousand connections.
const CONNECTION_BUFFER: usize = 64 * 1024;
/// A connection's first read buffer; it grows to [`CONNECTION_BUFFER`] when a read fills it.
const FIRST_READ_BUFFER: usize = 4 * 1024;

/// After a failed accept (EMFILE when descriptors run out, and the like), wait this long: the
/// failure repeats at once, and retrying at once spins a core.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// Accept connections until shutdown, then wait for the open ones to finish their batches.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    url: Arc<str>,
    transport: Transport,
    tls: Option<Arc<tokio_rustls::TlsAcceptor>>,
    ctx: Context,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.triggered() => break,
            accepted = listener.accept() => accepted,
            // Reap finished connections as we go so the set does not grow with every one ever
            // accepted.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((socket, peer)) = accepted else {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        // Admission is decided before any byte is read, so a flood of idle connections cannot
        // exhaust descriptors or memory; dropping a refused socket closes it at once.
        let ticket = match ctx.admission.admit(peer.ip()) {
            Ok((ticket, evicted)) => {
                if evicted {
                    ctx.metrics.dropped("evicted", 1);
                }
                ticket
            }
            Err(refused) => {
                ctx.metrics.dropped(refused.reason(), 1);
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let source: Arc<str> = format!("{}://{peer}", transport.scheme()).into();
        let ctx = ctx.clone();
        let url = url.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            ctx.metrics.connection_opened();
            match tls {
                None => read_connection(socket, source, &url, true, &ticket, &ctx).await,
                Some(acceptor) => {
                    // An unfinished handshake is quiet: it can be evicted like an idle socket.
                    let handshake = tokio::select! {
                        _ = ticket.evicted() => None,
                        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)) => {
                            done.ok().and_then(Result::ok)
                        }
                    };
                    match handshake {
                        Some(stream) => {
                            read_connection(stream, source, &url, false, &ticket, &ctx).await
                        }
                        None => ctx.metrics.dropped("tls_handshake", 1),
                    }
                }
            }
            ctx.metrics.connection_closed();
            drop(ticket);
        });
    }
    while connections.join_next().await.is_some() {}
}

/// How a connection is framed, once its first byte has been seen.
enum Framing {
    Undecided,
    Lines(LineFramer),
    Octets(OctetDecoder),
}

impl Framing {
    /// A message has begun and is not complete.
    fn in_message(&self) -> bool {
        match self {
            Framing::Undecided => false,
            Framing::Lines(framer) => framer.in_line(),
            Framing::Octets(decoder) => decoder.in_frame(),
        }
    }
}

/// Read one connection until EOF, idle timeout, line deadline, eviction, a framing error or
/// shutdown, handing its messages on in batches. `detect`: decide the framing from the first
/// byte (plain TCP); otherwise octet counting (TLS).
async fn read_connection<S: AsyncRead + Unpin>(
    mut stream: S,
    source: Arc<str>,
    url: &str,
    detect: bool,
    ticket: &Ticket,
    ctx: &Context,
) {
    let limits = ctx.limits;
    let mut framing = if detect {
        Framing::Undecided
    } else {
        Framing::Octets(OctetDecoder::new(ctx.max_line))
    };
    let mut peer = PeerBatch::new(source);
    // Most connections send a few lines: start small, grow to the full buffer only for a
    // sender that fills it (a thousand idle or one-line connections must not pin 64 MiB).
    let mut buf = vec![0u8; FIRST_READ_BUFFER];
    // When the unfinished message began: it must be complete within the line deadline.
    let mut message_started: Option<Instant> = None;
    let mut last_read = Instant::now();
    let mut framing_failed = false;
    loop {
        // Wake for whichever comes first: the pending batch is due, the unfinished message's
        // deadline, the idle limit.
        let mut wake = last_read + limits.idle_timeout;
        if let Some(t) = peer.started {
            wake = wake.min(t + FLUSH_AFTER);
        }
        if let Some(t) = message_started {
            wake = wake.min(t + limits.line_deadline);
        }
        let read = tokio::select! {
            _ = ctx.shutdown.triggered() => break,
            _ = ticket.evicted() => break,
            read = tokio::time::timeout_at(wake, stream.read(&mut buf)) => read,
        };
        let n = match read {
            Err(_elapsed) => {
                let now = Instant::now();
                if message_started.is_some_and(|t| now >= t + limits.line_deadline) {
                    // Slowloris: a message dribbled out too slowly to ever matter.
                    ctx.metrics.dropped("line_deadline", 1);
                    break;
                }
                if now >= last_read + limits.idle_timeout {
                    // Idle: close. A sender that wants to go on reconnects.
                    break;
                }
                if !flush(&mut peer, url, ctx).await {
                    return;
                }
                continue;
            }
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        last_read = Instant::now();
        ctx.bytes_read(url, n as u64);
        if n == buf.len() && buf.len() < CONNECTION_BUFFER {
            buf.resize((buf.len() * 4).min(CONNECTION_BUFFER), 0);
        }
        let data = &buf[..n];
        if let Framing::Undecided = framing {
            framing = if looks_octet_counted(data) {
                Framing::Octets(OctetDecoder::new(ctx.max_line))
            } else {
                Framing::Lines(LineFramer::new(ctx.max_line))
            };
        }
        let mut full = Vec::new();
        let mut messages = 0usize;
        let mut on_message = |message: &[u8], truncated: bool| {
            messages += 1;
            peer.push(message, truncated);
            if peer.batch.is_full()
                && let Some(batch) = peer.take()
            {
                full.push(batch);
            }
        };
        let framing_ok = match &mut framing {
            Framing::Lines(framer) => {
                framer.push(data, on_message);
                true
            }
            Framing::Octets(decoder) => decoder
                .push(data, |m, t| on_message(super::trim_trailer(m), t))
                .is_ok(),
            Framing::Undecided => true,
        };
        if messages > 0 {
            ticket.progress();
        }
        // A message still open after this read began now if the last one just completed.
        message_started = match (framing.in_message(), message_started) {
            (false, _) => None,
            (true, Some(t)) if messages == 0 => Some(t),
            (true, _) => Some(last_read),
        };
        for batch in full {
            if !send(batch, url, ctx).await {
                return;
            }
        }
        if !framing_ok {
            // A corrupt octet-counted stream has no recoverable frame boundary: close it, keep
            // what was framed before the error, count what was not.
            framing_failed = true;
            ctx.metrics.dropped("framing_error", 1);
            if let Framing::Octets(decoder) = &framing {
                ctx.dropped_bytes(
                    "framing_error",
                    decoder.rejected_bytes + decoder.pending_bytes(),
                );
            }
            break;
        }
        if peer.due() && !flush(&mut peer, url, ctx).await {
            return;
        }
    }
    // End of the connection: a last newline-framed line without its newline is still a line;
    // a half-received octet frame is lost, and counted.
    match &mut framing {
        Framing::Lines(framer) => {
            framer.finish(|m, t| peer.push(m, t));
            ctx.metrics.truncated(framer.truncated_lines);
            ctx.dropped_bytes("truncated", framer.dropped_bytes);
        }
        Framing::Octets(decoder) => {
            // After a framing error the unread rest was counted there.
            if decoder.in_frame() && !framing_failed {
                ctx.metrics.dropped("incomplete_frame", 1);
                ctx.dropped_bytes("incomplete_frame", decoder.pending_bytes());
            }
            ctx.metrics.truncated(decoder.truncated_messages);
            ctx.dropped_bytes("truncated", decoder.dropped_bytes);
        }
        Framing::Undecided => {}
    }
    // The last batch says the connection is over, so its per-source parse state is freed (an
    // empty one if everything was handed on already): a listener must not keep something for
    // every connection it ever had.
    let mut last = peer
        .take()
        .unwrap_or_else(|| crate::frame::LineBatch::new(peer.source.clone(), 1, 0));
    last.ends_source = true;
    send(last, url, ctx).await;
}

/// Whether a connection's first bytes are an octet-counting length prefix: 1 to 9 digits and a
/// space (or the read ended inside the digits). Checking the space, not only the first digit,
/// keeps newline-framed senders whose lines start with a date (`2026-11-23T…`, journalctl
/// short-iso) from being taken for octet counting and cut off at the first `-`.
fn looks_octet_counted(data: &[u8]) -> bool {
    let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=9).contains(&digits) && data.get(digits).is_none_or(|&b| b == b' ')
}

async fn flush(peer: &mut PeerBatch, url: &str, ctx: &Context) -> bool {
    match peer.take() {
        Some(batch) => send(batch, url, ctx).await,
        None => true,
    }
}

/// Hand a batch on, waiting while the pipeline is behind: that wait is TCP backpressure.
/// False when the pipeline is gone. (Bytes are counted as they are read, so a connection that
/// never completes a batch still shows in `bytes_read`.)
async fn send(batch: crate::frame::LineBatch, url: &str, ctx: &Context) -> bool {
    ctx.metrics.lines_read(url, batch.len() as u64);
    ctx.bridge.send(batch).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::looks_octet_counted;

    #[test]
    fn framing_is_detected_from_the_first_bytes() {
        assert!(looks_octet_counted(
            b"57 <13>1 2026-11-23T10:00:00Z host app - - - hi"
        ));
        assert!(looks_octet_counted(b"12"));
        assert!(!looks_octet_counted(b"<13>Nov 23 10:00:00 host app: hi\n"));
        assert!(!looks_octet_counted(
            b"2026-11-23T10:00:00+00:00 host sshd[1]: hi\n"
        ));
        assert!(!looks_octet_counted(b"1234567890 too many digits"));
    }
}
