//! The independent verifier (`tests/independent_verifier.py`, written from
//! docs/archive-format.md with pyarrow, hashlib and `cryptography`, no secpipe code) against
//! archives made by the binary: it recomputes every row leaf, row root, chunk root, the chain
//! and the checkpoint signature, and must agree with what secpipe wrote and what `verify`
//! prints. A bug shared by secpipe's writer and verifier cannot pass it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::secpipe;

const VERIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/independent_verifier.py");

/// Run a Python script file or `-c` code; fails loudly when a module is missing.
fn python(args: &[&str]) -> Output {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "this test needs `pip install pyarrow cryptography` (tests/run-all.sh installs them): {stderr}"
    );
    out
}

/// The independent verdict: (exit status, JSON report).
fn independent(archive: &Path, pubkey: &Path) -> (i32, serde_json::Value) {
    let out = python(&[VERIFIER, s(archive), "--pubkey", s(pubkey)]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the independent verifier printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn secpipe_verify(archive: &Path, pubkey: &Path) -> (i32, serde_json::Value) {
    let out = secpipe()
        .args(["verify", "--json", s(archive), "--pubkey", s(pubkey)])
        .output()
        .expect("run secpipe verify");
    let json = serde_json::from_slice(&out.stdout).expect("verify --json prints JSON");
    (out.status.code().unwrap_or(-1), json)
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Lines that fill many columns: sshd failures (an alerts file too), an accepted login, an
/// nginx request, logfmt data events with counts, a line with no timestamp and a line with
/// bytes that are not UTF-8.
fn varied_input() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..900 {
        out.extend_from_slice(
            format!(
                "Nov 23 10:{:02}:{:02} gate sshd[{}]: Failed password for invalid user u{} from \
                 198.51.100.{} port {} ssh2\n",
                (i / 60) % 60,
                i % 60,
                4000 + i,
                i % 7,
                i % 40,
                40000 + i
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(
        b"Nov 23 11:00:00 gate sshd[5000]: Accepted publickey for alice from 2001:db8::7 port 22 ssh2\n",
    );
    for i in 0..50 {
        out.extend_from_slice(
            format!(
                "203.0.113.{i} - bob [23/Nov/2026:11:00:{:02} +0000] \"GET /search?q=%27{i} HTTP/1.1\" {} {} \"-\" \"curl/8\"\n",
                i % 60,
                if i % 3 == 0 { 403 } else { 200 },
                100 + i
            )
            .as_bytes(),
        );
    }
    for i in 0..40 {
        out.extend_from_slice(
            format!(
                "ts=2026-11-23T11:01:{:02}Z level=info event=data_access operation=read \
                 agent_id=agent{} namespace=ns{} agent_namespace=ns1 count={} ip=192.0.2.{i}\n",
                i % 60,
                i % 3,
                i % 2,
                10 * i
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"a line with no timestamp at all\n");
    out.extend_from_slice(b"Nov 23 11:02:00 gate app[1]: bytes \xff\xfe\x00 that are not UTF-8\n");
    out
}

struct SignedArchive {
    _root: tempfile::TempDir,
    archive: PathBuf,
    key: PathBuf,
    pubkey: PathBuf,
}

fn signed_archive() -> SignedArchive {
    let root = tempfile::tempdir().expect("tempdir");
    let key = root.path().join("archive.key");
    let pubkey = root.path().join("archive.key.pub");
    let out = secpipe()
        .args(["keygen", "--out", s(&key)])
        .output()
        .expect("keygen");
    assert!(out.status.success());
    let input = root.path().join("input.log");
    std::fs::write(&input, varied_input()).expect("write input");
    let archive = root.path().join("archive");
    let out = secpipe()
        .args(["--tz", "UTC", "--year", "2026", "--roll-rows", "400"])
        .args(["--archive", s(&archive), "--key", s(&key), s(&input)])
        .output()
        .expect("archive run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    SignedArchive {
        _root: root,
        archive,
        key,
        pubkey,
    }
}

#[test]
fn rfc6962_test_vectors_pass_in_python() {
    let out = python(&[VERIFIER, "--self-test"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"self_test": "passed", "failures": []}"#
    );
    assert_eq!(out.status.code(), Some(0));
}

/// Every leaf, root, chunk root, link and the signature recomputed from the format text agree
/// with the archive the binary wrote, and with what `secpipe verify` reports.
#[test]
fn independent_verifier_agrees_with_secpipe_on_a_pristine_archive() {
    let a = signed_archive();
    let (code, python) = independent(&a.archive, &a.pubkey);
    assert_eq!(code, 0, "{python:#}");
    assert_eq!(python["status"], "intact", "{python:#}");
    assert_eq!(python["problems"], serde_json::json!([]), "{python:#}");
    assert_eq!(python["signature"], "good", "{python:#}");
    let (code, rust) = secpipe_verify(&a.archive, &a.pubkey);
    assert_eq!(code, 0, "{rust:#}");
    for field in ["archive", "head", "manifests", "rows"] {
        assert_eq!(
            python[field], rust[field],
            "{field}: {python:#} vs {rust:#}"
        );
    }
    let files = python["files"].as_array().expect("files");
    assert_eq!(files.len() as u64, rust["files"].as_u64().unwrap_or(0));
    // Several event files, and an alerts file whose rows hold lists and timestamps.
    assert!(
        files.iter().filter(|f| f["table"] == "events").count() >= 3,
        "{python:#}"
    );
    assert!(files.iter().any(|f| f["table"] == "alerts"), "{python:#}");
    assert_eq!(python["signed_lines"], python["manifests"], "{python:#}");
}

/// A row changed with pyarrow, its file's metadata carried over: both verifiers say tampered.
#[test]
fn both_verifiers_catch_a_changed_row() {
    let a = signed_archive();
    let (_, before) = independent(&a.archive, &a.pubkey);
    let target = before["files"][1]["path"]
        .as_str()
        .expect("path")
        .to_owned();
    let edit = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
path = sys.argv[1]
t = pq.read_table(path)
users = t.column("user").to_pylist()
users[7] = "mallory"
i = t.schema.get_field_index("user")
t = t.set_column(i, t.schema.field("user"), pa.array(users, type=t.schema.field("user").type))
kv = {k: v for k, v in pq.read_metadata(path).metadata.items() if k != b"ARROW:schema"}
pq.write_table(t.replace_schema_metadata(kv), path, compression="zstd")
"#;
    let out = python(&["-c", edit, s(&a.archive.join(&target))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, python) = independent(&a.archive, &a.pubkey);
    assert_eq!(code, 1, "{python:#}");
    let problems = python["problems"].to_string();
    assert!(
        problems.contains(&target) && problems.contains("row_root"),
        "{python:#}"
    );
    let (code, rust) = secpipe_verify(&a.archive, &a.pubkey);
    assert_eq!(code, 1, "{rust:#}");
    assert_eq!(rust["problems"][0]["file"], target.as_str(), "{rust:#}");
}

/// A forged line appended after the signed head (the issue's attack, done by hand): both
/// verifiers call it unsigned, with the same span of lines.
#[test]
fn both_verifiers_name_the_same_unsigned_lines() {
    let a = signed_archive();
    let checkpoint = std::fs::read(a.archive.join("audit/checkpoint")).expect("checkpoint");
    let text = String::from_utf8(checkpoint.clone()).expect("text");
    let body: Vec<&str> = text.split('\n').take(3).collect();
    std::fs::write(
        a.archive.join("audit/checkpoint"),
        format!("{}\n", body.join("\n")),
    )
    .expect("strip the signature");
    let forged = a._root.path().join("forged.log");
    std::fs::write(
        &forged,
        "Nov 23 12:00:00 gate sshd[999]: Accepted password for admin from 10.9.9.9 port 4242 ssh2\n",
    )
    .expect("write");
    let out = secpipe()
        .args([
            "--tz",
            "UTC",
            "--year",
            "2026",
            "--archive",
            s(&a.archive),
            s(&forged),
        ])
        .output()
        .expect("unsigned run");
    assert!(out.status.success());
    std::fs::write(a.archive.join("audit/checkpoint"), checkpoint).expect("put it back");

    let (code, python) = independent(&a.archive, &a.pubkey);
    assert_eq!(code, 3, "{python:#}");
    assert_eq!(python["status"], "unsigned", "{python:#}");
    let (code, rust) = secpipe_verify(&a.archive, &a.pubkey);
    assert_eq!(code, 3, "{rust:#}");
    assert_eq!(rust["status"], "unsigned", "{rust:#}");
    let span = &python["unsigned"][0];
    assert_eq!(span["first_line"], rust["unsigned"][0]["first_line"]);
    assert_eq!(span["last_line"], rust["unsigned"][0]["last_line"]);
    assert_eq!(span["files"][0], rust["unsigned"][0]["files"][0]["file"]);
}

/// A writer bug that secpipe's verifier shares: the row roots are computed without the 0x01
/// prefix of interior nodes, and everything else is made consistent with them (file metadata,
/// file hash, manifests, chain, a valid signature with the archive's key). `secpipe verify`
/// trusts the sealed row_root of a file whose bytes match its manifest, so only a verifier that
/// recomputes the roots from the format text catches it.
#[test]
fn a_wrong_row_root_written_consistently_is_caught_independently() {
    let a = signed_archive();
    let forge = r#"
import base64, hashlib, json, sys, os
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.serialization import load_pem_private_key
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import independent_verifier as iv
archive, key = sys.argv[2], sys.argv[3]

def buggy_mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(buggy_mth(leaves[:k]) + buggy_mth(leaves[k:])).digest()

path = os.path.join(archive, "audit", "manifests.jsonl")
lines = [json.loads(l) for l in open(path, "rb").read().split(b"\n") if l]
out, prev = [], "0" * 64
for m in lines:
    m["prev"] = prev
    if m["kind"] == "data":
        full = os.path.join(archive, m["path"])
        table = pq.read_table(full)
        archive_id = bytes.fromhex(m["archive"])
        columns = iv.TABLES[m["table"]]
        leaves = [iv.row_leaf(archive_id, seq, row) for row, seq in iv.canonical_rows(table, columns)]
        m["row_root"] = buggy_mth(leaves).hex()
        kv = {k: v for k, v in pq.read_metadata(full).metadata.items() if k != b"ARROW:schema"}
        kv[b"secpipe.row_root"] = m["row_root"].encode()
        kv[b"secpipe.prev"] = prev.encode()
        pq.write_table(table.replace_schema_metadata(kv), full, compression="zstd")
        data = open(full, "rb").read()
        m["sha256"], m["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    line = json.dumps(m, separators=(",", ":")).encode()
    out.append(line)
    prev = hashlib.sha256(line).hexdigest()
open(path, "wb").write(b"".join(l + b"\n" for l in out))
body = f"secpipe/archive/{lines[0]['archive']}\n{len(out)}\n{prev}\n"
private = load_pem_private_key(open(key, "rb").read(), None)
raw = private.public_key().public_bytes_raw()
sig = base64.b64encode(private.sign(body.encode())).decode()
keyhash = hashlib.sha256(raw).hexdigest()[:16]
open(os.path.join(archive, "audit", "checkpoint"), "w", encoding="utf-8").write(
    body + "\n\u2014 secpipe " + keyhash + " " + sig + "\n")
"#;
    let out = python(&["-c", forge, VERIFIER, s(&a.archive), s(&a.key)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, rust) = secpipe_verify(&a.archive, &a.pubkey);
    // The forgery is consistent everywhere secpipe's fast path looks; whatever it says, the
    // independent check must not agree that the archive is intact.
    eprintln!("secpipe verify on the consistent forgery: exit {code}: {rust}");
    let (code, python) = independent(&a.archive, &a.pubkey);
    assert_eq!(code, 1, "{python:#}");
    assert_eq!(python["signature"], "good", "{python:#}");
    let problems: Vec<String> = python["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(!problems.is_empty(), "{python:#}");
    assert!(
        problems.iter().all(|p| p.contains("row_root")),
        "only the row roots are wrong: {python:#}"
    );
}

/// A signature lost behind the chain, then a run with the key that records the lines it does
/// not vouch for (`unsigned_lines` of its `resume` line): both verifiers name the same span,
/// though the checkpoint now covers every line.
#[test]
fn both_verifiers_keep_naming_lines_a_later_run_did_not_vouch_for() {
    let a = signed_archive();
    let old_checkpoint = std::fs::read(a.archive.join("audit/checkpoint")).expect("checkpoint");
    let more = a._root.path().join("more.log");
    std::fs::write(
        &more,
        "Nov 23 12:00:00 gate sshd[999]: Failed password for root from 10.9.9.9 port 1 ssh2\n",
    )
    .expect("write");
    let run_with_key = || {
        let out = secpipe()
            .args(["--tz", "UTC", "--year", "2026", "--archive", s(&a.archive)])
            .args(["--key", s(&a.key), s(&more)])
            .output()
            .expect("run with the key");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run_with_key();
    std::fs::write(a.archive.join("audit/checkpoint"), old_checkpoint).expect("put it back");
    run_with_key();

    let (code, python) = independent(&a.archive, &a.pubkey);
    assert_eq!(code, 3, "{python:#}");
    assert_eq!(python["signed_lines"], python["manifests"], "{python:#}");
    let (code, rust) = secpipe_verify(&a.archive, &a.pubkey);
    assert_eq!(code, 3, "{rust:#}");
    let spans = |report: &serde_json::Value, files: &dyn Fn(&serde_json::Value) -> Vec<String>| {
        report["unsigned"]
            .as_array()
            .expect("unsigned")
            .iter()
            .map(|span| {
                (
                    span["first_line"].clone(),
                    span["last_line"].clone(),
                    files(span),
                )
            })
            .collect::<Vec<_>>()
    };
    let python_spans = spans(&python, &|span| {
        span["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f.as_str().unwrap_or("").to_owned())
            .collect()
    });
    let rust_spans = spans(&rust, &|span| {
        span["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["file"].as_str().unwrap_or("").to_owned())
            .collect()
    });
    assert_eq!(python_spans.len(), 1, "{python:#}");
    assert_eq!(python_spans, rust_spans);
}
