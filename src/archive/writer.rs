//! The background writer thread: Parquet encoding, zstd, row-leaf hashing, sealing files and
//! appending to the audit chain. The calling thread only fills column builders and sends
//! finished batches through a bounded channel (so a slow disk applies backpressure).
//!
//! Sealing order (crash safety): write `part-unsealed.parquet.tmp` → fsync → rename to
//! `part-<file_seq>.parquet` → fsync the directory → append the manifest line → fsync →
//! rewrite `audit/checkpoint` through a temporary file and rename.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::TimestampMicrosecondType;
use arrow::record_batch::RecordBatch;
use base64::Engine;
use ed25519_dalek::SigningKey;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use super::ArchiveError;
use super::canonical::{self, digest_bytes, leaves_of, merkle_root, schema_sha256};
use super::keys;
use super::manifest::{Checkpoint, Manifest, RowRange, TimeRange};
use super::schema::Table;
use crate::event::{civil_from_days, format_ts};

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Name of a file being written, inside its date directory.
pub const UNSEALED_NAME: &str = "part-unsealed.parquet.tmp";

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

/// The audit chain as the writer extends it.
pub struct Chain {
    pub dir: PathBuf,
    pub archive_id: [u8; 16],
    pub head: String,
    pub count: u64,
    pub next_file_seq: u64,
    pub key: Option<SigningKey>,
    /// When the checkpoint was last rewritten, and for how many manifests.
    pub checkpointed: Option<(std::time::Instant, u64)>,
}

/// The signed checkpoint is rewritten at most this often while files are sealed (and always at
/// a clean close). Rewriting it per seal cost four fsyncs a file; a checkpoint that lags the
/// chain by a moment is what a crash leaves anyway, and verify reports the unsigned tail as a
/// warning, not as tampering.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Chain {
    pub fn archive_hex(&self) -> String {
        hex::encode(self.archive_id)
    }

    /// Append one manifest line (fsynced). The checkpoint follows with
    /// [`Chain::checkpoint_if_due`] or [`Chain::write_checkpoint`].
    pub fn append(&mut self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let line = manifest.to_line();
        let path = self.dir.join("audit").join("manifests.jsonl");
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        file.sync_data()?;
        self.head = super::manifest::line_hash(line.as_bytes());
        self.count += 1;
        Ok(())
    }

    /// Rewrite the checkpoint if it is behind the chain and [`CHECKPOINT_EVERY`] has passed.
    pub fn checkpoint_if_due(&mut self) -> Result<(), ArchiveError> {
        match self.checkpointed {
            Some((_, count)) if count == self.count => Ok(()),
            Some((at, _)) if at.elapsed() < CHECKPOINT_EVERY => Ok(()),
            _ => self.write_checkpoint(),
        }
    }

    /// Atomically replace `audit/checkpoint` with the current head (signed with the key).
    pub fn write_checkpoint(&mut self) -> Result<(), ArchiveError> {
        let mut checkpoint = Checkpoint {
            archive: self.archive_hex(),
            count: self.count,
            head: self.head.clone(),
            signature: None,
        };
        if let Some(key) = &self.key {
            let signature = keys::sign(key, checkpoint.body().as_bytes());
            checkpoint.signature = Some((keys::keyhash(&key.verifying_key()), signature));
        }
        let audit = self.dir.join("audit");
        let tmp = audit.join("checkpoint.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(checkpoint.to_text().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, audit.join("checkpoint"))?;
        sync_dir(&audit)?;
        self.checkpointed = Some((std::time::Instant::now(), self.count));
        Ok(())
    }
}

/// fsync a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Date directory name, e.g. `date=2026-11-23`.
pub fn date_dir(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("date={y:04}-{m:02}-{d:02}")
}

/// A file writer that hashes every byte it writes.
struct HashingFile {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

struct OpenFile {
    table: Table,
    date: i64,
    writer: ArrowWriter<HashingFile>,
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

fn writer_properties(table: Table) -> Result<WriterProperties, ArchiveError> {
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
    Ok(builder.build())
}

fn time_column(table: Table) -> &'static str {
    match table {
        Table::Events => "ts",
        // An alert belongs to the day it fired (its last evidence time).
        Table::Alerts => "last_seen",
    }
}

/// Run the writer until the channel closes. Seals whatever is open at the end.
pub fn run(
    rx: crossbeam_channel::Receiver<Msg>,
    mut chain: Chain,
) -> Result<WriterSummary, ArchiveError> {
    let mut summary = WriterSummary::default();
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
                    seal(file, &mut chain, &mut summary)?;
                }
                let file = match &mut open[index] {
                    Some(file) => file,
                    none => none.insert(start_file(&chain.dir, table, date)?),
                };
                add_rows(file, &chain.archive_id, &batch)?;
            }
            Msg::Seal(table) => {
                if let Some(file) = open[slot(table)].take() {
                    seal(file, &mut chain, &mut summary)?;
                }
            }
            Msg::Pause => {
                for slot in &mut open {
                    if let Some(file) = slot.take() {
                        seal(file, &mut chain, &mut summary)?;
                    }
                }
                let pause = Manifest::pause(chain.archive_hex(), chain.head.clone(), now_text());
                chain.append(&pause)?;
                chain.write_checkpoint()?;
            }
        }
    }
    for slot in &mut open {
        if let Some(file) = slot.take() {
            seal(file, &mut chain, &mut summary)?;
        }
    }
    if chain.checkpointed.map(|(_, count)| count) != Some(chain.count) {
        chain.write_checkpoint()?;
    }
    summary.head = chain.head.clone();
    Ok(summary)
}

/// Current wall-clock time as RFC 3339.
pub fn now_text() -> String {
    format_ts(crate::event::now_micros())
}

fn start_file(dir: &Path, table: Table, date: i64) -> Result<OpenFile, ArchiveError> {
    let date_path = dir.join(table.dir_name()).join(date_dir(date));
    std::fs::create_dir_all(&date_path)?;
    let tmp_path = date_path.join(UNSEALED_NAME);
    let file = File::create(&tmp_path)?;
    let sink = HashingFile {
        file,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let writer = ArrowWriter::try_new(sink, table.schema(), Some(writer_properties(table)?))
        .map_err(|e| ArchiveError::Other(format!("{}: {e}", tmp_path.display())))?;
    Ok(OpenFile {
        table,
        date,
        writer,
        tmp_path,
        leaves: Vec::new(),
        first_seq: None,
        rows: 0,
        ts_min: i64::MAX,
        ts_max: i64::MIN,
    })
}

fn add_rows(
    file: &mut OpenFile,
    archive_id: &[u8; 16],
    batch: &RecordBatch,
) -> Result<(), ArchiveError> {
    // Hashing and Parquet encoding are independent: run them side by side.
    let writer = &mut file.writer;
    let (hashed, written) = rayon::join(
        || leaves_of(archive_id, batch.columns()),
        || writer.write(batch),
    );
    written.map_err(|e| ArchiveError::Other(format!("{}: {e}", file.tmp_path.display())))?;
    let (seqs, leaves) =
        hashed.map_err(|e| ArchiveError::Other(format!("archive rows: {}", e.0)))?;
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
    Ok(())
}

fn seal(
    mut file: OpenFile,
    chain: &mut Chain,
    summary: &mut WriterSummary,
) -> Result<(), ArchiveError> {
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
        file.writer
            .append_key_value_metadata(KeyValue::new(key.to_owned(), value));
    }
    file.writer
        .finish()
        .map_err(|e| ArchiveError::Other(format!("{}: {e}", file.tmp_path.display())))?;
    let sink = file.writer.inner_mut();
    sink.file.sync_all()?;
    let file_sha = hex::encode(digest_bytes(sink.hasher.clone()));
    let file_bytes = sink.bytes;
    drop(file.writer);

    let date_dir_name = date_dir(file.date);
    let name = format!("part-{file_seq:08}.parquet");
    let relative = format!("{}/{date_dir_name}/{name}", file.table.dir_name());
    let final_path = chain.dir.join(&relative);
    std::fs::rename(&file.tmp_path, &final_path)?;
    if let Some(parent) = final_path.parent() {
        sync_dir(parent)?;
    }

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
    chain.append(&manifest)?;
    chain.checkpoint_if_due()?;
    chain.next_file_seq += 1;
    summary.files += 1;
    summary.bytes += file_bytes;
    Ok(())
}
