//! Event time under attack (issue 10, items 1, 8, 9, 10, 11) and alerts on a quiet live pipe
//! (issue 9, part 4), through the real binary: pipes held open, a UDP trickle of stale lines,
//! planted dates, out-of-range years, and a flood that only the reorder-buffer cap can move.
//!
//! No test here asserts how fast anything is: a wait gives up after `PATIENCE` only so that a
//! missing alert fails the test instead of hanging it.

mod common;
mod live_support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{json_lines, run_stdin};
use live_support::{Running, free_port, wait_for};

/// `secpipe ARGS…` reading a pipe that this test holds open, alerts into a file.
struct Piped {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    alerts: std::path::PathBuf,
}

impl Piped {
    fn start(dir: &Path, args: &[&str]) -> Piped {
        let alerts = dir.join("alerts.jsonl");
        let child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&alerts).expect("alerts file"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start secpipe");
        let mut piped = Piped {
            child,
            stdin: None,
            alerts,
        };
        piped.stdin = piped.child.stdin.take();
        piped
    }

    fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("pipe open");
        stdin.write_all(text.as_bytes()).expect("write to secpipe");
        stdin.flush().expect("flush");
    }

    fn alerts(&self) -> Vec<serde_json::Value> {
        json_lines(&std::fs::read(&self.alerts).unwrap_or_default())
    }

    /// Wait, with the pipe still open, for an alert of `rule` keyed `key`.
    fn wait_alert(&self, rule: &str, key: &str) -> serde_json::Value {
        wait_for(&format!("{rule} for {key} while stdin stays open"), || {
            self.alerts()
                .into_iter()
                .find(|a| a["rule"] == rule && a["key"]["value"] == key)
        })
    }

    /// Close the pipe and wait for a clean exit; returns the alerts and the stderr.
    fn close(mut self) -> (Vec<serde_json::Value>, String) {
        drop(self.stdin.take());
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).expect("stderr");
        }
        let status = self.child.wait().expect("wait for secpipe");
        assert!(status.success(), "{stderr}");
        (
            json_lines(&std::fs::read(&self.alerts).unwrap_or_default()),
            stderr,
        )
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RFC 5424 sshd failure stamped `ts` (RFC 3339).
fn failure_5424(ts: &str, host: &str, ip: &str, pid: u32) -> String {
    format!("<38>1 {ts} {host} sshd {pid} - - Failed password for root from {ip} port 22 ssh2\n")
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// What identifies an alert, without run-specific fields.
fn essence(alerts: &[serde_json::Value]) -> Vec<String> {
    let mut out: Vec<String> = alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {} {}",
                a["rule"], a["key"]["value"], a["count"], a["window_start"], a["window_end"]
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn journalctl_f_pipe_alerts_while_the_pipe_stays_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut secpipe = Piped::start(dir.path(), &["--lateness", "1s"]);
    let ip = "203.0.113.94";
    for pid in 0..5 {
        secpipe.write(&failure_5424(&now_rfc3339(), "web1", ip, 9400 + pid));
    }
    // Nothing more is written: only the wall clock can move the watermark past the attack.
    let alert = secpipe.wait_alert("auth.bruteforce", ip);
    assert_eq!(alert["count"], 5, "{alert}");
    let (alerts, _) = secpipe.close();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
}

#[test]
fn a_host_that_goes_quiet_on_an_open_pipe_gets_log_silence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("secpipe.toml");
    std::fs::write(&config, "[rules.\"log.silence\"]\nwindow = \"3s\"\n").expect("config");
    let config = config.to_str().expect("utf-8 path");
    let mut secpipe = Piped::start(dir.path(), &["--lateness", "1s", "--config", config]);
    secpipe.write(&format!(
        "<38>1 {} quiet-host cron 1 - - session opened\n",
        now_rfc3339()
    ));
    secpipe.wait_alert("log.silence", "quiet-host");
    secpipe.close();
}

/// Five current failed logins on an open pipe, then one `stale()` line every half second for
/// as long as the test waits: the pipe is never idle for a second, and the alert must still
/// come while the trickle goes on.
fn stdin_alerts_through_a_trickle(stale: impl Fn() -> String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut secpipe = Piped::start(dir.path(), &["--lateness", "1s"]);
    let ip = "203.0.113.95";
    for pid in 0..5 {
        secpipe.write(&failure_5424(&now_rfc3339(), "web1", ip, 9500 + pid));
    }
    let alert = wait_for("auth.bruteforce while stale lines keep coming", || {
        secpipe.write(&stale());
        std::thread::sleep(Duration::from_millis(450));
        secpipe
            .alerts()
            .into_iter()
            .find(|a| a["rule"] == "auth.bruteforce" && a["key"]["value"] == ip)
    });
    assert_eq!(alert["count"], 5, "{alert}");
    let (_, stderr) = secpipe.close();
    assert!(stderr.contains("secpipe: "), "{stderr}");
}

#[test]
fn a_trickle_of_lines_stamped_2020_does_not_hold_back_stdin_alerts() {
    stdin_alerts_through_a_trickle(|| {
        "<38>1 2020-01-01T00:00:00Z old-host app 1 - - stale\n".into()
    });
}

#[test]
fn a_host_whose_clock_is_behind_does_not_hold_back_stdin_alerts() {
    stdin_alerts_through_a_trickle(|| {
        let behind = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(300);
        format!("<38>1 {behind} laggy cron 1 - - tick\n")
    });
}

/// Two hosts in 2020: `busy` logs every 30 s for 20 minutes, `early` only in the first minute,
/// and six failed logins from one address near the end.
fn old_log() -> String {
    let mut text = String::new();
    for i in 0..40u32 {
        let (m, s) = (i * 30 / 60, i * 30 % 60);
        text += &format!("<38>1 2020-03-10T10:{m:02}:{s:02}Z busy cron 1 - - tick {i}\n");
        if i < 2 {
            text += &format!("<38>1 2020-03-10T10:00:{s:02}Z early cron 1 - - hello\n");
        }
    }
    for pid in 0..6 {
        text += &failure_5424(
            &format!("2020-03-10T10:19:{:02}Z", 25 + pid),
            "busy",
            "198.51.100.20",
            2000 + pid,
        );
    }
    text
}

#[test]
fn cat_old_log_into_a_pipe_gives_the_alerts_of_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.log");
    std::fs::write(&path, old_log()).expect("old.log");
    let of_file = common::alerts_for(&[&path]);
    assert!(
        of_file.iter().any(|a| a["rule"] == "auth.bruteforce"),
        "{of_file:#?}"
    );
    let mut piped = Piped::start(dir.path(), &[]);
    piped.write(&old_log());
    // The pipe stays open and idle for a while: the wall clock must not decide anything for
    // events of 2020 (it would make `busy` silent too, and close every window at today).
    std::thread::sleep(Duration::from_secs(3));
    let (of_pipe, stderr) = piped.close();
    assert_eq!(essence(&of_pipe), essence(&of_file), "{stderr}");
    assert!(stderr.contains(", 0 late events"), "{stderr}");
}

#[test]
fn a_trickle_of_stale_datagrams_does_not_hold_back_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("syslog+udp://127.0.0.1:{port}");
    let secpipe = Running::start(dir.path(), &["--listen", &url, "--lateness", "1s"]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let ip = "203.0.113.88";
    for pid in 0..5 {
        let line = failure_5424(&now_rfc3339(), "gw", ip, 8800 + pid);
        socket
            .send_to(line.trim_end().as_bytes(), ("127.0.0.1", port))
            .expect("send");
    }
    // One datagram stamped 2020 every 300 ms, for as long as the test waits: the ordered
    // stage is never idle for a second.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        let socket = socket.try_clone().expect("socket");
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let stale = "<38>1 2020-01-01T00:00:00Z old-host app 1 - - stale";
                let _ = socket.send_to(stale.as_bytes(), ("127.0.0.1", port));
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    secpipe.wait_alert("auth.bruteforce", ip);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickle.join().expect("trickle thread");
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn two_planted_dates_do_not_fake_a_brute_force() {
    // 26 failures from one address spread over an hour (never 5 in 5 minutes), after two
    // planted lines: `Sep 30`, then `Feb  1`. With the year walked forward by them, every later
    // line was "future", collapsed onto its receive time and made a brute force.
    let mut text = String::new();
    text += "Sep 30 23:59:59 web1 app[1]: planted\n";
    text += "Feb  1 00:00:00 web1 app[1]: planted\n";
    for i in 0..26u32 {
        let secs = i * 144;
        text += &format!(
            "Mar 10 10:{:02}:{:02} web1 sshd[{}]: Failed password for root from 192.0.2.77 port 22 ssh2\n",
            secs / 60,
            secs % 60,
            3000 + i
        );
    }
    let out = run_stdin(&["--tz", "UTC"], text.into_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let alerts = json_lines(&out.stdout);
    assert!(
        alerts.iter().all(|a| a["rule"] != "auth.bruteforce"),
        "{alerts:#?}"
    );
    assert!(stderr.contains(" 0 future timestamps ignored"), "{stderr}");
}

#[test]
fn rfc5424_years_9999_and_0001_are_counted() {
    let text = "<34>1 9999-12-31T23:59:59Z h sshd 1 - - far\n\
                <34>1 0001-01-01T00:00:00Z h sshd 1 - - early\n\
                <34>1 2026-11-23T12:00:00Z h sshd 1 - - fine\n";
    let out = run_stdin(&["--tz", "UTC"], text.as_bytes().to_vec());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("2 timestamps out of range"), "{stderr}");
}

#[test]
fn a_flood_without_timestamps_is_forced_through_a_bounded_buffer() {
    let text = "hello\n".repeat(20_000);
    let out = run_stdin(&["--reorder-buffer-events", "1000"], text.into_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("secpipe: 20000 lines"), "{stderr}");
    assert!(
        stderr.contains("19000 events forced through a full reorder buffer"),
        "{stderr}"
    );
}

#[test]
fn a_reorder_buffer_cap_of_zero_is_a_usage_error() {
    for flag in ["--reorder-buffer-events", "--reorder-buffer-mib"] {
        let out = run_stdin(&[flag, "0"], Vec::new());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("must be at least 1"), "{stderr}");
    }
}
