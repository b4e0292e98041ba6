//! The evidence codec: one counted event's evidence (source, line, archive seq, raw bytes) packed
//! into a single small allocation, because a flood holds one per counted event.

use super::sources::Sources;
use crate::alert::Evidence;
use crate::event::Event;

/// Evidence events kept per alert.
pub(crate) const MAX_EVIDENCE: usize = 10;
/// Evidence keeps at most this many bytes of a line (the archive keeps the whole line); a flood of
/// 64 KiB lines must not multiply into gigabytes of held evidence.
pub(crate) const MAX_EVIDENCE_RAW: usize = 4096;

/// The source id of a packed evidence blob (`None` for an empty one).
pub(crate) fn evidence_source(blob: &[u8]) -> Option<u32> {
    let mut value = 0u64;
    for (i, &byte) in blob.iter().take(5).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return u32::try_from(value).ok();
        }
    }
    None
}

/// One event's evidence in a single allocation: source id, line and seq + 1 (0 = none) as
/// LEB128 varints (typically 5 bytes in all), then the raw bytes. Held once per counted event
/// of a flood, so every byte here is a megabyte there.
pub(super) fn pack_evidence(ev: &Event, source: u32) -> Box<[u8]> {
    let mut blob = Vec::new();
    repack(&mut blob, ev, source);
    blob.into_boxed_slice()
}

pub(super) fn repack(buf: &mut Vec<u8>, ev: &Event, source: u32) {
    let raw = &ev.raw[..ev.raw.len().min(MAX_EVIDENCE_RAW)];
    let mut header = [0u8; 30];
    let mut len = 0;
    for mut value in [
        u64::from(source),
        ev.line,
        ev.seq.map_or(0, |s| s.saturating_add(1)),
    ] {
        while value >= 0x80 {
            header[len] = (value as u8) | 0x80;
            len += 1;
            value >>= 7;
        }
        header[len] = value as u8;
        len += 1;
    }
    buf.clear();
    // Exact size: a boxed slice that was shrunk keeps its allocator chunk size.
    buf.reserve_exact(len + raw.len());
    buf.extend_from_slice(&header[..len]);
    buf.extend_from_slice(raw);
}

pub(super) fn unpack_evidence(blob: &[u8], ts: i64, sources: &Sources) -> Evidence {
    let mut at = 0;
    let mut varint = || {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = blob.get(at) else { break };
            at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
        }
        value
    };
    let (source, line, seq) = (varint(), varint(), varint());
    Evidence {
        source: sources.name(source as u32),
        line,
        ts,
        raw: blob.get(at..).unwrap_or_default().into(),
        seq: seq.checked_sub(1),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn evidence_round_trips() {
        let mut sources = Sources::new(super::super::slab::seeded_hasher());
        let ev = Event {
            source: Arc::from("auth.log"),
            line: 42,
            seq: Some(7),
            raw: b"Failed password".to_vec().into(),
            ..Event::default()
        };
        let id = sources.intern(&ev.source);
        let blob = pack_evidence(&ev, id);
        assert_eq!(evidence_source(&blob), Some(id));
        let back = unpack_evidence(&blob, 5, &sources);
        assert_eq!(&*back.source, "auth.log");
        assert_eq!((back.line, back.ts, back.seq), (42, 5, Some(7)));
        assert_eq!(&*back.raw, b"Failed password");
    }

    #[test]
    fn evidence_keeps_only_the_start_of_a_long_line() {
        let mut sources = Sources::new(super::super::slab::seeded_hasher());
        let ev = Event {
            source: Arc::from("-"),
            raw: vec![b'x'; 64 * 1024].into(),
            ..Event::default()
        };
        let id = sources.intern(&ev.source);
        let blob = pack_evidence(&ev, id);
        assert!(blob.len() < MAX_EVIDENCE_RAW + 32, "{}", blob.len());
        assert_eq!(
            unpack_evidence(&blob, 0, &sources).raw.len(),
            MAX_EVIDENCE_RAW
        );
    }
}
