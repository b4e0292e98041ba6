//! `secpipe verify`: recompute the chain, file hashes, row roots and the checkpoint signature.
//!
//! What is checked, in this order of reporting (the first problem is the one named):
//! 1. **The chain** (`audit/manifests.jsonl`): every line's `prev` is the SHA-256 of the
//!    previous line's stored bytes, every line parses and names this archive, `file_seq`
//!    increases, and each table's seqs continue from file to file. A line edited, removed or
//!    inserted → `broken_link` (row = the 1-based manifest line where the link breaks).
//! 2. **Files**, in parallel: the fast path hashes the file bytes and compares them with the
//!    manifest's `sha256`; a matching file is not decoded (its `row_root` was computed at
//!    write time and is covered by the chain). A mismatching file is decoded and its row
//!    leaves recomputed to say what happened: `missing_file`; `reordered` (the file holds
//!    another sealed file's bytes, i.e. files were swapped, or its seqs are a permutation of
//!    the sealed ones); `inserted` (a seq outside the file's range or repeated); `deleted` (a
//!    seq of the range is absent); `modified` (same seqs, different content, or not readable
//!    as Parquet, or re-encoded with every row intact). `row` is the 0-based row in the file
//!    where it first shows. For a modified row whose seq is intact, the row is narrowed down to
//!    its chunk of 1024 rows (`row ..= row_end`) using the chunk roots stored in the file's
//!    `secpipe.chunk_roots` metadata, which are trusted only when their Merkle root is the
//!    sealed `row_root`; without them the row is not named.
//! 3. **Extra files**: a `part-*.parquet` that no manifest names → `extra_file`, except the
//!    one file a crash between rename and manifest append can leave: its `file_seq` is the
//!    next one and the chain does not end in a clean-close `pause` line. That one is a warning
//!    (unsealed tail), like a leftover `*.parquet.tmp`.
//! 4. **The checkpoint**: the head it names must be the hash of the manifest line it counts →
//!    else `bad_signature`; a checkpoint that counts *more* manifests than exist → `deleted`
//!    (a truncated tail). With `--pubkey` the signature must verify with that key → else
//!    `bad_signature`; a missing or unsigned checkpoint with `--pubkey` is `bad_signature` too.
//! 5. **What the signature covers** (a signed checkpoint; checked with `--pubkey`, or reported
//!    as not checked without it): lines `1..=count` and the files they seal. A line after the
//!    signed head, or one that a signed `resume` line names in `unsigned_lines` (a later run
//!    with the key extended over it without vouching for it, see `custody.rs`), is *unsigned*.
//!    Unsigned lines that seal files make the verdict `UNSIGNED` (exit 3), naming each span of
//!    lines, when it began (the `at` of its first line) and its files with their seq ranges;
//!    unsigned `resume`/`pause` lines alone are a warning.
//! 6. **`--expect-head HEX`**: the anchored head must be the hash of some manifest line (the
//!    archive may have grown since it was anchored). If it is not in the chain, the lines
//!    after the anchor were deleted (or rewritten) → class `deleted`, file
//!    `audit/manifests.jsonl`.
//!
//! Exit codes: 0 intact (warnings allowed), 1 tampered, 2 could not conclude (not an
//! archive, unreadable files, unknown format version, unreadable public key), 3 unsigned
//! (nothing found altered, but sealed files that no valid signature covers).
//!
//! ## What verify proves, and what it cannot
//!
//! With `--pubkey` and exit 0: every sealed file is byte for byte the file its manifest line
//! sealed, each table's rows are the seqs the manifests list, in order, with none added or
//! removed; every manifest line links to the one before; and the holder of the private key
//! signed a head that covers every line that seals a file, no line of which a later run
//! declared it could not vouch for. In short: since the key signed it, nothing was altered,
//! added, removed or reordered, up to the signed head.
//!
//! What it cannot prove:
//! - **A deleted tail**: cut the chain back to the length of an older signed checkpoint and
//!   put that checkpoint back (or, unsigned, rewrite the checkpoint to match), and the shorter
//!   chain is consistent and signed. Only `--expect-head` with a head recorded elsewhere
//!   catches it.
//! - **The key holder's honesty**: whoever holds the key can write a different, consistent
//!   history. A signature proves who wrote the checkpoint, not that the lines were true.
//! - **Without `--pubkey`** nothing about authorship: anyone can replace an unsigned archive end
//!   to end, or strip the signature of a signed one and rewrite it (the report says
//!   `signature none` or `present, not checked`).
//! - **The rows of an unsigned span** (exit 3): a crash before the checkpoint was re-signed
//!   (the last line of a live run, the last 50 ms of a bulk import), a power cut before it
//!   reached the disk, and lines appended by someone without the key look the same. Verify
//!   names them; it cannot say which.
//! - **A file's rows beyond its bytes**: a file whose bytes match its manifest is not decoded;
//!   its `row_root` is trusted as sealed. A writer that computed a wrong `row_root` would pass
//!   here: `tests/independent_verifier.py` recomputes every root from docs/archive-format.md.
//! - **Whether a log line was true** when the host wrote it, or complete (lines that never
//!   reached secpipe, or that arrived after it stopped).
//!
//! ```
//! use secpipe::archive::verify::{verify, VerifyOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let report = verify(dir.path(), &VerifyOptions::default());
//! assert_eq!(report.exit_code(), 2); // an empty directory is not an archive
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::canonical::{CHUNK_ROWS, chunk_roots, conform, digest_bytes, leaves_of, merkle_root};
use super::keys;
use super::manifest::{self, Checkpoint, GENESIS_PREV, LineRange, Manifest, VERSION};
use super::schema::Table;
use super::{file_seq_of, table_files};

/// Options of `secpipe verify`.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// `FILE.pub` from `secpipe keygen`: check the checkpoint signature.
    pub pubkey: Option<PathBuf>,
    /// A head recorded elsewhere (hex): the chain must contain it.
    pub expect_head: Option<String>,
}

/// What kind of tampering a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemClass {
    Modified,
    Inserted,
    Deleted,
    Reordered,
    MissingFile,
    ExtraFile,
    BrokenLink,
    BadSignature,
}

impl ProblemClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemClass::Modified => "modified",
            ProblemClass::Inserted => "inserted",
            ProblemClass::Deleted => "deleted",
            ProblemClass::Reordered => "reordered",
            ProblemClass::MissingFile => "missing_file",
            ProblemClass::ExtraFile => "extra_file",
            ProblemClass::BrokenLink => "broken_link",
            ProblemClass::BadSignature => "bad_signature",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub class: ProblemClass,
    /// Path relative to the archive (`events/date=…/part-….parquet`, `audit/manifests.jsonl`).
    pub file: String,
    /// 0-based row in a Parquet file, or 1-based line in `audit/manifests.jsonl`.
    pub row: Option<u64>,
    /// When a changed row can only be narrowed down to a chunk: the last row of the range
    /// `row ..= row_end` that holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_end: Option<u64>,
    /// The archive `seq` concerned, when known.
    pub seq: Option<u64>,
    pub detail: String,
    /// Position in the chain (manifest line), for picking the first problem.
    #[serde(skip)]
    order: u64,
}

/// State of the checkpoint signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureState {
    /// Signed and checked against `--pubkey`.
    Good,
    /// Signed, but no `--pubkey` was given.
    NotChecked,
    /// The checkpoint carries no signature (archive written without `--key`).
    Unsigned,
    /// Bad, missing or unreadable (see the problems).
    Bad,
}

/// Manifest lines `first_line ..= last_line` that no valid signature vouches for, and the
/// files they seal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnsignedSpan {
    pub first_line: u64,
    pub last_line: u64,
    /// The `at` of the first of them: when the unsigned part began, as its writer claims.
    pub since: Option<String>,
    pub why: String,
    pub files: Vec<UnsignedFile>,
}

/// A sealed file inside an [`UnsignedSpan`]: `rows` rows from `first_seq` of `table`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnsignedFile {
    pub file: String,
    pub table: String,
    pub first_seq: u64,
    pub rows: u64,
}

/// The result of [`verify`].
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub archive: Option<String>,
    /// Hex SHA-256 of the last manifest line: anchor it somewhere else.
    pub head: Option<String>,
    pub manifests: u64,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub signature: SignatureState,
    /// Every problem found, the first one first.
    pub problems: Vec<Problem>,
    /// Sealed files that no valid signature vouches for (see [`UnsignedSpan`]); with any, the
    /// archive is not intact (exit 3) even when nothing was found altered.
    pub unsigned: Vec<UnsignedSpan>,
    /// Not tampering: unsealed tails, unchecked signatures, unsigned lines that seal no rows.
    pub warnings: Vec<String>,
    /// Why verify could not conclude, if it could not.
    pub inconclusive: Option<String>,
}

impl VerifyReport {
    fn new() -> VerifyReport {
        VerifyReport {
            archive: None,
            head: None,
            manifests: 0,
            files: 0,
            rows: 0,
            bytes: 0,
            signature: SignatureState::Unsigned,
            problems: Vec::new(),
            unsigned: Vec::new(),
            warnings: Vec::new(),
            inconclusive: None,
        }
    }

    /// 0 intact, 1 tampered, 2 could not conclude, 3 unsigned (nothing found altered, but
    /// rows that no valid signature covers).
    pub fn exit_code(&self) -> i32 {
        if !self.problems.is_empty() {
            1
        } else if self.inconclusive.is_some() {
            2
        } else if !self.unsigned.is_empty() {
            3
        } else {
            0
        }
    }

    /// The first (earliest in the chain) problem.
    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }

    /// The report as one JSON object (`--json`).
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "status".into(),
                serde_json::Value::String(self.status().into()),
            );
            map.insert("exit_code".into(), self.exit_code().into());
        }
        value.to_string()
    }

    fn status(&self) -> &'static str {
        match self.exit_code() {
            0 => "intact",
            1 => "tampered",
            3 => "unsigned",
            _ => "inconclusive",
        }
    }

    fn problem(&mut self, class: ProblemClass, file: &str, row: Option<u64>, detail: String) {
        self.problems.push(Problem {
            class,
            file: file.to_owned(),
            row,
            row_end: None,
            seq: None,
            detail,
            order: u64::MAX,
        });
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(archive) = &self.archive {
            writeln!(f, "archive   {archive}")?;
        }
        writeln!(
            f,
            "checked   {} manifests, {} files, {} rows, {} bytes",
            self.manifests, self.files, self.rows, self.bytes
        )?;
        if let Some(head) = &self.head {
            writeln!(f, "head      {head}")?;
        }
        let signature = match self.signature {
            SignatureState::Good => "good",
            SignatureState::NotChecked => "present, not checked (pass --pubkey FILE.pub)",
            SignatureState::Unsigned => "none (archive written without --key)",
            SignatureState::Bad => "BAD",
        };
        writeln!(f, "signature {signature}")?;
        for warning in &self.warnings {
            writeln!(f, "warning   {warning}")?;
        }
        if let Some(why) = &self.inconclusive {
            writeln!(f, "could not conclude: {why}")?;
        }
        match self.problems.first() {
            None if self.inconclusive.is_none() && self.unsigned.is_empty() => write!(f, "INTACT"),
            None if self.inconclusive.is_none() => {
                write!(
                    f,
                    "UNSIGNED  no valid signature covers these files; nothing in the archive was \
                     found altered, but these rows are not vouched for by the key:"
                )?;
                for span in &self.unsigned {
                    write!(
                        f,
                        "\n          manifest lines {}..={} (written since {}): {}",
                        span.first_line,
                        span.last_line,
                        span.since.as_deref().unwrap_or("?"),
                        span.why
                    )?;
                    for file in &span.files {
                        write!(
                            f,
                            "\n          - {}: {} seqs {}..={} ({} rows)",
                            file.file,
                            file.table,
                            file.first_seq,
                            (file.first_seq + file.rows).saturating_sub(1),
                            file.rows
                        )?;
                    }
                }
                Ok(())
            }
            None => write!(f, "INCONCLUSIVE"),
            Some(first) => {
                write!(f, "TAMPERED  {} in {}", first.class.as_str(), first.file)?;
                match (first.row, first.row_end) {
                    (Some(row), Some(end)) => write!(f, " rows {row}..={end}")?,
                    (Some(row), None) if first.file.ends_with(".jsonl") => {
                        write!(f, " line {row}")?
                    }
                    (Some(row), None) => write!(f, " row {row}")?,
                    _ => {}
                }
                if let Some(seq) = first.seq {
                    write!(f, " (seq {seq})")?;
                }
                write!(f, ": {}", first.detail)?;
                let more = self.problems.len() - 1;
                if more > 0 {
                    write!(f, "\n          and {more} more problem(s):")?;
                    for p in self.problems.iter().skip(1).take(20) {
                        write!(
                            f,
                            "\n          - {} in {}: {}",
                            p.class.as_str(),
                            p.file,
                            p.detail
                        )?;
                    }
                }
                for span in &self.unsigned {
                    write!(
                        f,
                        "\n          also unsigned: manifest lines {}..={} ({} file(s))",
                        span.first_line,
                        span.last_line,
                        span.files.len()
                    )?;
                }
                Ok(())
            }
        }
    }
}

const MANIFESTS: &str = "audit/manifests.jsonl";
const CHECKPOINT: &str = "audit/checkpoint";

/// One data manifest as verify needs it.
struct DataEntry {
    line_no: u64,
    manifest: Manifest,
    table: Table,
}

/// Verify the archive in `dir`. Never panics on a damaged archive; see the module doc.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> VerifyReport {
    let mut report = VerifyReport::new();
    let manifests_bytes = match std::fs::read(dir.join(MANIFESTS)) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            report.inconclusive = Some(format!("{MANIFESTS}: {e}"));
            return report;
        }
    };
    let checkpoint_text = match std::fs::read(dir.join(CHECKPOINT)) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            report.inconclusive = Some(format!("{CHECKPOINT}: {e}"));
            return report;
        }
    };
    if manifests_bytes.is_none() && checkpoint_text.is_none() {
        report.inconclusive = Some(format!(
            "{} is not a secpipe archive (no {MANIFESTS} and no {CHECKPOINT})",
            dir.display()
        ));
        return report;
    }
    let manifests_bytes = manifests_bytes.unwrap_or_default();

    // 1. The chain.
    let (lines, torn) = manifest::split_lines(&manifests_bytes);
    if let Some(torn) = torn {
        report.warnings.push(format!(
            "{MANIFESTS} ends in a torn line of {} bytes (a crash during an append); it is \
             not part of the chain",
            torn.len()
        ));
    }
    let mut line_hashes = Vec::with_capacity(lines.len());
    let mut line_infos = Vec::with_capacity(lines.len());
    let mut entries = Vec::new();
    let mut prev = GENESIS_PREV.to_owned();
    let mut last_file_seq: Option<u64> = None;
    let mut next_seq_of: HashMap<&'static str, u64> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let line_no = i as u64 + 1;
        let hash = manifest::line_hash(line);
        let link_problem = |report: &mut VerifyReport, detail: String| {
            report.problems.push(Problem {
                class: ProblemClass::BrokenLink,
                file: MANIFESTS.into(),
                row: Some(line_no),
                row_end: None,
                seq: None,
                detail,
                order: line_no,
            });
        };
        match Manifest::parse(line) {
            Err(e) => link_problem(
                &mut report,
                format!("manifest line {line_no} does not parse ({e}): it was edited"),
            ),
            Ok(m) => {
                line_infos.push(LineInfo::of(&m));
                if m.v != VERSION {
                    report.inconclusive = Some(format!(
                        "manifest line {line_no} has format version {} (this secpipe reads {VERSION})",
                        m.v
                    ));
                    return report;
                }
                if m.prev != prev {
                    link_problem(
                        &mut report,
                        format!(
                            "manifest line {line_no} does not link to the line before it: a \
                             manifest line was edited, removed or inserted before line {line_no}"
                        ),
                    );
                }
                match &report.archive {
                    None => report.archive = Some(m.archive.clone()),
                    Some(id) if *id != m.archive => link_problem(
                        &mut report,
                        format!(
                            "manifest line {line_no} names another archive ({})",
                            m.archive
                        ),
                    ),
                    Some(_) => {}
                }
                if m.kind == "data" {
                    let table = m.table.as_deref().and_then(Table::from_dir_name);
                    match (table, m.file_seq, &m.path, &m.rows, &m.sha256, &m.row_root) {
                        (Some(table), Some(file_seq), Some(_), Some(rows), Some(_), Some(_)) => {
                            if last_file_seq.is_some_and(|last| file_seq <= last) {
                                link_problem(
                                    &mut report,
                                    format!(
                                        "manifest line {line_no}: file_seq {file_seq} does not increase"
                                    ),
                                );
                            }
                            last_file_seq = Some(file_seq);
                            let expected = next_seq_of
                                .entry(table.dir_name())
                                .or_insert(rows.first_seq);
                            if rows.first_seq != *expected {
                                let (class, what) = if rows.first_seq > *expected {
                                    (ProblemClass::Deleted, "rows are missing before it")
                                } else {
                                    (ProblemClass::Inserted, "its rows overlap the previous file")
                                };
                                report.problems.push(Problem {
                                    class,
                                    file: m.path.clone().unwrap_or_default(),
                                    row: Some(0),
                                    row_end: None,
                    seq: Some(*expected),
                                    detail: format!(
                                        "the file starts at seq {} but the previous {} file ended before seq {}: {what}",
                                        rows.first_seq,
                                        table.dir_name(),
                                        expected
                                    ),
                                    order: line_no,
                                });
                            }
                            *expected = rows.first_seq + rows.count;
                            entries.push(DataEntry {
                                line_no,
                                manifest: m,
                                table,
                            });
                        }
                        _ => link_problem(
                            &mut report,
                            format!("manifest line {line_no} is a data line with missing fields"),
                        ),
                    }
                }
            }
        }
        if line_infos.len() < line_hashes.len() + 1 {
            line_infos.push(LineInfo::default());
        }
        line_hashes.push(hash.clone());
        prev = hash;
    }
    report.manifests = lines.len() as u64;
    let head = line_hashes
        .last()
        .cloned()
        .unwrap_or_else(|| GENESIS_PREV.to_owned());
    report.head = Some(head);

    // 2. Files, in parallel.
    check_files(dir, &entries, &mut report);

    // 3. Files no manifest names.
    // A clean close ends the chain with `pause`: after one, no crash leftover can exist.
    let closed_cleanly = lines
        .last()
        .and_then(|line| Manifest::parse(line).ok())
        .is_some_and(|m| m.kind == "pause");
    let next_file_seq = last_file_seq.map_or(0, |last| last + 1);
    let leftover_file_seq = (!closed_cleanly).then_some(next_file_seq);
    check_extra_files(dir, &entries, leftover_file_seq, &mut report);

    // 4. The checkpoint, and which lines no signature covers.
    let signed = check_checkpoint(checkpoint_text.as_deref(), &line_hashes, opts, &mut report);
    if let Some(signed) = signed {
        for span in unsigned_spans(&line_infos, signed) {
            if span.files.is_empty() {
                report.warnings.push(format!(
                    "manifest lines {}..={} are not signed ({}); they seal no rows",
                    span.first_line, span.last_line, span.why
                ));
            } else {
                report.unsigned.push(span);
            }
        }
    }

    // 5. The anchored head.
    if let Some(expected) = &opts.expect_head {
        let expected = expected.trim().to_ascii_lowercase();
        if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
            report.inconclusive = Some(format!(
                "--expect-head must be 64 hex digits (the `head` verify printed), not `{expected}`"
            ));
            return report;
        }
        match line_hashes.iter().position(|h| *h == expected) {
            Some(index) if index + 1 == line_hashes.len() => {}
            Some(index) => report.warnings.push(format!(
                "the expected head is manifest line {}; the archive has grown by {} line(s) since",
                index + 1,
                line_hashes.len() - index - 1
            )),
            None if expected == GENESIS_PREV && line_hashes.is_empty() => {}
            None => report.problems.push(Problem {
                class: ProblemClass::Deleted,
                file: MANIFESTS.into(),
                row: Some(line_hashes.len() as u64),
                row_end: None,
                seq: None,
                detail: format!(
                    "the expected head {expected} is not in the chain: the manifests after line {} \
                     (and their files) were deleted or rewritten",
                    line_hashes.len()
                ),
                order: u64::MAX - 1,
            }),
        }
    }

    report.problems.sort_by_key(|p| p.order);
    report
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(digest_bytes(hasher)), total))
}

enum FileOutcome {
    Good { bytes: u64, rows: u64 },
    Bad(Problem),
    Unreadable(String),
}

fn check_files(dir: &Path, entries: &[DataEntry], report: &mut VerifyReport) {
    let sealed_by_sha: HashMap<&str, &str> = entries
        .iter()
        .filter_map(|e| Some((e.manifest.sha256.as_deref()?, e.manifest.path.as_deref()?)))
        .collect();
    let archive_id = report.archive.as_deref().and_then(super::parse_archive_id);
    let outcomes: Vec<FileOutcome> = entries
        .par_iter()
        .map(|entry| check_one_file(dir, entry, &sealed_by_sha, archive_id))
        .collect();
    for outcome in outcomes {
        match outcome {
            FileOutcome::Good { bytes, rows } => {
                report.files += 1;
                report.bytes += bytes;
                report.rows += rows;
            }
            FileOutcome::Bad(problem) => report.problems.push(problem),
            FileOutcome::Unreadable(why) => {
                report.inconclusive.get_or_insert(why);
            }
        }
    }
}

fn check_one_file(
    dir: &Path,
    entry: &DataEntry,
    sealed_by_sha: &HashMap<&str, &str>,
    archive_id: Option<[u8; 16]>,
) -> FileOutcome {
    let m = &entry.manifest;
    let path = m.path.clone().unwrap_or_default();
    let problem = |class, row: Option<u64>, seq: Option<u64>, detail: String| {
        FileOutcome::Bad(Problem {
            class,
            file: path.clone(),
            row,
            row_end: None,
            seq,
            detail,
            order: entry.line_no,
        })
    };
    // A manifest path must stay inside the archive.
    if path.starts_with('/') || path.split('/').any(|part| part == ".." || part.is_empty()) {
        return problem(
            ProblemClass::BrokenLink,
            None,
            None,
            format!(
                "manifest line {} names a path outside the archive",
                entry.line_no
            ),
        );
    }
    let full = dir.join(&path);
    let (sha, bytes) = match hash_file(&full) {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return problem(
                ProblemClass::MissingFile,
                None,
                None,
                format!("sealed by manifest line {} but not on disk", entry.line_no),
            );
        }
        Err(e) => return FileOutcome::Unreadable(format!("{path}: {e}")),
    };
    let rows = m
        .rows
        .as_ref()
        .map(|r| (r.first_seq, r.count))
        .unwrap_or((0, 0));
    if Some(sha.as_str()) == m.sha256.as_deref() {
        return FileOutcome::Good {
            bytes,
            rows: rows.1,
        };
    }
    if let Some(other) = sealed_by_sha.get(sha.as_str()) {
        return problem(
            ProblemClass::Reordered,
            None,
            None,
            format!("the file holds the sealed bytes of {other}: files were swapped or copied"),
        );
    }
    let Some(archive_id) = archive_id else {
        return problem(
            ProblemClass::Modified,
            None,
            None,
            "file bytes differ".into(),
        );
    };
    // The Parquet decoder can panic on corrupt metadata instead of returning an error; a
    // file that makes it panic is certainly not the sealed file.
    let diagnosis = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        diagnose(&full, entry.table, archive_id, rows, m.row_root.as_deref())
    }))
    .unwrap_or_else(|_| {
        (
            ProblemClass::Modified,
            (None, None),
            None,
            "file bytes differ and its Parquet metadata is corrupt".into(),
        )
    });
    let (class, (row, row_end), seq, detail) = diagnosis;
    FileOutcome::Bad(Problem {
        class,
        file: path.clone(),
        row,
        row_end,
        seq,
        detail,
        order: entry.line_no,
    })
}

/// Class, (row, last row of the range when only a range is known), seq, detail.
type Diagnosis = (
    ProblemClass,
    (Option<u64>, Option<u64>),
    Option<u64>,
    String,
);

/// Decode a file whose bytes changed and say what happened to its rows.
fn diagnose(
    path: &Path,
    table: Table,
    archive_id: [u8; 16],
    (first_seq, count): (u64, u64),
    row_root: Option<&str>,
) -> Diagnosis {
    let modified = |detail: String| (ProblemClass::Modified, (None, None), None, detail);
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes::Bytes::from(bytes),
        Err(e) => return modified(format!("file bytes differ and it cannot be read: {e}")),
    };
    let builder = match ParquetRecordBatchReaderBuilder::try_new(bytes) {
        Ok(builder) => builder,
        Err(e) => {
            return modified(format!(
                "file bytes differ and it is not readable Parquet: {e}"
            ));
        }
    };
    let stored_chunk_roots = stored_chunk_roots(builder.metadata());
    let reader = match builder.build() {
        Ok(reader) => reader,
        Err(e) => {
            return modified(format!(
                "file bytes differ and it is not readable Parquet: {e}"
            ));
        }
    };
    let schema = table.schema();
    let mut seqs = Vec::new();
    let mut leaves = Vec::new();
    for batch in reader {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                return modified(format!("file bytes differ and a page does not decode: {e}"));
            }
        };
        let result = conform(&batch, &schema).and_then(|columns| leaves_of(&archive_id, &columns));
        match result {
            Ok((s, l)) => {
                seqs.extend(s);
                leaves.extend(l);
            }
            Err(e) => {
                return modified(format!(
                    "file bytes differ and its rows do not fit the schema: {}",
                    e.0
                ));
            }
        }
    }
    let root = hex::encode(merkle_root(&leaves));
    if Some(root.as_str()) == row_root && seqs.len() as u64 == count {
        return modified(
            "file bytes differ from the sealed file but every row matches its leaf: the file was \
             re-encoded or its metadata edited"
                .into(),
        );
    }
    let mut diagnosis = classify_seqs(&seqs, first_seq, count);
    if diagnosis.0 == ProblemClass::Modified {
        // Seqs intact: narrow the changed row down with the chunk roots stored in the file,
        // if they are still there and authentic (their Merkle root is the sealed row_root).
        if let Some(stored) = stored_chunk_roots
            && Some(hex::encode(merkle_root(&stored)).as_str()) == row_root
        {
            let recomputed = chunk_roots(&leaves);
            if let Some(chunk) = stored.iter().zip(&recomputed).position(|(a, b)| a != b) {
                let start = (chunk * CHUNK_ROWS) as u64;
                let end = (start + CHUNK_ROWS as u64).min(count) - 1;
                diagnosis.1 = (Some(start), Some(end));
                diagnosis.2 = Some(first_seq + start);
                diagnosis.3 = format!(
                    "all {count} seqs are present and in order, but a row in rows {start}..={end} \
                     (seqs {}..={}) was changed",
                    first_seq + start,
                    first_seq + end
                );
            }
        }
    }
    diagnosis
}

/// The `secpipe.chunk_roots` key-value metadata of a file, decoded.
fn stored_chunk_roots(
    metadata: &parquet::file::metadata::ParquetMetaData,
) -> Option<Vec<[u8; 32]>> {
    use base64::Engine;
    let kv = metadata.file_metadata().key_value_metadata()?;
    let text = kv
        .iter()
        .find(|e| e.key == "secpipe.chunk_roots")?
        .value
        .as_deref()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    if bytes.len() % 32 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
            .collect(),
    )
}

/// Compare decoded seqs with the sealed range `first_seq .. first_seq + count`.
fn classify_seqs(seqs: &[i64], first_seq: u64, count: u64) -> Diagnosis {
    let in_range = |s: i64| {
        u64::try_from(s)
            .ok()
            .filter(|s| *s >= first_seq && *s - first_seq < count)
            .map(|s| (s - first_seq) as usize)
    };
    let mut seen = vec![false; usize::try_from(count).unwrap_or(0)];
    for (row, s) in seqs.iter().enumerate() {
        match in_range(*s) {
            Some(i) if !seen[i] => seen[i] = true,
            _ => {
                return (
                    ProblemClass::Inserted,
                    (Some(row as u64), None),
                    u64::try_from(*s).ok(),
                    format!(
                        "row {row} has seq {s}, which is outside the sealed range {first_seq}..{} or repeated",
                        first_seq + count
                    ),
                );
            }
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        let seq = first_seq + missing as u64;
        let row = seqs
            .iter()
            .position(|s| u64::try_from(*s).map(|s| s > seq).unwrap_or(false))
            .unwrap_or(seqs.len());
        return (
            ProblemClass::Deleted,
            (Some(row as u64), None),
            Some(seq),
            format!(
                "seq {seq} was sealed in this file and is gone ({} rows of {count} remain)",
                seqs.len()
            ),
        );
    }
    for (row, s) in seqs.iter().enumerate() {
        let expected = first_seq + row as u64;
        if u64::try_from(*s).ok() != Some(expected) {
            return (
                ProblemClass::Reordered,
                (Some(row as u64), None),
                u64::try_from(*s).ok(),
                format!(
                    "row {row} holds seq {s} where seq {expected} was sealed: rows were reordered"
                ),
            );
        }
    }
    (
        ProblemClass::Modified,
        (None, None),
        None,
        format!(
            "all {count} seqs are present and in order but the rows do not hash to the sealed \
             row_root: row content was changed"
        ),
    )
}

fn check_extra_files(
    dir: &Path,
    entries: &[DataEntry],
    leftover_file_seq: Option<u64>,
    report: &mut VerifyReport,
) {
    let named: std::collections::HashSet<&str> = entries
        .iter()
        .filter_map(|e| e.manifest.path.as_deref())
        .collect();
    let files = match table_files(dir) {
        Ok(files) => files,
        Err(e) => {
            report
                .inconclusive
                .get_or_insert(format!("listing the archive: {e}"));
            return;
        }
    };
    for (relative, _) in files {
        if named.contains(relative.as_str()) {
            continue;
        }
        if relative.ends_with(".parquet.tmp") {
            report.warnings.push(format!(
                "{relative} is an unsealed tail (a run stopped before sealing it); its rows are \
                 not covered by the chain"
            ));
            continue;
        }
        if !relative.ends_with(".parquet") {
            report
                .warnings
                .push(format!("{relative} is not an archive file; ignored"));
            continue;
        }
        let at_tail = leftover_file_seq.is_some() && file_seq_of(&relative) == leftover_file_seq;
        if at_tail {
            report.warnings.push(format!(
                "{relative} is an unsealed tail (renamed but never entered in the manifests: a \
                 crash while sealing); its rows are not covered by the chain"
            ));
        } else {
            report.problem(
                ProblemClass::ExtraFile,
                &relative,
                None,
                "no manifest names this file: it was added to the archive".into(),
            );
        }
    }
}

/// Check the checkpoint against the chain (and its signature against `--pubkey`). Returns how
/// many manifest lines a signature covers: the checkpoint's count when it is signed and the
/// signature verified (or was not checked, without `--pubkey`); `None` when the checkpoint is
/// unsigned or bad (a bad one is a problem of its own).
fn check_checkpoint(
    text: Option<&[u8]>,
    line_hashes: &[String],
    opts: &VerifyOptions,
    report: &mut VerifyReport,
) -> Option<u64> {
    let order = line_hashes.len() as u64 + 1;
    let bad = |report: &mut VerifyReport, class: ProblemClass, detail: String| {
        report.signature = SignatureState::Bad;
        report.problems.push(Problem {
            class,
            file: CHECKPOINT.into(),
            row: None,
            row_end: None,
            seq: None,
            detail,
            order,
        });
        None
    };
    let Some(text) = text else {
        if opts.pubkey.is_some() {
            return bad(
                report,
                ProblemClass::BadSignature,
                "the checkpoint is missing".into(),
            );
        }
        report
            .warnings
            .push("no checkpoint: only the hash chain was checked".into());
        return None;
    };
    let checkpoint = match std::str::from_utf8(text)
        .map_err(|e| e.to_string())
        .and_then(Checkpoint::parse)
    {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            return bad(
                report,
                ProblemClass::BadSignature,
                format!("the checkpoint does not parse: {e}"),
            );
        }
    };
    match &report.archive {
        Some(id) if *id != checkpoint.archive => {
            return bad(
                report,
                ProblemClass::BadSignature,
                format!(
                    "the checkpoint names archive {}, the manifests {id}",
                    checkpoint.archive
                ),
            );
        }
        None => report.archive = Some(checkpoint.archive.clone()),
        Some(_) => {}
    }
    let count = line_hashes.len() as u64;
    if checkpoint.count > count {
        let detail = format!(
            "the checkpoint counts {} manifests but only {count} exist: the tail of the chain was deleted",
            checkpoint.count
        );
        report.signature = SignatureState::Bad;
        report.problems.push(Problem {
            class: ProblemClass::Deleted,
            file: MANIFESTS.into(),
            row: Some(count),
            row_end: None,
            seq: None,
            detail,
            order,
        });
        return None;
    }
    let head_at_count = match checkpoint.count {
        0 => GENESIS_PREV,
        n => line_hashes[(n - 1) as usize].as_str(),
    };
    if checkpoint.head != head_at_count {
        return bad(
            report,
            ProblemClass::BadSignature,
            format!(
                "the checkpoint head {} is not the hash of manifest line {}",
                checkpoint.head, checkpoint.count
            ),
        );
    }
    match (&checkpoint.signature, &opts.pubkey) {
        (None, None) => {
            report.signature = SignatureState::Unsigned;
            if checkpoint.count < count {
                report.warnings.push(format!(
                    "the (unsigned) checkpoint counts {} of {count} manifest lines: a crash \
                     before it caught up",
                    checkpoint.count
                ));
            }
            None
        }
        (None, Some(_)) => bad(
            report,
            ProblemClass::BadSignature,
            "--pubkey was given but the checkpoint is not signed".into(),
        ),
        (Some(_), None) => {
            report.signature = SignatureState::NotChecked;
            report.warnings.push(
                "the checkpoint is signed but no --pubkey was given: the signature was not checked"
                    .into(),
            );
            Some(checkpoint.count)
        }
        (Some((keyhash, signature)), Some(pubkey)) => match keys::load_verifying_key(pubkey) {
            Err(e) => {
                report.inconclusive.get_or_insert(e.to_string());
                None
            }
            Ok(key) => {
                if *keyhash != keys::keyhash(&key) {
                    bad(
                        report,
                        ProblemClass::BadSignature,
                        format!(
                            "the checkpoint was signed by key {keyhash}, not by {} ({})",
                            keys::keyhash(&key),
                            pubkey.display()
                        ),
                    )
                } else if !keys::check(&key, checkpoint.body().as_bytes(), signature) {
                    bad(
                        report,
                        ProblemClass::BadSignature,
                        "the checkpoint signature does not verify".into(),
                    )
                } else {
                    report.signature = SignatureState::Good;
                    Some(checkpoint.count)
                }
            }
        },
    }
}

/// What [`unsigned_spans`] needs of a manifest line.
#[derive(Default)]
struct LineInfo {
    at: Option<String>,
    /// A data line: (path, table, first_seq, count).
    file: Option<(String, String, u64, u64)>,
    /// A `resume` line's `unsigned_lines`.
    declares_unsigned: Option<LineRange>,
}

impl LineInfo {
    fn of(m: &Manifest) -> LineInfo {
        LineInfo {
            at: Some(m.at.clone()),
            file: match (&m.path, &m.table, &m.rows) {
                (Some(path), Some(table), Some(rows)) => {
                    Some((path.clone(), table.clone(), rows.first_seq, rows.count))
                }
                _ => None,
            },
            declares_unsigned: m.unsigned_lines,
        }
    }
}

/// The lines no signature vouches for, when a signature covers the first `signed` lines: the
/// lines after them, and the lines that a signed `resume` line names in `unsigned_lines` (a run
/// with the key extended over them without vouching for them).
fn unsigned_spans(infos: &[LineInfo], signed: u64) -> Vec<UnsignedSpan> {
    let count = infos.len() as u64;
    let span = |first: u64, last: u64, why: String| UnsignedSpan {
        first_line: first,
        last_line: last,
        since: infos
            .get((first - 1) as usize)
            .and_then(|info| info.at.clone()),
        why,
        files: infos[(first - 1) as usize..last as usize]
            .iter()
            .filter_map(|info| info.file.clone())
            .map(|(file, table, first_seq, rows)| UnsignedFile {
                file,
                table,
                first_seq,
                rows,
            })
            .collect(),
    };
    let mut spans = Vec::new();
    // Declarations in unsigned lines are themselves unvouched (and inside the tail anyway).
    for (i, info) in infos.iter().enumerate().take(signed as usize) {
        if let Some(range) = info.declares_unsigned {
            let last = range.last.min(count);
            if range.first >= 1 && range.first <= last {
                spans.push(span(
                    range.first,
                    last,
                    format!(
                        "the run that resumed at manifest line {} found them covered by no valid \
                         signature of its key and does not vouch for them",
                        i + 1
                    ),
                ));
            }
        }
    }
    if signed < count {
        spans.push(span(
            signed + 1,
            count,
            format!(
                "they follow the signed head (manifest line {signed}): a crash before the \
                 checkpoint caught up, or lines appended without the key"
            ),
        ));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_line(seq: u64) -> LineInfo {
        LineInfo {
            at: Some(format!("t{seq}")),
            file: Some((format!("events/f{seq}"), "events".into(), seq, 1)),
            declares_unsigned: None,
        }
    }

    #[test]
    fn unsigned_spans_are_the_tail_and_the_declared_lines() {
        // Lines 1-2 data, 3 resume declaring line 2 unsigned, 4-5 data; signed up to 4.
        let mut infos = vec![data_line(0), data_line(1)];
        infos.push(LineInfo {
            at: Some("t-resume".into()),
            file: None,
            declares_unsigned: Some(LineRange { first: 2, last: 2 }),
        });
        infos.extend([data_line(2), data_line(3)]);
        let spans = unsigned_spans(&infos, 4);
        let got: Vec<_> = spans
            .iter()
            .map(|s| (s.first_line, s.last_line, s.since.clone(), s.files.len()))
            .collect();
        assert_eq!(
            got,
            vec![(2, 2, Some("t1".into()), 1), (5, 5, Some("t3".into()), 1)]
        );
        // Fully signed, nothing declared: nothing unsigned.
        assert!(unsigned_spans(&infos[..2], 2).is_empty());
        // A declaration in an unsigned line is not believed (its lines are in the tail).
        let spans = unsigned_spans(&infos, 2);
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].first_line, spans[0].last_line), (3, 5));
    }

    #[test]
    fn seq_classes() {
        assert_eq!(classify_seqs(&[0, 1, 2], 0, 3).0, ProblemClass::Modified);
        let (class, (row, _), seq, _) = classify_seqs(&[0, 2], 0, 3);
        assert_eq!((class, row, seq), (ProblemClass::Deleted, Some(1), Some(1)));
        let (class, (row, _), _, _) = classify_seqs(&[0, 1, 1, 2], 0, 3);
        assert_eq!((class, row), (ProblemClass::Inserted, Some(2)));
        let (class, (row, _), _, _) = classify_seqs(&[0, 2, 1], 0, 3);
        assert_eq!((class, row), (ProblemClass::Reordered, Some(1)));
        let (class, (row, _), _, _) = classify_seqs(&[5, 0, 1, 2], 0, 3);
        assert_eq!((class, row), (ProblemClass::Inserted, Some(0)));
    }
}
