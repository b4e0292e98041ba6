//! The archive store's promises, attacked through the built binary (issue 12, part 6): a
//! manifest cannot make verify or replay read a file outside the archive, and publishing a
//! sealed file never replaces a file already under its name.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use secpipe::archive::manifest::{Checkpoint, Manifest, line_hash, split_lines};

/// `count` failed logins from `ip` on 2026-11-`day`, one a second from 10:00:00.
fn failures(day: u32, ip: &str, count: u32) -> String {
    (0..count)
        .map(|i| {
            format!(
                "Nov {day} 10:00:{i:02} host sshd[{}]: Failed password for root from {ip} port \
                 22 ssh2\n",
                100 + i
            )
        })
        .collect()
}

/// `secpipe --archive ARCHIVE LOG` (the fixtures' zone and year).
fn archive_run(archive: &Path, log: &Path) -> std::process::Output {
    secpipe()
        .args(["--tz", "UTC", "--year", "2026", "--archive"])
        .arg(archive)
        .arg(log)
        .output()
        .expect("run secpipe --archive")
}

/// The manifests' data lines as (path, file_seq).
fn sealed_files(archive: &Path) -> Vec<(String, u64)> {
    let bytes = std::fs::read(archive.join("audit/manifests.jsonl")).expect("manifests");
    let (lines, _) = split_lines(&bytes);
    lines
        .iter()
        .filter_map(|line| {
            let m = Manifest::parse(line).expect("manifest line");
            Some((m.path?, m.file_seq?))
        })
        .collect()
}

/// What someone with write access but no key can do: set the `path` of the data line sealing
/// `victim` to `crafted`, link every later line again and rewrite the (unsigned) checkpoint,
/// so that the chain and the checkpoint are consistent and only the name gives it away.
fn rename_in_manifests(archive: &Path, victim: &str, crafted: &str) {
    let path = archive.join("audit/manifests.jsonl");
    let bytes = std::fs::read(&path).expect("manifests");
    let (lines, _) = split_lines(&bytes);
    let mut out = String::new();
    let mut prev: Option<String> = None;
    let mut archive_id = String::new();
    for line in &lines {
        let mut m = Manifest::parse(line).expect("manifest line");
        if m.path.as_deref() == Some(victim) {
            m.path = Some(crafted.to_owned());
        }
        if let Some(prev) = prev {
            m.prev = prev;
        }
        let text = m.to_line();
        prev = Some(line_hash(text.as_bytes()));
        archive_id = m.archive.clone();
        out.push_str(&text);
        out.push('\n');
    }
    std::fs::write(&path, out).expect("write manifests");
    let checkpoint = Checkpoint {
        archive: archive_id,
        count: lines.len() as u64,
        head: prev.expect("a line"),
        signature: None,
    };
    std::fs::write(archive.join("audit/checkpoint"), checkpoint.to_text()).expect("checkpoint");
}

/// `secpipe verify ARCHIVE`: its exit code and report.
fn verify(archive: &Path) -> (Option<i32>, String) {
    let out = secpipe()
        .arg("verify")
        .arg(archive)
        .output()
        .expect("verify");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn alert_keys(stdout: &[u8]) -> Vec<String> {
    json_lines(stdout)
        .iter()
        .map(|a| a["key"]["value"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_manifest_naming_a_file_outside_the_archive_is_refused_by_verify_and_never_read_by_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    // Two dates, so two events files: one stays, one is moved out of the archive.
    let text = failures(22, "203.0.113.7", 10) + &failures(23, "198.51.100.9", 10);
    std::fs::write(&log, text).expect("log");
    let clean = dir.path().join("clean");
    let live = archive_run(&clean, &log);
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    let live_keys = alert_keys(&live.stdout);
    assert!(
        live_keys.contains(&"198.51.100.9".to_owned()),
        "{live_keys:?}"
    );
    let victim = sealed_files(&clean)
        .into_iter()
        .map(|(path, _)| path)
        .find(|p| p.starts_with("events/date=2026-11-23/"))
        .expect("the second date's events file");

    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside dir");
    let outside_file = outside.join("part.parquet");
    let absolute = outside_file.display().to_string();
    // A relative climb and an absolute path: both leave the archive.
    for (case, crafted) in [
        ("climb", "events/../../outside/part.parquet"),
        ("absolute", absolute.as_str()),
    ] {
        let archive = dir.path().join(case);
        copy_dir(&clean, &archive);
        std::fs::rename(archive.join(&victim), &outside_file).expect("move the file out");
        rename_in_manifests(&archive, &victim, crafted);

        let (code, report) = verify(&archive);
        assert_eq!(code, Some(1), "{case}: {report}");
        assert!(
            report.contains(&format!("TAMPERED  broken_link in {crafted}"))
                && report.contains("names a path outside the archive"),
            "{case}: {report}"
        );

        let replay = secpipe()
            .args(["replay", "--tz", "UTC"])
            .arg(&archive)
            .output()
            .expect("replay");
        assert_eq!(replay.status.code(), Some(1), "{case}");
        assert!(
            replay.stdout.is_empty(),
            "{case}: alerts from a tampered archive"
        );

        // --force replays what it can and marks it; the file outside is never read, so its
        // attacker's alert does not appear at all, and the refusal is on stderr.
        let forced = secpipe()
            .args(["replay", "--tz", "UTC", "--force"])
            .arg(&archive)
            .output()
            .expect("replay --force");
        let stderr = String::from_utf8_lossy(&forced.stderr);
        assert_eq!(forced.status.code(), Some(1), "{case}: {stderr}");
        let keys = alert_keys(&forced.stdout);
        assert!(
            keys.contains(&"203.0.113.7".to_owned()),
            "{case}: {keys:?} {stderr}"
        );
        assert!(
            !keys.contains(&"198.51.100.9".to_owned()),
            "{case}: rows were read from {absolute}: {keys:?}"
        );
        // (An absolute name does not start with `events/`, so replay never took it for an
        // events file; the climb does, and reading it is refused.)
        assert!(
            case == "absolute" || stderr.contains("is not a name inside the archive"),
            "{case}: {stderr}"
        );
        std::fs::remove_file(&outside_file).expect("tidy");
    }
}

#[test]
fn a_file_planted_under_the_next_part_name_is_never_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("archive");
    let first = dir.path().join("first.log");
    std::fs::write(&first, failures(22, "203.0.113.7", 2)).expect("log");
    let out = archive_run(&archive, &first);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The run closed cleanly, so the next sealed file is `part-<next file_seq>` of the date
    // of the next run's events: plant a file there. Verify sees it for what it is.
    let next = sealed_files(&archive)
        .iter()
        .map(|(_, seq)| seq + 1)
        .max()
        .expect("a sealed file");
    let planted_name = format!("events/date=2026-11-22/part-{next:08}.parquet");
    let planted: PathBuf = archive.join(&planted_name);
    let planted_bytes = b"planted by someone else";
    std::fs::write(&planted, planted_bytes).expect("plant");
    let (code, report) = verify(&archive);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains(&format!("TAMPERED  extra_file in {planted_name}")),
        "{report}"
    );

    // The next run must not seal its file over it (a rename would, and verify would then find
    // nothing amiss): like any archive failure (src/archive/mod.rs, "When writing fails") it
    // stops with exit 2 and names the cause, and the planted file is untouched.
    let second = dir.path().join("second.log");
    std::fs::write(&second, failures(22, "198.51.100.9", 2)).expect("log");
    let out = archive_run(&archive, &second);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // The error report wraps long lines behind a `│` gutter: compare without it.
    let squeezed: String = stderr
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(
        squeezed.contains(&format!("{planted_name}:alreadyexists")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&planted).expect("planted file"),
        planted_bytes
    );

    // That run did not close cleanly, so a restart takes the file for a crash leftover: it
    // moves it (bytes intact) to audit/discarded/, names it in its `resume` line, and goes on.
    let out = archive_run(&archive, &second);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = std::fs::read_dir(archive.join("audit/discarded"))
        .expect("discarded dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.to_string_lossy()
                .ends_with(&planted_name.replace('/', "_"))
        })
        .expect("the planted file, moved aside");
    assert_eq!(std::fs::read(kept).expect("kept"), planted_bytes);
    let bytes = std::fs::read(archive.join("audit/manifests.jsonl")).expect("manifests");
    let (lines, _) = split_lines(&bytes);
    let resumes: Vec<Manifest> = lines
        .iter()
        .map(|line| Manifest::parse(line).expect("manifest line"))
        .filter(|m| m.kind == "resume")
        .collect();
    let last_resume = resumes.last().expect("a resume line");
    assert!(
        last_resume.discarded.contains(&planted_name),
        "{:?}",
        last_resume.discarded
    );
    let (code, report) = verify(&archive);
    assert_eq!(code, Some(0), "{report}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
