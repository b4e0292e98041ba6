//! `journalctl -f | secpipe`: piped input is handed on as it arrives (not once a batch is
//! full), and SIGTERM ends the run even while the writer keeps the pipe open.

mod live_support;

use std::io::Write;
use std::process::{Command, Stdio};

use live_support::{free_port, metric_value, start_on_a_pipe, summary_lines, wait_for};

#[test]
fn piped_lines_are_processed_before_eof_and_sigterm_exits_cleanly() {
    let metrics_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start secpipe");
    let mut stdin = child.stdin.take().expect("stdin");
    // Far fewer lines than a batch holds, so only the short-read flush can hand them on.
    for i in 0..100 {
        writeln!(
            stdin,
            "<38>Nov 23 10:00:00 host sshd[{i}]: Failed password for root"
        )
        .expect("write");
    }
    stdin.flush().expect("flush");
    wait_for(
        "100 piped lines to reach the ordered stage while stdin stays open",
        || {
            let text = live_support::http_get(metrics_port, "/metrics")?;
            let events = metric_value(&text, "secpipe_unparsed_total")
                + metric_value(&text, "secpipe_parsed_total");
            (events == 100.0).then_some(())
        },
    );
    live_support::signal(&child, "TERM");
    let status = wait_for(
        "secpipe to exit after SIGTERM with stdin still open",
        || child.try_wait().expect("wait"),
    );
    drop(stdin);
    let output = child.wait_with_output().expect("stderr");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "exit status {status}: {stderr}");
    assert_eq!(summary_lines(&stderr), 100, "{stderr}");
    // Every piped line was parsed, not merely counted.
    assert!(
        stderr.contains(": 100 parsed, 0 unparsed,"),
        "not all 100 parsed: {stderr}"
    );
}

/// `journalctl -f | secpipe events`, stopped by `signal` while the writer keeps the pipe open:
/// the events already read are printed, then the summary, and the exit is 0.
fn events_stops_cleanly_on(signal: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let stdout_path = dir.path().join("events.jsonl");
    let (mut child, mut stdin) = start_on_a_pipe(&["events"], &stdout_path);
    for i in 0..100 {
        writeln!(
            stdin,
            "<38>Nov 23 10:00:00 host sshd[{i}]: Failed password for root from 203.0.113.50 port 22 ssh2"
        )
        .expect("write");
    }
    stdin.flush().expect("flush");
    // Events are written per batch, so all 100 show up while stdin is still open.
    wait_for("100 events on stdout while stdin stays open", || {
        let text = std::fs::read_to_string(&stdout_path).ok()?;
        (text.lines().count() == 100).then_some(())
    });
    live_support::signal(&child, signal);
    let status = wait_for(
        &format!("secpipe events to exit after SIG{signal} with stdin still open"),
        || child.try_wait().expect("wait"),
    );
    drop(stdin);
    let output = child.wait_with_output().expect("stderr");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "exit status {status}: {stderr}");
    assert!(stderr.contains(&format!("SIG{signal}")), "{stderr}");
    assert_eq!(summary_lines(&stderr), 100, "{stderr}");
    let text = std::fs::read_to_string(&stdout_path).expect("stdout");
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("one JSON event per line");
            v["kind"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(kinds.len(), 100);
    assert!(kinds.iter().all(|k| k == "auth.failure"), "{kinds:?}");
}

#[test]
fn events_finishes_and_exits_0_on_sigint() {
    events_stops_cleanly_on("INT");
}

#[test]
fn events_finishes_and_exits_0_on_sigterm() {
    events_stops_cleanly_on("TERM");
}
