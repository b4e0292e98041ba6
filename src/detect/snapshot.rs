//! Snapshots of detection state: the bytes a worker stores beside a stream position, so that
//! after a restart it resumes from them instead of replaying the partition's whole stream.
//!
//! # Format
//!
//! `MAGIC` (8 bytes), the format version (u32, little endian), what the snapshot is of (one
//! byte: `D` a [`super::Detector`], `M` a bus merge), the SHA-256 fingerprint of the rules and
//! options it was taken under (32 bytes; zero for a merge), then one zstd frame with a content
//! checksum holding the state as JSON. JSON, like the bus's messages, so a stored snapshot can
//! be read with `zstd -d | jq` when a worker's alerts need explaining.
//!
//! # What is stored, and what is not
//!
//! Everything a continuation can observe: every rule's per-key entries, evidence and cooldowns,
//! the silence deadlines and storm guard, sessions and held attempts, the reorder buffer and
//! the ahead hold (whole events), interned input names, the event-time state and counters.
//! Slot numbers of the keyed stores are kept (silence deadlines refer to them, freed slots are
//! reused in order), but no hash table is: indexes are hashed with a per-process random seed
//! ([`super::slab::seeded_hasher`]), so they are rebuilt on restore with the new process's
//! seed. The one seed stored is the one `distinct` rules hash their values with: those hashes
//! are the counted values themselves, so a restored detector must hash the same value to the
//! same number.
//!
//! # Cost
//!
//! Measured on a debug build at 100,000 address keys holding one 80-byte line each: 1.95 MB
//! (19.5 bytes a key), taken in about 1 s, restored in about 2 s. Restoring holds the
//! decoded mirror of the state beside the state it rebuilds: peak memory is about 1.8 times
//! the restored detector's (57 MB over 31 MB there), so a partition's key cap must leave that
//! room. Nothing is added to [`super::Detector::push`].
//!
//! # Hostile bytes
//!
//! A snapshot is read as hostile input: a store can be corrupted, or written by another build.
//! Restoring checks the magic, version and fingerprint before anything else, caps what it
//! decompresses at [`MAX_SNAPSHOT_JSON`] (streamed: the JSON is never held whole), lets the
//! zstd checksum catch garbled bytes, and checks every slot number, free list and count it
//! rebuilds from, so that bad bytes give a [`SnapshotError`], never a panic nor an allocation
//! the bytes did not pay for.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::alert::Severity;
use crate::event::{Attempt, Event, Kind};

/// The first bytes of every snapshot.
const MAGIC: &[u8; 8] = b"SPSNAP\0\x1a";

/// Bumped whenever the JSON changes meaning; an older snapshot is refused (the caller replays).
pub const SNAPSHOT_VERSION: u32 = 1;

/// Most JSON bytes a snapshot may decompress to. Far more than a partition's state at its key
/// cap takes (about 150 bytes of JSON a key), far less than a decompression bomb would make.
pub const MAX_SNAPSHOT_JSON: u64 = 512 * 1024 * 1024;

const HEADER: usize = MAGIC.len() + 4 + 1 + 32;

/// Why a snapshot was refused. The caller then rebuilds the state by replaying the stream.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a secpipe snapshot (bad header)")]
    NotASnapshot,
    #[error("snapshot format version {found}, this build reads version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("snapshot is of a {found}, not of a {expected}")]
    WrongKind {
        found: &'static str,
        expected: &'static str,
    },
    #[error("snapshot was taken under other rules or options (fingerprint differs)")]
    RulesChanged,
    #[error("snapshot decompresses to more than {MAX_SNAPSHOT_JSON} bytes")]
    TooLarge,
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
    #[error("snapshot state is inconsistent: {0}")]
    Invalid(String),
}

/// Shorthand for an inconsistency found while rebuilding.
pub(crate) fn invalid(what: impl Into<String>) -> SnapshotError {
    SnapshotError::Invalid(what.into())
}

/// Counters a snapshot may hold: far more than any run counts, far enough from the top of
/// the type that the running code's `+= 1` cannot overflow on a hostile value.
const MAX_COUNTER: u64 = 1 << 62;

/// Refuse a counter no run reaches (see [`MAX_COUNTER`]).
pub(crate) fn counter(what: &str, value: u64) -> Result<u64, SnapshotError> {
    if value > MAX_COUNTER {
        return Err(invalid(format!("{what} = {value}")));
    }
    Ok(value)
}

/// What a snapshot holds; the byte after the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SnapshotKind {
    Detector,
    Merge,
}

impl SnapshotKind {
    fn byte(self) -> u8 {
        match self {
            SnapshotKind::Detector => b'D',
            SnapshotKind::Merge => b'M',
        }
    }

    fn name(self) -> &'static str {
        match self {
            SnapshotKind::Detector => "detector",
            SnapshotKind::Merge => "merge",
        }
    }

    fn of(byte: u8) -> Option<SnapshotKind> {
        match byte {
            b'D' => Some(SnapshotKind::Detector),
            b'M' => Some(SnapshotKind::Merge),
            _ => None,
        }
    }
}

/// SHA-256 of the given parts, each length-prefixed so that no two lists of parts collide.
pub(crate) fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// Header, then `state` as JSON in one checksummed zstd frame.
pub(crate) fn encode<T: Serialize>(kind: SnapshotKind, print: [u8; 32], state: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.push(kind.byte());
    out.extend_from_slice(&print);
    // Writing into a Vec cannot fail, and serializing our own types cannot either (no map has
    // a non-string key); were it to, the truncated frame would be refused on restore, never
    // taken for a state.
    match zstd::stream::write::Encoder::new(out, 3) {
        Ok(mut encoder) => {
            let _ = encoder.include_checksum(true);
            let _ = serde_json::to_writer(&mut encoder, state);
            encoder.finish().unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

/// Check the header, then read the JSON state, streamed and capped (see the module docs).
pub(crate) fn decode<T: DeserializeOwned>(
    kind: SnapshotKind,
    print: [u8; 32],
    bytes: &[u8],
) -> Result<T, SnapshotError> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[MAGIC.len()..MAGIC.len() + 4]);
    let version = u32::from_le_bytes(version);
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::Version {
            found: version,
            expected: SNAPSHOT_VERSION,
        });
    }
    let found = SnapshotKind::of(bytes[MAGIC.len() + 4]).ok_or(SnapshotError::NotASnapshot)?;
    if found != kind {
        return Err(SnapshotError::WrongKind {
            found: found.name(),
            expected: kind.name(),
        });
    }
    if bytes[MAGIC.len() + 5..HEADER] != print {
        return Err(SnapshotError::RulesChanged);
    }
    let mut decoder = zstd::stream::read::Decoder::new(&bytes[HEADER..])
        .map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    // Our frames use a 2 MiB window at most (level 3); a frame asking for more is not ours,
    // and must not make the decoder allocate it.
    decoder
        .window_log_max(23)
        .map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    let mut capped = Capped {
        inner: std::io::BufReader::new(decoder),
        left: MAX_SNAPSHOT_JSON,
        over: false,
    };
    let mut de = serde_json::Deserializer::from_reader(&mut capped);
    let state = T::deserialize(&mut de);
    let state = match state.and_then(|state| de.end().map(|()| state)) {
        Ok(state) => state,
        Err(_) if capped.over => return Err(SnapshotError::TooLarge),
        Err(e) => return Err(SnapshotError::Corrupt(e.to_string())),
    };
    // The JSON ended; the frame must end too, its checksum verified.
    let mut rest = [0u8; 1];
    match capped.read(&mut rest) {
        Ok(0) => Ok(state),
        Ok(_) => Err(SnapshotError::Corrupt("bytes after the state".into())),
        Err(_) if capped.over => Err(SnapshotError::TooLarge),
        Err(e) => Err(SnapshotError::Corrupt(e.to_string())),
    }
}

/// A reader that fails once more than `left` bytes have come through.
struct Capped<R> {
    inner: R,
    left: u64,
    over: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.over = true;
            return Err(std::io::Error::other("snapshot too large"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Bytes (evidence blobs, raw lines) as base64 text: a JSON array of numbers would take four
/// times the room before compression.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Bytes(pub Box<[u8]>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text.as_bytes())
            .map(|v| Bytes(v.into_boxed_slice()))
            .map_err(serde::de::Error::custom)
    }
}

/// A severity by its name.
pub(crate) fn severity_name(s: Severity) -> String {
    s.as_str().to_string()
}

pub(crate) fn severity_of(name: &str) -> Result<Severity, SnapshotError> {
    Severity::parse(name).ok_or_else(|| invalid(format!("unknown severity {name:?}")))
}

/// Shares one allocation per distinct name among restored events, as the parse stage shares
/// one among the events it makes: a restored reorder buffer of 200,000 events must not hold
/// 600,000 copies of three names.
#[derive(Default)]
pub(crate) struct Names {
    seen: HashMap<String, Arc<str>>,
}

impl Names {
    pub(crate) fn get(&mut self, name: String) -> Arc<str> {
        if let Some(shared) = self.seen.get(&name) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name.as_str());
        self.seen.insert(name, shared.clone());
        shared
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One held event, every field (held events are whole events: they are processed later).
#[derive(Serialize, Deserialize)]
pub(crate) struct EventSnap {
    source: String,
    line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    ts: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    ts_inferred: bool,
    received: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    src_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forwarded_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    severity: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    message: String,
    raw: Bytes,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    attempt: String,
}

impl EventSnap {
    pub(crate) fn of(ev: &Event) -> EventSnap {
        let text = |v: &Option<Box<str>>| v.as_deref().map(str::to_string);
        let shared = |v: &Option<Arc<str>>| v.as_deref().map(str::to_string);
        EventSnap {
            source: ev.source.to_string(),
            line: ev.line,
            seq: ev.seq,
            ts: ev.ts,
            ts_inferred: ev.ts_inferred,
            received: ev.received,
            host: shared(&ev.host),
            app: shared(&ev.app),
            pid: ev.pid,
            kind: ev.kind.as_str().to_string(),
            reason: shared(&ev.reason),
            src_ip: ev.src_ip,
            user: text(&ev.user),
            actor: text(&ev.actor),
            namespace: text(&ev.namespace),
            count: ev.count,
            http_method: text(&ev.http_method),
            http_path: text(&ev.http_path),
            http_status: ev.http_status,
            bytes: ev.bytes,
            forwarded_for: text(&ev.forwarded_for),
            severity: shared(&ev.severity),
            message: ev.message.to_string(),
            raw: Bytes(ev.raw.clone()),
            attempt: match ev.attempt {
                Attempt::None => String::new(),
                other => other.as_str().to_string(),
            },
        }
    }

    /// The event exactly as it was held (addresses are kept as stored: the detector only ever
    /// held canonical ones, and a restored event must key as the original did).
    pub(crate) fn into_event(self, names: &mut Names) -> Result<Event, SnapshotError> {
        let kind =
            Kind::parse(&self.kind).ok_or_else(|| invalid(format!("kind {:?}", self.kind)))?;
        let attempt = if self.attempt.is_empty() {
            Attempt::None
        } else {
            Attempt::parse(&self.attempt)
                .ok_or_else(|| invalid(format!("attempt role {:?}", self.attempt)))?
        };
        let boxed = |v: Option<String>| v.map(String::into_boxed_str);
        let source = names.get(self.source);
        let mut shared = |v: Option<String>| v.map(|s| names.get(s));
        Ok(Event {
            source,
            line: self.line,
            seq: self.seq,
            ts: self.ts,
            ts_inferred: self.ts_inferred,
            received: self.received,
            host: shared(self.host),
            app: shared(self.app),
            pid: self.pid,
            kind,
            reason: shared(self.reason),
            src_ip: self.src_ip,
            user: boxed(self.user),
            actor: boxed(self.actor),
            namespace: boxed(self.namespace),
            count: self.count,
            http_method: boxed(self.http_method),
            http_path: boxed(self.http_path),
            http_status: self.http_status,
            bytes: self.bytes,
            forwarded_for: boxed(self.forwarded_for),
            severity: shared(self.severity),
            message: self.message.into_boxed_str(),
            raw: self.raw.0,
            attempt,
        })
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
