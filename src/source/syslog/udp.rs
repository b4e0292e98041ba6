//! Syslog over UDP (RFC 5426): one message per datagram, no backpressure possible.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc::error::TrySendError;

use crate::frame::LineBatch;

use super::{Context, FLUSH_AFTER, PeerBatch, UDP_RECEIVE_BUFFER, trim_trailer};

/// Peers with a batch in progress; past this many (a scan, or spoofed sources) every pending
/// batch is handed on and the table starts afresh, so its memory stays bounded. Line numbers
/// of the peers forgotten that way start again at 1.
const MAX_PEERS: usize = 4096;

/// A peer silent this long is forgotten (its line numbers start again at 1).
const FORGET_PEER_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Bind with a large receive buffer: a burst then waits in the kernel instead of being lost
/// before this task is scheduled.
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel caps it at net.core.rmem_max, and a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Receive datagrams until shutdown.
pub(super) async fn serve(socket: tokio::net::UdpSocket, url: Arc<str>, ctx: Context) {
    // 64 KiB holds any UDP datagram.
    let mut buf = vec![0u8; 65536];
    let mut peers: HashMap<SocketAddr, PeerBatch> = HashMap::new();
    let mut tick = tokio::time::interval(FLUSH_AFTER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut bytes = 0u64;
    loop {
        tokio::select! {
            // Shutdown first: a flood must not keep a stopping listener busy forever.
            biased;
            _ = ctx.shutdown.triggered() => break,
            received = socket.recv_from(&mut buf) => {
                let Ok((n, peer)) = received else {
                    // ICMP-reported errors from earlier sends and the like: not ours to stop on.
                    continue;
                };
                bytes += n as u64;
                let message = trim_trailer(&buf[..n]);
                let truncated = message.len() > ctx.max_line;
                if truncated {
                    ctx.metrics.truncated(1);
                }
                if peers.len() >= MAX_PEERS && !peers.contains_key(&peer) {
                    flush_all(&mut peers, &url, &ctx, &mut bytes);
                    peers.clear();
                }
                let entry = peers.entry(peer).or_insert_with(|| {
                    PeerBatch::new(format!("syslog+udp://{peer}").into())
                });
                entry.push(&message[..message.len().min(ctx.max_line)], truncated);
                if entry.batch.is_full() && let Some(batch) = entry.take() {
                    send(batch, &url, &ctx, &mut bytes);
                }
            }
            _ = tick.tick() => {
                for peer in peers.values_mut() {
                    if peer.due() && let Some(batch) = peer.take() {
                        send(batch, &url, &ctx, &mut bytes);
                    }
                }
                // Forget quiet peers so the table does not keep every address ever seen.
                peers.retain(|_, p| p.last_active.elapsed() < FORGET_PEER_AFTER);
            }
        }
    }
    flush_all(&mut peers, &url, &ctx, &mut bytes);
}

fn flush_all(
    peers: &mut HashMap<SocketAddr, PeerBatch>,
    url: &str,
    ctx: &Context,
    bytes: &mut u64,
) {
    for peer in peers.values_mut() {
        if let Some(batch) = peer.take() {
            send(batch, url, ctx, bytes);
        }
    }
}

/// Hand a batch on without waiting: when the pipeline is behind, UDP senders cannot be slowed
/// down, so the batch is dropped and counted instead of queued without bound.
fn send(batch: LineBatch, url: &str, ctx: &Context, bytes: &mut u64) {
    ctx.metrics.lines_read(url, batch.len() as u64);
    ctx.metrics.bytes_read(url, std::mem::take(bytes));
    match ctx.bridge.try_send(batch) {
        Ok(()) => {}
        Err(TrySendError::Full(batch)) => ctx.metrics.dropped("channel_full", batch.len() as u64),
        // The pipeline is gone (shutting down): nothing left to count for.
        Err(TrySendError::Closed(_)) => {}
    }
}
