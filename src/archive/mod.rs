//! archive: the Parquet archive and its hash-chained, signed audit trail (DESIGN section 6).
//!
//! ## Layout
//! ```text
//! ARCHIVE/
//!   events/date=YYYY-MM-DD/part-<file_seq:08>.parquet
//!   alerts/date=YYYY-MM-DD/part-<file_seq:08>.parquet
//!   audit/manifests.jsonl   one manifest line per sealed file (+ resume / pause lines)
//!   audit/checkpoint        head and manifest count, Ed25519-signed with a key
//!   audit/discarded/        unsealed leftovers of a crashed run (never part of the chain)
//! ```
//! - `file_seq` is one counter for events and alerts files. Event `seq` numbers every event
//!   row; alert rows have their own `seq` counter.
//! - A file holds rows of one UTC date: when an appended row's date differs from the open
//!   file's, the open file is sealed and a new one starts (late events around midnight can
//!   therefore make small files; every row is in its own date's partition).
//! - An alert row belongs to the date of its `last_seen` (when it fired, in event time).
//! - Files are also sealed every `roll_rows` rows, when [`Archive::tick`] sees one older than
//!   `roll_secs`, and at [`Archive::close`].
//! - A run that opens an existing archive appends a `resume` line; a clean close appends a
//!   `pause` line. A new archive starts with a checkpoint of 0 manifests naming its
//!   `archive_id`; from the first manifest on, the manifests are the authority for it.
//! - After a crash, [`Archive::open`] moves leftovers into `audit/discarded/` (the unsealed
//!   `part-unsealed-<n>.parquet.tmp` files, and the next-numbered file if it was renamed but never
//!   entered in the manifests and the last run did not close cleanly) and
//!   lists them in the `resume` line; `seq` and `file_seq` continue after the last sealed file.
//!   A torn (newline-less) last manifest line is cut off and recorded the same way.
//!
//! ## Storage
//! Every byte the archive keeps goes through an [`store::ArchiveStore`], by object name, never
//! by path: [`store::LocalStore`] (a directory, the layout above) is the first; an object
//! store is the next. The writer encodes Parquet into a local staged file and only its commit
//! steps go through the store; verify ([`verify::verify_store`]) and replay
//! ([`crate::source::archive`]) only read through it. Whatever the storage, a store must
//! guarantee:
//! - **durable before published**: a file is on stable storage before it appears under its
//!   final name, and before any manifest line names it;
//! - **publish never overwrites**: a name already taken is an error, not a replacement (a
//!   sealed file is never rewritten; a file planted under the next name stays for verify);
//! - **manifest appends are atomic per line**: a crash leaves whole lines and at most one torn
//!   last line, which open cuts off and records; the checkpoint is replaced whole;
//! - **names stay inside**: an [`store::ObjectName`] cannot be absolute or hold `..`, `.`,
//!   an empty segment or NUL, so no manifest line can make verify, replay or the writer touch
//!   a file outside the archive.
//!
//! ## When writing fails (a full disk)
//! The first failure is the error the run reports, naming the path and its cause
//! (`ARCHIVE/events/date=…/part-unsealed-….parquet.tmp: … No space left on device`); later
//! calls repeat that cause rather than only "the writer has stopped". The run then emits one
//! CRITICAL `secpipe.archive_failed` alert ([`failure_alert`]) to its alert output and stops,
//! detection included, and exits 2. Stopping is deliberate: the archive is the evidence
//! of record and every alert's evidence names archive rows; with `--state`, input positions
//! are saved only once the archive holds their lines, so after space is freed a restart reads
//! those lines again, archives them and detects on them. Nothing is skipped, it is delayed.
//! (Detecting on without an archive would leave alerts whose evidence is nowhere, and
//! positions saved past lines that were never archived.)
//!
//! ```
//! use secpipe::archive::{Archive, ArchiveOptions};
//! use secpipe::event::Event;
//! let dir = tempfile::tempdir().unwrap();
//! let opts = ArchiveOptions { dir: dir.path().into(), key: None, roll_rows: 1000, roll_secs: 60 };
//! let mut archive = Archive::open(opts).unwrap();
//! let event = Event { seq: Some(archive.next_seq()), message: "hi".into(), ..Event::default() };
//! archive.append_events(&[event]).unwrap();
//! let summary = archive.close().unwrap();
//! assert_eq!(summary.event_rows, 1);
//! let report = secpipe::archive::verify::verify(dir.path(), &Default::default());
//! assert_eq!(report.exit_code(), 0, "{report}");
//! ```

pub mod canonical;
mod custody;
pub mod keys;
pub mod manifest;
pub mod schema;
pub mod store;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::alert::Alert;
use crate::event::Event;
use manifest::{Checkpoint, GENESIS_PREV, Manifest};
use schema::{AlertColumns, EventColumns, Table};
use store::{ArchiveStore, LocalStore, StoreError};
use writer::{ChainHead, Msg, WriterSummary};

/// Where and how to archive (`--archive DIR --key FILE --roll-rows N --roll-secs S`).
#[derive(Clone, Debug)]
pub struct ArchiveOptions {
    /// The archive's directory; with [`Archive::open_in`], only its name in messages (a
    /// bucket's URL).
    pub dir: PathBuf,
    /// Ed25519 private key file from `secpipe keygen`; `None`: unsigned hash chain.
    pub key: Option<PathBuf>,
    /// Seal a file after this many rows (DESIGN default 1,000,000).
    pub roll_rows: u64,
    /// Seal a file older than this many seconds, checked by [`Archive::tick`] (default 60).
    pub roll_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// What the store could not do, naming the file or object ("No space left on device"
    /// alone does not say which disk).
    #[error("{0}")]
    Store(#[from] StoreError),
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

/// Rows handed to the writer thread at a time: big enough to amortise the channel, small
/// enough that the calling thread never holds much.
const CHUNK_ROWS: usize = 16 * 1024;
/// A chunk is also sent once its raw lines and messages reach this many bytes: 16,384 lines of
/// 64 KiB (the longest secpipe accepts) would otherwise be a gigabyte held at once.
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks in flight before `append_*` blocks (backpressure).
const CHANNEL_CHUNKS: usize = 4;
const DAY_MICROS: i64 = 86_400_000_000;

/// Calling-thread view of the file the writer has open for one table.
#[derive(Default)]
struct OpenFileState {
    /// Event date (days since the epoch) of the rows in the open file.
    date: Option<i64>,
    rows: u64,
    /// Wall clock (µs) when the file got its first row.
    opened_at: i64,
}

/// An open archive being appended to.
pub struct Archive {
    opts: ArchiveOptions,
    next_seq: u64,
    next_alert_seq: u64,
    events: EventColumns,
    alerts: AlertColumns,
    events_file: OpenFileState,
    alerts_file: OpenFileState,
    sender: Option<Sender<Msg>>,
    writer: Option<JoinHandle<Result<WriterSummary, ArchiveError>>>,
    /// Event `seq`s below this are in sealed files whose manifest lines are on disk.
    durable: Arc<AtomicU64>,
    event_rows: u64,
    /// Bytes of raw lines and messages in the chunk being filled (see [`CHUNK_BYTES`]).
    chunk_bytes: usize,
    alert_rows: u64,
    /// Why the writer stopped, once it has: every later call reports this first cause rather
    /// than only that the writer is gone.
    failure: Option<String>,
}

/// `secpipe.archive_failed`: the alert a run emits when its archive could not be written
/// (`cause` is the first error, with its path), at wall-clock time `now` (µs).
///
/// ```
/// let alert = secpipe::archive::failure_alert(
///     std::path::Path::new("/var/lib/secpipe"),
///     "/var/lib/secpipe/audit/manifests.jsonl: No space left on device (os error 28)",
///     0,
/// );
/// assert_eq!(alert.rule, "secpipe.archive_failed");
/// assert_eq!(alert.priority, "P0");
/// assert!(alert.summary.contains("No space left on device"));
/// ```
pub fn failure_alert(dir: &Path, cause: &str, now: i64) -> Alert {
    Alert::about_secpipe(
        "secpipe.archive_failed",
        crate::alert::Severity::Critical,
        ("archive", dir.display().to_string()),
        1,
        now,
        format!(
            "the archive could not be written ({cause}); secpipe stops archiving and detecting. \
             Fix the cause and restart: with --state it resumes where the archive stopped"
        ),
    )
}

/// Where an existing chain stands.
struct ChainState {
    archive_id: [u8; 16],
    head: String,
    count: u64,
    next_file_seq: u64,
    next_seq: u64,
    next_alert_seq: u64,
    sealed_paths: std::collections::HashSet<String>,
    /// The chain ends with a clean-close `pause` line: no crash leftover can exist.
    closed_cleanly: bool,
}

impl Archive {
    /// Open or create `opts.dir`, continuing an existing chain.
    pub fn open(opts: ArchiveOptions) -> Result<Archive, ArchiveError> {
        let store = Arc::new(LocalStore::new(opts.dir.clone()));
        Archive::open_in(store, opts)
    }

    /// Open or create the archive kept in `store`, continuing an existing chain (`opts.dir`
    /// only names it, in [`Archive::dir`]).
    pub fn open_in(
        store: Arc<dyn ArchiveStore>,
        opts: ArchiveOptions,
    ) -> Result<Archive, ArchiveError> {
        let key = opts
            .key
            .as_deref()
            .map(keys::load_signing_key)
            .transpose()?;
        // A crashed run's commits that a store can finish (uploads to a bucket) are finished
        // first, so that the chain read below is the one that run had built.
        let finished = store.recover()?;
        if finished > 0 {
            crate::report::warn(&format!(
                "archive {}: finished {finished} commit(s) a previous run had sealed but not \
                 uploaded",
                store.location()
            ));
        }
        // Before anything in the archive changes: may this run extend it, and which lines
        // will its signatures cover without vouching for them?
        let unsigned_lines = custody::check_before_extending(&*store, key.as_ref())?;
        store.create()?;
        if key.is_none() {
            crate::report::warn(&format!(
                "warning: archive {} is not signed (no --key): it is a hash chain \
                 that detects edits, but anyone can rewrite it end to end. Make a key with \
                 `secpipe keygen --out FILE` and pass --key FILE.",
                store.location()
            ));
        }
        let mut discarded = Vec::new();
        let state = read_chain(&*store, &mut discarded)?;
        let is_new = state.is_none();
        let state = match state {
            Some(state) => state,
            None => new_chain_state()?,
        };
        discard_unsealed(&*store, &state, &mut discarded)?;

        if let Some(range) = unsigned_lines {
            crate::report::warn(&format!(
                "warning: archive {}: manifest lines {}..={} are covered by no valid \
                 signature of this key; this run continues the chain after them and records in \
                 its `resume` line that it does not vouch for them (`secpipe verify` reports \
                 them as unsigned)",
                store.location(),
                range.first,
                range.last
            ));
        }

        let mut ledger = writer::Ledger::new(
            Arc::clone(&store),
            state.archive_id,
            state.head.clone(),
            state.count,
            key,
        );
        let mut chain = ChainHead {
            archive_id: state.archive_id,
            head: state.head.clone(),
            next_file_seq: state.next_file_seq,
        };
        if !is_new || !discarded.is_empty() {
            let mut resume = Manifest::resume(
                chain.archive_hex(),
                chain.head.clone(),
                writer::now_text(),
                discarded,
            );
            resume.unsigned_lines = unsigned_lines;
            ledger.append(&chain.extend(&resume))?;
        }
        // A brand-new archive's checkpoint of 0 manifests records the archive id.
        ledger.write_checkpoint()?;

        let (sender, receiver) = crossbeam_channel::bounded(CHANNEL_CHUNKS);
        let durable = Arc::new(AtomicU64::new(state.next_seq));
        let durable_for_writer = Arc::clone(&durable);
        let writer = std::thread::Builder::new()
            .name("secpipe-archive".into())
            .spawn(move || writer::run(receiver, store, chain, ledger, durable_for_writer))?;
        Ok(Archive {
            opts,
            next_seq: state.next_seq,
            next_alert_seq: state.next_alert_seq,
            events: EventColumns::with_capacity(CHUNK_ROWS),
            alerts: AlertColumns::new(),
            events_file: OpenFileState::default(),
            alerts_file: OpenFileState::default(),
            sender: Some(sender),
            writer: Some(writer),
            durable,
            event_rows: 0,
            chunk_bytes: 0,
            alert_rows: 0,
            failure: None,
        })
    }

    /// The archive's directory.
    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }

    /// The `seq` the next appended event must carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Every event with a smaller `seq` is in a sealed file whose manifest line is on disk (or,
    /// for a bucket, recorded in the spool, from where a restart finishes its upload): it
    /// survives a crash. Input positions (`--state`) may be saved up to the line of this event,
    /// and no further, or a SIGKILL would lose the unsealed rows from the archive.
    pub fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Append events whose `seq` fields are `next_seq()`, `next_seq()+1`, … in order
    /// (an event with `seq: None` gets the next number).
    pub fn append_events(&mut self, events: &[Event]) -> Result<(), ArchiveError> {
        for event in events {
            let seq = self.next_seq;
            if let Some(given) = event.seq
                && given != seq
            {
                return Err(ArchiveError::Other(format!(
                    "event seq {given} does not follow the archive (expected {seq})"
                )));
            }
            self.make_room(Table::Events, event.ts.div_euclid(DAY_MICROS))?;
            self.events.push(seq, event);
            self.next_seq += 1;
            self.event_rows += 1;
            self.chunk_bytes += event.raw.len() + event.message.len();
            if self.events.len() >= CHUNK_ROWS || self.chunk_bytes >= CHUNK_BYTES {
                self.flush(Table::Events)?;
            }
        }
        Ok(())
    }

    /// Append alerts (each gets the next alert `seq`).
    pub fn append_alerts(&mut self, alerts: &[Alert]) -> Result<(), ArchiveError> {
        for alert in alerts {
            self.make_room(Table::Alerts, alert.last_seen.div_euclid(DAY_MICROS))?;
            self.alerts.push(self.next_alert_seq, alert);
            self.next_alert_seq += 1;
            self.alert_rows += 1;
            if self.alerts.len() >= CHUNK_ROWS {
                self.flush(Table::Alerts)?;
            }
        }
        Ok(())
    }

    /// Roll files whose age exceeds `roll_secs` (called periodically with the wall clock, µs).
    pub fn tick(&mut self, now: i64) -> Result<(), ArchiveError> {
        let max_age = i64::try_from(self.opts.roll_secs)
            .unwrap_or(i64::MAX / 1_000_000)
            .saturating_mul(1_000_000);
        for table in [Table::Events, Table::Alerts] {
            let state = self.file_state(table);
            if state.date.is_some() && now.saturating_sub(state.opened_at) >= max_age {
                self.seal(table)?;
            }
        }
        Ok(())
    }

    /// Seal open files, append manifests, write the checkpoint.
    pub fn close(mut self) -> Result<ArchiveSummary, ArchiveError> {
        self.flush(Table::Events)?;
        self.flush(Table::Alerts)?;
        self.send(Msg::Pause)?;
        drop(self.sender.take());
        let written = self.join_writer()?;
        Ok(ArchiveSummary {
            event_rows: self.event_rows,
            alert_rows: self.alert_rows,
            files: written.files,
            bytes: written.bytes,
            head: written.head,
        })
    }

    /// Before one row of `date` (days since the epoch) goes into `table`: seal the open file if
    /// the row belongs to another date or the file is full, and count the row.
    fn make_room(&mut self, table: Table, date: i64) -> Result<(), ArchiveError> {
        let roll_rows = self.opts.roll_rows.max(1);
        let file = self.file_state(table);
        if file.date.is_some_and(|d| d != date) || file.rows >= roll_rows {
            self.seal(table)?;
        }
        let file = self.file_state(table);
        if file.date.is_none() {
            file.date = Some(date);
            file.opened_at = crate::event::now_micros();
        }
        file.rows += 1;
        Ok(())
    }

    fn file_state(&mut self, table: Table) -> &mut OpenFileState {
        match table {
            Table::Events => &mut self.events_file,
            Table::Alerts => &mut self.alerts_file,
        }
    }

    /// Hand buffered rows of `table` to the writer.
    fn flush(&mut self, table: Table) -> Result<(), ArchiveError> {
        let (batch, date) = match table {
            Table::Events if !self.events.is_empty() => {
                self.chunk_bytes = 0;
                (self.events.finish(), self.events_file.date)
            }
            Table::Alerts if !self.alerts.is_empty() => {
                (self.alerts.finish(), self.alerts_file.date)
            }
            _ => return Ok(()),
        };
        let date = date.unwrap_or_default();
        self.send(Msg::Rows { table, date, batch })
    }

    fn seal(&mut self, table: Table) -> Result<(), ArchiveError> {
        self.flush(table)?;
        if self.file_state(table).date.is_some() {
            self.send(Msg::Seal(table))?;
        }
        *self.file_state(table) = OpenFileState::default();
        Ok(())
    }

    fn send(&mut self, msg: Msg) -> Result<(), ArchiveError> {
        let sent = match &self.sender {
            Some(sender) => sender.send(msg).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer stopped: its result says why.
        self.sender = None;
        match self.join_writer() {
            Err(e) => Err(e),
            Ok(_) => Err(ArchiveError::Other("the archive writer has stopped".into())),
        }
    }

    /// Wait for the writer thread and return its result; the first failure is remembered, so
    /// a later call (the close after a failed append) still names the cause.
    fn join_writer(&mut self) -> Result<WriterSummary, ArchiveError> {
        let Some(handle) = self.writer.take() else {
            return Err(ArchiveError::Other(match &self.failure {
                Some(cause) => format!("the archive writer has stopped: {cause}"),
                None => "the archive writer has stopped".into(),
            }));
        };
        let result = handle
            .join()
            .map_err(|_| ArchiveError::Other("the archive writer thread panicked".into()))
            .and_then(|r| r);
        if let Err(e) = &result {
            self.failure = Some(e.to_string());
        }
        result
    }
}

impl Drop for Archive {
    /// Dropping without `close` (e.g. on an error path) still seals what was handed to the
    /// writer; rows still in the builders are flushed first.
    fn drop(&mut self) {
        if self.sender.is_some() {
            let _ = self.flush(Table::Events);
            let _ = self.flush(Table::Alerts);
            drop(self.sender.take());
            let _ = self.join_writer();
        }
    }
}

fn parse_archive_id(hex_text: &str) -> Option<[u8; 16]> {
    let bytes = hex::decode(hex_text).ok()?;
    <[u8; 16]>::try_from(bytes.as_slice()).ok()
}

/// Read the existing chain, if there is one. A torn last line is cut off (recorded in
/// `discarded`).
fn read_chain(
    store: &dyn ArchiveStore,
    discarded: &mut Vec<String>,
) -> Result<Option<ChainState>, ArchiveError> {
    let Some(bytes) = store.read_manifests()? else {
        return Ok(read_checkpoint_only(store));
    };
    let (lines, torn) = manifest::split_lines(&bytes);
    if let Some(torn) = torn {
        store.cut_manifests((bytes.len() - torn.len()) as u64)?;
        discarded.push(format!(
            "{}: a torn last line of {} bytes",
            store::MANIFESTS,
            torn.len()
        ));
    }
    let Some(last) = lines.last() else {
        return Ok(read_checkpoint_only(store));
    };
    let bad = |line_no: usize, why: String| {
        ArchiveError::Other(format!(
            "{}: line {line_no}: {why}; run `secpipe verify` on this archive",
            store.location_of(store::MANIFESTS)
        ))
    };
    let mut state: Option<ChainState> = None;
    for (i, line) in lines.iter().enumerate() {
        let m = Manifest::parse(line).map_err(|e| bad(i + 1, e))?;
        let archive_id = parse_archive_id(&m.archive)
            .ok_or_else(|| bad(i + 1, "the archive id is not 32 hex digits".into()))?;
        // `head` and `count` are set from the last line below.
        let s = state.get_or_insert_with(|| ChainState::empty(archive_id));
        if let Some(file_seq) = m.file_seq {
            s.next_file_seq = s.next_file_seq.max(file_seq + 1);
        }
        if let (Some(rows), Some(table)) = (&m.rows, m.table.as_deref()) {
            let end = rows.first_seq + rows.count;
            match Table::from_dir_name(table) {
                Some(Table::Events) => s.next_seq = s.next_seq.max(end),
                Some(Table::Alerts) => s.next_alert_seq = s.next_alert_seq.max(end),
                None => return Err(bad(i + 1, format!("unknown table `{table}`"))),
            }
        }
        s.closed_cleanly = m.kind == "pause";
        if let Some(p) = m.path {
            s.sealed_paths.insert(p);
        }
    }
    Ok(state.map(|mut s| {
        s.head = manifest::line_hash(last);
        s.count = lines.len() as u64;
        s
    }))
}

/// A new archive that crashed before its first manifest: the checkpoint holds its id.
fn read_checkpoint_only(store: &dyn ArchiveStore) -> Option<ChainState> {
    let bytes = store.read_checkpoint().ok()??;
    let checkpoint = Checkpoint::parse(std::str::from_utf8(&bytes).ok()?).ok()?;
    let archive_id = parse_archive_id(&checkpoint.archive)?;
    (checkpoint.count == 0).then(|| ChainState::empty(archive_id))
}

/// A brand-new archive: a random id and no manifests.
fn new_chain_state() -> Result<ChainState, ArchiveError> {
    let mut archive_id = [0u8; 16];
    getrandom::fill(&mut archive_id)
        .map_err(|e| ArchiveError::Other(format!("no randomness for an archive id: {e}")))?;
    Ok(ChainState::empty(archive_id))
}

impl ChainState {
    /// The state of a chain with no manifest yet.
    fn empty(archive_id: [u8; 16]) -> ChainState {
        ChainState {
            archive_id,
            head: GENESIS_PREV.to_owned(),
            count: 0,
            next_file_seq: 0,
            next_seq: 0,
            next_alert_seq: 0,
            sealed_paths: Default::default(),
            closed_cleanly: false,
        }
    }
}

/// `part-00000012.parquet` → 12.
pub(crate) fn file_seq_of(relative: &str) -> Option<u64> {
    let name = relative.rsplit('/').next()?;
    name.strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// Move a crashed run's unsealed files into `audit/discarded/`.
fn discard_unsealed(
    store: &dyn ArchiveStore,
    state: &ChainState,
    discarded: &mut Vec<String>,
) -> Result<(), ArchiveError> {
    let stamp = crate::event::now_micros().to_string();
    for name in store::table_objects(store)? {
        let relative = name.as_str();
        let unsealed = relative.ends_with(".parquet.tmp");
        // Only the next file_seq can be a crash leftover, and only if the last run did not
        // close cleanly; any other unnamed file is left in place for verify to report.
        let orphan = !state.closed_cleanly
            && !state.sealed_paths.contains(relative)
            && file_seq_of(relative) == Some(state.next_file_seq);
        if !(unsealed || orphan) {
            continue;
        }
        store.discard(&name, &stamp)?;
        discarded.push(name.to_string());
    }
    Ok(())
}
