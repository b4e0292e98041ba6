//! Every default rule fires exactly at its threshold and stays quiet one step below, with the
//! envelope formats interleaved in one stream (fixtures/gen_rules.py).

mod common;
use common::*;

const RULES: [&str; 13] = [
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
];

#[test]
fn each_rule_fires_at_its_threshold_and_only_it() {
    for rule in RULES {
        let alerts = alerts_for(&[&fixture(&format!("rules/{rule}.fire.log"))]);
        assert_eq!(
            rules_of(&alerts),
            vec![rule.to_string()],
            "{rule}.fire.log: {alerts:#?}"
        );
    }
}

#[test]
fn each_rule_stays_quiet_one_step_below() {
    for rule in RULES {
        let alerts = alerts_for(&[&fixture(&format!("rules/{rule}.quiet.log"))]);
        assert!(alerts.is_empty(), "{rule}.quiet.log alerted: {alerts:#?}");
    }
}

#[test]
fn the_sample_fires_every_rule() {
    let alerts = alerts_for(&[&fixture("sample/attacks.log")]);
    let mut fired = rules_of(&alerts);
    fired.sort();
    fired.dedup();
    let mut want: Vec<String> = RULES.iter().map(|r| r.to_string()).collect();
    want.sort();
    assert_eq!(fired, want);
}

#[test]
fn bruteforce_alert_names_the_attacker_and_not_the_typo() {
    let alerts = alerts_for(&[&fixture("rules/auth.bruteforce.fire.log")]);
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["key"]["value"], "203.0.113.7");
    assert_eq!(a["count"], 5);
    assert_eq!(a["severity"], "MEDIUM");
    assert_eq!(a["action"]["block"], "203.0.113.7");
    let evidence = a["evidence"].as_array().expect("evidence");
    assert!(!evidence.is_empty() && evidence.len() <= 10);
    // The window is the 5 minutes that end at the fifth attempt (fixtures/gen_rules.py:
    // attempts 50 s apart from 12:00:00, so the fifth at 12:03:20).
    assert_eq!(a["window_end"], "2026-03-10T12:03:20.000000Z");
    assert_eq!(a["window_start"], "2026-03-10T11:58:20.000000Z");
    // DESIGN section 5: the id is a hash of rule, key and window start. Recomputed here from
    // the alert's own fields: SHA-256(rule 0x00 key 0x00 i64be(window start µs)), first 16
    // bytes in hex.
    let window_start: jiff::Timestamp = a["window_start"]
        .as_str()
        .expect("window_start")
        .parse()
        .expect("RFC 3339");
    let mut preimage = b"auth.bruteforce\x00203.0.113.7\x00".to_vec();
    preimage.extend_from_slice(&window_start.as_microsecond().to_be_bytes());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&preimage);
    assert_eq!(a["id"], hex::encode(&digest[..16]));
}

#[test]
fn same_input_twice_gives_byte_identical_alerts() {
    let file = fixture("sample/attacks.log");
    let args = [
        "--tz",
        "UTC",
        "--year",
        "2026",
        file.to_str().expect("path"),
    ];
    let first = run_ok(&args).stdout;
    let second = run_ok(&args).stdout;
    assert!(!first.is_empty());
    assert_eq!(first, second);
}
