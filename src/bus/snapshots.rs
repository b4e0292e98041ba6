//! Partition snapshots on the bus: a worker that takes a partition over starts from the
//! newest snapshot and the stream after it, instead of the stream's first message.
//!
//! A snapshot is cut into chunks of [`CHUNK`] bytes (a NATS message is at most 1 MiB by
//! default), published to `sp.snap.<family>.<p>.<slot>.<i>`, then a head naming the slot, the
//! stream position it covers, the chunk count and the SHA-256 of the whole, to
//! `sp.snap.<family>.<p>.head`. The stream keeps one message per subject; snapshots alternate
//! between two slots, so writing one never touches the chunks the current head names (a
//! worker killed mid-write leaves the previous snapshot whole). A reader checks every chunk against the head's id and the whole against its
//! hash: a snapshot being replaced while it is read, or one somebody else wrote, is not used,
//! and the partition is rebuilt from the stream's start instead (slower, never wrong).

use async_nats::HeaderMap;
use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{Bus, Family};

/// Stream of the newest snapshot of every partition.
pub const SNAPSHOTS_STREAM: &str = "SECPIPE_SNAPSHOTS";

/// Bytes per chunk message.
pub const CHUNK: usize = 512 * 1024;

/// A snapshot larger than this is neither written nor read.
pub const MAX_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;

const SNAP_HEADER: &str = "Sp-Snapshot";

#[derive(Serialize, Deserialize, Debug)]
struct Head {
    /// Stream sequence of the last message the snapshot covers.
    through: u64,
    /// 0 or 1: where its chunks are.
    slot: u8,
    chunks: u32,
    bytes: u64,
    /// Hex SHA-256 of the whole; its first 32 characters name the snapshot on each chunk.
    sha256: String,
}

fn subject(family: &Family, p: u32, part: &str) -> String {
    format!("sp.snap.{}.{p}.{part}", family.name())
}

/// The snapshots stream, created when missing.
pub async fn stream(js: &jetstream::Context) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: SNAPSHOTS_STREAM.to_string(),
        subjects: vec!["sp.snap.>".to_string()],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("stream {SNAPSHOTS_STREAM}: {e}"))
}

/// Store `bytes` as the partition's snapshot through stream sequence `through`, in `slot` (the
/// one the current head does not name).
pub async fn save(
    bus: &Bus,
    family: &Family,
    p: u32,
    slot: u8,
    through: u64,
    bytes: &[u8],
) -> Result<(), String> {
    let slot = slot % 2;
    if bytes.len() as u64 > MAX_SNAPSHOT_BYTES {
        return Err(format!(
            "snapshot of {} bytes is over {MAX_SNAPSHOT_BYTES}",
            bytes.len()
        ));
    }
    let sha256 = hex::encode(sha2::Sha256::digest(bytes));
    let id = &sha256[..32];
    let chunks: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
    let mut acks = Vec::with_capacity(chunks.len() + 1);
    for (i, chunk) in chunks.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert(SNAP_HEADER, id);
        let ack = bus
            .js
            .publish_with_headers(
                subject(family, p, &format!("{slot}.{i}")),
                headers,
                bytes::Bytes::copy_from_slice(chunk),
            )
            .await
            .map_err(|e| e.to_string())?;
        acks.push(ack);
    }
    for ack in acks.drain(..) {
        ack.await.map_err(|e| e.to_string())?;
    }
    let head = Head {
        through,
        slot,
        chunks: chunks.len() as u32,
        bytes: bytes.len() as u64,
        sha256,
    };
    let payload = serde_json::to_vec(&head).map_err(|e| e.to_string())?;
    bus.js
        .publish(subject(family, p, "head"), payload.into())
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A snapshot read back: the stream sequence it covers, its slot and its bytes.
pub struct Loaded {
    pub through: u64,
    pub slot: u8,
    pub bytes: Vec<u8>,
}

/// The partition's newest snapshot; `Ok(None)` when there is none, or it does not check out
/// (said on stderr).
pub async fn load(bus: &Bus, family: &Family, p: u32) -> Result<Option<Loaded>, String> {
    let stream = &bus.snapshots;
    let head = match stream
        .get_last_raw_message_by_subject(&subject(family, p, "head"))
        .await
    {
        Ok(m) => m,
        Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
            return Ok(None);
        }
        Err(e) => return Err(format!("{SNAPSHOTS_STREAM}: {e}")),
    };
    let refuse = |why: String| {
        crate::report::note(&format!(
            "worker: snapshot of {} not used ({why}); rebuilding it from the stream",
            family.key(p)
        ));
        Ok(None)
    };
    let Ok(head) = serde_json::from_slice::<Head>(&head.payload) else {
        return refuse("its head is not one".into());
    };
    if head.slot > 1
        || head.bytes > MAX_SNAPSHOT_BYTES
        || u64::from(head.chunks) != head.bytes.div_ceil(CHUNK as u64)
        || head.sha256.len() != 64
    {
        return refuse("its head does not add up".into());
    }
    let id = &head.sha256[..32];
    let mut bytes = Vec::with_capacity(head.bytes as usize);
    for i in 0..head.chunks {
        let chunk = match stream
            .get_last_raw_message_by_subject(&subject(family, p, &format!("{}.{i}", head.slot)))
            .await
        {
            Ok(m) => m,
            Err(_) => return refuse(format!("chunk {i} is missing")),
        };
        let named = chunk
            .headers
            .get(SNAP_HEADER)
            .is_some_and(|v| v.as_str() == id);
        if !named || bytes.len() + chunk.payload.len() > head.bytes as usize {
            return refuse(format!("chunk {i} belongs to another snapshot"));
        }
        bytes.extend_from_slice(&chunk.payload);
    }
    if hex::encode(sha2::Sha256::digest(&bytes)) != head.sha256 {
        return refuse("its hash does not match".into());
    }
    Ok(Some(Loaded {
        through: head.through,
        slot: head.slot,
        bytes,
    }))
}
