//! detect: the rule engine, in event time (DESIGN sections 2 and 4).
//!
//! ```
//! use secpipe::detect::{DetectOptions, Detector, RuleSet};
//! use secpipe::event::{Event, Kind};
//!
//! let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
//! let mut alerts = Vec::new();
//! for i in 0..5 {
//!     let ev = Event {
//!         ts: i * 1_000_000,
//!         kind: Kind::AuthFailure,
//!         src_ip: "203.0.113.7".parse().ok(),
//!         ..Event::default()
//!     };
//!     detector.push(ev, &mut alerts);
//! }
//! detector.finish(&mut alerts);
//! assert_eq!(alerts[0].rule, "auth.bruteforce");
//! assert_eq!(alerts[0].key_value, "203.0.113.7");
//! ```
//!
//! Inside: events wait in a reorder buffer until the watermark (highest event time seen minus
//! the lateness) passes them, then go through every rule in (ts, source, line) order, so the
//! alerts do not depend on arrival order within the lateness.
//!
//! Where things are: `reorder` and `ahead` (event time), `attempts` (counting attempts, not
//! lines), `rules` (the rule model; `rules/load.rs` reads it from TOML), `engine` (one rule's
//! running state) over `window` (a key's counted entries and cooldown), `key` (rule keys),
//! `sources` (interned input names) and `evidence` (the packed evidence codec), `silence`, and
//! `raise`, the one builder every alert goes through. `snapshot` writes and reads the whole
//! state ([`Detector::snapshot`], [`Detector::restore`]), so a bus worker resumes after a
//! restart instead of replaying its partition.
//!
//! Event time is input, so it is judged before it moves anything (DESIGN section 2):
//! - The reorder buffer is bounded by count and bytes ([`DetectOptions::max_held_events`],
//!   [`DetectOptions::max_held_bytes`]); when full, the watermark is forced forward to the
//!   oldest held event, which is processed and counted in [`DetectStats::forced_events`].
//! - An event more than [`MAX_AHEAD_OF_STREAM`] ahead of the stream's progress (its highest
//!   event time, or the wall clock once a live source has given it) is not believed at once.
//!   From a live source it is placed at the stream's progress. From old logs it is held until
//!   later lines vouch for it (`detect::ahead`: [`CONFIRM_AHEAD`] dated lines in a row, from two
//!   hosts in a stream of several, judged by their median); a line from the old time before
//!   that disbelieves everything held. The first dated lines of an input, with nothing before
//!   them, are held and judged the same way. What is not believed is placed at the stream's
//!   progress, counted in [`DetectStats::ahead_of_stream`], and keeps its own time in the
//!   archive. Live input ([`Detector::advance_wallclock`], [`Detector::settle_start`]) judges
//!   what is held by the wall clock instead of waiting. What is still held at the end of input
//!   is processed at its own time, but silence is judged at the believed progress, not at it.
//!   Lines without a timestamp (stamped with their receive time) never move a replay of old
//!   logs to today, not even as the first line.

mod ahead;
mod attempts;
mod engine;
mod evidence;
mod key;
mod raise;
mod reload;
mod reorder;
mod rules;
mod silence;
mod slab;
mod snapshot;
mod sources;
mod window;

use crate::alert::Alert;
use crate::event::{Event, Kind};

use ahead::{AheadHold, Verdict};
pub use attempts::SessionStats;
use attempts::{AttemptCounter, Counted};
use engine::{EventCtx, RuleEngine};
use evidence::MAX_EVIDENCE_RAW;
use reorder::ReorderBuffer;
use rules::{Primitive, Rule};
use sources::Sources;

pub use ahead::{CONFIRM_AHEAD, MAX_AHEAD_HELD};
pub use reload::RuleChanges;
pub use reorder::{DEFAULT_MAX_HELD_BYTES, DEFAULT_MAX_HELD_EVENTS};
pub(crate) use snapshot::{
    EventSnap, Names, SnapshotKind, counter as snapshot_counter, decode as decode_snapshot,
    encode as encode_snapshot,
};
pub use snapshot::{MAX_SNAPSHOT_JSON, SNAPSHOT_VERSION, SnapshotError};

/// An event time further than this ahead of the stream's progress is not believed at once
/// (see the module docs). An hour: more than any clock skew between hosts that log correctly,
/// far less than the months one planted line could otherwise move the watermark.
pub const MAX_AHEAD_OF_STREAM: i64 = 3_600 * rules::SECOND;

/// The 16-byte key of an address as the rules key it (IPv4 mapped, IPv6 cut to `prefix`
/// bits): what the bus partitions by, so a partition holds each key whole.
pub fn ip_key_bytes(ip: std::net::IpAddr, prefix: u8) -> [u8; 16] {
    key::ip_key(ip, prefix)
}

/// A hasher with a random per-process seed, for sets keyed by what input writes (the bus's
/// duplicate window): no one can aim collisions at it.
pub fn seeded_hasher() -> foldhash::fast::SeedableRandomState {
    slab::seeded_hasher()
}

/// The default pack, embedded.
const DEFAULT_RULES: &str = include_str!("../../rules/default.toml");

/// Default per-rule key cap.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The active rules: the embedded default pack, optionally amended by `--config`.
///
/// ```
/// let rules = secpipe::detect::RuleSet::builtin();
/// assert!(rules.describe().contains("auth.bruteforce"));
/// ```
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// `[options] max_keys` from a config; overrides [`DetectOptions::max_keys`].
    max_keys: Option<usize>,
}

/// A config file error; names the file, line and column and says how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}:{column}: {message}")]
pub struct RuleError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The whole file text, so the CLI can point at the span (miette).
    pub source_text: String,
    /// Byte span of the offending item within `source_text`, if known.
    pub span: Option<std::ops::Range<usize>>,
}

/// Lets the CLI render the error with miette, pointing at the offending text.
///
/// ```
/// use miette::Diagnostic;
/// let err = secpipe::detect::RuleSet::with_config("s.toml", "[rules.\"auth.bruteforce\"]\nwindow = \"soon\"\n").unwrap_err();
/// assert!(err.source_code().is_some());
/// assert_eq!(err.labels().unwrap().count(), 1);
/// ```
impl miette::Diagnostic for RuleError {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source_text)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.span.clone()?;
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(Some("here".to_string()), span),
        )))
    }
}

impl RuleSet {
    /// The default pack embedded from `rules/default.toml`.
    pub fn builtin() -> RuleSet {
        let mut rules = Vec::new();
        let mut max_keys = None;
        // The pack is part of the binary and a unit test parses it; a failure here is a build
        // defect, not bad input, so it degrades to "no rules" rather than a panic in release.
        if let Err(e) = rules::apply_file(
            &mut rules,
            &mut max_keys,
            "rules/default.toml",
            DEFAULT_RULES,
        ) {
            debug_assert!(false, "default rule pack: {e}");
            rules.clear();
        }
        RuleSet { rules, max_keys }
    }

    /// The default pack amended by a user config (`secpipe.toml`): change thresholds, windows,
    /// severities, cooldowns, disable or add rules. `path` is used in error messages.
    ///
    /// ```
    /// use secpipe::detect::RuleSet;
    /// let rules = RuleSet::with_config("secpipe.toml", "[rules.\"auth.bruteforce\"]\nthreshold = 10\n").unwrap();
    /// assert!(rules.describe().contains("count ≥ 10 in 5m"));
    ///
    /// let err = RuleSet::with_config("secpipe.toml", "[rules.\"auth.bruteforce\"]\ntreshold = 10\n").unwrap_err();
    /// assert_eq!((err.line, err.column), (2, 1));
    /// assert!(err.message.contains("did you mean `threshold`"));
    /// ```
    pub fn with_config(path: &str, text: &str) -> Result<RuleSet, RuleError> {
        let mut set = Self::builtin();
        rules::apply_file(&mut set.rules, &mut set.max_keys, path, text)?;
        Ok(set)
    }

    /// One line per rule for `secpipe rules`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for rule in &self.rules {
            rule.describe(&mut out);
        }
        out
    }

    /// Rule ids, in pack order (defaults first, then added rules).
    ///
    /// ```
    /// assert_eq!(secpipe::detect::RuleSet::builtin().ids().len(), 13);
    /// ```
    pub fn ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.id.as_str()).collect()
    }

    /// The ids of the rules a config turned off (`enabled = false`), in pack order.
    ///
    /// ```
    /// let rules = secpipe::detect::RuleSet::with_config(
    ///     "s.toml",
    ///     "[rules.\"auth.bruteforce\"]\nenabled = false\n",
    /// ).unwrap();
    /// assert_eq!(rules.disabled_ids(), ["auth.bruteforce"]);
    /// ```
    pub fn disabled_ids(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|r| !r.enabled)
            .map(|r| r.id.as_str())
            .collect()
    }

    /// The fields the enabled rules key on, in pack order without repeats, each with the
    /// coarsest IPv6 grouping among its rules: what the bus partitions events by
    /// ([`crate::bus`]), so that every key of every rule lands whole in one partition.
    ///
    /// ```
    /// use secpipe::event::EventField;
    /// let families = secpipe::detect::RuleSet::builtin().families();
    /// assert_eq!(families[0], (EventField::SrcIp, 64));
    /// assert!(families.iter().any(|(f, _)| *f == EventField::User));
    /// ```
    pub fn families(&self) -> Vec<(crate::event::EventField, u8)> {
        let mut out: Vec<(crate::event::EventField, u8)> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.enabled) {
            match out.iter_mut().find(|(f, _)| *f == rule.key) {
                Some((_, prefix)) => *prefix = (*prefix).min(rule.ipv6_prefix),
                None => out.push((rule.key, rule.ipv6_prefix)),
            }
        }
        out
    }

    /// Only the rules keyed on `field`, with the key cap shared out over `partitions`
    /// partitions: a worker runs one such set per partition it owns, and together they hold
    /// no more keys than one `secpipe run`.
    pub fn for_partition(&self, field: crate::event::EventField, partitions: u32) -> RuleSet {
        let cap = self.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
        RuleSet {
            rules: self
                .rules
                .iter()
                .filter(|r| r.key == field)
                .cloned()
                .collect(),
            max_keys: Some((cap / partitions.max(1) as usize).max(1)),
        }
    }

    /// Whether an enabled rule keyed on `field` counts login attempts: those rules need the
    /// lines of a session that do not name the key too (see [`crate::bus`]).
    pub fn counts_attempts_by(&self, field: crate::event::EventField) -> bool {
        self.rules
            .iter()
            .any(|r| r.enabled && r.key == field && r.attempts)
    }
}

/// Options that are not rules.
#[derive(Clone, Debug)]
pub struct DetectOptions {
    /// Reorder-buffer lateness, µs.
    pub lateness: i64,
    /// Zone for `time_of_day` rules.
    pub tz: jiff::tz::TimeZone,
    /// Max keys per rule before eviction (default 1,000,000).
    pub max_keys: usize,
    /// Events the reorder buffer holds before it forces the watermark forward.
    pub max_held_events: usize,
    /// Bytes (estimated) the reorder buffer holds before it forces the watermark forward.
    pub max_held_bytes: usize,
}

impl Default for DetectOptions {
    /// Lateness 10 s, UTC, 1,000,000 keys per rule, and the default reorder-buffer caps.
    fn default() -> Self {
        DetectOptions {
            lateness: 10 * rules::SECOND,
            tz: jiff::tz::TimeZone::UTC,
            max_keys: DEFAULT_MAX_KEYS,
            max_held_events: DEFAULT_MAX_HELD_EVENTS,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
        }
    }
}

/// Counters for the end-of-run summary and metrics.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetectStats {
    pub events: u64,
    pub late_events: u64,
    pub alerts: u64,
    pub evicted_keys: u64,
    /// Events processed before the watermark passed them because the reorder buffer was full.
    pub forced_events: u64,
    /// Dated events too far ahead of the stream's progress, placed at that progress instead.
    pub ahead_of_stream: u64,
}

/// The ordered detection stage. Feed events in arrival order; alerts come out in a
/// deterministic order that does not depend on arrival order within the lateness.
pub struct Detector {
    engines: Vec<RuleEngine>,
    /// Indexes of enabled rules that count attempts (they share the session state).
    attempt_rules: Vec<usize>,
    /// Per engine: counts attempts keyed by `src_ip`, so an attempt counts toward its
    /// session's address (see [`attempts`]).
    attempts_by_address: Vec<bool>,
    /// Per event kind (index in `Kind::ALL`), the engines that may select it.
    by_kind: Vec<Vec<usize>>,
    attempts: AttemptCounter,
    /// Reused buffer for held attempts released by a line naming their session's address.
    released: Vec<(Box<Event>, u64)>,
    /// Waiting events, in (ts, source, line, arrival) order; bounded.
    pending: ReorderBuffer,
    /// Events far ahead of the stream's progress (or the first of an input), waiting for later
    /// lines to vouch for them; bounded by [`MAX_AHEAD_HELD`].
    hold: AheadHold,
    /// The host of the first believed event, and whether another host has been seen since:
    /// a jump in a stream of several hosts must be confirmed by two of them.
    first_host: Option<Option<std::sync::Arc<str>>>,
    several_hosts: bool,
    /// Indexes of the enabled silence rules: deadlines are checked before every event, and
    /// only these have any.
    silence_engines: Vec<usize>,
    lateness: i64,
    tz: jiff::tz::TimeZone,
    /// Highest (believed) event time seen.
    max_ts: i64,
    /// Latest wall clock given by [`Detector::advance_wallclock`]; `i64::MIN` for old logs.
    wall_clock: i64,
    watermark: i64,
    sources: Sources,
    stats: DetectStats,
    /// Seed of the `distinct` rules' value hashes (kept by snapshots: see [`snapshot`]).
    distinct_seed: u64,
    /// [`DetectOptions::max_keys`]: the key cap of rules a reload adds ([`reload`]).
    default_max_keys: usize,
}

impl Detector {
    pub fn new(rules: RuleSet, opts: DetectOptions) -> Detector {
        // Random as the index seeds are: an attacker who cannot guess it cannot pick values
        // that a `distinct` rule counts as one.
        let distinct_seed = getrandom::u64().unwrap_or(0x5ec9_d157_1ac7_0001);
        Self::with_distinct_seed(rules, opts, distinct_seed)
    }

    fn with_distinct_seed(rules: RuleSet, opts: DetectOptions, distinct_seed: u64) -> Detector {
        let default_max_keys = opts.max_keys;
        let cap = rules.max_keys.unwrap_or(opts.max_keys);
        let hasher = slab::seeded_hasher();
        let distinct = foldhash::fast::FixedState::with_seed(distinct_seed);
        let engines: Vec<RuleEngine> = rules
            .rules
            .into_iter()
            .filter(|r| r.enabled)
            .map(|r| RuleEngine::new(r, cap, hasher.clone(), distinct.clone()))
            .collect();
        let mut detector = Detector {
            engines,
            attempt_rules: Vec::new(),
            attempts_by_address: Vec::new(),
            by_kind: Vec::new(),
            attempts: AttemptCounter::new(),
            released: Vec::new(),
            pending: ReorderBuffer::new(opts.max_held_events, opts.max_held_bytes),
            hold: AheadHold::default(),
            first_host: None,
            several_hosts: false,
            silence_engines: Vec::new(),
            lateness: opts.lateness.max(0),
            tz: opts.tz,
            max_ts: i64::MIN,
            wall_clock: i64::MIN,
            watermark: i64::MIN,
            sources: Sources::new(hasher),
            stats: DetectStats::default(),
            distinct_seed,
            default_max_keys,
        };
        detector.index_engines();
        detector
    }

    /// Which engines count attempts, watch for silence, and see each kind: derived from the
    /// engines' rules, at start and after a reload changed them.
    fn index_engines(&mut self) {
        let engines = &self.engines;
        self.attempt_rules = engines
            .iter()
            .enumerate()
            .filter(|(_, e)| e.rule.attempts && e.rule.primitive == Primitive::Count)
            .map(|(i, _)| i)
            .collect();
        self.attempts_by_address = engines
            .iter()
            .map(|e| {
                e.rule.attempts
                    && e.rule.primitive == Primitive::Count
                    && e.rule.key == rules::Field::SrcIp
            })
            .collect();
        self.silence_engines = engines
            .iter()
            .enumerate()
            .filter(|(_, e)| e.rule.primitive == Primitive::Silence)
            .map(|(i, _)| i)
            .collect();
        self.by_kind = Kind::ALL
            .iter()
            .map(|kind| {
                engines
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.rule.kinds.is_empty() || e.rule.kinds.contains(kind))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
    }

    /// Take one event; append any alerts that become decided.
    pub fn push(&mut self, ev: Event, out: &mut Vec<Alert>) {
        // Boxed once here: an event is a few hundred bytes, and from here on it only moves
        // (into the reorder buffer, the ahead list), each move a pointer.
        let ev = Box::new(ev);
        self.stats.events += 1;
        if self.sources.wants_sweep() {
            self.sweep_sources();
        }
        let before = out.len();
        self.judge(ev, out);
        self.stats.alerts += (out.len() - before) as u64;
    }

    /// Decide what an event's time is worth (see the module docs), then admit or hold it.
    fn judge(&mut self, mut ev: Box<Event>, out: &mut Vec<Alert>) {
        let progress = self.progress();
        if progress != i64::MIN && ev.ts <= progress.saturating_add(MAX_AHEAD_OF_STREAM) {
            // The common case. A dated line from the believed time contradicts a jump held.
            if !ev.ts_inferred && !self.hold.is_empty() {
                self.disbelieve_held(out);
            }
            self.admit(ev, out);
        } else if progress != i64::MIN && (ev.ts_inferred || self.wall_clock != i64::MIN) {
            // Undated lines claim nothing; and a live stream's progress is the wall clock.
            if !ev.ts_inferred {
                self.stats.ahead_of_stream += 1;
            }
            ev.ts = progress;
            ev.ts_inferred = true;
            self.admit(ev, out);
        } else {
            self.hold.push(ev);
            if self.hold.ready(self.several_hosts) {
                self.judge_held(None, out);
            }
        }
    }

    /// Judge what is held (see [`ahead`]); `wall_clock` for live input.
    fn judge_held(&mut self, wall_clock: Option<i64>, out: &mut Vec<Alert>) {
        let held = self.hold.take();
        let verdicts = ahead::verdicts(&held, wall_clock);
        // Where what is not believed goes before anything is: the first believed time.
        let first_believed = held
            .iter()
            .zip(&verdicts)
            .find(|(_, v)| **v == Verdict::Believe)
            .map(|(ev, _)| ev.ts)
            .or(wall_clock);
        let mut again = Vec::new();
        for (mut ev, verdict) in held.into_iter().zip(verdicts) {
            let progress = match self.progress() {
                i64::MIN => first_believed,
                progress => Some(progress),
            };
            match verdict {
                Verdict::Believe => self.admit(ev, out),
                Verdict::JudgeAgain => again.push(ev),
                Verdict::Disbelieve | Verdict::Undated => {
                    if let Some(progress) = progress
                        && (verdict == Verdict::Disbelieve
                            || ev.ts > progress.saturating_add(MAX_AHEAD_OF_STREAM))
                    {
                        if !ev.ts_inferred {
                            self.stats.ahead_of_stream += 1;
                        }
                        ev.ts = progress;
                        ev.ts_inferred = true;
                    }
                    self.admit(ev, out);
                }
            }
        }
        for ev in again {
            self.judge(ev, out);
        }
    }

    /// The stream's progress: its highest believed event time, or the wall clock for a live
    /// stream when that is later.
    fn progress(&self) -> i64 {
        self.max_ts.max(self.wall_clock)
    }

    /// The events held were not confirmed: place them at the stream's progress.
    fn disbelieve_held(&mut self, out: &mut Vec<Alert>) {
        for mut ev in self.hold.take() {
            if !ev.ts_inferred {
                self.stats.ahead_of_stream += 1;
            }
            ev.ts = self.progress();
            ev.ts_inferred = true;
            self.admit(ev, out);
        }
    }

    /// An event whose time is believed: process it if late, else hold it and move the
    /// watermark.
    fn admit(&mut self, ev: Box<Event>, out: &mut Vec<Alert>) {
        if !self.several_hosts {
            match &self.first_host {
                None => self.first_host = Some(ev.host.clone()),
                Some(first) => self.several_hosts = *first != ev.host,
            }
        }
        if ev.ts < self.watermark {
            // Late: its place in order has passed; process it now, at its own time.
            self.stats.late_events += 1;
            self.process(&ev, true, out);
            return;
        }
        self.max_ts = self.max_ts.max(ev.ts);
        self.pending.push(ev, MAX_EVIDENCE_RAW);
        let watermark = self.max_ts.saturating_sub(self.lateness);
        if watermark > self.watermark {
            self.advance(watermark, out);
        }
        self.force_while_full(out);
    }

    /// The reorder buffer is over its cap: move the watermark to its oldest events and process
    /// them, counted, until it is not. Later events older than them are then late.
    fn force_while_full(&mut self, out: &mut Vec<Alert>) {
        let mut forced = false;
        while self.pending.is_over() {
            let Some(ev) = self.pending.pop() else {
                break;
            };
            forced = true;
            self.stats.forced_events += 1;
            self.watermark = self.watermark.max(ev.ts);
            self.fire_silence(ev.ts, out);
            self.process(&ev, false, out);
        }
        if forced {
            for engine in &mut self.engines {
                engine.expire(self.watermark);
            }
        }
    }

    /// Live sources only: input is idle and the wall clock says `now` (µs UTC); advance the
    /// watermark to `now - lateness` if that is later.
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// use secpipe::event::{Event, Kind};
    ///
    /// let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    /// let mut alerts = Vec::new();
    /// let attempt = |ts| Event { ts, kind: Kind::AuthFailure, src_ip: "192.0.2.1".parse().ok(), ..Event::default() };
    /// for ts in 0..5 {
    ///     detector.push(attempt(ts), &mut alerts);
    /// }
    /// assert!(alerts.is_empty(), "still inside the 10 s lateness");
    /// detector.advance_wallclock(11_000_000, &mut alerts);
    /// assert_eq!(alerts.len(), 1);
    /// ```
    pub fn advance_wallclock(&mut self, now: i64, out: &mut Vec<Alert>) {
        let before = out.len();
        self.wall_clock = self.wall_clock.max(now);
        if !self.hold.is_empty() {
            self.judge_held(Some(now), out);
        }
        let watermark = now.saturating_sub(self.lateness);
        if watermark > self.watermark {
            self.advance(watermark, out);
        }
        self.stats.alerts += (out.len() - before) as u64;
    }

    /// Event time has reached `ts` elsewhere in the stream: on the bus, a partition sees only
    /// its keys' events, and the edges' beats say how far the rest has got. The watermark moves
    /// as an event at `ts` would move it (windows close, silences fire), with no event. Not
    /// further than [`MAX_AHEAD_OF_STREAM`] past this detector's own progress, as for events.
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// use secpipe::event::{Event, Kind};
    /// let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    /// let mut alerts = Vec::new();
    /// let attempt = |ts| Event { ts, kind: Kind::AuthFailure, src_ip: "192.0.2.1".parse().ok(), ..Event::default() };
    /// for ts in 0..5 {
    ///     detector.push(attempt(ts), &mut alerts);
    /// }
    /// assert!(alerts.is_empty(), "still inside the 10 s lateness");
    /// detector.advance_event_time(11_000_000, &mut alerts);
    /// assert_eq!(alerts.len(), 1);
    /// ```
    pub fn advance_event_time(&mut self, ts: i64, out: &mut Vec<Alert>) {
        let progress = self.progress();
        let ts = if progress == i64::MIN {
            ts
        } else {
            ts.min(progress.saturating_add(MAX_AHEAD_OF_STREAM))
        };
        if ts <= self.max_ts {
            return;
        }
        let before = out.len();
        if self.max_ts == i64::MIN {
            // The first lines, held for later lines to vouch for their time: the rest of the
            // stream does. What is too far ahead of it is placed at it, as a disbelieved
            // line would be.
            for mut ev in self.hold.take() {
                if ev.ts > ts.saturating_add(MAX_AHEAD_OF_STREAM) {
                    if !ev.ts_inferred {
                        self.stats.ahead_of_stream += 1;
                    }
                    ev.ts = ts;
                    ev.ts_inferred = true;
                }
                self.admit(ev, out);
            }
        }
        self.max_ts = self.max_ts.max(ts);
        let watermark = self.max_ts.saturating_sub(self.lateness);
        if watermark > self.watermark {
            self.advance(watermark, out);
        }
        self.stats.alerts += (out.len() - before) as u64;
    }

    /// Stdin not judged current yet: the first lines of an input are held until enough of them
    /// agree (`detect::ahead`), which a live pipe writing a line now and then may take long to
    /// reach. When the pipe pauses, or its first lines have waited a while, the wall clock `now`
    /// (µs) judges them instead: what is not in the future is believed. Nothing happens once
    /// an event is believed, so old logs read at full speed are judged by their lines alone.
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// use secpipe::event::Event;
    /// let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    /// let now = 1_800_000_000_000_000;
    /// detector.push(Event { ts: now - 1_000_000, received: now, ..Event::default() }, &mut Vec::new());
    /// assert_eq!(detector.start_held_since(), Some(now));
    /// detector.settle_start(now, &mut Vec::new());
    /// assert_eq!(detector.newest_event_time(), now - 1_000_000);
    /// assert_eq!(detector.start_held_since(), None);
    /// ```
    pub fn settle_start(&mut self, now: i64, out: &mut Vec<Alert>) {
        if self.start_held_since().is_some() {
            let before = out.len();
            self.judge_held(Some(now), out);
            self.stats.alerts += (out.len() - before) as u64;
        }
    }

    /// Events waiting for later lines to vouch for them (for memory tests).
    #[cfg(test)]
    fn hold_len(&self) -> usize {
        self.hold.len()
    }

    /// Receive time of the oldest of the first lines held, while nothing is believed yet.
    pub fn start_held_since(&self) -> Option<i64> {
        if self.max_ts == i64::MIN && self.wall_clock == i64::MIN {
            self.hold.first_received()
        } else {
            None
        }
    }

    /// End of input: process everything buffered.
    ///
    /// Silence is judged against the last event time, never against the end of input itself:
    /// only hosts quiet for the whole duration before the last event fire.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let before = out.len();
        if self.max_ts == i64::MIN && !self.hold.is_empty() {
            // A short input: its first lines were never more than the hold.
            self.judge_held(None, out);
        }
        while let Some(ev) = self.pending.pop() {
            self.fire_silence(ev.ts, out);
            self.process(&ev, false, out);
        }
        if self.max_ts > i64::MIN {
            self.fire_silence(self.max_ts, out);
            self.watermark = self.watermark.max(self.max_ts);
        }
        // Unconfirmed, but nothing after it contradicts it either: counted at its own time,
        // never a reason for silence (it is after everything else, so order holds).
        for ev in self.hold.take() {
            self.process(&ev, false, out);
        }
        // Open attempts that no login forgave failed: they count at their own time.
        self.attempts.finish();
        let mut released = std::mem::take(&mut self.released);
        released.extend(self.attempts.take_released());
        for (held, weight) in released.drain(..) {
            self.process_addressed_attempt(&held, weight, false, out);
        }
        self.released = released;
        for engine in &mut self.engines {
            engine.finish_silence(&self.sources, out);
        }
        self.stats.alerts += (out.len() - before) as u64;
    }

    /// Counters so far.
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    /// detector.push(secpipe::event::Event::default(), &mut Vec::new());
    /// assert_eq!(detector.stats().events, 1);
    /// ```
    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }

    /// Keys held across all rules (for metrics and memory tests).
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// assert_eq!(Detector::new(RuleSet::builtin(), DetectOptions::default()).live_keys(), 0);
    /// ```
    pub fn live_keys(&self) -> usize {
        self.engines.iter().map(RuleEngine::live_keys).sum()
    }

    /// Keys held per enabled rule, in pack order (for the `secpipe_state_keys` metric).
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// use secpipe::event::{Event, Kind};
    /// let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    /// let attempt = Event { kind: Kind::AuthFailure, src_ip: "192.0.2.1".parse().ok(), ..Event::default() };
    /// detector.push(attempt, &mut Vec::new());
    /// detector.advance_wallclock(60_000_000, &mut Vec::new());
    /// let keys = detector.state_keys();
    /// assert!(keys.contains(&("auth.bruteforce".to_string(), 1)));
    /// assert_eq!(keys.iter().map(|(_, n)| n).sum::<usize>(), detector.live_keys());
    /// ```
    pub fn state_keys(&self) -> Vec<(String, usize)> {
        self.engines
            .iter()
            .map(|e| (e.rule.id.clone(), e.live_keys()))
            .collect()
    }

    /// The stream's progress as detection believes it: the newest event time that moved the
    /// watermark (`i64::MIN` before the first event). A planted future line does not move it.
    pub fn newest_event_time(&self) -> i64 {
        self.max_ts
    }

    /// The current watermark, µs (`i64::MIN` before the first event).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Forget input names that no held evidence refers to (closed syslog connections).
    fn sweep_sources(&mut self) {
        let mut in_use = vec![false; self.sources.id_bound()];
        for engine in &self.engines {
            engine.for_each_evidence(|blob| {
                if let Some(id) = evidence::evidence_source(blob)
                    && let Some(mark) = in_use.get_mut(id as usize)
                {
                    *mark = true;
                }
            });
        }
        self.sources.sweep(&in_use);
    }

    /// Input names held (for memory tests).
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// assert_eq!(Detector::new(RuleSet::builtin(), DetectOptions::default()).source_names(), 0);
    /// ```
    pub fn source_names(&self) -> usize {
        self.sources.len()
    }

    /// Events the reorder buffer holds now, and the bytes they take (estimated): never more
    /// than the caps in [`DetectOptions`] after a [`push`](Self::push) returns.
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// use secpipe::event::Event;
    /// let opts = DetectOptions { max_held_events: 100, ..DetectOptions::default() };
    /// let mut detector = Detector::new(RuleSet::builtin(), opts);
    /// // Lines without timestamps, all received in the same instant: nothing moves the
    /// // watermark but the cap.
    /// for line in 1..=1_000 {
    ///     detector.push(Event { line, ts_inferred: true, ..Event::default() }, &mut Vec::new());
    /// }
    /// assert_eq!(detector.held().0, 100);
    /// assert_eq!(detector.stats().forced_events, 900);
    /// ```
    pub fn held(&self) -> (usize, usize) {
        (self.pending.len(), self.pending.bytes())
    }

    fn advance(&mut self, watermark: i64, out: &mut Vec<Alert>) {
        self.watermark = watermark;
        while self.pending.first_ts().is_some_and(|ts| ts < watermark) {
            let Some(ev) = self.pending.pop() else {
                break;
            };
            // Silences due before this event are decided: the watermark is past them.
            self.fire_silence(ev.ts, out);
            self.process(&ev, false, out);
        }
        self.fire_silence(watermark, out);
        for engine in &mut self.engines {
            engine.expire(watermark);
        }
    }

    fn fire_silence(&mut self, now: i64, out: &mut Vec<Alert>) {
        for &i in &self.silence_engines {
            if let Some(engine) = self.engines.get_mut(i) {
                engine.fire_silence(now, &self.sources, out);
            }
        }
    }

    /// Session binding so far (see `detect::attempts`).
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// let detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    /// assert_eq!(detector.session_stats().attempts_unattributed, 0);
    /// ```
    pub fn session_stats(&self) -> SessionStats {
        self.attempts.stats()
    }

    fn process(&mut self, ev: &Event, late: bool, out: &mut Vec<Alert>) {
        let is_attempt = self
            .attempt_rules
            .iter()
            .any(|&i| self.engines[i].rule.selects(ev));
        let counted = self.attempts.observe(ev, is_attempt);
        // Attempts held until this line named their session's address count first: they are
        // older, and count at their own time.
        let mut released = std::mem::take(&mut self.released);
        released.extend(self.attempts.take_released());
        for (held, weight) in released.drain(..) {
            self.process_addressed_attempt(&held, weight, late, out);
        }
        self.released = released;
        let weight = counted.attempts();
        let toward_own_address = match &counted {
            Counted::Own(n) => *n,
            Counted::Held(_) | Counted::Bound(..) => 0,
        };
        let mut ctx = EventCtx {
            sources: &mut self.sources,
            tz: &self.tz,
            attempts: weight,
            late,
            watermark: self.watermark,
        };
        // `Kind::ALL` is in declaration order (a test in event.rs holds it to that).
        for &i in &self.by_kind[ev.kind as usize] {
            let engine = &mut self.engines[i];
            if engine.rule.selects(ev) {
                ctx.attempts = if self.attempts_by_address[i] {
                    toward_own_address
                } else {
                    weight
                };
                let evicted = engine.evicted;
                engine.observe(ev, &mut ctx, out);
                self.stats.evicted_keys += engine.evicted - evicted;
            }
        }
        if let Counted::Bound(bound, weight) = counted {
            self.process_addressed_attempt(&bound, weight, late, out);
        }
    }

    /// Count `weight` attempts of `ev` (which carries its session's address) in the rules that
    /// count attempts per address, and only there: the other rules saw the line itself.
    fn process_addressed_attempt(
        &mut self,
        ev: &Event,
        weight: u64,
        late: bool,
        out: &mut Vec<Alert>,
    ) {
        let mut ctx = EventCtx {
            sources: &mut self.sources,
            tz: &self.tz,
            attempts: weight,
            late,
            watermark: self.watermark,
        };
        for (i, engine) in self.engines.iter_mut().enumerate() {
            if self.attempts_by_address[i] && engine.rule.selects(ev) {
                let evicted = engine.evicted;
                engine.observe(ev, &mut ctx, out);
                self.stats.evicted_keys += engine.evicted - evicted;
            }
        }
    }
}

/// A detector's state as a snapshot holds it (see [`snapshot`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct DetectorSnap {
    distinct_seed: u64,
    engines: Vec<engine::EngineSnap>,
    attempts: attempts::AttemptsSnap,
    released: Vec<(EventSnap, u64)>,
    pending: reorder::ReorderSnap,
    hold: ahead::AheadSnap,
    first_host: Option<Option<String>>,
    several_hosts: bool,
    max_ts: i64,
    wall_clock: i64,
    watermark: i64,
    sources: sources::SourcesSnap,
    stats: DetectStats,
}

impl Detector {
    /// The detector's whole state, to resume from with [`Detector::restore`] after a restart:
    /// a restored detector raises the same alerts (ids, counts, windows, evidence, actions) and
    /// keeps the same counters as this one would, whatever comes next. Take it between calls
    /// (it costs a walk of the state, nothing on [`push`](Self::push)); store it beside the
    /// stream position of the last event pushed.
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// use secpipe::event::{Event, Kind};
    /// let attempt = |ts| Event { ts, kind: Kind::AuthFailure, src_ip: "192.0.2.1".parse().ok(), ..Event::default() };
    /// let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    /// let mut alerts = Vec::new();
    /// for ts in 0..3 {
    ///     detector.push(attempt(ts), &mut alerts);
    /// }
    /// let saved = detector.snapshot();
    /// drop(detector); // the worker restarts
    ///
    /// let mut detector = Detector::restore(RuleSet::builtin(), DetectOptions::default(), &saved).unwrap();
    /// for ts in 3..5 {
    ///     detector.push(attempt(ts), &mut alerts);
    /// }
    /// detector.finish(&mut alerts);
    /// assert_eq!(alerts.len(), 1);
    /// assert_eq!(alerts[0].count, 5);
    ///
    /// // Under other rules the state means something else: refused, never misread.
    /// let stricter = RuleSet::with_config("s.toml", "[rules.\"auth.bruteforce\"]\nthreshold = 10\n").unwrap();
    /// assert!(Detector::restore(stricter, DetectOptions::default(), &saved).is_err());
    /// assert!(Detector::restore(RuleSet::builtin(), DetectOptions::default(), &saved[..40]).is_err());
    /// ```
    pub fn snapshot(&self) -> Vec<u8> {
        let state = DetectorSnap {
            distinct_seed: self.distinct_seed,
            engines: self.engines.iter().map(RuleEngine::snapshot).collect(),
            attempts: self.attempts.snapshot(),
            released: self
                .released
                .iter()
                .map(|(ev, w)| (EventSnap::of(ev), *w))
                .collect(),
            pending: self.pending.snapshot(),
            hold: self.hold.snapshot(),
            first_host: self
                .first_host
                .as_ref()
                .map(|h| h.as_deref().map(str::to_string)),
            several_hosts: self.several_hosts,
            max_ts: self.max_ts,
            wall_clock: self.wall_clock,
            watermark: self.watermark,
            sources: self.sources.snapshot(),
            stats: self.stats.clone(),
        };
        snapshot::encode(SnapshotKind::Detector, self.fingerprint(), &state)
    }

    /// A detector in the state of `snapshot`, taken by [`Detector::snapshot`] under the same
    /// rules and options (else [`SnapshotError::RulesChanged`]: the caller replays instead).
    /// Bad bytes give an error, never a panic (the checks are listed in `detect/snapshot.rs`).
    pub fn restore(
        rules: RuleSet,
        opts: DetectOptions,
        snapshot: &[u8],
    ) -> Result<Detector, SnapshotError> {
        let mut detector = Detector::with_distinct_seed(rules, opts, 0);
        let state: DetectorSnap =
            snapshot::decode(SnapshotKind::Detector, detector.fingerprint(), snapshot)?;
        if state.engines.len() != detector.engines.len() {
            return Err(snapshot::invalid("another number of rules"));
        }
        let distinct = foldhash::fast::FixedState::with_seed(state.distinct_seed);
        let hasher = slab::seeded_hasher();
        for (engine, snap) in detector.engines.iter_mut().zip(state.engines) {
            engine.restore(snap, hasher.clone(), distinct.clone())?;
        }
        let mut names = Names::default();
        let events = |list: Vec<(EventSnap, u64)>, names: &mut Names| {
            list.into_iter()
                .map(|(ev, w)| Ok((Box::new(ev.into_event(names)?), w)))
                .collect::<Result<Vec<_>, SnapshotError>>()
        };
        let (max_events, max_bytes) = detector.pending.caps();
        detector.attempts = AttemptCounter::restore(state.attempts, &mut names)?;
        detector.released = events(state.released, &mut names)?;
        detector.pending =
            ReorderBuffer::restore(state.pending, max_events, max_bytes, &mut names)?;
        detector.hold = AheadHold::restore(state.hold, &mut names)?;
        detector.first_host = state.first_host.map(|h| h.map(|h| names.get(h)));
        detector.several_hosts = state.several_hosts;
        detector.max_ts = state.max_ts;
        detector.wall_clock = state.wall_clock;
        detector.watermark = state.watermark;
        detector.sources = Sources::restore(state.sources, hasher, &mut names)?;
        let stats = &state.stats;
        for (what, value) in [
            ("events", stats.events),
            ("late events", stats.late_events),
            ("alerts", stats.alerts),
            ("evicted keys", stats.evicted_keys),
            ("forced events", stats.forced_events),
            ("events ahead of the stream", stats.ahead_of_stream),
        ] {
            snapshot::counter(what, value)?;
        }
        detector.stats = state.stats;
        detector.distinct_seed = state.distinct_seed;
        Ok(detector)
    }

    /// What a snapshot must have been taken under: every enabled rule in full (its debug form
    /// names every field), its key cap, the lateness, the reorder caps and the time zone.
    fn fingerprint(&self) -> [u8; 32] {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for engine in &self.engines {
            parts.push(format!("{:?}", engine.rule).into_bytes());
            parts.push(engine.cap().to_le_bytes().to_vec());
        }
        let (max_events, max_bytes) = self.pending.caps();
        parts.push(self.lateness.to_le_bytes().to_vec());
        parts.push(max_events.to_le_bytes().to_vec());
        parts.push(max_bytes.to_le_bytes().to_vec());
        // The zone by name and by what it does (a zone without a name is a fixed offset).
        let offset_at = |secs: i64| {
            jiff::Timestamp::from_second(secs)
                .map(|t| self.tz.to_offset(t).seconds())
                .unwrap_or(0)
        };
        parts.push(
            format!(
                "{:?} {} {}",
                self.tz.iana_name(),
                offset_at(0),
                offset_at(1_782_864_000)
            )
            .into_bytes(),
        );
        // Session keys and `distinct` values are stored as foldhash hashes: a build whose
        // foldhash hashes differently must not take them for its own.
        let canary = std::hash::BuildHasher::hash_one(
            &foldhash::fast::FixedState::with_seed(1),
            ("secpipe snapshot", 7u32),
        );
        parts.push(canary.to_le_bytes().to_vec());
        snapshot::fingerprint(parts.iter().map(Vec::as_slice))
    }
}

#[cfg(test)]
mod tests;
