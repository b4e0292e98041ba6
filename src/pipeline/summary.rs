//! The counts of a run, printed on stderr at its end.

use super::stages::EventBatch;
use crate::event::Kind;
use crate::source::ReadReport;

/// Counts for the end-of-run summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub inputs: u64,
    pub bytes: u64,
    pub lines: u64,
    pub parsed: u64,
    pub unparsed: u64,
    pub truncated: u64,
    pub dropped_bytes: u64,
    pub future_ts: u64,
    pub rejected_ts: u64,
    /// Dated events too far ahead of the stream's own progress (detect).
    pub ahead_of_stream: u64,
    /// Events forced through a full reorder buffer (detect).
    pub forced_events: u64,
    pub by_kind: [u64; Kind::ALL.len()],
    pub pattern_hits: Vec<u64>,
    pub unmatched: u64,
    /// Lines whose address was left empty because attacker text could have chosen it.
    pub ambiguous_addresses: u64,
    /// Journal entries whose trusted fields disagree with the app they claim.
    pub forged_sources: u64,
    pub late_events: u64,
    /// How attempts without an address found their session's address (detect).
    pub sessions: crate::detect::SessionStats,
    pub alerts: u64,
    pub alerts_by_rule: std::collections::BTreeMap<String, u64>,
    pub input_errors: Vec<String>,
}

impl Summary {
    /// Count one alert.
    pub fn count_alert(&mut self, alert: &crate::alert::Alert) {
        self.alerts += 1;
        *self.alerts_by_rule.entry(alert.rule.clone()).or_insert(0) += 1;
    }

    /// Fold in what the sources read.
    pub fn add_read_report(&mut self, report: &ReadReport) {
        self.inputs += report.inputs;
        self.bytes += report.frames.bytes;
        self.dropped_bytes += report.frames.dropped_bytes;
        self.input_errors.extend(report.errors.iter().cloned());
    }

    /// Count one parsed batch.
    pub fn add_batch(&mut self, batch: &EventBatch) {
        self.lines += batch.events.len() as u64;
        let tally = &batch.tally;
        for (total, n) in self.by_kind.iter_mut().zip(tally.by_kind) {
            *total += n;
        }
        let unparsed = tally.by_kind[Kind::Unparsed as usize];
        self.unparsed += unparsed;
        self.parsed += batch.events.len() as u64 - unparsed;
        self.forged_sources += tally.forged_sources;
        for &(id, n) in &batch.pattern_hits {
            if self.pattern_hits.len() <= id {
                self.pattern_hits.resize(id + 1, 0);
            }
            self.pattern_hits[id] += n;
        }
        self.unmatched += batch.unmatched;
        self.ambiguous_addresses += batch.ambiguous_addresses;
        self.truncated += batch.truncated;
        self.future_ts += batch.future_ts;
        self.rejected_ts += batch.rejected_ts;
    }

    /// The human summary printed on stderr at exit.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "secpipe: {} lines ({} bytes) from {} input(s): {} parsed, {} unparsed, {} truncated, {} dropped bytes, {} future timestamps ignored",
            self.lines,
            self.bytes,
            self.inputs,
            self.parsed,
            self.unparsed,
            self.truncated,
            self.dropped_bytes,
            self.future_ts
        );
        if self.rejected_ts + self.ahead_of_stream + self.forced_events > 0 {
            let _ = writeln!(
                s,
                "secpipe: time: {} timestamps out of range, {} ahead of the stream's progress (not believed), {} events forced through a full reorder buffer",
                self.rejected_ts, self.ahead_of_stream, self.forced_events
            );
        }
        let kinds: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| self.by_kind[**k as usize] > 0)
            .map(|k| format!("{} {}", k.as_str(), self.by_kind[*k as usize]))
            .collect();
        if !kinds.is_empty() {
            let _ = writeln!(s, "secpipe: events: {}", kinds.join(", "));
        }
        if self.ambiguous_addresses > 0 {
            let _ = writeln!(
                s,
                "secpipe: {} lines with an ambiguous address (two candidates a crafted name could have written): src_ip left empty",
                self.ambiguous_addresses
            );
        }
        if self.forged_sources > 0 {
            let _ = writeln!(
                s,
                "secpipe: {} journal entries not counted: forged_source (the trusted _COMM/_EXE/_UID disagree with the app they claim)",
                self.forged_sources
            );
        }
        let _ = write!(s, "secpipe: {} alerts", self.alerts);
        if !self.alerts_by_rule.is_empty() {
            let rules: Vec<String> = self
                .alerts_by_rule
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = write!(s, " ({})", rules.join(", "));
        }
        let _ = writeln!(s, ", {} late events", self.late_events);
        let sessions = &self.sessions;
        if *sessions != crate::detect::SessionStats::default() {
            let _ = writeln!(
                s,
                "secpipe: sessions: {} attempts counted toward their session's address, {} attempts whose session named none, {} open attempts forgiven by a login of their user, {} sessions evicted at the cap",
                sessions.attempts_bound,
                sessions.attempts_unattributed,
                sessions.attempts_forgiven,
                sessions.sessions_evicted
            );
        }
        for e in &self.input_errors {
            let _ = writeln!(s, "secpipe: input error: {e}");
        }
        s
    }
}
