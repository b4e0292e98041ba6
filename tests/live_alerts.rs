//! Attacks over live sources end in alerts: sshd brute force sent by util-linux `logger` over
//! UDP and TCP, and written to followed files that are rotated in the middle of the attack.
//!
//! The events carry the current time (logger stamps it; the file writers here do too), so the
//! alerts can only come from the wall-clock watermark of a live run: the detector must see the
//! input go idle and move its watermark past the attack. `--lateness 1s` keeps that short; every
//! wait is bounded and no test asserts how long anything took.

mod live_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use live_support::{Running, copytruncate, free_port, lines_read};

/// An sshd failed-password message from `ip` (no envelope: logger adds it).
fn failed_password(ip: &str, port: u32) -> String {
    format!("Failed password for root from {ip} port {port} ssh2")
}

/// Send one message with util-linux `logger`, as `sshd[pid]`.
fn logger(transport: &[&str], port: u16, pid: u32, message: &str) {
    let status = Command::new("logger")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(transport)
        .args(["-t", "sshd", &format!("--id={pid}"), message])
        .stdin(Stdio::null())
        .status()
        .expect("util-linux logger must be installed");
    assert!(status.success(), "logger {transport:?} failed: {status}");
}

/// Attempt `n` as an RFC 5424 line stamped now, each from its own sshd process (one attempt
/// per session, so the detector counts every line).
fn attempt_line(ip: &str, n: u32) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ");
    let pid = 4000 + n;
    format!(
        "<38>1 {now} gateway sshd {pid} - - {}\n",
        failed_password(ip, 50_000 + n)
    )
}

fn append_attempts(file: &mut impl Write, ip: &str, attempts: std::ops::Range<u32>) {
    for n in attempts {
        file.write_all(attempt_line(ip, n).as_bytes())
            .expect("append an attempt");
    }
    file.flush().expect("flush");
}

/// The alert rests on the first five attempts, from both sides of a rotation.
fn assert_first_five_attempts(alert: &serde_json::Value) {
    let ports: Vec<String> = alert["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e["raw"].as_str()?.split(" port ").nth(1)?.to_string()))
        .collect();
    let want: Vec<String> = (0..5).map(|n| format!("{} ssh2", 50_000 + n)).collect();
    assert_eq!(ports, want, "{alert}");
}

fn open_append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append")
}

/// The alert is a brute-force alert on `ip` resting on `count` attempts, and says to block it.
fn assert_bruteforce(alert: &serde_json::Value, ip: &str, count: u64) {
    assert_eq!(alert["key"]["field"], "src_ip", "{alert}");
    assert_eq!(alert["count"], count, "{alert}");
    assert_eq!(alert["action"]["block"], ip, "{alert}");
    let summary = alert["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(ip),
        "the summary names the attacker: {alert}"
    );
}

/// Each of the alert's five evidence lines passes `check`.
fn assert_evidence(alert: &serde_json::Value, check: impl Fn(&str) -> bool, what: &str) {
    let evidence = alert["evidence"].as_array().cloned().unwrap_or_default();
    assert_eq!(evidence.len(), 5, "{alert}");
    for e in &evidence {
        let raw = e["raw"].as_str().unwrap_or_default();
        assert!(check(raw), "evidence is not {what}: {raw}");
    }
}

#[test]
fn logger_over_udp_rfc3164_brute_force_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("syslog+udp://127.0.0.1:{port}");
    let secpipe = Running::start(dir.path(), &["--listen", &url, "--lateness", "1s"]);
    let ip = "203.0.113.31";
    for n in 0..6 {
        logger(
            &["--udp", "--rfc3164"],
            port,
            3100 + n,
            &failed_password(ip, 40_000 + n),
        );
    }
    secpipe.wait_metric(&lines_read(&url), 6.0);
    let alert = secpipe.wait_alert("auth.bruteforce", ip);
    assert_bruteforce(&alert, ip, 5);
    // Every attempt came from its own logger (and UDP socket), in RFC 3164 form.
    assert_evidence(
        &alert,
        |raw| raw.contains(" sshd[31"),
        "RFC 3164 `sshd[PID]:`",
    );
    let stderr = secpipe.terminate_expecting_lines(6);
    assert!(stderr.contains("auth.bruteforce 1"), "{stderr}");
}

#[test]
fn logger_over_tcp_with_octet_counting_rfc5424_brute_force_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("syslog+tcp://127.0.0.1:{port}");
    let secpipe = Running::start(dir.path(), &["--listen", &url, "--lateness", "1s"]);
    let ip = "203.0.113.32";
    for n in 0..6 {
        logger(
            &["--tcp", "--octet-count", "--rfc5424"],
            port,
            3200 + n,
            &failed_password(ip, 40_000 + n),
        );
    }
    secpipe.wait_metric(&lines_read(&url), 6.0);
    let alert = secpipe.wait_alert("auth.bruteforce", ip);
    assert_bruteforce(&alert, ip, 5);
    // RFC 5424 puts the pid in its own field (`1 TIMESTAMP HOST sshd 3200 - …`), and octet
    // counting leaves no trailing newline in the message.
    assert_evidence(
        &alert,
        |raw| raw.contains(" sshd 32") && raw.ends_with("ssh2"),
        "RFC 5424 `sshd PID`",
    );
    secpipe.terminate_expecting_lines(6);
}

#[test]
fn attack_across_a_rename_rotation_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    let ip = "203.0.113.33";
    let mut writer = open_append(&log);
    append_attempts(&mut writer, ip, 0..2);
    let secpipe = Running::start(dir.path(), &["--follow", "auth.log", "--lateness", "1s"]);
    let series = lines_read("auth.log");
    secpipe.wait_metric(&series, 2.0);

    // logrotate without copytruncate: rename, the daemon writes on into the renamed file
    // until it reopens, then into a new file. The fifth attempt is in the new file, so only a
    // follower that read all three parts counts five.
    std::fs::rename(&log, dir.path().join("auth.log.1")).expect("rotate");
    append_attempts(&mut writer, ip, 2..3);
    drop(writer);
    append_attempts(&mut open_append(&log), ip, 3..6);

    secpipe.wait_metric(&series, 6.0);
    let alert = secpipe.wait_alert("auth.bruteforce", ip);
    assert_bruteforce(&alert, ip, 5);
    assert_first_five_attempts(&alert);
    secpipe.terminate_expecting_lines(6);
}

#[test]
fn attack_across_a_copytruncate_rotation_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    let ip = "203.0.113.34";
    append_attempts(&mut open_append(&log), ip, 0..3);
    let secpipe = Running::start(dir.path(), &["--follow", "auth.log", "--lateness", "1s"]);
    let series = lines_read("auth.log");
    // copytruncate loses what was not read before the cut (tail -F too): cut once read.
    secpipe.wait_metric(&series, 3.0);
    copytruncate(&log, &dir.path().join("auth.log.1"));
    append_attempts(&mut open_append(&log), ip, 3..6);

    secpipe.wait_metric(&series, 6.0);
    let alert = secpipe.wait_alert("auth.bruteforce", ip);
    assert_bruteforce(&alert, ip, 5);
    assert_first_five_attempts(&alert);
    secpipe.terminate_expecting_lines(6);
}

#[test]
fn sigterm_in_a_live_run_seals_an_archive_that_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("syslog+udp://127.0.0.1:{port}");
    let secpipe = Running::start(
        dir.path(),
        &["--listen", &url, "--lateness", "1s", "--archive", "archive"],
    );
    let ip = "203.0.113.35";
    for n in 0..5 {
        logger(
            &["--udp", "--rfc3164"],
            port,
            3500 + n,
            &failed_password(ip, 40_000 + n),
        );
    }
    let alert = secpipe.wait_alert("auth.bruteforce", ip);
    assert_bruteforce(&alert, ip, 5);
    // Archived events carry their row number into the evidence.
    assert!(alert["evidence"][0]["seq"].is_u64(), "{alert}");
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "exit status {status}: {stderr}");
    assert!(
        stderr.contains("secpipe: archive: 5 event rows, 1 alert rows"),
        "{stderr}"
    );

    let verify = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["verify", "archive"])
        .current_dir(dir.path())
        .output()
        .expect("run secpipe verify");
    assert!(
        verify.status.success(),
        "verify after SIGTERM: {}\n{}{}",
        verify.status,
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // Sealed at shutdown: at least one events file and one alerts file, each with a manifest.
    let manifests = std::fs::read_to_string(dir.path().join("archive/audit/manifests.jsonl"))
        .expect("manifests");
    for table in ["events/", "alerts/"] {
        assert!(
            manifests.lines().any(|m| m.contains(table)),
            "no sealed {table} file: {manifests}"
        );
    }
}
