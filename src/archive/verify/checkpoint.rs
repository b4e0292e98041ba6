//! The checkpoint and what its signature covers: the head it names must be the hash of the
//! manifest line it counts, its signature must verify with `--pubkey`, and the lines after the
//! signed head (or that a signed `resume` line declares unsigned) are reported as unsigned.

use std::path::Path;

use super::{
    Problem, ProblemClass, SignatureState, UnsignedFile, UnsignedSpan, VerifyOptions, VerifyReport,
};
use crate::archive::keys;
use crate::archive::manifest::{Checkpoint, GENESIS_PREV, LineRange, Manifest};
use crate::archive::store::{CHECKPOINT, MANIFESTS};

/// Check the checkpoint against the chain (and its signature against `--pubkey`). Returns how
/// many manifest lines a signature covers: the checkpoint's count when it is signed and the
/// signature verified (or was not checked, without `--pubkey`); `None` when the checkpoint is
/// unsigned or bad (a bad one is a problem of its own).
pub(super) fn check_checkpoint(
    text: Option<&[u8]>,
    line_hashes: &[String],
    opts: &VerifyOptions,
    report: &mut VerifyReport,
) -> Option<u64> {
    let mut check = CheckpointCheck {
        report,
        order: line_hashes.len() as u64 + 1,
    };
    let checkpoint = check.parse(text, opts)?;
    check.matches_chain(&checkpoint, line_hashes)?;
    check.signature(&checkpoint, line_hashes.len() as u64, opts)
}

/// The checkpoint's problems are ordered after every manifest line's.
struct CheckpointCheck<'r> {
    report: &'r mut VerifyReport,
    order: u64,
}

impl CheckpointCheck<'_> {
    /// Record a problem that makes the signature bad; the checkpoint then covers nothing.
    fn bad<T>(
        &mut self,
        class: ProblemClass,
        file: &str,
        row: Option<u64>,
        detail: String,
    ) -> Option<T> {
        self.report.signature = SignatureState::Bad;
        self.report.problems.push(Problem {
            class,
            file: file.into(),
            row,
            row_end: None,
            seq: None,
            detail,
            order: self.order,
        });
        None
    }

    fn bad_signature<T>(&mut self, detail: String) -> Option<T> {
        self.bad(ProblemClass::BadSignature, CHECKPOINT, None, detail)
    }

    /// The checkpoint, if there is one that parses and names this archive.
    fn parse(&mut self, text: Option<&[u8]>, opts: &VerifyOptions) -> Option<Checkpoint> {
        let Some(text) = text else {
            if opts.pubkey.is_some() {
                return self.bad_signature("the checkpoint is missing".into());
            }
            self.report
                .warnings
                .push("no checkpoint: only the hash chain was checked".into());
            return None;
        };
        let parsed = std::str::from_utf8(text)
            .map_err(|e| e.to_string())
            .and_then(Checkpoint::parse);
        let checkpoint = match parsed {
            Ok(checkpoint) => checkpoint,
            Err(e) => return self.bad_signature(format!("the checkpoint does not parse: {e}")),
        };
        match &self.report.archive {
            Some(id) if *id != checkpoint.archive => {
                let detail = format!(
                    "the checkpoint names archive {}, the manifests {id}",
                    checkpoint.archive
                );
                return self.bad_signature(detail);
            }
            None => self.report.archive = Some(checkpoint.archive.clone()),
            Some(_) => {}
        }
        Some(checkpoint)
    }

    /// The checkpoint counts no more lines than exist, and its head is the hash of the line
    /// it counts.
    fn matches_chain(&mut self, checkpoint: &Checkpoint, line_hashes: &[String]) -> Option<()> {
        let count = line_hashes.len() as u64;
        if checkpoint.count > count {
            let detail = format!(
                "the checkpoint counts {} manifests but only {count} exist: the tail of the \
                 chain was deleted",
                checkpoint.count
            );
            return self.bad(ProblemClass::Deleted, MANIFESTS, Some(count), detail);
        }
        let head_at_count = match checkpoint.count {
            0 => GENESIS_PREV,
            n => line_hashes[(n - 1) as usize].as_str(),
        };
        if checkpoint.head != head_at_count {
            return self.bad_signature(format!(
                "the checkpoint head {} is not the hash of manifest line {}",
                checkpoint.head, checkpoint.count
            ));
        }
        Some(())
    }

    /// The signature state; with `--pubkey`, the signature checked.
    fn signature(
        &mut self,
        checkpoint: &Checkpoint,
        count: u64,
        opts: &VerifyOptions,
    ) -> Option<u64> {
        match (&checkpoint.signature, &opts.pubkey) {
            (None, None) => {
                self.report.signature = SignatureState::Unsigned;
                if checkpoint.count < count {
                    self.report.warnings.push(format!(
                        "the (unsigned) checkpoint counts {} of {count} manifest lines: a crash \
                         before it caught up",
                        checkpoint.count
                    ));
                }
                None
            }
            (None, Some(_)) => {
                self.bad_signature("--pubkey was given but the checkpoint is not signed".into())
            }
            (Some(_), None) => {
                self.report.signature = SignatureState::NotChecked;
                self.report.warnings.push(
                    "the checkpoint is signed but no --pubkey was given: the signature was not \
                     checked"
                        .into(),
                );
                Some(checkpoint.count)
            }
            (Some((keyhash, signature)), Some(pubkey)) => {
                self.check_signature(checkpoint, keyhash, signature, pubkey)
            }
        }
    }

    /// The signature was made by the key of `pubkey` over the checkpoint's body.
    fn check_signature(
        &mut self,
        checkpoint: &Checkpoint,
        keyhash: &str,
        signature: &str,
        pubkey: &Path,
    ) -> Option<u64> {
        let key = match keys::load_verifying_key(pubkey) {
            Ok(key) => key,
            Err(e) => {
                self.report.inconclusive.get_or_insert(e.to_string());
                return None;
            }
        };
        if keyhash != keys::keyhash(&key) {
            return self.bad_signature(format!(
                "the checkpoint was signed by key {keyhash}, not by {} ({})",
                keys::keyhash(&key),
                pubkey.display()
            ));
        }
        if !keys::check(&key, checkpoint.body().as_bytes(), signature) {
            return self.bad_signature("the checkpoint signature does not verify".into());
        }
        self.report.signature = SignatureState::Good;
        Some(checkpoint.count)
    }
}

/// With a signature covering the first `signed` lines: the unsigned spans that seal files go
/// into the report (exit 3), those that seal none are only a warning.
pub(super) fn record_unsigned(infos: &[LineInfo], signed: u64, report: &mut VerifyReport) {
    for span in unsigned_spans(infos, signed) {
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

/// What [`unsigned_spans`] needs of a manifest line.
#[derive(Default)]
pub(super) struct LineInfo {
    at: Option<String>,
    /// A data line: (path, table, first_seq, count).
    file: Option<(String, String, u64, u64)>,
    /// A `resume` line's `unsigned_lines`.
    declares_unsigned: Option<LineRange>,
}

impl LineInfo {
    pub(super) fn of(m: &Manifest) -> LineInfo {
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
}
