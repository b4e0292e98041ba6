//! `secpipe export ARCHIVE --ocsf json|parquet`: every exported row has the fields OCSF 1.3.0
//! requires (fixtures/ocsf/required-1.3.0.json), each file holds one class, and every row
//! traces to a verified archive row: its `metadata.uid` (seq) and `unmapped` leaf hash equal
//! the leaf recomputed by Python from the archive's own rows (tests/peers/ocsf_check_export.py
//! reuses tests/independent_verifier.py). Attacks: hostile names, a tampered archive, a
//! Security Lake name that climbs out of the output directory, many days at once for memory.

mod archive_support;
mod common;

use std::path::{Path, PathBuf};

use common::{fixture, secpipe};

const MIXED_LOG: &str = r#"2026-01-01T10:00:00Z web1 sshd[1]: Failed password for invalid user admin from 203.0.113.7 port 22 ssh2
2026-01-01T10:00:01Z web1 sshd[2]: Failed password for root from 203.0.113.7 port 22 ssh2
2026-01-02T10:00:05Z web1 sshd[6]: Accepted password for bob from 198.51.100.2 port 22 ssh2
203.0.113.9 - - [02/Jan/2026:10:00:00 +0000] "GET /index.php?id=1%27%20OR%201=1-- HTTP/1.1" 200 512 "-" "curl"
203.0.113.9 - - [02/Jan/2026:10:00:01 +0000] "POST /login HTTP/1.1" 403 12 "-" "curl"
{"ts":"2026-01-02T10:00:02Z","event":"api_key_revoke","ip":"203.0.113.10","user":"mallory"}
{"ts":"2026-01-02T10:00:03Z","event":"data_access","operation":"read","agent_id":"agent-7","namespace":"ns-a","agent_namespace":"ns-b","count":50,"ip":"10.0.0.5"}
{"ts":"2026-01-02T10:00:04Z","event":"data_access","operation":"delete","agent_id":"agent-7","namespace":"ns-b","agent_namespace":"ns-b","count":5,"ip":"10.0.0.5"}
{"ts":"2026-01-02T10:00:05Z","event":"vector_search","agent_id":"agent-7","namespace":"ns-b","ip":"10.0.0.5"}
2026-01-02T10:00:06Z web1 kernel: something else
"#;

/// Archive `log` with the binary.
fn archive(dir: &Path, log: &str) -> PathBuf {
    let input = dir.join("in.log");
    std::fs::write(&input, log).expect("write log");
    let arch = dir.join("arch");
    common::run_ok(&[
        "run",
        "--tz",
        "UTC",
        "--alerts",
        "/dev/null",
        "--archive",
        arch.to_str().expect("utf-8"),
        input.to_str().expect("utf-8"),
    ]);
    arch
}

/// `secpipe export` with `args`: exit code and stderr.
fn export(arch: &Path, out: &Path, args: &[&str]) -> (i32, String) {
    let run = secpipe()
        .arg("export")
        .arg(arch)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("export");
    (
        run.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// The Python check of an export directory (run as a file: it imports
/// tests/independent_verifier.py from beside it).
fn check(arch: &Path, out: &Path) -> serde_json::Value {
    let run = std::process::Command::new("python3")
        .arg(common::root().join("tests/peers/ocsf_check_export.py"))
        .arg(arch)
        .arg(out)
        .arg(fixture("ocsf/required-1.3.0.json"))
        .output()
        .expect("python3 must be installed for this test");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the checker failed (pip install pyarrow cryptography?): {stderr}"
    );
    serde_json::from_slice(&run.stdout).expect("checker JSON")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn json_and_parquet_rows_have_required_fields_one_class_per_file_and_trace_to_archive_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path(), MIXED_LOG);
    for (format, lake) in [
        ("json", None),
        ("parquet", None),
        (
            "parquet",
            Some("source=sp,region=eu-west-1,account=123456789012"),
        ),
    ] {
        let out = dir.path().join(format!("out-{format}-{}", lake.is_some()));
        let mut args = vec!["--ocsf", format];
        if let Some(lake) = lake {
            args.extend(["--security-lake", lake]);
        }
        let (code, stderr) = export(&arch, &out, &args);
        assert_eq!(code, 0, "{stderr}");
        // The one line no class takes is counted and named, not silently dropped.
        assert!(
            stderr.contains("not exported (no OCSF 1.3.0 class): other 1"),
            "{stderr}"
        );
        let summary = check(&arch, &out);
        assert_eq!(summary["archive_rows"], 10, "{summary}");
        assert_eq!(summary["rows"], 9, "{summary}");
        assert_eq!(
            summary["seqs"],
            serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(summary["traced"], 9, "{summary}");
        assert_eq!(summary["missing"], serde_json::json!([]), "{summary}");
        assert_eq!(
            summary["multi_class_files"],
            serde_json::json!([]),
            "{summary}"
        );
        assert_eq!(summary["partial_files"], serde_json::json!([]), "{summary}");
        assert_eq!(
            summary["rows_by_class"],
            serde_json::json!({"3002": 3, "4002": 2, "6003": 1, "6005": 3}),
            "{summary}"
        );
        let files: Vec<String> = summary["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f.as_str().expect("name").to_owned())
            .collect();
        if lake.is_some() {
            assert!(files.contains(&"ext/sp_authentication/region=eu-west-1/accountId=123456789012/eventDay=20260101/sp_authentication_20260101_00000.parquet".to_owned()), "{files:?}");
        } else {
            assert!(
                files.contains(&format!(
                    "authentication/eventDay=20260102/part-00000.{format}"
                )),
                "{files:?}"
            );
        }
        assert_eq!(files.len(), 5, "{files:?}");
    }
}

#[test]
fn a_changed_leaf_or_seq_in_the_export_is_caught_by_the_trace() {
    // The check must be able to fail: forge one exported row's leaf and see it untraced.
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path(), MIXED_LOG);
    let out = dir.path().join("out");
    let (code, stderr) = export(&arch, &out, &["--ocsf", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let file = out.join("authentication/eventDay=20260101/part-00000.json");
    let text = std::fs::read_to_string(&file).expect("read");
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    lines[0]["metadata"]["uid"] = serde_json::json!("1");
    let forged: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&file, forged).expect("write");
    let summary = check(&arch, &out);
    assert_eq!(summary["traced"], 8, "{summary}");
    assert_eq!(
        summary["untraced"].as_array().map(Vec::len),
        Some(1),
        "{summary}"
    );
}

#[test]
fn hostile_names_stay_exact_string_values_in_both_formats() {
    let evil_json = "eve\"},\"class_uid\":1,\"x\":{\"a\":\"\n\u{202e}toor\u{200b}\u{7f}";
    let evil_sshd = "x\",\"class_uid\":1,\"y\":\"";
    let log = format!(
        "{{\"ts\":\"2026-01-03T03:00:00Z\",\"event\":\"login_failed\",\"ip\":\"198.51.100.7\",\"user\":{}}}\n\
         2026-01-03T03:00:01Z web1 sshd[9]: Failed password for invalid user {evil_sshd} from 198.51.100.8 port 22 ssh2\n",
        serde_json::to_string(evil_json).expect("json")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path(), &log);
    let out_json = dir.path().join("j");
    let out_parquet = dir.path().join("p");
    assert_eq!(export(&arch, &out_json, &["--ocsf", "json"]).0, 0);
    assert_eq!(export(&arch, &out_parquet, &["--ocsf", "parquet"]).0, 0);

    let file = out_json.join("authentication/eventDay=20260103/part-00000.json");
    let text = std::fs::read_to_string(&file).expect("read");
    for bad in ['\u{202e}', '\u{200b}', '\u{7f}'] {
        assert!(!text.contains(bad), "raw {bad:?} in {text}");
    }
    let mut names = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(v["class_uid"], 3002);
        assert!(v.get("x").is_none() && v.get("y").is_none(), "{line}");
        names.push(v["user"]["name"].as_str().expect("name").to_owned());
    }
    names.sort();
    let mut expected = vec![evil_json.to_owned(), evil_sshd.to_owned()];
    expected.sort();
    assert_eq!(names, expected);

    let parquet = out_parquet.join("authentication/eventDay=20260103/part-00000.parquet");
    let text = archive_support::python(
        "import json, sys, pyarrow.parquet as pq\n\
         t = pq.read_table(sys.argv[1])\n\
         print(json.dumps({'uids': sorted(set(t.column('class_uid').to_pylist())),\n\
                           'names': sorted(r['name'] for r in t.column('user').to_pylist())}))",
        &[parquet.to_str().expect("path")],
    );
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["uids"], serde_json::json!([3002]));
    assert_eq!(v["names"], serde_json::json!(expected));
}

#[test]
fn a_tampered_archive_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path(), MIXED_LOG);
    let events = files_under(&arch.join("events"));
    let target = events
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("an events file");
    // Flip one byte inside the file, as an editor of the evidence would.
    let mut bytes = std::fs::read(target).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(target, bytes).expect("write");
    for format in ["json", "parquet"] {
        let out = dir.path().join(format!("out-{format}"));
        let (code, stderr) = export(&arch, &out, &["--ocsf", format]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("tampered"), "{stderr}");
        assert!(
            files_under(&out).is_empty(),
            "nothing exported: {:?}",
            files_under(&out)
        );
    }
}

#[test]
fn security_lake_names_cannot_leave_the_output_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path(), MIXED_LOG);
    let out = dir.path().join("out");
    for spec in [
        "source=../../escape,region=us-east-1,account=123456789012",
        "source=sp,region=../x,account=123456789012",
        "source=sp,region=us-east-1,account=12345678901/",
        "source=sp,region=us-east-1",
    ] {
        let (code, stderr) = export(&arch, &out, &["--ocsf", "parquet", "--security-lake", spec]);
        assert_eq!(code, 2, "{spec}: {stderr}");
        assert!(stderr.contains("--security-lake"), "{stderr}");
    }
    assert!(!dir.path().join("escape").exists());
    assert!(files_under(&out).is_empty());
}

#[test]
fn the_same_archive_exports_to_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path(), MIXED_LOG);
    let mut seen: Vec<Vec<(PathBuf, Vec<u8>)>> = Vec::new();
    for n in 0..2 {
        let out = dir.path().join(format!("out{n}"));
        assert_eq!(export(&arch, &out, &["--ocsf", "parquet"]).0, 0);
        seen.push(
            files_under(&out)
                .into_iter()
                .map(|p| {
                    let bytes = std::fs::read(&p).expect("read");
                    (p.strip_prefix(&out).expect("under out").to_owned(), bytes)
                })
                .collect(),
        );
    }
    assert!(!seen[0].is_empty());
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn an_existing_export_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = archive(dir.path(), MIXED_LOG);
    let out = dir.path().join("out");
    assert_eq!(export(&arch, &out, &["--ocsf", "json"]).0, 0);
    let before = files_under(&out);
    let first = std::fs::read(&before[0]).expect("read");
    let (code, stderr) = export(&arch, &out, &["--ocsf", "json"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(&before[0]).expect("read"), first);
}
