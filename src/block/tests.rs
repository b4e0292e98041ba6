//! Attack tests for the decisions: floods, forged keys, repeat offenders.

use std::net::IpAddr;
use std::sync::Arc;

use super::config::{BlockMode, BlockSettings};
use super::*;
use crate::alert::{Evidence, Severity};

const MIN: i64 = 60_000_000;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

/// An auth.bruteforce alert from `addr` blocking it for 15m, with evidence from `source`.
fn alert(addr: &str, source: &str) -> Alert {
    let target = BlockTarget::new(ip(addr), 64).expect("target");
    Alert {
        id: format!("id-{addr}"),
        rule: "auth.bruteforce".into(),
        severity: Severity::Medium,
        priority: "P2".into(),
        respond_within: "4h".into(),
        key_field: "src_ip".into(),
        key_value: target.to_string(),
        count: 5,
        threshold: 5,
        window_start: 0,
        window_end: 0,
        first_seen: 0,
        last_seen: 0,
        summary: String::new(),
        evidence: vec![Evidence {
            source: Arc::from(source),
            line: 1,
            ts: 0,
            raw: Box::from(&b"Failed password"[..]),
            seq: None,
        }],
        action: vec![Action::Block {
            target,
            duration: Some(15 * MIN),
        }],
        unverified: false,
    }
}

fn blocker(max_per_minute: u32) -> Blocker {
    let mut s = BlockSettings::defaults(BlockMode::Simulate);
    s.max_per_minute = max_per_minute;
    Blocker::simulated(s, vec![ip("198.51.100.1")])
}

/// The blocker's step at `now`, for alerts whose attack is going on (last seen now).
fn step(b: &mut Blocker, alerts: &mut Vec<Alert>, now: i64) {
    for a in alerts.iter_mut() {
        a.last_seen = now;
    }
    b.step(alerts, now);
}

fn rules(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.rule.as_str()).collect()
}

#[test]
fn a_ban_is_recorded_as_an_audit_record_linked_to_its_alert() {
    let mut b = blocker(60);
    let mut alerts = vec![alert("203.0.113.7", "/var/log/auth.log")];
    step(&mut b, &mut alerts, 10 * MIN);
    assert_eq!(rules(&alerts), ["auth.bruteforce", "secpipe.ban"]);
    let ban = &alerts[1];
    assert_eq!(
        (ban.key_field.as_str(), ban.key_value.as_str()),
        ("address", "203.0.113.7")
    );
    let pairs = Action::pairs(&ban.action);
    assert!(
        pairs.contains(&("cause".into(), "id-203.0.113.7".into())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("mode".into(), "simulate".into())),
        "{pairs:?}"
    );
    assert!(pairs.contains(&("for".into(), "15m".into())), "{pairs:?}");
    assert_eq!((ban.window_start, ban.window_end), (10 * MIN, 25 * MIN));
    // The same address again while banned: no second ban, no record.
    let mut again = vec![alert("203.0.113.7", "/var/log/auth.log")];
    step(&mut b, &mut again, 11 * MIN);
    assert_eq!(rules(&again), ["auth.bruteforce"]);
    assert_eq!((b.stats.bans, b.stats.already_banned), (1, 1));
}

#[test]
fn forged_and_protected_addresses_never_become_bans() {
    let mut b = blocker(60);
    // A user name that reads like a network is only text: an alert keyed on it has no block.
    let mut crafted = alert("203.0.113.9", "/var/log/auth.log");
    crafted.key_field = "user".into();
    crafted.key_value = "0.0.0.0/0".into();
    crafted.action = vec![Action::Note {
        name: "block".into(),
        value: "0.0.0.0/0".into(),
    }];
    let mut alerts = vec![
        crafted,
        alert("127.0.0.1", "/var/log/auth.log"),
        alert("198.51.100.1", "/var/log/auth.log"),
        alert("10.0.0.8", "/var/log/auth.log"),
        alert("203.0.113.50", "syslog+udp://192.0.2.1:514"),
        alert("192.0.2.5", "syslog+tcp://192.0.2.5:40000"),
    ];
    step(&mut b, &mut alerts, 0);
    assert_eq!(alerts.len(), 6, "{:?}", rules(&alerts));
    assert_eq!(b.stats.bans, 0);
    let refused: Vec<(&str, u64)> = b.stats.refused.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        refused,
        [
            ("own_address", 1),
            ("private", 1),
            ("relay", 1),
            ("reserved", 1),
            ("spoofable_source", 1)
        ]
    );
}

#[test]
fn a_flood_of_100k_distinct_attackers_trips_the_breaker_and_stays_bounded() {
    let mut b = blocker(60);
    let mut overflow = 0;
    let mut bans = 0;
    // 100,000 distinct public addresses within two minutes.
    for i in 0..100_000u32 {
        let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x2d00_0000 + i));
        let now = MIN * 100 + i64::from(i) * (2 * MIN / 100_000);
        let mut alerts = vec![alert(&addr.to_string(), "/var/log/auth.log")];
        step(&mut b, &mut alerts, now);
        for a in &alerts[1..] {
            match a.rule.as_str() {
                "secpipe.ban" => bans += 1,
                "secpipe.block_overflow" => overflow += 1,
                other => panic!("unexpected {other}"),
            }
        }
    }
    // Two minutes: 60 bans each, one overflow alert each; the rest counted, not banned.
    assert_eq!((bans, overflow), (120, 2));
    assert_eq!(b.stats.over_cap, 100_000 - 120);
    assert_eq!(lock(&b.ledger).len(), 120);
    assert!(
        b.render().contains("99880 over the per-minute cap"),
        "{}",
        b.render()
    );
}

#[test]
fn repeat_offenders_get_doubled_bans_capped_at_max_time() {
    let mut s = BlockSettings::defaults(BlockMode::Simulate);
    s.max_time = 100 * MIN;
    let mut b = Blocker::simulated(s, Vec::new());
    let mut lengths = Vec::new();
    let mut now = 0;
    for _ in 0..5 {
        let mut alerts = vec![alert("203.0.113.7", "/var/log/auth.log")];
        step(&mut b, &mut alerts, now);
        let ban = alerts
            .iter()
            .find(|a| a.rule == "secpipe.ban")
            .expect("banned");
        lengths.push(((ban.window_end - ban.window_start) / MIN, ban.count));
        now = ban.window_end + MIN;
    }
    assert_eq!(lengths, [(15, 1), (30, 2), (60, 3), (100, 4), (100, 5)]);
    // Past the lookback (1 day) a new ban starts again at the rule's time.
    let mut alerts = vec![alert("203.0.113.7", "/var/log/auth.log")];
    step(&mut b, &mut alerts, now + 24 * 60 * MIN);
    assert_eq!(alerts[1].count, 1);
}

#[test]
fn an_ipv6_attacker_is_banned_as_its_64() {
    let mut b = blocker(60);
    let mut alerts = vec![alert("2001:db8:1:2:aaaa::1", "/var/log/auth.log")];
    step(&mut b, &mut alerts, 0);
    assert_eq!(alerts[1].key_value, "2001:db8:1:2::/64");
    // Another address in the same /64 is the same ban.
    let mut again = vec![alert("2001:db8:1:2:bbbb::9", "/var/log/auth.log")];
    step(&mut b, &mut again, MIN);
    assert_eq!(b.stats.already_banned, 1);
}

#[test]
fn an_address_inside_a_banned_64_is_not_banned_again() {
    let mut b = blocker(60);
    let mut alerts = vec![alert("2001:db8:1:2::1", "/var/log/auth.log")];
    step(&mut b, &mut alerts, 0);
    // A rule keyed on single IPv6 addresses (ipv6_prefix = 128) names one inside the /64: the
    // kernel would refuse it (an overlapping interval) and it would block nothing more.
    let mut single = alert("2001:db8:1:2::99", "/var/log/auth.log");
    let target = BlockTarget::new(ip("2001:db8:1:2::99"), 128).expect("target");
    single.action = vec![Action::Block {
        target,
        duration: Some(MIN),
    }];
    let mut alerts = vec![single];
    step(&mut b, &mut alerts, MIN);
    assert_eq!(rules(&alerts), ["auth.bruteforce"]);
    assert_eq!((b.stats.bans, b.stats.already_banned), (1, 1));
}

#[test]
fn an_attack_that_ended_longer_ago_than_its_ban_is_not_banned_now() {
    let mut b = blocker(60);
    // Reading last week's log: the 15 minute ban would long have run out.
    let mut old = vec![alert("203.0.113.7", "/var/log/auth.log")];
    old[0].last_seen = 0;
    b.step(&mut old, 7 * 24 * 60 * MIN);
    assert_eq!(rules(&old), ["auth.bruteforce"]);
    assert_eq!(b.stats.refused.get("stale"), Some(&1));
    // Ten minutes ago (a restart catching up): still within the ban's time, so banned.
    let mut recent = vec![alert("203.0.113.8", "/var/log/auth.log")];
    recent[0].last_seen = 0;
    b.step(&mut recent, 10 * MIN);
    assert_eq!(rules(&recent), ["auth.bruteforce", "secpipe.ban"]);
}

/// Two secpipes enforcing with one `--state` would each replace the table (dropping the
/// other's bans) and overwrite each other's ledger: the second is refused at its start.
#[test]
fn two_enforcers_cannot_share_one_state() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    // An `nft` that takes every script and lists nothing.
    let nft = dir.path().join("nft");
    std::fs::write(&nft, "#!/bin/sh\ncat >/dev/null\n").expect("fake nft");
    std::fs::set_permissions(&nft, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let state = dir.path().join("state");
    let config = || BlockConfig {
        settings: BlockSettings::defaults(BlockMode::Enforce),
        state: Some(state.clone()),
        proxies: Vec::new(),
        udp_input: false,
        nft: nft::Nft {
            program: nft.display().to_string(),
            ..nft::Nft::default()
        },
    };
    let first = Blocker::start(config(), 0).expect("the first enforcer starts");
    let second = Blocker::start(config(), 0);
    assert!(
        second
            .as_ref()
            .err()
            .is_some_and(|e| e.contains("another secpipe")),
        "{:?}",
        second.err()
    );
    let mut alerts = Vec::new();
    first.finish(&mut alerts);
    // Once the first has ended, the state is free again.
    let third = Blocker::start(config(), 0).expect("starts after the first ended");
    third.finish(&mut alerts);
}
