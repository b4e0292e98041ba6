//! The edge (`secpipe --emit nats://…`): publishes the ordered stage's events to JetStream
//! instead of detecting, once per family to the partition of its key (see [`super`]).
//!
//! It runs on the ordered stage's thread and publishes each batch before the stage
//! acknowledges it to its source: an input position is saved only once JetStream has stored
//! the events before it. A server that stops answering is retried for [`RETRY_FOR`]; after
//! that the run stops as on a full disk (exit 2), and the next run publishes again from the
//! saved positions, the message ids making what was stored already a no-op.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use sha2::Digest;

use super::wire::{Beat, WireEvent};
use super::{Bus, EDGE_HEADER, Family, MessageType, Route, TYPE_HEADER, route};
use crate::detect::RuleSet;
use crate::event::Event;

/// A message's payload stays under this (NATS's default `max_payload` is 1 MiB).
pub const MAX_PAYLOAD: usize = 512 * 1024;

/// How long an unreachable server is retried before the run stops.
pub const RETRY_FOR: Duration = Duration::from_secs(300);

/// Beats go out at most this often while events flow (and at every idle tick).
pub const BEAT_EVERY: Duration = Duration::from_secs(1);

/// What an edge published, for the end-of-run note.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmitStats {
    pub events: u64,
    pub messages: u64,
    /// Messages JetStream already had (a restart publishing again what it stored).
    pub duplicates: u64,
}

/// The publishing end of an edge.
pub struct Emitter {
    runtime: tokio::runtime::Runtime,
    bus: Bus,
    edge: String,
    families: Vec<Family>,
    partitions: u32,
    /// Newest event time published (µs); `i64::MIN` before the first.
    newest: i64,
    last_beat: Option<Instant>,
    stats: EmitStats,
    /// Stopped by a signal, not at the end of input: no `done`, so workers keep their windows
    /// open for the restarted edge.
    interrupted: bool,
}

impl Emitter {
    /// Connect (retrying while the server starts), create the streams when missing and agree
    /// on the partition count.
    pub fn connect(
        url: &str,
        edge: String,
        partitions: Option<u32>,
        rules: &RuleSet,
    ) -> Result<Emitter, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the NATS runtime: {e}"))?;
        let (bus, partitions) = runtime.block_on(async {
            let js = super::connect(url, Duration::from_secs(30)).await?;
            let bus = Bus::open(js).await?;
            let n = bus.partitions(partitions).await?;
            Ok::<_, String>((bus, n))
        })?;
        Ok(Emitter {
            runtime,
            bus,
            edge,
            families: Family::of(rules),
            partitions,
            newest: i64::MIN,
            last_beat: None,
            stats: EmitStats::default(),
            interrupted: false,
        })
    }

    pub fn stats(&self) -> EmitStats {
        self.stats
    }

    /// Publish a batch's events; returns once JetStream has stored them all.
    pub fn publish(&mut self, events: &[Event], wall: Option<i64>) -> Result<(), String> {
        let mut messages = Vec::new();
        for family in &self.families {
            let mut by_partition: Vec<Vec<&Event>> = vec![Vec::new(); self.partitions as usize];
            for ev in events {
                match route(family, ev, self.partitions) {
                    Route::One(p) => by_partition[p as usize].push(ev),
                    Route::All => by_partition.iter_mut().for_each(|list| list.push(ev)),
                    Route::None => {}
                }
            }
            for (p, list) in by_partition.into_iter().enumerate() {
                if !list.is_empty() {
                    encode_events(
                        &self.edge,
                        &family.events_subject(p as u32),
                        &list,
                        &mut messages,
                    )?;
                }
            }
        }
        for ev in events {
            // The beats tell workers how far event time has got; one planted line far ahead
            // of the rest must not move it there (detect judges such lines the same way).
            if self.newest == i64::MIN
                || ev.ts
                    <= self
                        .newest
                        .saturating_add(crate::detect::MAX_AHEAD_OF_STREAM)
            {
                self.newest = self.newest.max(ev.ts);
            }
        }
        self.stats.events += events.len() as u64;
        self.send(messages)?;
        if self.last_beat.is_none_or(|t| t.elapsed() >= BEAT_EVERY) {
            self.beat(wall)?;
        }
        Ok(())
    }

    /// Input is idle: beat, so quiet partitions move in event time (and with `wall`, live).
    pub fn idle(&mut self, wall: Option<i64>) -> Result<(), String> {
        if self.last_beat.is_none_or(|t| t.elapsed() >= BEAT_EVERY) {
            self.beat(wall)?;
        }
        Ok(())
    }

    /// The run was stopped by a signal: [`Emitter::finish`] sends no `done`.
    pub fn interrupted(&mut self) {
        self.interrupted = true;
    }

    /// End of input: a last beat and `done` to every partition.
    pub fn finish(&mut self) -> Result<EmitStats, String> {
        self.beat(None)?;
        if self.interrupted {
            return Ok(self.stats);
        }
        let messages = self.to_every_partition(MessageType::Done, None)?;
        self.send(messages)?;
        Ok(self.stats)
    }

    fn beat(&mut self, wall: Option<i64>) -> Result<(), String> {
        let messages = self.to_every_partition(MessageType::Beat, wall)?;
        self.send(messages)?;
        self.last_beat = Some(Instant::now());
        Ok(())
    }

    fn to_every_partition(
        &self,
        kind: MessageType,
        wall: Option<i64>,
    ) -> Result<Vec<Outgoing>, String> {
        let beat = Beat {
            newest: self.newest,
            sent: crate::event::now_micros(),
            wall,
        };
        let payload = serde_json::to_vec(&beat).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for family in &self.families {
            for p in 0..self.partitions {
                out.push(Outgoing {
                    subject: family.events_subject(p),
                    kind,
                    edge: self.edge.clone(),
                    id: None,
                    payload: payload.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Publish in order and wait for every acknowledgement, retrying the whole set (ids make
    /// the repeats no-ops) while the server does not answer, for up to [`RETRY_FOR`].
    fn send(&mut self, messages: Vec<Outgoing>) -> Result<(), String> {
        if messages.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let attempt = self.runtime.block_on(publish_all(&self.bus, &messages));
            match attempt {
                Ok(duplicates) => {
                    self.stats.messages += messages.len() as u64;
                    self.stats.duplicates += duplicates;
                    return Ok(());
                }
                Err(e) if started.elapsed() >= RETRY_FOR => {
                    return Err(format!("NATS: {e} (retried for {RETRY_FOR:?})"));
                }
                Err(_) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// One message to publish.
struct Outgoing {
    subject: String,
    kind: MessageType,
    edge: String,
    /// `Nats-Msg-Id` (events only).
    id: Option<String>,
    payload: Vec<u8>,
}

/// The events of one partition as messages of at most [`MAX_PAYLOAD`] bytes (a single event
/// larger than that goes alone). Each message's id hashes the edge, the subject and each
/// event's input, line and bytes, not its archive row number: the same lines read again
/// after a restart are the same message.
fn encode_events(
    edge: &str,
    subject: &str,
    events: &[&Event],
    out: &mut Vec<Outgoing>,
) -> Result<(), String> {
    let mut payload = vec![b'['];
    let mut id = sha2::Sha256::new();
    let mut count = 0usize;
    let start = |id: &mut sha2::Sha256| {
        id.update(edge.as_bytes());
        id.update([0]);
        id.update(subject.as_bytes());
        id.update([0]);
    };
    start(&mut id);
    for ev in events {
        let json = serde_json::to_vec(&WireEvent::from_event(ev)).map_err(|e| e.to_string())?;
        if count > 0 && payload.len() + json.len() + 2 > MAX_PAYLOAD {
            payload.push(b']');
            out.push(Outgoing {
                subject: subject.to_string(),
                kind: MessageType::Events,
                edge: edge.to_string(),
                id: Some(hex::encode(&std::mem::take(&mut id).finalize()[..16])),
                payload: std::mem::replace(&mut payload, vec![b'[']),
            });
            start(&mut id);
            count = 0;
        }
        if count > 0 {
            payload.push(b',');
        }
        payload.extend_from_slice(&json);
        id.update(ev.source.as_bytes());
        id.update([0]);
        id.update(ev.line.to_be_bytes());
        id.update((ev.raw.len() as u64).to_be_bytes());
        id.update(&ev.raw);
        count += 1;
    }
    if count > 0 {
        payload.push(b']');
        out.push(Outgoing {
            subject: subject.to_string(),
            kind: MessageType::Events,
            edge: edge.to_string(),
            id: Some(hex::encode(&id.finalize()[..16])),
            payload,
        });
    }
    Ok(())
}

/// Publish every message (pipelined), then wait for every acknowledgement; the number that
/// JetStream reported as duplicates.
async fn publish_all(bus: &Bus, messages: &[Outgoing]) -> Result<u64, String> {
    let mut pending = Vec::with_capacity(messages.len());
    for m in messages {
        let mut headers = HeaderMap::new();
        headers.insert(TYPE_HEADER, m.kind.as_str());
        headers.insert(EDGE_HEADER, m.edge.as_str());
        if let Some(id) = &m.id {
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        }
        let ack = bus
            .js
            .publish_with_headers(m.subject.clone(), headers, m.payload.clone().into())
            .await
            .map_err(|e| e.to_string())?;
        pending.push(ack);
    }
    let mut duplicates = 0;
    for ack in pending {
        let ack = ack.await.map_err(|e| e.to_string())?;
        if ack.duplicate {
            duplicates += 1;
        }
    }
    Ok(duplicates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u64, raw: &str) -> Event {
        Event {
            source: "auth.log".into(),
            line: n,
            raw: raw.as_bytes().to_vec().into_boxed_slice(),
            ..Event::default()
        }
    }

    #[test]
    fn the_same_lines_make_the_same_message_id_whatever_their_row_numbers() {
        let a = line(1, "Failed password for root from 192.0.2.1");
        let mut b = a.clone();
        b.seq = Some(99);
        let (mut first, mut again) = (Vec::new(), Vec::new());
        encode_events("e", "sp.ev.src_ip.0", &[&a], &mut first).unwrap();
        encode_events("e", "sp.ev.src_ip.0", &[&b], &mut again).unwrap();
        assert_eq!(first[0].id, again[0].id);
        // Another line, edge or partition is another message.
        let mut other = Vec::new();
        encode_events("e", "sp.ev.src_ip.0", &[&line(2, "x")], &mut other).unwrap();
        encode_events("f", "sp.ev.src_ip.0", &[&a], &mut other).unwrap();
        encode_events("e", "sp.ev.src_ip.1", &[&a], &mut other).unwrap();
        for m in &other {
            assert_ne!(m.id, first[0].id);
        }
    }

    #[test]
    fn big_batches_are_split_under_the_payload_limit_and_each_part_decodes() {
        let big = "x".repeat(10_000);
        let events: Vec<Event> = (0..200).map(|i| line(i, &big)).collect();
        let refs: Vec<&Event> = events.iter().collect();
        let mut out = Vec::new();
        encode_events("e", "s", &refs, &mut out).unwrap();
        assert!(out.len() > 1);
        let mut decoded = 0;
        for m in &out {
            assert!(m.payload.len() <= MAX_PAYLOAD);
            let list: Vec<WireEvent> = serde_json::from_slice(&m.payload).unwrap();
            decoded += list.len();
        }
        assert_eq!(decoded, 200);
    }
}
