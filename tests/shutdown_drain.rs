//! SIGTERM while the alert consumer is blocked (`secpipe … | sleep 30`): secpipe waits for it
//! at most the drain limit, exits, and says how many alerts were not delivered (issue 10, item
//! 14). No timing is asserted: the test only needs the process to end and report.

mod live_support;

use std::io::Write;
use std::process::{Command, Stdio};

use live_support::{free_port, http_get, signal, summary_lines, wait_for};

/// Alerts decided so far, from `/metrics`.
fn bruteforce_alerts(metrics_port: u16) -> Option<f64> {
    let text = http_get(metrics_port, "/metrics")?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("secpipe_alerts_total{rule=\"auth.bruteforce\""))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum(),
    )
}

#[test]
fn sigterm_with_a_blocked_alert_consumer_exits_and_reports_what_was_not_delivered() {
    const ATTACKERS: u32 = 120;
    let metrics_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["--tz", "UTC", "--year", "2026", "--drain-timeout", "1s"])
        .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
        .stdin(Stdio::piped())
        // Piped and never read: the consumer that sleeps.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start secpipe");
    let mut stdin = child.stdin.take().expect("stdin");
    // Long user names make each alert (with its evidence lines) a few kB, so the alerts are far
    // more than the 64 KiB a pipe holds.
    let name = "x".repeat(400);
    let mut text = String::new();
    for a in 0..ATTACKERS {
        for i in 0..5 {
            let t = a * 10 + i;
            text.push_str(&format!(
                "Mar 10 {:02}:{:02}:{:02} gw sshd[{}]: Failed password for invalid user {name} from 203.0.{}.{} port {} ssh2\n",
                10 + t / 3600,
                (t / 60) % 60,
                t % 60,
                1000 + t,
                a / 200,
                a % 200 + 1,
                40000 + t,
            ));
        }
    }
    // Hours later: moves the watermark past every attack, so every alert is decided. Several
    // lines in a row, because lines that far ahead of the stream are believed only then
    // (secpipe::detect::CONFIRM_AHEAD).
    for port in 0..secpipe::detect::CONFIRM_AHEAD {
        text.push_str(&format!(
            "Mar 10 13:00:{port:02} gw sshd[9]: Connection closed by 192.0.2.1 port {port} [preauth]\n"
        ));
    }
    stdin.write_all(text.as_bytes()).expect("write input");
    stdin.flush().expect("flush");
    wait_for("every alert to be decided", || {
        (bruteforce_alerts(metrics_port)? >= f64::from(ATTACKERS)).then_some(())
    });
    signal(&child, "TERM");
    let status = wait_for(
        "secpipe to exit after SIGTERM with its alert consumer blocked",
        || child.try_wait().expect("wait"),
    );
    drop(stdin);
    let stderr = {
        let mut text = String::new();
        let mut pipe = child.stderr.take().expect("stderr");
        std::io::Read::read_to_string(&mut pipe, &mut text).expect("read stderr");
        text
    };
    assert!(status.success(), "exit status {status}: {stderr}");
    assert_eq!(
        summary_lines(&stderr),
        u64::from(ATTACKERS) * 5 + secpipe::detect::CONFIRM_AHEAD as u64,
        "{stderr}"
    );
    let report = stderr
        .lines()
        .find(|l| l.contains("alerts not delivered"))
        .unwrap_or_else(|| panic!("no delivery report:\n{stderr}"));
    let (undelivered, total) = report
        .strip_prefix("secpipe: ")
        .and_then(|rest| rest.split_once(" alerts not delivered"))
        .and_then(|(counts, _)| counts.split_once(" of "))
        .map(|(u, t)| (u.parse::<u64>().ok(), t.parse::<u64>().ok()))
        .unwrap_or_else(|| panic!("unreadable report: {report}"));
    // Every alert decided is accounted for: the summary's count is the report's total.
    let decided = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("secpipe: ")?
                .split_once(" alerts (")?
                .0
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no alert count in the summary:\n{stderr}"));
    assert!(decided >= u64::from(ATTACKERS), "{stderr}");
    assert_eq!(total, Some(decided), "{report}");
    // The pipe took the first alerts (64 KiB of them) and none after: counted line by line.
    assert!(
        undelivered.is_some_and(|n| n > 0 && n < decided),
        "{report}"
    );
    assert!(report.contains("--drain-timeout"), "{report}");
}

#[test]
fn a_bad_drain_timeout_is_a_usage_error_naming_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["--drain-timeout", "soon", "/dev/null"])
        .output()
        .expect("run secpipe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--drain-timeout"), "{stderr}");
}
