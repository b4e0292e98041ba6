//! The open output files of an export, one per (class, day) partition, bounded.
//!
//! Rows arrive in archive (`seq`) order, which is not day order: planted timestamps can make
//! every row of a batch belong to another day. Writing each batch's few rows per partition
//! straight out would make one tiny file (or row group) per batch and partition, and keeping
//! a Parquet writer's row group open per partition would hold memory per partition. So rows
//! wait in a per-partition buffer, and all buffers together hold at most [`PENDING_BYTES`]:
//! a partition's buffer is written as one row group when it reaches [`ROW_GROUP_BYTES`] or
//! [`super::parquet_out::ROW_GROUP_ROWS`], and when the total is over budget the largest
//! buffer is written. A Parquet writer is flushed after every row group, so an open file costs
//! a descriptor and its footer metadata, not rows. At most [`MAX_OPEN`] files are open; one
//! more closes the least recently written, whose next rows start a new part (`part-00001`).
//! Memory is bounded by these constants, not by the archive, and the number of files by the
//! number of partitions (unless more than [`MAX_OPEN`] are live at once).
//!
//! A file is written under a hidden `.NAME.partial` name and renamed when complete, so a lake
//! that picks up new objects never ingests half a file. An existing file is never
//! overwritten: export into an empty directory.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;

use super::classes::OcsfClass;
use super::columns::Cell;
use super::layout::Layout;

/// Open files at once.
pub const MAX_OPEN: usize = 256;
/// Rows waiting in all partitions' buffers, in (estimated) bytes.
pub const PENDING_BYTES: usize = 64 << 20;
/// A partition's buffer is written out as a row group at this many (estimated) bytes.
pub const ROW_GROUP_BYTES: usize = 8 << 20;

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One OCSF object per line.
    Json,
    /// zstd Parquet, nested structs.
    Parquet,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Parquet => "parquet",
        }
    }
}

enum FileWriter {
    Json(BufWriter<File>),
    Parquet(Box<ArrowWriter<File>>),
}

struct Open {
    writer: FileWriter,
    partial: PathBuf,
    path: PathBuf,
    last_used: u64,
}

type Partition = (OcsfClass, String);

/// Rows of one partition waiting to be written.
#[derive(Default)]
struct Pending {
    rows: Vec<Vec<Cell>>,
    bytes: usize,
}

/// About what a row holds in memory: its text and a fixed cost per cell.
fn row_bytes(row: &[Cell]) -> usize {
    row.iter()
        .map(|c| {
            48 + match c {
                Cell::Text(s) => s.len(),
                Cell::Map(pairs) => pairs.iter().map(|(k, v)| 48 + k.len() + v.len()).sum(),
                _ => 0,
            }
        })
        .sum()
}

/// The partitions' files; see the module doc.
pub struct Writers {
    out: PathBuf,
    layout: Layout,
    format: Format,
    open: BTreeMap<Partition, Open>,
    pending: BTreeMap<Partition, Pending>,
    pending_bytes: usize,
    next_part: BTreeMap<Partition, u32>,
    tick: u64,
    written: Vec<PathBuf>,
}

impl Writers {
    pub fn new(out: &Path, layout: Layout, format: Format) -> Writers {
        Writers {
            out: out.to_owned(),
            layout,
            format,
            open: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_bytes: 0,
            next_part: BTreeMap::new(),
            tick: 0,
            written: Vec::new(),
        }
    }

    /// Append `rows` of `class` to the partition of `day` (buffered; see the module doc).
    pub fn write(
        &mut self,
        class: OcsfClass,
        day: &str,
        rows: Vec<Vec<Cell>>,
    ) -> Result<(), String> {
        let key = (class, day.to_owned());
        let pending = self.pending.entry(key.clone()).or_default();
        for row in rows {
            let bytes = row_bytes(&row);
            pending.bytes += bytes;
            self.pending_bytes += bytes;
            pending.rows.push(row);
        }
        if pending.bytes >= ROW_GROUP_BYTES
            || pending.rows.len() >= super::parquet_out::ROW_GROUP_ROWS
        {
            self.write_pending(&key)?;
        }
        while self.pending_bytes > PENDING_BYTES {
            let largest = self
                .pending
                .iter()
                .max_by_key(|(_, p)| p.bytes)
                .map(|(key, _)| key.clone());
            match largest {
                Some(key) => self.write_pending(&key)?,
                None => break,
            }
        }
        Ok(())
    }

    /// Write the buffered rows of `key` out as one row group.
    fn write_pending(&mut self, key: &Partition) -> Result<(), String> {
        let Some(pending) = self.pending.remove(key) else {
            return Ok(());
        };
        self.pending_bytes -= pending.bytes;
        self.write_now(key.0, &key.1, &pending.rows)
    }

    fn write_now(&mut self, class: OcsfClass, day: &str, rows: &[Vec<Cell>]) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        self.tick += 1;
        let key = (class, day.to_owned());
        if !self.open.contains_key(&key) {
            if self.open.len() >= MAX_OPEN {
                self.close_least_recent()?;
            }
            let opened = self.open_part(&key)?;
            self.open.insert(key.clone(), opened);
        }
        let Some(open) = self.open.get_mut(&key) else {
            return Err("internal: partition not open".into());
        };
        open.last_used = self.tick;
        let at = |e: &dyn std::fmt::Display| format!("{}: {e}", open.partial.display());
        match &mut open.writer {
            FileWriter::Json(w) => {
                let columns = class.columns();
                for row in rows {
                    let line = super::json_text::to_line(&super::columns::to_json(columns, row));
                    w.write_all(line.as_bytes()).map_err(|e| at(&e))?;
                    w.write_all(b"\n").map_err(|e| at(&e))?;
                }
            }
            FileWriter::Parquet(w) => {
                let batch =
                    super::parquet_out::to_batch(class.columns(), rows).map_err(|e| at(&e))?;
                w.write(&batch).map_err(|e| at(&e))?;
                // One buffer, one row group: nothing stays buffered in the writer.
                w.flush().map_err(|e| at(&e))?;
            }
        }
        Ok(())
    }

    /// Close every file; the paths written, in the order they were completed.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, String> {
        let waiting: Vec<Partition> = self.pending.keys().cloned().collect();
        for key in waiting {
            self.write_pending(&key)?;
        }
        let keys: Vec<Partition> = self.open.keys().cloned().collect();
        for key in keys {
            if let Some(open) = self.open.remove(&key) {
                self.close(open)?;
            }
        }
        Ok(self.written)
    }

    fn open_part(&mut self, key: &Partition) -> Result<Open, String> {
        let n = self.next_part.entry(key.clone()).or_insert(0);
        let path = self
            .layout
            .file(&self.out, key.0, &key.1, *n, self.format.extension());
        *n += 1;
        let dir = path.parent().unwrap_or(&self.out).to_owned();
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if path.exists() {
            return Err(format!(
                "{}: already exists; export into an empty directory",
                path.display()
            ));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partial = dir.join(format!(".{name}.partial"));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| format!("{}: {e}", partial.display()))?;
        let writer = match self.format {
            Format::Json => FileWriter::Json(BufWriter::with_capacity(64 << 10, file)),
            Format::Parquet => {
                let class = key.0.columns();
                let schema = super::parquet_out::schema(class).map_err(|e| e.to_string())?;
                let props = super::parquet_out::writer_properties();
                FileWriter::Parquet(Box::new(
                    ArrowWriter::try_new(file, schema, Some(props))
                        .map_err(|e| format!("{}: {e}", partial.display()))?,
                ))
            }
        };
        Ok(Open {
            writer,
            partial,
            path,
            last_used: self.tick,
        })
    }

    fn close_least_recent(&mut self) -> Result<(), String> {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, open)| open.last_used)
            .map(|(key, _)| key.clone());
        if let Some(open) = oldest.and_then(|key| self.open.remove(&key)) {
            self.close(open)?;
        }
        Ok(())
    }

    fn close(&mut self, open: Open) -> Result<(), String> {
        let at = |e: &dyn std::fmt::Display| format!("{}: {e}", open.partial.display());
        let file = match open.writer {
            FileWriter::Json(w) => w.into_inner().map_err(|e| at(&e.into_error()))?,
            FileWriter::Parquet(w) => w.into_inner().map_err(|e| at(&e))?,
        };
        file.sync_all().map_err(|e| at(&e))?;
        fs::rename(&open.partial, &open.path).map_err(|e| at(&e))?;
        self.written.push(open.path);
        Ok(())
    }
}
