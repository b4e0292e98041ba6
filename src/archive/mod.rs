//! archive: the Parquet archive and its hash-chained, signed audit trail (DESIGN section 6).
//!
//! INTERFACE OWNED BY THE LEAD: keep `ArchiveOptions`, `Archive::open`, `next_seq`,
//! `append_events`, `append_alerts`, `tick`, `close`, `verify::verify`, `keys::keygen`
//! (internals and further submodules are yours).

use std::path::PathBuf;

use crate::alert::Alert;
use crate::event::Event;

#[derive(Clone, Debug)]
pub struct ArchiveOptions {
    pub dir: PathBuf,
    /// Ed25519 private key file from `secpipe keygen`; `None`: unsigned hash chain.
    pub key: Option<PathBuf>,
    pub roll_rows: u64,
    pub roll_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// What the archive wrote, for the end-of-run summary.
#[derive(Clone, Debug, Default)]
pub struct ArchiveSummary {
    pub event_rows: u64,
    pub alert_rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub head: String,
}

/// An open archive being appended to.
pub struct Archive {
    next_seq: u64,
}

impl Archive {
    /// Open or create `opts.dir`, continuing an existing chain.
    pub fn open(opts: ArchiveOptions) -> Result<Archive, ArchiveError> {
        let _ = opts;
        Ok(Archive { next_seq: 0 })
    }

    /// The `seq` the next appended event must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Append events whose `seq` fields are `next_seq()`, `next_seq()+1`, … in order.
    pub fn append_events(&mut self, events: &[Event]) -> Result<(), ArchiveError> {
        self.next_seq += events.len() as u64;
        Ok(())
    }

    pub fn append_alerts(&mut self, alerts: &[Alert]) -> Result<(), ArchiveError> {
        let _ = alerts;
        Ok(())
    }

    /// Roll files whose age exceeds `roll_secs` (called periodically with the wall clock, µs).
    pub fn tick(&mut self, now: i64) -> Result<(), ArchiveError> {
        let _ = now;
        Ok(())
    }

    /// Seal open files, append manifests, write the checkpoint.
    pub fn close(self) -> Result<ArchiveSummary, ArchiveError> {
        Ok(ArchiveSummary::default())
    }
}
