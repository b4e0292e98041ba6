//! Snapshot tests: a detector cut anywhere, snapshotted and restored, raises what an
//! uninterrupted one raises; and bytes that are not a snapshot of this detector are refused.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::alert::Alert;
use crate::detect::{DetectOptions, DetectStats, Detector, RuleSet, SessionStats};
use crate::event::{Attempt, Event, Kind};

const S: i64 = 1_000_000;
const MIN: i64 = 60 * S;
/// 2026-11-23T00:00:00Z.
const T0: i64 = 1_795_392_000 * S;

/// splitmix64: streams are generated from a seed proptest chooses (and shrinks).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

/// What a caller does to a detector.
#[derive(Clone, Debug)]
enum Op {
    Push(Box<Event>),
    /// A live source's idle tick.
    Wall(i64),
    /// A bus beat: event time reached elsewhere.
    EventTime(i64),
    /// Stdin's first lines judged by the wall clock.
    Settle(i64),
}

const IPS: [&str; 7] = [
    "203.0.113.7",
    "203.0.113.8",
    "198.51.100.3",
    "2001:db8:1:2::5",
    "2001:db8:1:2::6",
    "192.0.2.44",
    "192.0.2.45",
];
const USERS: [&str; 4] = ["root", "alice", "bob", "admin"];
const HOSTS: [&str; 4] = ["web1", "web2", "db1", "mail"];
const SOURCES: [&str; 3] = ["auth.log", "access.log", "syslog+udp://192.0.2.9:514"];

/// A stream of every kind the rules read, with sessions, pids, late and out-of-order lines,
/// lines without timestamps, far-future lines, hosts that go quiet, and live ticks.
fn stream(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = Rng(seed);
    let mut ops = Vec::with_capacity(len);
    let mut t = T0 + rng.below(86_400) as i64 * S;
    let live = rng.chance(25);
    let fleet = rng.chance(30);
    let mut lines = [0u64; SOURCES.len()];
    // Some streams open with far-future lines, held for later lines to vouch for them.
    let planted = if rng.chance(30) { rng.below(4) } else { 0 };
    let (mut burst, mut burst_ip, mut burst_kind) = (0u32, IPS[0], 0);
    for i in 0..len {
        if rng.chance(3) {
            // A pause: silences come due, sessions expire, windows close.
            t += (5 + rng.below(15) as i64) * MIN;
        } else if rng.chance(1) {
            // A gap of hours: the lines after it are held until two hosts vouch for them.
            t += (2 + rng.below(3) as i64) * 60 * MIN;
        } else {
            t += rng.below(4) as i64 * S + rng.below(1000) as i64;
        }
        if live && rng.chance(4) {
            ops.push(Op::Wall(t + rng.below(20) as i64 * S));
            continue;
        }
        if rng.chance(2) {
            ops.push(Op::EventTime(t + rng.below(30) as i64 * S));
            continue;
        }
        if rng.chance(1) {
            ops.push(Op::Settle(t));
            continue;
        }
        let source = rng.below(SOURCES.len() as u64) as usize;
        lines[source] += 1;
        // Two hosts go quiet half way: their silence fires.
        let hosts = if i > len / 2 { &HOSTS[..2] } else { &HOSTS[..] };
        // Some fleets are large: their quiet hosts fold into one storm alert.
        let fleet_host = fleet.then(|| format!("node{}", rng.below(40)));
        let mut ev = Event {
            source: Arc::from(SOURCES[source]),
            line: lines[source],
            seq: rng.chance(50).then_some(i as u64),
            ts: t,
            received: t,
            host: Some(match fleet_host {
                Some(name) if i < len / 2 => Arc::from(name),
                _ => Arc::from(rng.pick(hosts)),
            }),
            ..Event::default()
        };
        let some_ip = |rng: &mut Rng| rng.pick(&IPS).parse().ok();
        if burst == 0 && rng.chance(2) {
            // A scanner's burst of refused requests from one address, or a bulk read.
            burst = 12;
            burst_ip = rng.pick(&IPS);
            burst_kind = if rng.chance(50) { 6 } else { 8 };
        }
        let choice = if burst > 0 {
            burst -= 1;
            burst_kind
        } else {
            rng.below(12)
        };
        match choice {
            0..=3 => {
                ev.kind = Kind::AuthFailure;
                ev.app = Some(Arc::from(rng.pick(&["sshd", "sshd", "sshd-session", "su"])));
                ev.pid = rng.chance(80).then(|| 100 + rng.below(6) as u32);
                ev.src_ip = if rng.chance(65) {
                    some_ip(&mut rng)
                } else {
                    None
                };
                ev.user = rng.chance(70).then(|| rng.pick(&USERS).into());
                ev.attempt = match rng.below(6) {
                    0 => Attempt::None,
                    1 | 2 => Attempt::Start,
                    3 => Attempt::End,
                    4 => Attempt::Repeat,
                    _ => Attempt::Summary,
                };
                if ev.attempt == Attempt::Repeat {
                    ev.count = Some(2 + rng.below(3));
                }
            }
            4 => {
                ev.kind = Kind::AuthSuccess;
                ev.app = Some(Arc::from("sshd"));
                ev.pid = Some(100 + rng.below(6) as u32);
                ev.src_ip = some_ip(&mut rng);
                ev.user = Some(rng.pick(&USERS).into());
            }
            5 => {
                ev.kind = Kind::AuthFailure;
                ev.app = Some(Arc::from(rng.pick(&["dovecot", "imap-login", "auth"])));
                ev.pid = Some(300 + rng.below(3) as u32);
                ev.src_ip = some_ip(&mut rng);
                ev.attempt = [Attempt::Start, Attempt::End, Attempt::Tally][rng.below(3) as usize];
                if ev.attempt == Attempt::Tally {
                    ev.count = Some(1 + rng.below(3));
                }
            }
            6 | 7 => {
                ev.kind = if rng.chance(85) {
                    Kind::HttpRequest
                } else {
                    Kind::InjectionAttempt
                };
                ev.src_ip = some_ip(&mut rng);
                ev.http_method = Some("GET".into());
                ev.http_path = Some(rng.pick(&["/", "/admin", "/login"]).into());
                ev.http_status = Some([200, 403, 403, 404][rng.below(4) as usize]);
                if burst > 0 {
                    ev.src_ip = burst_ip.parse().ok();
                    ev.http_status = Some(403);
                }
            }
            8 | 9 => {
                ev.kind = [
                    Kind::DataRead,
                    Kind::DataDelete,
                    Kind::DataSearch,
                    Kind::DataNamespaceViolation,
                ][rng.below(4) as usize];
                ev.actor = Some(rng.pick(&["svc-a", "svc-b", "carol"]).into());
                ev.count = Some(rng.below(400));
                if burst > 0 {
                    ev.kind = Kind::DataRead;
                    ev.actor = Some("svc-a".into());
                    ev.count = Some(150);
                }
            }
            10 => ev.kind = Kind::LogError,
            _ => ev.kind = Kind::ApikeyRevokeAttempt,
        }
        if ev.kind == Kind::ApikeyRevokeAttempt {
            ev.src_ip = some_ip(&mut rng);
        }
        // Raw bytes need not be UTF-8.
        let mut raw = format!("{} {} line {i}", ev.kind.as_str(), SOURCES[source]).into_bytes();
        if rng.chance(10) {
            raw.extend_from_slice(&[0xff, 0x00, 0xc3]);
        }
        ev.raw = raw.into();
        if (i as u64) < planted {
            ev.ts += 400 * 24 * 60 * MIN;
        } else if rng.chance(6) {
            // No timestamp: stamped with its receive time.
            ev.ts_inferred = true;
        } else if rng.chance(10) {
            // Out of order, within the lateness or (late) past it.
            ev.ts -= rng.below(40) as i64 * S;
        } else if rng.chance(2) {
            // Planted far ahead of the stream.
            ev.ts += (2 + rng.below(48) as i64) * 60 * MIN;
        }
        ops.push(Op::Push(Box::new(ev)));
    }
    ops
}

fn apply(detector: &mut Detector, op: &Op, out: &mut Vec<Alert>) {
    match op {
        Op::Push(ev) => detector.push((**ev).clone(), out),
        Op::Wall(now) => detector.advance_wallclock(*now, out),
        Op::EventTime(ts) => detector.advance_event_time(*ts, out),
        Op::Settle(now) => detector.settle_start(*now, out),
    }
}

/// Everything a caller can see of a detector's end.
#[derive(Debug, PartialEq)]
struct Outcome {
    alerts: Vec<Alert>,
    stats: DetectStats,
    sessions: SessionStats,
    live_keys: usize,
    watermark: i64,
}

fn finish(mut detector: Detector, mut alerts: Vec<Alert>) -> Outcome {
    detector.finish(&mut alerts);
    Outcome {
        alerts,
        stats: detector.stats().clone(),
        sessions: detector.session_stats(),
        live_keys: detector.live_keys(),
        watermark: detector.watermark(),
    }
}

fn options(rng: &mut Rng) -> DetectOptions {
    DetectOptions {
        lateness: rng.below(30) as i64 * S,
        max_keys: if rng.chance(30) {
            2 + rng.below(6) as usize
        } else {
            crate::detect::DEFAULT_MAX_KEYS
        },
        max_held_events: if rng.chance(30) {
            1 + rng.below(40) as usize
        } else {
            crate::detect::DEFAULT_MAX_HELD_EVENTS
        },
        ..DetectOptions::default()
    }
}

/// Runs `ops` whole, and again cut at each of `cuts` (snapshot, drop, restore, go on).
fn uninterrupted_and_cut(
    rules: &RuleSet,
    opts: &DetectOptions,
    ops: &[Op],
    cuts: &[usize],
) -> (Outcome, Outcome) {
    let mut whole = Detector::new(rules.clone(), opts.clone());
    let mut alerts = Vec::new();
    for op in ops {
        apply(&mut whole, op, &mut alerts);
    }
    let whole = finish(whole, alerts);

    let mut detector = Detector::new(rules.clone(), opts.clone());
    let mut alerts = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if cuts.contains(&i) {
            let saved = detector.snapshot();
            drop(detector);
            detector = match Detector::restore(rules.clone(), opts.clone(), &saved) {
                Ok(d) => d,
                Err(e) => panic!("restore at op {i}: {e}"),
            };
            // Nothing was lost on the way: the restored state snapshots to the same bytes.
            assert_eq!(
                detector.snapshot(),
                saved,
                "snapshot of the restored state at {i}"
            );
        }
        apply(&mut detector, op, &mut alerts);
    }
    (whole, finish(detector, alerts))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn a_restored_detector_raises_what_an_uninterrupted_one_does(
        seed in any::<u64>(),
        len in 1usize..700,
        cut_at in proptest::collection::vec(0.0f64..1.0, 1..5),
    ) {
        let ops = stream(seed, len);
        let opts = options(&mut Rng(seed ^ 0xa5a5));
        let cuts: Vec<usize> = cut_at.iter().map(|c| (c * ops.len() as f64) as usize).collect();
        let (whole, cut) = uninterrupted_and_cut(&RuleSet::builtin(), &opts, &ops, &cuts);
        prop_assert_eq!(cut, whole);
    }

    /// The rule sets a bus worker runs: one key family's rules, the key cap shared out.
    #[test]
    fn a_restored_partition_raises_what_an_uninterrupted_one_does(
        seed in any::<u64>(),
        len in 1usize..500,
        family in 0usize..4,
        partitions in 1u32..5,
        cut_at in proptest::collection::vec(0.0f64..1.0, 1..3),
    ) {
        use crate::event::EventField;
        let field = [EventField::SrcIp, EventField::User, EventField::Actor, EventField::Host][family];
        let rules = RuleSet::builtin().for_partition(field, partitions);
        let ops = stream(seed, len);
        let opts = options(&mut Rng(seed ^ 0x5a5a));
        let cuts: Vec<usize> = cut_at.iter().map(|c| (c * ops.len() as f64) as usize).collect();
        let (whole, cut) = uninterrupted_and_cut(&rules, &opts, &ops, &cuts);
        prop_assert_eq!(cut, whole);
    }
}

/// The generator reaches what the property is about: alerts of every primitive, held
/// attempts, late, forced and disbelieved events, evictions and silences. Without this, the
/// property could pass on streams that exercise nothing.
#[test]
fn the_generated_streams_exercise_the_state() {
    let mut rules_fired = std::collections::BTreeSet::new();
    let mut total = DetectStats::default();
    let mut sessions = SessionStats::default();
    let mut storms = 0;
    for seed in 0..40u64 {
        let ops = stream(seed, 600);
        let opts = options(&mut Rng(seed ^ 0xa5a5));
        let (whole, cut) = uninterrupted_and_cut(&RuleSet::builtin(), &opts, &ops, &[300]);
        assert_eq!(cut, whole, "seed {seed}");
        rules_fired.extend(whole.alerts.iter().map(|a| a.rule.clone()));
        storms += whole
            .alerts
            .iter()
            .filter(|a| a.rule == "log.silence" && a.key_value == "*")
            .count();
        total.late_events += whole.stats.late_events;
        total.forced_events += whole.stats.forced_events;
        total.ahead_of_stream += whole.stats.ahead_of_stream;
        total.evicted_keys += whole.stats.evicted_keys;
        sessions.attempts_bound += whole.sessions.attempts_bound;
        sessions.attempts_forgiven += whole.sessions.attempts_forgiven;
        sessions.attempts_unattributed += whole.sessions.attempts_unattributed;
    }
    for rule in [
        "auth.bruteforce",
        "auth.concurrent_ips",
        "http.forbidden_rate",
        "http.injection",
        "data.bulk_read",
        "data.namespace_violation",
        "log.silence",
        "secpipe.state_overflow",
    ] {
        assert!(
            rules_fired.contains(rule),
            "{rule} never fired: {rules_fired:?}"
        );
    }
    assert!(storms > 0, "no silence storm");
    assert!(
        total.late_events > 0 && total.forced_events > 0,
        "{total:?}"
    );
    assert!(
        total.ahead_of_stream > 0 && total.evicted_keys > 0,
        "{total:?}"
    );
    assert!(sessions.attempts_bound > 0, "{sessions:?}");
    assert!(sessions.attempts_forgiven > 0, "{sessions:?}");
    assert!(sessions.attempts_unattributed > 0, "{sessions:?}");
}

/// A cut at every op of one stream, each against the same uninterrupted run.
#[test]
fn a_cut_anywhere_in_one_stream_changes_nothing() {
    let ops = stream(7, 250);
    let opts = DetectOptions::default();
    let mut whole = Detector::new(RuleSet::builtin(), opts.clone());
    let mut alerts = Vec::new();
    for op in &ops {
        apply(&mut whole, op, &mut alerts);
    }
    let whole = finish(whole, alerts);
    assert!(whole.alerts.len() > 3, "{}", whole.alerts.len());
    for cut in 0..=ops.len() {
        let (_, got) = uninterrupted_and_cut(&RuleSet::builtin(), &opts, &ops, &[cut]);
        assert_eq!(got, whole, "cut at {cut}");
    }
}

/// A jump of hours held across a cut: in a stream of several hosts it still needs a second
/// host to vouch for it, as it would have without the cut.
#[test]
fn a_held_jump_still_needs_two_hosts_after_a_restore() {
    let line = |ts: i64, host: &str, n: u64| Event {
        source: Arc::from("syslog"),
        line: n,
        ts,
        received: ts,
        host: Some(Arc::from(host)),
        kind: Kind::LogError,
        ..Event::default()
    };
    let mut before = Vec::new();
    for n in 0..20 {
        before.push(line(T0 + n as i64 * S, ["a", "b"][n as usize % 2], n));
    }
    let jump = T0 + 3 * 60 * MIN;
    before.push(line(jump, "a", 20));
    let after: Vec<Event> = (21..30)
        .map(|n| line(jump + n as i64 * S, "a", n))
        .collect();

    let mut whole = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut alerts = Vec::new();
    for ev in before.iter().chain(&after) {
        whole.push(ev.clone(), &mut alerts);
    }
    assert_eq!(
        whole.hold_len(),
        10,
        "one host alone does not vouch for the jump"
    );

    let mut first = Detector::new(RuleSet::builtin(), DetectOptions::default());
    for ev in &before {
        first.push(ev.clone(), &mut alerts);
    }
    let mut restored = restore_bytes(&first.snapshot()).unwrap();
    for ev in &after {
        restored.push(ev.clone(), &mut alerts);
    }
    assert_eq!(restored.hold_len(), 10);
    assert_eq!(restored.newest_event_time(), whole.newest_event_time());
}

/// The state to restore, taken from the middle of a busy stream.
fn busy_snapshot() -> Vec<u8> {
    let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut alerts = Vec::new();
    for op in stream(11, 400) {
        apply(&mut detector, &op, &mut alerts);
    }
    detector.snapshot()
}

#[test]
fn a_snapshot_under_other_rules_or_options_is_refused() {
    let saved = busy_snapshot();
    let restore = |rules: RuleSet, opts: DetectOptions| Detector::restore(rules, opts, &saved);
    assert!(restore(RuleSet::builtin(), DetectOptions::default()).is_ok());
    let config = |text: &str| RuleSet::with_config("s.toml", text).unwrap();
    for changed in [
        "[rules.\"auth.bruteforce\"]\nthreshold = 6\n",
        "[rules.\"auth.bruteforce\"]\nwindow = \"6m\"\n",
        "[rules.\"log.silence\"]\nenabled = false\n",
        "[rules.\"http.injection\"]\nsummary = \"{key} again\"\n",
        "[options]\nmax_keys = 10\n",
    ] {
        assert!(
            matches!(
                restore(config(changed), DetectOptions::default()),
                Err(SnapshotError::RulesChanged)
            ),
            "{changed}"
        );
    }
    for opts in [
        DetectOptions {
            lateness: 11 * S,
            ..DetectOptions::default()
        },
        DetectOptions {
            max_held_events: 5,
            ..DetectOptions::default()
        },
        DetectOptions {
            tz: jiff::tz::TimeZone::fixed(jiff::tz::offset(2)),
            ..DetectOptions::default()
        },
    ] {
        assert!(matches!(
            restore(RuleSet::builtin(), opts),
            Err(SnapshotError::RulesChanged)
        ));
    }
    // A partition's snapshot under another partition count (another key cap) or family.
    let partition = |field, n| RuleSet::builtin().for_partition(field, n);
    let mut part = Detector::new(
        partition(crate::event::EventField::SrcIp, 4),
        DetectOptions::default(),
    );
    part.push(
        Event {
            kind: Kind::AuthFailure,
            src_ip: "192.0.2.1".parse().ok(),
            ..Event::default()
        },
        &mut Vec::new(),
    );
    let part = part.snapshot();
    let restore_part = |rules| Detector::restore(rules, DetectOptions::default(), &part);
    assert!(restore_part(partition(crate::event::EventField::SrcIp, 4)).is_ok());
    assert!(restore_part(partition(crate::event::EventField::SrcIp, 2)).is_err());
    assert!(restore_part(partition(crate::event::EventField::User, 4)).is_err());
    // A merge's snapshot is no detector's.
    let merge = crate::bus::merge::EdgeMerge::new(&[]).snapshot();
    assert!(matches!(
        Detector::restore(RuleSet::builtin(), DetectOptions::default(), &merge),
        Err(SnapshotError::WrongKind { .. })
    ));
    let mut newer = saved.clone();
    newer[8] = newer[8].wrapping_add(1);
    assert!(matches!(
        restore_bytes(&newer),
        Err(SnapshotError::Version { .. })
    ));
}

fn restore_bytes(bytes: &[u8]) -> Result<Detector, SnapshotError> {
    Detector::restore(RuleSet::builtin(), DetectOptions::default(), bytes)
}

#[test]
fn truncated_and_garbled_snapshots_are_refused() {
    let saved = busy_snapshot();
    assert!(restore_bytes(&saved).is_ok());
    assert!(restore_bytes(&[]).is_err());
    let step = (saved.len() / 300).max(1);
    for len in (0..saved.len()).step_by(step).chain([saved.len() - 1]) {
        assert!(restore_bytes(&saved[..len]).is_err(), "cut to {len} bytes");
    }
    // A changed byte is refused, or (a bit zstd does not need, such as its window size)
    // changes nothing: never a different state.
    let mut refused = 0;
    let mut tried = 0;
    for at in (0..saved.len()).step_by(step) {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = saved.clone();
            bad[at] ^= flip;
            tried += 1;
            match restore_bytes(&bad) {
                Err(_) => refused += 1,
                Ok(d) => assert_eq!(d.snapshot(), saved, "byte {at} ^ {flip:#x} misread"),
            }
        }
    }
    assert!(refused * 100 >= tried * 95, "{refused} of {tried} refused");
    let mut longer = saved.clone();
    longer.extend_from_slice(b"\0\0\0\0");
    assert!(restore_bytes(&longer).is_err(), "trailing bytes");
}

/// Re-encode a snapshot's JSON after `edit`, with a valid header and checksum: what a hostile
/// or buggy writer could store.
fn edited(
    saved: &[u8],
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<Detector, SnapshotError> {
    let detector = restore_bytes(saved).unwrap();
    let print = detector.fingerprint();
    let mut state: serde_json::Value = decode(SnapshotKind::Detector, print, saved).unwrap();
    edit(&mut state);
    restore_bytes(&encode(SnapshotKind::Detector, print, &state))
}

#[test]
fn inconsistent_state_is_refused_not_trusted() {
    let saved = busy_snapshot();
    assert!(
        edited(&saved, |_| {}).is_ok(),
        "the untouched state restores"
    );
    let engine_with_keys = |state: &serde_json::Value| {
        state["engines"]
            .as_array()
            .unwrap()
            .iter()
            .position(|e| {
                e["keys"]["entries"]
                    .as_array()
                    .is_some_and(|a| a.len() >= 2)
            })
            .unwrap()
    };
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "slot out of range",
            Box::new(move |s| {
                let i = engine_with_keys(s);
                s["engines"][i]["keys"]["entries"][0][0] = 4_000_000_000u32.into();
            }),
        ),
        (
            "slot repeated",
            Box::new(move |s| {
                let i = engine_with_keys(s);
                let id = s["engines"][i]["keys"]["entries"][0][0].clone();
                s["engines"][i]["keys"]["entries"][1][0] = id;
            }),
        ),
        (
            "key repeated",
            Box::new(move |s| {
                let i = engine_with_keys(s);
                let key = s["engines"][i]["keys"]["entries"][0][1].clone();
                s["engines"][i]["keys"]["entries"][1][1] = key;
            }),
        ),
        (
            "entries out of order",
            Box::new(move |s| {
                let i = engine_with_keys(s);
                let entry = &mut s["engines"][i]["keys"]["entries"][0][2]["entries"];
                let first = entry[0].clone();
                let mut later = first.clone();
                later[0] = (first[0].as_i64().unwrap() - 1).into();
                *entry = vec![first, later].into();
            }),
        ),
        (
            "rule swapped",
            Box::new(|s| {
                let engines = s["engines"].as_array_mut().unwrap();
                engines.swap(0, 1);
            }),
        ),
        (
            "a rule missing",
            Box::new(|s| {
                s["engines"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "unknown kind",
            Box::new(|s| {
                s["hold"]["events"] = serde_json::json!([{
                    "source": "x", "line": 1, "ts": 0, "received": 0, "kind": "auth.nonsense", "raw": ""
                }]);
            }),
        ),
        (
            "last input name not held",
            Box::new(|s| {
                s["sources"]["last"] = 4_000_000u32.into();
            }),
        ),
        (
            "free input name in use",
            Box::new(|s| {
                s["sources"]["free"] = serde_json::json!([0]);
            }),
        ),
        (
            "a counter at the top of its type",
            Box::new(|s| {
                s["stats"]["events"] = u64::MAX.into();
            }),
        ),
        (
            "an evicted count at the top of its type",
            Box::new(|s| {
                s["engines"][0]["evicted"] = u64::MAX.into();
            }),
        ),
        (
            "wrong type",
            Box::new(|s| {
                s["max_ts"] = "soon".into();
            }),
        ),
        (
            "severity unknown",
            Box::new(move |s| {
                s["engines"][0]["keys"]["entries"] = serde_json::json!([
                    [0, {"ip": "::ffff:192.0.2.1"}, {"entries": [], "cooldown": [5, "APOCALYPTIC", false]}]
                ]);
                s["engines"][0]["keys"]["free"] = serde_json::json!([]);
            }),
        ),
    ];
    for (what, edit) in cases {
        assert!(edited(&saved, edit).is_err(), "{what} was accepted");
    }
}

/// Every number of a stored state set to an extreme, one at a time: the restore refuses it,
/// or gives a detector that goes on without a panic (event times are input anyway, and the
/// running code already takes any of them).
#[test]
fn extreme_numbers_in_a_snapshot_never_panic() {
    fn leaves(v: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            serde_json::Value::Number(_) => out.push(path.clone()),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    leaves(item, path, out);
                    path.pop();
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    path.push(k.clone());
                    leaves(item, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    fn at<'a>(v: &'a mut serde_json::Value, path: &[String]) -> &'a mut serde_json::Value {
        path.iter().fold(v, |v, step| match v {
            serde_json::Value::Array(items) => &mut items[step.parse::<usize>().unwrap()],
            other => &mut other[step.as_str()],
        })
    }
    let saved = busy_snapshot();
    let print = restore_bytes(&saved).unwrap().fingerprint();
    let state: serde_json::Value = decode(SnapshotKind::Detector, print, &saved).unwrap();
    let mut paths = Vec::new();
    leaves(&state, &mut Vec::new(), &mut paths);
    assert!(paths.len() > 200, "{}", paths.len());
    let continuation = stream(12, 120);
    let extremes: [serde_json::Value; 6] = [
        0.into(),
        (-1).into(),
        u32::MAX.into(),
        i64::MIN.into(),
        i64::MAX.into(),
        u64::MAX.into(),
    ];
    let (mut refused, mut taken) = (0, 0);
    let step = (paths.len() / 400).max(1);
    for path in paths.iter().step_by(step) {
        for extreme in &extremes {
            let mut bad = state.clone();
            *at(&mut bad, path) = extreme.clone();
            match restore_bytes(&encode(SnapshotKind::Detector, print, &bad)) {
                Err(_) => refused += 1,
                Ok(mut detector) => {
                    taken += 1;
                    let mut alerts = Vec::new();
                    for op in &continuation {
                        apply(&mut detector, op, &mut alerts);
                    }
                    detector.finish(&mut alerts);
                    let _ = detector.snapshot();
                }
            }
        }
    }
    eprintln!("extreme numbers: {refused} refused, {taken} restored and run on");
    assert!(refused > 0 && taken > 0, "{refused} refused, {taken} taken");
}

#[test]
fn a_decompression_bomb_stops_at_the_cap() {
    // A frame of 4 MiB of JSON whitespace, read with a 1 MiB cap: the real cap is the same
    // code with MAX_SNAPSHOT_JSON.
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    let blank = vec![b' '; 1 << 20];
    for _ in 0..4 {
        std::io::Write::write_all(&mut encoder, &blank).unwrap();
    }
    let frame = encoder.finish().unwrap();
    assert!(frame.len() < 4096, "{}", frame.len());
    let mut capped = Capped {
        inner: zstd::stream::read::Decoder::new(&frame[..]).unwrap(),
        left: 1 << 20,
        over: false,
    };
    let mut sink = Vec::new();
    assert!(std::io::Read::read_to_end(&mut capped, &mut sink).is_err());
    assert!(capped.over);
    assert!(sink.len() <= 1 << 20);
}

/// A partition at 100,000 keys: how large its snapshot is and how long it takes (printed;
/// `cargo test --release -- --nocapture snapshot_of_100k` for the numbers in the report).
#[test]
fn a_snapshot_of_100k_keys_stays_small() {
    let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut alerts = Vec::new();
    for i in 0..100_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        let ev = Event {
            source: Arc::from("/var/log/auth.log"),
            line: u64::from(i) + 1,
            seq: Some(u64::from(i)),
            ts: T0 + i64::from(i) * 1000,
            received: T0 + i64::from(i) * 1000,
            host: Some(Arc::from("web1")),
            app: Some(Arc::from("sshd")),
            kind: Kind::AuthFailure,
            src_ip: Some(ip.into()),
            user: Some("root".into()),
            raw: format!(
                "Nov 23 00:00:00 web1 sshd[{}]: Failed password for root from {ip} port 52{:03} ssh2",
                1000 + i % 30_000,
                i % 1000
            )
            .into_bytes()
            .into(),
            ..Event::default()
        };
        detector.push(ev, &mut alerts);
    }
    detector.advance_event_time(T0 + 100 * S + 20 * S, &mut alerts);
    assert!(alerts.is_empty());
    let keys = detector.live_keys();
    assert_eq!(
        keys, 100_001,
        "100,000 addresses and one host for log.silence"
    );
    let started = std::time::Instant::now();
    let saved = detector.snapshot();
    let took_snapshot = started.elapsed();
    let started = std::time::Instant::now();
    let restored = restore_bytes(&saved).unwrap();
    let took_restore = started.elapsed();
    assert_eq!(restored.live_keys(), keys);
    eprintln!(
        "100k keys: snapshot {} bytes ({:.1} per key), taken in {took_snapshot:?}, restored in {took_restore:?}",
        saved.len(),
        saved.len() as f64 / keys as f64
    );
    // Each key holds an 80-byte line as evidence; compressed, far less than that.
    assert!(saved.len() < 60 * keys, "{} bytes", saved.len());
}
