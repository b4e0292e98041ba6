//! What the `secpipe report` tests share: an archive made by the binary from log text, and a
//! review of it as JSON.
#![allow(dead_code)] // each test binary uses some of these

use std::path::{Path, PathBuf};

use crate::common::secpipe;

/// Archive `log` into `dir/arch` with `secpipe run --tz UTC` and `extra` flags (the log is
/// written to `dir/in.log`).
pub fn archive_log(dir: &Path, log: &str, extra: &[&str]) -> PathBuf {
    let input = dir.join("in.log");
    std::fs::write(&input, log).expect("write log");
    archive_file(dir, &input, extra)
}

/// Archive the log file `input` into `dir/arch` with `secpipe run --tz UTC` and `extra` flags.
pub fn archive_file(dir: &Path, input: &Path, extra: &[&str]) -> PathBuf {
    let arch = dir.join("arch");
    let out = secpipe()
        .args(["run", "--tz", "UTC"])
        .args(extra)
        .arg("--archive")
        .arg(&arch)
        .arg(input)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    arch
}

/// The same, with `--block simulate --state dir/state`, so that bans are recorded.
pub fn archive_with_bans(dir: &Path, log: &str) -> PathBuf {
    let state = dir.join("state");
    let state = state.to_str().expect("a UTF-8 temporary path");
    archive_log(dir, log, &["--block", "simulate", "--state", state])
}

/// `secpipe report ARCH ARGS --json -`: exit code, the review, stderr.
pub fn review_json(arch: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = secpipe()
        .arg("report")
        .arg(arch)
        .args(args)
        .args(["--json", "-"])
        .output()
        .expect("report");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let review =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    (out.status.code().unwrap_or(-1), review, stderr)
}
