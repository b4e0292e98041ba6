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
