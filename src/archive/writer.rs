//! The archive's three background threads, in a line. The calling thread only fills column
//! builders and sends finished batches through a bounded channel (so a slow disk applies
//! backpressure).
//!
//! - The **encoder** (`secpipe-archive`) hashes rows and encodes them into the open file of
//!   each table, under a temporary name. A file's first batch is held back until the next
//!   message shows whether the file ends with it (see [`add_rows`]).
//! - The **sealer** (`secpipe-seal`) finishes each file in order: the last row group (and the
//!   whole file, if it is one held-back batch), the footer with `row_root`, `file_seq` and
//!   `prev`, the SHA-256 of its bytes, and its manifest line. Every input the line hashes is
//!   known here, so the chain is extended in file order without waiting for the disk.
//! - The **committer** (`secpipe-commit`) makes each finished file durable, strictly in chain
//!   order, through the [`ArchiveStore`]: publish the staged file under its final name
//!   (LocalStore: fsync it → rename `part-unsealed-<n>.parquet.tmp` to
//!   `part-<file_seq>.parquet` → fsync the directory) → append the manifest line (durably) →
//!   replace the checkpoint when due, and then raises the durable event `seq`
//!   ([`super::Archive::durable_seq`]). Its fsyncs overlap the encoding of the next files; with
//!   one small file per event date they had been a third of the single writer's time.
//!
//! Only the committer's steps and the staging of each file go through the store: the encoder
//! writes Parquet bytes straight into the staged local file, as before.
//!
//! A crash can therefore leave several temporary files (the encoder and sealer run ahead of the
//! committer by a few files) but, as before, at most one renamed file that no manifest names:
//! the next `file_seq`, renamed just before its line was appended.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::AsArray;
use arrow::datatypes::TimestampMicrosecondType;
use arrow::record_batch::RecordBatch;
use base64::Engine;
use ed25519_dalek::SigningKey;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use super::ArchiveError;
use super::canonical::{self, digest_bytes, leaves_of, merkle_root, schema_sha256};
use super::keys;
use super::manifest::{Checkpoint, Manifest, RowRange, TimeRange};
use super::schema::Table;
use super::store::{ArchiveStore, Durability, ManifestCommit, ObjectName, Staged};
use crate::event::{civil_from_days, format_ts};

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A row group is closed early once its buffered size reaches this (long lines).
pub const ROW_GROUP_BYTES: usize = 24 << 20;

/// A file is sealed once it holds this many bytes, whatever `--roll-rows` says (long lines).
pub const FILE_BYTES: u64 = 16 << 20;

/// Sealed files the sealer may run ahead of the committer (each waits on disk, not in memory).
const COMMIT_QUEUE: usize = 8;

/// Name of a file being written, inside its date directory: `n` counts the files this run has
/// started (the `file_seq` is given at sealing, when the file's place in the chain is known).
fn unsealed_name(n: u64) -> String {
    format!("part-unsealed-{n:08}.parquet.tmp")
}

/// Work for the writer thread.
pub enum Msg {
    /// Rows for the open file of `table`, all of event date `date` (days since the epoch).
    Rows {
        table: Table,
        date: i64,
        batch: RecordBatch,
    },
    /// Seal the open file of `table`, if any.
    Seal(Table),
    /// Seal everything and append a `pause` line (clean close).
    Pause,
}

/// The chain as the encoder extends it: the hash the next manifest names as `prev`, and the
/// next `file_seq`.
pub struct ChainHead {
    pub archive_id: [u8; 16],
    pub head: String,
    pub next_file_seq: u64,
}

impl ChainHead {
    pub fn archive_hex(&self) -> String {
        hex::encode(self.archive_id)
    }

    /// Extend the chain by one manifest; returns the line to store (its exact bytes are what
    /// the next `prev` hashes).
    pub fn extend(&mut self, manifest: &Manifest) -> String {
        let line = manifest.to_line();
        self.head = super::manifest::line_hash(line.as_bytes());
        line
    }
}

/// The durable side of the chain: the manifests and the checkpoint, in the store.
pub struct Ledger {
    store: Arc<dyn ArchiveStore>,
    archive_id: [u8; 16],
    /// Hash of the last line appended, and how many lines there are.
    head: String,
    count: u64,
    key: Option<SigningKey>,
    /// When the checkpoint was last rewritten durably, and for how many manifests.
    checkpointed: Option<(std::time::Instant, u64)>,
    /// When it was last re-signed without fsyncs.
    resigned: Option<std::time::Instant>,
}

/// The checkpoint is made durable (fsynced) at most this often while files are sealed, and
/// always at a clean close: fsyncing it per seal cost four fsyncs a file. With a key it is
/// also re-signed without the fsyncs (the page cache survives a killed process) after a
/// manifest line when the committer has caught up (no file queued behind it: every file of a
/// live run) or [`RESIGN_EVERY`] has passed (files sealed back to back, as in a bulk import,
/// where re-signing after each one made the 1,000-file import ~20% slower). So a killed process
/// leaves unsigned at most its last line, or the lines of the last [`RESIGN_EVERY`] of a burst;
/// a power cut can take back the signatures of the last second. Verify reports such lines as
/// unsigned (exit 3), never as intact.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// See [`CHECKPOINT_EVERY`].
pub const RESIGN_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

impl Ledger {
    pub fn new(
        store: Arc<dyn ArchiveStore>,
        archive_id: [u8; 16],
        head: String,
        count: u64,
        key: Option<SigningKey>,
    ) -> Ledger {
        Ledger {
            store,
            archive_id,
            head,
            count,
            key,
            checkpointed: None,
            resigned: None,
        }
    }

    /// Publish a sealed file and append the line that names it, as one store step (see
    /// [`ArchiveStore::commit_file`]). The checkpoint follows with
    /// [`Ledger::checkpoint_if_due`] (a bucket store's came with the commit).
    pub fn commit_file(
        &mut self,
        staged: Staged,
        name: &ObjectName,
        sha256: &[u8; 32],
        line: &str,
        on_durable: &mut dyn FnMut(),
    ) -> Result<(), ArchiveError> {
        let head = super::manifest::line_hash(line.as_bytes());
        // A store that may finish this commit in a later run (a bucket) keeps the signed
        // checkpoint that covers it with it: lines a restart uploads are then vouched for by
        // the run that wrote them, not left unsigned by the crash.
        let checkpoint = self
            .store
            .keeps_commit_checkpoints()
            .then(|| self.checkpoint_text(self.count + 1, head.clone()));
        self.store.commit_file(
            staged,
            name,
            sha256,
            ManifestCommit {
                number: self.count + 1,
                line: line.as_bytes(),
                checkpoint: checkpoint.as_deref().map(str::as_bytes),
            },
            on_durable,
        )?;
        self.head = head;
        self.count += 1;
        if checkpoint.is_some() {
            self.checkpointed = Some((std::time::Instant::now(), self.count));
        }
        Ok(())
    }

    /// Append one manifest line (fsynced). The checkpoint follows with
    /// [`Ledger::checkpoint_if_due`] or [`Ledger::write_checkpoint`].
    pub fn append(&mut self, line: &str) -> Result<(), ArchiveError> {
        self.store
            .append_manifest(self.count + 1, line.as_bytes())?;
        self.head = super::manifest::line_hash(line.as_bytes());
        self.count += 1;
        Ok(())
    }

    /// After a manifest line: rewrite the checkpoint durably if it is behind the chain and
    /// [`CHECKPOINT_EVERY`] has passed; otherwise, with a key, re-sign it without fsyncs when
    /// `idle` (no file queued behind this one) or [`RESIGN_EVERY`] has passed.
    pub fn checkpoint_if_due(&mut self, idle: bool) -> Result<(), ArchiveError> {
        match self.checkpointed {
            Some((_, count)) if count == self.count => Ok(()),
            Some((at, _)) if at.elapsed() < CHECKPOINT_EVERY => {
                let resign = self.key.is_some()
                    && (idle || self.resigned.is_none_or(|t| t.elapsed() >= RESIGN_EVERY));
                if resign {
                    self.replace_checkpoint(false)?;
                    self.resigned = Some(std::time::Instant::now());
                }
                Ok(())
            }
            _ => self.write_checkpoint(),
        }
    }

    /// Atomically and durably replace the checkpoint with the current head (signed with the
    /// key).
    pub fn write_checkpoint(&mut self) -> Result<(), ArchiveError> {
        self.replace_checkpoint(true)?;
        self.checkpointed = Some((std::time::Instant::now(), self.count));
        Ok(())
    }

    /// Replace the checkpoint (readers see the old or the new one, never a mix); `durable`:
    /// on stable storage, else only written (it survives a killed process).
    fn replace_checkpoint(&mut self, durable: bool) -> Result<(), ArchiveError> {
        let text = self.checkpoint_text(self.count, self.head.clone());
        let durability = if durable {
            Durability::Synced
        } else {
            Durability::Written
        };
        self.store.replace_checkpoint(text.as_bytes(), durability)?;
        Ok(())
    }

    /// The checkpoint of `count` lines ending at `head`, signed with the key if there is one.
    fn checkpoint_text(&self, count: u64, head: String) -> String {
        let mut checkpoint = Checkpoint {
            archive: hex::encode(self.archive_id),
            count,
            head,
            signature: None,
        };
        if let Some(key) = &self.key {
            let signature = keys::sign(key, checkpoint.body().as_bytes());
            checkpoint.signature = Some((keys::keyhash(&key.verifying_key()), signature));
        }
        checkpoint.to_text()
    }
}

/// Date directory name, e.g. `date=2026-11-23`.
pub fn date_dir(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("date={y:04}-{m:02}-{d:02}")
}

/// A staged file writer that hashes every byte it writes.
struct HashingFile {
    staged: Staged,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.staged.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.staged.flush()
    }
}

struct OpenFile {
    table: Table,
    date: i64,
    /// The Parquet writer, made once the file has more than one batch (or at sealing).
    writer: Option<ArrowWriter<HashingFile>>,
    /// The temporary file, until the writer takes it.
    sink: Option<HashingFile>,
    /// The file's first batch, held back until the next message shows whether it is the
    /// whole file (see [`add_rows`]).
    first: Option<RecordBatch>,
    tmp_path: PathBuf,
    leaves: Vec<[u8; 32]>,
    first_seq: Option<u64>,
    rows: u64,
    ts_min: i64,
    ts_max: i64,
}

/// What the writer did, for the run summary.
#[derive(Default, Debug)]
pub struct WriterSummary {
    pub files: u64,
    pub bytes: u64,
    pub head: String,
}

/// `small_columns` are stored uncompressed besides the table's own (see [`complete`]).
fn writer_properties(
    table: Table,
    small_columns: &[&str],
) -> Result<WriterProperties, ArchiveError> {
    let zstd = ZstdLevel::try_new(3).map_err(|e| ArchiveError::Other(e.to_string()))?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // High-cardinality columns (raw, message, seq …) gain nothing from a dictionary.
        .set_dictionary_enabled(false);
    // Min/max statistics of long free text cost time and help no query.
    for column in ["raw", "message", "http_path", "summary", "evidence"] {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    for column in table.dictionary_columns() {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), true);
    }
    for column in table.delta_columns() {
        builder =
            builder.set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BINARY_PACKED);
    }
    for column in table.uncompressed_columns().iter().chain(small_columns) {
        builder =
            builder.set_column_compression(ColumnPath::from(*column), Compression::UNCOMPRESSED);
    }
    // Flags are long runs of one value.
    for field in table.schema().fields() {
        if field.data_type() == &arrow::datatypes::DataType::Boolean {
            builder =
                builder.set_column_encoding(ColumnPath::from(field.name().as_str()), Encoding::RLE);
        }
    }
    Ok(builder.build())
}

fn time_column(table: Table) -> &'static str {
    match table {
        Table::Events => "ts",
        // An alert belongs to the day it fired (its last evidence time).
        Table::Alerts => "last_seen",
    }
}

/// Durable steps, done by the committer in the order they were sent.
enum Commit {
    /// A finished Parquet file, staged, the name to publish it as, and the manifest line that
    /// seals it.
    File {
        staged: Staged,
        name: ObjectName,
        /// SHA-256 of the file's bytes (the manifest's `sha256`).
        sha256: [u8; 32],
        line: String,
        /// An events file: the event `seq` after its last row.
        events_end: Option<u64>,
    },
    /// A manifest line without a file (`pause`, at a clean close): checkpointed at once.
    Pause(String),
}

/// Work for the sealer, in chain order.
enum Sealing {
    /// A file with all its rows: finish it and give it its place in the chain.
    File(Box<OpenFile>),
    /// A clean close: append a `pause` line.
    Pause,
}

/// Run the archive's writer threads until `rx` closes (sealing whatever is open at the end):
/// the encoder on this thread, the sealer and the committer on their own. `chain` is where
/// the chain stands and `ledger` its durable files, as [`super::Archive::open`] left them.
///
/// `durable` is raised to the event `seq` after the last row of each events file once that
/// file and its manifest line are on disk.
pub fn run(
    rx: crossbeam_channel::Receiver<Msg>,
    store: Arc<dyn ArchiveStore>,
    chain: ChainHead,
    ledger: Ledger,
    durable: Arc<AtomicU64>,
) -> Result<WriterSummary, ArchiveError> {
    let (commit_tx, commit_rx) = crossbeam_channel::bounded(COMMIT_QUEUE);
    let committer = std::thread::Builder::new()
        .name("secpipe-commit".into())
        .spawn(move || commit(commit_rx, ledger, &durable))?;
    // A file waiting for the sealer holds its last row group in memory: keep the queue short.
    let (seal_tx, seal_rx) = crossbeam_channel::bounded(SEAL_QUEUE);
    let archive_id = chain.archive_id;
    let sealer = std::thread::Builder::new()
        .name("secpipe-seal".into())
        .spawn(move || seal_files(seal_rx, chain, commit_tx))?;
    let mut encoder = Encoder {
        store,
        archive_id,
        seal: seal_tx,
        started: 0,
    };
    let encoded = encoder.encode(rx);
    drop(encoder);
    let sealed = sealer
        .join()
        .map_err(|_| ArchiveError::Other("the archive sealer thread panicked".into()))?;
    let committed = committer
        .join()
        .map_err(|_| ArchiveError::Other("the archive committer thread panicked".into()))?;
    // The first stage to fail downstream is the cause: the ones before it only saw it stop.
    committed?;
    let summary = sealed?;
    encoded?;
    Ok(summary)
}

/// Files the encoder may hand on before the sealer has finished the previous one.
const SEAL_QUEUE: usize = 2;

/// The committer: make each finished file durable and extend the stored chain, in order.
fn commit(
    rx: crossbeam_channel::Receiver<Commit>,
    mut ledger: Ledger,
    durable: &AtomicU64,
) -> Result<(), ArchiveError> {
    for job in rx.iter() {
        match job {
            Commit::File {
                staged,
                name,
                sha256,
                line,
                events_end,
            } => {
                // Durable once the store says the commit will survive a crash: LocalStore
                // when the line is appended, a bucket store once the file and line are
                // recorded in its spool (a restart finishes the upload).
                let mut now_durable = || {
                    if let Some(end) = events_end {
                        durable.fetch_max(end, Ordering::Release);
                    }
                };
                ledger.commit_file(staged, &name, &sha256, &line, &mut now_durable)?;
                ledger.checkpoint_if_due(rx.is_empty())?;
            }
            Commit::Pause(line) => {
                ledger.append(&line)?;
                ledger.write_checkpoint()?;
            }
        }
    }
    if ledger.checkpointed.map(|(_, count)| count) != Some(ledger.count) {
        ledger.write_checkpoint()?;
    }
    Ok(())
}

/// The sealer: finish each file (its last row group and a footer naming its place in the
/// chain), extend the chain by its manifest, and hand both to the committer.
fn seal_files(
    rx: crossbeam_channel::Receiver<Sealing>,
    mut chain: ChainHead,
    commit: crossbeam_channel::Sender<Commit>,
) -> Result<WriterSummary, ArchiveError> {
    let send = |job: Commit| {
        commit
            .send(job)
            .map_err(|_| ArchiveError::Other("the archive committer has stopped".into()))
    };
    let mut summary = WriterSummary::default();
    for job in rx {
        match job {
            Sealing::File(file) => {
                let (job, bytes) = seal(*file, &mut chain)?;
                summary.files += 1;
                summary.bytes += bytes;
                send(job)?;
            }
            Sealing::Pause => {
                let pause = Manifest::pause(chain.archive_hex(), chain.head.clone(), now_text());
                send(Commit::Pause(chain.extend(&pause)))?;
            }
        }
    }
    summary.head = chain.head;
    Ok(summary)
}

/// The Parquet writer for a file, on its temporary file (taken from `sink`).
fn make_writer(
    table: Table,
    sink: &mut Option<HashingFile>,
    small_columns: &[&str],
    tmp_path: &Path,
) -> Result<ArrowWriter<HashingFile>, ArchiveError> {
    let sink = sink
        .take()
        .ok_or_else(|| ArchiveError::Other(format!("{}: written twice", tmp_path.display())))?;
    ArrowWriter::try_new(
        sink,
        table.schema(),
        Some(writer_properties(table, small_columns)?),
    )
    .map_err(|e| ArchiveError::Other(format!("{}: {e}", tmp_path.display())))
}

/// Finish `file` as the next file of `chain`; returns the committer's job and the file size.
fn seal(mut file: OpenFile, chain: &mut ChainHead) -> Result<(Commit, u64), ArchiveError> {
    complete(&mut file, &chain.archive_id)?;
    let mut writer = file.writer.take().ok_or_else(|| {
        ArchiveError::Other(format!(
            "{}: sealed before encoding",
            file.tmp_path.display()
        ))
    })?;
    let chunk_roots = canonical::chunk_roots(&file.leaves);
    let row_root = hex::encode(merkle_root(&chunk_roots));
    let chunk_roots_text = base64::engine::general_purpose::STANDARD.encode(chunk_roots.concat());
    let file_seq = chain.next_file_seq;
    let first_seq = file.first_seq.unwrap_or(0);
    for (key, value) in [
        ("secpipe.format", canonical::ROW_LABEL_TEXT.to_owned()),
        ("secpipe.archive", chain.archive_hex()),
        ("secpipe.table", file.table.dir_name().to_owned()),
        ("secpipe.file_seq", file_seq.to_string()),
        ("secpipe.first_seq", first_seq.to_string()),
        ("secpipe.rows", file.rows.to_string()),
        ("secpipe.row_root", row_root.clone()),
        ("secpipe.prev", chain.head.clone()),
        ("secpipe.chunk_rows", canonical::CHUNK_ROWS.to_string()),
        ("secpipe.chunk_roots", chunk_roots_text),
    ] {
        writer.append_key_value_metadata(KeyValue::new(key.to_owned(), value));
    }
    // `into_inner` writes the last row group and the footer and flushes: the sink then holds
    // every byte.
    let sink = writer
        .into_inner()
        .map_err(|e| ArchiveError::Other(format!("{}: {e}", file.tmp_path.display())))?;
    let sha256 = digest_bytes(sink.hasher);
    let file_sha = hex::encode(sha256);
    let file_bytes = sink.bytes;

    let relative = format!(
        "{}/{}/part-{file_seq:08}.parquet",
        file.table.dir_name(),
        date_dir(file.date)
    );
    let name = ObjectName::new(relative.as_str())?;
    let mut manifest = Manifest::data(chain.archive_hex(), chain.head.clone(), now_text());
    manifest.table = Some(file.table.dir_name().to_owned());
    manifest.file_seq = Some(file_seq);
    manifest.path = Some(relative);
    manifest.sha256 = Some(file_sha);
    manifest.bytes = Some(file_bytes);
    manifest.rows = Some(RowRange {
        first_seq,
        count: file.rows,
    });
    manifest.row_root = Some(row_root);
    manifest.time = Some(TimeRange {
        min: format_ts(file.ts_min),
        max: format_ts(file.ts_max),
    });
    manifest.schema_sha256 = Some(schema_sha256(&file.table.schema()));
    let line = chain.extend(&manifest);
    chain.next_file_seq += 1;
    let job = Commit::File {
        staged: sink.staged,
        name,
        sha256,
        line,
        events_end: (file.table == Table::Events).then_some(first_seq + file.rows),
    };
    Ok((job, file_bytes))
}

/// The encoder: the open file of each table, filled with rows as they come.
struct Encoder {
    store: Arc<dyn ArchiveStore>,
    archive_id: [u8; 16],
    seal: crossbeam_channel::Sender<Sealing>,
    /// Files started by this run (names their temporary files).
    started: u64,
}

impl Encoder {
    fn encode(&mut self, rx: crossbeam_channel::Receiver<Msg>) -> Result<(), ArchiveError> {
        let mut open: [Option<OpenFile>; 2] = [None, None];
        let slot = |t: Table| match t {
            Table::Events => 0,
            Table::Alerts => 1,
        };
        for msg in rx {
            match msg {
                Msg::Rows { table, date, batch } => {
                    let index = slot(table);
                    if open[index].as_ref().is_some_and(|f| f.date != date)
                        && let Some(file) = open[index].take()
                    {
                        self.hand_over(file)?;
                    }
                    let file = match &mut open[index] {
                        Some(file) => file,
                        none => none.insert(self.start_file(table, date)?),
                    };
                    add_rows(file, &self.archive_id, batch)?;
                    // A file of long lines is sealed by size too: a bucket store reads each
                    // sealed file whole to upload it in one create-only PUT.
                    let full = file.writer.as_ref().is_some_and(|writer| {
                        writer.inner().bytes + writer.in_progress_size() as u64 >= FILE_BYTES
                    });
                    if full && let Some(file) = open[index].take() {
                        self.hand_over(file)?;
                    }
                }
                Msg::Seal(table) => {
                    if let Some(file) = open[slot(table)].take() {
                        self.hand_over(file)?;
                    }
                }
                Msg::Pause => {
                    for slot in &mut open {
                        if let Some(file) = slot.take() {
                            self.hand_over(file)?;
                        }
                    }
                    self.send(Sealing::Pause)?;
                }
            }
        }
        for slot in &mut open {
            if let Some(file) = slot.take() {
                self.hand_over(file)?;
            }
        }
        Ok(())
    }

    /// Hand a file with all its rows to the sealer.
    fn hand_over(&self, file: OpenFile) -> Result<(), ArchiveError> {
        self.send(Sealing::File(Box::new(file)))
    }

    fn send(&self, job: Sealing) -> Result<(), ArchiveError> {
        self.seal
            .send(job)
            .map_err(|_| ArchiveError::Other("the archive sealer has stopped".into()))
    }

    fn start_file(&mut self, table: Table, date: i64) -> Result<OpenFile, ArchiveError> {
        let name = ObjectName::new(format!(
            "{}/{}/{}",
            table.dir_name(),
            date_dir(date),
            unsealed_name(self.started)
        ))?;
        self.started += 1;
        let staged = self.store.stage(&name)?;
        let tmp_path = staged.path().to_path_buf();
        let sink = HashingFile {
            staged,
            hasher: Sha256::new(),
            bytes: 0,
        };
        Ok(OpenFile {
            table,
            date,
            writer: None,
            sink: Some(sink),
            first: None,
            tmp_path,
            leaves: Vec::new(),
            first_seq: None,
            rows: 0,
            ts_min: i64::MAX,
            ts_max: i64::MIN,
        })
    }
}

/// Add `batch` to `file`.
///
/// A file's first batch is held back: if the file ends with it (one date's rows in a
/// day-by-day replay, a roll of few rows), [`complete`] encodes it with the whole file in view
/// and stores its null-only columns uncompressed, which spares a zstd context for each. A
/// second batch makes the writer with every column compressed.
fn add_rows(
    file: &mut OpenFile,
    archive_id: &[u8; 16],
    batch: RecordBatch,
) -> Result<(), ArchiveError> {
    if file.writer.is_none() && file.first.is_none() {
        file.first = Some(batch);
        return Ok(());
    }
    let first = file.first.take();
    let batches: Vec<&RecordBatch> = first.iter().chain([&batch]).collect();
    encode(file, archive_id, &batches, &[])
}

/// A column of a one-batch file with less data than this is stored uncompressed.
const SMALL_COLUMN_BYTES: usize = 1024;

/// Encode a held-back first batch: the file ends with it. Columns that zstd could shrink by a
/// few kB at most are stored uncompressed: null-only columns (a page of definition levels),
/// dictionary columns (the few-bit indices of at most [`super::CHUNK_ROWS`] rows) and columns
/// of under [`SMALL_COLUMN_BYTES`] (a day's few alerts). Each zstd column chunk costs two
/// compression contexts, about 30 µs on a 2-vCPU VM where `cpuid` traps.
fn complete(file: &mut OpenFile, archive_id: &[u8; 16]) -> Result<(), ArchiveError> {
    let Some(first) = file.first.take() else {
        return Ok(());
    };
    let dictionary = file.table.dictionary_columns();
    let small_columns: Vec<&str> = first
        .schema_ref()
        .fields()
        .iter()
        .zip(first.columns())
        .filter(|(field, column)| {
            column.null_count() == column.len()
                || dictionary.contains(&field.name().as_str())
                || column
                    .to_data()
                    .get_slice_memory_size()
                    .unwrap_or(usize::MAX)
                    < SMALL_COLUMN_BYTES
        })
        .map(|(field, _)| field.name().as_str())
        .collect();
    encode(file, archive_id, &[&first], &small_columns)
}

/// Hash the rows of `batches` and encode them into `file` (making its writer, with
/// `small_columns` uncompressed, if there is none yet).
fn encode(
    file: &mut OpenFile,
    archive_id: &[u8; 16],
    batches: &[&RecordBatch],
    small_columns: &[&str],
) -> Result<(), ArchiveError> {
    let writer = match &mut file.writer {
        Some(writer) => writer,
        none => none.insert(make_writer(
            file.table,
            &mut file.sink,
            small_columns,
            &file.tmp_path,
        )?),
    };
    // Hashing and Parquet encoding are independent: run them side by side.
    let (hashed, written) = rayon::join(
        || {
            batches
                .iter()
                .map(|batch| leaves_of(archive_id, batch.columns()))
                .collect::<Result<Vec<_>, _>>()
        },
        || batches.iter().try_for_each(|batch| writer.write(batch)),
    );
    written.map_err(|e| ArchiveError::Other(format!("{}: {e}", file.tmp_path.display())))?;
    // A row group is buffered whole until it is closed: close it early when long lines make
    // it large, so that the encoder's memory does not grow with the length of the lines.
    if writer.in_progress_size() >= ROW_GROUP_BYTES {
        writer
            .flush()
            .map_err(|e| ArchiveError::Other(format!("{}: {e}", file.tmp_path.display())))?;
    }
    let hashed = hashed.map_err(|e| ArchiveError::Other(format!("archive rows: {}", e.0)))?;
    for (batch, (seqs, leaves)) in batches.iter().zip(hashed) {
        if file.first_seq.is_none() {
            file.first_seq = seqs.first().map(|s| *s as u64);
        }
        file.leaves.extend_from_slice(&leaves);
        file.rows += batch.num_rows() as u64;
        if let Some(times) = batch.column_by_name(time_column(file.table)) {
            let times = times.as_primitive::<TimestampMicrosecondType>();
            for i in 0..times.len() {
                let t = times.value(i);
                file.ts_min = file.ts_min.min(t);
                file.ts_max = file.ts_max.max(t);
            }
        }
    }
    Ok(())
}

/// Current wall-clock time as RFC 3339.
pub fn now_text() -> String {
    format_ts(crate::event::now_micros())
}
