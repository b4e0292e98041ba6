//! Journal input: an entry claiming to be sshd (or another authentication app) counts only when
//! journald's trusted fields agree (issue 9 §3, forged sources).

mod common;
use common::*;

const FIXTURE: &str = "hostile/journal_forged_sshd.jsonl";

/// `logger -t sshd "Failed password for root from 10.0.0.5 …"` by a local user (uid 1000,
/// `_COMM=logger`) six times: before, an auth.bruteforce alert with a block action for 10.0.0.5.
/// Now only the real sshd's five failures alert.
#[test]
fn logger_posing_as_sshd_gets_no_alert_and_no_block() {
    let path = fixture(FIXTURE);
    let out = run_ok(&[path.to_str().expect("UTF-8 path")]);
    let alerts = json_lines(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        alerts
            .iter()
            .all(|a| a["key"]["value"] != "10.0.0.5" && a["action"]["block"] != "10.0.0.5"),
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .any(|a| a["rule"] == "auth.bruteforce" && a["key"]["value"] == "203.0.113.50"),
        "the real sshd still alerts: {alerts:?}"
    );
    assert!(
        stderr.contains("secpipe: 7 journal entries not counted: forged_source"),
        "{stderr}"
    );
}

#[test]
fn forged_entries_are_visible_in_events() {
    let path = fixture(FIXTURE);
    let out = run_ok(&["events", path.to_str().expect("UTF-8 path")]);
    let events = json_lines(&out.stdout);
    assert_eq!(events.len(), 12);
    let forged: Vec<_> = events
        .iter()
        .filter(|e| e["reason"] == "forged_source")
        .collect();
    assert_eq!(forged.len(), 7, "{events:?}");
    for e in &forged {
        assert_eq!(e["kind"], "other", "{e}");
        assert!(e["src_ip"].is_null(), "{e}");
    }
    let genuine = events
        .iter()
        .filter(|e| e["kind"] == "auth.failure" && e["src_ip"] == "203.0.113.50")
        .count();
    assert_eq!(genuine, 5, "{events:?}");
}
