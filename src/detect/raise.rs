//! The one place an [`Alert`] is made: every alert (a threshold crossed, a silence, a storm of
//! silences, a rule's key cap) goes through [`AlertBuilder`], so the parts every alert shares
//! are decided once: the id (a hash of rule, key and window start, so a replay gives the same
//! ids), priority and response deadline from the severity (or the rule's own deadline), and
//! the key as users read it.

use super::rules::{Rule, fmt_duration};
use crate::action::Action;
use crate::alert::{Alert, Evidence, Severity};

/// An alert being put together; [`AlertBuilder::build`] makes the [`Alert`].
///
/// ```text
/// let alert = AlertBuilder::for_rule(rule, key_text)
///     .severity(Severity::High)
///     .counted(value, threshold)
///     .window(start, end)
///     .seen(first, last)
///     .summary(text)
///     .evidence(evidence)
///     .actions(rule.actions_for(key.ip()))
///     .build();
/// ```
pub(super) struct AlertBuilder<'r> {
    rule: &'r str,
    /// The rule's own response deadline, if it sets one; else the severity's.
    respond_within: Option<&'r str>,
    severity: Severity,
    key_field: &'r str,
    key_value: String,
    count: u64,
    threshold: u64,
    window_start: i64,
    window_end: i64,
    first_seen: i64,
    last_seen: i64,
    summary: String,
    evidence: Vec<Evidence>,
    action: Vec<Action>,
}

impl<'r> AlertBuilder<'r> {
    /// An alert of `rule` on the key value `key_value` (as [`super::key::KeyValue::display`]
    /// writes it), at the rule's severity until [`AlertBuilder::severity`] says otherwise.
    pub(super) fn for_rule(rule: &'r Rule, key_value: String) -> Self {
        Self::new(&rule.id, rule.key.name(), key_value, rule.severity)
            .with_respond_within(rule.respond_within.as_deref())
    }

    /// An alert secpipe raises about itself (`secpipe.state_overflow`): no rule's deadline
    /// applies, the severity's does.
    pub(super) fn internal(
        id: &'r str,
        key_field: &'r str,
        key_value: String,
        severity: Severity,
    ) -> Self {
        Self::new(id, key_field, key_value, severity)
    }

    fn new(rule: &'r str, key_field: &'r str, key_value: String, severity: Severity) -> Self {
        AlertBuilder {
            rule,
            respond_within: None,
            severity,
            key_field,
            key_value,
            count: 0,
            threshold: 0,
            window_start: 0,
            window_end: 0,
            first_seen: 0,
            last_seen: 0,
            summary: String::new(),
            evidence: Vec::new(),
            action: Vec::new(),
        }
    }

    fn with_respond_within(mut self, respond_within: Option<&'r str>) -> Self {
        self.respond_within = respond_within;
        self
    }

    pub(super) fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The count, sum or number of distinct values, and the threshold it crossed.
    pub(super) fn counted(mut self, count: u64, threshold: u64) -> Self {
        self.count = count;
        self.threshold = threshold;
        self
    }

    /// The window the alert is about (µs); its start goes into the id.
    pub(super) fn window(mut self, start: i64, end: i64) -> Self {
        self.window_start = start;
        self.window_end = end;
        self
    }

    /// First and last time an event of the alert was seen (µs).
    pub(super) fn seen(mut self, first: i64, last: i64) -> Self {
        self.first_seen = first;
        self.last_seen = last;
        self
    }

    pub(super) fn summary(mut self, summary: String) -> Self {
        self.summary = summary;
        self
    }

    pub(super) fn evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }

    pub(super) fn actions(mut self, actions: Vec<Action>) -> Self {
        self.action = actions;
        self
    }

    pub(super) fn build(self) -> Alert {
        let respond_within = match self.respond_within {
            Some(own) => own.to_string(),
            None => self.severity.respond_within().to_string(),
        };
        Alert {
            id: alert_id(self.rule, &self.key_value, self.window_start),
            rule: self.rule.to_string(),
            severity: self.severity,
            priority: self.severity.priority().to_string(),
            respond_within,
            key_field: self.key_field.to_string(),
            key_value: self.key_value,
            count: self.count,
            threshold: self.threshold,
            window_start: self.window_start,
            window_end: self.window_end,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            summary: self.summary,
            evidence: self.evidence,
            action: self.action,
            unverified: false,
        }
    }
}

pub(crate) use crate::alert::alert_id;

/// A rule's summary template with `{key}`, `{count}`, `{threshold}`, `{window}` and `{field}`
/// filled in. The result is alert text only (JSON-escaped, or cleaned for a terminal, when
/// written), never part of a command.
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_id_hashes_rule_key_and_window_start() {
        let a = AlertBuilder::internal("r", "rule", "k".into(), Severity::High)
            .window(1, 99)
            .build();
        assert_eq!(a.id, alert_id("r", "k", 1));
        assert_eq!(
            (a.priority.as_str(), a.respond_within.as_str()),
            ("P1", "1h")
        );
    }

    #[test]
    fn a_rules_own_deadline_wins_over_the_severitys() {
        let mut rule = super::super::rules::blank_rule("x");
        rule.respond_within = Some("5m".into());
        let a = AlertBuilder::for_rule(&rule, "k".into())
            .severity(Severity::Critical)
            .build();
        assert_eq!(
            (a.priority.as_str(), a.respond_within.as_str()),
            ("P0", "5m")
        );
        rule.respond_within = None;
        let b = AlertBuilder::for_rule(&rule, "k".into())
            .severity(Severity::Critical)
            .build();
        assert_eq!(b.respond_within, "15m");
    }
}
