//! `secpipe test`: annotated log files that check grammars and rules, like `fail2ban-regex`
//! with its annotated test logs.
//!
//! The format is in [`syntax`]. Running a file: each scenario's log lines go through the same
//! parse and classify functions as the pipeline ([`crate::pipeline::parse_batch`],
//! [`crate::pipeline::classify_batch`]), with a fresh parser (year inference starts afresh),
//! then through one [`Detector`] in line order and [`Detector::finish`], as `secpipe FILE`
//! would. Each `# expect:` field is compared with the event; each scenario with alert
//! expectations is compared with the alerts raised, as a multiset of (rule, key).
//!
//! ```
//! use secpipe::classify::Classifier;
//! use secpipe::detect::{DetectOptions, RuleSet};
//! use secpipe::parse::ParseSettings;
//! use secpipe::testfile::{TestContext, parse_test_file};
//!
//! let classifier = Classifier::builtin().unwrap();
//! let ctx = TestContext {
//!     classifier: &classifier,
//!     rules: &RuleSet::builtin(),
//!     parse: &ParseSettings { tz: jiff::tz::TimeZone::UTC, year: Some(2026) },
//!     detect: &DetectOptions::default(),
//! };
//! let text = "# expect: kind=auth.failure src_ip=192.0.2.9 user=root\n\
//!             Nov 23 11:00:01 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n";
//! let file = parse_test_file("t.log", text, &[]).unwrap();
//! let outcome = ctx.run(&file);
//! assert_eq!(outcome.mismatches.len(), 1);
//! assert_eq!(outcome.mismatches[0].to_string(), "t.log:2: src_ip: expected 192.0.2.9, got 192.0.2.1");
//! ```

pub mod syntax;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::alert::Alert;
use crate::classify::Classifier;
use crate::detect::{DetectOptions, Detector, RuleSet};
use crate::event::{Event, FieldValue, format_ts};
use crate::frame::LineBatch;
use crate::parse::ParseSettings;
use crate::pipeline::{classify_batch, parse_batch};
pub use syntax::{ExpectField, Expectation, SyntaxError, TestFile, parse_test_file};

/// What a test file runs against.
pub struct TestContext<'a> {
    pub classifier: &'a Classifier,
    pub rules: &'a RuleSet,
    pub parse: &'a ParseSettings,
    pub detect: &'a DetectOptions,
}

/// One difference between what a test file expects and what secpipe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub path: String,
    pub line: usize,
    /// `src_ip`, or `alert auth.bruteforce 192.0.2.1`.
    pub what: String,
    pub expected: String,
    pub got: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: expected {}, got {}",
            self.path,
            self.line,
            self.what,
            shown(&self.expected),
            shown(&self.got)
        )
    }
}

/// The result of running one file.
#[derive(Debug, Default)]
pub struct Outcome {
    pub lines: usize,
    pub expectations: usize,
    pub alert_checks: usize,
    pub mismatches: Vec<Mismatch>,
}

impl TestContext<'_> {
    /// Run every scenario of `file`.
    pub fn run(&self, file: &TestFile) -> Outcome {
        let mut outcome = Outcome::default();
        for scenario in &file.scenarios {
            let events = self.classify_lines(&file.path, scenario);
            for (line, ev) in scenario.lines.iter().zip(&events) {
                outcome.lines += 1;
                for expect in &line.expect {
                    outcome.expectations += 1;
                    let got = field_text(ev, expect.field);
                    if got != expect.value {
                        outcome.mismatches.push(Mismatch {
                            path: file.path.clone(),
                            line: line.line,
                            what: expect.field.name().to_string(),
                            expected: expect.value.clone().unwrap_or_else(|| "-".into()),
                            got: got.unwrap_or_else(|| "-".into()),
                        });
                    }
                }
            }
            if let Some(expected) = &scenario.alerts {
                let alerts = self.detect(events);
                outcome.alert_checks += expected.len().max(1);
                compare_alerts(file, scenario, expected, &alerts, &mut outcome.mismatches);
            }
        }
        outcome
    }

    /// The events of a scenario's lines, in order, exactly as the pipeline makes them.
    fn classify_lines(&self, path: &str, scenario: &syntax::Scenario) -> Vec<Event> {
        let source: Arc<str> = Arc::from(path);
        let mut batch = LineBatch::new(source, 1, crate::event::now_micros());
        for line in &scenario.lines {
            batch.push(line.text.as_bytes(), false);
        }
        let mut parsers = HashMap::new();
        let (mut events, envelopes) = parse_batch(&batch, &mut parsers, self.parse);
        classify_batch(&mut events, envelopes, self.classifier);
        let mut events = events.events;
        // Evidence and mismatches name lines of the test file, not of the log lines alone.
        for (ev, line) in events.iter_mut().zip(&scenario.lines) {
            ev.line = line.line as u64;
        }
        events
    }

    fn detect(&self, events: Vec<Event>) -> Vec<Alert> {
        let mut detector = Detector::new(self.rules.clone(), self.detect.clone());
        let mut alerts = Vec::new();
        for ev in events {
            detector.push(ev, &mut alerts);
        }
        detector.finish(&mut alerts);
        alerts
    }
}

/// Expected and raised alerts as multisets of (rule, key): each expected one not raised, and
/// each raised one not expected, is a mismatch.
fn compare_alerts(
    file: &TestFile,
    scenario: &syntax::Scenario,
    expected: &[syntax::ExpectedAlert],
    alerts: &[Alert],
    out: &mut Vec<Mismatch>,
) {
    let mut unmatched: Vec<&Alert> = alerts.iter().collect();
    for want in expected {
        match unmatched
            .iter()
            .position(|a| a.rule == want.rule && a.key_value == want.key)
        {
            Some(i) => {
                unmatched.remove(i);
            }
            None => out.push(Mismatch {
                path: file.path.clone(),
                line: want.line,
                what: format!("alert {} {}", want.rule, want.key),
                expected: "raised".into(),
                got: "not raised".into(),
            }),
        }
    }
    // An unexpected alert is reported at the line of its last evidence: where it fired.
    for alert in unmatched {
        let line = alert.evidence.last().map_or(scenario.line, |e| {
            usize::try_from(e.line).unwrap_or(scenario.line)
        });
        out.push(Mismatch {
            path: file.path.clone(),
            line,
            what: format!("alert {} {}", alert.rule, alert.key_value),
            expected: "not raised".into(),
            got: format!("raised ({} of threshold {})", alert.count, alert.threshold),
        });
    }
}

/// The event's value of `field` as an expectation writes it; `None` for no value.
fn field_text(ev: &Event, field: ExpectField) -> Option<String> {
    // A time found in the line; a receive time stands in for none.
    if field == ExpectField::Ts {
        return (!ev.ts_inferred).then(|| format_ts(ev.ts));
    }
    Some(match field.get(ev)? {
        FieldValue::Text(t) => t.to_string(),
        FieldValue::Number(n) => n.to_string(),
        FieldValue::Ip(ip) => ip.to_string(),
        FieldValue::Time(ts) => format_ts(ts),
        FieldValue::Bool(b) => b.to_string(),
    })
}

/// Log text is attacker-controlled and goes to a terminal: control characters are shown
/// escaped, and values with spaces quoted, so a mismatch reads unambiguously.
fn shown(value: &str) -> String {
    let needs_quotes = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"');
    if !needs_quotes {
        return value.to_string();
    }
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => s.extend(c.escape_default()),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_values_are_escaped() {
        assert_eq!(shown("a\u{1b}[2Jb"), "\"a\\u{1b}[2Jb\"");
        assert_eq!(shown("root"), "root");
        assert_eq!(shown("a b"), "\"a b\"");
    }
}
