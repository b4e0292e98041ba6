//! `--journal` on real journal files: `systemd-journal-remote` turns export-format streams into
//! journal files, `secpipe --journal --journal-dir DIR` reads them through the real
//! `journalctl`, and restarts, kills and hostile entries are checked entry by entry (every
//! entry carries its own number, `entry=N`, and the archive's `raw` rows are counted).

mod live_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use live_support::{Running, lines_read, summary_lines, wait_for};

/// Where Debian's `systemd-journal-remote` puts the program.
const JOURNAL_REMOTE: [&str; 2] = [
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
];

/// The program, or `None` (and a clear message) when it is not installed.
fn journal_remote() -> Option<PathBuf> {
    let found = JOURNAL_REMOTE
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let journalctl = Command::new("journalctl").arg("--version").output().is_ok();
    if found.is_none() || !journalctl {
        eprintln!(
            "SKIPPED: systemd-journal-remote or journalctl is not installed \
             (apt-get install systemd-journal-remote)"
        );
        return None;
    }
    found
}

/// One journal entry of the test, in export format.
struct Entry {
    /// Microseconds since the epoch.
    realtime: u64,
    fields: Vec<(&'static str, Vec<u8>)>,
}

const BOOT: &str = "0123456789abcdef0123456789abcdef";

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64
}

/// A real sshd's failed login, numbered `n` (in the client field `ENTRY`, and as the client
/// port); one sshd process per attempt, as with real connections.
fn sshd(n: u64, ip: &str) -> Entry {
    Entry {
        realtime: 0,
        fields: vec![
            ("ENTRY", n.to_string().into_bytes()),
            ("_HOSTNAME", b"web1".to_vec()),
            ("SYSLOG_IDENTIFIER", b"sshd".to_vec()),
            ("_PID", (10_000 + n).to_string().into_bytes()),
            ("_UID", b"0".to_vec()),
            ("_COMM", b"sshd".to_vec()),
            ("_EXE", b"/usr/sbin/sshd".to_vec()),
            (
                "MESSAGE",
                format!(
                    "Failed password for root from {ip} port {} ssh2",
                    10_000 + n
                )
                .into_bytes(),
            ),
        ],
    }
}

/// Entries in the export format (`systemd-journal-export-formats(7)`): text fields as
/// `NAME=value`, others as `NAME`, a little-endian 64-bit length, the bytes.
fn export(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        out.extend_from_slice(
            format!(
                "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID={BOOT}\n",
                e.realtime,
                e.realtime % 1_000_000_000_000 + i as u64
            )
            .as_bytes(),
        );
        for (name, value) in &e.fields {
            let text = std::str::from_utf8(value)
                .ok()
                .filter(|t| !t.contains('\n') && !t.chars().any(char::is_control));
            match text {
                Some(t) => out.extend_from_slice(format!("{name}={t}\n").as_bytes()),
                None => {
                    out.extend_from_slice(format!("{name}\n").as_bytes());
                    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
                    out.extend_from_slice(value);
                    out.push(b'\n');
                }
            }
        }
        out.push(b'\n');
    }
    out
}

/// Append `entries` to the journal file `DIR/remote.journal` with systemd-journal-remote,
/// giving them increasing times from now (journalctl orders entries by time).
fn append(remote: &Path, dir: &Path, mut entries: Vec<Entry>) {
    let base = now_micros();
    for (i, e) in entries.iter_mut().enumerate() {
        e.realtime = base + i as u64;
    }
    let stream = dir.join("stream.export");
    std::fs::write(&stream, export(&entries)).expect("write export stream");
    let out = Command::new(remote)
        .arg("-o")
        .arg(dir.join("j/remote.journal"))
        .arg(&stream)
        .output()
        .expect("run systemd-journal-remote");
    assert!(
        out.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn numbered(first: u64, count: u64) -> Vec<Entry> {
    (first..first + count)
        .map(|n| sshd(n, &format!("192.0.2.{}", n % 200 + 1)))
        .collect()
}

/// The journal as `journalctl -o json` prints it: (entry number, cursor) of each entry.
fn journal_cursors(dir: &Path) -> Vec<(Option<u64>, String)> {
    let out = Command::new("journalctl")
        .args(["--output=json", "--all", "--no-pager"])
        .arg(format!("--directory={}", dir.join("j").display()))
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("journalctl json");
            let n = v["ENTRY"].as_str().and_then(|n| n.parse().ok());
            (n, v["__CURSOR"].as_str().expect("cursor").to_string())
        })
        .collect()
}

fn saved_cursor(dir: &Path) -> Option<String> {
    let text = std::fs::read(dir.join("state/journal-cursor.json")).ok()?;
    let saved: serde_json::Value = serde_json::from_slice(&text).ok()?;
    Some(saved["dir:j"].as_str()?.to_string())
}

/// How often each entry number is in the archive's rows.
fn archived_entries(archive: &Path) -> BTreeMap<u64, u32> {
    use arrow::array::AsArray;
    let mut counts = BTreeMap::new();
    let mut stack = vec![archive.join("events")];
    while let Some(path) = stack.pop() {
        let Ok(dir) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in dir {
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
                    let raw = batch.column_by_name("raw").expect("raw").clone();
                    let raw = raw.as_binary::<i32>();
                    for i in 0..batch.num_rows() {
                        let text = String::from_utf8_lossy(raw.value(i)).into_owned();
                        let n = text
                            .split("\"ENTRY\":\"")
                            .nth(1)
                            .and_then(|rest| {
                                let digits: String =
                                    rest.chars().take_while(char::is_ascii_digit).collect();
                                digits.parse().ok()
                            })
                            .unwrap_or(u64::MAX);
                        *counts.entry(n).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    counts
}

/// Entries `want` each archived exactly once, and nothing else: (lost, repeated).
fn lost_and_repeated(archive: &Path, want: std::ops::Range<u64>) -> (u64, u64) {
    let counts = archived_entries(archive);
    let lost = want.clone().filter(|n| !counts.contains_key(n)).count() as u64;
    let repeated: u64 = counts
        .values()
        .map(|&c| u64::from(c.saturating_sub(1)))
        .sum();
    let foreign: Vec<_> = counts.keys().filter(|n| !want.contains(n)).collect();
    assert!(
        foreign.is_empty(),
        "archived entries outside {want:?}: {foreign:?}"
    );
    (lost, repeated)
}

/// Start a first run (no saved cursor) and wait until it has taken the journal's end as its
/// start: entries appended after that are the ones it must read. (Appending before it looked
/// would make them part of the history a first start skips.)
fn start_first(dir: &Path, args: &[&str]) -> Running {
    let running = Running::start(dir, args);
    let end = journal_cursors(dir).pop().expect("the setup entry").1;
    wait_for(
        "the first run to save the journal's end as its cursor",
        || (saved_cursor(dir).as_deref() == Some(end.as_str())).then_some(()),
    );
    running
}

const JOURNAL_ARGS: [&str; 7] = [
    "--journal",
    "--journal-dir",
    "j",
    "--state",
    "state",
    "--archive",
    "archive",
];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    JOURNAL_ARGS.iter().chain(extra).copied().collect()
}

fn setup() -> Option<(tempfile::TempDir, PathBuf)> {
    let remote = journal_remote()?;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("j")).expect("journal dir");
    // One entry from before the first start: a first start reads from the end, so it is
    // never read.
    append(&remote, dir.path(), vec![sshd(0, "192.0.2.250")]);
    Some((dir, remote))
}

#[test]
fn sigterm_then_restart_reads_every_entry_exactly_once() {
    let Some((dir, remote)) = setup() else { return };
    let args = with(&[]);
    let first = start_first(dir.path(), &args);
    append(&remote, dir.path(), numbered(1, 500));
    first.wait_metric(&lines_read("journal:j"), 500.0);
    // More entries, and a stop while journalctl may still be printing them.
    append(&remote, dir.path(), numbered(501, 500));
    let (status, stderr) = first.terminate();
    assert!(status.success(), "first run: {stderr}");
    let first_lines = summary_lines(&stderr);
    // Written while secpipe is down.
    append(&remote, dir.path(), numbered(1001, 500));

    let second = Running::start(dir.path(), &args);
    second.wait_metric(&lines_read("journal:j"), (1500 - first_lines) as f64);
    let (status, stderr) = second.terminate();
    assert!(status.success(), "second run: {stderr}");
    let second_lines = summary_lines(&stderr);

    let (lost, repeated) = lost_and_repeated(&dir.path().join("archive"), 1..1501);
    eprintln!(
        "journal restart after SIGTERM: first run {first_lines} entries, second run \
         {second_lines}; of 1500 entries {lost} lost, {repeated} repeated"
    );
    assert_eq!((lost, repeated), (0, 0));
    assert_eq!(first_lines + second_lines, 1500);
    let last = journal_cursors(dir.path()).pop().expect("entries");
    assert_eq!(last.0, Some(1500));
    assert_eq!(saved_cursor(dir.path()), Some(last.1), "saved cursor");
}

/// The restart the issue asks for, with the stop falling mid-stream: a writer appends 2,000
/// entries in rounds of 50 while secpipe reads them, SIGTERM comes once 500 are read (the
/// writer still at it: journalctl has entries printed and unread, the pipeline has batches in
/// flight), the writer goes on while secpipe is down, and a second run reads the rest.
#[test]
fn sigterm_mid_stream_while_entries_are_written_then_restart_loses_and_repeats_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let Some((dir, remote)) = setup() else { return };
    let args = with(&[]);
    let first = start_first(dir.path(), &args);
    const ROUNDS: u64 = 40;
    const PER_ROUND: u64 = 50;
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (written, remote, dir) = (written.clone(), remote.clone(), dir.path().to_path_buf());
        std::thread::spawn(move || {
            for round in 0..ROUNDS {
                append(&remote, &dir, numbered(round * PER_ROUND + 1, PER_ROUND));
                written.store((round + 1) * PER_ROUND, Ordering::SeqCst);
                // Pacing, not a limit: the stop should find the writer still writing.
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    wait_for("500 entries read", || {
        (first.metric(&lines_read("journal:j")) >= 500.0).then_some(())
    });
    let written_at_stop = written.load(Ordering::SeqCst);
    let (status, stderr) = first.terminate();
    assert!(status.success(), "first run: {stderr}");
    let first_lines = summary_lines(&stderr);
    writer.join().expect("writer");
    let total = ROUNDS * PER_ROUND;

    let second = Running::start(dir.path(), &args);
    second.wait_metric(&lines_read("journal:j"), (total - first_lines) as f64);
    let (status, stderr) = second.terminate();
    assert!(status.success(), "second run: {stderr}");
    let second_lines = summary_lines(&stderr);

    let (lost, repeated) = lost_and_repeated(&dir.path().join("archive"), 1..total + 1);
    eprintln!(
        "journal restart after SIGTERM mid-stream: {written_at_stop} of {total} entries written \
         when the stop was sent, first run read {first_lines}, second run {second_lines}; \
         {lost} lost, {repeated} repeated"
    );
    assert_eq!((lost, repeated), (0, 0));
    assert_eq!(first_lines + second_lines, total);
    let last = journal_cursors(dir.path()).pop().expect("entries");
    assert_eq!(last.0, Some(total));
    assert_eq!(saved_cursor(dir.path()), Some(last.1), "saved cursor");
}

/// With an archive the archive decides durability: the saved cursor names only entries in
/// sealed files, and the rows of the unsealed file die with the process. Entries are written
/// in rounds of 100, each read before the next, so batch ends fall on the seal boundaries
/// (files of 100 rows) and the cursor can reach the last sealed entry exactly; in general a
/// SIGKILL repeats at most the entries between the last acknowledged batch and the seal.
#[test]
fn sigkill_with_an_archive_then_restart_loses_and_repeats_nothing() {
    let Some((dir, remote)) = setup() else { return };
    let args = with(&["--roll-rows", "100", "--roll-secs", "3600"]);
    let first = start_first(dir.path(), &args);
    for round in 0..10 {
        append(&remote, dir.path(), numbered(round * 100 + 1, 100));
        first.wait_metric(&lines_read("journal:j"), ((round + 1) * 100) as f64);
    }
    // 50 more: read, archived in a file that is not sealed when the process dies.
    append(&remote, dir.path(), numbered(1001, 50));
    first.wait_metric(&lines_read("journal:j"), 1050.0);
    let cursors = journal_cursors(dir.path());
    let cursor_of = |n: u64| {
        cursors
            .iter()
            .find(|(e, _)| *e == Some(n))
            .map(|(_, c)| c.clone())
            .expect("entry in journal")
    };
    let sealed_end = cursor_of(1000);
    wait_for("the cursor of entry 1000 to be saved", || {
        (saved_cursor(dir.path()).as_deref() == Some(sealed_end.as_str())).then_some(())
    });
    first.kill();
    assert_eq!(
        saved_cursor(dir.path()),
        Some(sealed_end),
        "saved past the sealed rows"
    );
    append(&remote, dir.path(), numbered(1051, 450));

    let second = Running::start(dir.path(), &args);
    // Entries 1,001 to 1,500.
    second.wait_metric(&lines_read("journal:j"), 500.0);
    let (status, stderr) = second.terminate();
    assert!(status.success(), "second run: {stderr}");
    let (lost, repeated) = lost_and_repeated(&dir.path().join("archive"), 1..1501);
    eprintln!(
        "journal restart after SIGKILL with --archive: cursor saved at entry 1000 (50 unsealed \
         rows discarded), second run {} entries; of 1500 entries {lost} lost, {repeated} repeated",
        summary_lines(&stderr)
    );
    assert_eq!((lost, repeated), (0, 0));
}

/// The pids of `secpipe`'s child processes.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let path = task.expect("task").path().join("children");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

#[test]
fn journalctl_killed_mid_stream_is_started_again_after_the_last_entry_sent() {
    let Some((dir, remote)) = setup() else { return };
    let args = with(&[]);
    let running = start_first(dir.path(), &args);
    let journalctl = || {
        wait_for("secpipe's journalctl", || {
            children(running.child.id()).into_iter().find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "journalctl")
            })
        })
    };
    let mut sent = 0;
    for round in 0..3 {
        append(&remote, dir.path(), numbered(sent + 1, 400));
        sent += 400;
        // Killed while it may still be printing the round's entries.
        wait_for("some of the round's entries", || {
            (running.metric(&lines_read("journal:j")) > (sent - 400) as f64).then_some(())
        });
        let pid = journalctl();
        let killed = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success(), "round {round}");
    }
    append(&remote, dir.path(), numbered(sent + 1, 100));
    sent += 100;
    running.wait_metric(&lines_read("journal:j"), sent as f64);
    let restarts = running.metric("secpipe_journal_total{event=\"journalctl_restart\"}");
    let last_journalctl = journalctl();
    let (status, stderr) = running.terminate();
    assert!(status.success(), "{stderr}");
    // SIGTERM to secpipe ends its journalctl too, reaped (no zombie left behind).
    assert!(
        !Path::new(&format!("/proc/{last_journalctl}")).exists(),
        "journalctl {last_journalctl} outlived secpipe"
    );
    let (lost, repeated) = lost_and_repeated(&dir.path().join("archive"), 1..sent + 1);
    eprintln!(
        "journalctl SIGKILLed 3 times mid-stream: {restarts} restarts; of {sent} entries {lost} \
         lost, {repeated} repeated"
    );
    assert!(restarts >= 3.0, "restarts counted: {restarts}");
    assert_eq!((lost, repeated), (0, 0));
}

#[test]
fn forged_sshd_entries_from_logger_count_for_nothing() {
    let Some((dir, remote)) = setup() else { return };
    let running = start_first(dir.path(), &with(&["--alerts", "-"]));
    // `logger -t sshd …` by a local user: the client fields claim sshd, the trusted ones
    // (which systemd-journal-remote keeps as written) say logger, uid 1000.
    let forged: Vec<Entry> = (1..=10)
        .map(|n| {
            let mut e = sshd(n, "198.51.100.9");
            e.fields
                .retain(|(name, _)| !name.starts_with('_') || *name == "_HOSTNAME");
            e.fields.extend([
                ("_PID", b"777".to_vec()),
                ("_UID", b"1000".to_vec()),
                ("_COMM", b"logger".to_vec()),
                ("_EXE", b"/usr/bin/logger".to_vec()),
            ]);
            e
        })
        .collect();
    append(&remote, dir.path(), forged);
    append(
        &remote,
        dir.path(),
        (11..=20).map(|n| sshd(n, "203.0.113.7")).collect(),
    );
    // The trusted fields survive systemd-journal-remote, as journalctl prints them.
    let out = Command::new("journalctl")
        .args([
            "--output=json",
            "--no-pager",
            "--directory=j",
            "_COMM=logger",
        ])
        .current_dir(dir.path())
        .output()
        .expect("journalctl");
    let logger_entries = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(
        logger_entries, 10,
        "_COMM=logger entries in the journal files"
    );

    running.wait_alert("auth.bruteforce", "203.0.113.7");
    running.wait_metric(&lines_read("journal:j"), 20.0);
    let alerts_file = dir
        .path()
        .join(format!("stdout-{}.txt", running.metrics_port));
    let (status, stderr) = running.terminate();
    assert!(status.success(), "{stderr}");
    let alerts = std::fs::read_to_string(alerts_file).expect("alerts");
    let forged_alerts = alerts
        .lines()
        .filter(|l| l.contains("198.51.100.9"))
        .count();
    eprintln!("forged sshd entries: 10 read, {forged_alerts} alerts about their address");
    assert_eq!(forged_alerts, 0, "{alerts}");
}

#[test]
fn byte_array_messages_and_an_oversized_entry_keep_their_cursors() {
    let Some((dir, remote)) = setup() else { return };
    let args = with(&["--alerts", "-", "--max-line", "4096"]);
    let running = start_first(dir.path(), &args);
    // MESSAGE with bytes that are not UTF-8: journalctl prints it as an array of numbers.
    let binary: Vec<Entry> = (1..=6)
        .map(|n| {
            let mut e = sshd(n, "203.0.113.50");
            e.fields.retain(|(name, _)| *name != "MESSAGE");
            // Bytes that are not UTF-8 in the user name.
            let mut message = b"Failed password for invalid user adm\xff\xfe".to_vec();
            message.extend_from_slice(format!(" from 203.0.113.50 port {n} ssh2").as_bytes());
            e.fields.push(("MESSAGE", message));
            e
        })
        .collect();
    append(&remote, dir.path(), binary);
    // An entry of 320 KiB: cut at --max-line.
    let mut long = sshd(7, "192.0.2.77");
    // journalctl prints fields in hash order, so the cursor's place in the line varies from
    // run to run; behind 40 fields of 8 KiB it is nearly always past the cut. (The unit tests
    // of `source::journal` put it past the cut every time.)
    for i in 0..40 {
        let name: &'static str = Box::leak(format!("PAD{i:02}").into_boxed_str());
        long.fields.push((name, vec![b'x'; 8 * 1024]));
    }
    append(&remote, dir.path(), vec![long]);
    running.wait_alert("auth.bruteforce", "203.0.113.50");
    running.wait_metric(&lines_read("journal:j"), 7.0);
    let (status, stderr) = running.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("1 truncated"), "{stderr}");
    let last = journal_cursors(dir.path()).pop().expect("entries");
    assert_eq!(
        saved_cursor(dir.path()),
        Some(last.1),
        "the oversized last entry's cursor is saved"
    );
    // So a restart reads none of them again.
    let again = Running::start(dir.path(), &args);
    append(&remote, dir.path(), numbered(8, 1));
    again.wait_metric(&lines_read("journal:j"), 1.0);
    let stderr = again.terminate_expecting_lines(1);
    let counts = archived_entries(&dir.path().join("archive"));
    eprintln!("byte-array and oversized entries: archived {counts:?}");
    // Entries 1 to 8 once each; entry 7 possibly cut before its ENTRY field (then it counts
    // as u64::MAX: no number).
    let mut counts = counts;
    if let Some(cut) = counts.remove(&u64::MAX) {
        *counts.entry(7).or_insert(0) += cut;
    }
    let want: BTreeMap<u64, u32> = (1..=8).map(|n| (n, 1)).collect();
    assert_eq!(counts, want, "{stderr}");
}

#[test]
fn a_cursor_quoted_in_a_field_is_not_taken_for_the_entry_cursor() {
    let Some((dir, remote)) = setup() else { return };
    let running = start_first(dir.path(), &with(&[]));
    let mut hostile = sshd(1, "192.0.2.1");
    hostile
        .fields
        .push(("NOTE", br#"a","__CURSOR":"--output=cat"#.to_vec()));
    append(&remote, dir.path(), vec![hostile]);
    running.wait_metric(&lines_read("journal:j"), 1.0);
    let unusable = running.metric("secpipe_journal_total{event=\"cursor_unusable\"}");
    running.terminate_expecting_lines(1);
    let last = journal_cursors(dir.path()).pop().expect("entries");
    assert_eq!(saved_cursor(dir.path()), Some(last.1));
    assert_eq!(unusable, 0.0);
}

#[test]
fn a_match_that_looks_like_an_option_is_refused() {
    for bad in [
        "--journal=--output=cat",
        "--journal=-D/etc",
        "--journal=/usr/sbin/sshd",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_secpipe"))
            .arg(bad)
            .output()
            .expect("run secpipe");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("FIELD=VALUE"), "{bad}: {stderr}");
    }
}

/// A journalctl that never pauses (a flood, or a long backlog after a restart): SIGTERM must
/// still stop secpipe. The fake journalctl (first on PATH) answers the start probe with one
/// cursor and then prints entries without end; the reader only looked at the shutdown flag
/// when journalctl had been silent for 100 ms, so it read on until systemd's SIGKILL.
#[test]
fn sigterm_stops_the_reader_while_journalctl_floods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    let fake = bin.join("journalctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         case \" $* \" in *\" --lines=1 \"*) echo '{\"__CURSOR\":\"s=1;i=0\"}'; exit 0;; esac\n\
         exec yes '{\"MESSAGE\":\"flood\",\"__CURSOR\":\"s=1;i=1\"}'\n",
    )
    .expect("write fake journalctl");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let running = Running::start_with_env(dir.path(), &["--journal"], &[("PATH", path)]);
    wait_for("flood lines read", || {
        (running.metric(&lines_read("journal")) > 100_000.0).then_some(())
    });
    let (status, stderr) = running.terminate();
    assert!(status.success(), "{stderr}");
    assert!(summary_lines(&stderr) > 100_000, "{stderr}");
}
