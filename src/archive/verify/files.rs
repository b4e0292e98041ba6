//! The files: every sealed file is checked against its manifest (in parallel), and every
//! file no manifest names is reported.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::chain::DataEntry;
use super::diagnose::diagnose;
use super::{Problem, ProblemClass, VerifyReport};
use crate::archive::canonical::digest_bytes;
use crate::archive::file_seq_of;
use crate::archive::store::{self, ArchiveStore, ObjectName, ObjectReader};

/// What checking one sealed file found.
enum FileOutcome {
    Good { bytes: u64, rows: u64 },
    Bad(Problem),
    Unreadable(String),
}

/// Check every sealed file, in parallel; the report counts the good ones.
pub(super) fn check_files(
    store: &dyn ArchiveStore,
    entries: &[DataEntry],
    report: &mut VerifyReport,
) {
    let sealed_by_sha: HashMap<&str, &str> = entries
        .iter()
        .filter_map(|e| Some((e.manifest.sha256.as_deref()?, e.manifest.path.as_deref()?)))
        .collect();
    let archive_id = report
        .archive
        .as_deref()
        .and_then(crate::archive::parse_archive_id);
    let check_all = || -> Vec<FileOutcome> {
        entries
            .par_iter()
            .map(|entry| check_one_file(store, entry, &sealed_by_sha, archive_id))
            .collect()
    };
    // A bucket's reads wait on round trips, not on the cores: more of them at once.
    let wanted = store.concurrent_reads();
    let pool = (wanted > rayon::current_num_threads())
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(wanted)
                .build()
                .ok()
        })
        .flatten();
    let outcomes = match pool {
        Some(pool) => pool.install(check_all),
        None => check_all(),
    };
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

/// The fast path: the file's bytes hash to its manifest's `sha256`. Otherwise say why not.
fn check_one_file(
    store: &dyn ArchiveStore,
    entry: &DataEntry,
    sealed_by_sha: &HashMap<&str, &str>,
    archive_id: Option<[u8; 16]>,
) -> FileOutcome {
    let path = entry.manifest.path.clone().unwrap_or_default();
    let problem = |class, detail: String| {
        FileOutcome::Bad(Problem {
            class,
            file: path.clone(),
            row: None,
            row_end: None,
            seq: None,
            detail,
            order: entry.line_no,
        })
    };
    // A manifest path must stay inside the archive: no store is ever asked for another.
    let Ok(name) = ObjectName::new(path.as_str()) else {
        return problem(
            ProblemClass::BrokenLink,
            format!(
                "manifest line {} names a path outside the archive",
                entry.line_no
            ),
        );
    };
    let (object, sha, bytes) = match hash_object(store, &name) {
        Ok(found) => found,
        Err(e) if e.is_not_found() => {
            return problem(
                ProblemClass::MissingFile,
                format!("sealed by manifest line {} but not on disk", entry.line_no),
            );
        }
        Err(e) => return FileOutcome::Unreadable(format!("{path}: {}", e.cause())),
    };
    let m = &entry.manifest;
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
            format!("the file holds the sealed bytes of {other}: files were swapped or copied"),
        );
    }
    let Some(archive_id) = archive_id else {
        return problem(ProblemClass::Modified, "file bytes differ".into());
    };
    // The Parquet decoder can panic on corrupt metadata instead of returning an error; a
    // file that makes it panic is certainly not the sealed file.
    let diagnosis = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        diagnose(
            &object,
            entry.table,
            archive_id,
            rows,
            m.row_root.as_deref(),
        )
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
        file: path,
        row,
        row_end,
        seq,
        detail,
        order: entry.line_no,
    })
}

/// The object, the hex SHA-256 of its bytes and their count.
fn hash_object(
    store: &dyn ArchiveStore,
    name: &ObjectName,
) -> Result<(ObjectReader, String, u64), store::StoreError> {
    let object = store.open(name)?;
    let io_error = |source| store::StoreError::Io {
        at: name.to_string(),
        source,
    };
    let mut reader = object.reader(0);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((object, hex::encode(digest_bytes(hasher)), total))
}

/// Files no manifest names: `extra_file`, except the unsealed tails a crash can leave (a
/// `*.parquet.tmp`, or the next `file_seq` when the chain does not end in a clean close),
/// which are warnings.
pub(super) fn check_extra_files(
    store: &dyn ArchiveStore,
    entries: &[DataEntry],
    leftover_file_seq: Option<u64>,
    report: &mut VerifyReport,
) {
    let named: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e.manifest.path.as_deref())
        .collect();
    let files = match store::table_objects(store) {
        Ok(files) => files,
        Err(e) => {
            report
                .inconclusive
                .get_or_insert(format!("listing the archive: {e}"));
            return;
        }
    };
    for name in files {
        let relative = name.as_str();
        if !named.contains(relative) {
            check_unnamed_file(relative, leftover_file_seq, report);
        }
    }
}

/// One file that no manifest names.
fn check_unnamed_file(relative: &str, leftover_file_seq: Option<u64>, report: &mut VerifyReport) {
    if relative.ends_with(".parquet.tmp") {
        report.warnings.push(format!(
            "{relative} is an unsealed tail (a run stopped before sealing it); its rows are \
             not covered by the chain"
        ));
        return;
    }
    if !relative.ends_with(".parquet") {
        report
            .warnings
            .push(format!("{relative} is not an archive file; ignored"));
        return;
    }
    let at_tail = leftover_file_seq.is_some() && file_seq_of(relative) == leftover_file_seq;
    if at_tail {
        report.warnings.push(format!(
            "{relative} is an unsealed tail (renamed but never entered in the manifests: a \
             crash while sealing); its rows are not covered by the chain"
        ));
    } else {
        report.problem(
            ProblemClass::ExtraFile,
            relative,
            None,
            "no manifest names this file: it was added to the archive".into(),
        );
    }
}
