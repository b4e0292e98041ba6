//! Per-rule state and firing: sliding windows per key, cooldown, escalation, the key cap, and
//! silence deadlines.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use foldhash::fast::SeedableRandomState;
use sha2::{Digest, Sha256};

use super::rules::{Field, FieldValue, Primitive, Rule, fmt_duration};
use super::silence::SilenceTracker;
use super::slab::KeyedSlab;
use crate::alert::{Alert, Evidence, Severity};
use crate::event::{Event, canonical_ip};

/// Evidence events kept per alert.
pub(crate) const MAX_EVIDENCE: usize = 10;
/// Evidence keeps at most this many bytes of a line (the archive keeps the whole line); a flood of
/// 64 KiB lines must not multiply into gigabytes of held evidence.
pub(crate) const MAX_EVIDENCE_RAW: usize = 4096;

/// A key value, compact: addresses as 16 bytes (IPv4 as `::ffff:a.b.c.d`, IPv6 already cut to
/// the rule's prefix), everything else as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyValue {
    Ip([u8; 16]),
    Text(Box<str>),
}

/// A key value borrowed from an event, for lookups that allocate nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyRef<'a> {
    Ip([u8; 16]),
    Text(&'a str),
}

// KeyValue and KeyRef must hash identically: lookups hash a KeyRef, the index rehashes KeyValues.
impl Hash for KeyValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            KeyRef::Ip(bytes) => {
                state.write_u8(0);
                state.write(bytes);
            }
            KeyRef::Text(text) => {
                state.write_u8(1);
                state.write(text.as_bytes());
            }
        }
    }
}

impl KeyValue {
    pub(super) fn as_ref(&self) -> KeyRef<'_> {
        match self {
            KeyValue::Ip(bytes) => KeyRef::Ip(*bytes),
            KeyValue::Text(text) => KeyRef::Text(text),
        }
    }

    pub(super) fn matches(&self, other: KeyRef<'_>) -> bool {
        match (self, other) {
            (KeyValue::Ip(a), KeyRef::Ip(b)) => *a == b,
            (KeyValue::Text(a), KeyRef::Text(b)) => **a == *b,
            _ => false,
        }
    }

    /// The key as users read it: `203.0.113.7`, `2001:db8::/64`, `alice`.
    pub(crate) fn display(&self, ipv6_prefix: u8) -> String {
        match self {
            KeyValue::Ip(bytes) => {
                let v6 = Ipv6Addr::from(*bytes);
                match v6.to_ipv4_mapped() {
                    Some(v4) => v4.to_string(),
                    None if ipv6_prefix < 128 => format!("{v6}/{ipv6_prefix}"),
                    None => v6.to_string(),
                }
            }
            KeyValue::Text(text) => text.to_string(),
        }
    }
}

impl KeyRef<'_> {
    pub(super) fn to_owned(self) -> KeyValue {
        match self {
            KeyRef::Ip(bytes) => KeyValue::Ip(bytes),
            KeyRef::Text(text) => KeyValue::Text(text.into()),
        }
    }
}

/// The 16-byte key of an address: IPv4 mapped, IPv6 cut to `prefix` bits.
fn ip_key(ip: IpAddr, prefix: u8) -> [u8; 16] {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = match prefix {
                0 => 0,
                p if p >= 128 => u128::MAX,
                p => u128::MAX << (128 - u32::from(p)),
            };
            (bits & mask).to_be_bytes()
        }
    }
}

/// Interned input names, so evidence holds a small number instead of a shared pointer.
///
/// Ids are handed out in processing order, so they are deterministic; the map is only looked
/// into, never iterated. A syslog listener makes one input per connection, so names that no
/// held evidence refers to any more are swept out (see [`Sources::wants_sweep`]); their ids are
/// reused.
pub(crate) struct Sources {
    names: Vec<Option<Arc<str>>>,
    ids: hashbrown::HashMap<Arc<str>, u32, SeedableRandomState>,
    free: Vec<u32>,
    last: Option<(Arc<str>, u32)>,
    /// Names held after the last sweep.
    kept_at_sweep: usize,
}

/// Names interned before the first sweep is considered.
const SWEEP_AFTER: usize = 4096;

impl Sources {
    pub(crate) fn new(hasher: SeedableRandomState) -> Self {
        Sources {
            names: Vec::new(),
            ids: hashbrown::HashMap::with_hasher(hasher),
            free: Vec::new(),
            last: None,
            kept_at_sweep: 0,
        }
    }

    pub(crate) fn intern(&mut self, source: &Arc<str>) -> u32 {
        if let Some((name, id)) = &self.last
            && (Arc::ptr_eq(name, source) || **name == **source)
        {
            return *id;
        }
        let id = match self.ids.get(source) {
            Some(&id) => id,
            None => {
                let id = match self.free.pop() {
                    Some(id) => {
                        self.names[id as usize] = Some(source.clone());
                        id
                    }
                    None => {
                        self.names.push(Some(source.clone()));
                        (self.names.len() - 1) as u32
                    }
                };
                self.ids.insert(source.clone(), id);
                id
            }
        };
        self.last = Some((source.clone(), id));
        id
    }

    fn name(&self, id: u32) -> Arc<str> {
        self.names
            .get(id as usize)
            .and_then(Clone::clone)
            .unwrap_or_else(|| Arc::from("?"))
    }

    /// Names held.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Time to sweep: twice as many names as the last sweep kept (and at least
    /// [`SWEEP_AFTER`]), so sweeping costs O(1) per interned name, amortized.
    pub(crate) fn wants_sweep(&self) -> bool {
        self.ids.len() >= SWEEP_AFTER.max(self.kept_at_sweep.saturating_mul(2))
    }

    /// Forget every name whose id `in_use` does not mark (the most recent name is kept).
    pub(crate) fn sweep(&mut self, in_use: &[bool]) {
        let last = self.last.as_ref().map(|(_, id)| *id);
        for (id, slot) in self.names.iter_mut().enumerate() {
            let id = id as u32;
            if in_use.get(id as usize).copied().unwrap_or(false) || Some(id) == last {
                continue;
            }
            if let Some(name) = slot.take() {
                self.ids.remove(&name);
                self.free.push(id);
            }
        }
        self.kept_at_sweep = self.ids.len();
        if self.ids.len() < self.ids.capacity() / 4 {
            self.ids.shrink_to_fit();
        }
    }

    /// Slots of ids handed out so far (the size of an `in_use` mark).
    pub(crate) fn id_bound(&self) -> usize {
        self.names.len()
    }
}

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
fn pack_evidence(ev: &Event, source: u32) -> Box<[u8]> {
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

/// One counted event in a key's window.
struct Entry {
    ts: i64,
    /// Attempts, the summed field, or (distinct) a hash of the value.
    weight: u64,
    /// Packed evidence; empty (no allocation) once a window already holds enough.
    evidence: Box<[u8]>,
}

/// Per-key state of a windowed rule, 40 bytes (a flood creates a million of them): the oldest
/// entry inline, everything rarer (more entries, a cooldown after an alert) out of line.
struct KeyState {
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

struct Cooldown {
    /// The key is quiet until this time (µs).
    until: i64,
    /// Severity of the last alert in this cooldown.
    alerted: Severity,
}

impl KeyState {
    fn new() -> Self {
        KeyState {
            first: None,
            extra: None,
        }
    }

    /// Entries in time order.
    fn iter(&self) -> impl Iterator<Item = &Entry> {
        let more = self.extra.as_ref().map(|x| x.more.iter());
        self.first.iter().chain(more.into_iter().flatten())
    }

    fn newest_ts(&self) -> Option<i64> {
        let more = self.extra.as_ref().and_then(|x| x.more.back());
        more.or(self.first.as_ref()).map(|e| e.ts)
    }

    fn cooldown(&self) -> Option<&Cooldown> {
        self.extra.as_ref().and_then(|x| x.cooldown.as_ref())
    }

    fn set_cooldown(&mut self, cooldown: Option<Cooldown>) {
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
    fn insert(&mut self, entry: Entry) {
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
    fn prune(&mut self, cutoff: i64) {
        while self.first.as_ref().is_some_and(|e| e.ts <= cutoff) {
            self.first = self.extra.as_mut().and_then(|x| x.more.pop_front());
        }
        self.shrink();
    }

    fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
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

    fn clear_entries(&mut self) {
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
    distinct_hasher: SeedableRandomState,
    pub(crate) evicted: u64,
}

impl RuleEngine {
    pub(crate) fn new(rule: Rule, cap: usize, hasher: SeedableRandomState) -> RuleEngine {
        RuleEngine {
            cap: rule.max_keys.unwrap_or(cap).max(1),
            rule,
            keys: KeyedSlab::new(hasher.clone()),
            silence: SilenceTracker::new(hasher.clone()),
            overflow_reported: false,
            scratch: String::new(),
            distinct_hasher: hasher,
            evicted: 0,
        }
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
        let escalation = rule
            .escalation
            .as_ref()
            .filter(|e| state.cooldown().is_none_or(|c| c.alerted < e.severity));

        if let Some(until) = state.cooldown().map(|c| c.until) {
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
                    }));
                    state.clear_entries();
                    out.push(alert);
                }
                return;
            }
            // The cooldown is over: fresh counts.
            state.set_cooldown(None);
            state.clear_entries();
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
        }));
        let may_escalate = rule
            .escalation
            .as_ref()
            .is_some_and(|e| severity < e.severity && cooldown > 0);
        if !may_escalate {
            state.clear_entries();
        }
    }

    /// Free keys whose windows and cooldowns have all passed.
    pub(crate) fn expire(&mut self, watermark: i64) {
        let horizon = self.rule.horizon();
        while let Some(oldest) = self.keys.oldest() {
            let Some((_, state)) = self.keys.get(oldest) else {
                break;
            };
            let idle_since = state.newest_ts().unwrap_or(i64::MIN);
            let cooling = state.cooldown().is_some_and(|c| c.until > watermark);
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

/// A total order on keys for deterministic tie-breaks.
impl KeyRef<'_> {
    pub(super) fn cmp_key(&self, other: &KeyRef<'_>) -> std::cmp::Ordering {
        match (self, other) {
            (KeyRef::Ip(a), KeyRef::Ip(b)) => a.cmp(b),
            (KeyRef::Text(a), KeyRef::Text(b)) => a.cmp(b),
            (KeyRef::Ip(_), KeyRef::Text(_)) => std::cmp::Ordering::Less,
            (KeyRef::Text(_), KeyRef::Ip(_)) => std::cmp::Ordering::Greater,
        }
    }
}

/// The key of `ev` under `field`, borrowed; numbers are written into `scratch`.
fn key_of<'a>(
    field: Field,
    ev: &'a Event,
    prefix: u8,
    scratch: &'a mut String,
) -> Option<KeyRef<'a>> {
    Some(match field.get(ev)? {
        FieldValue::Ip(ip) => KeyRef::Ip(ip_key(ip, prefix)),
        FieldValue::Text(t) => KeyRef::Text(t),
        FieldValue::Number(n) => {
            use std::fmt::Write;
            scratch.clear();
            let _ = write!(scratch, "{n}");
            KeyRef::Text(scratch.as_str())
        }
    })
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

fn add_entry(state: &mut KeyState, ev: &Event, weight: u64, distinct: bool, ctx: &mut EventCtx) {
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
fn window_value(entries: &KeyState, from: i64, to: i64, distinct: bool) -> u64 {
    let in_window = entries.iter().filter(|e| e.ts > from && e.ts <= to);
    if distinct {
        in_window.count() as u64
    } else {
        in_window.fold(0u64, |sum, e| sum.saturating_add(e.weight))
    }
}

/// Deterministic alert id: hex of SHA-256(rule, key, window start), first 16 bytes.
pub(crate) fn alert_id(rule: &str, key: &str, window_start: i64) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.update([0]);
    h.update(window_start.to_be_bytes());
    let digest = h.finalize();
    hex::encode(&digest[..16])
}

pub(super) fn fill(
    template: &str,
    key: &str,
    count: u64,
    threshold: u64,
    window: i64,
    field: &str,
) -> String {
    template
        .replace("{key}", key)
        .replace("{count}", &count.to_string())
        .replace("{threshold}", &threshold.to_string())
        .replace("{window}", &fmt_duration(window))
        .replace("{field}", field)
}

/// The response deadline of an alert of `rule` at `severity`: the rule's own, else the
/// severity's (DESIGN section 4).
pub(super) fn respond_within(rule: &Rule, severity: Severity) -> String {
    rule.respond_within
        .clone()
        .unwrap_or_else(|| severity.respond_within().to_string())
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
    Alert {
        id: alert_id(&rule.id, &key_text, window_start),
        rule: rule.id.clone(),
        severity,
        priority: severity.priority().to_string(),
        respond_within: respond_within(rule, severity),
        key_field: rule.key.name().to_string(),
        count: value,
        threshold,
        window_start,
        window_end: t,
        first_seen,
        last_seen,
        summary,
        evidence,
        action: rule.action_for(&key_text),
        key_value: key_text,
        unverified: false,
    }
}

/// `secpipe.state_overflow`: a rule hit its key cap and started evicting its oldest keys.
fn overflow_alert(rule: &Rule, cap: usize, ts: i64) -> Alert {
    let id = "secpipe.state_overflow";
    let severity = Severity::High;
    Alert {
        id: alert_id(id, &rule.id, ts),
        rule: id.to_string(),
        severity,
        priority: severity.priority().to_string(),
        respond_within: severity.respond_within().to_string(),
        key_field: "rule".to_string(),
        key_value: rule.id.clone(),
        count: cap as u64,
        threshold: cap as u64,
        window_start: ts,
        window_end: ts,
        first_seen: ts,
        last_seen: ts,
        summary: format!(
            "rule {} reached its cap of {cap} keys; the oldest keys are being evicted, so \
             detection for them restarts (a flood of distinct {} values?)",
            rule.id,
            rule.key.name()
        ),
        evidence: Vec::new(),
        action: Vec::new(),
        unverified: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_keys_group_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a, 64), ip_key(b, 64));
        assert_ne!(ip_key(a, 64), ip_key(c, 64));
        assert_ne!(ip_key(a, 128), ip_key(b, 128));
        assert_eq!(KeyValue::Ip(ip_key(a, 64)).display(64), "2001:db8:1:2::/64");
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(KeyValue::Ip(ip_key(v4, 64)).display(64), "203.0.113.7");
    }

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
        let back = unpack_evidence(&pack_evidence(&ev, id), 5, &sources);
        assert_eq!(&*back.source, "auth.log");
        assert_eq!((back.line, back.ts, back.seq), (42, 5, Some(7)));
        assert_eq!(&*back.raw, b"Failed password");
    }

    #[test]
    fn alert_ids_are_stable() {
        // Pinned to values computed outside secpipe, with Python's hashlib:
        // sha256(b"r\0k\0" + (1).to_bytes(8, "big", signed=True)).hexdigest()[:32], so a
        // changed encoding (field order, separators, byte order) fails here.
        assert_eq!(alert_id("r", "k", 1), "e5bf616a75e03c3e995051eb85608a04");
        assert_eq!(alert_id("r", "k", 2), "028dd5f4cb955c7706640c9061ac9c28");
        assert_eq!(
            alert_id("auth.bruteforce", "203.0.113.7", 1_773_144_000_000_000),
            "dc3ee8e54349b5936cfd1935e77090a6"
        );
    }
}
#[cfg(test)]
mod size_guard {
    /// The flood budget (1,000,000 keys in 256 MiB with evidence) rests on these sizes.
    #[test]
    fn per_key_state_stays_small() {
        assert!(size_of::<super::KeyValue>() <= 24);
        assert!(size_of::<super::KeyState>() <= 40);
        assert!(size_of::<Option<(super::KeyValue, super::KeyState)>>() <= 64);
    }
}
