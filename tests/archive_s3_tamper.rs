//! Tamper trials on an archive in an S3 bucket (a real moto server): `secpipe verify
//! s3://…` recomputes the chain on the bucket and reports, per relied-on object, its versions
//! and Object Lock. Each trial tampers the way someone with write access to the bucket can:
//! a new version over a sealed file, a delete marker, a manifest object's versions deleted,
//! keys planted with terminal escapes in their names.
//!
//! The archive is written into the bucket by the binary (`--archive s3://…`); boto3
//! (`tests/peers/s3_bucket.py`) then tampers with it.

mod bucket_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use bucket_support::Moto;
use serde_json::Value;

/// An archive in a bucket, a local copy of it, and the public key that signs it.
struct Local {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    pubkey: PathBuf,
}

/// A signed archive of the sample attacks, several files, written by the binary into
/// `s3://bucket/prefix`; `archive` is a local copy of it (for the names the chain relies on).
fn archive_in(moto: &Moto, bucket: &str, prefix: &str) -> Local {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("archive.key");
    common::run_ok(&["keygen", "--out", key.to_str().expect("utf-8")]);
    let sample = common::fixture("sample/attacks.log");
    let (code, _, err) = bucket_support::secpipe(
        &moto.endpoint(),
        dir.path(),
        &[
            "--archive",
            &format!("s3://{bucket}/{prefix}"),
            "--spool",
            "spool",
            "--key",
            key.to_str().expect("utf-8"),
            "--roll-rows",
            "500",
            "--alerts",
            "/dev/null",
            sample.to_str().expect("utf-8"),
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let archive = dir.path().join("copy");
    bucket_support::download(&moto.endpoint(), bucket, prefix, &archive);
    Local {
        pubkey: dir.path().join("archive.key.pub"),
        archive,
        _dir: dir,
    }
}

/// The archive objects the chain relies on, by the local archive: every sealed file, one
/// object per manifest line, and the checkpoint.
fn relied_on(archive: &Path) -> Vec<String> {
    let manifests =
        std::fs::read_to_string(archive.join("audit/manifests.jsonl")).expect("manifests");
    // The current checkpoint is the one named by the count of lines it covers: all of them.
    let mut names = vec![format!(
        "audit/checkpoints/{:08}.note",
        manifests.lines().count()
    )];
    for (i, line) in manifests.lines().enumerate() {
        names.push(format!("audit/manifests/{:08}.json", i + 1));
        let manifest: Value = serde_json::from_str(line).expect("a manifest line");
        if let Some(path) = manifest["path"].as_str() {
            names.push(path.to_owned());
        }
    }
    names.sort();
    names
}

/// The first sealed events file of the archive.
fn first_events_file(archive: &Path) -> String {
    relied_on(archive)
        .into_iter()
        .find(|n| n.starts_with("events/"))
        .expect("an events file")
}

fn verify(moto: &Moto, url: &str, pubkey: &Path, json: bool) -> Output {
    let mut cmd = common::secpipe();
    cmd.envs(moto.env())
        .args(["verify", url, "--pubkey", pubkey.to_str().expect("utf-8")]);
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run secpipe verify")
}

fn verify_json(moto: &Moto, url: &str, pubkey: &Path) -> (i32, Value) {
    let out = verify(moto, url, pubkey, true);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("an exit code"), report)
}

/// The storage section's entry for archive object `name`.
fn object<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["storage"]["objects"]
        .as_array()
        .expect("storage.objects")
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no storage entry for {name}: {report}"))
}

fn problem_classes_for(report: &Value, file: &str) -> Vec<String> {
    report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["file"] == file)
        .map(|p| p["class"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn intact_locked_bucket_shows_one_version_and_compliance_retention_for_every_relied_object() {
    let moto = Moto::start();
    moto.locked_bucket("evidence", 30);
    let local = archive_in(&moto, "evidence", "host-1");
    let (code, report) = verify_json(&moto, "s3://evidence/host-1", &local.pubkey);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "intact");
    assert_eq!(report["signature"], "good");
    let expected = relied_on(&local.archive);
    assert!(expected.len() > 5, "several files: {expected:?}");
    // The earlier checkpoints (one per count the writer signed) are chain objects too, and
    // examined like the current one.
    let checkpoints = bucket_support::keys(&moto.endpoint(), "evidence", "host-1")
        .iter()
        .filter(|(k, _)| k.starts_with("audit/checkpoints/"))
        .count();
    let chain_objects = expected.len() + checkpoints - 1;
    let storage = &report["storage"];
    assert_eq!(storage["intact"], chain_objects);
    assert_eq!(storage["bucket"]["versioning"], "Enabled");
    assert_eq!(storage["bucket"]["default_mode"], "COMPLIANCE");
    assert_eq!(storage["bucket"]["default_period"], "30 days");
    let today = jiff::Timestamp::now();
    for name in &expected {
        let entry = object(&report, name);
        assert_eq!(entry["state"], "intact", "{entry}");
        assert_eq!(entry["versions"], 1, "{entry}");
        assert_eq!(entry["lock"]["mode"], "COMPLIANCE", "{entry}");
        let until: jiff::Timestamp = entry["lock"]["retain_until"]
            .as_str()
            .expect("a retain-until date")
            .parse()
            .expect("an RFC 3339 retain-until");
        // Default retention of 30 days from the upload, which was just now.
        let days = until.duration_since(today).as_hours() / 24;
        assert!((28..=30).contains(&days), "{entry}: {days} days");
    }
    // The text report says the same to a person.
    let text = String::from_utf8_lossy(
        &verify(&moto, "s3://evidence/host-1", &local.pubkey, false).stdout,
    )
    .into_owned();
    assert!(
        text.contains("default retention COMPLIANCE 30 days"),
        "{text}"
    );
    assert!(
        text.contains(&format!("lock COMPLIANCE: {chain_objects} object(s)")),
        "{text}"
    );
    assert!(text.trim_end().ends_with("INTACT"), "{text}");
}

#[test]
fn overwriting_a_sealed_file_is_reported_overwritten_and_tampered() {
    let moto = Moto::start();
    moto.locked_bucket("evidence", 30);
    let local = archive_in(&moto, "evidence", "host-1");
    let victim = first_events_file(&local.archive);
    // Object Lock keeps the sealed version but allows a new one on top.
    moto.bucket_ok(&["overwrite", "evidence", &format!("host-1/{victim}")]);
    let (code, report) = verify_json(&moto, "s3://evidence/host-1", &local.pubkey);
    assert_eq!(code, 1, "{report}");
    let entry = object(&report, &victim);
    assert_eq!(entry["state"], "overwritten", "{entry}");
    assert_eq!(entry["versions"], 2, "{entry}");
    assert_eq!(entry["current_is_sealed_bytes"], false, "{entry}");
    // The sealed (oldest) version is still locked.
    assert_eq!(entry["lock"]["mode"], "COMPLIANCE", "{entry}");
    assert_eq!(
        problem_classes_for(&report, &victim),
        ["modified"],
        "{report}"
    );
}

#[test]
fn a_restored_identical_version_is_reported_but_the_cryptographic_verdict_stands() {
    let moto = Moto::start();
    moto.locked_bucket("evidence", 30);
    let local = archive_in(&moto, "evidence", "host-1");
    let victim = first_events_file(&local.archive);
    let key = format!("host-1/{victim}");
    moto.bucket_ok(&["overwrite", "evidence", &key]);
    moto.bucket_ok(&["restore", "evidence", &key]);
    let (code, report) = verify_json(&moto, "s3://evidence/host-1", &local.pubkey);
    // What a reader gets is byte for byte what was sealed: intact, with a warning.
    assert_eq!(code, 0, "{report}");
    let entry = object(&report, &victim);
    assert_eq!(entry["state"], "overwritten", "{entry}");
    assert_eq!(entry["versions"], 3, "{entry}");
    assert_eq!(entry["current_is_sealed_bytes"], true, "{entry}");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains(&victim) && warnings.contains("wrote over a sealed object"),
        "{warnings}"
    );
}

#[test]
fn a_delete_marker_on_a_sealed_file_is_reported_deleted_and_tampered() {
    let moto = Moto::start();
    moto.locked_bucket("evidence", 30);
    let local = archive_in(&moto, "evidence", "host-1");
    let victim = first_events_file(&local.archive);
    moto.bucket_ok(&["delete", "evidence", &format!("host-1/{victim}")]);
    let (code, report) = verify_json(&moto, "s3://evidence/host-1", &local.pubkey);
    assert_eq!(code, 1, "{report}");
    let entry = object(&report, &victim);
    assert_eq!(entry["state"], "deleted", "{entry}");
    assert_eq!(entry["delete_markers"], 1, "{entry}");
    // The sealed version is below the marker, still locked: it can be recovered.
    assert_eq!(entry["versions"], 1, "{entry}");
    assert_eq!(entry["lock"]["mode"], "COMPLIANCE", "{entry}");
    assert_eq!(
        problem_classes_for(&report, &victim),
        ["missing_file"],
        "{report}"
    );
}

#[test]
fn dropping_a_manifest_object_from_an_unlocked_bucket_is_caught() {
    let moto = Moto::start();
    moto.unlocked_bucket("evidence");
    let local = archive_in(&moto, "evidence", "host-1");
    let victim = "audit/manifests/00000002.json";
    // Without Object Lock every version can be deleted: no trace is left in the listing.
    moto.bucket_ok(&["drop", "evidence", &format!("host-1/{victim}")]);
    let (code, report) = verify_json(&moto, "s3://evidence/host-1", &local.pubkey);
    assert_eq!(code, 1, "{report}");
    let entry = object(&report, victim);
    assert_eq!(entry["state"], "missing", "{entry}");
    assert_eq!(entry["versions"], 0, "{entry}");
    // The chain, recomputed on the bucket, breaks where the line was.
    let first = &report["problems"][0];
    assert_eq!(first["class"], "broken_link", "{report}");
    assert_eq!(first["row"], 2, "{report}");
    // No object of the unlocked bucket carries a lock, and the report says so.
    assert_eq!(report["storage"]["bucket"]["object_lock"], false);
    let locks = report["storage"]["locks"].as_array().expect("locks");
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(locks[0]["mode"], "unlocked");
}

#[test]
fn a_compliance_locked_bucket_refuses_to_drop_a_manifest_object() {
    let moto = Moto::start();
    moto.locked_bucket("evidence", 30);
    let local = archive_in(&moto, "evidence", "host-1");
    let victim = "audit/manifests/00000002.json";
    let out = moto.bucket_tool(&["drop", "evidence", &format!("host-1/{victim}")]);
    assert_eq!(out.status.code(), Some(3), "the drop must be refused");
    assert!(String::from_utf8_lossy(&out.stdout).contains("refused"));
    let (code, report) = verify_json(&moto, "s3://evidence/host-1", &local.pubkey);
    assert_eq!(code, 0, "{report}");
    assert_eq!(object(&report, victim)["state"], "intact");
}

#[test]
fn planted_keys_with_terminal_escapes_are_counted_and_printed_escaped() {
    let moto = Moto::start();
    moto.locked_bucket("evidence", 30);
    let local = archive_in(&moto, "evidence", "host-1");
    // One planted where manifests live (it must not be read as a chain line), one beside
    // the sealed files.
    let planted = [
        "host-1/audit/manifests/\u{1b}[2J\u{1b}[31mFAKE.json",
        "host-1/events/x\u{1b}]0;owned\u{7}\u{202e}lqtq.parquet",
    ];
    for key in planted {
        moto.bucket_ok(&["put", "evidence", key, "planted"]);
    }
    let out = verify(&moto, "s3://evidence/host-1", &local.pubkey, false);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(text.contains("2 other key(s) under the prefix"), "{text}");
    assert!(
        text.contains("audit/manifests/\\u{1b}[2J\\u{1b}[31mFAKE.json"),
        "{text}"
    );
    // The chain itself is whole; the planted events file is a file no manifest names.
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("TAMPERED  extra_file in events/x\\u{1b}]0;owned"),
        "{text}"
    );
    assert!(!text.contains("broken_link"), "{text}");
}
