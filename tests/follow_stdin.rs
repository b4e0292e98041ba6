//! `--follow` with stdin among the inputs (`journalctl -f | secpipe --follow --state DIR`, or
//! `--follow` with no INPUT): the run is live, as `--follow` says, whether or not a file is
//! followed. Before issue 12's reshape `--follow` alone made the run live and opened `--state`;
//! the reshape tied both to a followed *file*, so with stdin alone the state directory was
//! never opened (a bad one went unreported) and stale lines held alerts back until EOF.

mod live_support;

use std::io::Write;
use std::process::{Command, Stdio};

use live_support::{start_on_a_pipe, wait_for};

/// `secpipe --follow --state STATE` with nothing on stdin.
fn follow_stdin_with_state(state: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .arg("--follow")
        .arg("--state")
        .arg(state)
        .stdin(Stdio::null())
        .output()
        .expect("run secpipe")
}

/// `--follow --state DIR` where DIR cannot be a directory: a usage error before anything is
/// read, as for any bad `--state`, not a run that silently keeps no positions.
#[test]
fn follow_with_stdin_only_reports_an_unusable_state_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_dir = dir.path().join("plain-file");
    std::fs::write(&not_a_dir, b"not a directory\n").expect("write");
    let state = not_a_dir.join("state");
    let output = follow_stdin_with_state(&state);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--state"), "{stderr}");
    assert!(
        !stderr.contains(" lines ("),
        "nothing may be read before the state is open: {stderr}"
    );
}

/// `--follow --state DIR` with stdin only: the state directory is created and its (empty)
/// store written at the end, as with followed files.
#[test]
fn follow_with_stdin_only_saves_the_state_at_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let output = follow_stdin_with_state(&state);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let saved = std::fs::read_to_string(state.join("checkpoints.json")).expect("state saved");
    let list: serde_json::Value = serde_json::from_str(&saved).expect("json");
    assert_eq!(list, serde_json::json!([]), "no file was followed");
}

/// A planted trickle of stale lines (stamped 2020) on a followed stdin: `--follow` makes the
/// wall clock move the watermark, so the attack alerts while the pipe stays open instead of
/// waiting for an EOF that a live pipe never sends.
#[test]
fn follow_with_stdin_only_alerts_on_stale_lines_while_the_pipe_stays_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stdout_path = dir.path().join("alerts.jsonl");
    let (child, mut stdin) = start_on_a_pipe(&["--follow", "--lateness", "1s"], &stdout_path);
    let ip = "203.0.113.77";
    for n in 0..6 {
        writeln!(
            stdin,
            "<38>1 2020-03-01T10:00:0{n}Z gateway sshd {} - - Failed password for root from {ip} port {} ssh2",
            4000 + n,
            50_000 + n
        )
        .expect("write");
    }
    stdin.flush().expect("flush");
    let alert = wait_for("a brute-force alert while stdin stays open", || {
        std::fs::read_to_string(&stdout_path)
            .ok()?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|a| a["rule"] == "auth.bruteforce" && a["key"]["value"] == ip)
    });
    assert_eq!(alert["count"], 5, "{alert}");
    drop(stdin);
    let output = child.wait_with_output().expect("exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
}
