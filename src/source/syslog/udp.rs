//! Syslog over UDP (RFC 5426): one message per datagram, no backpressure possible.
//!
//! Loss policy. A syslog collector hears from many hosts at once, so nothing here may lose
//! datagrams because there are many senders (issue 10.5: a batch per peer per tick into a
//! small queue, dropped when full, lost half the traffic of 200 senders). Instead:
//!
//! - Batches are handed on with an awaited send: when the pipeline is behind, this task waits
//!   and datagrams wait in the kernel's socket receive buffer, which is made large
//!   ([`super::UDP_RECEIVE_BUFFER`], forced past `net.core.rmem_max` when secpipe may).
//! - Only when that buffer is full does the kernel drop, and it counts those drops on the
//!   socket. They are read back every tick (`SO_MEMINFO`) and counted as
//!   `dropped{reason="udp_receive_buffer"}`, so every datagram is either read or counted.
//! - One batch in progress mixes all peers (each line keeps its peer as its source, see
//!   [`LineBatch::push_from`]), so batches stay large however many hosts send; a batch per
//!   peer per tick made the number of batches grow with the number of senders (1,000 senders
//!   at 50,000 datagrams/s: up to 20,000 batches of two or three lines a second).
//! - Memory stays bounded whatever the senders do: one batch in progress (at most
//!   [`crate::frame::BATCH_BYTES`]) and the line numbers of at most [`MAX_PEERS`] peers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use crate::frame::LineBatch;

use super::{Context, FLUSH_AFTER, UDP_RECEIVE_BUFFER, trim_trailer};

/// Peers whose line numbers are remembered; past this many (a scan, or spoofed sources) the
/// quieter half is forgotten, so the table's memory stays bounded. Line numbers of the peers
/// forgotten that way start again at 1.
const MAX_PEERS: usize = 16_384;

/// A peer silent this long is forgotten (its line numbers start again at 1).
const FORGET_PEER_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Bind with a large receive buffer: a burst, or a moment when the pipeline is behind, then
/// waits in the kernel instead of being lost.
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    enlarge_receive_buffer(&socket);
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Ask for [`UDP_RECEIVE_BUFFER`]: first with `SO_RCVBUFFORCE`, which only a process with
/// CAP_NET_ADMIN may use and which ignores `net.core.rmem_max` (often 208 KiB, a fraction of a
/// second of traffic), then with plain `SO_RCVBUF`, which the kernel caps at that maximum.
/// Best effort: a smaller buffer still works, it only drops (and counts) sooner.
fn enlarge_receive_buffer(socket: &socket2::Socket) {
    let size = libc::c_int::try_from(UDP_RECEIVE_BUFFER).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from a live local.
    let forced = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    }
}

/// The kernel's count of datagrams it dropped on this socket (a full receive buffer, mostly),
/// from `SO_MEMINFO`. A 32-bit counter that wraps; `None` where the kernel does not report it.
fn kernel_drops(socket: &impl AsRawFd) -> Option<u32> {
    // SK_MEMINFO_DROPS is the ninth value; newer kernels may add more after it.
    const SK_MEMINFO_DROPS: usize = 8;
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info` and stores the length it wrote.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let reported = len as usize / std::mem::size_of::<u32>();
    (rc == 0 && reported > SK_MEMINFO_DROPS).then_some(info[SK_MEMINFO_DROPS])
}

/// Counts the kernel's drops on one socket into the metrics, as they grow.
struct KernelDrops {
    last: Option<u32>,
}

impl KernelDrops {
    fn new(socket: &impl AsRawFd) -> KernelDrops {
        KernelDrops {
            last: kernel_drops(socket),
        }
    }

    fn count(&mut self, socket: &impl AsRawFd, ctx: &Context) {
        let (Some(last), Some(now)) = (self.last, kernel_drops(socket)) else {
            return;
        };
        let new = now.wrapping_sub(last);
        if new > 0 {
            ctx.metrics.dropped("udp_receive_buffer", u64::from(new));
        }
        self.last = Some(now);
    }
}

/// Where each peer's line numbering stands.
struct Peer {
    source: Arc<str>,
    next_line: u64,
    last_active: tokio::time::Instant,
}

/// The batch in progress, mixing every peer's datagrams in arrival order, and the peers' line
/// numbers. One batch for all peers keeps batches large however many hosts send, so the
/// per-batch cost of the pipeline stays small per line.
struct Pending {
    batch: LineBatch,
    /// When the batch got its first line.
    started: Option<tokio::time::Instant>,
    peers: HashMap<SocketAddr, Peer>,
    /// Bytes received since the last batch was handed on (for `bytes_read`).
    received: u64,
}

impl Pending {
    fn new(url: &Arc<str>) -> Pending {
        Pending {
            batch: LineBatch::new(url.clone(), 1, 0),
            started: None,
            peers: HashMap::new(),
            received: 0,
        }
    }

    fn push(&mut self, peer: SocketAddr, message: &[u8], truncated: bool) {
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&peer) {
            // A scan or spoofed sources: forget the quietest half rather than grow.
            self.forget_quiet(MAX_PEERS / 2);
        }
        let now = tokio::time::Instant::now();
        let entry = self.peers.entry(peer).or_insert_with(|| Peer {
            source: format!("syslog+udp://{peer}").into(),
            next_line: 1,
            last_active: now,
        });
        entry.last_active = now;
        if self.batch.is_empty() {
            self.batch.received = crate::event::now_micros();
            self.started = Some(now);
        }
        self.batch
            .push_from(&entry.source, entry.next_line, message, truncated);
        entry.next_line += 1;
    }

    /// Time to hand the batch on: full, or old enough that waiting longer delays alerts.
    fn due(&self) -> bool {
        self.batch.is_full() || self.started.is_some_and(|t| t.elapsed() >= FLUSH_AFTER)
    }

    /// Take the batch (if any), leaving an empty one.
    fn take(&mut self, url: &Arc<str>) -> Option<LineBatch> {
        if self.batch.is_empty() {
            return None;
        }
        self.started = None;
        Some(std::mem::replace(
            &mut self.batch,
            LineBatch::new(url.clone(), 1, 0),
        ))
    }

    /// Keep at most `keep` peers, the most recently active; the others' line numbers start
    /// again at 1 if they come back.
    fn forget_quiet(&mut self, keep: usize) {
        if self.peers.len() <= keep {
            return;
        }
        let mut times: Vec<tokio::time::Instant> =
            self.peers.values().map(|p| p.last_active).collect();
        let cut = times.len() - keep;
        times.select_nth_unstable(cut);
        let threshold = times[cut];
        self.peers.retain(|_, p| p.last_active >= threshold);
    }
}

/// Receive datagrams until shutdown.
pub(super) async fn serve(socket: tokio::net::UdpSocket, url: Arc<str>, ctx: Context) {
    // 64 KiB holds any UDP datagram.
    let mut buf = vec![0u8; 65536];
    let mut pending = Pending::new(&url);
    let mut drops = KernelDrops::new(&socket);
    let mut tick = tokio::time::interval(FLUSH_AFTER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Shutdown first: a flood must not keep a stopping listener busy forever.
            biased;
            _ = ctx.shutdown.triggered() => break,
            _ = tick.tick() => {
                if pending.due()
                    && let Some(batch) = pending.take(&url)
                    && !send(batch, &url, &ctx, &mut pending.received).await
                {
                    return;
                }
                // Forget quiet peers so the table does not keep every address ever seen.
                pending.peers.retain(|_, p| p.last_active.elapsed() < FORGET_PEER_AFTER);
                drops.count(&socket, &ctx);
            }
            received = socket.recv_from(&mut buf) => {
                let Ok((n, peer)) = received else {
                    // ICMP-reported errors from earlier sends and the like: not ours to stop on.
                    continue;
                };
                pending.received += n as u64;
                let message = trim_trailer(&buf[..n]);
                let truncated = message.len() > ctx.max_line;
                if truncated {
                    ctx.metrics.truncated(1);
                    ctx.dropped_bytes("truncated", (message.len() - ctx.max_line) as u64);
                }
                pending.push(peer, &message[..message.len().min(ctx.max_line)], truncated);
                if pending.batch.is_full()
                    && let Some(batch) = pending.take(&url)
                    && !send(batch, &url, &ctx, &mut pending.received).await
                {
                    return;
                }
            }
        }
    }
    if let Some(batch) = pending.take(&url) {
        send(batch, &url, &ctx, &mut pending.received).await;
    }
    drops.count(&socket, &ctx);
}

/// Hand a batch on, waiting while the pipeline is behind: meanwhile datagrams queue in the
/// kernel's receive buffer, and what overflows it is counted by [`KernelDrops`]. False when the
/// pipeline is gone (shutting down).
async fn send(batch: LineBatch, url: &str, ctx: &Context, bytes: &mut u64) -> bool {
    ctx.metrics.lines_read(url, batch.len() as u64);
    ctx.bytes_read(url, std::mem::take(bytes));
    ctx.bridge.send(batch).await.is_ok()
}
