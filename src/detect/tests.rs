//! Scenario tests for the rule engine. Events are built by hand; times are in seconds.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::alert::Severity;
use crate::event::{Attempt, Kind};

const S: i64 = 1_000_000;
const MIN: i64 = 60 * S;

/// A base time well away from the epoch: 2026-11-23T00:00:00Z.
const T0: i64 = 1_795_392_000 * S;

fn ev(ts: i64, kind: Kind) -> Event {
    Event {
        source: Arc::from("test.log"),
        ts: T0 + ts,
        kind,
        raw: format!("line at {ts}").into_bytes().into(),
        ..Event::default()
    }
}

fn fail(ts: i64, ip: &str) -> Event {
    Event {
        src_ip: ip.parse().ok(),
        ..ev(ts, Kind::AuthFailure)
    }
}

fn login(ts: i64, user: &str, ip: &str) -> Event {
    Event {
        user: Some(user.into()),
        src_ip: ip.parse().ok(),
        ..ev(ts, Kind::AuthSuccess)
    }
}

fn http(ts: i64, ip: &str, status: u16) -> Event {
    Event {
        src_ip: ip.parse().ok(),
        http_method: Some("GET".into()),
        http_path: Some("/".into()),
        http_status: Some(status),
        ..ev(ts, Kind::HttpRequest)
    }
}

fn data(ts: i64, kind: Kind, actor: &str, count: u64) -> Event {
    Event {
        actor: Some(actor.into()),
        count: Some(count),
        ..ev(ts, kind)
    }
}

fn host_line(ts: i64, kind: Kind, host: &str) -> Event {
    Event {
        host: Some(host.into()),
        ..ev(ts, kind)
    }
}

/// Run events (numbered as lines of one input, in the given order) through a detector.
fn run_with(rules: RuleSet, opts: DetectOptions, events: Vec<Event>) -> (Vec<Alert>, DetectStats) {
    let mut detector = Detector::new(rules, opts);
    let mut alerts = Vec::new();
    for (i, mut e) in events.into_iter().enumerate() {
        if e.line == 0 {
            e.line = i as u64 + 1;
        }
        detector.push(e, &mut alerts);
    }
    detector.finish(&mut alerts);
    (alerts, detector.stats().clone())
}

fn run(events: Vec<Event>) -> Vec<Alert> {
    run_with(RuleSet::builtin(), DetectOptions::default(), events).0
}

fn of<'a>(alerts: &'a [Alert], rule: &str) -> Vec<&'a Alert> {
    alerts.iter().filter(|a| a.rule == rule).collect()
}

/// `n` events spaced `step` apart, built by `make(ts)`.
fn spaced(n: i64, step: i64, make: impl Fn(i64) -> Event) -> Vec<Event> {
    (0..n).map(|i| make(i * step)).collect()
}

#[test]
fn default_pack_has_every_rule() {
    let rules = RuleSet::builtin();
    assert_eq!(
        rules.ids(),
        [
            "auth.bruteforce",
            "auth.concurrent_ips",
            "auth.night_login",
            "auth.apikey_revoke",
            "http.forbidden_rate",
            "http.request_rate",
            "http.injection",
            "data.bulk_read",
            "data.bulk_delete",
            "data.namespace_violation",
            "data.search_burst",
            "log.error_surge",
            "log.silence",
        ]
    );
    let text = rules.describe();
    assert_eq!(text.lines().count(), 13);
    assert!(text.contains("auth.bruteforce"));
    assert!(
        text.contains("count ≥ 5 in 5m (HIGH if ≥ 5 in 1m)"),
        "{text}"
    );
    assert!(text.contains("no event for 10m"));
}

// ---- auth.bruteforce -------------------------------------------------------------------------

#[test]
fn bruteforce_fires_at_five_attempts_in_five_minutes() {
    // One per minute: 5 within 4 min, never 5 within 1 min, so MEDIUM.
    let alerts = run(spaced(5, MIN, |t| fail(t, "203.0.113.7")));
    let brute = of(&alerts, "auth.bruteforce");
    assert_eq!(brute.len(), 1);
    let a = brute[0];
    assert_eq!(a.severity, Severity::Medium);
    assert_eq!(
        (a.priority.as_str(), a.respond_within.as_str()),
        ("P2", "4h")
    );
    assert_eq!(
        (a.key_field.as_str(), a.key_value.as_str()),
        ("src_ip", "203.0.113.7")
    );
    assert_eq!((a.count, a.threshold), (5, 5));
    assert_eq!(a.summary, "203.0.113.7 made 5 failed login attempts in 5m");
    assert_eq!((a.first_seen, a.last_seen), (T0, T0 + 4 * MIN));
    assert_eq!((a.window_start, a.window_end), (T0 - MIN, T0 + 4 * MIN));
    assert_eq!(a.evidence.len(), 5);
    assert_eq!(a.evidence[0].line, 1);
    assert_eq!(
        &*a.evidence[4].raw,
        format!("line at {}", 4 * MIN).as_bytes()
    );
    assert_eq!(
        crate::action::Action::pairs(&a.action),
        vec![
            ("block".to_string(), "203.0.113.7".to_string()),
            ("for".to_string(), "15m".to_string())
        ]
    );
}

#[test]
fn bruteforce_quiet_one_below() {
    assert!(run(spaced(4, MIN, |t| fail(t, "203.0.113.7"))).is_empty());
    // Five, but the first has left the 5-minute window when the fifth arrives.
    assert!(run(spaced(5, 75 * S, |t| fail(t, "203.0.113.7"))).is_empty());
}

#[test]
fn bruteforce_escalates_to_high_within_one_minute() {
    let alerts = run(spaced(5, 10 * S, |t| fail(t, "198.51.100.2")));
    assert_eq!(
        alerts.len(),
        1,
        "one alert, straight at the higher severity"
    );
    assert_eq!(alerts[0].severity, Severity::High);
    assert_eq!(alerts[0].priority, "P1");
    assert_eq!(alerts[0].window_start, alerts[0].window_end - MIN);
}

#[test]
fn escalation_breaks_through_the_cooldown_once() {
    // MEDIUM at 4 min, then a fast burst inside the cooldown: HIGH once, then silence.
    let mut events = spaced(5, MIN, |t| fail(t, "192.0.2.1"));
    events.extend(spaced(8, 5 * S, |t| fail(4 * MIN + 5 * S + t, "192.0.2.1")));
    let alerts = run(events);
    let sev: Vec<Severity> = alerts.iter().map(|a| a.severity).collect();
    assert_eq!(sev, [Severity::Medium, Severity::High]);
    assert_ne!(alerts[0].id, alerts[1].id);
}

#[test]
fn cooldown_then_fresh_counts() {
    let ip = "192.0.2.9";
    // Alert at 4 min; cooldown (= window, 5 min) until 9 min.
    let mut events = spaced(5, MIN, |t| fail(t, ip));
    // During the cooldown: ignored (and never 5 in 1 min, so no escalation).
    events.extend(spaced(4, MIN, |t| fail(5 * MIN + t, ip)));
    // After it: counts start from zero, so the 5th fresh attempt alerts, not the 1st.
    events.extend(spaced(5, MIN, |t| fail(9 * MIN + t, ip)));
    let alerts = run(events);
    let brute = of(&alerts, "auth.bruteforce");
    assert_eq!(brute.len(), 2, "{brute:#?}");
    assert_eq!(brute[1].window_end, T0 + 13 * MIN);
    assert_eq!(brute[1].count, 5);
    assert_eq!(brute[1].first_seen, T0 + 9 * MIN);
    assert_ne!(brute[0].id, brute[1].id);
}

#[test]
fn an_attacker_in_the_unspecified_64_is_alerted_but_never_blocked() {
    // `::1` keys as `::/64`: blocking that would read as "every address" to some firewalls.
    let alerts = run(spaced(5, MIN, |t| fail(t, "::1")));
    let brute = of(&alerts, "auth.bruteforce");
    assert_eq!(brute.len(), 1, "{alerts:#?}");
    assert_eq!(brute[0].key_value, "::/64");
    assert!(brute[0].action.is_empty(), "{:?}", brute[0].action);
    // An ordinary address keeps its block and its duration.
    let alerts = run(spaced(5, MIN, |t| fail(t, "2001:db8::1")));
    assert_eq!(
        crate::action::Action::pairs(&alerts[0].action),
        vec![
            ("block".to_string(), "2001:db8::/64".to_string()),
            ("for".to_string(), "15m".to_string())
        ]
    );
}

#[test]
fn ipv6_attackers_are_grouped_by_64() {
    let alerts = run(spaced(5, MIN, |t| {
        fail(t, &format!("2001:db8:1:2:{:x}::1", t / MIN + 1))
    }));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].key_value, "2001:db8:1:2::/64");
    assert_eq!(
        crate::action::Action::pairs(&alerts[0].action)[0].1,
        "2001:db8:1:2::/64"
    );

    // Different /64s stay apart; a configured prefix of 128 keys single addresses.
    assert!(
        run(spaced(5, MIN, |t| fail(
            t,
            &format!("2001:db8:{:x}::1", t / MIN + 1)
        )))
        .is_empty()
    );
    let rules =
        RuleSet::with_config("c.toml", "[rules.\"auth.bruteforce\"]\nipv6_prefix = 128\n").unwrap();
    let (alerts, _) = run_with(
        rules,
        DetectOptions::default(),
        spaced(5, MIN, |t| {
            fail(t, &format!("2001:db8:1:2:{:x}::1", t / MIN + 1))
        }),
    );
    assert!(alerts.is_empty());
}

// ---- attempts, not lines ---------------------------------------------------------------------

/// One sshd session (pid) with the given line roles.
fn session(start: i64, pid: u32, ip: &str, roles: &[Attempt]) -> Vec<Event> {
    roles
        .iter()
        .enumerate()
        .map(|(i, &attempt)| Event {
            host: Some("gw".into()),
            app: Some("sshd".into()),
            pid: Some(pid),
            attempt,
            ..fail(start + i as i64 * S, ip)
        })
        .collect()
}

#[test]
fn two_attempts_in_five_lines_do_not_alert() {
    let lines = session(
        0,
        4242,
        "203.0.113.50",
        &[
            Attempt::Start,
            Attempt::Start,
            Attempt::End,
            Attempt::End,
            Attempt::Summary,
        ],
    );
    assert_eq!(lines.len(), 5);
    assert!(run(lines).is_empty());
}

#[test]
fn five_real_attempts_alert() {
    let mut lines = Vec::new();
    for i in 0..5 {
        // Each attempt: Invalid user + PAM + Failed password, in its own connection.
        lines.extend(session(
            i * 40 * S,
            100 + i as u32,
            "203.0.113.51",
            &[
                Attempt::Start,
                Attempt::Start,
                Attempt::End,
                Attempt::Summary,
            ],
        ));
    }
    let alerts = run(lines);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count, 5);
}

/// Four failed logins, then a fifth connection whose first PAM module (pam_unix) fails and
/// whose second (pam_ldap) accepts: `Accepted password for rda` forgives its open attempt
/// (fail2ban's F-MLFFORGET), so four attempts, no alert. With a lone PAM failure instead (the
/// client went away before `Failed password`), five attempts: an alert, at end of input too.
#[test]
fn a_login_forgives_its_sessions_open_attempt() {
    let ip = "198.51.100.113";
    let mut lines = Vec::new();
    for i in 0..4 {
        lines.extend(session(
            i * 10 * S,
            200 + i as u32,
            ip,
            &[Attempt::Start, Attempt::End],
        ));
    }
    for line in &mut lines {
        line.user = Some("rda".into());
    }
    let pam = |ts: i64| Event {
        host: Some("gw".into()),
        app: Some("sshd".into()),
        pid: Some(300),
        user: Some("rda".into()),
        attempt: Attempt::Start,
        ..fail(ts, ip)
    };
    let accepted = Event {
        host: Some("gw".into()),
        app: Some("sshd".into()),
        pid: Some(300),
        ..login(51 * S, "rda", ip)
    };
    let mut forgiven = lines.clone();
    forgiven.extend([pam(50 * S), accepted.clone()]);
    assert!(of(&run(forgiven), "auth.bruteforce").is_empty());

    let mut intruder = lines.clone();
    intruder.extend([
        pam(50 * S),
        Event {
            user: Some("known".into()),
            ..accepted
        },
    ]);
    let alerts = run(intruder);
    assert_eq!(
        of(&alerts, "auth.bruteforce").len(),
        1,
        "another account's login forgives nothing"
    );

    let mut lone = lines;
    lone.push(pam(50 * S));
    let alerts = run(lone);
    let bruteforce = of(&alerts, "auth.bruteforce");
    assert_eq!(
        bruteforce.len(),
        1,
        "the lone PAM failure counts at end of input"
    );
    assert_eq!(bruteforce[0].count, 5);
}

#[test]
fn message_repeated_counts_n() {
    let mut repeat = session(0, 7, "203.0.113.52", &[Attempt::End, Attempt::Repeat]);
    repeat[1].count = Some(4);
    let alerts = run(repeat);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count, 5);
}

// ---- other auth rules ------------------------------------------------------------------------

#[test]
fn concurrent_ips_at_two_distinct_addresses() {
    let alerts = run(vec![
        login(0, "alice", "192.0.2.1"),
        login(4 * MIN, "alice", "198.51.100.1"),
    ]);
    let c = of(&alerts, "auth.concurrent_ips");
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].key_value.as_str(), c[0].count), ("alice", 2));
    assert_eq!(c[0].severity, Severity::High);
    // Same address twice, or the second address after 5 min: quiet.
    assert!(
        of(
            &run(vec![
                login(0, "bob", "192.0.2.1"),
                login(MIN, "bob", "192.0.2.1")
            ]),
            "auth.concurrent_ips"
        )
        .is_empty()
    );
    assert!(
        of(
            &run(vec![
                login(0, "bob", "192.0.2.1"),
                login(5 * MIN, "bob", "192.0.2.2")
            ]),
            "auth.concurrent_ips"
        )
        .is_empty()
    );
}

#[test]
fn night_login_in_the_configured_zone() {
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let opts = DetectOptions {
        tz: berlin,
        ..DetectOptions::default()
    };
    // T0 is midnight UTC in November: Berlin is UTC+1.
    let at = |utc: i64, user: &str| login(utc, user, "192.0.2.1");
    let events = vec![
        at(30 * MIN, "early"),                  // 01:30 local: before the night window
        at(60 * MIN, "edge_in"),                // 02:00 local: in
        at(4 * 60 * MIN + 59 * MIN, "late_in"), // 05:59 local: in
        at(5 * 60 * MIN, "edge_out"),           // 06:00 local: out
    ];
    let (alerts, _) = run_with(RuleSet::builtin(), opts, events.clone());
    let users: Vec<&str> = of(&alerts, "auth.night_login")
        .iter()
        .map(|a| a.key_value.as_str())
        .collect();
    assert_eq!(users, ["edge_in", "late_in"]);
    assert_eq!(alerts[0].severity, Severity::Low);
    // In UTC the same instants are 00:30, 01:00, 04:59 and 05:00: a different set.
    let utc: Vec<String> = of(&run(events), "auth.night_login")
        .iter()
        .map(|a| a.key_value.clone())
        .collect();
    assert_eq!(utc, ["late_in", "edge_out"]);
}

#[test]
fn apikey_revoke_at_three_in_an_hour() {
    let revoke = |t| Event {
        src_ip: "192.0.2.77".parse().ok(),
        ..ev(t, Kind::ApikeyRevokeAttempt)
    };
    let alerts = run(spaced(3, 20 * MIN, revoke));
    assert_eq!(of(&alerts, "auth.apikey_revoke").len(), 1);
    assert_eq!(alerts[0].severity, Severity::High);
    assert!(run(spaced(2, 20 * MIN, revoke)).is_empty());
    assert!(
        run(spaced(3, 30 * MIN, revoke)).is_empty(),
        "3rd falls outside the hour"
    );
}

// ---- http ------------------------------------------------------------------------------------

#[test]
fn forbidden_rate_at_ten_403s_in_a_minute() {
    let alerts = run(spaced(10, 6 * S, |t| http(t, "192.0.2.3", 403)));
    assert_eq!(of(&alerts, "http.forbidden_rate").len(), 1);
    assert!(run(spaced(9, 6 * S, |t| http(t, "192.0.2.3", 403))).is_empty());
    assert!(run(spaced(10, 6 * S, |t| http(t, "192.0.2.3", 404))).is_empty());
}

/// A scanner whose request lines are `-`, empty or binary (a TLS hello sent to port 80) still
/// got its 403s: no method, but a request with a status, and it counts toward both HTTP rates.
#[test]
fn requests_without_a_method_count_toward_the_http_rates() {
    let garbage = |t| Event {
        http_method: None,
        http_path: None,
        ..http(t, "192.0.2.6", 403)
    };
    let alerts = run(spaced(10, 6 * S, garbage));
    assert_eq!(of(&alerts, "http.forbidden_rate").len(), 1);
    let alerts = run(spaced(101, 500_000, garbage));
    assert_eq!(of(&alerts, "http.request_rate").len(), 1);
    // A 403 that is no request (an application event with a status) is not counted.
    let other = |t| Event {
        kind: Kind::Other,
        ..garbage(t)
    };
    assert!(of(&run(spaced(10, 6 * S, other)), "http.forbidden_rate").is_empty());
}

#[test]
fn injection_attempts_count_as_requests() {
    // 9 plain 403s plus one injection attempt that also got a 403.
    let mut events = spaced(9, S, |t| http(t, "192.0.2.4", 403));
    events.push(Event {
        kind: Kind::InjectionAttempt,
        ..http(9 * S, "192.0.2.4", 403)
    });
    let alerts = run(events);
    assert_eq!(of(&alerts, "http.forbidden_rate").len(), 1);
    assert_eq!(of(&alerts, "http.injection").len(), 1);
}

#[test]
fn request_rate_above_one_hundred_a_minute() {
    let alerts = run(spaced(101, 500_000, |t| http(t, "192.0.2.5", 200)));
    let r = of(&alerts, "http.request_rate");
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].count, r[0].threshold), (101, 101));
    assert_eq!(r[0].evidence.len(), 10, "evidence is capped");
    assert!(run(spaced(100, 500_000, |t| http(t, "192.0.2.5", 200))).is_empty());
}

#[test]
fn injection_fires_on_any_and_escalates_above_five_an_hour() {
    let inj = |t| Event {
        kind: Kind::InjectionAttempt,
        ..http(t, "192.0.2.6", 200)
    };
    let one = run(vec![inj(0)]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].severity, Severity::Medium);
    assert!(run(vec![http(0, "192.0.2.6", 200)]).is_empty());

    let six = run(spaced(6, 5 * MIN, inj));
    let sev: Vec<Severity> = six.iter().map(|a| a.severity).collect();
    assert_eq!(sev, [Severity::Medium, Severity::High]);
    assert_eq!(six[1].count, 6);
    let five = run(spaced(5, 5 * MIN, inj));
    assert_eq!(five.len(), 1);
}

// ---- data ------------------------------------------------------------------------------------

#[test]
fn bulk_read_sums_records() {
    let alerts = run(vec![
        data(0, Kind::DataRead, "agent-7", 400),
        data(30 * S, Kind::DataRead, "agent-7", 600),
    ]);
    let r = of(&alerts, "data.bulk_read");
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].count, r[0].key_value.as_str()), (1000, "agent-7"));
    assert_eq!(r[0].summary, "agent-7 read 1000 records in 1m");
    assert!(
        run(vec![
            data(0, Kind::DataRead, "a", 400),
            data(30 * S, Kind::DataRead, "a", 599)
        ])
        .is_empty()
    );
}

#[test]
fn bulk_delete_sums_over_an_hour() {
    let alerts = run(spaced(4, 15 * MIN, |t| {
        data(t, Kind::DataDelete, "agent-8", 25)
    }));
    assert_eq!(of(&alerts, "data.bulk_delete").len(), 1);
    let mut below = spaced(3, 15 * MIN, |t| data(t, Kind::DataDelete, "agent-8", 25));
    below.push(data(45 * MIN, Kind::DataDelete, "agent-8", 24));
    assert!(run(below).is_empty());
}

#[test]
fn namespace_violation_is_critical_on_first_sight() {
    let alerts = run(vec![data(0, Kind::DataNamespaceViolation, "agent-9", 1)]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity, Severity::Critical);
    assert_eq!(
        (
            alerts[0].priority.as_str(),
            alerts[0].respond_within.as_str()
        ),
        ("P0", "15m")
    );
    assert!(run(vec![data(0, Kind::DataRead, "agent-9", 1)]).is_empty());
}

#[test]
fn search_burst_at_five_hundred_a_minute() {
    let search = |t| data(t, Kind::DataSearch, "agent-10", 1);
    assert_eq!(
        of(&run(spaced(500, 100_000, search)), "data.search_burst").len(),
        1
    );
    assert!(run(spaced(499, 100_000, search)).is_empty());
}

// ---- logs ------------------------------------------------------------------------------------

#[test]
fn error_surge_above_one_hundred_a_day() {
    let err = |t| host_line(t, Kind::LogError, "db1");
    // Keep the host talking so silence stays out of it (one line every 10 min).
    let alerts = run(spaced(101, 10 * MIN, err));
    let e = of(&alerts, "log.error_surge");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key_value, "db1");
    assert!(of(&run(spaced(100, 10 * MIN, err)), "log.error_surge").is_empty());
}

#[test]
fn silence_fires_only_when_the_watermark_passes() {
    let mut d = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut out = Vec::new();
    d.push(host_line(0, Kind::Other, "quiet"), &mut out);
    // The first line of an input waits for others to agree with it; let the clock judge it.
    d.settle_start(T0, &mut out);
    d.push(host_line(10 * MIN, Kind::Other, "busy"), &mut out);
    // Watermark = 10 min − 10 s: the 10-minute deadline has not passed.
    d.push(host_line(10 * MIN + 10 * S, Kind::Other, "busy"), &mut out);
    assert!(out.is_empty(), "{out:#?}");
    d.push(
        host_line(10 * MIN + 10 * S + 1, Kind::Other, "busy"),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(
        (a.rule.as_str(), a.key_value.as_str()),
        ("log.silence", "quiet")
    );
    assert_eq!((a.window_start, a.window_end), (T0, T0 + 10 * MIN));
    assert_eq!(a.evidence.len(), 1);
    assert_eq!(a.severity, Severity::High);
    d.finish(&mut out);
    assert_eq!(out.len(), 1, "busy never went quiet");
}

#[test]
fn silence_at_end_of_input_only_for_hosts_quiet_long_enough() {
    // Input ends 10 min after `quiet`'s last line: not older than max ts − 10 min. Quiet.
    let edge = run(vec![
        host_line(0, Kind::Other, "quiet"),
        host_line(10 * MIN, Kind::Other, "busy"),
    ]);
    assert!(edge.is_empty(), "{edge:#?}");
    // One microsecond more and it is.
    let past = run(vec![
        host_line(0, Kind::Other, "quiet"),
        host_line(10 * MIN + 1, Kind::Other, "busy"),
    ]);
    assert_eq!(of(&past, "log.silence").len(), 1);
    // A single host never goes silent just because the input ended.
    assert!(run(vec![host_line(0, Kind::Other, "alone")]).is_empty());
}

#[test]
fn silence_fires_by_wall_clock_when_live() {
    let mut d = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut out = Vec::new();
    d.push(host_line(0, Kind::Other, "h"), &mut out);
    d.advance_wallclock(T0 + 10 * MIN + 10 * S, &mut out);
    assert!(out.is_empty());
    d.advance_wallclock(T0 + 10 * MIN + 11 * S, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(d.stats().alerts, 1);
}

#[test]
fn silence_duration_is_configurable() {
    let rules =
        RuleSet::with_config("c.toml", "[rules.\"log.silence\"]\nwindow = \"30m\"\n").unwrap();
    let events = vec![
        host_line(0, Kind::Other, "a"),
        host_line(20 * MIN, Kind::Other, "b"),
    ];
    assert!(
        run_with(rules.clone(), DetectOptions::default(), events)
            .0
            .is_empty()
    );
    let events = vec![
        host_line(0, Kind::Other, "a"),
        host_line(31 * MIN, Kind::Other, "b"),
    ];
    assert_eq!(run_with(rules, DetectOptions::default(), events).0.len(), 1);
}

/// One line each from `hosts` invented host names at `ts`.
fn one_line_hosts(ts: i64, hosts: usize) -> Vec<Event> {
    (0..hosts)
        .map(|i| host_line(ts, Kind::Other, &format!("fake-{i:07}")))
        .collect()
}

#[test]
fn a_silence_storm_is_one_alert_with_its_count() {
    // The attack: a line per invented host name, then ten minutes of one real host talking.
    let mut events = one_line_hosts(0, 5_000);
    events.extend(spaced(12, MIN, |t| host_line(t, Kind::Other, "real")));
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    let silence = of(&alerts, "log.silence");
    let individual: Vec<_> = silence.iter().filter(|a| a.key_value != "*").collect();
    let storm: Vec<_> = silence.iter().filter(|a| a.key_value == "*").collect();
    assert_eq!(individual.len(), silence::STORM_INDIVIDUAL);
    // Equal deadlines go in key order: the first names alert one by one.
    assert_eq!(individual[0].key_value, "fake-0000000");
    assert_eq!(individual[19].key_value, "fake-0000019");
    assert_eq!(storm.len(), 1, "{storm:#?}");
    let storm = storm[0];
    assert_eq!(storm.count, 5_000 - silence::STORM_INDIVIDUAL as u64);
    assert_eq!(storm.evidence.len(), silence::STORM_SAMPLE);
    assert!(
        storm.summary.contains("fake-0000020, fake-0000021"),
        "{}",
        storm.summary
    );
    assert!(storm.summary.contains("and 4970 more"), "{}", storm.summary);
    assert_eq!(stats.alerts as usize, alerts.len());
}

#[test]
fn storm_alerts_are_the_same_whatever_the_arrival_order() {
    let mut events = one_line_hosts(0, 300);
    events.extend(spaced(12, MIN, |t| host_line(t, Kind::Other, "real")));
    let (in_order, _) = run_with(RuleSet::builtin(), DetectOptions::default(), events.clone());
    events[..300].reverse();
    let (reversed, _) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    let ids = |alerts: &[Alert]| alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&in_order), ids(&reversed));
    assert_eq!(in_order.len(), silence::STORM_INDIVIDUAL + 1);
}

#[test]
fn silences_in_separate_periods_alert_one_by_one() {
    // Two hosts going quiet 20 minutes apart are two periods: no storm.
    let events = vec![
        host_line(0, Kind::Other, "a"),
        host_line(20 * MIN, Kind::Other, "b"),
        host_line(45 * MIN, Kind::Other, "c"),
    ];
    let alerts = run(events);
    let keys: Vec<_> = of(&alerts, "log.silence")
        .iter()
        .map(|a| a.key_value.clone())
        .collect();
    assert_eq!(keys, ["a", "b"]);
}

#[test]
fn established_hosts_outlive_a_flood_of_one_line_hosts_at_the_cap() {
    let rules = RuleSet::with_config("c.toml", "[options]\nmax_keys = 100\n").unwrap();
    // `db1` logs for two minutes (established), then 1,000 invented hosts flood a cap of 100.
    let mut events = spaced(3, MIN, |t| host_line(t, Kind::Other, "db1"));
    events.extend(one_line_hosts(3 * MIN, 1_000));
    // Someone keeps talking for 20 minutes, so every deadline passes.
    events.extend(spaced(25, MIN, |t| {
        host_line(4 * MIN + t, Kind::Other, "gw")
    }));
    let (alerts, stats) = run_with(rules, DetectOptions::default(), events);
    let silence = of(&alerts, "log.silence");
    assert!(
        silence.iter().any(|a| a.key_value == "db1"),
        "db1 went quiet and must be alerted: {:?}",
        silence.iter().map(|a| &a.key_value).collect::<Vec<_>>()
    );
    assert!(stats.evicted_keys >= 900, "{stats:?}");
    assert_eq!(of(&alerts, "secpipe.state_overflow").len(), 1);
}

#[test]
fn names_of_closed_inputs_are_forgotten() {
    // A syslog listener makes an input per connection: 50,000 one-line connections.
    let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut alerts = Vec::new();
    for i in 0..50_000u32 {
        let mut e = host_line(i64::from(i) * 1_000, Kind::Other, "h");
        e.source = Arc::from(format!("syslog+tcp://192.0.2.1:{i}").as_str());
        detector.push(e, &mut alerts);
    }
    // Evidence refers only to the host's last line: a sweep keeps a handful of names.
    assert!(
        detector.source_names() < 8_192,
        "{} input names held",
        detector.source_names()
    );
    // The name still referred to by held evidence survives every sweep.
    detector.push(
        host_line(11 * MIN + 50 * S, Kind::Other, "other"),
        &mut alerts,
    );
    detector.finish(&mut alerts);
    let quiet = of(&alerts, "log.silence");
    assert_eq!(quiet.len(), 1, "{alerts:#?}");
    assert_eq!(
        &*quiet[0].evidence[0].source,
        "syslog+tcp://192.0.2.1:49999"
    );
}

// ---- time ------------------------------------------------------------------------------------

#[test]
fn late_events_are_counted_and_processed() {
    let mut events = spaced(4, S, |t| fail(60 * S + t, "192.0.2.20"));
    events.push(fail(80 * S, "192.0.2.99")); // watermark moves to 70 s
    events.push(fail(30 * S, "192.0.2.20")); // 40 s behind: late
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert_eq!(stats.late_events, 1);
    assert_eq!(stats.events, 6);
    assert_eq!(alerts.len(), 1, "the late attempt still counts");
    assert_eq!(stats.alerts, 1);
}

/// `events` numbered as lines 1, 2, … of one input in their current order: the line number is
/// an event's identity, so it must travel with the event when the arrival order changes.
fn numbered(events: Vec<Event>) -> Vec<Event> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| Event {
            line: i as u64 + 1,
            ..e
        })
        .collect()
}

#[test]
fn reorder_within_lateness_gives_the_same_alerts() {
    // Attempts 4 s apart; swapping neighbours moves each by 4 s, inside the 10 s lateness.
    let ordered = numbered(spaced(6, 4 * S, |t| fail(t, "203.0.113.7")));
    let mut shuffled = ordered.clone();
    shuffled.swap(1, 2);
    shuffled.swap(3, 4);
    let lines = |v: &[Event]| v.iter().map(|e| e.line).collect::<Vec<_>>();
    assert_eq!(lines(&shuffled), [1, 3, 2, 5, 4, 6]);
    let (a, stats_a) = run_with(RuleSet::builtin(), DetectOptions::default(), ordered);
    let (b, stats_b) = run_with(RuleSet::builtin(), DetectOptions::default(), shuffled);
    assert_eq!((stats_a.late_events, stats_b.late_events), (0, 0));
    assert_eq!(of(&a, "auth.bruteforce").len(), 1, "{a:#?}");
    // Every field, evidence order included, not just how many alerts there are.
    assert_eq!(b, a);
}

#[test]
fn reorder_beyond_lateness_is_late_yet_still_counted() {
    let ordered = numbered(spaced(5, MIN, |t| fail(t, "203.0.113.7")));
    let mut shuffled = ordered.clone();
    // The 4th attempt arrives after the 5th, a minute later in event time: beyond the lateness.
    shuffled.swap(3, 4);
    let (a, stats_a) = run_with(RuleSet::builtin(), DetectOptions::default(), ordered);
    let (b, stats_b) = run_with(RuleSet::builtin(), DetectOptions::default(), shuffled);
    assert_eq!((stats_a.late_events, stats_b.late_events), (0, 1));
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(b.len(), 1, "{b:#?}");
    assert_eq!((b[0].rule.as_str(), b[0].count), ("auth.bruteforce", 5));
    assert_eq!(b[0].key_value, "203.0.113.7");
}

#[test]
fn same_input_twice_gives_identical_alerts() {
    let events = mixed_events(7);
    let first = run(events.clone());
    let second = run(events);
    assert!(!first.is_empty());
    assert_eq!(first, second);
    let render = |alerts: &[Alert]| {
        let mut s = String::new();
        for a in alerts {
            crate::sink::encode::write_json(a, &mut s);
            s.push('\n');
        }
        s
    };
    assert_eq!(render(&first), render(&second));
}

/// A deterministic mix of traffic that raises several kinds of alert.
fn mixed_events(seed: u64) -> Vec<Event> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let mut events = Vec::new();
    let mut t = 0;
    for i in 0..600u64 {
        t += (next() % 3) as i64 * S;
        let ip = format!("192.0.2.{}", next() % 4);
        let e = match next() % 6 {
            0 | 1 => fail(t, &ip),
            2 => http(t, &ip, if next() % 2 == 0 { 403 } else { 200 }),
            3 => login(t, ["alice", "bob"][(next() % 2) as usize], &ip),
            4 => data(t, Kind::DataRead, "agent", next() % 300),
            _ => host_line(t, Kind::LogError, ["h1", "h2"][(next() % 2) as usize]),
        };
        events.push(Event { line: i + 1, ..e });
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn arrival_order_within_lateness_does_not_matter(seed in 0u64..1000, jitter in proptest::collection::vec(0i64..10 * S, 600)) {
        let events = mixed_events(seed);
        let expected = run(events.clone());
        // Each event arrives up to 10 s (the lateness) after its own time; sort by arrival.
        let mut arriving: Vec<(i64, usize, Event)> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.ts + jitter[i], i, e))
            .collect();
        arriving.sort_by_key(|(at, i, _)| (*at, *i));
        let shuffled: Vec<Event> = arriving.into_iter().map(|(_, _, e)| e).collect();
        let (got, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), shuffled);
        prop_assert_eq!(stats.late_events, 0);
        prop_assert!(!expected.is_empty());
        prop_assert_eq!(got, expected);
    }
}

// ---- state cap -------------------------------------------------------------------------------

#[test]
fn key_cap_evicts_the_oldest_and_reports_once() {
    let opts = DetectOptions {
        max_keys: 3,
        ..DetectOptions::default()
    };
    let mut events = vec![fail(0, "192.0.2.1")];
    for (i, ip) in ["192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"]
        .iter()
        .enumerate()
    {
        events.push(fail((i as i64 + 1) * S, ip));
    }
    // 192.0.2.1 was evicted: its next four attempts start over and do not reach five.
    events.extend(spaced(4, S, |t| fail(10 * S + t, "192.0.2.1")));
    let (alerts, stats) = run_with(RuleSet::builtin(), opts.clone(), events);
    let overflow = of(&alerts, "secpipe.state_overflow");
    assert_eq!(overflow.len(), 1, "{alerts:#?}");
    assert_eq!(overflow[0].key_value, "auth.bruteforce");
    assert_eq!(overflow[0].count, 3);
    assert_eq!(of(&alerts, "auth.bruteforce").len(), 0);
    assert_eq!(stats.evicted_keys, 3);

    // The most recently active key survives the evictions.
    let mut events = spaced(4, S, |t| fail(t, "192.0.2.1"));
    for (i, ip) in ["192.0.2.2", "192.0.2.3"].iter().enumerate() {
        events.push(fail(5 * S + i as i64, ip));
    }
    events.push(fail(6 * S, "192.0.2.1"));
    events.push(fail(7 * S, "192.0.2.4"));
    events.push(fail(8 * S, "192.0.2.1"));
    let (alerts, _) = run_with(RuleSet::builtin(), opts, events);
    assert_eq!(of(&alerts, "auth.bruteforce").len(), 1);
}

#[test]
fn state_is_freed_with_time() {
    let mut d = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut out = Vec::new();
    for i in 0..100 {
        d.push(
            fail(i * 1000, &format!("10.0.{}.{}", i / 250, i % 250)),
            &mut out,
        );
    }
    d.push(host_line(20 * S, Kind::Other, "h"), &mut out);
    // The first lines of an input wait for enough of them to agree; let the clock judge them.
    d.settle_start(T0 + 20 * S, &mut out);
    assert!(d.live_keys() >= 100);
    // Fifty minutes later only the newest event's keys remain.
    d.push(host_line(50 * MIN, Kind::Other, "h"), &mut out);
    d.push(host_line(50 * MIN + 11 * S, Kind::Other, "h"), &mut out);
    assert!(d.live_keys() <= 2, "{}", d.live_keys());
}

// ---- configuration ---------------------------------------------------------------------------

#[test]
fn config_overrides_disables_and_adds() {
    let config = r#"
[options]
max_keys = 10

[rules."auth.bruteforce"]
threshold = 3
window = "1m"
severity = "critical"
respond_within = "5m"

[rules."http.request_rate"]
enabled = false

[rules."custom.root_failures"]
primitive = "count"
kinds = ["auth.failure"]
where = { user = "root" }
key = "src_ip"
threshold = 2
window = "10m"
summary = "{key} failed as root {count} times"
"#;
    let rules = RuleSet::with_config("secpipe.toml", config).unwrap();
    let text = rules.describe();
    assert!(text.contains("custom.root_failures"));
    assert!(text.contains("(disabled)"));
    let mut events = spaced(3, 10 * S, |t| fail(t, "192.0.2.30"));
    events[0].user = Some("root".into());
    events[2].user = Some("root".into());
    let (alerts, _) = run_with(rules, DetectOptions::default(), events);
    let rules_fired: Vec<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
    // Same triggering event: rules run in pack order, added rules last.
    assert_eq!(rules_fired, ["auth.bruteforce", "custom.root_failures"]);
    assert_eq!(alerts[1].summary, "192.0.2.30 failed as root 2 times");
    assert_eq!(alerts[0].severity, Severity::Critical);
    assert_eq!(alerts[0].respond_within, "5m");
    // HIGH escalation (5 in 1 min) no longer applies once the base is CRITICAL.
    assert_eq!(alerts.len(), 2);
}

#[test]
fn config_max_keys_applies() {
    let rules = RuleSet::with_config("c.toml", "[options]\nmax_keys = 2\n").unwrap();
    let events = spaced(3, S, |t| fail(t, &format!("192.0.2.{}", t / S)));
    let (alerts, _) = run_with(rules, DetectOptions::default(), events);
    assert_eq!(of(&alerts, "secpipe.state_overflow").len(), 1);
}

fn config_error(text: &str) -> RuleError {
    RuleSet::with_config("secpipe.toml", text).expect_err("config should be rejected")
}

#[test]
fn config_errors_point_at_the_problem() {
    let e = config_error("[rules.\"auth.bruteforce\"]\nthreshold = 3\n  windw = \"5m\"\n");
    assert_eq!((e.line, e.column), (3, 3), "{e}");
    assert!(e.message.contains("did you mean `window`"), "{e}");
    assert_eq!(e.path, "secpipe.toml");
    assert!(e.to_string().starts_with("secpipe.toml:3:3: "));

    let e = config_error("[rules.\"auth.bruteforce\"]\nwindow = \"5 minutes\"\n");
    assert_eq!((e.line, e.column), (2, 10), "{e}");
    assert!(e.message.contains("\"5m\""), "{e}");
    let span = e.span.clone().unwrap();
    assert_eq!(&e.source_text[span], "\"5 minutes\"");

    let e = config_error("[rules.\"auth.bruteforce\"]\nseverity = \"urgent\"\n");
    assert_eq!((e.line, e.column), (2, 12));
    assert!(e.message.contains("LOW, MEDIUM, HIGH or CRITICAL"));

    let e = config_error(
        "[rules.\"x.y\"]\nprimitive = \"count\"\nkinds = [\"auth.failur\"]\nkey = \"src_ip\"\nwindow = \"1m\"\n",
    );
    assert_eq!((e.line, e.column), (3, 10));
    assert!(e.message.contains("did you mean `auth.failure`"), "{e}");

    let e = config_error("[rules.\"x.y\"]\nprimitive = \"countt\"\n");
    assert_eq!((e.line, e.column), (2, 13));
    assert!(e.message.contains("did you mean `count`"));

    let e = config_error("[rules.\"x.y\"]\nthreshold = 3\n");
    assert_eq!(e.line, 1, "{e}");
    assert!(e.message.contains("needs `primitive`"));

    let e = config_error("[rules.\"auth.bruteforce\"]\nthreshold = -1\n");
    assert_eq!((e.line, e.column), (2, 13));

    let e = config_error("[rules.\"auth.bruteforce\"]\nkey = \"scr_ip\"\n");
    assert!(e.message.contains("did you mean `src_ip`"));

    let e = config_error("[rules.\"auth.bruteforce\"\nthreshold = 3\n");
    assert_eq!(e.line, 1, "{e}");

    let e = config_error("[optoins]\nmax_keys = 3\n");
    assert!(e.message.contains("did you mean `options`"), "{e}");
}

#[test]
fn extreme_timestamps_do_not_panic() {
    let mut events = Vec::new();
    for ts in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        for kind in Kind::ALL {
            events.push(Event {
                ts,
                kind,
                host: Some("h".into()),
                user: Some("u".into()),
                actor: Some("a".into()),
                src_ip: "192.0.2.1".parse().ok(),
                http_method: Some("GET".into()),
                count: Some(u64::MAX),
                pid: Some(1),
                attempt: Attempt::Repeat,
                ..Event::default()
            });
        }
    }
    // Every alert the engine makes still renders.
    let mut d = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut out = Vec::new();
    for e in events {
        d.push(e, &mut out);
    }
    d.advance_wallclock(i64::MAX, &mut out);
    d.finish(&mut out);
    let mut text = String::new();
    for a in &out {
        crate::sink::encode::write_json(a, &mut text);
        crate::sink::encode::write_text(a, &mut text);
    }
    assert!(!out.is_empty());
}

#[test]
fn a_flood_of_distinct_ips_stays_within_the_cap() {
    let opts = DetectOptions {
        max_keys: 1_000,
        ..DetectOptions::default()
    };
    let mut d = Detector::new(RuleSet::builtin(), opts);
    let mut out = Vec::new();
    for i in 0..20_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        d.push(fail(i64::from(i) * 1_000, &ip.to_string()), &mut out);
        assert!(d.live_keys() <= 1_000);
    }
    d.finish(&mut out);
    assert!(d.live_keys() <= 1_000);
    assert_eq!(out.len(), 1, "only the overflow alert: {out:#?}");
    assert_eq!(out[0].rule, "secpipe.state_overflow");
    assert_eq!(d.stats().evicted_keys, 19_000);
}

// ---- event time under attack (issue 10) ------------------------------------------------------

/// Two hosts logging every 10 s for 30 minutes, host `a` on even steps, `b` on odd ones.
fn two_busy_hosts() -> Vec<Event> {
    (0..180)
        .map(|i| host_line(i * 10 * S, Kind::Other, if i % 2 == 0 { "a" } else { "b" }))
        .collect()
}

#[test]
fn one_line_stamped_months_ahead_moves_nothing() {
    let mut events = two_busy_hosts();
    // Planted at minute 10: a line from host `a` dated six months ahead.
    events.insert(60, host_line(180 * 24 * 60 * MIN, Kind::Other, "a"));
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert!(of(&alerts, "log.silence").is_empty(), "{alerts:#?}");
    assert_eq!(stats.late_events, 0, "later events are not late");
    assert_eq!(stats.ahead_of_stream, 1, "the planted line is counted");
}

#[test]
fn a_planted_line_at_the_end_of_old_logs_fakes_no_silence() {
    let mut events = two_busy_hosts();
    events.push(host_line(180 * 24 * 60 * MIN, Kind::Other, "a"));
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert!(of(&alerts, "log.silence").is_empty(), "{alerts:#?}");
    assert_eq!(stats.late_events, 0);
}

#[test]
fn a_real_jump_in_old_logs_is_believed() {
    // Both hosts log again two days later: a quiet spell, not a planted line.
    let mut events = two_busy_hosts();
    events.extend((0..180).map(|i| {
        let host = if i % 2 == 0 { "a" } else { "b" };
        host_line(2 * 24 * 60 * MIN + i * 10 * S, Kind::Other, host)
    }));
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    let silent: Vec<&str> = of(&alerts, "log.silence")
        .iter()
        .map(|a| a.key_value.as_str())
        .collect();
    assert_eq!(silent, ["a", "b"], "each host was silent for two days");
    assert_eq!(stats.ahead_of_stream, 0);
    assert_eq!(stats.late_events, 0);
}

#[test]
fn live_lines_far_ahead_of_the_wall_clock_are_placed_at_it() {
    let mut d = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut out = Vec::new();
    d.advance_wallclock(T0, &mut out);
    // A sender stamping its lines 23 h ahead, five failed logins in a row.
    for i in 0..5 {
        d.push(fail(23 * 60 * MIN + i * S, "192.0.2.23"), &mut out);
    }
    assert_eq!(d.stats().ahead_of_stream, 5);
    d.advance_wallclock(T0 + 11 * S, &mut out);
    assert_eq!(d.held().0, 0, "not held for 23 hours");
    assert_eq!(of(&out, "auth.bruteforce").len(), 1);
}

#[test]
fn the_reorder_buffer_is_bounded_and_forced_events_are_counted_not_dropped() {
    let opts = DetectOptions {
        max_held_events: 1_000,
        max_held_bytes: 200_000,
        ..DetectOptions::default()
    };
    let mut d = Detector::new(RuleSet::builtin(), opts);
    let mut out = Vec::new();
    // 20,000 failed logins from one address, all with one timestamp: nothing but the cap
    // moves the watermark.
    for line in 1..=20_000 {
        let mut e = fail(0, "198.51.100.1");
        e.line = line;
        d.push(e, &mut out);
        let (held, bytes) = d.held();
        assert!(
            held <= 1_000 && bytes <= 200_000,
            "{held} events, {bytes} bytes"
        );
    }
    let forced = d.stats().forced_events;
    assert!(forced >= 19_000, "{forced}");
    // Forced events went through the rules before the end of input.
    assert_eq!(of(&out, "auth.bruteforce").len(), 1);
    d.finish(&mut out);
    assert_eq!(d.stats().events, 20_000);
    assert_eq!(d.stats().late_events, 0);
    assert_eq!(d.held(), (0, 0));
}

#[test]
fn untimed_lines_in_old_logs_do_not_move_the_watermark_to_today() {
    let mut events = two_busy_hosts();
    // A line without a timestamp, stamped with its receive time, a year later.
    let mut untimed = host_line(365 * 24 * 60 * MIN, Kind::Unparsed, "a");
    untimed.ts_inferred = true;
    events.insert(30, untimed);
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert!(of(&alerts, "log.silence").is_empty(), "{alerts:#?}");
    assert_eq!(stats.late_events, 0);
}

#[test]
fn two_planted_lines_in_a_row_move_nothing() {
    let mut events = two_busy_hosts();
    for (i, host) in ["a", "b"].into_iter().enumerate() {
        events.insert(60 + i, host_line(180 * 24 * 60 * MIN, Kind::Other, host));
    }
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert!(of(&alerts, "log.silence").is_empty(), "{alerts:#?}");
    assert_eq!(stats.late_events, 0, "later events are not late");
    assert_eq!(stats.ahead_of_stream, 2, "both planted lines are counted");
}

#[test]
fn lines_planted_under_one_host_name_cannot_move_a_fleets_stream() {
    // As many lines in a row as confirm a jump, all claiming host `a`, six months ahead.
    let mut events = two_busy_hosts();
    for i in 0..CONFIRM_AHEAD as i64 {
        events.insert(60, host_line(180 * 24 * 60 * MIN + i * S, Kind::Other, "a"));
    }
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert!(of(&alerts, "log.silence").is_empty(), "{alerts:#?}");
    assert_eq!(stats.late_events, 0);
    assert_eq!(stats.ahead_of_stream, CONFIRM_AHEAD as u64);
}

#[test]
fn a_planted_first_line_moves_nothing() {
    for planted in 1..=2 {
        let mut events = two_busy_hosts();
        for _ in 0..planted {
            events.insert(0, host_line(180 * 24 * 60 * MIN, Kind::Other, "a"));
        }
        let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
        assert!(
            of(&alerts, "log.silence").is_empty(),
            "{planted}: {alerts:#?}"
        );
        assert_eq!(stats.late_events, 0, "{planted} planted first");
        assert_eq!(stats.ahead_of_stream, planted);
    }
}

#[test]
fn an_undated_first_line_does_not_move_old_logs_to_today() {
    let mut events = two_busy_hosts();
    let mut untimed = host_line(365 * 24 * 60 * MIN, Kind::Unparsed, "a");
    untimed.ts_inferred = true;
    events.insert(0, untimed);
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert!(of(&alerts, "log.silence").is_empty(), "{alerts:#?}");
    assert_eq!(stats.late_events, 0);
}

#[test]
fn a_line_planted_inside_a_real_jump_is_not_believed() {
    let mut events = two_busy_hosts();
    let later = 2 * 24 * 60 * MIN;
    for i in 0..40 {
        let host = if i % 2 == 0 { "a" } else { "b" };
        events.push(host_line(later + i * 10 * S, Kind::Other, host));
        if i == 3 {
            events.push(host_line(10 * 365 * 24 * 60 * MIN, Kind::Other, "a"));
        }
    }
    let mut d = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut out = Vec::new();
    for (i, mut e) in events.into_iter().enumerate() {
        e.line = i as u64 + 1;
        d.push(e, &mut out);
    }
    assert_eq!(d.stats().ahead_of_stream, 1);
    assert!(
        d.newest_event_time() < T0 + later + 10 * MIN,
        "the watermark did not go ten years ahead"
    );
    d.finish(&mut out);
    let silent: Vec<&str> = of(&out, "log.silence")
        .iter()
        .map(|a| a.key_value.as_str())
        .collect();
    assert_eq!(silent, ["a", "b"], "the real quiet spell");
}

#[test]
fn a_single_host_back_after_a_quiet_night_is_believed() {
    let mut events: Vec<Event> = (0..30)
        .map(|i| host_line(i * 10 * S, Kind::Other, "a"))
        .collect();
    let morning = 9 * 60 * MIN;
    events.extend((0..30).map(|i| host_line(morning + i * 10 * S, Kind::Other, "a")));
    let (alerts, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert_eq!(of(&alerts, "log.silence").len(), 1, "{alerts:#?}");
    assert_eq!(stats.ahead_of_stream, 0);
    assert_eq!(stats.late_events, 0);
}

#[test]
fn a_sparse_log_is_believed_line_by_line() {
    // One failed login every five hours: nothing is planted, nothing is counted.
    let events = spaced(40, 5 * 60 * MIN, |ts| fail(ts, "192.0.2.5"));
    let (_, stats) = run_with(RuleSet::builtin(), DetectOptions::default(), events);
    assert_eq!(stats.ahead_of_stream, 0);
    assert_eq!(stats.late_events, 0);
}

#[test]
fn what_waits_for_confirmation_is_bounded() {
    // Host `a` alone, far ahead, in a stream of two hosts: held up to the cap, then judged.
    let mut d = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut out = Vec::new();
    for e in two_busy_hosts() {
        d.push(e, &mut out);
    }
    for i in 0..10 * MAX_AHEAD_HELD as i64 {
        d.push(
            host_line(180 * 24 * 60 * MIN + i * S, Kind::Other, "a"),
            &mut out,
        );
        assert!(d.hold_len() < MAX_AHEAD_HELD, "{}", d.hold_len());
    }
}
