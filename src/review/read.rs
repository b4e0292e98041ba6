//! The archive rows a review reads: only the columns it needs, only the row groups whose time
//! statistics overlap the range asked for, files in `seq` order.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Int64Type};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::archive::store::ObjectName;
use crate::event::TimeRange;
use crate::source::archive::{ArchiveFiles, row_groups_in_range};

/// One events row, as much of it as a review uses.
pub struct EventRow<'a> {
    pub ts: i64,
    pub ts_inferred: bool,
    pub host: Option<&'a str>,
    pub kind: &'a str,
    pub src_ip: Option<&'a str>,
    pub user: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub count: Option<i64>,
}

const EVENT_COLUMNS: [&str; 8] = [
    "ts",
    "ts_inferred",
    "host",
    "kind",
    "src_ip",
    "user",
    "actor",
    "count",
];

/// One alerts row, as much of it as a review uses.
pub struct AlertRow<'a> {
    pub id: &'a str,
    pub rule: &'a str,
    pub severity: &'a str,
    pub priority: &'a str,
    pub respond_within: &'a str,
    pub key_field: &'a str,
    pub key_value: &'a str,
    pub window_start: i64,
    pub window_end: i64,
    pub last_seen: i64,
    /// The count that crossed the threshold; for a ban, which ban of its address it is.
    pub count: i64,
    pub summary: &'a str,
    /// The action as its JSON object text.
    pub action: &'a str,
}

const ALERT_COLUMNS: [&str; 13] = [
    "id",
    "rule",
    "severity",
    "priority",
    "respond_within",
    "key_field",
    "key_value",
    "window_start",
    "window_end",
    "last_seen",
    "count",
    "summary",
    "action",
];

/// Hand every row of the files of `files` that lie in row groups overlapping `range` (on the
/// time column `time_column`) to `each`, as record batches of the projected `columns`. A file
/// that cannot be read is named in the returned list and skipped.
fn scan(
    files: &ArchiveFiles,
    range: TimeRange,
    time_column: &str,
    columns: &[&str],
    mut each: impl FnMut(&RecordBatch) -> Result<(), String>,
) -> Vec<String> {
    let mut unreadable = Vec::new();
    for file in files.files.iter().filter(|f| f.overlaps(range)) {
        let result = (|| -> Result<(), String> {
            let name = ObjectName::new(file.path.as_str()).map_err(|e| e.to_string())?;
            let reader = files.store.open(&name).map_err(|e| e.cause())?;
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(reader).map_err(|e| e.to_string())?;
            let row_groups = row_groups_in_range(builder.metadata(), time_column, range);
            let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
            let batches = builder
                .with_projection(mask)
                .with_row_groups(row_groups)
                .with_batch_size(8192)
                .build()
                .map_err(|e| e.to_string())?;
            for batch in batches {
                each(&batch.map_err(|e| e.to_string())?)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            unreadable.push(format!("{}: {e}", files.store.location_of(&file.path)));
        }
    }
    unreadable
}

/// Every events row of `files` in row groups overlapping `range` (rows outside it too: the
/// caller counts lateness over all it sees), in `seq` order.
pub fn events(
    files: &ArchiveFiles,
    range: TimeRange,
    mut each: impl FnMut(&EventRow),
) -> Vec<String> {
    scan(files, range, "ts", &EVENT_COLUMNS, |batch| {
        let ts = int64(batch, "ts")?;
        let ts_inferred = boolean(batch, "ts_inferred")?;
        let host = string(batch, "host")?;
        let kind = string(batch, "kind")?;
        let src_ip = string(batch, "src_ip")?;
        let user = string(batch, "user")?;
        let actor = string(batch, "actor")?;
        let count = int64(batch, "count")?;
        for i in 0..batch.num_rows() {
            each(&EventRow {
                ts: ts.value(i),
                ts_inferred: ts_inferred.is_valid(i) && ts_inferred.value(i),
                host: opt(&host, i),
                kind: if kind.is_valid(i) { kind.value(i) } else { "" },
                src_ip: opt(&src_ip, i),
                user: opt(&user, i),
                actor: opt(&actor, i),
                count: count.is_valid(i).then(|| count.value(i)),
            });
        }
        Ok(())
    })
}

/// Every alerts row of `files` in row groups whose `last_seen` overlaps `range`, in `seq`
/// order.
pub fn alerts(
    files: &ArchiveFiles,
    range: TimeRange,
    mut each: impl FnMut(&AlertRow),
) -> Vec<String> {
    scan(files, range, "last_seen", &ALERT_COLUMNS, |batch| {
        let text = |name: &str| string(batch, name);
        let (id, rule, severity, priority) = (
            text("id")?,
            text("rule")?,
            text("severity")?,
            text("priority")?,
        );
        let (respond_within, key_field, key_value) = (
            text("respond_within")?,
            text("key_field")?,
            text("key_value")?,
        );
        let (summary, action) = (text("summary")?, text("action")?);
        let window_start = int64(batch, "window_start")?;
        let window_end = int64(batch, "window_end")?;
        let last_seen = int64(batch, "last_seen")?;
        let count = int64(batch, "count")?;
        for i in 0..batch.num_rows() {
            each(&AlertRow {
                id: text_at(&id, i),
                rule: text_at(&rule, i),
                severity: text_at(&severity, i),
                priority: text_at(&priority, i),
                respond_within: text_at(&respond_within, i),
                key_field: text_at(&key_field, i),
                key_value: text_at(&key_value, i),
                window_start: window_start.value(i),
                window_end: window_end.value(i),
                last_seen: last_seen.value(i),
                count: count.value(i),
                summary: text_at(&summary, i),
                action: text_at(&action, i),
            });
        }
        Ok(())
    })
}

fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<Arc<dyn Array>, String> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column {name}"))?;
    if c.data_type() == to {
        return Ok(Arc::clone(c));
    }
    // Whatever the writer chose (dictionary strings, timestamps): one type to read.
    arrow::compute::cast(c, to).map_err(|e| format!("column {name}: {e}"))
}

fn string(batch: &RecordBatch, name: &str) -> Result<StringArray, String> {
    Ok(column(batch, name, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

fn int64(batch: &RecordBatch, name: &str) -> Result<Int64Array, String> {
    Ok(column(batch, name, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

fn boolean(batch: &RecordBatch, name: &str) -> Result<BooleanArray, String> {
    Ok(column(batch, name, &DataType::Boolean)?
        .as_boolean()
        .clone())
}

fn opt(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

fn text_at(a: &StringArray, i: usize) -> &str {
    if a.is_valid(i) { a.value(i) } else { "" }
}
