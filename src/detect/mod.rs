//! detect: the rule engine, in event time (DESIGN sections 2 and 4).
//!
//! INTERFACE OWNED BY THE LEAD: keep `RuleSet::builtin`, `RuleSet::with_config`,
//! `Detector::new`, `push`, `advance_wallclock`, `finish`, `stats` (internals are yours).

use crate::alert::Alert;
use crate::event::Event;

/// The active rules: the embedded default pack, optionally amended by `--config`.
#[derive(Clone, Debug)]
pub struct RuleSet {
    _private: (),
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

impl RuleSet {
    /// The default pack embedded from `grammars/rules.toml`.
    pub fn builtin() -> RuleSet {
        RuleSet { _private: () }
    }

    /// The default pack amended by a user config (`secpipe.toml`): change thresholds, windows,
    /// severities, cooldowns, disable or add rules. `path` is used in error messages.
    pub fn with_config(path: &str, text: &str) -> Result<RuleSet, RuleError> {
        let _ = (path, text);
        Ok(Self::builtin())
    }

    /// One line per rule for `secpipe rules`.
    pub fn describe(&self) -> String {
        String::new()
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
    stats: DetectStats,
}

impl Detector {
    pub fn new(rules: RuleSet, opts: DetectOptions) -> Detector {
        let _ = (rules, opts);
        Detector {
            stats: DetectStats::default(),
        }
    }

    /// Take one event; append any alerts that become decided.
    pub fn push(&mut self, ev: Event, out: &mut Vec<Alert>) {
        let _ = (ev, out);
        self.stats.events += 1;
    }

    /// Live sources only: input is idle and the wall clock says `now` (µs UTC); advance the
    /// watermark to `now - lateness` if that is later.
    pub fn advance_wallclock(&mut self, now: i64, out: &mut Vec<Alert>) {
        let _ = (now, out);
    }

    /// End of input: process everything buffered.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let _ = out;
    }

    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }
}
