//! Swapping a running detector's rules (`SIGHUP`, see `pipeline::reload`) without losing the
//! state of the rules that did not change.
//!
//! A rule is *unchanged* when its whole compiled definition (every field, compared as a value)
//! and its key cap are the same: it keeps its engine, that is its windows, evidence, cooldowns
//! and silence deadlines. A rule whose definition changed in any way, even only its threshold,
//! **starts afresh**: its old counts were gathered under another definition (other kinds,
//! conditions, window, key, grouping), and an alert raised from them would show a count,
//! threshold and evidence that the new rule never decided. Starting afresh can at worst delay
//! an alert by one threshold's worth of events; keeping could raise one the new rule would not
//! (a narrowed rule alerting on events it no longer selects), or, after a lowered threshold,
//! fire at once on a key whose attack ended an hour ago with a window that no longer exists.
//! Its *cooldowns* are carried over, when the new definition keys the same way
//! ([`RuleEngine::carry_cooldowns`]): a key alerted (and with `--block` banned) just before the
//! change stays quiet until its cooldown ends, instead of alerting again once the attack still
//! going on reaches the new threshold.
//! Removed rules drop their state at once (so memory does not grow across reloads); new rules
//! start empty.
//!
//! What is not per rule stays whatever changes: the reorder buffer, the ahead hold, sessions
//! and held PAM attempts, the watermark and the counters. Events still in the reorder buffer
//! are judged by the rules in force when the watermark releases them, that is the new ones.

use super::engine::RuleEngine;
use super::{Detector, RuleSet, slab};

/// What a reload did to each rule, by id, for the message on stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RuleChanges {
    /// Unchanged: their state was kept.
    pub kept: Vec<String>,
    /// Changed: they start afresh.
    pub restarted: Vec<String>,
    pub added: Vec<String>,
    /// Removed or disabled: their state is dropped.
    pub removed: Vec<String>,
}

impl RuleChanges {
    /// One line for stderr, e.g. `12 rules kept their state; changed, starting afresh:
    /// auth.bruteforce`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} rules kept their state", self.kept.len())];
        for (what, ids) in [
            ("changed, starting afresh", &self.restarted),
            ("added", &self.added),
            ("removed", &self.removed),
        ] {
            if !ids.is_empty() {
                parts.push(format!("{what}: {}", ids.join(", ")));
            }
        }
        parts.join("; ")
    }
}

impl Detector {
    /// Run `rules` from now on, keeping the state of every rule whose definition did not
    /// change (see the module doc for why a changed rule starts afresh). Call it between
    /// pushes; it costs nothing on [`Detector::push`].
    ///
    /// ```
    /// use secpipe::detect::{DetectOptions, Detector, RuleSet};
    /// use secpipe::event::{Event, Kind};
    /// let attempt = |s: i64| Event { ts: s * 1_000_000, kind: Kind::AuthFailure, src_ip: "192.0.2.1".parse().ok(), ..Event::default() };
    /// let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    /// let mut alerts = Vec::new();
    /// for ts in 0..4 {
    ///     detector.push(attempt(ts), &mut alerts);
    /// }
    /// // The watermark passes them (lateness 10 s): they are in auth.bruteforce's window.
    /// detector.advance_event_time(14_000_000, &mut alerts);
    /// // Another rule changes: auth.bruteforce keeps its four attempts, the fifth fires.
    /// let other = RuleSet::with_config("s.toml", "[rules.\"http.request_rate\"]\nthreshold = 500\n").unwrap();
    /// let changes = detector.reload(other);
    /// assert_eq!(changes.restarted, ["http.request_rate"]);
    /// detector.push(attempt(5), &mut alerts);
    /// detector.finish(&mut alerts);
    /// assert_eq!(alerts.len(), 1);
    /// assert_eq!(alerts[0].count, 5);
    /// ```
    pub fn reload(&mut self, rules: RuleSet) -> RuleChanges {
        let cap = rules.max_keys.unwrap_or(self.default_max_keys);
        let hasher = slab::seeded_hasher();
        let distinct = foldhash::fast::FixedState::with_seed(self.distinct_seed);
        let mut old: Vec<Option<RuleEngine>> = std::mem::take(&mut self.engines)
            .into_iter()
            .map(Some)
            .collect();
        let mut changes = RuleChanges::default();
        for rule in rules.rules.into_iter().filter(|r| r.enabled) {
            let fresh = RuleEngine::new(rule, cap, hasher.clone(), distinct.clone());
            let same_id = old
                .iter_mut()
                .find(|e| e.as_ref().is_some_and(|e| e.rule.id == fresh.rule.id));
            let engine = match same_id {
                Some(slot) => match slot.take() {
                    Some(before) if before.rule == fresh.rule && before.cap() == fresh.cap() => {
                        changes.kept.push(fresh.rule.id.clone());
                        before
                    }
                    before => {
                        changes.restarted.push(fresh.rule.id.clone());
                        let mut fresh = fresh;
                        if let Some(before) = &before {
                            fresh.carry_cooldowns(before);
                        }
                        fresh
                    }
                },
                None => {
                    changes.added.push(fresh.rule.id.clone());
                    fresh
                }
            };
            self.engines.push(engine);
        }
        // What is left had no rule of its id in the new set: its state goes now.
        changes
            .removed
            .extend(old.into_iter().flatten().map(|e| e.rule.id));
        self.index_engines();
        changes
    }
}

#[cfg(test)]
mod tests {
    use crate::alert::Alert;
    use crate::detect::{DetectOptions, Detector, RuleSet};
    use crate::event::{Event, Kind};

    fn failure(ts: i64, ip: &str) -> Event {
        Event {
            ts: ts * 1_000_000,
            kind: Kind::AuthFailure,
            src_ip: ip.parse().ok(),
            host: Some("gw".into()),
            ..Event::default()
        }
    }

    fn bruteforce_alerts(alerts: &[Alert]) -> Vec<&Alert> {
        alerts
            .iter()
            .filter(|a| a.rule == "auth.bruteforce")
            .collect()
    }

    /// Let the watermark pass every event up to `secs` (lateness 10 s), so that they are in
    /// the rules' windows rather than in the reorder buffer.
    fn settle(detector: &mut Detector, secs: i64, alerts: &mut Vec<Alert>) {
        detector.advance_event_time((secs + 11) * 1_000_000, alerts);
    }

    fn bruteforce_keys(detector: &Detector) -> usize {
        detector
            .state_keys()
            .iter()
            .find(|(rule, _)| rule == "auth.bruteforce")
            .map_or(0, |(_, n)| *n)
    }

    fn config(text: &str) -> RuleSet {
        match RuleSet::with_config("s.toml", text) {
            Ok(rules) => rules,
            Err(e) => panic!("test config: {e}"),
        }
    }

    #[test]
    fn unchanged_rules_keep_their_window_across_a_reload() {
        let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
        let mut alerts = Vec::new();
        for ts in 0..4 {
            detector.push(failure(ts, "198.51.100.9"), &mut alerts);
        }
        settle(&mut detector, 3, &mut alerts);
        assert_eq!(
            bruteforce_keys(&detector),
            1,
            "the attempts are in the window"
        );
        let changes = detector.reload(RuleSet::builtin());
        assert!(changes.restarted.is_empty() && changes.added.is_empty());
        assert_eq!(changes.kept.len(), 13);
        detector.push(failure(4, "198.51.100.9"), &mut alerts);
        detector.finish(&mut alerts);
        let fired = bruteforce_alerts(&alerts);
        assert_eq!(fired.len(), 1, "{alerts:?}");
        assert_eq!(fired[0].count, 5);
    }

    #[test]
    fn a_changed_rule_starts_afresh_even_when_its_threshold_was_lowered() {
        let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
        let mut alerts = Vec::new();
        for ts in 0..4 {
            detector.push(failure(ts, "198.51.100.9"), &mut alerts);
        }
        settle(&mut detector, 3, &mut alerts);
        assert_eq!(
            bruteforce_keys(&detector),
            1,
            "the attempts are in the window"
        );
        let changes = detector.reload(config("[rules.\"auth.bruteforce\"]\nthreshold = 3\n"));
        assert_eq!(changes.restarted, ["auth.bruteforce"]);
        // Two more: under the kept state they would make 6 ≥ 3; afresh they are 2 < 3.
        for ts in 4..6 {
            detector.push(failure(ts, "198.51.100.9"), &mut alerts);
        }
        settle(&mut detector, 50, &mut alerts);
        assert!(bruteforce_alerts(&alerts).is_empty(), "{alerts:?}");
        detector.push(failure(100, "198.51.100.9"), &mut alerts);
        detector.finish(&mut alerts);
        let fired = bruteforce_alerts(&alerts);
        assert_eq!(fired.len(), 1, "{alerts:?}");
        assert_eq!((fired[0].count, fired[0].threshold), (3, 3));
    }

    /// The reviewer's case: raising a threshold mid-attack repeated the alert (and with
    /// `--block`, the ban) that the rule's cooldown had just quietened.
    #[test]
    fn a_changed_rule_keeps_the_cooldowns_of_the_keys_it_alerted_on() {
        let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
        let mut alerts = Vec::new();
        for ts in 0..5 {
            detector.push(failure(ts, "198.51.100.9"), &mut alerts);
        }
        settle(&mut detector, 4, &mut alerts);
        assert_eq!(bruteforce_alerts(&alerts).len(), 1, "{alerts:?}");
        let changes = detector.reload(config("[rules.\"auth.bruteforce\"]\nthreshold = 6\n"));
        assert_eq!(changes.restarted, ["auth.bruteforce"]);
        // The attack goes on, inside the alert's cooldown (the rule's 5-minute window).
        for ts in 20..40 {
            detector.push(failure(ts, "198.51.100.9"), &mut alerts);
        }
        settle(&mut detector, 40, &mut alerts);
        assert_eq!(
            bruteforce_alerts(&alerts).len(),
            1,
            "alerted again: {alerts:?}"
        );
        // Another address still alerts at the new threshold: the rule itself started afresh.
        // 20 s apart, so that the escalation tier (5 in 1m) does not fire first.
        for i in 0..6 {
            detector.push(failure(60 + 20 * i, "198.51.100.77"), &mut alerts);
        }
        detector.finish(&mut alerts);
        let fired = bruteforce_alerts(&alerts);
        assert_eq!(fired.len(), 2, "{alerts:?}");
        assert_eq!((fired[1].count, fired[1].threshold), (6, 6));
    }

    #[test]
    fn removed_rules_drop_their_state_and_added_rules_start_empty() {
        let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
        let mut alerts = Vec::new();
        for i in 0..50 {
            detector.push(failure(i, &format!("198.51.100.{i}")), &mut alerts);
        }
        settle(&mut detector, 50, &mut alerts);
        assert_eq!(bruteforce_keys(&detector), 50);
        let keys_before = detector.live_keys();
        let changes = detector.reload(config(
            "[rules.\"auth.bruteforce\"]\nenabled = false\n\n[rules.\"auth.slow\"]\nprimitive = \"count\"\nkinds = [\"auth.failure\"]\nkey = \"src_ip\"\nthreshold = 2\nwindow = \"1h\"\nseverity = \"LOW\"\nsummary = \"slow {key}\"\n",
        ));
        assert_eq!(changes.removed, ["auth.bruteforce"]);
        assert_eq!(changes.added, ["auth.slow"]);
        assert!(detector.live_keys() < keys_before);
        assert!(
            !detector
                .state_keys()
                .iter()
                .any(|(r, _)| r == "auth.bruteforce")
        );
        detector.push(failure(60, "198.51.100.1"), &mut alerts);
        detector.push(failure(61, "198.51.100.1"), &mut alerts);
        detector.finish(&mut alerts);
        let slow: Vec<_> = alerts.iter().filter(|a| a.rule == "auth.slow").collect();
        assert_eq!(slow.len(), 1, "{alerts:?}");
        assert_eq!(slow[0].count, 2);
    }
}
