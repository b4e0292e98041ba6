//! `journalctl -f | secpipe`: piped input is handed on as it arrives (not once a batch is
//! full), and SIGTERM ends the run even while the writer keeps the pipe open.

mod live_support;

use std::io::Write;
use std::process::{Command, Stdio};

use live_support::{free_port, metric_value, summary_lines, wait_for};

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
}
