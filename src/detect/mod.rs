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

mod attempts;
mod engine;
mod rules;
mod slab;

use std::collections::VecDeque;

use crate::alert::Alert;
use crate::event::{Event, Kind};

pub use attempts::SessionStats;
use attempts::{AttemptCounter, Counted};
use engine::{EventCtx, RuleEngine, Sources};
use rules::{Primitive, Rule};

/// The default pack, embedded.
const DEFAULT_RULES: &str = include_str!("../../grammars/rules.toml");

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
    /// The default pack embedded from `grammars/rules.toml`.
    pub fn builtin() -> RuleSet {
        let mut rules = Vec::new();
        let mut max_keys = None;
        // The pack is part of the binary and a unit test parses it; a failure here is a build
        // defect, not bad input, so it degrades to "no rules" rather than a panic in release.
        if let Err(e) = rules::apply_file(
            &mut rules,
            &mut max_keys,
            "grammars/rules.toml",
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
}

impl Default for DetectOptions {
    /// Lateness 10 s, UTC, 1,000,000 keys per rule.
    fn default() -> Self {
        DetectOptions {
            lateness: 10 * rules::SECOND,
            tz: jiff::tz::TimeZone::UTC,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// Counters for the end-of-run summary and metrics.
#[derive(Clone, Debug, Default)]
pub struct DetectStats {
    pub events: u64,
    pub late_events: u64,
    pub alerts: u64,
    pub evicted_keys: u64,
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
    /// Waiting events, sorted by (ts, source, line); arrival order breaks remaining ties.
    /// Boxed: a dense stream holds `lateness` worth of events here, and a deque of pointers
    /// grows (doubling) far more cheaply than one of whole events.
    pending: VecDeque<Box<Event>>,
    lateness: i64,
    tz: jiff::tz::TimeZone,
    /// Highest event time seen.
    max_ts: i64,
    watermark: i64,
    sources: Sources,
    stats: DetectStats,
}

impl Detector {
    pub fn new(rules: RuleSet, opts: DetectOptions) -> Detector {
        let cap = rules.max_keys.unwrap_or(opts.max_keys);
        let hasher = slab::seeded_hasher();
        let engines: Vec<RuleEngine> = rules
            .rules
            .into_iter()
            .filter(|r| r.enabled)
            .map(|r| RuleEngine::new(r, cap, hasher.clone()))
            .collect();
        let attempt_rules = engines
            .iter()
            .enumerate()
            .filter(|(_, e)| e.rule.attempts && e.rule.primitive == Primitive::Count)
            .map(|(i, _)| i)
            .collect();
        let attempts_by_address = engines
            .iter()
            .map(|e| {
                e.rule.attempts
                    && e.rule.primitive == Primitive::Count
                    && e.rule.key == rules::Field::SrcIp
            })
            .collect();
        let by_kind = Kind::ALL
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
        Detector {
            engines,
            attempt_rules,
            attempts_by_address,
            by_kind,
            attempts: AttemptCounter::new(),
            released: Vec::new(),
            pending: VecDeque::new(),
            lateness: opts.lateness.max(0),
            tz: opts.tz,
            max_ts: i64::MIN,
            watermark: i64::MIN,
            sources: Sources::new(hasher),
            stats: DetectStats::default(),
        }
    }

    /// Take one event; append any alerts that become decided.
    pub fn push(&mut self, ev: Event, out: &mut Vec<Alert>) {
        self.stats.events += 1;
        let before = out.len();
        if ev.ts < self.watermark {
            // Late: its place in order has passed; process it now, at its own time.
            self.stats.late_events += 1;
            self.process(&ev, true, out);
        } else {
            self.max_ts = self.max_ts.max(ev.ts);
            self.enqueue(Box::new(ev));
            let watermark = self.max_ts.saturating_sub(self.lateness);
            if watermark > self.watermark {
                self.advance(watermark, out);
            }
        }
        self.stats.alerts += (out.len() - before) as u64;
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
        let watermark = now.saturating_sub(self.lateness);
        if watermark > self.watermark {
            self.advance(watermark, out);
        }
        self.stats.alerts += (out.len() - before) as u64;
    }

    /// End of input: process everything buffered.
    ///
    /// Silence is judged against the last event time, never against the end of input itself:
    /// only hosts quiet for the whole duration before the last event fire.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let before = out.len();
        while let Some(ev) = self.pending.pop_front() {
            self.fire_silence(ev.ts, out);
            self.process(&ev, false, out);
        }
        if self.max_ts > i64::MIN {
            self.fire_silence(self.max_ts, out);
            self.watermark = self.watermark.max(self.max_ts);
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

    /// The current watermark, µs (`i64::MIN` before the first event).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    fn enqueue(&mut self, ev: Box<Event>) {
        let in_order = self
            .pending
            .back()
            .is_none_or(|last| order(last, &ev).is_le());
        if in_order {
            self.pending.push_back(ev);
        } else {
            // After every equal event, so equal events keep arrival order.
            let at = self.pending.partition_point(|p| order(p, &ev).is_le());
            self.pending.insert(at, ev);
        }
    }

    fn advance(&mut self, watermark: i64, out: &mut Vec<Alert>) {
        self.watermark = watermark;
        while self.pending.front().is_some_and(|ev| ev.ts < watermark) {
            let Some(ev) = self.pending.pop_front() else {
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
        for engine in &mut self.engines {
            if engine.rule.primitive == Primitive::Silence {
                engine.fire_silence(now, &self.sources, out);
            }
        }
    }

    /// Session binding so far (see [`attempts`]).
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
        let kind_index = Kind::ALL.iter().position(|k| *k == ev.kind).unwrap_or(0);
        for &i in &self.by_kind[kind_index] {
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

/// Processing order: event time, then source and line, so ties resolve the same every run.
fn order(a: &Event, b: &Event) -> std::cmp::Ordering {
    a.ts.cmp(&b.ts)
        .then_with(|| a.source.cmp(&b.source))
        .then_with(|| a.line.cmp(&b.line))
}

#[cfg(test)]
mod tests;
