//! A bad flag or config gets a clear error and exit code 2.

mod common;
use common::*;

fn stderr_of(args: &[&str]) -> (i32, String) {
    let out = secpipe().args(args).write_stdin("").output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_flag_exits_2() {
    let (code, err) = stderr_of(&["--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"));
}

#[test]
fn bad_time_zone_exits_2_and_says_how_to_fix() {
    let (code, err) = stderr_of(&["--tz", "Mars/Olympus"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("Mars/Olympus") && err.contains("IANA"),
        "{err}"
    );
}

#[test]
fn bad_duration_exits_2() {
    let (code, err) = stderr_of(&["--lateness", "soonish"]);
    assert_eq!(code, 2);
    assert!(err.contains("--lateness"), "{err}");
}

#[test]
fn missing_input_file_exits_2_after_reading_the_others() {
    let sample = fixture("sample/attacks.log");
    let out = secpipe()
        .args(["--tz", "UTC", "--year", "2026", "/nonexistent/auth.log"])
        .arg(&sample)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/auth.log"), "{err}");
    assert!(
        !out.stdout.is_empty(),
        "the readable input was still processed"
    );
}

#[test]
fn missing_config_file_exits_2() {
    let (code, err) = stderr_of(&["--config", "/nonexistent/secpipe.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/secpipe.toml"), "{err}");
}

fn write_config(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secpipe.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

#[test]
fn config_error_names_file_line_and_column() {
    let (_dir, path) = write_config(
        "# tune brute force\n[rules.\"auth.bruteforce\"]\nthreshold = 3\nwindwo = \"5m\"\n",
    );
    let (code, err) = stderr_of(&["--config", path.to_str().expect("path")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("secpipe.toml:4:"), "{err}");
    assert!(err.contains("windwo"), "{err}");
}

#[test]
fn config_with_a_bad_value_exits_2() {
    let (_dir, path) = write_config("[rules.\"auth.bruteforce\"]\nthreshold = \"five\"\n");
    let (code, err) = stderr_of(&["--config", path.to_str().expect("path")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("secpipe.toml:2:"), "{err}");
}

#[test]
fn config_overrides_a_threshold_and_rules_lists_it() {
    let (_dir, path) = write_config("[rules.\"auth.bruteforce\"]\nthreshold = 4\n");
    let config = path.to_str().expect("path");
    let out = run_ok(&["rules", "--config", config]);
    let listing = String::from_utf8_lossy(&out.stdout);
    let line = listing
        .lines()
        .find(|l| l.contains("auth.bruteforce"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains('4'), "{line}");
    assert!(
        listing.lines().filter(|l| l.contains('.')).count() >= 13,
        "{listing}"
    );
    // 4 attempts: quiet with the default pack, an alert with the override.
    let quiet = fixture("rules/auth.bruteforce.quiet.log");
    assert!(alerts_for(&[&quiet]).is_empty());
    let tuned = alerts_with(&["--config", config], &[&quiet]);
    assert_eq!(rules_of(&tuned), vec!["auth.bruteforce".to_string()]);
}

/// An output that cannot be opened is reported before the run announces that it listens:
/// "listening on" tells an operator (and a supervisor's log) that syslog is being taken in.
#[test]
fn an_alerts_output_that_cannot_be_opened_fails_before_listening() {
    let (code, err) = stderr_of(&[
        "--listen",
        "syslog+udp://127.0.0.1:0",
        "--alerts",
        "/nonexistent-secpipe-dir/alerts.jsonl",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--alerts"), "{err}");
    assert!(!err.contains("listening on"), "{err}");
}
