//! Alerts to a network output survive a receiver outage and a SIGKILLed secpipe: with
//! `--state`, each network output delivers from a spool there, and the next run sends what the
//! last one could not (issue 13, delivery). The receiver is a real rsyslog on loopback.

mod common;
mod live_support;
mod rsyslog_peer;

use common::*;
use live_support::{Running, free_port, wait_for};
use rsyslog_peer::Rsyslog;

fn path(rel: &str) -> String {
    fixture(rel).to_str().expect("UTF-8 path").to_string()
}

fn ids(
    alerts: &[serde_json::Value],
    field: impl Fn(&serde_json::Value) -> &serde_json::Value,
) -> Vec<String> {
    let mut ids: Vec<String> = alerts
        .iter()
        .map(|a| field(a).as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

/// The receiver is down for a whole run: its alerts stay in the spool (stderr says so), and
/// the next run, with nothing new to read, delivers every one of them, once.
#[test]
fn alerts_a_receiver_missed_while_down_arrive_with_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let (tcp, udp) = (free_port(), free_port());
    let syslog = format!("syslog+tcp://127.0.0.1:{tcp}");
    let first = secpipe()
        .args(["--tz", "UTC", "--drain-timeout", "1s", "--state"])
        .arg(&state)
        .args([
            "--alerts",
            "-",
            "--alerts",
            &syslog,
            &path("sample/attacks.log"),
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    let alerts = json_lines(&first.stdout);
    assert!(!alerts.is_empty(), "the sample has attacks");
    assert!(
        stderr.contains(&format!(
            "{n} of {n} alerts not delivered to {syslog}",
            n = alerts.len()
        )) && stderr.contains(&format!("{} of them wait in its spool", alerts.len())),
        "{stderr}"
    );

    let rsyslog = Rsyslog::start_on(&dir.path().join("rsyslog"), tcp, udp);
    let second = secpipe()
        .args(["--tz", "UTC", "--state"])
        .arg(&state)
        .args(["--alerts", &syslog, "/dev/null"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("left undelivered by an earlier run"),
        "{stderr}"
    );
    let received = rsyslog.alerts(alerts.len());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(rsyslog.received("secpipe").len(), alerts.len());
    assert_eq!(ids(&received, |sd| &sd["id"]), ids(&alerts, |a| &a["id"]));

    // Delivered is delivered: a third run sends nothing again.
    let third = secpipe()
        .args(["--tz", "UTC", "--state"])
        .arg(&state)
        .args(["--alerts", &syslog, "/dev/null"])
        .output()
        .expect("run");
    assert!(third.status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(rsyslog.received("secpipe").len(), alerts.len());
}

/// SIGKILL while the receiver is down: nothing the killed run raised is lost. The restarted
/// run (same `--state`, receiver up) delivers the killed run's alerts, and its own.
#[test]
fn a_sigkilled_run_loses_no_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let (tcp, udp) = (free_port(), free_port());
    let syslog = format!("syslog+tcp://127.0.0.1:{tcp}");
    let args = |alerts_file: &str| -> Vec<String> {
        vec![
            "--tz".into(),
            "UTC".into(),
            "--lateness".into(),
            "1s".into(),
            "--follow".into(),
            "--state".into(),
            state.display().to_string(),
            "--alerts".into(),
            syslog.clone(),
            "--alerts".into(),
            dir.path().join(alerts_file).display().to_string(),
            log.display().to_string(),
        ]
    };
    let first_args = args("first.jsonl");
    let first = Running::start(
        dir.path(),
        &first_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // Three attackers, each past auth.bruteforce's threshold.
    for (i, ip) in ["203.0.113.7", "198.51.100.9", "192.0.2.44"]
        .iter()
        .enumerate()
    {
        append_failures(&log, ip, i as u64);
    }
    let first_alerts = wait_for("three alerts from the first run", || {
        let text = std::fs::read_to_string(dir.path().join("first.jsonl")).ok()?;
        let alerts = json_lines(text.as_bytes());
        (alerts.len() >= 3).then_some(alerts)
    });
    // The receiver is down: the output counts its attempts to reach it again.
    let sink = format!("sink=\"{syslog}\"");
    wait_for("retries counted", || {
        (first.metric(&format!("secpipe_sink_retries_total{{{sink}}}")) > 0.0).then_some(())
    });
    assert!(first.metric(&format!("secpipe_sink_queue_depth{{{sink}}}")) >= 3.0);
    first.kill();

    let rsyslog = Rsyslog::start_on(&dir.path().join("rsyslog"), tcp, udp);
    let second_args = args("second.jsonl");
    let second = Running::start(
        dir.path(),
        &second_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    append_failures(&log, "100.64.0.5", 3);
    let received = rsyslog.alerts(first_alerts.len() + 1);
    // The output's counters: everything taken, nothing left waiting.
    second.wait_metric(&format!("secpipe_sink_queue_depth{{{sink}}}"), 0.0);
    let delivered = second.metric(&format!("secpipe_sink_delivered_total{{{sink}}}"));
    assert!(delivered >= received.len() as f64, "{delivered}");
    assert!(
        second
            .metrics()
            .contains(&format!("secpipe_sink_delivery_seconds_count{{{sink}}}")),
        "{}",
        second.metrics()
    );
    let (status, stderr) = second.terminate();
    assert!(status.success(), "{stderr}");
    let mut expected = ids(&first_alerts, |a| &a["id"]);
    let second_alerts = json_lines(
        std::fs::read_to_string(dir.path().join("second.jsonl"))
            .unwrap_or_default()
            .as_bytes(),
    );
    expected.extend(ids(&second_alerts, |a| &a["id"]));
    expected.sort();
    expected.dedup();
    let got = ids(&received, |sd| &sd["id"]);
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique, expected, "every alert of both runs reached rsyslog");
}

/// Ten failed logins from `ip`, stamped now, each from its own sshd process (one attempt per
/// session, so every line counts): the alert comes from the live run's wall-clock watermark.
fn append_failures(log: &std::path::Path, ip: &str, attacker: u64) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .expect("open log");
    for n in 0..10 {
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ");
        let pid = 4000 + attacker * 100 + n;
        writeln!(
            file,
            "<38>1 {now} gateway sshd {pid} - - Failed password for root from {ip} port {} ssh2",
            50_000 + n
        )
        .expect("append");
    }
}
