//! Who may extend an archive, and which lines a run signs over without vouching for them.
//!
//! A checkpoint signature vouches for the chain up to the head it names: every manifest line up
//! to it, and so every row those lines seal, was written by the holder of the key. Nothing
//! vouches for the lines after it. A run that signed its own checkpoint over such lines would
//! launder them: lines appended by someone without the key (or by a run without `--key`) would
//! come out of the next signed run looking as good as the rest. So, before anything in the
//! archive changes, [`super::Archive::open`] applies these rules:
//!
//! - A **signed archive** (its checkpoint carries a signature) is extended only with the key
//!   that signed it. Without `--key`, or with another key, open refuses (exit 2): rows written
//!   then would be covered by no signature that verifies with the archive's public key.
//! - A checkpoint signed with this key that **does not verify**, counts more lines than exist,
//!   or names a head that is not the hash of the line it counts: open refuses; the archive was
//!   tampered with, and `secpipe verify` says how.
//! - **Lines after the signed head** (a crash before the checkpoint caught up, lines someone
//!   appended), or every line of an archive written without a key, are extended over: the run's
//!   `resume` line names them in `unsigned_lines` and a warning goes to stderr. Verify keeps
//!   reporting them as unsigned however many signatures follow.
//!
//! An archive written without a key and extended without one stays a plain hash chain: nothing
//! to check here. Nor is this a verify: an edit further back in the chain (a broken link, a
//! changed file) is not hidden by signing after it, since verify recomputes every link and file
//! whatever the checkpoint says; only the signed head decides what a new signature would cover.
//!
//! ```
//! use secpipe::archive::{Archive, ArchiveOptions, keys};
//! let dir = tempfile::tempdir().unwrap();
//! let key = dir.path().join("k");
//! keys::keygen(&key).unwrap();
//! let opts = |key| ArchiveOptions {
//!     dir: dir.path().join("a"), key, roll_rows: 1000, roll_secs: 60,
//! };
//! Archive::open(opts(Some(key.clone()))).unwrap().close().unwrap();
//! // Without the key that signed it, the archive is not extended (and not touched).
//! let refused = Archive::open(opts(None)).err().unwrap().to_string();
//! assert!(refused.contains("refusing to extend"), "{refused}");
//! assert!(Archive::open(opts(Some(key))).is_ok());
//! ```

use ed25519_dalek::SigningKey;

use super::ArchiveError;
use super::keys;
use super::manifest::{self, Checkpoint, GENESIS_PREV, LineRange};
use super::store::ArchiveStore;

/// Check that a run with `key` (or without one) may extend the archive in `store`; returns
/// the manifest lines it would sign over without vouching for them, if any.
pub(super) fn check_before_extending(
    store: &dyn ArchiveStore,
    key: Option<&SigningKey>,
) -> Result<Option<LineRange>, ArchiveError> {
    let Some(checkpoint_bytes) = store.read_checkpoint()? else {
        // A new archive, or one whose checkpoint is gone: nothing was signed that we can see.
        return Ok(key.and_then(|_| unvouched_after(0, &manifest_lines_of(store))));
    };
    let checkpoint = std::str::from_utf8(&checkpoint_bytes)
        .map_err(|e| e.to_string())
        .and_then(Checkpoint::parse)
        .map_err(|e| refuse(store, &format!("audit/checkpoint does not parse ({e})")))?;
    let Some(key) = key else {
        if let Some((keyhash, _)) = &checkpoint.signature {
            return Err(refuse(
                store,
                &format!(
                    "it is signed (key {keyhash}) and no --key was given: the rows of this run \
                     would be covered by no signature. Pass --key with the key that signed it"
                ),
            ));
        }
        return Ok(None);
    };
    let hashes = manifest_lines_of(store);
    let Some((keyhash, signature)) = &checkpoint.signature else {
        // Written without a key until now: this run vouches for nothing before it.
        return Ok(unvouched_after(0, &hashes));
    };
    let verifying = key.verifying_key();
    let ours = keys::keyhash(&verifying);
    if *keyhash != ours {
        return Err(refuse(
            store,
            &format!(
                "its checkpoint is signed by key {keyhash}, not by the --key given ({ours}); one \
                 archive is signed by one key, so that one public key verifies all of it"
            ),
        ));
    }
    let head_at_count = match checkpoint.count {
        0 => Some(GENESIS_PREV.to_owned()),
        n => usize::try_from(n - 1)
            .ok()
            .and_then(|i| hashes.get(i).cloned()),
    };
    if head_at_count.as_deref() != Some(checkpoint.head.as_str())
        || !keys::check(&verifying, checkpoint.body().as_bytes(), signature)
    {
        return Err(refuse(
            store,
            "its signed checkpoint does not match its manifests or does not verify: the \
             archive was altered. Run `secpipe verify` on it",
        ));
    }
    Ok(unvouched_after(checkpoint.count, &hashes))
}

/// Lines after the first `vouched`, if there are any.
fn unvouched_after(vouched: u64, hashes: &[String]) -> Option<LineRange> {
    let count = hashes.len() as u64;
    (vouched < count).then_some(LineRange {
        first: vouched + 1,
        last: count,
    })
}

/// The hashes of the complete manifest lines (a torn last line is not part of the chain).
fn manifest_lines_of(store: &dyn ArchiveStore) -> Vec<String> {
    let bytes = store.read_manifests().ok().flatten().unwrap_or_default();
    let (lines, _torn) = manifest::split_lines(&bytes);
    lines.iter().map(|line| manifest::line_hash(line)).collect()
}

fn refuse(store: &dyn ArchiveStore, why: &str) -> ArchiveError {
    ArchiveError::Other(format!(
        "refusing to extend the archive {}: {why}",
        store.location()
    ))
}
