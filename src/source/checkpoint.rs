//! Read checkpoints for `--follow --state DIR`: where each followed file may resume.
//!
//! A checkpoint names a file by identity, not by name: device, inode, and a SHA-256 fingerprint
//! of its first bytes. The name is what rotation changes; the inode alone is what a filesystem
//! recycles after a delete; together with the first bytes they tell "the same file, grown"
//! from "a new file that happens to sit at this path".
//!
//! A checkpoint is recorded only once its batch is acknowledged ([`crate::frame::ack`]): its
//! events are with the sinks and, when archiving, sealed in the archive. The store is written
//! atomically (temporary file, fsync, rename, fsync of the directory), so after a crash the
//! file on disk is either the old or the new version, never a torn one. After a graceful stop
//! a restart reads every line exactly once. After a crash (SIGKILL, power loss) the lines
//! handed on since the last save (at most about [`SAVE_EVERY`], or, when archiving, since the
//! last sealed file) are read again: never lost, possibly repeated.
//!
//! ```
//! use secpipe::source::checkpoint::{Checkpoint, CheckpointStore, FileKey};
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = CheckpointStore::open(dir.path()).unwrap();
//! let key = FileKey { dev: 1, ino: 2, fingerprint_len: 3, fingerprint: [7; 32] };
//! store.record(Checkpoint { path: "auth.log".into(), key: key.clone(), offset: 120, line: 4 });
//! store.save().unwrap();
//! let reopened = CheckpointStore::open(dir.path()).unwrap();
//! assert_eq!(reopened.get("auth.log").map(|c| (c.offset, c.line)), Some((120, 4)));
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::frame::ack::{Ack, Acknowledge, PositionKeeper};
use crate::metrics::Metrics;

/// How many leading bytes identify a file's content.
pub const FINGERPRINT_BYTES: usize = 256;

/// Checkpoints are written at most this often while running (and always at shutdown): an
/// fsync per batch would cost more than the reading.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

const STORE_FILE: &str = "checkpoints.json";

/// The identity of a file's content.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    /// How many leading bytes the fingerprint covers (fewer than [`FINGERPRINT_BYTES`] while the
    /// file is that short).
    pub fingerprint_len: u16,
    #[serde(with = "hex_bytes")]
    pub fingerprint: [u8; 32],
}

impl FileKey {
    /// Identify the open file `file`.
    ///
    /// ```
    /// use std::io::Write;
    /// let mut f = tempfile::NamedTempFile::new().unwrap();
    /// f.write_all(b"first line\n").unwrap();
    /// let key = secpipe::source::checkpoint::FileKey::of(f.as_file()).unwrap();
    /// assert_eq!(key.fingerprint_len, 11);
    /// assert!(key.same_content(f.as_file()).unwrap());
    /// ```
    pub fn of(file: &File) -> io::Result<FileKey> {
        let meta = file.metadata()?;
        let (fingerprint_len, fingerprint) = fingerprint(file, FINGERPRINT_BYTES)?;
        Ok(FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint_len,
            fingerprint,
        })
    }

    /// Whether `file` still starts with the bytes this key was taken from. False after a
    /// copytruncate that was followed by new writes, or when an inode was reused.
    pub fn same_content(&self, file: &File) -> io::Result<bool> {
        let (len, print) = fingerprint(file, usize::from(self.fingerprint_len))?;
        Ok(len == self.fingerprint_len && print == self.fingerprint)
    }

    /// Whether this key is a device + inode match for `meta`.
    pub fn same_inode(&self, meta: &std::fs::Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }
}

/// SHA-256 of the first `max` bytes of `file` (fewer if it is shorter), and how many it covered.
fn fingerprint(file: &File, max: usize) -> io::Result<(u16, [u8; 32])> {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let want = max.min(FINGERPRINT_BYTES);
    let mut got = 0;
    while got < want {
        match file.read_at(&mut head[got..want], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let digest: [u8; 32] = Sha256::digest(&head[..got]).into();
    // `got` is at most FINGERPRINT_BYTES (256), so it fits.
    Ok((got as u16, digest))
}

/// Where one followed file may resume: the byte just after the last line handed to the sinks,
/// and that line's number.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The followed path (the `source` name of its events).
    #[serde(with = "arc_str")]
    pub path: Arc<str>,
    #[serde(flatten)]
    pub key: FileKey,
    pub offset: u64,
    pub line: u64,
}

impl Checkpoint {
    /// Whether `file` (just opened at `self.path`) is the checkpointed file and this checkpoint
    /// can be resumed in it.
    pub fn resumes_in(&self, file: &File) -> io::Result<bool> {
        let meta = file.metadata()?;
        Ok(self.key.same_inode(&meta)
            && meta.len() >= self.offset
            && self.key.same_content(file)?)
    }
}

/// The checkpoints of all followed files, kept in `DIR/checkpoints.json`.
pub struct CheckpointStore {
    dir: PathBuf,
    /// One per followed path: after a rotation, the old file's checkpoint is of no further use.
    by_path: BTreeMap<Arc<str>, Checkpoint>,
    dirty: bool,
    last_save: Option<Instant>,
}

impl CheckpointStore {
    /// Open (creating) the state directory and load what it holds. A corrupt store is an
    /// error, not a silent restart from zero, which would read every file again.
    pub fn open(dir: &Path) -> io::Result<CheckpointStore> {
        std::fs::create_dir_all(dir).map_err(at(dir))?;
        let mut by_path = BTreeMap::new();
        let store = dir.join(STORE_FILE);
        match std::fs::read(&store) {
            Ok(bytes) => {
                let list: Vec<Checkpoint> = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", dir.join(STORE_FILE).display()),
                    )
                })?;
                for cp in list {
                    by_path.insert(cp.path.clone(), cp);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&store)(e)),
        }
        Ok(CheckpointStore {
            dir: dir.to_path_buf(),
            by_path,
            dirty: false,
            last_save: None,
        })
    }

    /// The checkpoint last recorded for `path`.
    pub fn get(&self, path: &str) -> Option<&Checkpoint> {
        self.by_path.get(path)
    }

    /// Remember `cp` (in memory until the next save).
    pub fn record(&mut self, cp: Checkpoint) {
        self.by_path.insert(cp.path.clone(), cp);
        self.dirty = true;
    }

    /// Save when something changed and the last save is [`SAVE_EVERY`] old. True if it saved.
    pub fn save_if_due(&mut self) -> io::Result<bool> {
        let due = self.last_save.is_none_or(|t| t.elapsed() >= SAVE_EVERY);
        if self.dirty && due {
            self.save()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Write the store atomically now.
    pub fn save(&mut self) -> io::Result<()> {
        let list: Vec<&Checkpoint> = self.by_path.values().collect();
        let text = serde_json::to_vec_pretty(&list).map_err(io::Error::other)?;
        write_atomically(&self.dir, STORE_FILE, &text)?;
        self.dirty = false;
        self.last_save = Some(Instant::now());
        Ok(())
    }
}

/// Replace `dir/name` with `bytes` so that a crash leaves the old file or the new one, never
/// a part: a temporary file, synced, renamed over it, and the directory synced.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(at(&tmp))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(at(&tmp))?;
    // The rename is only durable once the directory entry is.
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// `map_err(at(&path))`: the same error, its message naming `path` (a state error that says
/// only "Permission denied" leaves the operator guessing which file).
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A file of read positions in `--state` that saves itself when due: the followed files'
/// checkpoints ([`CheckpointStore`]) and the journal's cursor
/// ([`super::journal::store::CursorStore`]).
pub trait PositionFile: Send + 'static {
    /// Save when something changed and the last save is old enough; whether it saved.
    fn save_if_due(&mut self) -> io::Result<bool>;
    /// Save now.
    fn save(&mut self) -> io::Result<()>;
}

/// A position file shared by its reader (which reads resume points from it), the ordered
/// stage (which records acknowledged positions) and the pipeline (which saves it when due and
/// at the end, as a [`PositionKeeper`]), counting its saves.
pub struct SavedPositions<F> {
    file: Arc<Mutex<F>>,
    metrics: Arc<OnceLock<Arc<Metrics>>>,
}

impl<F> Clone for SavedPositions<F> {
    fn clone(&self) -> Self {
        SavedPositions {
            file: self.file.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<F: PositionFile> SavedPositions<F> {
    pub fn new(file: F) -> SavedPositions<F> {
        SavedPositions {
            file: Arc::new(Mutex::new(file)),
            metrics: Arc::new(OnceLock::new()),
        }
    }

    /// Count each save in `metrics` (`--metrics`).
    pub fn count_saves_in(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The file; `None` once a thread panicked holding it.
    pub fn lock(&self) -> Option<std::sync::MutexGuard<'_, F>> {
        self.file.lock().ok()
    }

    fn saved(&self) {
        if let Some(metrics) = self.metrics.get() {
            metrics.checkpoint_saved();
        }
    }
}

impl<F: PositionFile> PositionKeeper for SavedPositions<F> {
    fn save_if_due(&mut self) {
        let saved = match self.file.lock() {
            Ok(mut file) => file.save_if_due(),
            Err(_) => return,
        };
        match saved {
            Ok(true) => self.saved(),
            Ok(false) => {}
            Err(e) => crate::report::warn(&format!("--state: {e}")),
        }
    }

    fn save(&mut self) -> Result<(), String> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| "--state: a reading thread panicked".to_string())?;
        file.save().map_err(|e| format!("--state: {e}"))?;
        drop(file);
        self.saved();
        Ok(())
    }
}

impl PositionFile for CheckpointStore {
    fn save_if_due(&mut self) -> io::Result<bool> {
        CheckpointStore::save_if_due(self)
    }

    fn save(&mut self) -> io::Result<()> {
        CheckpointStore::save(self)
    }
}

/// The followed files' checkpoints, shared.
pub type SharedStore = SavedPositions<CheckpointStore>;

impl SavedPositions<CheckpointStore> {
    /// The checkpoint recorded for `path`.
    pub fn get(&self, path: &str) -> Option<Checkpoint> {
        self.lock()?.get(path).cloned()
    }

    /// An acknowledgement that records `checkpoint` once its batch is done with.
    pub fn ack(&self, checkpoint: Checkpoint) -> Ack {
        Ack::new(FileAck {
            store: self.clone(),
            checkpoint,
        })
    }
}

/// A followed file's read position after one batch, recorded once the batch is done with.
struct FileAck {
    store: SharedStore,
    checkpoint: Checkpoint,
}

impl Acknowledge for FileAck {
    fn acknowledge(self: Box<Self>) {
        if let Some(mut store) = self.store.lock() {
            store.record(self.checkpoint);
        }
    }
}

mod arc_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        Ok(String::deserialize(d)?.into())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_file_does_not_resume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        std::fs::write(&path, b"one\ntwo\n").expect("write");
        let file = File::open(&path).expect("open");
        let cp = Checkpoint {
            path: "log".into(),
            key: FileKey::of(&file).expect("key"),
            offset: 4,
            line: 1,
        };
        assert!(cp.resumes_in(&file).expect("stat"));
        // Same inode, different first bytes: a copytruncate followed by new writes.
        std::fs::write(&path, b"uno\ndos\n").expect("rewrite");
        assert!(!cp.resumes_in(&file).expect("stat"));
        // Shorter than the checkpoint: truncated.
        std::fs::write(&path, b"o").expect("truncate");
        assert!(!cp.resumes_in(&file).expect("stat"));
    }

    #[test]
    fn a_corrupt_store_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(STORE_FILE), b"{not json").expect("write");
        assert!(CheckpointStore::open(dir.path()).is_err());
    }
}
