//! The tamper matrix: every kind of tampering is caught with the right class and location,
//! a pristine archive always verifies, and no single-byte change anywhere goes unnoticed.

mod archive_support;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use secpipe::archive::keys;
use secpipe::archive::manifest::{Checkpoint, line_hash, split_lines};
use secpipe::archive::verify::{ProblemClass, VerifyOptions, VerifyReport, verify};

use archive_support::*;

/// A signed archive of 450 events in five files (100 rows each) plus one alerts file, and
/// the key it was signed with. The key lives outside the archive.
struct Fixture {
    _root: tempfile::TempDir,
    dir: PathBuf,
    key: PathBuf,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("archive.key");
    keys::keygen(&key).unwrap();
    let dir = root.path().join("archive");
    build(&dir, 450, 100, Some(&key));
    Fixture {
        dir,
        key,
        _root: root,
    }
}

impl Fixture {
    fn opts(&self) -> VerifyOptions {
        VerifyOptions {
            pubkey: Some(keys::pub_path(&self.key)),
            expect_head: None,
        }
    }
    fn verify(&self) -> VerifyReport {
        verify(&self.dir, &self.opts())
    }
    fn file(&self, index: usize) -> String {
        parquet_files(&self.dir, "events")[index].clone()
    }
}

#[track_caller]
fn assert_caught(report: &VerifyReport, class: ProblemClass, file: &str) {
    assert_eq!(report.exit_code(), 1, "{report}");
    let first = report.first_problem().unwrap();
    assert_eq!(first.class, class, "{report}");
    assert_eq!(first.file, file, "{report}");
}

#[test]
fn pristine_archive_verifies_with_its_key() {
    let f = fixture();
    let report = f.verify();
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(
        report.signature,
        secpipe::archive::verify::SignatureState::Good
    );
    assert_eq!(report.files, 6);
    assert_eq!(report.rows, 452);
    assert!(report.to_json().contains("\"status\":\"intact\""));
}

#[test]
fn flipped_byte_in_a_file_is_modified() {
    let f = fixture();
    let target = f.file(2);
    let path = f.dir.join(&target);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    assert_caught(&f.verify(), ProblemClass::Modified, &target);
}

const EDIT_ROWS: &str = r#"
import sys
import pyarrow as pa, pyarrow.parquet as pq
path, op = sys.argv[1], sys.argv[2]
t = pq.read_table(path)
if op == "modify":
    i = t.schema.get_field_index("user")
    users = t.column("user").to_pylist()
    users[int(sys.argv[3]) if len(sys.argv) > 3 else 5] = "mallory"
    t = t.set_column(i, t.schema.field("user"), pa.array(users, type=t.schema.field("user").type))
elif op == "delete":
    t = pa.concat_tables([t.slice(0, 5), t.slice(6)])
elif op == "insert":
    t = pa.concat_tables([t.slice(0, 4), t.slice(3, 1), t.slice(4)])
elif op == "swap":
    t = pa.concat_tables([t.slice(0, 2), t.slice(3, 1), t.slice(2, 1), t.slice(4)])
if "keep_metadata" in sys.argv[3:]:
    # Carry the file's key-value metadata over (pyarrow drops it by default).
    kv = {k: v for k, v in pq.read_metadata(path).metadata.items() if k != b"ARROW:schema"}
    t = t.replace_schema_metadata(kv)
pq.write_table(t, path, compression="zstd")
"#;

fn edit_rows(f: &Fixture, index: usize, op: &str) -> String {
    let target = f.file(index);
    python(EDIT_ROWS, &[f.dir.join(&target).to_str().unwrap(), op]);
    target
}

#[test]
fn row_rewritten_with_pyarrow_is_modified() {
    let f = fixture();
    let target = edit_rows(&f, 1, "modify");
    let report = f.verify();
    assert_caught(&report, ProblemClass::Modified, &target);
    assert!(
        report.to_string().contains("row content was changed"),
        "{report}"
    );
}

/// When the rewritten file keeps its `secpipe.chunk_roots` metadata, the changed row is
/// narrowed down to its 1024-row chunk (pyarrow drops the metadata by default: then the row is
/// not named, as in `row_rewritten_with_pyarrow_is_modified`).
#[test]
fn modified_row_is_narrowed_to_its_chunk() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 3000, 1_000_000, None);
    let target = parquet_files(dir.path(), "events")[0].clone();
    python(
        EDIT_ROWS,
        &[
            dir.path().join(&target).to_str().unwrap(),
            "modify",
            "2500",
            "keep_metadata",
        ],
    );
    let report = verify(dir.path(), &VerifyOptions::default());
    assert_caught(&report, ProblemClass::Modified, &target);
    let first = report.first_problem().unwrap();
    assert_eq!(
        (first.row, first.row_end, first.seq),
        (Some(2048), Some(2999), Some(2048)),
        "{report}"
    );
    assert!(report.to_string().contains("rows 2048..=2999"), "{report}");
}

#[test]
fn row_deleted_with_pyarrow_is_deleted_at_its_seq() {
    let f = fixture();
    let target = edit_rows(&f, 1, "delete");
    let report = f.verify();
    assert_caught(&report, ProblemClass::Deleted, &target);
    let first = report.first_problem().unwrap();
    assert_eq!((first.row, first.seq), (Some(5), Some(105)), "{report}");
}

#[test]
fn row_inserted_with_pyarrow_is_inserted() {
    let f = fixture();
    let target = edit_rows(&f, 3, "insert");
    let report = f.verify();
    assert_caught(&report, ProblemClass::Inserted, &target);
    assert_eq!(report.first_problem().unwrap().row, Some(4), "{report}");
}

#[test]
fn rows_swapped_with_pyarrow_are_reordered() {
    let f = fixture();
    let target = edit_rows(&f, 0, "swap");
    let report = f.verify();
    assert_caught(&report, ProblemClass::Reordered, &target);
    assert_eq!(report.first_problem().unwrap().row, Some(2), "{report}");
}

#[test]
fn deleted_file_is_missing() {
    let f = fixture();
    let target = f.file(3);
    std::fs::remove_file(f.dir.join(&target)).unwrap();
    assert_caught(&f.verify(), ProblemClass::MissingFile, &target);
}

#[test]
fn added_file_is_extra() {
    let f = fixture();
    let extra = "events/date=2026-11-22/part-00000001.parquet";
    std::fs::create_dir_all(f.dir.join("events/date=2026-11-22")).unwrap();
    std::fs::copy(f.dir.join(f.file(1)), f.dir.join(extra)).unwrap();
    assert_caught(&f.verify(), ProblemClass::ExtraFile, extra);
}

#[test]
fn swapped_files_are_reordered() {
    let f = fixture();
    let (a, b) = (f.dir.join(f.file(0)), f.dir.join(f.file(1)));
    let tmp = f.dir.join("swap");
    std::fs::rename(&a, &tmp).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    assert_caught(&f.verify(), ProblemClass::Reordered, &f.file(0));
}

fn manifest_lines(f: &Fixture) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(f.dir.join("audit/manifests.jsonl")).unwrap();
    split_lines(&bytes)
        .0
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_manifest_lines(f: &Fixture, lines: &[Vec<u8>]) {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    std::fs::write(f.dir.join("audit/manifests.jsonl"), out).unwrap();
}

#[test]
fn edited_manifest_line_breaks_the_link() {
    let f = fixture();
    let mut lines = manifest_lines(&f);
    let text = String::from_utf8(lines[1].clone()).unwrap();
    lines[1] = text.replace("\"count\":100", "\"count\":99").into_bytes();
    assert_ne!(lines[1], text.as_bytes());
    write_manifest_lines(&f, &lines);
    let report = f.verify();
    assert_caught(&report, ProblemClass::BrokenLink, "audit/manifests.jsonl");
    assert_eq!(report.first_problem().unwrap().row, Some(3), "{report}");
}

#[test]
fn dropped_manifest_line_breaks_the_link() {
    let f = fixture();
    let mut lines = manifest_lines(&f);
    lines.remove(2);
    write_manifest_lines(&f, &lines);
    let report = f.verify();
    assert_caught(&report, ProblemClass::BrokenLink, "audit/manifests.jsonl");
    assert_eq!(report.first_problem().unwrap().row, Some(3), "{report}");
    // The file it sealed is now named by nothing.
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.class == ProblemClass::ExtraFile && p.file == f.file(2)),
        "{report}"
    );
}

#[test]
fn wrong_public_key_is_a_bad_signature() {
    let f = fixture();
    let other = f._root.path().join("other.key");
    keys::keygen(&other).unwrap();
    let opts = VerifyOptions {
        pubkey: Some(keys::pub_path(&other)),
        expect_head: None,
    };
    assert_caught(
        &verify(&f.dir, &opts),
        ProblemClass::BadSignature,
        "audit/checkpoint",
    );
}

#[test]
fn forged_checkpoint_is_a_bad_signature() {
    let f = fixture();
    let path = f.dir.join("audit/checkpoint");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut checkpoint = Checkpoint::parse(&text).unwrap();
    checkpoint.count -= 1;
    let lines = manifest_lines(&f);
    checkpoint.head = line_hash(&lines[lines.len() - 2]);
    std::fs::write(&path, checkpoint.to_text()).unwrap();
    assert_caught(&f.verify(), ProblemClass::BadSignature, "audit/checkpoint");
}

/// Cut the chain after `keep` lines, delete the files of the removed lines, and rewrite the
/// (unsigned) checkpoint to match: the best an attacker without the key can do.
fn truncate_tail(dir: &Path, keep: usize) {
    let bytes = std::fs::read(dir.join("audit/manifests.jsonl")).unwrap();
    let (lines, _) = split_lines(&bytes);
    let mut out = Vec::new();
    for line in &lines[..keep] {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    for line in &lines[keep..] {
        let m = secpipe::archive::manifest::Manifest::parse(line).unwrap();
        if let Some(p) = m.path {
            std::fs::remove_file(dir.join(p)).unwrap();
        }
    }
    std::fs::write(dir.join("audit/manifests.jsonl"), out).unwrap();
    let text = std::fs::read_to_string(dir.join("audit/checkpoint")).unwrap();
    let mut checkpoint = Checkpoint::parse(&text).unwrap();
    checkpoint.count = keep as u64;
    checkpoint.head = line_hash(lines[keep - 1]);
    std::fs::write(dir.join("audit/checkpoint"), checkpoint.to_text()).unwrap();
}

#[test]
fn truncated_tail_is_caught_only_against_an_anchored_head() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 300, 100, None);
    let anchored = verify(dir.path(), &VerifyOptions::default()).head.unwrap();
    truncate_tail(dir.path(), 2);
    // Without an anchor, a consistently truncated unsigned chain looks intact: the documented
    // limit of any hash chain.
    assert_eq!(verify(dir.path(), &VerifyOptions::default()).exit_code(), 0);
    let opts = VerifyOptions {
        pubkey: None,
        expect_head: Some(anchored),
    };
    let report = verify(dir.path(), &opts);
    assert_caught(&report, ProblemClass::Deleted, "audit/manifests.jsonl");
}

#[test]
fn truncated_tail_behind_the_checkpoint_is_deleted() {
    let f = fixture();
    let mut lines = manifest_lines(&f);
    lines.truncate(lines.len() - 1);
    write_manifest_lines(&f, &lines);
    assert_caught(&f.verify(), ProblemClass::Deleted, "audit/manifests.jsonl");
}

#[test]
fn anchored_head_of_a_grown_archive_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 50, 100, None);
    let anchored = verify(dir.path(), &VerifyOptions::default()).head.unwrap();
    build(dir.path(), 50, 100, None);
    let opts = VerifyOptions {
        pubkey: None,
        expect_head: Some(anchored),
    };
    assert_eq!(verify(dir.path(), &opts).exit_code(), 0);
}

/// Every regular file of the archive, relative, sorted.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for file in all_files(from) {
        let target = to.join(&file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&file), target).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any single-byte change anywhere in a signed archive is reported as tampering (or, at
    /// worst, as could-not-conclude) and never as intact.
    #[test]
    fn any_single_byte_change_is_detected(
        file_pick in any::<prop::sample::Index>(),
        offset_pick in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        static TEMPLATE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        let template = TEMPLATE.get_or_init(|| {
            let root = tempfile::tempdir().unwrap();
            let key = root.path().join("archive.key");
            keys::keygen(&key).unwrap();
            let dir = root.path().join("archive");
            build(&dir, 250, 100, Some(&key));
            Fixture { dir, key, _root: root }
        });
        let copy = tempfile::tempdir().unwrap();
        copy_tree(&template.dir, copy.path());
        let files = all_files(copy.path());
        let file = &files[file_pick.index(files.len())];
        let path = copy.path().join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        let offset = offset_pick.index(bytes.len());
        bytes[offset] ^= xor;
        std::fs::write(&path, bytes).unwrap();
        let report = verify(copy.path(), &template.opts());
        prop_assert_ne!(report.exit_code(), 0, "{} byte {} ^ {:#x}: {}", file.display(), offset, xor, report);
    }
}

#[test]
fn json_report_names_the_class_file_and_row() {
    let f = fixture();
    let target = edit_rows(&f, 2, "delete");
    let report = f.verify();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["status"], "tampered");
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["problems"][0]["class"], "deleted");
    assert_eq!(json["problems"][0]["file"], target.as_str());
    assert_eq!(json["problems"][0]["row"], 5);
    assert_eq!(json["problems"][0]["seq"], 205);
    assert_eq!(json["head"].as_str().unwrap().len(), 64);
}

#[test]
fn could_not_conclude_is_exit_2() {
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        verify(empty.path(), &VerifyOptions::default()).exit_code(),
        2
    );
    let f = fixture();
    let opts = VerifyOptions {
        pubkey: None,
        expect_head: Some("not-a-head".into()),
    };
    assert_eq!(verify(&f.dir, &opts).exit_code(), 2);
    let missing_key = VerifyOptions {
        pubkey: Some(f.dir.join("no-such.pub")),
        expect_head: None,
    };
    assert_eq!(verify(&f.dir, &missing_key).exit_code(), 2);
}

#[test]
fn unsigned_archive_verifies_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 30, 100, None);
    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(
        report.signature,
        secpipe::archive::verify::SignatureState::Unsigned
    );
    assert!(report.to_string().contains("without --key"), "{report}");
}
