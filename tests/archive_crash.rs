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

/// Batches of 100 rows the child appends at most: far more than the parent waits for (3 files
/// of 500 rows), and still a loop that ends by itself if no parent ever kills it.
const CHILD_BATCHES: u64 = 200_000;

/// How often the parent looks for the sealed files before giving up: a bound by count, so the
/// test ends even if the child never seals anything.
const PARENT_POLLS: u32 = 6_000;

/// The child side: appends events until killed (only when started by the parent test).
#[test]
#[ignore = "helper process for sigkill_mid_write_leaves_a_verifiable_archive"]
fn crash_child_appends_forever() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        eprintln!("a helper of sigkill_mid_write_leaves_a_verifiable_archive: nothing to do alone");
        return;
    };
    let mut archive = Archive::open(options(Path::new(&dir), 500)).unwrap();
    for batch in 0..CHILD_BATCHES {
        let next = batch * 100;
        archive
            .append_events(&events(next, 100, DAY0 + next as i64 * 1_000))
            .unwrap();
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
    // Wait until a few files are sealed, then kill it mid-stream.
    let mut polls = 0;
    while data_lines(dir.path()).len() < 3 {
        polls += 1;
        if polls > PARENT_POLLS || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the child sealed fewer than 3 files after {polls} looks, or stopped on its own"
            );
        }
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
