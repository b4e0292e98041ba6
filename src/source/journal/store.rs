//! Where the journal source keeps its cursor: `DIR/journal-cursor.json` in `--state DIR`.
//!
//! The file maps each journal read (`local`, or `dir:PATH` for `--journal-dir PATH`) to the
//! cursor of the last entry whose batch is done with: with the sinks and, when archiving,
//! durable in the archive (the [`Ack`] machinery of [`crate::frame::ack`], as for followed
//! files). It is written like the followed files' checkpoints: a temporary file, fsync,
//! rename, fsync of the directory, at most every [`SAVE_EVERY`] and at shutdown.
//!
//! A cursor read back is checked against the cursor alphabet before it is used: the state
//! directory may be writable by others than the one who wrote it, and its content goes onto
//! journalctl's command line. A file that does not parse, or holds anything else, is an error,
//! not a silent start from the end (which would skip what was written while secpipe was down).
//!
//! ```
//! use secpipe::source::journal::store::CursorStore;
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = CursorStore::open(dir.path()).unwrap();
//! store.record("local", "s=ab;i=7".into());
//! store.save().unwrap();
//! assert_eq!(CursorStore::open(dir.path()).unwrap().get("local"), Some("s=ab;i=7"));
//! std::fs::write(dir.path().join("journal-cursor.json"), r#"{"local":"-D/etc"}"#).unwrap();
//! assert!(CursorStore::open(dir.path()).is_err());
//! ```

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::cursor::is_cursor;
use crate::frame::ack::{Ack, Acknowledge};
use crate::metrics::Metrics;
use crate::source::checkpoint::{PositionFile, SAVE_EVERY, SavedPositions};

const STORE_FILE: &str = "journal-cursor.json";

/// The saved cursors, by journal.
pub struct CursorStore {
    dir: PathBuf,
    cursors: BTreeMap<String, String>,
    dirty: bool,
    last_save: Option<Instant>,
}

impl CursorStore {
    /// Open (creating) the state directory and load the cursors it holds.
    pub fn open(dir: &Path) -> io::Result<CursorStore> {
        std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
        let path = dir.join(STORE_FILE);
        let cursors = match std::fs::read(&path) {
            Ok(bytes) => {
                let cursors: BTreeMap<String, String> = serde_json::from_slice(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
                    .map_err(|e| at(&path, e))?;
                if let Some((journal, _)) = cursors.iter().find(|(_, c)| !is_cursor(c.as_bytes())) {
                    return Err(at(
                        &path,
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("the cursor of {journal:?} is not a journal cursor"),
                        ),
                    ));
                }
                cursors
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(at(&path, e)),
        };
        Ok(CursorStore {
            dir: dir.to_path_buf(),
            cursors,
            dirty: false,
            last_save: None,
        })
    }

    /// The cursor saved for `journal`.
    pub fn get(&self, journal: &str) -> Option<&str> {
        self.cursors.get(journal).map(String::as_str)
    }

    /// Remember `cursor` for `journal` (in memory until the next save).
    pub fn record(&mut self, journal: &str, cursor: String) {
        self.cursors.insert(journal.to_string(), cursor);
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
        let text = serde_json::to_vec_pretty(&self.cursors).map_err(io::Error::other)?;
        crate::source::checkpoint::write_atomically(&self.dir, STORE_FILE, &text)?;
        self.dirty = false;
        self.last_save = Some(Instant::now());
        Ok(())
    }
}

/// The same error, its message naming `path`.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl PositionFile for CursorStore {
    fn save_if_due(&mut self) -> io::Result<bool> {
        CursorStore::save_if_due(self)
    }

    fn save(&mut self) -> io::Result<()> {
        CursorStore::save(self)
    }
}

/// One journal's cursor in the shared store: read by the journal reader (its resume point),
/// recorded by the ordered stage (acknowledged cursors), saved by the pipeline (through
/// [`SharedCursor::keeper`]).
#[derive(Clone)]
pub struct SharedCursor {
    store: SavedPositions<CursorStore>,
    /// Which journal's cursor this is (`local`, `dir:PATH`).
    journal: Arc<str>,
}

impl SharedCursor {
    pub fn new(store: CursorStore, journal: &str) -> SharedCursor {
        SharedCursor {
            store: SavedPositions::new(store),
            journal: journal.into(),
        }
    }

    /// Count each save in `metrics`.
    pub fn count_saves_in(&self, metrics: Arc<Metrics>) {
        self.store.count_saves_in(metrics);
    }

    /// What the pipeline saves the store through.
    pub fn keeper(&self) -> SavedPositions<CursorStore> {
        self.store.clone()
    }

    /// The cursor saved (or last acknowledged) for this journal.
    pub fn get(&self) -> Option<String> {
        Some(self.store.lock()?.get(&self.journal)?.to_string())
    }

    /// An acknowledgement that records `cursor` once its batch is done with.
    pub fn ack(&self, cursor: String) -> Ack {
        Ack::new(CursorAck {
            shared: self.clone(),
            cursor,
        })
    }
}

/// The cursor after one batch's last entry, recorded once the batch is done with.
struct CursorAck {
    shared: SharedCursor,
    cursor: String,
}

impl Acknowledge for CursorAck {
    fn acknowledge(self: Box<Self>) {
        if let Some(mut store) = self.shared.store.lock() {
            store.record(&self.shared.journal, self.cursor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file whose cursor journalctl cannot parse (`abc`: letters only) made every
    /// journalctl exit at once ("Failed to seek to cursor"), restarted every 10 s for ever
    /// while the journal went unread. It is refused when the store is opened, like other
    /// garbage.
    #[test]
    fn a_cursor_journalctl_cannot_parse_is_refused_at_open() {
        for bad in ["abc", "s=", "=1", "s=1;;i=2", "s=xyz;i=1", "q=1", ";"] {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(
                dir.path().join(STORE_FILE),
                format!(r#"{{"local":"{bad}"}}"#),
            )
            .expect("write");
            assert!(CursorStore::open(dir.path()).is_err(), "{bad:?} accepted");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let real = "s=55d4d1f2a6f04a5f9d35fa6c2aa3b7b1;i=1a2;b=0123456789abcdef0123456789abcdef;\
                    m=3e9;t=60a24181e43e8;x=9d41";
        std::fs::write(
            dir.path().join(STORE_FILE),
            format!(r#"{{"local":"{real}"}}"#),
        )
        .expect("write");
        let store = CursorStore::open(dir.path()).expect("a real cursor");
        assert_eq!(store.get("local"), Some(real));
    }
}
