//! `--archive s3://…` against a real S3-compatible server (PyPI `moto[server]` on loopback):
//! the bucket holds the same chain as a local copy, nothing in it is ever overwritten, and an
//! outage or a SIGKILL during uploads is finished by the next run with nothing lost and no
//! file uploaded twice.

mod bucket_support;
mod live_support;

use std::path::Path;

use bucket_support::{Mode, Moto, Proxy, download, keys, secpipe};
use live_support::{Running, append_lines, lines_read, metric_value, wait_for};

/// `n` sshd failures from 40 addresses, an hour apart every 1,000 lines, over midnight (two
/// date partitions).
fn auth_lines(n: u64) -> String {
    (0..n)
        .map(|i| {
            let hour = 22 + i / 1000;
            let (day, hour) = if hour >= 24 {
                (28, hour - 24)
            } else {
                (27, hour)
            };
            format!(
                "2026-11-{day}T{hour:02}:{:02}:{:02}Z web1 sshd[{}]: Failed password for root \
                 from 203.0.113.{} port 22 ssh2\n",
                (i / 60) % 60,
                i % 60,
                1000 + i,
                i % 40
            )
        })
        .collect()
}

fn head_of(report: &str) -> String {
    report
        .lines()
        .find(|l| l.starts_with("head"))
        .unwrap_or_else(|| panic!("no head in:\n{report}"))
        .to_owned()
}

#[test]
fn a_bucket_archive_verifies_with_the_same_head_as_its_local_copy_and_replays_the_same() {
    let moto = Moto::start();
    moto.bucket("evidence", true);
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = moto.endpoint();
    let run = |args: &[&str], input: &str| secpipe(&endpoint, dir.path(), args, input.as_bytes());
    let (code, _, err) = run(&["keygen", "--out", "key"], "");
    assert_eq!(code, 0, "{err}");

    let archive = [
        "--archive",
        "s3://evidence/host-1",
        "--spool",
        "spool",
        "--key",
        "key",
        "--roll-rows",
        "700",
    ];
    let (code, alerts, err) = run(&archive, &auth_lines(3_000));
    assert_eq!(code, 0, "{err}");
    assert!(alerts.contains("auth.bruteforce"), "{alerts}");
    // A second run continues the chain in the bucket.
    let (code, _, err) = run(&archive, &auth_lines(500));
    assert_eq!(code, 0, "{err}");
    let pending = std::fs::read_dir(dir.path().join("spool/pending"))
        .expect("pending dir")
        .count();
    assert_eq!(pending, 0, "every commit finished");

    let (code, bucket_report, err) = run(
        &["verify", "s3://evidence/host-1", "--pubkey", "key.pub"],
        "",
    );
    assert_eq!(code, 0, "{bucket_report}{err}");
    assert!(bucket_report.contains("INTACT"), "{bucket_report}");
    assert!(bucket_report.contains("signature good"), "{bucket_report}");

    let copy = dir.path().join("copy");
    download(&endpoint, "evidence", "host-1", &copy);
    let (code, local_report, err) = run(
        &[
            "verify",
            copy.to_str().expect("utf-8"),
            "--pubkey",
            "key.pub",
        ],
        "",
    );
    assert_eq!(code, 0, "{local_report}{err}");
    assert_eq!(head_of(&bucket_report), head_of(&local_report));
    let checked = |r: &str| {
        r.lines()
            .find(|l| l.starts_with("checked"))
            .map(str::to_owned)
    };
    assert_eq!(checked(&bucket_report), checked(&local_report));

    let (code, from_bucket, err) = run(
        &["replay", "s3://evidence/host-1", "--pubkey", "key.pub"],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let (code, from_copy, _) = run(
        &[
            "replay",
            copy.to_str().expect("utf-8"),
            "--pubkey",
            "key.pub",
        ],
        "",
    );
    assert_eq!(code, 0);
    assert!(from_bucket.contains("auth.bruteforce"));
    assert_eq!(
        from_bucket, from_copy,
        "replay reads the same rows from both"
    );

    // OCSF export reads the bucket in place too, to the same files as from the copy.
    let exported = |from: &str, to: &str| {
        let (code, _, err) = run(
            &[
                "export", from, "--ocsf", "json", "--out", to, "--pubkey", "key.pub",
            ],
            "",
        );
        assert_eq!(code, 0, "{err}");
        let root = dir.path().join(to);
        let mut files: Vec<(String, Vec<u8>)> = walk(&root)
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).expect("exported file");
                let name = p.strip_prefix(&root).expect("inside").display().to_string();
                (name, bytes)
            })
            .collect();
        files.sort();
        files
    };
    let ocsf_from_bucket = exported("s3://evidence/host-1", "ocsf-bucket");
    assert!(!ocsf_from_bucket.is_empty());
    assert_eq!(
        ocsf_from_bucket,
        exported(copy.to_str().expect("utf-8"), "ocsf-copy"),
        "the same OCSF rows from the bucket and the copy"
    );

    // Create-only: every object was written once.
    let objects = keys(&endpoint, "evidence", "host-1");
    assert!(
        objects
            .iter()
            .any(|(k, _)| k.starts_with("audit/manifests/"))
    );
    assert!(
        objects
            .iter()
            .any(|(k, _)| k.starts_with("audit/checkpoints/"))
    );
    for (key, versions) in &objects {
        assert_eq!(*versions, 1, "{key} written {versions} times");
    }
}

/// Someone with write access plants `key` under `bucket/p`; secpipe then archives 100 lines
/// in files of 50 rows. Returns (exit code, alerts, stderr) and checks that the planted object
/// is untouched and no manifest line names it.
fn run_with_planted(key: &str) -> (i32, String, String) {
    let moto = Moto::start();
    moto.bucket("evidence", false);
    let endpoint = moto.endpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let planted = format!("p/{key}");
    bucket_support::boto(
        &endpoint,
        "s3.put_object(Bucket='evidence', Key=sys.argv[2], Body=b'planted')",
        &[&planted],
    );
    let outcome = secpipe(
        &endpoint,
        dir.path(),
        &[
            "--archive",
            "s3://evidence/p",
            "--spool",
            "spool",
            "--roll-rows",
            "50",
        ],
        auth_lines(100).as_bytes(),
    );
    let body = bucket_support::boto(
        &endpoint,
        "print(s3.get_object(Bucket='evidence', Key=sys.argv[2])['Body'].read().decode())",
        &[&planted],
    );
    assert_eq!(body.trim(), "planted");
    let objects = keys(&endpoint, "evidence", "p");
    let versions = objects.iter().find(|(k, _)| k == key).map(|(_, n)| *n);
    assert_eq!(versions, Some(1), "{objects:?}");
    for (name, _) in &objects {
        if name.starts_with("audit/manifests/") {
            let line = bucket_support::boto(
                &endpoint,
                "print(s3.get_object(Bucket='evidence', Key=sys.argv[2])['Body'].read().decode())",
                &[&format!("p/{name}")],
            );
            assert!(
                !line.contains(key),
                "a manifest names the planted object: {line}"
            );
        }
    }
    outcome
}

#[test]
fn a_name_taken_when_a_file_is_uploaded_stops_the_run_and_is_not_overwritten() {
    // The second file's name: the first is uploaded, the second refused.
    let (code, alerts, err) = run_with_planted("events/date=2026-11-27/part-00000001.parquet");
    assert_eq!(code, 2, "the run stops as on a full disk: {err}");
    assert!(alerts.contains("secpipe.archive_failed"), "{alerts}");
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn a_name_taken_before_the_run_is_neither_overwritten_nor_deleted() {
    // The next file's name at open, where a directory archive would move a crash leftover
    // aside: in a bucket that would be a delete marker and a second version of the name.
    let (code, _, err) = run_with_planted("events/date=2026-11-27/part-00000000.parquet");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("never overwrites or deletes"), "{err}");
}

#[test]
fn an_unsupported_scheme_is_a_usage_error_not_a_local_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in ["ftp://bucket/p", "http://example.com/x", "S4://b/p"] {
        let (code, _, err) = secpipe("http://127.0.0.1:9", dir.path(), &["--archive", url], b"");
        assert_eq!(code, 2, "{url}: {err}");
        assert!(err.contains("unsupported scheme"), "{url}: {err}");
        let (code, _, err) = secpipe("http://127.0.0.1:9", dir.path(), &["verify", url], b"");
        assert_eq!(code, 2, "{url}: {err}");
        assert!(err.contains("unsupported scheme"), "{url}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing was created locally"
    );
}

/// The lines of the followed file that the bucket holds: (rows, distinct line numbers).
fn archived_lines(endpoint: &str, copy: &Path) -> (u64, u64) {
    download(endpoint, "evidence", "host-2", copy);
    let out = live_python(
        "import sys, pyarrow.dataset as ds\n\
         t = ds.dataset(sys.argv[1] + '/events', format='parquet', partitioning='hive').to_table(columns=['line'])\n\
         lines = t.column('line').to_pylist()\n\
         print(len(lines), len(set(lines)))",
        &[copy.to_str().expect("utf-8")],
    );
    let mut parts = out
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("count"));
    (parts.next().expect("rows"), parts.next().expect("distinct"))
}

fn live_python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An outage starts after the archive is open: uploads fail (`mode`) while lines keep coming,
/// secpipe (signing with a key) is SIGKILLed with sealed files waiting, and a restart on a
/// working network finishes them: every line is in the bucket once, no object was written
/// twice, and the chain verifies with a good signature over every line.
fn outage_then_kill_then_restart(mode: Mode) {
    let moto = Moto::start();
    moto.bucket("evidence", true);
    let proxy = Proxy::start(moto.port);
    let env = bucket_support::env(&proxy.endpoint());
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let args = [
        "--follow",
        "--state",
        "state",
        "--archive",
        "s3://evidence/host-2",
        "--roll-rows",
        "250",
        "--roll-secs",
        "1",
        "--key",
        "key",
        "auth.log",
    ];
    let (code, _, err) = secpipe(
        &proxy.endpoint(),
        dir.path(),
        &["keygen", "--out", "key"],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let total = 2_000;
    let first = Running::start_with_env(dir.path(), &args, &env);
    proxy.set(mode);
    // In chunks of one file's rows, each read before the next is written, so that a read
    // batch (whose position is saved once all its rows are durable) ends where a file does.
    for chunk in 0..total / 250 {
        append_lines(&log, "2026-11-27T10:00:00Z web1", chunk * 250, 250);
        first.wait_metric(&lines_read("auth.log"), ((chunk + 1) * 250) as f64);
    }
    let pending_dir = dir.path().join("state/archive-spool/pending");
    // Recorded commits (a record being written is `.tmp` until renamed).
    let pending = || {
        std::fs::read_dir(&pending_dir)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
                })
                .count()
            })
            .unwrap_or(0)
    };
    wait_for("a sealed file waiting for its upload", || {
        (pending() > 0).then_some(())
    });
    if mode == Mode::Refuse {
        wait_for("an upload retried", || {
            let retries = metric_value(&first.metrics(), "secpipe_archive_upload_retries_total");
            (retries > 0.0).then_some(())
        });
    }
    // The sealed file is on local disk with its record: input positions move past its lines
    // while the upload waits (else every line since the outage began is read twice).
    let saved_line = || {
        let saved: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("state/checkpoints.json")).unwrap_or(b"[]".to_vec()),
        )
        .unwrap_or_default();
        saved[0]["line"].as_u64().unwrap_or(0)
    };
    let recorded_rows = 250 * pending() as u64;
    wait_for("positions saved past the recorded file", || {
        (saved_line() >= recorded_rows).then_some(())
    });
    first.kill();
    let unfinished: Vec<_> = std::fs::read_dir(&pending_dir)
        .expect("pending dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(!unfinished.is_empty(), "the kill left a commit unfinished");

    proxy.set(Mode::Forward);
    let second = Running::start_with_env(dir.path(), &args, &env);
    for record in &unfinished {
        assert!(
            !record.exists(),
            "the restart finished {}",
            record.display()
        );
    }
    let resumed_at = saved_line();
    second.wait_metric(&lines_read("auth.log"), (total - resumed_at) as f64);
    let (status, stderr) = second.terminate();
    assert!(status.success(), "{stderr}");

    let (code, report, err) = secpipe(
        &proxy.endpoint(),
        dir.path(),
        &["verify", "s3://evidence/host-2", "--pubkey", "key.pub"],
        b"",
    );
    // Signed by the run that wrote them, the lines the restart uploaded are vouched for: not
    // an unsigned span (exit 3), as they were when the pending record had no checkpoint.
    assert_eq!(code, 0, "{report}{err}");
    assert!(report.contains("signature good"), "{report}");
    let (rows, distinct) = archived_lines(&proxy.endpoint(), &dir.path().join("copy"));
    eprintln!(
        "{mode:?}: restart resumed at line {resumed_at}; the bucket holds {rows} rows, \
         {distinct} distinct lines of {total}"
    );
    assert_eq!(distinct, total, "every line is in the bucket");
    // The positions were saved exactly at the recorded file's end: no line twice.
    assert_eq!(rows, total, "{rows} rows for {total} lines");
    let objects = keys(&proxy.endpoint(), "evidence", "host-2");
    for (key, versions) in &objects {
        assert_eq!(*versions, 1, "{key} written {versions} times");
        assert!(!key.starts_with("audit/discarded/"), "{key}");
    }
}

#[test]
fn uploads_refused_then_a_kill_are_finished_by_the_restart_with_nothing_lost() {
    outage_then_kill_then_restart(Mode::Refuse);
}

#[test]
fn a_kill_during_a_hanging_upload_is_finished_by_the_restart_with_nothing_lost() {
    outage_then_kill_then_restart(Mode::Hang);
}

#[test]
fn keys_region_and_endpoint_come_from_an_aws_profile_as_the_aws_tools_read_them() {
    let moto = Moto::start();
    moto.bucket("evidence", false);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("credentials"),
        "[default]\naws_access_key_id = wrong\n\n[ci]\naws_access_key_id = test\n\
         aws_secret_access_key = test\n",
    )
    .expect("credentials");
    std::fs::write(
        dir.path().join("config"),
        format!(
            "[profile ci]\nregion = us-east-1\nendpoint_url = {}\n",
            moto.endpoint()
        ),
    )
    .expect("config");
    // No key and no endpoint in the environment: without the profile there is nowhere to go.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"));
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    let out = command
        .args(["--archive", "s3://evidence/profiled", "--spool", "spool"])
        .env("AWS_PROFILE", "ci")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("credentials"),
        )
        .env("AWS_CONFIG_FILE", dir.path().join("config"))
        .env("AWS_ALLOW_HTTP", "true")
        .current_dir(dir.path())
        .stdin(std::fs::File::open("/dev/null").expect("null"))
        .output()
        .expect("run secpipe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = keys(&moto.endpoint(), "evidence", "profiled");
    assert!(
        objects.iter().any(|(k, _)| k.starts_with("audit/")),
        "{objects:?}"
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A run on `s3://evidence/one` (through a proxy, `--state state`, files of 50 rows) is
/// SIGKILLed while its first upload is refused: its sealed file and pending record stay in
/// `state/archive-spool`. Returns the server, the proxy (forwarding again), the directory and
/// the pending records.
fn crash_with_a_pending_record() -> (Moto, Proxy, tempfile::TempDir, Vec<std::path::PathBuf>) {
    let moto = Moto::start();
    moto.bucket("evidence", false);
    let proxy = Proxy::start(moto.port);
    let env = bucket_support::env(&proxy.endpoint());
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let first = Running::start_with_env(
        dir.path(),
        &[
            "--follow",
            "--state",
            "state",
            "--archive",
            "s3://evidence/one",
            "--roll-rows",
            "50",
            "--roll-secs",
            "1",
            "auth.log",
        ],
        &env,
    );
    proxy.set(Mode::Refuse);
    append_lines(&log, "2026-11-27T10:00:00Z web1", 0, 50);
    first.wait_metric(&lines_read("auth.log"), 50.0);
    let pending_dir = dir.path().join("state/archive-spool/pending");
    wait_for("a sealed file waiting for its upload", || {
        let found = pending_records(&pending_dir);
        (!found.is_empty()).then_some(())
    });
    first.kill();
    proxy.set(Mode::Forward);
    let records = pending_records(&pending_dir);
    (moto, proxy, dir, records)
}

/// The pending records (`*.json`) in `dir`.
fn pending_records(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

/// A crash leaves a sealed file and its pending record in the spool of `--state`; the next
/// run names another archive with the same `--state`. Finishing that commit there would put
/// the first archive's line and file into the second, whose create-only objects could never
/// be taken back: the run must refuse, and the archive the record belongs to finishes it.
#[test]
fn a_crash_left_commit_is_not_finished_into_another_archive_sharing_the_spool() {
    let (_moto, proxy, dir, unfinished) = crash_with_a_pending_record();
    let records = || pending_records(&dir.path().join("state/archive-spool/pending"));
    assert!(!unfinished.is_empty(), "the kill left a commit unfinished");
    let (code, _, err) = secpipe(
        &proxy.endpoint(),
        dir.path(),
        &["--state", "state", "--archive", "s3://evidence/two"],
        auth_lines(10).as_bytes(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("s3://evidence/one"),
        "names the record's archive: {err}"
    );
    let written = keys(&proxy.endpoint(), "evidence", "two");
    assert!(
        written.is_empty(),
        "the other archive was written: {written:?}"
    );
    assert_eq!(records(), unfinished, "the record waits for its archive");

    let (code, _, err) = secpipe(
        &proxy.endpoint(),
        dir.path(),
        &["--state", "state", "--archive", "s3://evidence/one"],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert!(records().is_empty(), "its own archive finished it");
    let (code, report, err) = secpipe(
        &proxy.endpoint(),
        dir.path(),
        &["verify", "s3://evidence/one"],
        b"",
    );
    assert_eq!(code, 0, "{report}{err}");
    assert!(report.contains("INTACT"), "{report}");
}

/// Someone with write access to the bucket plants a key holding terminal controls (ESC
/// sequences that hide what follows, a carriage return that rewrites the line). Its name
/// reaches the verify report through the listing's error; printed raw, it could make a
/// terminal show INTACT over the real verdict. The report shows the controls escaped.
#[test]
fn a_key_with_terminal_controls_cannot_rewrite_the_verify_report() {
    let moto = Moto::start();
    moto.bucket("evidence", false);
    let endpoint = moto.endpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = secpipe(
        &endpoint,
        dir.path(),
        &["--archive", "s3://evidence/p", "--spool", "spool"],
        auth_lines(100).as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    bucket_support::boto(
        &endpoint,
        "s3.put_object(Bucket='evidence', Key=sys.argv[2], Body=b'x')",
        &["p/events/date=2026-11-27/x\u{1b}[8m\r\u{1b}[2KINTACT.parquet"],
    );
    let (code, report, err) = secpipe(&endpoint, dir.path(), &["verify", "s3://evidence/p"], b"");
    assert_ne!(code, 0, "{report}{err}");
    assert!(
        !report.contains(['\u{1b}', '\r']),
        "terminal controls in the report: {report:?}"
    );
    assert!(report.contains("\\u{1b}[8m"), "shown escaped: {report}");
}

/// Someone who can write the spool but not the bucket edits a pending record: its object
/// name, or its checkpoint's count. The restart would upload the sealed file under a name no
/// manifest line gives, or a checkpoint claiming lines that do not exist, which every later
/// verify reads as the newest; in a create-only bucket neither can be taken back. The
/// restart checks the record against its own manifest line and refuses.
#[test]
fn an_edited_pending_record_is_refused_and_nothing_is_uploaded() {
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 2] = [
        ("another object name", |record| {
            record["name"] = "alerts/date=2026-11-27/part-00000000.parquet".into();
        }),
        ("a checkpoint for another count", |record| {
            let text = record["checkpoint"]
                .as_str()
                .expect("a checkpoint")
                .to_owned();
            let mut lines: Vec<&str> = text.split('\n').collect();
            lines[1] = "99999999";
            record["checkpoint"] = lines.join("\n").into();
        }),
    ];
    for (what, edit) in edits {
        let (_moto, proxy, dir, unfinished) = crash_with_a_pending_record();
        let path = unfinished
            .first()
            .expect("the kill left a commit unfinished");
        let mut record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("record")).expect("json");
        edit(&mut record);
        std::fs::write(path, record.to_string()).expect("edit the record");
        let before = keys(&proxy.endpoint(), "evidence", "one");
        let (code, _, err) = secpipe(
            &proxy.endpoint(),
            dir.path(),
            &["--state", "state", "--archive", "s3://evidence/one"],
            b"",
        );
        assert_eq!(code, 2, "{what}: {err}");
        let written = keys(&proxy.endpoint(), "evidence", "one");
        assert_eq!(written, before, "{what}: uploaded from an edited record");
        assert!(
            path.exists(),
            "{what}: the record stays for a person to look at"
        );
    }
}

/// A copy of a manifest object left beside it (`00000001.json.bak`, as a person inspecting
/// the bucket might leave, or `1.json`) is not a line of the chain, as `manifests.jsonl.bak`
/// is not in a directory archive: the chain is read from the names secpipe writes, and the
/// archive verifies and can be extended as before.
#[test]
fn a_copy_of_a_manifest_object_beside_it_is_not_read_as_a_second_line() {
    let moto = Moto::start();
    moto.bucket("evidence", false);
    let endpoint = moto.endpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = ["--archive", "s3://evidence/p", "--spool", "spool"];
    let (code, _, err) = secpipe(&endpoint, dir.path(), &archive, auth_lines(100).as_bytes());
    assert_eq!(code, 0, "{err}");
    let (code, intact, err) = secpipe(&endpoint, dir.path(), &["verify", "s3://evidence/p"], b"");
    assert_eq!(code, 0, "{intact}{err}");
    for copy in ["00000001.json.bak", "1.json", "00000001.note"] {
        bucket_support::boto(
            &endpoint,
            "s3.copy_object(Bucket='evidence', Key=sys.argv[2], \
             CopySource={'Bucket': 'evidence', 'Key': 'p/audit/manifests/00000001.json'})",
            &[&format!("p/audit/manifests/{copy}")],
        );
    }
    let (code, report, err) = secpipe(&endpoint, dir.path(), &["verify", "s3://evidence/p"], b"");
    assert_eq!(code, 0, "{report}{err}");
    assert_eq!(head_of(&report), head_of(&intact));
    let (code, _, err) = secpipe(&endpoint, dir.path(), &archive, auth_lines(10).as_bytes());
    assert_eq!(code, 0, "the archive is extended: {err}");
}

/// Two runs given the same spool at once: the second would finish the first one's commits in
/// flight, delete its spooled files and records under it, and both would extend the chain
/// from the same line. The second run must refuse before it touches the spool or the bucket.
#[test]
fn a_second_run_on_a_spool_in_use_is_refused() {
    let moto = Moto::start();
    moto.bucket("evidence", false);
    let endpoint = moto.endpoint();
    let env = bucket_support::env(&endpoint);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let first = Running::start_with_env(
        dir.path(),
        &[
            "--follow",
            "--archive",
            "s3://evidence/p",
            "--spool",
            "spool",
            "--roll-rows",
            "50",
            "--roll-secs",
            "1",
            "auth.log",
        ],
        &env,
    );
    append_lines(&log, "2026-11-27T10:00:00Z web1", 0, 50);
    first.wait_metric(&lines_read("auth.log"), 50.0);
    let (code, _, err) = secpipe(
        &endpoint,
        dir.path(),
        &["--archive", "s3://evidence/p", "--spool", "spool"],
        auth_lines(10).as_bytes(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("another secpipe"), "{err}");
    append_lines(&log, "2026-11-27T10:00:00Z web1", 50, 50);
    first.wait_metric(&lines_read("auth.log"), 100.0);
    let (status, stderr) = first.terminate();
    assert!(status.success(), "{stderr}");
    let (code, report, err) = secpipe(&endpoint, dir.path(), &["verify", "s3://evidence/p"], b"");
    assert_eq!(code, 0, "{report}{err}");
    assert!(report.contains("INTACT"), "{report}");
}
