//! A windowed rule's per-key state: the counted entries in time order and the cooldown after
//! an alert, laid out so that a million keys of a flood fit the memory budget.

use std::collections::VecDeque;

use super::engine::EventCtx;
use super::evidence::{MAX_EVIDENCE, pack_evidence};
use super::snapshot::{Bytes, SnapshotError, invalid, severity_name, severity_of};
use crate::alert::Severity;
use crate::event::Event;

/// One counted event in a key's window.
pub(super) struct Entry {
    pub(super) ts: i64,
    /// Attempts, the summed field, or (distinct) a hash of the value.
    pub(super) weight: u64,
    /// Packed evidence; empty (no allocation) once a window already holds enough.
    pub(super) evidence: Box<[u8]>,
}

/// Per-key state of a windowed rule, 40 bytes (a flood creates a million of them): the oldest
/// entry inline, everything rarer (more entries, a cooldown after an alert) out of line.
pub(super) struct KeyState {
    /// The oldest entry in the window.
    first: Option<Entry>,
    extra: Option<Box<Extra>>,
}

#[derive(Default)]
struct Extra {
    /// Entries after `first`, in time order.
    more: VecDeque<Entry>,
    cooldown: Option<Cooldown>,
}

pub(super) struct Cooldown {
    /// The key is quiet until this time (µs).
    pub(super) until: i64,
    /// Severity of the last alert in this cooldown.
    pub(super) alerted: Severity,
    /// An event at or after `until` has been counted: counting started afresh. The cooldown
    /// is kept so that an event from before `until` that is decided later (a login attempt
    /// released when its session's next line arrives) is still quiet, whatever the order in
    /// which they are processed.
    pub(super) over: bool,
}

impl KeyState {
    pub(super) fn new() -> Self {
        KeyState {
            first: None,
            extra: None,
        }
    }

    /// Entries in time order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        let more = self.extra.as_ref().map(|x| x.more.iter());
        self.first.iter().chain(more.into_iter().flatten())
    }

    pub(super) fn newest_ts(&self) -> Option<i64> {
        let more = self.extra.as_ref().and_then(|x| x.more.back());
        more.or(self.first.as_ref()).map(|e| e.ts)
    }

    pub(super) fn cooldown(&self) -> Option<&Cooldown> {
        self.extra.as_ref().and_then(|x| x.cooldown.as_ref())
    }

    pub(super) fn set_cooldown(&mut self, cooldown: Option<Cooldown>) {
        match (&mut self.extra, cooldown) {
            (Some(x), c) => x.cooldown = c,
            (None, None) => {}
            (None, Some(c)) => {
                self.extra = Some(Box::new(Extra {
                    more: VecDeque::new(),
                    cooldown: Some(c),
                }))
            }
        }
        self.shrink();
    }

    /// Insert in time order (late events land in the middle).
    pub(super) fn insert(&mut self, entry: Entry) {
        let Some(first) = &mut self.first else {
            self.first = Some(entry);
            return;
        };
        let entry = if entry.ts < first.ts {
            std::mem::replace(first, entry)
        } else {
            entry
        };
        let more = &mut self.extra.get_or_insert_with(Box::default).more;
        let at = more.partition_point(|e| e.ts <= entry.ts);
        more.insert(at, entry);
    }

    /// Drop entries at or before `cutoff` (and their evidence).
    pub(super) fn prune(&mut self, cutoff: i64) {
        while self.first.as_ref().is_some_and(|e| e.ts <= cutoff) {
            self.first = self.extra.as_mut().and_then(|x| x.more.pop_front());
        }
        self.shrink();
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        if self.iter().all(&mut keep) {
            return;
        }
        let mut kept: VecDeque<Entry> = VecDeque::new();
        kept.extend(self.first.take().filter(&mut keep));
        if let Some(x) = &mut self.extra {
            kept.extend(x.more.drain(..).filter(|e| keep(e)));
        }
        self.first = kept.pop_front();
        if let Some(x) = &mut self.extra {
            x.more = kept;
        }
        self.shrink();
    }

    pub(super) fn clear_entries(&mut self) {
        self.first = None;
        if let Some(x) = &mut self.extra {
            x.more = VecDeque::new();
        }
        self.shrink();
    }

    /// Give the out-of-line part back when it holds nothing.
    fn shrink(&mut self) {
        if self
            .extra
            .as_ref()
            .is_some_and(|x| x.more.is_empty() && x.cooldown.is_none())
        {
            self.extra = None;
        }
    }
}

pub(super) fn add_entry(
    state: &mut KeyState,
    ev: &Event,
    weight: u64,
    distinct: bool,
    ctx: &mut EventCtx,
) {
    if distinct {
        // One entry per value, at its latest time: the window then holds at most `threshold`.
        state.retain(|e| e.weight != weight);
    }
    let with_evidence = state.iter().filter(|e| !e.evidence.is_empty()).count() < MAX_EVIDENCE;
    let evidence = match with_evidence {
        true => pack_evidence(ev, ctx.sources.intern(&ev.source)),
        false => Box::default(),
    };
    state.insert(Entry {
        ts: ev.ts,
        weight,
        evidence,
    });
}

/// Count, sum or distinct count of entries in `(from, to]`.
pub(super) fn window_value(entries: &KeyState, from: i64, to: i64, distinct: bool) -> u64 {
    let in_window = entries.iter().filter(|e| e.ts > from && e.ts <= to);
    if distinct {
        in_window.count() as u64
    } else {
        in_window.fold(0u64, |sum, e| sum.saturating_add(e.weight))
    }
}

/// A key's state as a snapshot holds it: its entries in time order and its cooldown.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct KeyStateSnap {
    /// (time, weight, packed evidence) per entry.
    entries: Vec<(i64, u64, Bytes)>,
    /// (until, severity alerted, over): see [`Cooldown`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cooldown: Option<(i64, String, bool)>,
}

impl KeyState {
    pub(super) fn snapshot(&self) -> KeyStateSnap {
        KeyStateSnap {
            entries: self
                .iter()
                .map(|e| (e.ts, e.weight, Bytes(e.evidence.clone())))
                .collect(),
            cooldown: self
                .cooldown()
                .map(|c| (c.until, severity_name(c.alerted), c.over)),
        }
    }

    /// The state laid out as the running code leaves it: the oldest entry inline, the rest
    /// and a cooldown out of line, nothing out of line when there is neither.
    pub(super) fn restore(snap: KeyStateSnap) -> Result<KeyState, SnapshotError> {
        if snap.entries.windows(2).any(|w| w[0].0 > w[1].0) {
            return Err(invalid("a key's entries are out of time order"));
        }
        let cooldown = match snap.cooldown {
            Some((until, alerted, over)) => Some(Cooldown {
                until,
                alerted: severity_of(&alerted)?,
                over,
            }),
            None => None,
        };
        let mut entries = snap
            .entries
            .into_iter()
            .map(|(ts, weight, evidence)| Entry {
                ts,
                weight,
                evidence: evidence.0,
            });
        let first = entries.next();
        let more: VecDeque<Entry> = entries.collect();
        let extra =
            (!more.is_empty() || cooldown.is_some()).then(|| Box::new(Extra { more, cooldown }));
        Ok(KeyState { first, extra })
    }
}

#[cfg(test)]
mod size_guard {
    /// The flood budget (1,000,000 keys in 256 MiB with evidence) rests on these sizes.
    #[test]
    fn per_key_state_stays_small() {
        assert!(size_of::<super::super::key::KeyValue>() <= 24);
        assert!(size_of::<super::KeyState>() <= 40);
        assert!(size_of::<Option<(super::super::key::KeyValue, super::KeyState)>>() <= 64);
    }
}
