//! `secpipe report` over archives an attacker (or a crash) altered after they were written:
//! what the review still reads, what it refuses to count, and that it still gives a review.

mod common;
mod report_support;
use common::*;

use std::path::{Path, PathBuf};

const MANIFESTS: &str = "audit/manifests.jsonl";

/// An archive of ten failed root logins from one address on web1 (one brute-force alert).
fn archive(dir: &Path) -> PathBuf {
    let log: String = (0..10)
        .map(|i| {
            format!(
                "2026-11-27T10:0{i}:00Z web1 sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2\n"
            )
        })
        .collect();
    report_support::archive_with_bans(dir, &log)
}

/// `secpipe report ARCH` over 2026-11-27 as JSON: exit code, review, stderr.
fn report(arch: &Path) -> (i32, serde_json::Value, String) {
    report_support::review_json(
        arch,
        &[
            "--from",
            "2026-11-27T00:00:00Z",
            "--to",
            "2026-11-28T00:00:00Z",
        ],
    )
}

fn manifest_lines(arch: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(arch.join(MANIFESTS))
        .expect("manifests")
        .lines()
        .map(|l| serde_json::from_str(l).expect("manifest line"))
        .collect()
}

/// A crash during an append leaves a torn last manifest line: verify says the archive is
/// intact (the torn line is not part of the chain), so the review must read it as verify does.
/// Before the fix the review refused the whole archive (exit 2, no review) on the torn line.
#[test]
fn a_torn_last_manifest_line_still_gives_the_review() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path());
    let mut manifests = std::fs::OpenOptions::new()
        .append(true)
        .open(arch.join(MANIFESTS))
        .expect("open manifests");
    std::io::Write::write_all(&mut manifests, br#"{"v":1,"archive":"3d14a0"#).expect("tear");
    let (code, r, stderr) = report(&arch);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(r["archive"]["verdict"], "intact");
    assert_eq!(r["counts"]["lines"]["now"], 10);
    assert_eq!(r["alerts"]["total"]["now"], 1);
}

/// An attacker copies the alerts file under a new name and appends a manifest line for it
/// (right hash, rows continuing the seq, but a `prev` that cannot link: they cannot recompute
/// the chain past a head anchored elsewhere). Verify names only the manifests for the broken
/// link; the file that line names is still the attacker's, and its alert must not be
/// counted. Before the fix the review counted 2 alerts.
#[test]
fn a_file_named_by_a_forged_manifest_line_is_not_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path());
    let lines = manifest_lines(&arch);
    let original = lines
        .iter()
        .find(|m| m["table"] == "alerts")
        .expect("an alerts manifest line")
        .clone();
    let path = original["path"].as_str().expect("path");
    let forged_path = path.replace(".parquet", "-copy.parquet");
    std::fs::copy(arch.join(path), arch.join(&forged_path)).expect("copy");
    let mut forged = original.clone();
    forged["path"] = forged_path.clone().into();
    forged["file_seq"] = 99.into();
    forged["rows"]["first_seq"] = original["rows"]["count"].clone();
    forged["prev"] = "ab".repeat(32).into();
    let mut text = std::fs::read_to_string(arch.join(MANIFESTS)).expect("manifests");
    text += &format!("{forged}\n");
    std::fs::write(arch.join(MANIFESTS), text).expect("write manifests");

    let (code, r, stderr) = report(&arch);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(r["archive"]["verdict"], "tampered");
    assert_eq!(r["alerts"]["total"]["now"], 1, "{}", r["alerts"]);
    let warnings = r["archive"]["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("not read") && w.ends_with(&forged_path))),
        "{warnings:?}"
    );
}

/// A manifest line edited into garbage: verify says tampered (the line does not parse); the
/// review must still be written, in red, from the lines before the break. Before the fix
/// the review failed as a whole (exit 2: the line does not parse), so a tampered archive gave
/// no review at all.
#[test]
fn a_manifest_line_edited_into_garbage_still_gives_a_review_that_says_tampered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path());
    let text = std::fs::read_to_string(arch.join(MANIFESTS)).expect("manifests");
    let mut lines: Vec<&str> = text.lines().collect();
    let alerts_line = lines
        .iter()
        .position(|l| l.contains(r#""table":"alerts""#))
        .expect("an alerts line");
    lines[alerts_line] = "garbage";
    std::fs::write(arch.join(MANIFESTS), lines.join("\n") + "\n").expect("write");
    let (code, r, stderr) = report(&arch);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(r["archive"]["verdict"], "tampered");
    let problems = r["archive"]["problems"].to_string();
    assert!(problems.contains("does not parse"), "{problems}");
}

/// An application logs `count` as it likes: three reads of i64::MAX records by one actor
/// overflowed the actor's record sum (a panic in a debug build, a wrapped, small number in a
/// release one). The sum saturates: "at least this many".
#[test]
fn huge_record_counts_saturate_instead_of_overflowing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: String = (1..=3)
        .map(|i| {
            format!(
                "{{\"ts\":\"2026-11-27T10:0{i}:00.000000Z\",\"event\":\"data_access\",\"operation\":\"read\",\"actor\":\"svc\",\"count\":{},\"ip\":\"203.0.113.9\",\"host\":\"db1\"}}\n",
                i64::MAX
            )
        })
        .collect();
    let arch = report_support::archive_log(dir.path(), &log, &[]);
    let (code, r, stderr) = report(&arch);
    assert_eq!(code, 0, "{stderr}");
    let actor = &r["actors"]["rows"][0];
    assert_eq!(actor["actor"], "svc");
    assert_eq!(actor["events"], 3);
    assert_eq!(actor["records"], u64::MAX, "{actor}");
}

/// A manifest line edited to name `events/../../../etc/passwd`: verify says tampered (and
/// the review does not open the path; this test does not show that), and without --from/--to the review is still written (placed by the
/// manifests' times) and says tampered. Before, with no events file left to read, the review
/// failed as a whole ("the archive holds no events to place a period by", exit 2), so the
/// tampering was never reported.
#[test]
fn a_manifest_naming_a_path_outside_the_archive_still_gives_a_review_that_says_tampered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path());
    let text = std::fs::read_to_string(arch.join(MANIFESTS)).expect("manifests");
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    let events_line = lines
        .iter()
        .position(|m| m["table"] == "events")
        .expect("an events line");
    lines[events_line]["path"] = "events/../../../etc/passwd".into();
    let text: String = lines.iter().map(|m| format!("{m}\n")).collect();
    std::fs::write(arch.join(MANIFESTS), text).expect("write");
    let out = secpipe()
        .arg("report")
        .arg(&arch)
        .args(["--json", "-"])
        .output()
        .expect("report");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("review");
    assert_eq!(r["archive"]["verdict"], "tampered");
    assert_eq!(r["period"]["to"], "2026-11-27T11:00:00Z");
    assert_eq!(r["counts"]["lines"]["now"], 0, "nothing of it is read");
}

/// 150 sealed files, one row each (`--roll-rows 1`).
fn archive_of_150_files(dir: &Path) -> PathBuf {
    let log: String = (0..150)
        .map(|i| {
            format!(
                "2026-11-27T10:{:02}:{:02}Z web1 sshd[1]: Connection closed by 192.0.2.{} port 22\n",
                i / 60,
                i % 60,
                i % 250
            )
        })
        .collect();
    report_support::archive_log(dir, &log, &["--roll-rows", "1"])
}

/// Every events file altered: verify finds 150 problems; the review lists the first hundred
/// and counts the rest, as a page must.
#[test]
fn a_thousand_altered_files_do_not_make_a_thousand_line_banner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive_of_150_files(dir.path());
    let day = arch.join("events/date=2026-11-27");
    let mut altered = 0;
    for part in std::fs::read_dir(&day).expect("day").flatten() {
        let mut bytes = std::fs::read(part.path()).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(part.path(), bytes).expect("write");
        altered += 1;
    }
    assert_eq!(altered, 150);
    let (code, r, stderr) = report(&arch);
    assert_eq!(code, 1, "{stderr}");
    let problems = r["archive"]["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 101, "{problems:?}");
    assert!(
        problems[100]
            .as_str()
            .is_some_and(|p| p.starts_with("and 50 more problems")),
        "{:?}",
        problems[100]
    );
}

/// A break near the start of a long chain leaves every later file unread: the review names
/// the first hundred and counts the rest, so the page stays a page however long the archive.
#[test]
fn files_left_unread_by_an_early_break_are_named_up_to_a_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive_of_150_files(dir.path());
    let text = std::fs::read_to_string(arch.join(MANIFESTS)).expect("manifests");
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 150, "{} manifest lines", lines.len());
    lines[2] = "garbage";
    std::fs::write(arch.join(MANIFESTS), lines.join("\n") + "\n").expect("write");
    let (code, r, stderr) = report(&arch);
    assert_eq!(code, 1, "{stderr}");
    let warnings = r["archive"]["warnings"].as_array().expect("warnings");
    let named = warnings
        .iter()
        .filter(|w| w.as_str().is_some_and(|w| w.starts_with("not read")))
        .count();
    assert_eq!(named, 100, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.starts_with("and ") && w.ends_with("more files not read"))),
        "{warnings:?}"
    );
}
