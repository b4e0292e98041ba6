//! An attempt counts toward its session's address even when the address is on another line of
//! the session (issue 9: session binding), and an attempt without an address never swallows one
//! that has an address (issue 9 §3: PAM `rhost=<host name>`).

mod common;
use common::*;

fn run_on(fixture_name: &str) -> (Vec<serde_json::Value>, String) {
    let path = fixture(fixture_name);
    let out = run_ok(&[
        "--tz",
        "UTC",
        "--year",
        "2026",
        path.to_str().expect("UTF-8 path"),
    ]);
    (
        json_lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bruteforce_for<'a>(alerts: &'a [serde_json::Value], ip: &str) -> Vec<&'a serde_json::Value> {
    alerts
        .iter()
        .filter(|a| a["rule"] == "auth.bruteforce" && a["key"]["value"] == ip)
        .collect()
}

/// 8 sessions of `pam_unix … rhost=ptr.attacker.example` then `Failed password … from
/// 198.51.100.3`: before, each PAM line opened an attempt with no address that swallowed the
/// `Failed password` (8 attempts, 0 alerts). Now each pair counts once, toward the address.
#[test]
fn a_pam_failure_with_a_host_name_does_not_hide_the_failed_password_address() {
    let (alerts, stderr) = run_on("hostile/pam_rhost_hostname.log");
    let found = bruteforce_for(&alerts, "198.51.100.3");
    assert_eq!(found.len(), 1, "{alerts:?}\n{stderr}");
    // 8 attempts (not 16 lines) within a minute and a half: HIGH once 5 fall in one minute.
    assert!(
        found[0]["count"]
            .as_u64()
            .is_some_and(|n| (5..=8).contains(&n)),
        "{}",
        found[0]
    );
    assert!(stderr.contains("secpipe: sessions: "), "{stderr}");
}

/// `User root not allowed because account is locked` names no address; the session's
/// `Received disconnect from 198.51.100.4 … [preauth]` does. Five such sessions are five
/// attempts from 198.51.100.4; the session that never names an address is reported.
#[test]
fn an_attempt_counts_toward_the_address_a_later_line_of_its_session_names() {
    let (alerts, stderr) = run_on("hostile/session_address_later.log");
    let found = bruteforce_for(&alerts, "198.51.100.4");
    assert_eq!(found.len(), 1, "{alerts:?}\n{stderr}");
    assert_eq!(found[0]["count"], 5, "{}", found[0]);
    let evidence = found[0]["evidence"].as_array().expect("evidence");
    assert!(
        evidence.iter().all(|e| e["raw"]
            .as_str()
            .is_some_and(|r| r.contains("account is locked"))),
        "the evidence is the failures themselves: {evidence:?}"
    );
    assert!(
        stderr.contains(
            "secpipe: sessions: 5 attempts counted toward their session's address, 1 attempts whose session named none"
        ),
        "{stderr}"
    );
}

/// Binding happens in event-time order inside the detector, so a replay of the raw file gives
/// the live run's alerts byte for byte.
#[test]
fn session_binding_gives_the_same_alerts_in_replay() {
    for name in [
        "hostile/session_address_later.log",
        "hostile/pam_rhost_hostname.log",
    ] {
        let path = fixture(name);
        let path = path.to_str().expect("UTF-8 path");
        let live = run_ok(&["--tz", "UTC", "--year", "2026", path]);
        let replay = run_ok(&["replay", "--tz", "UTC", "--year", "2026", path]);
        assert!(!live.stdout.is_empty(), "{name}: no alerts");
        assert_eq!(
            String::from_utf8_lossy(&live.stdout),
            String::from_utf8_lossy(&replay.stdout),
            "{name}"
        );
    }
}
