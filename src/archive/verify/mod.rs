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
//! ## Where the steps are
//! [`verify_store`] runs them in order over any [`ArchiveStore`] ([`verify`] over a
//! directory): `chain.rs` (1 and 6), `files.rs` (2 and 3, with `diagnose.rs` saying what
//! happened to a changed file's rows), `checkpoint.rs` (4 and 5), `report.rs` (the report and
//! its text). A name a manifest gives is checked to stay inside the archive
//! ([`ObjectName`](super::store::ObjectName)) before any store is asked for it: a line
//! naming `../../etc/passwd` is a `broken_link`, never a read.
//!
//! ```
//! use secpipe::archive::verify::{verify, VerifyOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let report = verify(dir.path(), &VerifyOptions::default());
//! assert_eq!(report.exit_code(), 2); // an empty directory is not an archive
//! ```

mod chain;
mod checkpoint;
mod diagnose;
mod files;
mod report;
mod storage;

use std::path::{Path, PathBuf};

use super::manifest;
use super::store::{ArchiveStore, CHECKPOINT, LocalStore, MANIFESTS, StoreError};
pub use report::{Problem, ProblemClass, SignatureState, UnsignedFile, UnsignedSpan, VerifyReport};
pub use storage::{
    LockGroup, ObjectProtection, ObjectState, StorageProtection, inspect_storage, printable,
};

/// Options of `secpipe verify`.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// `FILE.pub` from `secpipe keygen`: check the checkpoint signature.
    pub pubkey: Option<PathBuf>,
    /// A head recorded elsewhere (hex): the chain must contain it.
    pub expect_head: Option<String>,
}

/// Verify the archive in the directory `dir`. Never panics on a damaged archive; see the
/// module doc.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> VerifyReport {
    verify_store(&LocalStore::new(dir), opts)
}

/// Verify the archive kept in `store`: the steps of the module doc, in order.
pub fn verify_store(store: &dyn ArchiveStore, opts: &VerifyOptions) -> VerifyReport {
    let mut report = VerifyReport::new();
    let Some((manifests, checkpoint)) = read_audit(store, &mut report) else {
        return report;
    };
    // 1. The chain.
    let (lines, torn) = manifest::split_lines(&manifests);
    if let Some(torn) = torn {
        report.warnings.push(format!(
            "{MANIFESTS} ends in a torn line of {} bytes (a crash during an append); it is \
             not part of the chain",
            torn.len()
        ));
    }
    let Some(chain) = chain::read_chain(&lines, &mut report) else {
        return report;
    };
    report.manifests = lines.len() as u64;
    report.sealed_paths = chain
        .entries
        .iter()
        .filter_map(|entry| entry.manifest.path.clone())
        .collect();
    let head = chain.line_hashes.last().map(String::as_str);
    report.head = Some(head.unwrap_or(manifest::GENESIS_PREV).to_owned());

    // 2. Files, in parallel.
    files::check_files(store, &chain.entries, &mut report);

    // 3. Files no manifest names. Only without a clean close can the next file_seq be a
    // crash leftover.
    let next_file_seq = chain.last_file_seq.map_or(0, |last| last + 1);
    let leftover_file_seq = (!chain.closed_cleanly).then_some(next_file_seq);
    files::check_extra_files(store, &chain.entries, leftover_file_seq, &mut report);

    // 4. The checkpoint, and which lines no signature covers.
    let checkpoint = checkpoint.as_deref();
    if let Some(signed) =
        checkpoint::check_checkpoint(checkpoint, &chain.line_hashes, opts, &mut report)
    {
        checkpoint::record_unsigned(&chain.line_infos, signed, &mut report);
    }

    // 5. The anchored head.
    if let Some(expected) = &opts.expect_head
        && chain::check_anchor(expected, &chain.line_hashes, &mut report).is_none()
    {
        return report;
    }

    report.problems.sort_by_key(|p| p.order);
    report
}

/// The manifests (empty when there are none) and the checkpoint, if there is one; `None` when
/// verify cannot go on (neither exists, or one cannot be read: the report says why).
fn read_audit(
    store: &dyn ArchiveStore,
    report: &mut VerifyReport,
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let unreadable = |what: &str, e: StoreError| format!("{what}: {}", e.cause());
    let manifests = match store.read_manifests() {
        Ok(manifests) => manifests,
        Err(e) => {
            report.inconclusive = Some(unreadable(MANIFESTS, e));
            return None;
        }
    };
    let checkpoint = match store.read_checkpoint() {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            report.inconclusive = Some(unreadable(CHECKPOINT, e));
            return None;
        }
    };
    if manifests.is_none() && checkpoint.is_none() {
        report.inconclusive = Some(format!(
            "{} is not a secpipe archive (no {MANIFESTS} and no {CHECKPOINT})",
            store.location()
        ));
        return None;
    }
    Some((manifests.unwrap_or_default(), checkpoint))
}
