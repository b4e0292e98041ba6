//! `secpipe export`: the archive's events as OCSF files, after verifying the archive.
//!
//! Order, and why:
//! 1. **Verify** the whole archive ([`verify_store`]). A tampered archive is refused (exit 1),
//!    one that cannot be verified too (exit 2): an export is evidence handed to others, and
//!    clean-looking OCSF rows from altered files would launder the alteration. `verify` names
//!    what is wrong; `replay --force` is the way to look inside anyway. Rows of an unsigned
//!    span (a crash before the checkpoint was re-signed) are exported, with a warning.
//! 2. **Read** the events files named by the manifest chain, in `seq` order, every column
//!    (the leaf hash is over the whole row), a few thousand rows at a time.
//! 3. **Recompute** each row's leaf ([`crate::archive::canonical`]) and each file's
//!    `row_root`, and compare it with the verified manifest: a file changed between step 1 and
//!    now is an error, not an export. The leaf (hex) goes into the row's `unmapped`.
//! 4. **Map** each row to its class ([`super::classes::class_of`]) and write it to its
//!    (class, day) partition ([`super::writers`]). Kinds without a class are counted and
//!    named in the summary.
//!
//! Memory is bounded by the batch size and the open writers, not by the archive.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int32Array, Int64Array, StringArray,
};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::classes::{ArchivedEvent, OcsfClass, class_of};
use super::columns::Cell;
use super::layout::{Layout, event_day};
use super::writers::{Format, Writers};
use crate::archive::canonical::{self, CHUNK_ROWS};
use crate::archive::manifest::{Manifest, split_lines};
use crate::archive::schema::events_schema;
use crate::archive::store::{ArchiveStore, ObjectName};
use crate::archive::verify::{VerifyOptions, verify_store};

/// Rows decoded at a time.
const BATCH_ROWS: usize = 2048;

/// What to export and how.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub format: Format,
    pub layout: Layout,
    pub verify: VerifyOptions,
}

/// What an export did.
#[derive(Clone, Debug, Default)]
pub struct ExportSummary {
    /// `intact` or `unsigned` (a tampered or unverifiable archive is not exported).
    pub verdict: String,
    pub warnings: Vec<String>,
    /// Rows written per class.
    pub rows: BTreeMap<OcsfClass, u64>,
    /// Rows of kinds OCSF 1.3.0 has no class for, per kind: not written.
    pub not_exported: BTreeMap<String, u64>,
    pub files: Vec<PathBuf>,
}

impl ExportSummary {
    /// The lines for stderr.
    pub fn render(&self) -> String {
        let mut s = format!("export: archive {}\n", self.verdict);
        for w in &self.warnings {
            s.push_str(&format!("export: warning: {w}\n"));
        }
        for (class, n) in &self.rows {
            s.push_str(&format!(
                "export: {n} rows -> {} ({})\n",
                class.caption(),
                class.uid()
            ));
        }
        if !self.not_exported.is_empty() {
            let kinds: Vec<String> = self
                .not_exported
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            s.push_str(&format!(
                "export: not exported (no OCSF 1.3.0 class): {}\n",
                kinds.join(", ")
            ));
        }
        s.push_str(&format!("export: {} files written\n", self.files.len()));
        s
    }
}

/// Why an export did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Verify found the archive tampered.
    #[error("the archive is tampered, not exported: {0} (run `secpipe verify` for the report)")]
    Tampered(String),
    /// Verify could not conclude.
    #[error("the archive could not be verified, not exported: {0}")]
    Inconclusive(String),
    #[error("{0}")]
    Failed(String),
}

/// One events file as the verified chain names it.
struct ChainFile {
    path: String,
    first_seq: u64,
    rows: u64,
    row_root: String,
    archive_id: [u8; 16],
}

/// Export the events of the archive in `store` into `out`; see the module doc.
pub fn export(
    store: Arc<dyn ArchiveStore>,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    let report = verify_store(&*store, &opts.verify);
    let mut summary = ExportSummary {
        verdict: report.status().to_owned(),
        ..ExportSummary::default()
    };
    match report.exit_code() {
        0 => {}
        1 => {
            let why = report.first_problem().map_or_else(String::new, |p| {
                format!("{} {} ({})", p.class.as_str(), p.file, p.detail)
            });
            return Err(ExportError::Tampered(why));
        }
        3 => summary.warnings.push(format!(
            "{} manifest line(s) are covered by no signature; exported as they are",
            report.unsigned.len()
        )),
        _ => {
            return Err(ExportError::Inconclusive(
                report.inconclusive.clone().unwrap_or_default(),
            ));
        }
    }
    let files = chain_files(&*store)?;
    let mut writers = Writers::new(out, opts.layout.clone(), opts.format);
    for file in &files {
        export_file(&*store, file, &mut writers, &mut summary)?;
    }
    summary.files = writers.finish().map_err(ExportError::Failed)?;
    Ok(summary)
}

/// The events files of the chain, in `seq` order, with the row roots verify checked.
fn chain_files(store: &dyn ArchiveStore) -> Result<Vec<ChainFile>, ExportError> {
    let failed = |e: String| ExportError::Failed(e);
    let bytes = store
        .read_manifests()
        .map_err(|e| failed(e.cause()))?
        .unwrap_or_default();
    let (lines, _torn) = split_lines(&bytes);
    let mut files = Vec::new();
    for line in lines {
        let m = Manifest::parse(line).map_err(failed)?;
        let (Some(path), Some(rows), Some(row_root)) = (m.path, m.rows, m.row_root) else {
            continue;
        };
        if !path.starts_with("events/") {
            continue;
        }
        let mut archive_id = [0u8; 16];
        hex::decode_to_slice(&m.archive, &mut archive_id)
            .map_err(|e| failed(format!("manifest archive id {:?}: {e}", m.archive)))?;
        files.push(ChainFile {
            path,
            first_seq: rows.first_seq,
            rows: rows.count,
            row_root,
            archive_id,
        });
    }
    files.sort_by_key(|f| f.first_seq);
    Ok(files)
}

/// Read, re-hash, map and write one events file.
fn export_file(
    store: &dyn ArchiveStore,
    file: &ChainFile,
    writers: &mut Writers,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let at = |e: &dyn std::fmt::Display| ExportError::Failed(format!("{}: {e}", file.path));
    let name = ObjectName::new(file.path.as_str()).map_err(|e| at(&e))?;
    let reader = store.open(&name).map_err(|e| at(&e.cause()))?;
    let batches = ParquetRecordBatchReaderBuilder::try_new(reader)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| at(&e))?;
    let schema = events_schema();
    let archive_hex = hex::encode(file.archive_id);
    let mut chunk: Vec<[u8; 32]> = Vec::with_capacity(CHUNK_ROWS);
    let mut chunk_roots = Vec::new();
    let mut next_seq = file.first_seq;
    for batch in batches {
        let batch = batch.map_err(|e| at(&e))?;
        let columns = canonical::conform(&batch, &schema).map_err(|e| at(&e.0))?;
        let (seqs, leaves) =
            canonical::leaves_of(&file.archive_id, &columns).map_err(|e| at(&e.0))?;
        for leaf in &leaves {
            chunk.push(*leaf);
            if chunk.len() == CHUNK_ROWS {
                chunk_roots.push(canonical::merkle_root(&chunk));
                chunk.clear();
            }
        }
        if seqs.first().is_some_and(|&s| s as u64 != next_seq) {
            return Err(at(&format!("rows out of order at seq {}", seqs[0])));
        }
        next_seq += seqs.len() as u64;
        let rows = Rows::new(&columns).map_err(|e| at(&e))?;
        write_batch(&rows, &seqs, &leaves, &archive_hex, writers, summary)?;
    }
    if !chunk.is_empty() {
        chunk_roots.push(canonical::merkle_root(&chunk));
    }
    let root = hex::encode(canonical::merkle_root(&chunk_roots));
    if next_seq - file.first_seq != file.rows || root != file.row_root {
        return Err(at(
            &"its rows are not the ones verified (changed while exporting?); nothing more written",
        ));
    }
    Ok(())
}

/// Map the rows of one batch and hand each class's rows, per day, to the writers, in row
/// order within each partition.
fn write_batch(
    rows: &Rows,
    seqs: &[i64],
    leaves: &[[u8; 32]],
    archive_hex: &str,
    writers: &mut Writers,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let mut groups: BTreeMap<(OcsfClass, String), Vec<Vec<Cell>>> = BTreeMap::new();
    // Groups are written in first-appearance order so output does not depend on map order
    // beyond what is deterministic anyway (BTreeMap); rows keep their order inside a group.
    for i in 0..seqs.len() {
        let leaf = hex::encode(leaves[i]);
        let event = rows.event(i, seqs[i], archive_hex, &leaf);
        match class_of(event.kind) {
            Some(class) => {
                *summary.rows.entry(class).or_default() += 1;
                groups
                    .entry((class, event_day(event.ts)))
                    .or_default()
                    .push(class.row(&event));
            }
            None => {
                *summary
                    .not_exported
                    .entry(event.kind.to_owned())
                    .or_default() += 1
            }
        }
    }
    for ((class, day), rows) in groups {
        writers
            .write(class, &day, rows)
            .map_err(ExportError::Failed)?;
    }
    Ok(())
}

/// The columns of one conformed events batch (schema order of [`events_schema`]).
struct Rows {
    line: Int64Array,
    source: StringArray,
    ts: Int64Array,
    ts_inferred: BooleanArray,
    host: StringArray,
    app: StringArray,
    pid: Int64Array,
    kind: StringArray,
    reason: StringArray,
    src_ip: StringArray,
    user: StringArray,
    actor: StringArray,
    namespace: StringArray,
    count: Int64Array,
    http_method: StringArray,
    http_path: StringArray,
    http_status: Int32Array,
    bytes: Int64Array,
    severity: StringArray,
    message: StringArray,
    raw: BinaryArray,
    received: Int64Array,
}

impl Rows {
    fn new(columns: &[ArrayRef]) -> Result<Rows, String> {
        let schema = events_schema();
        let by_name = |name: &str| -> Result<&ArrayRef, String> {
            let i = schema
                .index_of(name)
                .map_err(|e| format!("column {name}: {e}"))?;
            columns
                .get(i)
                .ok_or_else(|| format!("column {name} missing"))
        };
        let text = |name: &str| -> Result<StringArray, String> {
            Ok(by_name(name)?.as_string::<i32>().clone())
        };
        let int = |name: &str| -> Result<Int64Array, String> {
            Ok(by_name(name)?.as_primitive::<Int64Type>().clone())
        };
        let time = |name: &str| -> Result<Int64Array, String> {
            let a = by_name(name)?.as_primitive::<TimestampMicrosecondType>();
            Ok(Int64Array::new(a.values().clone(), a.nulls().cloned()))
        };
        Ok(Rows {
            line: int("line")?,
            source: text("source")?,
            ts: time("ts")?,
            ts_inferred: by_name("ts_inferred")?.as_boolean().clone(),
            host: text("host")?,
            app: text("app")?,
            pid: int("pid")?,
            kind: text("kind")?,
            reason: text("reason")?,
            src_ip: text("src_ip")?,
            user: text("user")?,
            actor: text("actor")?,
            namespace: text("namespace")?,
            count: int("count")?,
            http_method: text("http_method")?,
            http_path: text("http_path")?,
            http_status: by_name("http_status")?.as_primitive::<Int32Type>().clone(),
            bytes: int("bytes")?,
            severity: text("severity")?,
            message: text("message")?,
            raw: by_name("raw")?.as_binary::<i32>().clone(),
            received: time("received")?,
        })
    }

    fn event<'a>(
        &'a self,
        i: usize,
        seq: i64,
        archive_id: &'a str,
        row_leaf: &'a str,
    ) -> ArchivedEvent<'a> {
        let s = |a: &'a StringArray| a.is_valid(i).then(|| a.value(i));
        let n = |a: &Int64Array| a.is_valid(i).then(|| a.value(i));
        ArchivedEvent {
            seq,
            line: self.line.value(i),
            source: self.source.value(i),
            ts: self.ts.value(i),
            ts_inferred: self.ts_inferred.is_valid(i) && self.ts_inferred.value(i),
            host: s(&self.host),
            app: s(&self.app),
            pid: n(&self.pid),
            kind: self.kind.value(i),
            reason: s(&self.reason),
            src_ip: s(&self.src_ip),
            user: s(&self.user),
            actor: s(&self.actor),
            namespace: s(&self.namespace),
            count: n(&self.count),
            http_method: s(&self.http_method),
            http_path: s(&self.http_path),
            http_status: self
                .http_status
                .is_valid(i)
                .then(|| i64::from(self.http_status.value(i))),
            bytes: n(&self.bytes),
            severity: s(&self.severity),
            message: self.message.value(i),
            raw: self.raw.value(i),
            received: self.received.value(i),
            archive_id,
            row_leaf,
        }
    }
}
