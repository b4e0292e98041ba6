//! A real crash: a child process appends to an archive until it is killed with SIGKILL; the
//! archive then verifies (the unsealed tail is a warning) and the next run extends the chain.

mod archive_support;

use std::path::Path;
use std::process::{Command, Stdio};

use archive_support::*;
use secpipe::archive::Archive;
use secpipe::archive::manifest::{Manifest, split_lines};
use secpipe::archive::verify::{VerifyOptions, verify};

const CHILD_ENV: &str = "SECPIPE_ARCHIVE_CRASH_DIR";

/// The child side: appends events forever (only when started by the parent test).
#[test]
#[ignore = "helper process for sigkill_mid_write_leaves_a_verifiable_archive"]
fn crash_child_appends_forever() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut archive = Archive::open(options(Path::new(&dir), 500)).unwrap();
    let mut next = 0;
    loop {
        archive
            .append_events(&events(next, 100, DAY0 + next as i64 * 1_000))
            .unwrap();
        next += 100;
    }
}

fn data_lines(dir: &Path) -> Vec<Manifest> {
    let bytes = std::fs::read(dir.join("audit/manifests.jsonl")).unwrap_or_default();
    let (lines, _) = split_lines(&bytes);
    lines
        .iter()
        .filter_map(|l| Manifest::parse(l).ok())
        .filter(|m| m.kind == "data")
        .collect()
}

#[cfg(unix)]
#[test]
fn sigkill_mid_write_leaves_a_verifiable_archive() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child_appends_forever",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (without a deadline) until a few files are sealed, then kill it mid-stream.
    while data_lines(dir.path()).len() < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child stopped on its own"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");

    let sealed = data_lines(dir.path());
    let end = sealed
        .iter()
        .map(|m| m.rows.as_ref().map_or(0, |r| r.first_seq + r.count))
        .max()
        .unwrap();
    let mut archive = Archive::open(options(dir.path(), 500)).unwrap();
    assert_eq!(archive.next_seq(), end);
    archive.append_events(&events(end, 10, DAY0)).unwrap();
    archive.close().unwrap();

    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");
    assert!(report.warnings.is_empty(), "{report}");
    assert_eq!(report.rows, end + 10);
    let after = data_lines(dir.path());
    assert_eq!(after.len(), sealed.len() + 1);
    assert_eq!(after.last().unwrap().file_seq, Some(sealed.len() as u64));
}
