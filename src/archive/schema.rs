//! The two archive tables (events and alerts): their Arrow schemas and the column builders the
//! calling thread fills.
//!
//! Types are chosen so that DuckDB and Spark read the files without casts: signed 64-bit
//! integers (Spark has no unsigned 64-bit type; values above `i64::MAX` are clamped, which no
//! real seq, line, count or byte total reaches), UTF-8 strings, binary, and timestamps in
//! microseconds adjusted to UTC.
//!
//! ```
//! use secpipe::archive::schema::{Table, events_schema};
//! assert_eq!(events_schema().field(0).name(), "seq");
//! assert_eq!(Table::Alerts.dir_name(), "alerts");
//! ```

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::alert::Alert;
use crate::event::Event;

/// Which table a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Events,
    Alerts,
}

impl Table {
    /// The top-level directory of the table inside the archive.
    pub fn dir_name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Alerts => "alerts",
        }
    }

    /// Parse the directory name back.
    pub fn from_dir_name(name: &str) -> Option<Table> {
        match name {
            "events" => Some(Table::Events),
            "alerts" => Some(Table::Alerts),
            _ => None,
        }
    }

    /// The Arrow schema of the table.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Events => events_schema(),
            Table::Alerts => alerts_schema(),
        }
    }

    /// Columns with few distinct values: Parquet dictionary encoding pays off only for these.
    pub fn dictionary_columns(self) -> &'static [&'static str] {
        match self {
            Table::Events => &[
                "source",
                "host",
                "app",
                "kind",
                "reason",
                "severity",
                "http_method",
                // Attacks repeat their sources and targets: a dictionary halves these.
                "src_ip",
                "user",
            ],
            Table::Alerts => &[
                "rule",
                "severity",
                "priority",
                "respond_within",
                "key_field",
            ],
        }
    }

    /// Integer columns that mostly grow (row numbers, event time, pids): delta encoding stores
    /// the small steps. On 1M sshd lines `ts` takes 0.3 MB this way against 1.3 MB as zstd'd
    /// plain values, and `seq`/`line` 22 kB against 1 MB each.
    pub fn delta_columns(self) -> &'static [&'static str] {
        match self {
            Table::Events => &["seq", "line", "ts", "pid"],
            Table::Alerts => &["seq"],
        }
    }

    /// Columns whose encoding leaves zstd nothing to find (delta-packed counters, RLE'd flags):
    /// stored uncompressed, which also spares a zstd context per column chunk.
    pub fn uncompressed_columns(self) -> &'static [&'static str] {
        match self {
            Table::Events => &["seq", "line", "ts_inferred"],
            Table::Alerts => &["seq"],
        }
    }
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Schema of `events/…/part-*.parquet`, in canonical (hashing) order.
pub fn events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let s = |name: &str| Field::new(name, DataType::Utf8, true);
            let i = |name: &str| Field::new(name, DataType::Int64, true);
            Arc::new(Schema::new(vec![
                Field::new("seq", DataType::Int64, false),
                Field::new("line", DataType::Int64, false),
                Field::new("source", DataType::Utf8, false),
                Field::new("ts", timestamp_type(), false),
                Field::new("ts_inferred", DataType::Boolean, false),
                s("host"),
                s("app"),
                i("pid"),
                Field::new("kind", DataType::Utf8, false),
                s("reason"),
                s("src_ip"),
                s("user"),
                s("actor"),
                s("namespace"),
                i("count"),
                s("http_method"),
                s("http_path"),
                Field::new("http_status", DataType::Int32, true),
                i("bytes"),
                s("severity"),
                Field::new("message", DataType::Utf8, false),
                Field::new("raw", DataType::Binary, false),
                Field::new("received", timestamp_type(), false),
            ]))
        })
        .clone()
}

/// Schema of `alerts/…/part-*.parquet`, in canonical (hashing) order.
///
/// `seq` here is the archive-wide *alert* number (its own counter, independent of event seqs);
/// `evidence_seqs` lists the event `seq`s of the evidence lines, and `evidence` is the
/// evidence as JSON text (source, line, ts, raw, seq) exactly as in the alert output.
pub fn alerts_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let s = |name: &str| Field::new(name, DataType::Utf8, false);
            let i = |name: &str| Field::new(name, DataType::Int64, false);
            let t = |name: &str| Field::new(name, timestamp_type(), false);
            Arc::new(Schema::new(vec![
                i("seq"),
                s("id"),
                s("rule"),
                s("severity"),
                s("priority"),
                s("respond_within"),
                s("key_field"),
                s("key_value"),
                i("count"),
                i("threshold"),
                t("window_start"),
                t("window_end"),
                t("first_seen"),
                t("last_seen"),
                s("summary"),
                Field::new(
                    "evidence_seqs",
                    DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                    false,
                ),
                s("evidence"),
                s("action"),
            ]))
        })
        .clone()
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Column builders for a run of event rows (the cheap part done on the calling thread).
pub struct EventColumns {
    seq: Int64Builder,
    line: Int64Builder,
    source: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    ts_inferred: BooleanBuilder,
    host: StringBuilder,
    app: StringBuilder,
    pid: Int64Builder,
    kind: StringBuilder,
    reason: StringBuilder,
    src_ip: StringBuilder,
    user: StringBuilder,
    actor: StringBuilder,
    namespace: StringBuilder,
    count: Int64Builder,
    http_method: StringBuilder,
    http_path: StringBuilder,
    http_status: Int32Builder,
    bytes: Int64Builder,
    severity: StringBuilder,
    message: StringBuilder,
    raw: BinaryBuilder,
    received: TimestampMicrosecondBuilder,
    rows: usize,
    ip_text: String,
}

impl Default for EventColumns {
    fn default() -> Self {
        Self::new()
    }
}

impl EventColumns {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// Builders pre-sized for `rows` rows, so filling a chunk does not reallocate and copy.
    pub fn with_capacity(rows: usize) -> Self {
        // Typical bytes per value of the text columns (sshd / access-log lines).
        let text = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        let int = || Int64Builder::with_capacity(rows);
        EventColumns {
            seq: int(),
            line: int(),
            source: text(24),
            ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ts_inferred: BooleanBuilder::with_capacity(rows),
            host: text(16),
            app: text(8),
            pid: int(),
            kind: text(12),
            reason: text(12),
            src_ip: text(15),
            user: text(8),
            actor: text(8),
            namespace: text(4),
            count: int(),
            http_method: text(4),
            http_path: text(32),
            http_status: Int32Builder::with_capacity(rows),
            bytes: int(),
            severity: text(4),
            message: text(128),
            raw: BinaryBuilder::with_capacity(rows, rows * 160),
            received: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            rows: 0,
            ip_text: String::new(),
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Copy one event into the builders under archive row number `seq`.
    pub fn push(&mut self, seq: u64, e: &Event) {
        use std::fmt::Write;
        self.seq.append_value(clamp_i64(seq));
        self.line.append_value(clamp_i64(e.line));
        self.source.append_value(&e.source);
        self.ts.append_value(e.ts);
        self.ts_inferred.append_value(e.ts_inferred);
        self.host.append_option(e.host.as_deref());
        self.app.append_option(e.app.as_deref());
        self.pid.append_option(e.pid.map(i64::from));
        self.kind.append_value(e.kind.as_str());
        self.reason.append_option(e.reason.as_deref());
        match e.src_ip {
            Some(ip) => {
                self.ip_text.clear();
                let _ = write!(self.ip_text, "{ip}");
                self.src_ip.append_value(&self.ip_text);
            }
            None => self.src_ip.append_null(),
        }
        self.user.append_option(e.user.as_deref());
        self.actor.append_option(e.actor.as_deref());
        self.namespace.append_option(e.namespace.as_deref());
        self.count.append_option(e.count.map(clamp_i64));
        self.http_method.append_option(e.http_method.as_deref());
        self.http_path.append_option(e.http_path.as_deref());
        self.http_status.append_option(e.http_status.map(i32::from));
        self.bytes.append_option(e.bytes.map(clamp_i64));
        self.severity.append_option(e.severity.as_deref());
        self.message.append_value(&e.message);
        self.raw.append_value(&e.raw);
        self.received.append_value(e.received);
        self.rows += 1;
    }

    /// Move the buffered rows out as a record batch; the builders start empty again.
    pub fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.ts_inferred.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.app.finish()),
            Arc::new(self.pid.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.actor.finish()),
            Arc::new(self.namespace.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.http_method.finish()),
            Arc::new(self.http_path.finish()),
            Arc::new(self.http_status.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.received.finish()),
        ];
        // Start the next chunk with room for as many rows as this one had.
        let rows = self.rows;
        *self = EventColumns::with_capacity(rows);
        // The builders produce exactly the schema's types and non-null columns are always
        // appended with values, so this cannot fail for rows built by `push`.
        RecordBatch::try_new(events_schema(), columns)
            .unwrap_or_else(|e| unreachable!("event columns match the schema: {e}"))
    }
}

/// Column builders for alert rows.
pub struct AlertColumns {
    seq: Int64Builder,
    text: Vec<StringBuilder>,
    count: Int64Builder,
    threshold: Int64Builder,
    times: Vec<TimestampMicrosecondBuilder>,
    summary: StringBuilder,
    evidence_seqs: ListBuilder<Int64Builder>,
    evidence: StringBuilder,
    action: StringBuilder,
    rows: usize,
}

impl Default for AlertColumns {
    fn default() -> Self {
        Self::new()
    }
}

impl AlertColumns {
    pub fn new() -> Self {
        AlertColumns {
            seq: Int64Builder::new(),
            text: (0..7).map(|_| StringBuilder::new()).collect(),
            count: Int64Builder::new(),
            threshold: Int64Builder::new(),
            times: (0..4)
                .map(|_| TimestampMicrosecondBuilder::new().with_timezone("UTC"))
                .collect(),
            summary: StringBuilder::new(),
            evidence_seqs: ListBuilder::new(Int64Builder::new()),
            evidence: StringBuilder::new(),
            action: StringBuilder::new(),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Copy one alert into the builders under alert number `seq`.
    pub fn push(&mut self, seq: u64, a: &Alert) {
        self.seq.append_value(clamp_i64(seq));
        let texts = [
            a.id.as_str(),
            a.rule.as_str(),
            a.severity.as_str(),
            a.priority.as_str(),
            a.respond_within.as_str(),
            a.key_field.as_str(),
            a.key_value.as_str(),
        ];
        for (builder, value) in self.text.iter_mut().zip(texts) {
            builder.append_value(value);
        }
        self.count.append_value(clamp_i64(a.count));
        self.threshold.append_value(clamp_i64(a.threshold));
        let times = [a.window_start, a.window_end, a.first_seen, a.last_seen];
        for (builder, value) in self.times.iter_mut().zip(times) {
            builder.append_value(value);
        }
        self.summary.append_value(&a.summary);
        for ev in &a.evidence {
            self.evidence_seqs
                .values()
                .append_option(ev.seq.map(clamp_i64));
        }
        self.evidence_seqs.append(true);
        self.evidence.append_value(evidence_json(a));
        let action: serde_json::Map<String, serde_json::Value> =
            crate::action::Action::pairs(&a.action)
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
        self.action
            .append_value(serde_json::Value::Object(action).to_string());
        self.rows += 1;
    }

    pub fn finish(&mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.seq.finish())];
        columns.extend(
            self.text
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.push(Arc::new(self.count.finish()));
        columns.push(Arc::new(self.threshold.finish()));
        columns.extend(
            self.times
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.push(Arc::new(self.summary.finish()));
        columns.push(Arc::new(self.evidence_seqs.finish()));
        columns.push(Arc::new(self.evidence.finish()));
        columns.push(Arc::new(self.action.finish()));
        self.rows = 0;
        RecordBatch::try_new(alerts_schema(), columns)
            .unwrap_or_else(|e| unreachable!("alert columns match the schema: {e}"))
    }
}

/// The evidence list as JSON text: `[{"source","line","ts","raw","seq"}]`. `raw` is the line
/// as UTF-8 when it is valid UTF-8, else `{"base64": "…"}`.
fn evidence_json(a: &Alert) -> String {
    use base64::Engine;
    let items: Vec<serde_json::Value> = a
        .evidence
        .iter()
        .map(|ev| {
            let raw = match std::str::from_utf8(&ev.raw) {
                Ok(text) => serde_json::Value::String(text.to_owned()),
                Err(_) => serde_json::json!({
                    "base64": base64::engine::general_purpose::STANDARD.encode(&ev.raw)
                }),
            };
            serde_json::json!({
                "source": &*ev.source,
                "line": ev.line,
                "ts": crate::event::format_ts(ev.ts),
                "raw": raw,
                "seq": ev.seq,
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}
