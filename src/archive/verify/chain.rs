//! The chain: every manifest line links to the one before, parses, names this archive, and
//! continues the `file_seq` and each table's seqs; and the head anchored with
//! `--expect-head` is in it.

use std::collections::HashMap;

use super::checkpoint::LineInfo;
use super::{Problem, ProblemClass, VerifyReport};
use crate::archive::manifest::{self, GENESIS_PREV, Manifest, VERSION};
use crate::archive::schema::Table;
use crate::archive::store::MANIFESTS;

/// One data manifest as verify needs it.
pub(super) struct DataEntry {
    pub line_no: u64,
    pub manifest: Manifest,
    pub table: Table,
}

/// What reading the chain gives the later steps.
#[derive(Default)]
pub(super) struct Chain {
    /// The hash of every line, in order (the last is the head).
    pub line_hashes: Vec<String>,
    /// One per line, for the unsigned spans.
    pub line_infos: Vec<LineInfo>,
    /// The data lines that parsed with every field.
    pub entries: Vec<DataEntry>,
    pub last_file_seq: Option<u64>,
    /// The chain ends with a clean-close `pause` line: after one, no crash leftover can exist.
    pub closed_cleanly: bool,
}

/// Read the chain of `lines`, recording its problems in `report`. `None` when verify cannot
/// go on (a format version it does not read: `report.inconclusive` says so).
pub(super) fn read_chain(lines: &[&[u8]], report: &mut VerifyReport) -> Option<Chain> {
    let mut walk = ChainWalk {
        chain: Chain {
            line_hashes: Vec::with_capacity(lines.len()),
            line_infos: Vec::with_capacity(lines.len()),
            ..Chain::default()
        },
        prev: GENESIS_PREV.to_owned(),
        next_seq_of: HashMap::new(),
    };
    for (i, line) in lines.iter().enumerate() {
        walk.line(i as u64 + 1, line, report)?;
    }
    let mut chain = walk.chain;
    chain.closed_cleanly = lines
        .last()
        .and_then(|line| Manifest::parse(line).ok())
        .is_some_and(|m| m.kind == "pause");
    Some(chain)
}

/// The chain read so far.
struct ChainWalk {
    chain: Chain,
    /// The hash the next line must name as `prev`.
    prev: String,
    /// Per table, the seq the next file must start at.
    next_seq_of: HashMap<&'static str, u64>,
}

/// A `broken_link` at manifest line `line_no`.
fn link_problem(report: &mut VerifyReport, line_no: u64, detail: String) {
    report.problems.push(Problem {
        class: ProblemClass::BrokenLink,
        file: MANIFESTS.into(),
        row: Some(line_no),
        row_end: None,
        seq: None,
        detail,
        order: line_no,
    });
}

impl ChainWalk {
    fn line(&mut self, line_no: u64, line: &[u8], report: &mut VerifyReport) -> Option<()> {
        let hash = manifest::line_hash(line);
        match Manifest::parse(line) {
            Err(e) => link_problem(
                report,
                line_no,
                format!("manifest line {line_no} does not parse ({e}): it was edited"),
            ),
            Ok(m) => {
                self.chain.line_infos.push(LineInfo::of(&m));
                self.manifest(line_no, m, report)?;
            }
        }
        if self.chain.line_infos.len() < self.chain.line_hashes.len() + 1 {
            self.chain.line_infos.push(LineInfo::default());
        }
        self.chain.line_hashes.push(hash.clone());
        self.prev = hash;
        Some(())
    }

    /// A line that parsed: its version, link and archive id, and a data line's fields.
    fn manifest(&mut self, line_no: u64, m: Manifest, report: &mut VerifyReport) -> Option<()> {
        if m.v != VERSION {
            report.inconclusive = Some(format!(
                "manifest line {line_no} has format version {} (this secpipe reads {VERSION})",
                m.v
            ));
            return None;
        }
        if m.prev != self.prev {
            link_problem(
                report,
                line_no,
                format!(
                    "manifest line {line_no} does not link to the line before it: a manifest \
                     line was edited, removed or inserted before line {line_no}"
                ),
            );
        }
        match &report.archive {
            None => report.archive = Some(m.archive.clone()),
            Some(id) if *id != m.archive => {
                let detail = format!(
                    "manifest line {line_no} names another archive ({})",
                    m.archive
                );
                link_problem(report, line_no, detail);
            }
            Some(_) => {}
        }
        if m.kind == "data" {
            self.data_line(line_no, m, report);
        }
        Some(())
    }

    /// A data line has every file field, a `file_seq` that increases, and rows that continue
    /// its table's.
    fn data_line(&mut self, line_no: u64, m: Manifest, report: &mut VerifyReport) {
        let table = m.table.as_deref().and_then(Table::from_dir_name);
        let complete = m.path.is_some() && m.sha256.is_some() && m.row_root.is_some();
        let (Some(table), Some(file_seq), Some(rows), true) =
            (table, m.file_seq, &m.rows, complete)
        else {
            let detail = format!("manifest line {line_no} is a data line with missing fields");
            return link_problem(report, line_no, detail);
        };
        if self
            .chain
            .last_file_seq
            .is_some_and(|last| file_seq <= last)
        {
            let detail = format!("manifest line {line_no}: file_seq {file_seq} does not increase");
            link_problem(report, line_no, detail);
        }
        self.chain.last_file_seq = Some(file_seq);
        let (first_seq, count) = (rows.first_seq, rows.count);
        self.continue_rows(line_no, &m, table, (first_seq, count), report);
        self.chain.entries.push(DataEntry {
            line_no,
            manifest: m,
            table,
        });
    }

    /// The file's rows start where the previous file of its table ended.
    fn continue_rows(
        &mut self,
        line_no: u64,
        m: &Manifest,
        table: Table,
        (first_seq, count): (u64, u64),
        report: &mut VerifyReport,
    ) {
        let expected = self
            .next_seq_of
            .entry(table.dir_name())
            .or_insert(first_seq);
        if first_seq != *expected {
            let (class, what) = if first_seq > *expected {
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
                    "the file starts at seq {first_seq} but the previous {} file ended before \
                     seq {}: {what}",
                    table.dir_name(),
                    expected
                ),
                order: line_no,
            });
        }
        *expected = first_seq + count;
    }
}

/// `--expect-head HEX`: the anchored head must be the hash of some manifest line (the archive
/// may have grown since). `None` when the flag's value is not a head (then verify cannot
/// conclude).
pub(super) fn check_anchor(
    expected: &str,
    line_hashes: &[String],
    report: &mut VerifyReport,
) -> Option<()> {
    let expected = expected.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        report.inconclusive = Some(format!(
            "--expect-head must be 64 hex digits (the `head` verify printed), not `{expected}`"
        ));
        return None;
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
    Some(())
}
