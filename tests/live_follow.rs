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
    // The archive records the order in which lines reached the pipeline (`seq`), so it shows
    // whether the rotated file was read to its end before the new one was started.
    let secpipe = Running::start(
        dir.path(),
        &["--follow", "--archive", "archive", "auth.log"],
    );
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

    // Every line of the rotated file, in its order, then every line of the new one: nothing
    // of the old file after the first new line, nothing twice, nothing lost.
    assert_archived_in_order(
        &dir.path().join("archive"),
        &[&dir.path().join("auth.log.1"), &log],
    );
}

/// The archive holds every line of `files`, each file from its line 1, in that order: nothing
/// twice, nothing lost, nothing of one file after the first line of the next.
fn assert_archived_in_order(archive: &std::path::Path, files: &[&std::path::Path]) {
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("followed file"))
        .collect();
    let expected: Vec<(u64, &str)> = texts
        .iter()
        .flat_map(|text| text.lines().enumerate())
        .map(|(i, l)| (i as u64 + 1, l))
        .collect();
    let archived = archived_rows(archive);
    let got: Vec<(u64, &str)> = archived
        .iter()
        .map(|(_, line, raw)| (*line, raw.as_str()))
        .collect();
    assert_eq!(got.len(), expected.len());
    if let Some(i) = (0..got.len()).find(|&i| got[i] != expected[i]) {
        panic!(
            "row {i}: archived {:?}, expected {:?} (line number, text)",
            got[i], expected[i]
        );
    }
}

#[test]
fn copytruncate_mid_stream_reads_the_file_again_from_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    append_lines(&log, "before", 0, 3_000);
    let secpipe = Running::start(dir.path(), &["--follow", "--archive", "archive", "app.log"]);
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

    // The lines before the cut, then the new file from its first line: read again from the
    // start, not from the old offset (which would skip the first 3,000 new lines' worth).
    assert_archived_in_order(
        &dir.path().join("archive"),
        &[&dir.path().join("app.log.1"), &log],
    );
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

/// Every events row of the archive in `dir` as (seq, line, raw text), in `seq` order: the
/// order in which the rows reached the pipeline.
fn archived_rows(dir: &std::path::Path) -> Vec<(u64, u64, String)> {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
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
                    let column = |name: &str| batch.column_by_name(name).expect(name).clone();
                    let (seq, line, raw) = (column("seq"), column("line"), column("raw"));
                    let (seq, line) = (
                        seq.as_primitive::<Int64Type>(),
                        line.as_primitive::<Int64Type>(),
                    );
                    let raw = raw.as_binary::<i32>();
                    for i in 0..batch.num_rows() {
                        out.push((
                            seq.value(i) as u64,
                            line.value(i) as u64,
                            String::from_utf8_lossy(raw.value(i)).into_owned(),
                        ));
                    }
                }
            }
        }
    }
    out.sort_by_key(|(seq, _, _)| *seq);
    out
}

/// The `raw` bytes of every events row of the archive in `dir`, as text.
fn archived_lines(dir: &std::path::Path) -> Vec<String> {
    archived_rows(dir)
        .into_iter()
        .map(|(_, _, raw)| raw)
        .collect()
}

#[test]
fn sigkill_with_an_archive_then_restart_archives_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    append_lines(&log, "a", 0, 100_000);
    // Files of 30,000 rows, and no sealing by age: once every line has been read, rows 1 to
    // 90,000 are in three sealed files and the last 10,000 in an open one, and that stays so
    // until the kill, however slow the machine.
    let args = [
        "--follow",
        "--state",
        "state",
        "--archive",
        "archive",
        "--roll-rows",
        "30000",
        "--roll-secs",
        "3600",
        "auth.log",
    ];
    let first = Running::start(dir.path(), &args);
    first.wait_metric(&lines_read("auth.log"), 100_000.0);
    // The saved position may only name lines the archive holds durably, and it moves a whole
    // batch at a time: once the third file is sealed it is the end of the last batch inside
    // rows 1 to 90,000, past 60,000. Wait for that, then kill. (A fixed sleep could kill
    // before any position was saved, and leave nothing below to check.)
    let store = dir.path().join("state/checkpoints.json");
    wait_for("the input position to pass the second sealed file", || {
        std::fs::read(&store)
            .ok()
            .filter(|b| !b.is_empty())
            .and_then(|_| (saved_checkpoint(dir.path()).0 > 60_000).then_some(()))
    });
    first.kill();

    let line = saved_checkpoint(dir.path()).0;
    assert!(
        (60_001..=90_000).contains(&line),
        "position saved at line {line}, outside the third sealed file"
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
    assert_eq!(content.lines().count(), 105_000);
    // Lines before the saved position: archived by the first run only. From there to the end
    // of its sealed rows (90,000): archived by both runs, since the restart reads from the
    // position. After that: the first run's unsealed rows are discarded on restart, so only
    // the second run's. Nothing lost, and the repeats are exactly the ones explained.
    let mut twice = 0;
    for (i, expected) in content.lines().enumerate() {
        let seen = counts.get(expected).copied().unwrap_or(0);
        let want = if (line..90_000).contains(&(i as u64)) {
            2
        } else {
            1
        };
        assert_eq!(
            seen,
            want,
            "line {} is archived {seen} times: {expected}",
            i + 1
        );
        twice += u64::from(seen == 2);
    }
    assert_eq!(counts.len(), 105_000, "rows that are no line of the input");
    eprintln!(
        "checkpoint at line {line}; 105000 lines all archived, {twice} (lines {line}..90000) twice"
    );
}

fn secpipe_verify(archive: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .arg("verify")
        .arg(archive)
        .output()
        .expect("run secpipe verify")
}
