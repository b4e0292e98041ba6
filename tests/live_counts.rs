//! The end-of-run summary counts what a live source cut, as it does for a file read once: an
//! attacker who writes lines longer than `--max-line` to a followed file or a syslog listener
//! must not make the summary say "0 dropped bytes" while bytes were dropped.

mod live_support;

use std::io::Write;

use live_support::{Running, free_port, lines_read};

/// `N dropped bytes` from the stderr summary.
fn summary_dropped_bytes(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            let (head, _) = l.split_once(" dropped bytes")?;
            head.rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no dropped-bytes count in stderr:\n{stderr}"))
}

/// Two lines of 100 bytes (newline apart) cut at 40: 60 bytes dropped each.
fn long_lines() -> String {
    let mut text = String::new();
    for i in 0..2 {
        let line = format!("line {i} sshd[1]: Failed password for root from 203.0.113.9 ");
        text.push_str(&format!("{line:x<100}\n"));
    }
    text
}

#[test]
fn a_file_read_once_counts_its_cut_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("auth.log"), long_lines()).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["--max-line", "40", "auth.log"])
        .current_dir(dir.path())
        .output()
        .expect("run secpipe");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(summary_dropped_bytes(&stderr), 120, "{stderr}");
}

#[test]
fn a_followed_file_counts_its_cut_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("auth.log"), long_lines()).expect("write");
    let secpipe = Running::start(dir.path(), &["--follow", "--max-line", "40", "auth.log"]);
    secpipe.wait_metric(&lines_read("auth.log"), 2.0);
    let stderr = secpipe.terminate_expecting_lines(2);
    assert_eq!(summary_dropped_bytes(&stderr), 120, "{stderr}");
}

#[test]
fn a_tcp_listener_counts_its_cut_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("syslog+tcp://127.0.0.1:{port}");
    let secpipe = Running::start(dir.path(), &["--listen", &url, "--max-line", "40"]);
    let mut peer = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    peer.write_all(long_lines().as_bytes()).expect("send");
    peer.flush().expect("flush");
    drop(peer);
    secpipe.wait_metric(&lines_read(&url), 2.0);
    let stderr = secpipe.terminate_expecting_lines(2);
    assert_eq!(summary_dropped_bytes(&stderr), 120, "{stderr}");
}
