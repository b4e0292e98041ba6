//! DuckDB reads the archive out of an S3-compatible store: `tests/peers/duckdb_s3.py` (DuckDB
//! 1.5.5 with the PyPI httpfs extension) against a moto server on a loopback port, holding an
//! archive the binary wrote there with `--archive s3://…` into an Object Lock bucket
//! (versioning on), as the README's bucket recipe has it. Its answers to the README's questions must equal the ones
//! the machine's own DuckDB gives over the local copy, and an empty prefix must fail loudly
//! rather than answer "nothing happened".
//!
//! Needs `pip install moto[server] boto3` and the pinned DuckDB pair in
//! /opt/secpipe-duckdb-1.5.5 (tests/run-all.sh installs them); fails, does not skip, without.

mod bucket_support;
mod common;

use std::path::Path;
use std::process::Command;

use bucket_support::Moto;
use common::*;
use serde_json::Value;

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
/// simulate` bans) and a brute force whose user names are not UTF-8, written by the binary
/// into `s3://evidence/hosts/bastion`; returns a local copy of the bucket's archive.
fn archive(dir: &Path, moto: &Moto) -> std::path::PathBuf {
    moto.bucket("evidence", true);
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
    let (code, _, err) = bucket_support::secpipe(
        &moto.endpoint(),
        dir,
        &[
            "--tz",
            "UTC",
            "--year",
            "2026",
            "--archive",
            "s3://evidence/hosts/bastion",
            "--spool",
            "spool",
            fixture("sample/attacks.log").to_str().expect("path"),
            brute.to_str().expect("path"),
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let copy = dir.join("copy");
    bucket_support::download(&moto.endpoint(), "evidence", "hosts/bastion", &copy);
    copy
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
        format!("127.0.0.1:{}", moto.port),
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
    let moto = Moto::start();
    let archive = archive(dir.path(), &moto);

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

#[test]
fn duckdb_over_s3_fails_loudly_where_there_is_no_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let moto = Moto::start();
    archive(dir.path(), &moto);
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
