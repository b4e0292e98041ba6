//! Archive round trip: what goes in comes back out, files roll, runs resume, crashes recover.

mod archive_support;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use secpipe::archive::manifest::{Manifest, split_lines};
use secpipe::archive::verify::{VerifyOptions, verify};
use secpipe::archive::{Archive, keys};

use archive_support::*;

fn manifests(dir: &std::path::Path) -> Vec<Manifest> {
    let bytes = std::fs::read(dir.join("audit/manifests.jsonl")).unwrap();
    let (lines, torn) = split_lines(&bytes);
    assert!(torn.is_none());
    lines.iter().map(|l| Manifest::parse(l).unwrap()).collect()
}

fn read_rows(path: &std::path::Path) -> Vec<arrow::record_batch::RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// One logical cell of an archive row, whatever its Arrow type.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    Ints(Vec<Option<i64>>),
}

/// Every row of `batches` as (column name, cell) pairs in file order, read by the column's
/// Arrow type, so no column can be skipped by forgetting it here.
fn cells(batches: &[arrow::record_batch::RecordBatch]) -> Vec<Vec<(String, Cell)>> {
    use arrow::datatypes::{DataType, Int32Type};
    let mut rows = Vec::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            let mut row = Vec::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                let cell = if column.is_null(i) {
                    Cell::Null
                } else {
                    match field.data_type() {
                        DataType::Int64 => Cell::Int(column.as_primitive::<Int64Type>().value(i)),
                        DataType::Int32 => {
                            Cell::Int(column.as_primitive::<Int32Type>().value(i).into())
                        }
                        DataType::Timestamp(_, _) => {
                            Cell::Int(column.as_primitive::<TimestampMicrosecondType>().value(i))
                        }
                        DataType::Boolean => Cell::Bool(column.as_boolean().value(i)),
                        DataType::Utf8 => Cell::Text(column.as_string::<i32>().value(i).into()),
                        DataType::Binary => Cell::Bytes(column.as_binary::<i32>().value(i).into()),
                        DataType::List(_) => Cell::Ints(
                            column
                                .as_list::<i32>()
                                .value(i)
                                .as_primitive::<Int64Type>()
                                .iter()
                                .collect(),
                        ),
                        other => panic!("column {} has an untested type {other}", field.name()),
                    }
                };
                row.push((field.name().clone(), cell));
            }
            rows.push(row);
        }
    }
    rows
}

fn text(v: Option<&str>) -> Cell {
    v.map_or(Cell::Null, |s| Cell::Text(s.to_string()))
}

fn int(v: Option<i64>) -> Cell {
    v.map_or(Cell::Null, Cell::Int)
}

/// What DESIGN section 6 says an events row holds for `e` at archive row `seq`, in the
/// documented column order: `seq`, the event fields of section 3, `raw`, `received`.
fn expected_event_row(seq: u64, e: &secpipe::event::Event) -> Vec<(String, Cell)> {
    let row = vec![
        ("seq", Cell::Int(seq as i64)),
        ("line", Cell::Int(e.line as i64)),
        ("source", Cell::Text(e.source.to_string())),
        ("ts", Cell::Int(e.ts)),
        ("ts_inferred", Cell::Bool(e.ts_inferred)),
        ("host", text(e.host.as_deref())),
        ("app", text(e.app.as_deref())),
        ("pid", int(e.pid.map(i64::from))),
        ("kind", Cell::Text(e.kind.as_str().to_string())),
        ("reason", text(e.reason.as_deref())),
        ("src_ip", text(e.src_ip.map(|ip| ip.to_string()).as_deref())),
        ("user", text(e.user.as_deref())),
        ("actor", text(e.actor.as_deref())),
        ("namespace", text(e.namespace.as_deref())),
        ("count", int(e.count.map(|c| c as i64))),
        ("http_method", text(e.http_method.as_deref())),
        ("http_path", text(e.http_path.as_deref())),
        ("http_status", int(e.http_status.map(i64::from))),
        ("bytes", int(e.bytes.map(|b| b as i64))),
        ("severity", text(e.severity.as_deref())),
        ("message", Cell::Text(e.message.to_string())),
        ("raw", Cell::Bytes(e.raw.to_vec())),
        ("received", Cell::Int(e.received)),
    ];
    row.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// What an alerts row holds for `a` at alert number `seq`; `evidence` and `action` are JSON
/// text, compared as parsed JSON by the caller.
fn expected_alert_row(seq: u64, a: &secpipe::alert::Alert) -> Vec<(String, Cell)> {
    let t = |s: &str| Cell::Text(s.to_string());
    let row = vec![
        ("seq", Cell::Int(seq as i64)),
        ("id", t(&a.id)),
        ("rule", t(&a.rule)),
        ("severity", t(a.severity.as_str())),
        ("priority", t(&a.priority)),
        ("respond_within", t(&a.respond_within)),
        ("key_field", t(&a.key_field)),
        ("key_value", t(&a.key_value)),
        ("count", Cell::Int(a.count as i64)),
        ("threshold", Cell::Int(a.threshold as i64)),
        ("window_start", Cell::Int(a.window_start)),
        ("window_end", Cell::Int(a.window_end)),
        ("first_seen", Cell::Int(a.first_seen)),
        ("last_seen", Cell::Int(a.last_seen)),
        ("summary", t(&a.summary)),
        (
            "evidence_seqs",
            Cell::Ints(a.evidence.iter().map(|e| e.seq.map(|s| s as i64)).collect()),
        ),
    ];
    row.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[test]
fn round_trip_keeps_every_field() {
    let dir = tempfile::tempdir().unwrap();
    // The shared generator never sets `actor` and always sets `app`, `src_ip` and `user`:
    // vary those here, so every nullable column is checked with values and with nulls.
    let written: Vec<secpipe::event::Event> = events(0, 250, DAY0 + 3_600_000_000)
        .into_iter()
        .map(|mut e| {
            if e.line.is_multiple_of(7) {
                e.actor = Some(format!("agent-{}", e.line).into());
            }
            if e.line.is_multiple_of(5) {
                e.app = None;
            }
            if e.line.is_multiple_of(8) {
                e.src_ip = None;
            }
            if e.line.is_multiple_of(9) {
                e.user = None;
            }
            e
        })
        .collect();
    let alerts = [
        alert(0, DAY0 + 3_700_000_000, &[0, 1]),
        alert(1, DAY0 + 3_800_000_000, &[2]),
    ];
    let mut archive = Archive::open(options(dir.path(), 1_000_000)).unwrap();
    for chunk in written.chunks(100) {
        archive.append_events(chunk).unwrap();
    }
    archive.append_alerts(&alerts).unwrap();
    let summary = archive.close().unwrap();
    assert_eq!(summary.event_rows, 250);
    assert_eq!(summary.alert_rows, 2);
    assert_eq!(summary.files, 2);

    let files = parquet_files(dir.path(), "events");
    assert_eq!(
        files,
        vec!["events/date=2026-11-23/part-00000000.parquet".to_string()]
    );
    // Every column of every row, in the documented order: a column added to the schema, a
    // dropped one, a reordered one or any changed value fails here.
    let rows = cells(&read_rows(&dir.path().join(&files[0])));
    assert_eq!(rows.len(), written.len());
    for (seq, (row, e)) in rows.iter().zip(&written).enumerate() {
        assert_eq!(*row, expected_event_row(seq as u64, e), "events row {seq}");
    }
    // The generator really exercised both values and nulls in every nullable column.
    for column in 0..rows[0].len() {
        let name = &rows[0][column].0;
        let nulls = rows.iter().filter(|r| r[column].1 == Cell::Null).count();
        let nullable = secpipe::archive::schema::events_schema()
            .field(column)
            .is_nullable();
        assert!(nulls < rows.len(), "{name} is never set");
        assert!(!nullable || nulls > 0, "{name} is never null");
    }

    // Key-value metadata describes the lone file.
    let file = std::fs::File::open(dir.path().join(&files[0])).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .clone();
    let get = |k: &str| {
        kv.iter()
            .find(|e| e.key == k)
            .and_then(|e| e.value.clone())
            .unwrap()
    };
    let m = &manifests(dir.path())[0];
    assert_eq!(get("secpipe.row_root"), *m.row_root.as_ref().unwrap());
    assert_eq!(get("secpipe.file_seq"), "0");
    assert_eq!(get("secpipe.archive"), m.archive);
    assert_eq!(get("secpipe.prev"), m.prev);

    // Every column of both alerts: the scalar ones cell by cell, the JSON ones as JSON.
    let alert_files = parquet_files(dir.path(), "alerts");
    assert_eq!(alert_files.len(), 1);
    let rows = cells(&read_rows(&dir.path().join(&alert_files[0])));
    assert_eq!(rows.len(), 2);
    for (seq, (row, a)) in rows.iter().zip(&alerts).enumerate() {
        let names: Vec<&str> = row.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[names.len() - 2..], ["evidence", "action"]);
        assert_eq!(
            row[..row.len() - 2],
            expected_alert_row(seq as u64, a)[..],
            "alerts row {seq}"
        );
        let json = |cell: &Cell| match cell {
            Cell::Text(t) => serde_json::from_str::<serde_json::Value>(t).unwrap(),
            other => panic!("not JSON text: {other:?}"),
        };
        let evidence: Vec<serde_json::Value> = a
            .evidence
            .iter()
            .map(|e| {
                serde_json::json!({
                    "source": &*e.source, "line": e.line,
                    "ts": secpipe::event::format_ts(e.ts),
                    "raw": String::from_utf8(e.raw.to_vec()).unwrap(), "seq": e.seq,
                })
            })
            .collect();
        assert_eq!(json(&row[row.len() - 2].1), serde_json::json!(evidence));
        let action: serde_json::Map<String, serde_json::Value> =
            secpipe::action::Action::pairs(&a.action)
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect();
        assert_eq!(
            json(&row[row.len() - 1].1),
            serde_json::Value::Object(action)
        );
    }

    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(report.rows, 252);
}

#[test]
fn rolls_by_rows_and_by_date_with_one_file_counter() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(options(dir.path(), 100)).unwrap();
    // 250 rows on day 0, then 30 rows on day 1.
    archive.append_events(&events(0, 250, DAY0)).unwrap();
    archive
        .append_events(&events(250, 30, DAY0 + 86_400_000_000))
        .unwrap();
    archive.append_alerts(&[alert(0, DAY0 + 10, &[1])]).unwrap();
    archive.close().unwrap();

    let list = manifests(dir.path());
    let data: Vec<&Manifest> = list.iter().filter(|m| m.kind == "data").collect();
    let summary: Vec<(String, u64, u64, u64)> = data
        .iter()
        .map(|m| {
            let rows = m.rows.as_ref().unwrap();
            (
                m.path.clone().unwrap(),
                m.file_seq.unwrap(),
                rows.first_seq,
                rows.count,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "events/date=2026-11-23/part-00000000.parquet".into(),
                0,
                0,
                100
            ),
            (
                "events/date=2026-11-23/part-00000001.parquet".into(),
                1,
                100,
                100
            ),
            (
                "events/date=2026-11-23/part-00000002.parquet".into(),
                2,
                200,
                50
            ),
            (
                "events/date=2026-11-24/part-00000003.parquet".into(),
                3,
                250,
                30
            ),
            (
                "alerts/date=2026-11-23/part-00000004.parquet".into(),
                4,
                0,
                1
            ),
        ]
    );
    assert_eq!(list.last().unwrap().kind, "pause");
    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");
}

#[test]
fn tick_rolls_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 1_000_000);
    opts.roll_secs = 60;
    let mut archive = Archive::open(opts).unwrap();
    archive.append_events(&events(0, 10, DAY0)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    archive.tick(now).unwrap(); // young: nothing sealed
    archive.tick(now + 61_000_000).unwrap(); // old: sealed
    archive.append_events(&events(10, 10, DAY0)).unwrap();
    archive.close().unwrap();
    assert_eq!(parquet_files(dir.path(), "events").len(), 2);
}

#[test]
fn resume_after_close_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    keys::keygen(&key).unwrap();
    let archive_dir = dir.path().join("a");
    build(&archive_dir, 120, 50, Some(&key));
    let head_before = verify(&archive_dir, &VerifyOptions::default())
        .head
        .unwrap();

    // A signed archive is extended only with its key (without it, open refuses).
    let mut signed = options(&archive_dir, 50);
    signed.key = Some(key.clone());
    let archive = Archive::open(signed).unwrap();
    assert_eq!(archive.next_seq(), 120);
    drop(archive);
    build(&archive_dir, 80, 50, Some(&key));

    let list = manifests(&archive_dir);
    let kinds: Vec<&str> = list.iter().map(|m| m.kind.as_str()).collect();
    assert!(kinds.contains(&"resume"));
    let file_seqs: Vec<u64> = list.iter().filter_map(|m| m.file_seq).collect();
    assert_eq!(file_seqs, (0..file_seqs.len() as u64).collect::<Vec<_>>());
    let opts = VerifyOptions {
        pubkey: Some(keys::pub_path(&key)),
        expect_head: Some(head_before),
    };
    let report = verify(&archive_dir, &opts);
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(report.rows, 200 + 4);
}

#[test]
fn crash_leftovers_are_an_unsealed_tail_and_the_next_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 150, 100, None);
    let files = parquet_files(dir.path(), "events");
    // A crash mid-file leaves unsealed temporary files (the encoder runs a few files ahead of
    // the committer, so there can be several); a crash between rename and manifest append
    // leaves a sealed-looking file at the tail.
    // The run never wrote its clean-close `pause` line: drop it (and step the checkpoint back).
    drop_last_manifest_line(dir.path());
    let day = dir.path().join("events/date=2026-11-23");
    let unsealed = [
        "part-unsealed-00000004.parquet.tmp",
        "part-unsealed-00000005.parquet.tmp",
    ];
    for name in unsealed {
        std::fs::copy(dir.path().join(&files[0]), day.join(name)).unwrap();
    }
    // file_seq 3 is the next one (two events files and one alerts file were sealed).
    std::fs::copy(
        dir.path().join(&files[0]),
        day.join("part-00000003.parquet"),
    )
    .unwrap();

    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(
        report
            .warnings
            .iter()
            .filter(|w| w.contains("unsealed tail"))
            .count(),
        3,
        "{report}"
    );

    let mut archive = Archive::open(options(dir.path(), 100)).unwrap();
    assert_eq!(archive.next_seq(), 150);
    archive
        .append_events(&events(150, 10, DAY0 + 3_600_000_000))
        .unwrap();
    archive.close().unwrap();
    for name in unsealed {
        assert!(!day.join(name).exists(), "{name} was not discarded");
    }
    let resume = manifests(dir.path())
        .into_iter()
        .find(|m| m.kind == "resume")
        .unwrap();
    assert_eq!(resume.discarded.len(), 3);
    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");
    assert!(report.warnings.is_empty(), "{report}");
    assert_eq!(report.rows, 160 + 2);
}

fn drop_last_manifest_line(dir: &std::path::Path) {
    use secpipe::archive::manifest::{Checkpoint, line_hash};
    let path = dir.join("audit/manifests.jsonl");
    let bytes = std::fs::read(&path).unwrap();
    let (lines, _) = split_lines(&bytes);
    let kept = &lines[..lines.len() - 1];
    let mut out = Vec::new();
    for line in kept {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    std::fs::write(&path, out).unwrap();
    let checkpoint_path = dir.join("audit/checkpoint");
    let mut checkpoint =
        Checkpoint::parse(&std::fs::read_to_string(&checkpoint_path).unwrap()).unwrap();
    checkpoint.count = kept.len() as u64;
    checkpoint.head = line_hash(kept[kept.len() - 1]);
    std::fs::write(checkpoint_path, checkpoint.to_text()).unwrap();
}

#[test]
fn leftover_after_a_clean_close_is_an_extra_file() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 50, 100, None);
    let files = parquet_files(dir.path(), "events");
    let day = dir.path().join("events/date=2026-11-23");
    std::fs::copy(
        dir.path().join(&files[0]),
        day.join("part-00000002.parquet"),
    )
    .unwrap();
    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 1, "{report}");
    assert_eq!(
        report.first_problem().unwrap().class,
        secpipe::archive::verify::ProblemClass::ExtraFile
    );
}

#[test]
fn torn_manifest_append_is_cut_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 20, 100, None);
    let path = dir.path().join("audit/manifests.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"v\":1,\"arch");
    std::fs::write(&path, &bytes).unwrap();
    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");
    assert!(
        report.warnings.iter().any(|w| w.contains("torn")),
        "{report}"
    );
    drop(Archive::open(options(dir.path(), 100)).unwrap());
    let report = verify(dir.path(), &VerifyOptions::default());
    assert_eq!(report.exit_code(), 0, "{report}");
    assert!(report.warnings.is_empty(), "{report}");
}

#[test]
fn wrong_seq_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(options(dir.path(), 100)).unwrap();
    let mut e = event(0, DAY0);
    e.seq = Some(7);
    assert!(archive.append_events(&[e]).is_err());
}

/// Per column chunk of the first row group of `path`: (column, compression, encodings).
fn column_storage(path: &std::path::Path) -> Vec<(String, String, String)> {
    let file = std::fs::File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    builder
        .metadata()
        .row_group(0)
        .columns()
        .iter()
        .map(|c| {
            (
                c.column_path().string(),
                format!("{:?}", c.compression()),
                format!("{:?}", c.encodings().collect::<Vec<_>>()),
            )
        })
        .collect()
}

fn storage_of<'a>(storage: &'a [(String, String, String)], column: &str) -> (&'a str, &'a str) {
    let (_, compression, encodings) = storage.iter().find(|(c, _, _)| c == column).unwrap();
    (compression, encodings)
}

/// An archive of `n` events in one file, and that file's path.
fn one_events_file(n: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(options(dir.path(), 1_000_000)).unwrap();
    archive
        .append_events(&events(0, n, DAY0 + 3_600_000_000))
        .unwrap();
    archive.close().unwrap();
    let files = parquet_files(dir.path(), "events");
    assert_eq!(files.len(), 1);
    let path = dir.path().join(&files[0]);
    (dir, path)
}

#[test]
fn columns_are_stored_by_what_compresses_them() {
    // A file of one batch: null-only and dictionary columns are not worth a zstd context.
    let (_small, path) = one_events_file(250);
    let storage = column_storage(&path);
    for (column, expected) in [
        ("actor", "UNCOMPRESSED"),
        ("kind", "UNCOMPRESSED"),
        ("raw", "ZSTD"),
        ("http_path", "ZSTD"),
    ] {
        let (compression, _) = storage_of(&storage, column);
        assert!(compression.starts_with(expected), "{column}: {storage:?}");
    }
    let (_, kind_encodings) = storage_of(&storage, "kind");
    assert!(kind_encodings.contains("RLE_DICTIONARY"), "{storage:?}");
    // A day's two alerts: columns of a few hundred bytes are not worth compressing either.
    let with_alerts = tempfile::tempdir().unwrap();
    build(with_alerts.path(), 250, 1_000_000, None);
    let alerts = parquet_files(with_alerts.path(), "alerts");
    let storage = column_storage(&with_alerts.path().join(&alerts[0]));
    for column in ["count", "key_value"] {
        let (compression, _) = storage_of(&storage, column);
        assert!(
            compression.starts_with("UNCOMPRESSED"),
            "{column}: {storage:?}"
        );
    }

    // A file of several batches: everything but the delta-packed row numbers and the RLE'd
    // flag is compressed, null or not.
    let (big, path) = one_events_file(40_000);
    let storage = column_storage(&path);
    for (column, compression, encodings) in &storage {
        match column.as_str() {
            "seq" | "line" => {
                assert!(
                    compression.starts_with("UNCOMPRESSED"),
                    "{column}: {compression}"
                );
                assert!(
                    encodings.contains("DELTA_BINARY_PACKED"),
                    "{column}: {encodings}"
                );
            }
            "ts_inferred" => {
                assert!(
                    compression.starts_with("UNCOMPRESSED"),
                    "{column}: {compression}"
                );
                assert!(encodings.contains("RLE"), "{column}: {encodings}");
            }
            _ => assert!(compression.starts_with("ZSTD"), "{column}: {compression}"),
        }
    }
    assert!(
        storage_of(&storage, "ts").1.contains("DELTA_BINARY_PACKED"),
        "{storage:?}"
    );
    assert!(
        storage_of(&storage, "src_ip").1.contains("RLE_DICTIONARY"),
        "{storage:?}"
    );
    // And it all reads back.
    let rows: usize = read_rows(&path).iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 40_000);
    assert_eq!(verify(big.path(), &VerifyOptions::default()).exit_code(), 0);
}
