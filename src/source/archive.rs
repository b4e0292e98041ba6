//! The archive as a source of lines, for `secpipe replay ARCHIVE`.
//!
//! Replay re-parses and re-classifies each archived `raw` line with the current grammars, so new
//! grammars and rules see last month's evidence. Only the columns that takes are read: `seq`,
//! `source`, `line`, `raw`, `received`, `ts`, `ts_inferred`. The archived event time wins over
//! re-parsing (year inference depends on earlier lines that `--from` may skip), which is what
//! makes an archive replay give the live run's alerts.
//!
//! Files are taken in manifest (= `seq`) order. `--from/--to` skip whole row groups by their
//! `ts` statistics without decoding them.
//!
//! Everything is read through the archive's [`ArchiveStore`], by the names its manifests give:
//! ranged reads fetch only the row groups and columns replay decodes, and a manifest naming a
//! file outside the archive (`../../etc/passwd`) is refused, never read.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use indicatif::ProgressBar;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;

use super::{Liveness, ReadReport, Source, SourceContext, SourceHandle};
use crate::archive::schema::Table;
use crate::archive::store::{ArchiveStore, MANIFESTS, ObjectName};
use crate::event::TimeRange;
use crate::frame::LineBatch;
use crate::shutdown::Shutdown;

/// One sealed file of a table, named by the manifest chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedFile {
    /// The file's name in the archive, as its manifest line gives it (`events/date=…/…`);
    /// checked to stay inside the archive when the file is read.
    pub path: String,
    pub first_seq: u64,
    pub rows: u64,
    /// The manifest's event-time range of the file's rows, µs UTC, inclusive; `None` when the
    /// manifest has none (then the file is always read).
    pub time: Option<(i64, i64)>,
}

impl SealedFile {
    /// Can the file hold rows inside `range`? Judged from the manifest alone, without opening
    /// the file.
    ///
    /// ```
    /// use secpipe::event::TimeRange;
    /// use secpipe::source::archive::SealedFile;
    /// let f = SealedFile { path: "f".into(), first_seq: 0, rows: 1, time: Some((10, 20)) };
    /// assert!(f.overlaps(TimeRange { from: Some(20), to: None }));
    /// assert!(!f.overlaps(TimeRange { from: Some(21), to: None }));
    /// assert!(!f.overlaps(TimeRange { from: None, to: Some(10) }));
    /// ```
    pub fn overlaps(&self, range: TimeRange) -> bool {
        match self.time {
            Some((min, max)) => {
                range.from.is_none_or(|from| max >= from) && range.to.is_none_or(|to| min < to)
            }
            None => true,
        }
    }
}

/// A manifest `time` bound (`"2026-01-01T00:00:00.000000Z"`) as µs UTC.
fn manifest_time(value: &serde_json::Value) -> Option<i64> {
    let ts: jiff::Timestamp = value.as_str()?.parse().ok()?;
    Some(ts.as_microsecond())
}

/// The events files of one archive, and the store they are read from.
#[derive(Clone)]
pub struct ArchiveFiles {
    pub store: Arc<dyn ArchiveStore>,
    /// In `seq` order.
    pub files: Vec<SealedFile>,
}

/// The events files of the archive in `store`, in `seq` order, from its manifests.
pub fn event_files(store: Arc<dyn ArchiveStore>) -> Result<ArchiveFiles, String> {
    table_files(store, Table::Events)
}

/// The files of one table of the archive in `store`, in `seq` order, from its manifests (an
/// alerts file's time range is that of its alerts' `last_seen`).
pub fn table_files(store: Arc<dyn ArchiveStore>, table: Table) -> Result<ArchiveFiles, String> {
    let bytes = store
        .read_manifests()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: no manifests", store.location_of(MANIFESTS)))?;
    table_files_in(store, table, &bytes)
}

/// As [`table_files`], from the manifest lines `bytes` (all of them, or a prefix the caller
/// trusts).
pub fn table_files_in(
    store: Arc<dyn ArchiveStore>,
    table: Table,
    bytes: &[u8],
) -> Result<ArchiveFiles, String> {
    let prefix = format!("{}/", table.dir_name());
    let manifests = store.location_of(MANIFESTS);
    // A last line without its newline is torn (a crash during an append): not part of the
    // chain, as verify says, so not read (and not an error that makes the archive unreadable).
    let (lines, _torn) = crate::archive::manifest::split_lines(bytes);
    let mut files = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        let line = std::str::from_utf8(line).map_err(|e| format!("{manifests}:{}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let m: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{manifests}:{}: {e}", i + 1))?;
        let Some(path) = m["path"].as_str() else {
            continue; // pause/resume records name no file
        };
        if !path.starts_with(&prefix) {
            continue;
        }
        let first_seq = m["rows"]["first_seq"].as_u64();
        let rows = m["rows"]["count"].as_u64();
        match (first_seq, rows) {
            (Some(first_seq), Some(rows)) => files.push(SealedFile {
                path: path.to_owned(),
                first_seq,
                rows,
                time: manifest_time(&m["time"]["min"]).zip(manifest_time(&m["time"]["max"])),
            }),
            _ => {
                return Err(format!(
                    "{manifests}:{}: manifest without rows.first_seq/rows.count",
                    i + 1
                ));
            }
        }
    }
    files.sort_by_key(|f| f.first_seq);
    Ok(ArchiveFiles { store, files })
}

/// A progress bar over the rows of `archives` (their manifest row counts; the reader narrows it
/// to the files it reads), on stderr only when stderr is a terminal; otherwise a hidden bar that
/// costs nothing.
///
/// ```
/// // Under `cargo test` stderr is captured, not a terminal: no bar.
/// assert!(secpipe::source::archive::progress_bar(&[]).is_hidden());
/// ```
pub fn progress_bar(archives: &[ArchiveFiles]) -> ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let rows = archives.iter().flat_map(|a| &a.files).map(|f| f.rows);
    let bar = ProgressBar::new(rows.sum());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {human_pos}/{human_len} rows {rate} ETA {eta} {msg}",
    ) {
        // `{per_sec}` prints four decimals; a whole number of rows/s reads better.
        bar.set_style(style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            },
        ));
    }
    bar
}

/// The archive replay source: decodes the files of `archives` (one after the other, each in
/// `seq` order) and sends their lines, skipping the files and row groups that hold nothing
/// inside `range` without decoding them.
///
/// One thread is enough: it decodes ahead of the parse stage (the channel holds what it is
/// ahead by), and parsing, not decoding, is the slow stage. Decoding more files at once on
/// this 2-core machine only took CPU time from the parser (see the README's replay figures).
pub struct ArchiveReader {
    archives: Vec<ArchiveFiles>,
    range: TimeRange,
}

impl ArchiveReader {
    /// Read `archives` (in this order), only what lies inside `range`.
    pub fn new(archives: Vec<ArchiveFiles>, range: TimeRange) -> ArchiveReader {
        ArchiveReader { archives, range }
    }
}

impl Source for ArchiveReader {
    fn liveness(&self) -> Liveness {
        Liveness::Ends
    }

    fn start(self: Box<Self>, ctx: &SourceContext) -> Result<SourceHandle, String> {
        let range = self.range;
        let progress = progress_bar(&self.archives);
        let files: Vec<(Arc<dyn ArchiveStore>, SealedFile)> = self
            .archives
            .into_iter()
            .flat_map(|a| {
                let store = a.store;
                a.files.into_iter().map(move |f| (Arc::clone(&store), f))
            })
            .filter(|(_, f)| f.overlaps(range))
            .collect();
        progress.set_length(files.iter().map(|(_, f)| f.rows).sum());
        let (tx, shutdown) = (ctx.tx.clone(), ctx.shutdown.clone());
        // Named, so that profiles and `top -H` show the reader apart from the parse stage.
        SourceHandle::spawn("archive-read", move || {
            read_files(&files, range, &tx, &shutdown, &progress)
        })
    }
}

/// Send the lines of `files` inside `range`, in order; what was read. `progress` counts the
/// rows handed on.
fn read_files(
    files: &[(Arc<dyn ArchiveStore>, SealedFile)],
    range: TimeRange,
    tx: &crossbeam_channel::Sender<LineBatch>,
    shutdown: &Shutdown,
    progress: &ProgressBar,
) -> ReadReport {
    let mut report = ReadReport::default();
    let mut rows_done = 0;
    for (i, (store, file)) in files.iter().enumerate() {
        if shutdown.is_triggered() {
            break;
        }
        report.inputs += 1;
        progress.set_message(format!("file {}/{}", i + 1, files.len()));
        let mut open = true;
        let name = ObjectName::new(file.path.as_str()).map_err(|e| e.to_string());
        let result = name.and_then(|name| {
            read_file(&**store, &name, range, |b| {
                report.frames.lines += b.len() as u64;
                report.frames.bytes += b.data_len() as u64;
                progress.inc(b.len() as u64);
                open = tx.send(b).is_ok() && !shutdown.is_triggered();
                open
            })
        });
        if let Err(e) = result {
            let at = store.location_of(&file.path);
            report.errors.push(format!("{at}: {e}"));
        }
        if !open {
            break;
        }
        // Row groups outside `range` were skipped unread: they count as done.
        rows_done += file.rows;
        progress.set_position(rows_done);
    }
    progress.finish_and_clear();
    report
}

const COLUMNS: [&str; 7] = [
    "seq",
    "source",
    "line",
    "raw",
    "received",
    "ts",
    "ts_inferred",
];

/// Row groups whose statistics of the time column `column` (`ts`, or an alert's `last_seen`)
/// overlap `range` (all of them when statistics are absent).
pub fn row_groups_in_range(
    meta: &parquet::file::metadata::ParquetMetaData,
    column: &str,
    range: TimeRange,
) -> Vec<usize> {
    let schema = meta.file_metadata().schema_descr();
    let ts_col = (0..schema.num_columns()).find(|&i| schema.column(i).name() == column);
    (0..meta.num_row_groups())
        .filter(|&rg| {
            let Some(col) = ts_col else { return true };
            match meta.row_group(rg).column(col).statistics() {
                Some(Statistics::Int64(s)) => {
                    let below =
                        matches!((s.max_opt(), range.from), (Some(max), Some(from)) if *max < from);
                    let above =
                        matches!((s.min_opt(), range.to), (Some(min), Some(to)) if *min >= to);
                    !below && !above
                }
                _ => true,
            }
        })
        .collect()
}

/// Decode the file `name` of `store` and hand its lines on as batches of contiguous rows from
/// one source and one receive time (as the live run saw them).
pub fn read_file(
    store: &dyn ArchiveStore,
    name: &ObjectName,
    range: TimeRange,
    mut deliver: impl FnMut(LineBatch) -> bool,
) -> Result<(), String> {
    let file = store.open(name).map_err(|e| e.cause())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    let row_groups = row_groups_in_range(builder.metadata(), "ts", range);
    let mask = ProjectionMask::columns(builder.parquet_schema(), COLUMNS);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(row_groups)
        .with_batch_size(8192)
        .build()
        .map_err(|e| e.to_string())?;
    let mut pending: Option<LineBatch> = None;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let cols = Columns::of(&batch)?;
        for row in 0..batch.num_rows() {
            let seq = cols.seq.value(row);
            let line = cols.line.value(row);
            let received = cols.received.value(row);
            let source = cols.source.value(row);
            let fits = pending.as_ref().is_some_and(|p| {
                &*p.source == source
                    && p.received == received
                    && p.next_line() == line
                    && p.first_seq.map(|s| s + p.len() as u64) == Some(seq)
                    && !p.is_full()
            });
            if !fits {
                if let Some(full) = pending.take()
                    && !deliver(full)
                {
                    return Ok(());
                }
                let mut b = LineBatch::new(source.into(), line, received);
                b.first_seq = Some(seq);
                pending = Some(b);
            }
            if let Some(p) = pending.as_mut() {
                p.push(cols.raw.value(row), false);
                p.known_ts
                    .push((cols.ts.value(row), cols.ts_inferred.value(row)));
            }
        }
    }
    if let Some(last) = pending {
        deliver(last);
    }
    Ok(())
}

/// The projected columns, cast to one type each whatever the writer chose (dictionary strings,
/// timestamps, large binary).
struct Columns {
    seq: arrow::array::UInt64Array,
    line: arrow::array::UInt64Array,
    source: arrow::array::StringArray,
    raw: arrow::array::BinaryArray,
    received: arrow::array::Int64Array,
    ts: arrow::array::Int64Array,
    ts_inferred: arrow::array::BooleanArray,
}

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Columns, String> {
        let col = |name: &str, to: &DataType| -> Result<Arc<dyn Array>, String> {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| format!("no column {name}"))?;
            let c = arrow::compute::cast(c, to).map_err(|e| format!("column {name}: {e}"))?;
            if c.null_count() > 0 && name != "ts_inferred" {
                return Err(format!("column {name} has nulls"));
            }
            Ok(c)
        };
        Ok(Columns {
            seq: col("seq", &DataType::UInt64)?
                .as_primitive::<UInt64Type>()
                .clone(),
            line: col("line", &DataType::UInt64)?
                .as_primitive::<UInt64Type>()
                .clone(),
            source: col("source", &DataType::Utf8)?.as_string::<i32>().clone(),
            raw: col("raw", &DataType::Binary)?.as_binary::<i32>().clone(),
            received: col("received", &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone(),
            ts: col("ts", &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone(),
            ts_inferred: col("ts_inferred", &DataType::Boolean)?.as_boolean().clone(),
        })
    }
}
