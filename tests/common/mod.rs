//! Helpers shared by the integration tests: run the built binary, read its JSON lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// `secpipe` with a fixed zone and year, so fixtures mean the same on every machine.
pub fn secpipe() -> Command {
    let mut cmd = Command::cargo_bin("secpipe").expect("secpipe binary");
    cmd.env("TZ", "UTC");
    cmd
}

pub fn run_ok(args: &[&str]) -> Output {
    let out = secpipe().args(args).output().expect("run secpipe");
    assert!(
        out.status.success(),
        "secpipe {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn run_stdin(args: &[&str], stdin: Vec<u8>) -> Output {
    secpipe()
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("run secpipe")
}

/// Parse JSON lines.
pub fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Alerts from running `secpipe run` over files, with the fixtures' zone and year.
pub fn alerts_for(files: &[&Path]) -> Vec<serde_json::Value> {
    alerts_with(&[], files)
}

/// Alerts from `secpipe run EXTRA... FILES...`, with the fixtures' zone and year.
pub fn alerts_with(extra: &[&str], files: &[&Path]) -> Vec<serde_json::Value> {
    let mut args: Vec<String> = vec!["--tz".into(), "UTC".into(), "--year".into(), "2026".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json_lines(&run_ok(&args).stdout)
}

pub fn rules_of(alerts: &[serde_json::Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a["rule"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The public sample logs (Loghub) the corpus tests read: `$SECPIPE_CORPUS` when set, else
/// `../shared/corpus` beside the checkout (or beside the folder of worktrees holding it).
///
/// A user who clones the project has no corpus: the test says so on stderr and checks nothing
/// more. Where the corpus must be there (`SECPIPE_REQUIRE_CORPUS=1`, which `tests/run-all.sh`
/// sets under `CI=true`), a missing file fails the test instead of letting it pass unchecked.
pub fn corpus_file(name: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("SECPIPE_CORPUS") {
        Some(dir) => vec![PathBuf::from(dir).join("loghub").join(name)],
        None => root()
            .ancestors()
            .skip(1)
            .take(2)
            .map(|d| d.join("shared/corpus/loghub").join(name))
            .collect(),
    };
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    assert!(
        !corpus_required(),
        "corpus file {name} is required here (SECPIPE_REQUIRE_CORPUS=1) but is in none of \
         {candidates:?}"
    );
    eprintln!("corpus file {name} not found in {candidates:?}: check skipped");
    None
}

/// Whether a missing corpus fails the tests (`SECPIPE_REQUIRE_CORPUS=1`) instead of skipping.
pub fn corpus_required() -> bool {
    std::env::var("SECPIPE_REQUIRE_CORPUS").is_ok_and(|v| v == "1")
}

/// Peak RSS in KiB of the child `pid`, reaped here (`wait4` gives that one child's usage).
pub fn wait_peak_rss_kib(child: std::process::Child) -> (i32, i64) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: plain FFI with pointers to locals; `rusage` is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    std::mem::forget(child); // reaped above
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}
