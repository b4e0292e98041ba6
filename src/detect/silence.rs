//! Silence: keys (hosts, by default) that stopped logging, decided by the watermark.
//!
//! Host names are attacker-controlled: one line per invented name costs an attacker a few
//! bytes, and each would become a HIGH alert ten minutes later. Two defences live here:
//!
//! - **Newcomers are evicted first.** A key is a *newcomer* until its events span
//!   [`ESTABLISHED_AFTER`] of event time, then it is *established*. At the rule's key cap the
//!   least recently seen newcomer goes first; an established key is evicted only when no
//!   newcomer is left. A flood of one-line hosts therefore churns among itself and leaves the
//!   silence state of hosts that have logged for a while alone.
//! - **A storm is one alert.** Per rule, at most [`STORM_INDIVIDUAL`] silences are alerted one
//!   by one per window-long period of deadlines (periods aligned to multiples of the window, so
//!   a replay cuts them where the live run did). Further silences of the same period fold into
//!   one alert with their count and the first [`STORM_SAMPLE`] keys in (deadline, key) order,
//!   emitted when the period's last deadline has passed, or at end of input.
//!
//! Memory: one entry per key (its last line as evidence), never more than the cap; the heap of
//! deadlines holds at most one live entry per key plus entries left stale by re-arming, which
//! are dropped as they surface. Deciding a million deadlines at once keeps only the keys that
//! can still be alerted or named (a bounded selection), never a million alerts.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::evidence::{repack, unpack_evidence};
use super::key::{KeyRef, KeySnap, KeyValue};
use super::raise::{AlertBuilder, fill};
use super::rules::{Rule, fmt_duration};
use super::slab::{KeyedSlab, SlabSnap};
use super::snapshot::{Bytes, SnapshotError, counter};
use super::sources::Sources;
use crate::alert::Alert;
use crate::event::Event;

/// A key is established once its events span this much event time (µs).
pub(crate) const ESTABLISHED_AFTER: i64 = 60 * 1_000_000;

/// Silences alerted one by one per rule and window-long period of deadlines.
pub(crate) const STORM_INDIVIDUAL: usize = 20;

/// Keys named (with their last line as evidence) in a storm alert.
pub(crate) const STORM_SAMPLE: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Newcomer,
    Established,
}

/// What silence knows of one key.
pub(crate) struct SilenceState {
    first_ts: i64,
    last_ts: i64,
    /// The key's last line, as packed evidence (buffer reused from event to event).
    last_evidence: Vec<u8>,
}

/// One silence rule's keys and deadlines.
pub(crate) struct SilenceTracker {
    newcomers: KeyedSlab<KeyValue, SilenceState>,
    established: KeyedSlab<KeyValue, SilenceState>,
    /// (deadline, tier, slot): min-heap of deadlines; stale entries are skipped or re-armed.
    deadlines: BinaryHeap<Reverse<(i64, Tier, u32)>>,
    storm: Storm,
}

/// Silences of the current period beyond the individual ones.
#[derive(Default)]
struct Storm {
    /// Start of the period of deadlines being counted.
    period: Option<i64>,
    alerted: usize,
    folded: u64,
    sample: Vec<(KeyValue, SilenceState)>,
    first_seen: i64,
    last_seen: i64,
    last_deadline: i64,
}

/// A decided silence, ordered by key for the deterministic tie-break among equal deadlines.
struct Due(KeyValue, SilenceState);

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.as_ref().cmp_key(&other.0.as_ref())
    }
}

impl SilenceTracker {
    pub(crate) fn new(hasher: foldhash::fast::SeedableRandomState) -> Self {
        SilenceTracker {
            newcomers: KeyedSlab::new(hasher.clone()),
            established: KeyedSlab::new(hasher),
            deadlines: BinaryHeap::new(),
            storm: Storm::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.newcomers.len() + self.established.len()
    }

    fn slab(&mut self, tier: Tier) -> &mut KeyedSlab<KeyValue, SilenceState> {
        match tier {
            Tier::Newcomer => &mut self.newcomers,
            Tier::Established => &mut self.established,
        }
    }

    /// Note an event of `key`. `decided_before`: a key first seen by a late event whose
    /// silence would have been decided before this time changes nothing. Returns how many
    /// keys were evicted to stay within `cap`.
    pub(crate) fn observe(
        &mut self,
        key: KeyRef<'_>,
        ev: &Event,
        source: u32,
        window: i64,
        decided_before: Option<i64>,
        cap: usize,
    ) -> u64 {
        // Both slabs share one hasher, so one hash serves both lookups.
        let hash = self.established.hash_of(&key);
        if let Some(id) = self.established.find_by(hash, |k| k.matches(key)) {
            self.established.touch(id);
            if let Some((_, state)) = self.established.get_mut(id) {
                state.note(ev, source);
            }
            return 0;
        }
        if let Some(id) = self.newcomers.find_by(hash, |k| k.matches(key)) {
            self.newcomers.touch(id);
            let promote = match self.newcomers.get_mut(id) {
                Some((_, state)) => {
                    state.note(ev, source);
                    state.last_ts.saturating_sub(state.first_ts) >= ESTABLISHED_AFTER
                }
                None => false,
            };
            if promote && let Some((key, state)) = self.newcomers.remove(id) {
                let deadline = state.last_ts.saturating_add(window);
                let id = self.established.insert(key, state);
                self.deadlines
                    .push(Reverse((deadline, Tier::Established, id)));
            }
            return 0;
        }
        if decided_before.is_some_and(|t| ev.ts.saturating_add(window) < t) {
            return 0;
        }
        let mut evicted = 0;
        while self.len() >= cap.max(1) {
            let victim = match self.newcomers.oldest() {
                Some(id) => (Tier::Newcomer, id),
                None => match self.established.oldest() {
                    Some(id) => (Tier::Established, id),
                    None => break,
                },
            };
            self.slab(victim.0).remove(victim.1);
            evicted += 1;
        }
        let mut last_evidence = Vec::new();
        repack(&mut last_evidence, ev, source);
        let id = self.newcomers.insert(
            key.to_owned(),
            SilenceState {
                first_ts: ev.ts,
                last_ts: ev.ts,
                last_evidence,
            },
        );
        self.deadlines
            .push(Reverse((ev.ts.saturating_add(window), Tier::Newcomer, id)));
        evicted
    }

    /// Decide every silence whose deadline is before `now` (the watermark, or the last event
    /// time at end of input), in (deadline, key) order, through the storm guard.
    pub(crate) fn fire(&mut self, now: i64, rule: &Rule, sources: &Sources, out: &mut Vec<Alert>) {
        let window = rule.window;
        while let Some(&Reverse((deadline, _, _))) = self.deadlines.peek() {
            if deadline >= now {
                break;
            }
            self.storm.enter(deadline, rule, sources, out);
            let room = self.storm.room();
            // The `room` smallest keys of this deadline, largest on top; the others are only
            // counted.
            let mut chosen: BinaryHeap<Due> = BinaryHeap::new();
            while let Some(&Reverse((at, tier, id))) = self.deadlines.peek() {
                if at != deadline {
                    break;
                }
                self.deadlines.pop();
                let slab = self.slab(tier);
                let Some((_, state)) = slab.get(id) else {
                    continue;
                };
                let actual = state.last_ts.saturating_add(window);
                if actual != deadline {
                    if actual > deadline {
                        // Seen again since: re-arm at its real deadline.
                        self.deadlines.push(Reverse((actual, tier, id)));
                    }
                    continue;
                }
                let Some((key, state)) = slab.remove(id) else {
                    continue;
                };
                chosen.push(Due(key, state));
                if chosen.len() > room
                    && let Some(Due(_, dropped)) = chosen.pop()
                {
                    self.storm.count(&dropped, deadline);
                }
            }
            for Due(key, state) in chosen.into_sorted_vec() {
                self.storm.admit(key, state, deadline, rule, sources, out);
            }
        }
        if self
            .storm
            .period
            .is_some_and(|start| start.saturating_add(window.max(1)) <= now)
        {
            self.storm.flush(rule, sources, out);
        }
    }

    /// End of input: alert what the storm guard still holds.
    pub(crate) fn finish(&mut self, rule: &Rule, sources: &Sources, out: &mut Vec<Alert>) {
        self.storm.flush(rule, sources, out);
    }

    /// Every held evidence blob (to find which source names are still referenced).
    pub(crate) fn for_each_evidence(&self, mut f: impl FnMut(&[u8])) {
        self.newcomers.for_each(|_, state| f(&state.last_evidence));
        self.established
            .for_each(|_, state| f(&state.last_evidence));
        for (_, state) in &self.storm.sample {
            f(&state.last_evidence);
        }
    }
}

impl SilenceState {
    fn note(&mut self, ev: &Event, source: u32) {
        if ev.ts >= self.last_ts {
            self.last_ts = ev.ts;
            repack(&mut self.last_evidence, ev, source);
        }
        // A late event extends how long the key has been logging.
        self.first_ts = self.first_ts.min(ev.ts);
    }
}

impl Storm {
    /// Start counting the period of `deadline` (alerting the previous one's fold first).
    fn enter(&mut self, deadline: i64, rule: &Rule, sources: &Sources, out: &mut Vec<Alert>) {
        let width = rule.window.max(1);
        let start = deadline.div_euclid(width).saturating_mul(width);
        if self.period != Some(start) {
            self.flush(rule, sources, out);
            self.period = Some(start);
        }
    }

    /// Keys of the next deadline worth keeping: alerted one by one, or named in the fold.
    fn room(&self) -> usize {
        STORM_INDIVIDUAL.saturating_sub(self.alerted)
            + STORM_SAMPLE.saturating_sub(self.sample.len())
    }

    fn admit(
        &mut self,
        key: KeyValue,
        state: SilenceState,
        deadline: i64,
        rule: &Rule,
        sources: &Sources,
        out: &mut Vec<Alert>,
    ) {
        if self.alerted < STORM_INDIVIDUAL {
            self.alerted += 1;
            out.push(silence_alert(rule, &key, &state, deadline, sources));
            return;
        }
        self.count(&state, deadline);
        if self.sample.len() < STORM_SAMPLE {
            self.sample.push((key, state));
        }
    }

    /// A silence folded into the storm alert.
    fn count(&mut self, state: &SilenceState, deadline: i64) {
        if self.folded == 0 {
            self.first_seen = state.last_ts;
            self.last_seen = state.last_ts;
        }
        self.folded += 1;
        self.first_seen = self.first_seen.min(state.last_ts);
        self.last_seen = self.last_seen.max(state.last_ts);
        self.last_deadline = self.last_deadline.max(deadline);
    }

    /// Alert the fold of the current period, if any, and start afresh.
    fn flush(&mut self, rule: &Rule, sources: &Sources, out: &mut Vec<Alert>) {
        let storm = std::mem::take(self);
        let Some(period) = storm.period else { return };
        if storm.folded == 0 {
            return;
        }
        out.push(storm.alert(period, rule, sources));
    }

    fn alert(&self, period: i64, rule: &Rule, sources: &Sources) -> Alert {
        let field = rule.key.name();
        let names: Vec<String> = self
            .sample
            .iter()
            .map(|(key, _)| key.display(rule.ipv6_prefix))
            .collect();
        let more = self.folded.saturating_sub(names.len() as u64);
        let summary = format!(
            "{} more {field} values have logged nothing for {} (silences due by {}): past {} \
             alerts in one {} they are counted here, not alerted one by one; first: {}{}",
            self.folded,
            fmt_duration(rule.window),
            crate::event::format_ts(self.last_deadline),
            STORM_INDIVIDUAL,
            fmt_duration(rule.window),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
        );
        let evidence = self
            .sample
            .iter()
            .map(|(_, state)| unpack_evidence(&state.last_evidence, state.last_ts, sources))
            .collect();
        // One alert for many keys: its key is `*`, and it carries no action.
        AlertBuilder::for_rule(rule, "*".to_string())
            .counted(self.folded, STORM_INDIVIDUAL as u64)
            .window(period, self.last_deadline)
            .seen(self.first_seen, self.last_seen)
            .summary(summary)
            .evidence(evidence)
            .build()
    }
}

/// A silence rule's state as a snapshot holds it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SilenceSnap {
    newcomers: SlabSnap<KeySnap, SilenceStateSnap>,
    established: SlabSnap<KeySnap, SilenceStateSnap>,
    /// (deadline, established, slot): slots as the stores keep them.
    deadlines: Vec<(i64, bool, u32)>,
    storm: StormSnap,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SilenceStateSnap {
    first_ts: i64,
    last_ts: i64,
    last_evidence: Bytes,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StormSnap {
    period: Option<i64>,
    alerted: usize,
    folded: u64,
    sample: Vec<(KeySnap, SilenceStateSnap)>,
    first_seen: i64,
    last_seen: i64,
    last_deadline: i64,
}

impl SilenceState {
    fn snapshot(&self) -> SilenceStateSnap {
        SilenceStateSnap {
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            last_evidence: Bytes(self.last_evidence.clone().into_boxed_slice()),
        }
    }

    fn restore(snap: SilenceStateSnap) -> SilenceState {
        SilenceState {
            first_ts: snap.first_ts,
            last_ts: snap.last_ts,
            last_evidence: snap.last_evidence.0.into_vec(),
        }
    }
}

impl SilenceTracker {
    pub(crate) fn snapshot(&self) -> SilenceSnap {
        let storm = &self.storm;
        SilenceSnap {
            newcomers: self
                .newcomers
                .snapshot(KeyValue::snapshot, SilenceState::snapshot),
            established: self
                .established
                .snapshot(KeyValue::snapshot, SilenceState::snapshot),
            deadlines: self
                .deadlines
                .iter()
                .map(|Reverse((at, tier, id))| (*at, *tier == Tier::Established, *id))
                .collect(),
            storm: StormSnap {
                period: storm.period,
                alerted: storm.alerted,
                folded: storm.folded,
                sample: storm
                    .sample
                    .iter()
                    .map(|(k, s)| (k.snapshot(), s.snapshot()))
                    .collect(),
                first_seen: storm.first_seen,
                last_seen: storm.last_seen,
                last_deadline: storm.last_deadline,
            },
        }
    }

    /// The tracker a snapshot holds. The deadline heap is rebuilt from its entries: equal
    /// entries are identical, so its pop order does not depend on its layout. A deadline whose
    /// slot is empty is skipped when due, as one whose key was evicted is.
    pub(crate) fn restore(
        snap: SilenceSnap,
        hasher: foldhash::fast::SeedableRandomState,
    ) -> Result<SilenceTracker, SnapshotError> {
        let key = |k| Ok(KeyValue::restore(k));
        let state = |s| Ok(SilenceState::restore(s));
        let storm = snap.storm;
        Ok(SilenceTracker {
            newcomers: KeyedSlab::restore(snap.newcomers, hasher.clone(), key, state)?,
            established: KeyedSlab::restore(snap.established, hasher, key, state)?,
            deadlines: snap
                .deadlines
                .into_iter()
                .map(|(at, established, id)| {
                    let tier = match established {
                        true => Tier::Established,
                        false => Tier::Newcomer,
                    };
                    Reverse((at, tier, id))
                })
                .collect(),
            storm: Storm {
                period: storm.period,
                alerted: counter("silences alerted", storm.alerted as u64)? as usize,
                folded: counter("silences folded", storm.folded)?,
                sample: storm
                    .sample
                    .into_iter()
                    .map(|(k, s)| (KeyValue::restore(k), SilenceState::restore(s)))
                    .collect(),
                first_seen: storm.first_seen,
                last_seen: storm.last_seen,
                last_deadline: storm.last_deadline,
            },
        })
    }
}

fn silence_alert(
    rule: &Rule,
    key: &KeyValue,
    state: &SilenceState,
    deadline: i64,
    sources: &Sources,
) -> Alert {
    let key_text = key.display(rule.ipv6_prefix);
    let template = if rule.summary.is_empty() {
        "{field} {key} has logged nothing for {window}"
    } else {
        &rule.summary
    };
    let summary = fill(template, &key_text, 0, 0, rule.window, rule.key.name());
    let evidence = vec![unpack_evidence(
        &state.last_evidence,
        state.last_ts,
        sources,
    )];
    let actions = rule.actions_for(key.ip());
    AlertBuilder::for_rule(rule, key_text)
        .counted(0, 0)
        .window(state.last_ts, deadline)
        .seen(state.last_ts, state.last_ts)
        .summary(summary)
        .evidence(evidence)
        .actions(actions)
        .build()
}
