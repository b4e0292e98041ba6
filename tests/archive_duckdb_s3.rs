//! DuckDB reads the archive out of an S3-compatible store: `tests/peers/duckdb_s3.py` (DuckDB
//! 1.5.5 with the PyPI httpfs extension) against a moto server on a loopback port, holding an
//! archive the binary wrote, uploaded with boto3 into an Object Lock bucket (versioning on), as
//! the README's bucket recipe has it. Its answers to the README's questions must equal the ones
//! the machine's own DuckDB gives over the local copy, and an empty prefix must fail loudly
//! rather than answer "nothing happened".
//!
//! Needs `pip install moto[server] boto3` and the pinned DuckDB pair in
//! /opt/secpipe-duckdb-1.5.5 (tests/run-all.sh installs them); fails, does not skip, without.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::Value;

/// A moto S3 server of our own on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        // Another moto may already listen on any fixed port (other tests, other users): ask
        // the kernel for a free one, and believe only our own child's "Running on" line.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("moto_server must be installed (pip install 'moto[server]')");
            let stderr = child.stderr.take().expect("stderr");
            let mut lines = BufReader::new(stderr).lines();
            let mut said = String::new();
            let running = loop {
                match lines.next() {
                    Some(Ok(line)) => {
                        said.push_str(&line);
                        said.push('\n');
                        if line.contains(&format!("Running on http://127.0.0.1:{port}")) {
                            break true;
                        }
                    }
                    // It exited (the port was taken after all): try another.
                    _ => break false,
                }
            };
            if running {
                // Keep draining its log so it never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return Moto {
                    child,
                    endpoint: format!("127.0.0.1:{port}"),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("moto_server on {port} did not start:\n{said}");
        }
        panic!("moto_server did not start on any of 5 free ports");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Create `bucket` (Object Lock, so versioning) and upload every file under `archive` to
/// `prefix/…`, as a copy of the local archive.
const UPLOAD: &str = r#"
import boto3, os, sys
endpoint, bucket, prefix, root = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url="http://" + endpoint, aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
count = 0
for folder, _, files in os.walk(root):
    for name in sorted(files):
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            # Object Lock buckets refuse a PUT without a checksum; boto3 sends one.
            s3.put_object(Bucket=bucket, Key=prefix + "/" + os.path.relpath(path, root),
                          Body=f.read(), ChecksumAlgorithm="SHA256")
        count += 1
print(count)
"#;

/// The README's questions over the local archive with the machine's DuckDB (not the pinned
/// one the S3 script uses).
const LOCAL: &str = r#"
import json, sys, duckdb
sys.path.insert(0, sys.argv[2])
import archive_questions
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
print(json.dumps({"duckdb": duckdb.__version__,
    "questions": {n: [archive_questions.plain(list(r)) for r in con.execute(q).fetchall()]
                  for n, q in archive_questions.duckdb_questions(sys.argv[1]).items()}}))
"#;

fn python(args: &[&str]) -> std::process::Output {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") {
        panic!("this test needs `pip install 'moto[server]' boto3 duckdb`: {stderr}");
    }
    out
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// An archive of the sample attacks (every alert kind the sample has, with `--block
/// simulate` bans) and a brute force whose user names are not UTF-8.
fn archive(dir: &Path) -> std::path::PathBuf {
    let archive = dir.join("archive");
    let brute = dir.join("brute.log");
    let mut bytes = Vec::new();
    for i in 1..=6 {
        bytes.extend_from_slice(
            format!("Mar 12 10:00:0{i} bastion sshd[42{i}]: Failed password for invalid user r")
                .as_bytes(),
        );
        bytes.extend_from_slice(b"\xffo\xe2\x82t");
        bytes.extend_from_slice(format!("{i} from 198.51.100.9 port 22 ssh2\n").as_bytes());
    }
    std::fs::write(&brute, bytes).expect("brute.log");
    run_ok(&[
        "--tz",
        "UTC",
        "--year",
        "2026",
        "--archive",
        archive.to_str().expect("path"),
        fixture("sample/attacks.log").to_str().expect("path"),
        brute.to_str().expect("path"),
    ]);
    archive
}

fn duckdb_s3(
    moto: &Moto,
    bucket: &str,
    prefix: &str,
    local: Option<&Path>,
) -> std::process::Output {
    let script = root().join("tests/peers/duckdb_s3.py");
    let mut args = vec![
        script.to_str().expect("path").to_owned(),
        "--endpoint".into(),
        moto.endpoint.clone(),
        "--bucket".into(),
        bucket.into(),
        "--prefix".into(),
        prefix.into(),
        "--key-id".into(),
        "test".into(),
        "--secret".into(),
        "test".into(),
    ];
    if let Some(local) = local {
        args.push("--local".into());
        args.push(local.to_str().expect("path").into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(&args)
}

#[test]
fn duckdb_over_s3_answers_the_readme_questions_as_over_the_local_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = archive(dir.path());
    let moto = Moto::start();
    let uploaded = python(&[
        "-c",
        UPLOAD,
        &moto.endpoint,
        "evidence",
        "hosts/bastion",
        archive.to_str().expect("path"),
    ]);
    let count: usize = String::from_utf8_lossy(&json_of_text(&uploaded))
        .trim()
        .parse()
        .expect("a count");
    assert!(count >= 6, "{count} objects uploaded");

    let s3 = json_of(&duckdb_s3(
        &moto,
        "evidence",
        "hosts/bastion",
        Some(&archive),
    ));
    assert_eq!(
        s3["duckdb"], "1.5.5",
        "the pinned DuckDB, not the machine's"
    );
    let local = json_of(&python(&[
        "-c",
        LOCAL,
        archive.to_str().expect("path"),
        root().join("tests/peers").to_str().expect("path"),
    ]));
    assert_ne!(
        local["duckdb"], s3["duckdb"],
        "two DuckDB versions compared"
    );

    // Every sealed file was read from the bucket, with the types the README's table gives.
    for table in ["events", "alerts"] {
        let on_disk = std::fs::read_dir(archive.join(table))
            .expect("table")
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).expect("date").flatten())
            .filter(|f| f.path().extension().is_some_and(|e| e == "parquet"))
            .count();
        assert_eq!(s3["files"][table], on_disk, "{table}");
    }
    let types = &s3["types"]["events"];
    for (column, kind) in [
        ("seq", "BIGINT"),
        ("line", "BIGINT"),
        ("pid", "BIGINT"),
        ("count", "BIGINT"),
        ("bytes", "BIGINT"),
        ("http_status", "INTEGER"),
        ("ts", "TIMESTAMP WITH TIME ZONE"),
        ("received", "TIMESTAMP WITH TIME ZONE"),
        ("ts_inferred", "BOOLEAN"),
        ("raw", "BLOB"),
        ("kind", "VARCHAR"),
        ("src_ip", "VARCHAR"),
        ("message", "VARCHAR"),
        ("date", "DATE"),
    ] {
        assert_eq!(types[column], kind, "events.{column}: {types}");
    }
    let types = &s3["types"]["alerts"];
    for (column, kind) in [
        ("seq", "BIGINT"),
        ("threshold", "BIGINT"),
        ("first_seen", "TIMESTAMP WITH TIME ZONE"),
        ("last_seen", "TIMESTAMP WITH TIME ZONE"),
        ("evidence_seqs", "BIGINT[]"),
        ("rule", "VARCHAR"),
        ("date", "DATE"),
    ] {
        assert_eq!(types[column], kind, "alerts.{column}: {types}");
    }

    let questions = s3["questions"].as_object().expect("questions");
    assert_eq!(questions.len(), 2, "{questions:?}");
    for (name, rows) in questions {
        assert!(
            !rows.as_array().expect("rows").is_empty(),
            "{name}: no rows"
        );
        // The same DuckDB over the local copy, and the machine's DuckDB over it.
        assert_eq!(rows, &s3["local"][name], "{name}: S3 vs local");
        assert_eq!(
            rows, &local["questions"][name],
            "{name}: DuckDB 1.5.5 vs {}",
            local["duckdb"]
        );
    }
    // The brute force with non-UTF-8 names is evidence of an alert, read back from S3.
    let evidence = questions["alerts with their evidence lines"]
        .as_array()
        .expect("rows");
    assert!(
        evidence
            .iter()
            .any(|r| r[3] == "198.51.100.9" && r[6].as_str().is_some_and(|l| l.contains("r?o"))),
        "{evidence:?}"
    );
}

fn json_of_text(out: &std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.clone()
}

#[test]
fn duckdb_over_s3_fails_loudly_where_there_is_no_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = archive(dir.path());
    let moto = Moto::start();
    json_of_text(&python(&[
        "-c",
        UPLOAD,
        &moto.endpoint,
        "evidence",
        "hosts/bastion",
        archive.to_str().expect("path"),
    ]));
    // A mistyped prefix and a missing bucket: an error naming the place, never empty answers
    // that read as "no attacks".
    for (bucket, prefix) in [("evidence", "hosts/bastoin"), ("no-such-bucket", "")] {
        let out = duckdb_s3(&moto, bucket, prefix, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bucket}/{prefix}: {stderr}");
        assert!(out.stdout.is_empty(), "{bucket}/{prefix}: answered anyway");
        assert!(stderr.contains(&format!("s3://{bucket}")), "{stderr}");
    }
    // And a usage error is exit 2, before any connection.
    let out = python(&[
        root()
            .join("tests/peers/duckdb_s3.py")
            .to_str()
            .expect("path"),
        "--endpoint",
        "http://127.0.0.1:1",
        "--bucket",
        "evidence",
        "--key-id",
        "k",
        "--secret",
        "s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
