//! `--follow` across rotation and restarts, with the real binary: every line counted once.

mod live_support;

use std::io::Write;

use live_support::{Running, append_lines, copytruncate, lines_read, summary_lines, wait_for};

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
    // The follower must hold the file open before it is renamed: a file renamed away before
    // secpipe ever opened it is invisible to it (as to tail -F). On a loaded machine the start
    // can lag the test, so wait for the first lines.
    secpipe.wait_metric(&series, 2_000.0);

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
    secpipe.terminate_expecting_lines(total);
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
    copytruncate(&log, &dir.path().join("app.log.1"));
    // More than was there before, so only the fingerprint, not the size, can show the cut if
    // the follower looks after these writes.
    append_lines(&log, "after", 0, 4_000);

    secpipe.wait_metric(&series, 7_000.0);
    secpipe.terminate_expecting_lines(7_000);
}

#[test]
fn a_file_that_appears_later_is_picked_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secpipe = Running::start(dir.path(), &["--follow", "later.log"]);
    append_lines(&dir.path().join("later.log"), "late", 0, 10);
    secpipe.wait_metric(&lines_read("later.log"), 10.0);
    secpipe.terminate_expecting_lines(10);
}

/// The checkpoint saved for the one followed file: (line, offset).
fn saved_checkpoint(dir: &std::path::Path) -> (u64, u64) {
    let store = dir.join("state/checkpoints.json");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&store).expect("checkpoint")).expect("json");
    let entry = &saved[0];
    let line = entry["line"].as_u64().expect("line");
    let offset = entry["offset"].as_u64().expect("offset");
    (line, offset)
}

#[test]
fn sigterm_mid_file_then_restart_reads_every_line_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    let args = ["--follow", "--state", "state", "auth.log"];
    let (chunks, chunk_lines) = (100u64, 2_000u64);
    let total = chunks * chunk_lines;

    // The writer appends while the first run reads and is stopped, but holds its second half
    // back until the first run has exited, so that run surely stops in the middle of the file.
    let (go_on, wait_for_go) = std::sync::mpsc::channel::<()>();
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        for chunk in 0..chunks {
            if chunk == chunks / 2 {
                wait_for_go.recv().expect("go signal");
            }
            append_lines(&writer_log, "w", chunk * chunk_lines, chunk_lines);
        }
    });
    let first = Running::start(dir.path(), &args);
    wait_for("the first run to read something", || {
        (first.metric(&lines_read("auth.log")) > 0.0).then_some(())
    });
    let (status, stderr) = first.terminate();
    assert!(status.success(), "first run: {status}: {stderr}");
    let first_lines = summary_lines(&stderr);
    go_on.send(()).expect("writer is waiting");
    writer.join().expect("writer");

    // The checkpoint names exactly the lines the first run finished with, ending on a line.
    let (line, offset) = saved_checkpoint(dir.path());
    let content = std::fs::read(&log).expect("log");
    eprintln!(
        "restart after SIGTERM: first run {first_lines} lines, checkpoint line {line} at byte \
         {offset}, file {total} lines"
    );
    assert!(
        first_lines > 0 && first_lines <= total / 2,
        "the first run stopped mid-file: {first_lines} of {total}"
    );
    assert_eq!(
        line, first_lines,
        "checkpoint line vs lines the first run counted"
    );
    assert_eq!(offset, bytes_through_line(&content, line));

    let second = Running::start(dir.path(), &args);
    second.wait_metric(&lines_read("auth.log"), (total - first_lines) as f64);
    let (status, stderr) = second.terminate();
    assert!(status.success(), "second run: {status}: {stderr}");
    let second_lines = summary_lines(&stderr);
    eprintln!(
        "restart after SIGTERM: second run {second_lines} lines; {first_lines} + {second_lines} \
         = {} of {total}",
        first_lines + second_lines
    );
    assert_eq!(
        first_lines + second_lines,
        total,
        "first run {first_lines} lines, then: {stderr}"
    );
    assert_eq!(saved_checkpoint(dir.path()), (total, content.len() as u64));
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
    let (line, offset) = saved_checkpoint(dir.path());
    assert!(line > 0, "checkpoint at line {line}");
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
    let second_lines = summary_lines(&stderr);
    eprintln!(
        "restart after SIGKILL: checkpoint line {line}, second run {second_lines} lines; \
         {line} + {second_lines} = {} of 105000",
        line + second_lines
    );
    assert_eq!(second_lines, remaining, "{stderr}");
}

/// The `raw` bytes of every events row of the archive in `dir`, as text.
fn archived_lines(dir: &std::path::Path) -> Vec<String> {
    use arrow::array::AsArray;
    let mut out = Vec::new();
    let mut stack = vec![dir.join("events")];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let file = std::fs::File::open(&path).expect("open");
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .expect("parquet")
                        .build()
                        .expect("reader");
                for batch in reader {
                    let batch = batch.expect("batch");
                    let raw = batch.column_by_name("raw").expect("raw").as_binary::<i32>();
                    out.extend(
                        raw.iter()
                            .map(|r| String::from_utf8_lossy(r.unwrap_or_default()).into_owned()),
                    );
                }
            }
        }
    }
    out
}

#[test]
fn sigkill_with_an_archive_then_restart_archives_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    append_lines(&log, "a", 0, 100_000);
    // Files of 30,000 rows: when every line has been read, the last 10,000 are in an open
    // file, and the run idles long enough to save its input position.
    let args = [
        "--follow",
        "--state",
        "state",
        "--archive",
        "archive",
        "--roll-rows",
        "30000",
        "auth.log",
    ];
    let first = Running::start(dir.path(), &args);
    first.wait_metric(&lines_read("auth.log"), 100_000.0);
    std::thread::sleep(std::time::Duration::from_secs(2));
    first.kill();

    // The saved position may only name lines the archive holds durably: the rows of the file
    // the kill left unsealed are discarded on restart, so they must be read again.
    let line = if dir.path().join("state/checkpoints.json").exists() {
        saved_checkpoint(dir.path()).0
    } else {
        0
    };
    assert!(
        line <= 90_000,
        "position saved at line {line}, past the sealed rows"
    );
    append_lines(&log, "b", 0, 5_000);
    let second = Running::start(dir.path(), &args);
    second.wait_metric(&lines_read("auth.log"), (105_000 - line) as f64);
    let (status, stderr) = second.terminate();
    assert!(status.success(), "second run: {status}: {stderr}");

    let verified = secpipe_verify(&dir.path().join("archive"));
    assert!(verified.status.success(), "{verified:?}");
    let mut counts = std::collections::HashMap::new();
    for raw in archived_lines(&dir.path().join("archive")) {
        *counts.entry(raw).or_insert(0u32) += 1;
    }
    let content = String::from_utf8(std::fs::read(&log).expect("log")).expect("utf-8");
    let mut repeated = 0;
    for (i, expected) in content.lines().enumerate() {
        let seen = counts.get(expected).copied().unwrap_or(0);
        assert!(seen >= 1, "line {} was lost: {expected}", i + 1);
        // Lines up to the checkpoint were archived by the first run only; after it, a line the
        // first run had sealed is archived again by the second (at least once, not exactly once).
        if (i as u64) < line {
            assert_eq!(seen, 1, "line {} is archived {seen} times", i + 1);
        } else if seen > 1 {
            repeated += 1;
        }
    }
    eprintln!(
        "checkpoint at line {line}; 105000 lines all archived, {repeated} after the checkpoint twice"
    );
}

fn secpipe_verify(archive: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .arg("verify")
        .arg(archive)
        .output()
        .expect("run secpipe verify")
}
