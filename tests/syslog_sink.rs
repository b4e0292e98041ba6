//! `--alerts syslog+tcp://…` and `syslog+udp://…` against a real rsyslog (Debian's `rsyslog`,
//! installed by tests/run-all.sh), started here on loopback ports with `mmpstrucdata`, which
//! parses each message's RFC 5424 structured data the way a SIEM would (issue 13, the syslog
//! sink).

mod common;
mod live_support;
mod rsyslog_peer;

use common::*;
use live_support::free_port;
use rsyslog_peer::Rsyslog;

fn path(rel: &str) -> String {
    fixture(rel).to_str().expect("UTF-8 path").to_string()
}

#[test]
fn every_alert_reaches_rsyslog_over_tcp_and_udp_with_its_fields_as_structured_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsyslog = Rsyslog::start(dir.path());
    let out = run_ok(&[
        "--tz",
        "UTC",
        "--alerts",
        "-",
        "--alerts",
        &format!("syslog+tcp://127.0.0.1:{}", rsyslog.tcp),
        "--alerts",
        &format!("syslog+udp://127.0.0.1:{}", rsyslog.udp),
        &path("sample/attacks.log"),
    ]);
    let alerts = json_lines(&out.stdout);
    assert!(!alerts.is_empty(), "the sample has attacks");
    let received = rsyslog.alerts(2 * alerts.len());
    // Let anything extra arrive, then count again: each alert exactly once per transport.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(rsyslog.received("secpipe").len(), 2 * alerts.len());
    for alert in &alerts {
        let copies: Vec<&serde_json::Value> = received
            .iter()
            .filter(|sd| sd["id"] == alert["id"])
            .collect();
        assert_eq!(copies.len(), 2, "{alert}");
        for sd in copies {
            assert_eq!(sd["rule"], alert["rule"]);
            assert_eq!(sd["severity"], alert["severity"]);
            assert_eq!(sd["key"], alert["key"]["value"]);
            assert_eq!(sd["count"], alert["count"].to_string());
            if let Some(block) = alert["action"]["block"].as_str() {
                assert_eq!(sd["block"], block);
            }
        }
    }
}

/// The crafted user names of the text-injection fixture (a newline followed by a fake
/// CRITICAL alert; invisible characters) stay inside their parameter: rsyslog sees exactly the
/// two alerts, with the newline shown as an escape, and no forged one.
#[test]
fn a_crafted_user_name_stays_inside_its_parameter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsyslog = Rsyslog::start(dir.path());
    run_ok(&[
        "--tz",
        "UTC",
        "--alerts",
        &format!("syslog+tcp://127.0.0.1:{}", rsyslog.tcp),
        &path("hostile/alert_text_injection.jsonl"),
    ]);
    let received = rsyslog.alerts(2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let lines = std::fs::read_to_string(&rsyslog.out).expect("received");
    assert_eq!(rsyslog.received("secpipe").len(), 2, "{lines}");
    assert!(
        received.iter().all(|sd| sd["rule"] == "auth.night_login"),
        "{lines}"
    );
    let keys: Vec<&str> = received
        .iter()
        .filter_map(|sd| sd["key"].as_str())
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.starts_with(r"bob\u{a}2026-11-23T03:00:00.000000Z CRITICAL")),
        "{keys:?}"
    );
}

/// A syslog server that is not there costs its alerts (counted on stderr), not the run: the
/// other output gets every alert and the run ends once the drain limit has passed.
#[test]
fn a_syslog_server_that_is_down_does_not_stop_the_run() {
    let closed = free_port();
    let out = secpipe()
        .args([
            "--tz",
            "UTC",
            "--drain-timeout",
            "1s",
            "--alerts",
            "-",
            "--alerts",
        ])
        .arg(format!("syslog+tcp://127.0.0.1:{closed}"))
        .arg(path("sample/attacks.log"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let alerts = json_lines(&out.stdout);
    assert!(!alerts.is_empty());
    assert!(
        stderr.contains(&format!(
            "{n} of {n} alerts not delivered to syslog+tcp://127.0.0.1:{closed}",
            n = alerts.len()
        )),
        "{stderr}"
    );
}

#[test]
fn a_syslog_address_without_a_port_is_a_usage_error() {
    let out = secpipe()
        .args(["--alerts", "syslog+udp://127.0.0.1", "/dev/null"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOST:PORT"));
}

/// `replay` re-raises old alerts: sent to a syslog server they would page people about last
/// month, so replay refuses network outputs unless `--deliver` asks for them.
#[test]
fn replay_sends_to_syslog_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsyslog = Rsyslog::start(dir.path());
    let syslog = format!("syslog+tcp://127.0.0.1:{}", rsyslog.tcp);
    let refused = secpipe()
        .args([
            "replay",
            "--tz",
            "UTC",
            "--alerts",
            &syslog,
            &path("sample/attacks.log"),
        ])
        .output()
        .expect("replay");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--deliver"), "{stderr}");
    let delivered = run_ok(&[
        "replay",
        "--tz",
        "UTC",
        "--deliver",
        "--alerts",
        "-",
        "--alerts",
        &syslog,
        &path("sample/attacks.log"),
    ]);
    let alerts = json_lines(&delivered.stdout);
    assert!(!alerts.is_empty());
    let received = rsyslog.alerts(alerts.len());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        rsyslog.received("secpipe").len(),
        alerts.len(),
        "only the delivered run reached rsyslog"
    );
    assert_eq!(received[0]["id"], alerts[0]["id"]);
}
