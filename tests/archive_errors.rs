//! When the archive cannot be written (issue 10.12): the run reports the first cause with the
//! path, alerts once with `secpipe.archive_failed`, and stops with exit 2 (the policy is in
//! `src/archive/mod.rs`, "When writing fails").

mod common;
mod live_support;
use common::*;

use std::path::Path;
use std::process::Command;

/// Lines that compress badly (pseudo-random hex), so a small disk fills with few of them.
fn incompressible_lines(count: u64) -> String {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut text = String::new();
    for i in 0..count {
        let mut noise = String::new();
        for _ in 0..6 {
            // xorshift64: deterministic noise, no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.push_str(&format!("{state:016x}"));
        }
        text.push_str(&format!("Nov 23 10:00:00 host app[{i}]: payload {noise}\n"));
    }
    text
}

/// Check what a failed archive run printed: exit 2, the cause with a path under `archive`,
/// one `secpipe.archive_failed` alert on stdout.
fn assert_failed_with_cause(out: &std::process::Output, archive: &Path, cause: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // The error report wraps long lines (anywhere, for a long path) behind a `│` gutter:
    // compare with every space and gutter taken out.
    let squeezed = |text: &str| -> String {
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect()
    };
    let error = squeezed(&stderr);
    let archive_error = error
        .find("×archive:")
        .map(|at| &error[at..])
        .unwrap_or_else(|| panic!("no archive error:\n{stderr}"));
    assert!(
        archive_error.contains(&squeezed(cause)),
        "the error names the cause {cause:?}: {stderr}"
    );
    assert!(
        archive_error.contains(&squeezed(&archive.display().to_string())),
        "the error names the path {}: {stderr}",
        archive.display()
    );
    assert!(
        !stderr.contains("the archive writer has stopped"),
        "the symptom instead of the cause: {stderr}"
    );
    let alerts = json_lines(&out.stdout);
    let failed: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "secpipe.archive_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{alerts:?}");
    assert_eq!(failed[0]["severity"], "CRITICAL");
    assert!(
        failed[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains(cause)),
        "{:?}",
        failed[0]
    );
}

#[test]
fn an_archive_directory_that_cannot_be_made_is_reported_with_its_path_and_alerted() {
    // Works without privileges (a read-only directory would not stop root): where the date
    // directory of the input's events must go, there is a file.
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(archive.join("events")).expect("archive dir");
    let date_dir = archive.join("events").join("date=2026-11-23");
    std::fs::write(&date_dir, "not a directory").expect("plant a file");
    let input = dir.path().join("in.log");
    std::fs::write(&input, incompressible_lines(100)).expect("input");
    let out = secpipe()
        .args(["--year", "2026", "--archive"])
        .arg(&archive)
        .arg(&input)
        .output()
        .expect("run");
    assert_failed_with_cause(&out, &date_dir, "File exists");
}

/// A tmpfs of `size` mounted at `at`, unmounted when dropped; `None` where mounting is not
/// permitted (not root, or no CAP_SYS_ADMIN).
struct SmallDisk {
    at: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?
            .success();
        ok.then(|| SmallDisk {
            at: at.to_path_buf(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

#[test]
fn a_full_archive_disk_names_enospc_and_the_file_and_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk"), "256k") else {
        eprintln!(
            "skipped: cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN); the \
             unwritable-directory test covers the reporting without it"
        );
        return;
    };
    let archive = disk.at.join("archive");
    let input = dir.path().join("in.log");
    // About 2 MiB of archive once compressed: eight times the disk.
    std::fs::write(&input, incompressible_lines(20_000)).expect("input");
    let out = secpipe()
        .args(["--year", "2026", "--roll-rows", "2000", "--archive"])
        .arg(&archive)
        .arg(&input)
        .output()
        .expect("run");
    assert_failed_with_cause(&out, &archive, "No space left on device");
    drop(disk);
}

/// The attack on acknowledgements: a followed file whose archive cannot seal its rows (the disk
/// is too small for the file being written). The stop then fails with exit 2, and the position
/// `--state` saves names no line past the rows the archive holds durably (sealed and in the
/// manifests): a restart must read the lost rows again, not resume after them.
#[test]
fn a_full_archive_disk_under_follow_saves_no_position_past_the_durable_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk"), "256k") else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)");
        return;
    };
    let archive = disk.at.join("archive");
    std::fs::write(dir.path().join("in.log"), incompressible_lines(20_000)).expect("input");
    // One file for every row (and one row group, kept in memory until the file is sealed):
    // nothing is durable until the stop, when sealing meets the full disk.
    let archive_arg = archive.to_str().expect("UTF-8 path");
    let args = [
        "--year",
        "2026",
        "--follow",
        "--state",
        "state",
        "--roll-rows",
        "100000",
        "--roll-secs",
        "3600",
        "--archive",
        archive_arg,
        "in.log",
    ];
    let secpipe = live_support::Running::start(dir.path(), &args);
    secpipe.wait_metric(&live_support::lines_read("in.log"), 20_000.0);
    let (status, stderr) = secpipe.terminate();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let manifests =
        std::fs::read_to_string(archive.join("audit/manifests.jsonl")).unwrap_or_default();
    let durable_rows: u64 = manifests
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["path"].as_str().is_some_and(|p| p.starts_with("events/")))
        .filter_map(|m| m["rows"]["count"].as_u64())
        .sum();
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("state/checkpoints.json")).expect("state saved"),
    )
    .expect("json");
    let line = saved[0]["line"].as_u64().unwrap_or(0);
    assert!(
        line <= durable_rows,
        "position saved at line {line}, past the {durable_rows} durable rows: {saved}"
    );
    drop(disk);
}
