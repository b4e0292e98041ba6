//! `--follow` across rotation and restarts, with the real binary: every line counted once.

mod live_support;

use std::io::Write;

use live_support::{Running, append_lines, lines_read, summary_lines, wait_for};

/// The lines of `text` up to and including line `n`, in bytes.
fn bytes_through_line(text: &[u8], n: u64) -> u64 {
    let mut seen = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return i as u64 + 1;
            }
        }
    }
    panic!("file has fewer than {n} lines");
}

#[test]
fn rename_rotation_mid_stream_drains_the_old_file_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    append_lines(&log, "old", 0, 2_000);
    let secpipe = Running::start(dir.path(), &["--follow", "auth.log"]);
    let series = lines_read("auth.log");

    // The writer goes on while secpipe reads, then rotates like logrotate without
    // copytruncate: rename, keep writing to the renamed file until "reopen", then a new file.
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("writer");
    for i in 0..20u64 {
        writeln!(writer, "old tail {i}").expect("write");
    }
    std::fs::rename(&log, dir.path().join("auth.log.1")).expect("rotate");
    for i in 0..500u64 {
        writeln!(writer, "written after the rename {i}").expect("write");
    }
    drop(writer);
    append_lines(&log, "new", 0, 1_500);

    let total = 2_000 + 20 + 500 + 1_500;
    secpipe.wait_metric(&series, total as f64);
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "exit status {status}: {stderr}");
    assert_eq!(summary_lines(&stderr), total, "{stderr}");
}

#[test]
fn copytruncate_mid_stream_reads_the_file_again_from_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    append_lines(&log, "before", 0, 3_000);
    let secpipe = Running::start(dir.path(), &["--follow", "app.log"]);
    let series = lines_read("app.log");
    // copytruncate loses what the follower had not read when the file is cut (tail -F does
    // too), so rotate once it has read everything, as logrotate's timing usually allows.
    secpipe.wait_metric(&series, 3_000.0);
    std::fs::copy(&log, dir.path().join("app.log.1")).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    // More than was there before, so only the fingerprint, not the size, can show the cut if
    // the follower looks after these writes.
    append_lines(&log, "after", 0, 4_000);

    secpipe.wait_metric(&series, 7_000.0);
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "exit status {status}: {stderr}");
    assert_eq!(summary_lines(&stderr), 7_000, "{stderr}");
}

#[test]
fn a_file_that_appears_later_is_picked_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secpipe = Running::start(dir.path(), &["--follow", "later.log"]);
    append_lines(&dir.path().join("later.log"), "late", 0, 10);
    secpipe.wait_metric(&lines_read("later.log"), 10.0);
    let (status, stderr) = secpipe.terminate();
    assert!(status.success(), "exit status {status}: {stderr}");
    assert_eq!(summary_lines(&stderr), 10, "{stderr}");
}

#[test]
fn sigterm_mid_file_then_restart_reads_every_line_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    let args = ["--follow", "--state", "state", "auth.log"];
    let total = 200_000u64;

    // The writer keeps appending while the first run reads and is stopped.
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        for chunk in 0..100 {
            append_lines(&writer_log, "w", chunk * 2_000, 2_000);
        }
    });
    let first = Running::start(dir.path(), &args);
    wait_for("the first run to read something", || {
        (first.metric(&lines_read("auth.log")) > 0.0).then_some(())
    });
    let (status, stderr) = first.terminate();
    assert!(status.success(), "first run: {status}: {stderr}");
    let first_lines = summary_lines(&stderr);
    writer.join().expect("writer");

    let second = Running::start(dir.path(), &args);
    second.wait_metric(&lines_read("auth.log"), (total - first_lines) as f64);
    let (status, stderr) = second.terminate();
    assert!(status.success(), "second run: {status}: {stderr}");
    assert_eq!(
        first_lines + summary_lines(&stderr),
        total,
        "first run {first_lines} lines, then: {stderr}"
    );
}

#[test]
fn sigkill_mid_file_then_restart_resumes_at_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    append_lines(&log, "a", 0, 100_000);
    let args = ["--follow", "--state", "state", "auth.log"];
    let first = Running::start(dir.path(), &args);
    let store = dir.path().join("state/checkpoints.json");
    wait_for("a checkpoint to be saved", || {
        std::fs::read(&store).ok().filter(|b| !b.is_empty())
    });
    first.kill();

    // No line may be lost: the checkpoint names a line boundary the first run finished with,
    // and the restart must start exactly there.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&store).expect("checkpoint")).expect("json");
    let entry = &saved[0];
    let line = entry["line"].as_u64().expect("line");
    let offset = entry["offset"].as_u64().expect("offset");
    assert!(line > 0, "{saved}");
    let content = std::fs::read(&log).expect("log");
    assert_eq!(
        offset,
        bytes_through_line(&content, line),
        "the checkpoint offset is the end of its line"
    );

    append_lines(&log, "b", 0, 5_000);
    let remaining = 105_000 - line;
    let second = Running::start(dir.path(), &args);
    second.wait_metric(&lines_read("auth.log"), remaining as f64);
    let (status, stderr) = second.terminate();
    assert!(status.success(), "second run: {status}: {stderr}");
    assert_eq!(summary_lines(&stderr), remaining, "{stderr}");
}
