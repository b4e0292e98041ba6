//! What verify found: the report, its problems and their classes, its exit code, and its two
//! renderings (text for people, `--json` for programs).

use std::fmt;

use serde::Serialize;

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
    pub(super) order: u64,
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

/// The result of [`verify`](super::verify()) and [`super::verify_store`].
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
    /// For an archive in an S3 bucket: how the bucket keeps the objects the chain relies on
    /// (see `storage.rs`); `None` elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<super::StorageProtection>,
    /// The `path` of every data manifest of the chain: the files it relies on.
    #[serde(skip)]
    pub sealed_paths: Vec<String>,
}

impl VerifyReport {
    pub(super) fn new() -> VerifyReport {
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
            storage: None,
            sealed_paths: Vec::new(),
        }
    }

    /// A report that checked nothing: verify could not start, for `why`.
    pub fn could_not_start(why: String) -> VerifyReport {
        let mut report = VerifyReport::new();
        report.inconclusive = Some(why);
        report
    }

    /// Add the storage section: an object whose current bytes in the bucket are not the
    /// sealed ones is a problem (unless the cryptographic checks already named that object),
    /// an overwritten object that holds the sealed bytes again is a warning, and a listing
    /// that could not be finished is a warning. See `storage.rs` for why.
    pub fn add_storage(&mut self, storage: super::StorageProtection) {
        use super::storage::ObjectState;
        for object in storage.tampered() {
            // The name is listed by the bucket: escaped, as every name printed from there.
            let file = super::printable(&object.name);
            if self.problems.iter().any(|p| p.file == file) {
                continue;
            }
            let class = match object.state {
                ObjectState::Overwritten => ProblemClass::Modified,
                _ => ProblemClass::MissingFile,
            };
            let detail = format!(
                "in the bucket: {}",
                super::StorageProtection::describe(object)
            );
            self.problem(class, &file, None, detail);
        }
        for object in storage
            .objects
            .iter()
            .filter(|o| o.state == ObjectState::Overwritten && o.current_is_sealed_bytes)
        {
            self.warnings.push(format!(
                "in the bucket: {}; someone with write access wrote over a sealed object",
                super::StorageProtection::describe(object)
            ));
        }
        if let Some(why) = &storage.incomplete {
            self.warnings.push(format!(
                "the storage section is incomplete: {}",
                super::printable(why)
            ));
        }
        self.storage = Some(storage);
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

    /// `intact`, `tampered`, `unsigned` or `inconclusive`: the verdict of [`Self::exit_code`] in a word.
    pub fn status(&self) -> &'static str {
        match self.exit_code() {
            0 => "intact",
            1 => "tampered",
            3 => "unsigned",
            _ => "inconclusive",
        }
    }

    pub(super) fn problem(
        &mut self,
        class: ProblemClass,
        file: &str,
        row: Option<u64>,
        detail: String,
    ) {
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
    /// What was checked, the head, the signature and the warnings, then the verdict line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_checked(f)?;
        if let Some(storage) = &self.storage {
            writeln!(f, "{storage}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning   {}", super::printable(warning))?;
        }
        if let Some(why) = &self.inconclusive {
            writeln!(f, "could not conclude: {}", super::printable(why))?;
        }
        match self.problems.first() {
            None if self.inconclusive.is_none() && self.unsigned.is_empty() => write!(f, "INTACT"),
            None if self.inconclusive.is_none() => self.fmt_unsigned(f),
            None => write!(f, "INCONCLUSIVE"),
            Some(first) => self.fmt_tampered(first, f),
        }
    }
}

impl VerifyReport {
    fn fmt_checked(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        writeln!(f, "signature {signature}")
    }

    /// The `UNSIGNED` verdict: each span of unsigned lines and the files it seals.
    fn fmt_unsigned(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
                    super::printable(&file.file),
                    file.table,
                    file.first_seq,
                    (file.first_seq + file.rows).saturating_sub(1),
                    file.rows
                )?;
            }
        }
        Ok(())
    }

    /// The `TAMPERED` verdict: the first problem in full, up to 20 more in brief, and the
    /// unsigned spans besides.
    fn fmt_tampered(&self, first: &Problem, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // File names come from manifests and listings (a bucket's keys, a directory's
        // entries): escaped, so a name cannot move the cursor or forge a report line.
        let name = |file: &str| super::printable(file);
        write!(
            f,
            "TAMPERED  {} in {}",
            first.class.as_str(),
            name(&first.file)
        )?;
        match (first.row, first.row_end) {
            (Some(row), Some(end)) => write!(f, " rows {row}..={end}")?,
            (Some(row), None) if first.file.ends_with(".jsonl") => write!(f, " line {row}")?,
            (Some(row), None) => write!(f, " row {row}")?,
            _ => {}
        }
        if let Some(seq) = first.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", super::printable(&first.detail))?;
        let more = self.problems.len() - 1;
        if more > 0 {
            write!(f, "\n          and {more} more problem(s):")?;
            for p in self.problems.iter().skip(1).take(20) {
                write!(
                    f,
                    "\n          - {} in {}: {}",
                    p.class.as_str(),
                    name(&p.file),
                    super::printable(&p.detail)
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
