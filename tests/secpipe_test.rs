//! `secpipe test` through the real binary: the project's own annotated fixtures pass, a wrong
//! expectation fails with its file and line (so the check can fail), a bad test file exits 2
//! with line and column, and `--grammars` / `--config` reach the run. Also: the count of
//! ambiguous addresses reaches `events --stats` and the run summary.

mod common;
use common::*;

use std::path::PathBuf;

fn expect_fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture("expect"))
        .expect("fixtures/expect")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

fn run_test(extra: &[&str], files: &[PathBuf]) -> std::process::Output {
    let mut cmd = secpipe();
    cmd.args(["test", "--tz", "UTC", "--year", "2026"])
        .args(extra);
    cmd.args(files);
    cmd.output().expect("run secpipe test")
}

#[test]
fn every_annotated_fixture_passes() {
    let files = expect_fixtures();
    assert!(files.len() >= 12, "fixtures/expect: {files:?}");
    let out = run_test(&[], &files);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("all passed"), "{stderr}");
    // The summary counts what was checked: a run that checked nothing would pass too.
    let checks: usize = stderr
        .split("lines, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("field check count in the summary");
    assert!(checks >= 550, "only {checks} field checks: {stderr}");
}

#[test]
fn a_wrong_expectation_exits_1_naming_file_line_expected_and_got() {
    let source = fixture("expect/dovecot.log");
    let text = std::fs::read_to_string(&source).expect("dovecot fixture");
    let wrong_line = text
        .lines()
        .position(|l| l.contains("src_ip=198.51.100.36"))
        .expect("the line to falsify")
        + 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("dovecot.log");
    std::fs::write(
        &copy,
        text.replace("src_ip=198.51.100.36", "src_ip=198.51.100.99"),
    )
    .expect("write copy");
    let out = run_test(&[], std::slice::from_ref(&copy));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "{}:{}: src_ip: expected 198.51.100.99, got 198.51.100.36",
        copy.display(),
        wrong_line + 1
    );
    assert_eq!(stdout.trim_end(), want);
}

#[test]
fn a_wrong_alert_expectation_exits_1_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("alerts.log");
    let mut text = String::from("# scenario: four is not five\n");
    for (i, pid) in (1..=4).zip(7001..) {
        text.push_str(&format!(
            "Nov 23 13:00:0{i} mx postfix/smtpd[{pid}]: warning: unknown[203.0.113.7]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n"
        ));
    }
    text.push_str("# expect-alert: auth.bruteforce 203.0.113.7\n");
    text.push_str("# scenario: five is\n");
    for (i, pid) in (1..=5).zip(7101..) {
        text.push_str(&format!(
            "Nov 23 13:00:0{i} mx postfix/smtpd[{pid}]: warning: unknown[203.0.113.8]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n"
        ));
    }
    text.push_str("# expect-alerts: none\n");
    std::fs::write(&file, text).expect("write");
    let out = run_test(&[], std::slice::from_ref(&file));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].ends_with(
            ":6: alert auth.bruteforce 203.0.113.7: expected raised, got \"not raised\""
        ),
        "{stdout}"
    );
    assert!(
        lines[1]
            .contains(": alert auth.bruteforce 203.0.113.8: expected \"not raised\", got \"raised"),
        "{stdout}"
    );
}

#[test]
fn a_bad_test_file_exits_2_with_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.log");
    std::fs::write(
        &file,
        "Nov 23 11:00:01 h sshd[1]: x\n# expect: kind=auth.failure src_ip=not-an-ip\nNov 23 11:00:02 h sshd[1]: y\n",
    )
    .expect("write");
    let out = run_test(&[], std::slice::from_ref(&file));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:36:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("not an IP address"), "{stderr}");
}

#[test]
fn user_grammars_and_rule_config_are_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grammars = dir.path().join("grammars");
    std::fs::create_dir(&grammars).expect("mkdir");
    std::fs::write(
        grammars.join("myapp.toml"),
        "apps = [\"myapp\"]\n[[pattern]]\nname = \"denied\"\nkind = \"auth.failure\"\nattempt = \"end\"\nregex = '^denied (?P<user>\\S+) from (?P<src_ip>\\S+)$'\n",
    )
    .expect("grammar");
    let config = dir.path().join("secpipe.toml");
    std::fs::write(&config, "[rules.\"auth.bruteforce\"]\nthreshold = 2\n").expect("config");
    let file = dir.path().join("myapp.log");
    std::fs::write(
        &file,
        "# expect: kind=auth.failure src_ip=192.0.2.5 user=eve\n\
         Nov 23 11:00:01 h myapp[7]: denied eve from 192.0.2.5\n\
         Nov 23 11:00:02 h myapp[8]: denied eve from 192.0.2.5\n\
         # expect-alert: auth.bruteforce 192.0.2.5\n",
    )
    .expect("test file");
    let without = run_test(&[], std::slice::from_ref(&file));
    assert_eq!(
        without.status.code(),
        Some(1),
        "no grammar, no threshold 2: mismatches"
    );
    let with = run_test(
        &[
            "--grammars",
            grammars.to_str().expect("path"),
            "--config",
            config.to_str().expect("path"),
        ],
        &[file],
    );
    assert_eq!(
        with.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&with.stdout),
        String::from_utf8_lossy(&with.stderr)
    );
}

#[test]
fn ambiguous_addresses_are_counted_in_stats_and_summary() {
    // The sshd grammar pins its addresses itself (pinned_addresses); PAM's two `rhost=` (the
    // second inside a crafted `user=`, or the first inside a crafted `ruser=`) are ambiguous.
    let lines = b"Nov 23 11:00:01 h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.2 user=test rhost=192.0.2.250\n\
Nov 23 11:00:02 h dovecot[2]: imap-login: Disconnected (auth failed, 1 attempts): user=<x>, method=PLAIN, rip=192.0.2.250, lip=192.0.2.1, TLS: y>, method=PLAIN, rip=198.51.100.43, lip=192.0.2.1\n\
Nov 23 11:00:03 h sshd[3]: Failed password for root from 192.0.2.13 port 22 ssh2\n";
    let out = run_stdin(
        &["events", "--stats", "--tz", "UTC", "--year", "2026"],
        lines.to_vec(),
    );
    assert!(out.status.success());
    let events = json_lines(&out.stdout);
    let addresses: Vec<&serde_json::Value> = events.iter().map(|e| &e["src_ip"]).collect();
    assert_eq!(
        addresses,
        [
            &serde_json::Value::Null,
            &serde_json::Value::Null,
            &serde_json::json!("192.0.2.13")
        ]
    );
    assert_eq!(events[0]["reason"], "ambiguous_address");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 lines with an ambiguous address"),
        "{stderr}"
    );
    assert!(
        stderr.contains("         2  (ambiguous address: src_ip left empty)"),
        "{stderr}"
    );
    let run = run_stdin(&["--tz", "UTC", "--year", "2026"], lines.to_vec());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("2 lines with an ambiguous address"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
