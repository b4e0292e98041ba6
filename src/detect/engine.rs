//! A rule's running state and firing: per-key windows (see [`super::window`]), cooldown,
//! escalation, the key cap, and silence (see [`super::silence`]).

use std::hash::{Hash, Hasher};

use foldhash::fast::{FixedState, SeedableRandomState};

use super::evidence::{MAX_EVIDENCE, MAX_EVIDENCE_RAW, unpack_evidence};
use super::key::{KeySnap, KeyValue, ip_key, key_of};
use super::raise::{AlertBuilder, fill};
use super::rules::{FieldValue, Primitive, Rule};
use super::silence::{SilenceSnap, SilenceTracker};
use super::slab::{KeyedSlab, SlabSnap};
use super::snapshot::{SnapshotError, counter, invalid};
use super::sources::Sources;
use super::window::{Cooldown, Entry, KeyState, KeyStateSnap, add_entry, window_value};
use crate::alert::{Alert, Evidence, Severity};
use crate::event::Event;

/// What the engine needs from the detector for one event.
pub(crate) struct EventCtx<'a> {
    pub sources: &'a mut Sources,
    pub tz: &'a jiff::tz::TimeZone,
    /// Attempts this event counts for (1 unless the rule counts attempts).
    pub attempts: u64,
    /// True when the event arrived behind the watermark.
    pub late: bool,
    /// The current watermark (µs).
    pub watermark: i64,
}

/// A rule's running state.
pub(crate) struct RuleEngine {
    pub(crate) rule: Rule,
    cap: usize,
    keys: KeyedSlab<KeyValue, KeyState>,
    silence: SilenceTracker,
    overflow_reported: bool,
    /// Reused for numeric keys.
    scratch: String,
    /// Hashes a `distinct` rule's values: the hashes are the counted values themselves, so
    /// its seed is part of the state (a snapshot keeps it; see `detect::snapshot`).
    distinct_hasher: FixedState,
    pub(crate) evicted: u64,
}

impl RuleEngine {
    pub(crate) fn new(
        rule: Rule,
        cap: usize,
        hasher: SeedableRandomState,
        distinct_hasher: FixedState,
    ) -> RuleEngine {
        RuleEngine {
            cap: rule.max_keys.unwrap_or(cap).max(1),
            rule,
            keys: KeyedSlab::new(hasher.clone()),
            silence: SilenceTracker::new(hasher),
            overflow_reported: false,
            scratch: String::new(),
            distinct_hasher,
            evicted: 0,
        }
    }

    /// The rule's key cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    pub(crate) fn live_keys(&self) -> usize {
        self.keys.len() + self.silence.len()
    }

    /// Feed one event (already known to pass `rule.selects`).
    pub(crate) fn observe(&mut self, ev: &Event, ctx: &mut EventCtx, out: &mut Vec<Alert>) {
        let weight = match &self.rule.primitive {
            Primitive::Silence => {
                self.observe_silence(ev, ctx, out);
                return;
            }
            Primitive::Count if self.rule.attempts => ctx.attempts,
            Primitive::Count | Primitive::Match => 1,
            Primitive::TimeOfDay { from, to } => {
                if !in_time_of_day(ev.ts, ctx.tz, *from, *to) {
                    return;
                }
                1
            }
            Primitive::Sum(field) => match field.get(ev) {
                Some(FieldValue::Number(n)) => n,
                Some(FieldValue::Text(t)) => t.trim().parse().unwrap_or(0),
                // Addresses, times and flags are not amounts (and rules cannot name the last two).
                _ => 0,
            },
            Primitive::Distinct(field) => match field.get(ev) {
                None => 0,
                Some(value) => {
                    let mut h = std::hash::BuildHasher::build_hasher(&self.distinct_hasher);
                    match value {
                        FieldValue::Text(t) => t.hash(&mut h),
                        FieldValue::Number(n) => n.hash(&mut h),
                        FieldValue::Ip(ip) => ip_key(ip, 128).hash(&mut h),
                        FieldValue::Time(t) => t.hash(&mut h),
                        FieldValue::Bool(b) => b.hash(&mut h),
                    }
                    // 0 means "counts nothing"; a value hashing to 0 still counts.
                    h.finish().max(1)
                }
            },
        };
        if weight == 0 {
            return;
        }
        let Some(id) = self.key_slot(ev, out) else {
            return;
        };
        self.count(id, ev, weight, ctx, out);
    }

    /// Find or create the key's slot (evicting the oldest key at the cap).
    fn key_slot(&mut self, ev: &Event, out: &mut Vec<Alert>) -> Option<u32> {
        let prefix = self.rule.ipv6_prefix;
        let mut scratch = std::mem::take(&mut self.scratch);
        let key = key_of(self.rule.key, ev, prefix, &mut scratch)?;
        let hash = self.keys.hash_of(&key);
        let found = self.keys.find_by(hash, |k| k.matches(key));
        let id = match found {
            Some(id) => {
                self.keys.touch(id);
                id
            }
            None => {
                if self.keys.len() >= self.cap {
                    self.evict_oldest(ev, out);
                }
                self.keys.insert(key.to_owned(), KeyState::new())
            }
        };
        self.scratch = scratch;
        Some(id)
    }

    fn evict_oldest(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if let Some(oldest) = self.keys.oldest() {
            self.keys.remove(oldest);
        }
        self.note_evictions(1, ev, out);
    }

    /// Count evicted keys; the first eviction of a rule is alerted.
    fn note_evictions(&mut self, evicted: u64, ev: &Event, out: &mut Vec<Alert>) {
        if evicted == 0 {
            return;
        }
        self.evicted += evicted;
        if !self.overflow_reported {
            self.overflow_reported = true;
            out.push(overflow_alert(&self.rule, self.cap, ev.ts));
        }
    }

    fn count(
        &mut self,
        id: u32,
        ev: &Event,
        weight: u64,
        ctx: &mut EventCtx,
        out: &mut Vec<Alert>,
    ) {
        let rule = &self.rule;
        let t = ev.ts;
        let Some((key, state)) = self.keys.get_mut(id) else {
            return;
        };
        let distinct = matches!(rule.primitive, Primitive::Distinct(_));
        // Escalation still possible in this cooldown?
        let escalation = rule.escalation.as_ref().filter(|e| {
            state
                .cooldown()
                .is_none_or(|c| c.over || c.alerted < e.severity)
        });

        if let Some((until, over)) = state.cooldown().map(|c| (c.until, c.over)) {
            if t < until {
                // Quiet, but a stronger alert may still break through once.
                let Some(esc) = escalation else { return };
                add_entry(state, ev, weight, distinct, ctx);
                state.prune(t.saturating_sub(esc.window.max(rule.window)));
                let value = window_value(state, t.saturating_sub(esc.window), t, distinct);
                if value >= esc.threshold {
                    let alert = build_alert(
                        rule,
                        key,
                        state,
                        ev,
                        t,
                        value,
                        esc.threshold,
                        esc.window,
                        esc.severity,
                        ctx,
                    );
                    state.set_cooldown(Some(Cooldown {
                        until,
                        alerted: esc.severity,
                        over,
                    }));
                    state.clear_entries();
                    out.push(alert);
                }
                return;
            }
            if !over {
                // The cooldown is over: fresh counts. Its end is kept (see `Cooldown::over`).
                state.set_cooldown(Some(Cooldown {
                    until,
                    alerted: state.cooldown().map_or(Severity::Low, |c| c.alerted),
                    over: true,
                }));
                state.clear_entries();
            }
        }

        add_entry(state, ev, weight, distinct, ctx);
        let span = rule
            .escalation
            .as_ref()
            .map_or(rule.window, |e| e.window.max(rule.window));
        let newest = state.newest_ts().unwrap_or(t).max(t);
        state.prune(newest.saturating_sub(span));

        // A late event also completes the windows ending at the key's newest event; an event in
        // order is the newest, so this is one evaluation then.
        let both = [newest, t];
        let ends = if newest > t { &both[..] } else { &both[1..] };
        let check = |end: i64| {
            let escalated = escalation.and_then(|esc| {
                let value = window_value(state, end.saturating_sub(esc.window), end, distinct);
                (value >= esc.threshold).then_some((value, esc.threshold, esc.window, esc.severity))
            });
            escalated.or_else(|| {
                let value = window_value(state, end.saturating_sub(rule.window), end, distinct);
                (value >= rule.threshold).then_some((
                    value,
                    rule.threshold,
                    rule.window,
                    rule.severity,
                ))
            })
        };
        let Some((end, (value, threshold, window, severity))) = ends
            .iter()
            .find_map(|&end| check(end).map(|fired| (end, fired)))
        else {
            return;
        };
        let t = end;
        let alert = build_alert(
            rule, key, state, ev, t, value, threshold, window, severity, ctx,
        );
        out.push(alert);
        let cooldown = rule.cooldown();
        state.set_cooldown((cooldown > 0).then(|| Cooldown {
            until: t.saturating_add(cooldown),
            alerted: severity,
            over: false,
        }));
        let may_escalate = rule
            .escalation
            .as_ref()
            .is_some_and(|e| severity < e.severity && cooldown > 0);
        if !may_escalate {
            state.clear_entries();
        }
    }

    /// Take over the cooldowns of `before`, the same rule under its definition before a reload
    /// (the rest of its state is not carried: its counts were gathered under another
    /// definition). Without this, a rule changed mid-attack (a threshold raised) alerted, and
    /// with `--block` banned, a key again that its cooldown had just quietened. Only when both
    /// key the same way, so that a key means the same thing; at most this engine's cap of keys.
    pub(crate) fn carry_cooldowns(&mut self, before: &RuleEngine) {
        if before.rule.key != self.rule.key || before.rule.ipv6_prefix != self.rule.ipv6_prefix {
            return;
        }
        before.keys.for_each(|key, state| {
            let Some(cooldown) = state.cooldown() else {
                return;
            };
            if self.keys.len() >= self.cap {
                return;
            }
            let mut quiet = KeyState::new();
            quiet.set_cooldown(Some(Cooldown {
                until: cooldown.until,
                alerted: cooldown.alerted,
                over: cooldown.over,
            }));
            self.keys.insert(key.clone(), quiet);
        });
    }

    /// Free keys whose windows and cooldowns have all passed.
    pub(crate) fn expire(&mut self, watermark: i64) {
        let horizon = self.rule.horizon();
        while let Some(oldest) = self.keys.oldest() {
            let Some((_, state)) = self.keys.get(oldest) else {
                break;
            };
            let idle_since = state.newest_ts().unwrap_or(i64::MIN);
            // A cooldown is kept a horizon past its end: an attempt from inside it may still
            // be decided behind the watermark (released when its session's next line
            // arrives), and must find the key quiet then, not freed and counting afresh,
            // whenever the watermark happened to move past it (which depends on other keys'
            // lines, and on a bus worker's partition).
            let cooling = state
                .cooldown()
                .is_some_and(|c| c.until > watermark.saturating_sub(horizon));
            if cooling || idle_since > watermark.saturating_sub(horizon) {
                break;
            }
            self.keys.remove(oldest);
        }
    }

    // -------------------------------------------------------------------------------------
    // Silence.

    fn observe_silence(&mut self, ev: &Event, ctx: &mut EventCtx, out: &mut Vec<Alert>) {
        let prefix = self.rule.ipv6_prefix;
        let mut scratch = std::mem::take(&mut self.scratch);
        if let Some(key) = key_of(self.rule.key, ev, prefix, &mut scratch) {
            let source = ctx.sources.intern(&ev.source);
            // A late event whose silence would already be decided changes nothing.
            let decided_before = ctx.late.then_some(ctx.watermark);
            let evicted =
                self.silence
                    .observe(key, ev, source, self.rule.window, decided_before, self.cap);
            self.note_evictions(evicted, ev, out);
        }
        self.scratch = scratch;
    }

    /// Fire silence for every key whose deadline is before `now` (the watermark, or the last
    /// event time at end of input).
    pub(crate) fn fire_silence(&mut self, now: i64, sources: &Sources, out: &mut Vec<Alert>) {
        self.silence.fire(now, &self.rule, sources, out);
    }

    /// End of input: alert what the silence storm guard still holds.
    pub(crate) fn finish_silence(&mut self, sources: &Sources, out: &mut Vec<Alert>) {
        self.silence.finish(&self.rule, sources, out);
    }

    /// Every evidence blob this rule holds (to find the source names still referenced).
    pub(crate) fn for_each_evidence(&self, mut f: impl FnMut(&[u8])) {
        self.keys.for_each(|_, state| {
            for entry in state.iter() {
                f(&entry.evidence);
            }
        });
        self.silence.for_each_evidence(f);
    }
}

/// A rule's running state as a snapshot holds it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct EngineSnap {
    /// The rule's id, checked on restore against the rule in the same place.
    rule: String,
    keys: SlabSnap<KeySnap, KeyStateSnap>,
    silence: SilenceSnap,
    overflow_reported: bool,
    evicted: u64,
}

impl RuleEngine {
    pub(super) fn snapshot(&self) -> EngineSnap {
        EngineSnap {
            rule: self.rule.id.clone(),
            keys: self.keys.snapshot(KeyValue::snapshot, KeyState::snapshot),
            silence: self.silence.snapshot(),
            overflow_reported: self.overflow_reported,
            evicted: self.evicted,
        }
    }

    /// Put back the state of a snapshot into an engine just made for the same rule.
    pub(super) fn restore(
        &mut self,
        snap: EngineSnap,
        hasher: SeedableRandomState,
        distinct_hasher: FixedState,
    ) -> Result<(), SnapshotError> {
        if snap.rule != self.rule.id {
            return Err(invalid(format!(
                "state of rule {:?} where rule {:?} runs",
                snap.rule, self.rule.id
            )));
        }
        self.keys = KeyedSlab::restore(
            snap.keys,
            hasher.clone(),
            |k| Ok(KeyValue::restore(k)),
            KeyState::restore,
        )?;
        self.silence = SilenceTracker::restore(snap.silence, hasher)?;
        self.overflow_reported = snap.overflow_reported;
        self.evicted = counter("evicted keys", snap.evicted)?;
        self.distinct_hasher = distinct_hasher;
        Ok(())
    }
}

fn in_time_of_day(ts: i64, tz: &jiff::tz::TimeZone, from: u32, to: u32) -> bool {
    let offset = match jiff::Timestamp::from_microsecond(ts) {
        Ok(t) => i64::from(tz.to_offset(t).seconds()),
        Err(_) => 0,
    };
    let local = (ts.div_euclid(1_000_000) + offset).rem_euclid(86_400) as u32;
    if from <= to {
        from <= local && local < to
    } else {
        local >= from || local < to
    }
}

#[allow(clippy::too_many_arguments)]
fn build_alert(
    rule: &Rule,
    key: &KeyValue,
    state: &KeyState,
    ev: &Event,
    // The end of the window that crossed the threshold (the event's time unless it came late).
    t: i64,
    value: u64,
    threshold: u64,
    window: i64,
    severity: Severity,
    ctx: &EventCtx,
) -> Alert {
    let key_text = key.display(rule.ipv6_prefix);
    let window_start = t.saturating_sub(window);
    let in_window: Vec<&Entry> = state
        .iter()
        .filter(|e| e.ts > window_start && e.ts <= t)
        .collect();
    let first_seen = in_window.first().map_or(t, |e| e.ts);
    let last_seen = in_window.iter().map(|e| e.ts).max().unwrap_or(t);
    let mut evidence: Vec<Evidence> = in_window
        .iter()
        .filter(|e| !e.evidence.is_empty())
        .map(|e| unpack_evidence(&e.evidence, e.ts, ctx.sources))
        .collect();
    let trigger_listed = evidence
        .iter()
        .any(|e| e.ts == ev.ts && e.line == ev.line && *e.source == *ev.source);
    if evidence.len() >= MAX_EVIDENCE || !trigger_listed {
        evidence.truncate(MAX_EVIDENCE - 1);
        if !trigger_listed {
            let raw = &ev.raw[..ev.raw.len().min(MAX_EVIDENCE_RAW)];
            evidence.push(Evidence {
                source: ev.source.clone(),
                line: ev.line,
                ts: ev.ts,
                raw: raw.into(),
                seq: ev.seq,
            });
        }
    }
    let summary_template = if rule.summary.is_empty() {
        "{field} {key}: {count} (threshold {threshold}) in {window}"
    } else {
        &rule.summary
    };
    let window_start = match rule.primitive {
        // A single event is its own window.
        Primitive::Match | Primitive::TimeOfDay { .. } if value <= 1 => t,
        _ => window_start,
    };
    let summary = fill(
        summary_template,
        &key_text,
        value,
        threshold,
        window,
        rule.key.name(),
    );
    let actions = rule.actions_for(key.ip());
    AlertBuilder::for_rule(rule, key_text)
        .severity(severity)
        .counted(value, threshold)
        .window(window_start, t)
        .seen(first_seen, last_seen)
        .summary(summary)
        .evidence(evidence)
        .actions(actions)
        .build()
}

/// `secpipe.state_overflow`: a rule hit its key cap and started evicting its oldest keys.
fn overflow_alert(rule: &Rule, cap: usize, ts: i64) -> Alert {
    let summary = format!(
        "rule {} reached its cap of {cap} keys; the oldest keys are being evicted, so \
         detection for them restarts (a flood of distinct {} values?)",
        rule.id,
        rule.key.name()
    );
    AlertBuilder::internal(
        "secpipe.state_overflow",
        "rule",
        rule.id.clone(),
        Severity::High,
    )
    .counted(cap as u64, cap as u64)
    .window(ts, ts)
    .seen(ts, ts)
    .summary(summary)
    .build()
}
