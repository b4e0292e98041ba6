//! Spark reads the archive the binary writes: sane types, every row and column decoded as
//! pyarrow decodes it, every encoding the writer uses, and the README's example questions giving
//! the same answers in Spark SQL as in DuckDB over the same files.
//!
//! The archive comes from two runs of the built binary, one extending the other: the report
//! corpus (`benches/report_corpus.py`: sshd, nginx, JSON application events, brute-force bursts)
//! and `fixtures/sample/attacks.log` give every event kind and many alerts; then a flood of
//! 150,000 failed logins from distinct addresses on one day (one file of two row groups whose
//! `src_ip` dictionary outgrows its page, so the writer falls back to PLAIN pages) and a
//! brute force stamped now (`--block simulate` records its ban) whose user names are not UTF-8,
//! so the evidence lines of an alert carry bytes no text type holds.
//!
//! One Spark session runs everything (`tests/peers/archive_spark.py`; start-up is the slow
//! part); each test below judges one part of its report. Needs pyspark (PyPI), Java 17, duckdb
//! and pyarrow (tests/run-all.sh installs them); fails, does not skip, without them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use parquet::basic::{Encoding, PageType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

/// Failed logins in the flood, each from its own address. Above the 131,072 rows of a row
/// group, and their `src_ip` texts (~15 bytes each) outgrow the 1 MiB dictionary page.
const FLOOD: u32 = 150_000;
/// The flood's day, a date no other input has.
const FLOOD_DATE: &str = "2026-03-12";
/// The source of the brute force with non-UTF-8 user names.
const BRUTE: &str = "198.51.100.9";

struct Fixture {
    archive: PathBuf,
    report: Value,
}

/// Build the archive and run Spark over it once for all the tests of this file. An error is
/// kept (not a panic in the initialiser), so every test reports it instead of re-running Spark.
fn spark_run() -> &'static Fixture {
    static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();
    match FIXTURE.get_or_init(build) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    }
}

fn build() -> Result<Fixture, String> {
    // A fixed directory inside the target dir, cleared first: the shared fixture outlives
    // every test, so a TempDir would never be dropped.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("archive_spark");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let archive = dir.join("archive");
    let archive_arg = archive.to_str().ok_or("archive path")?;

    let corpus = dir.join("corpus.log");
    let made = Command::new("python3")
        .arg(root().join("benches/report_corpus.py"))
        .args(["--lines", "30000", "--days", "2", "--seed", "7", "--out"])
        .arg(&corpus)
        .arg("--truth")
        .arg(dir.join("truth.json"))
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !made.status.success() {
        return Err(String::from_utf8_lossy(&made.stderr).into_owned());
    }
    let attacks = fixture("sample/attacks.log");
    secpipe_run(&[
        "--tz",
        "UTC",
        "--year",
        "2026",
        "--roll-secs",
        "3600",
        "--block",
        "simulate",
        "--archive",
        archive_arg,
        corpus.to_str().ok_or("corpus path")?,
        attacks.to_str().ok_or("attacks path")?,
    ])?;

    // Second run, extending the chain: the flood (RFC 3339 stamps, its own day) and a brute
    // force stamped now (the year is the current one, so no --year), whose ban is live.
    let flood = dir.join("flood.log");
    let mut text = String::with_capacity(FLOOD as usize * 100);
    for i in 0..FLOOD {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        text.push_str(&format!(
            "{FLOOD_DATE}T{h:02}:{m:02}:{s:02}.000000+00:00 gw sshd[{}]: Failed password for root from 10.{}.{}.{} port 22 ssh2\n",
            10_000 + i,
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    std::fs::write(&flood, text).map_err(|e| e.to_string())?;
    let brute = dir.join("brute.log");
    let stamp = jiff::Timestamp::now()
        .strftime("%b %e %H:%M:%S")
        .to_string();
    let mut bytes = Vec::new();
    for i in 1..=6 {
        bytes.extend_from_slice(
            format!("{stamp} bastion sshd[42{i}]: Failed password for invalid user r").as_bytes(),
        );
        // A lone continuation byte, then a truncated three-byte sequence: not UTF-8.
        bytes.extend_from_slice(b"\xffo\xe2\x82t");
        bytes.extend_from_slice(format!("{i} from {BRUTE} port 22 ssh2\n").as_bytes());
    }
    std::fs::write(&brute, bytes).map_err(|e| e.to_string())?;
    secpipe_run(&[
        "--tz",
        "UTC",
        "--roll-secs",
        "3600",
        "--block",
        "simulate",
        "--archive",
        archive_arg,
        flood.to_str().ok_or("flood path")?,
        brute.to_str().ok_or("brute path")?,
    ])?;
    secpipe_run(&["verify", archive_arg])?;

    // A copy with an unsealed file in a date directory, as a live writer (or a killed one)
    // leaves: the first half of a sealed file under the writer's staging name.
    let broken = dir.join("broken");
    copy_tree(&archive, &broken)?;
    let sealed = sealed_files(&broken, "events");
    let victim = sealed.first().ok_or("no sealed event file")?;
    let bytes = std::fs::read(victim).map_err(|e| e.to_string())?;
    let staging = victim
        .parent()
        .ok_or("no date directory")?
        .join("part-unsealed-00000099.parquet.tmp");
    std::fs::write(&staging, &bytes[..bytes.len() / 2]).map_err(|e| e.to_string())?;

    let out = Command::new("python3")
        .arg(root().join("tests/peers/archive_spark.py"))
        .arg(&archive)
        .arg(&broken)
        .output()
        .map_err(|e| format!("python3 must be installed for this test: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") {
        return Err(format!(
            "this test needs `pip install pyspark==4.3.0 duckdb pyarrow` and Java 17: {stderr}"
        ));
    }
    if !out.status.success() {
        return Err(format!("archive_spark.py failed: {stderr}"));
    }
    // Kept beside the archive for a look after a failure.
    std::fs::write(dir.join("report.json"), &out.stdout).map_err(|e| e.to_string())?;
    let report = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("archive_spark.py printed no JSON ({e}): {stderr}"))?;
    Ok(Fixture { archive, report })
}

fn secpipe_run(args: &[&str]) -> Result<(), String> {
    let out = secpipe()
        .args(args)
        .output()
        .map_err(|e| format!("run secpipe: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "secpipe {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Sealed `.parquet` files of `table`, sorted.
fn sealed_files(archive: &Path, table: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for day in std::fs::read_dir(archive.join(table))
        .expect("table directory")
        .flatten()
    {
        for file in std::fs::read_dir(day.path())
            .expect("date directory")
            .flatten()
        {
            if file.path().extension().is_some_and(|e| e == "parquet") {
                out.push(file.path());
            }
        }
    }
    out.sort();
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not text: {s}"))
                .to_owned()
        })
        .collect()
}

#[test]
fn spark_types_are_long_int_timestamp_date_binary_and_arrays() {
    let report = &spark_run().report;
    let types = |table: &str| -> BTreeMap<String, String> {
        report["schema"][table]
            .as_array()
            .expect("schema")
            .iter()
            .map(|f| {
                (
                    f[0].as_str().expect("name").to_owned(),
                    f[1].as_str().expect("type").to_owned(),
                )
            })
            .collect()
    };
    let events = types("events");
    let alerts = types("alerts");
    // Spark's simpleString: `bigint` is LongType, `int` IntegerType; an unsigned 64-bit
    // column would come out as decimal(20,0), a UTC-less timestamp as timestamp_ntz.
    let want_events = [
        ("seq", "bigint"),
        ("line", "bigint"),
        ("pid", "bigint"),
        ("count", "bigint"),
        ("bytes", "bigint"),
        ("http_status", "int"),
        ("ts", "timestamp"),
        ("received", "timestamp"),
        ("ts_inferred", "boolean"),
        ("raw", "binary"),
        ("kind", "string"),
        ("src_ip", "string"),
        ("message", "string"),
        ("date", "date"),
    ];
    for (column, spark_type) in want_events {
        assert_eq!(
            events.get(column).map(String::as_str),
            Some(spark_type),
            "events.{column}: {events:?}"
        );
    }
    let want_alerts = [
        ("seq", "bigint"),
        ("count", "bigint"),
        ("threshold", "bigint"),
        ("window_start", "timestamp"),
        ("window_end", "timestamp"),
        ("first_seen", "timestamp"),
        ("last_seen", "timestamp"),
        ("evidence_seqs", "array<bigint>"),
        ("rule", "string"),
        ("date", "date"),
    ];
    for (column, spark_type) in want_alerts {
        assert_eq!(
            alerts.get(column).map(String::as_str),
            Some(spark_type),
            "alerts.{column}: {alerts:?}"
        );
    }
    // Every column of the writer's schema, plus the partition column, and nothing else.
    assert_eq!(
        events.len(),
        secpipe::archive::schema::events_schema().fields().len() + 1
    );
    assert_eq!(
        alerts.len(),
        secpipe::archive::schema::alerts_schema().fields().len() + 1
    );
    for (spark_type, table) in events
        .values()
        .map(|t| (t, "events"))
        .chain(alerts.values().map(|t| (t, "alerts")))
    {
        assert!(
            !spark_type.starts_with("decimal") && spark_type != "timestamp_ntz",
            "{table}: {spark_type}"
        );
    }
}

#[test]
fn spark_decodes_every_row_and_column_as_pyarrow_does() {
    let report = &spark_run().report;
    for table in ["events", "alerts"] {
        let rows = &report["rows"][table];
        assert_eq!(rows["spark"], rows["pyarrow"], "{table}: {rows}");
        assert_eq!(
            report["mismatches"][table],
            serde_json::json!([]),
            "{table}"
        );
        // Spark's scan read exactly the sealed files.
        let files = &report["files"][table];
        assert_eq!(
            strings(&files["spark"]),
            strings(&files["on_disk"]),
            "{table}"
        );
    }
    let events = report["rows"]["events"]["spark"]
        .as_u64()
        .expect("event rows");
    assert!(events > u64::from(FLOOD) + 30_000, "{events} event rows");
    // Every event kind the parser has, and the alerts: detections, and the simulated ban.
    let kinds = report["kinds"].as_object().expect("kinds");
    for kind in secpipe::event::Kind::ALL {
        assert!(
            kinds.contains_key(kind.as_str()),
            "no {} rows: {kinds:?}",
            kind.as_str()
        );
    }
    let rules = report["rules"].as_object().expect("rules");
    for rule in [
        "auth.bruteforce",
        "http.injection",
        "log.silence",
        "secpipe.ban",
    ] {
        assert!(rules.contains_key(rule), "no {rule} alert: {rules:?}");
    }
}

/// Encodings of every data page of column `column` in `file`, and whether it has a
/// dictionary page, read with the parquet crate (pyarrow lists encodings per column chunk
/// only, which cannot show a dictionary falling back to PLAIN).
fn page_encodings(file: &Path, column: &str) -> (BTreeSet<Encoding>, bool) {
    let reader =
        SerializedFileReader::new(std::fs::File::open(file).expect("open")).expect("parquet");
    let mut encodings = BTreeSet::new();
    let mut dictionary = false;
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).expect("row group");
        let index = group
            .metadata()
            .columns()
            .iter()
            .position(|c| c.column_path().string() == column)
            .expect("column");
        let mut pages = group.get_column_page_reader(index).expect("pages");
        while let Some(page) = pages.get_next_page().expect("page") {
            if page.page_type() == PageType::DICTIONARY_PAGE {
                dictionary = true;
            } else {
                encodings.insert(page.encoding());
            }
        }
    }
    (encodings, dictionary)
}

#[test]
fn the_files_spark_read_use_every_encoding_the_writer_has() {
    let Fixture { archive, report } = spark_run();
    let chunks = report["chunks"].as_object().expect("chunks");
    // The column-chunk encodings (pyarrow's metadata) over the files Spark read.
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, chunk) in chunks {
        for (column, encodings) in chunk["columns"].as_object().expect("columns") {
            for encoding in strings(encodings) {
                seen.entry(encoding)
                    .or_default()
                    .insert(format!("{file}:{column}"));
            }
        }
    }
    // What writer_properties asks for: PLAIN (the default), RLE_DICTIONARY (dictionary
    // columns), DELTA_BINARY_PACKED (seq, line, ts, pid), RLE (flags, and every column's
    // definition levels). No other encoding may appear unread.
    let names: BTreeSet<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["DELTA_BINARY_PACKED", "PLAIN", "RLE", "RLE_DICTIONARY"]),
        "{seen:?}"
    );
    // The flood's file: two row groups, and its src_ip dictionary fell back to PLAIN pages.
    let flood: Vec<&String> = chunks
        .keys()
        .filter(|f| f.starts_with(&format!("events/date={FLOOD_DATE}/")))
        .collect();
    assert_eq!(flood.len(), 1, "{flood:?}");
    assert!(chunks[flood[0]]["row_groups"].as_u64().expect("row groups") >= 2);
    let (encodings, dictionary) = page_encodings(&archive.join(flood[0]), "src_ip");
    assert!(dictionary, "no dictionary page");
    assert_eq!(
        encodings,
        BTreeSet::from([Encoding::PLAIN, Encoding::RLE_DICTIONARY]),
        "src_ip pages of {}",
        flood[0]
    );
    // A small file's dictionary column stays dictionary-encoded: the fallback above is the
    // flood's doing, not the writer's default.
    let small = chunks
        .keys()
        .find(|f| f.starts_with("events/date=2026-03-10/"))
        .expect("attacks.log's file");
    let (encodings, _) = page_encodings(&archive.join(small), "src_ip");
    assert_eq!(
        encodings,
        BTreeSet::from([Encoding::RLE_DICTIONARY]),
        "{small}"
    );
}

#[test]
fn readme_questions_give_the_same_answers_in_spark_and_duckdb() {
    let report = &spark_run().report;
    let questions = report["questions"].as_object().expect("questions");
    assert_eq!(
        questions.keys().collect::<Vec<_>>(),
        [
            "alerts with their evidence lines",
            "top attacking IPs per day"
        ]
    );
    let top = &questions["top attacking IPs per day"];
    let (spark, duckdb) = (
        top["spark"].as_array().expect("rows"),
        top["duckdb"].as_array().expect("rows"),
    );
    assert_eq!(spark, duckdb);
    // Ten per day at most; the flood's day is a ten-way tie at one failure each, broken by
    // address, so the answer is the same in any engine.
    let flood_day: Vec<&Value> = spark.iter().filter(|r| r[0] == FLOOD_DATE).collect();
    assert_eq!(flood_day.len(), 10, "{flood_day:?}");
    assert_eq!(
        flood_day[0],
        &serde_json::json!([FLOOD_DATE, "10.0.0.0", 1])
    );

    let evidence = &questions["alerts with their evidence lines"];
    let (spark, duckdb) = (
        evidence["spark"].as_array().expect("rows"),
        evidence["duckdb"].as_array().expect("rows"),
    );
    assert!(spark.len() > 100, "{} evidence rows", spark.len());
    assert_eq!(spark.len(), duckdb.len());
    let raw_of_seq = report["raw_of_seq"].as_object().expect("raw_of_seq");
    let mut not_utf8 = 0;
    for (i, (s, d)) in spark.iter().zip(duckdb).enumerate() {
        let (s, d) = (s.as_array().expect("row"), d.as_array().expect("row"));
        // id, rule, severity, key_value, seq, ts: equal; line: see below.
        assert_eq!(s[..6], d[..6], "row {i}");
        let raw = hex::decode(raw_of_seq[&s[4].to_string()].as_str().expect("hex")).expect("hex");
        let (spark_line, duck_line) = (s[6].as_str().expect("line"), d[6].as_str().expect("line"));
        match std::str::from_utf8(&raw) {
            Ok(text) => {
                assert_eq!(spark_line, text, "row {i}");
                assert_eq!(duck_line, text, "row {i}");
            }
            Err(_) => {
                // What the README says: Spark's make_valid_utf8 puts U+FFFD per bad sequence
                // (Unicode's recommended practice, as Rust's and Python's lossy decoders do);
                // DuckDB's decode(…, 'replace') puts '?'.
                not_utf8 += 1;
                assert_eq!(spark_line, String::from_utf8_lossy(&raw), "row {i}");
                assert!(
                    duck_line.contains('?') && !duck_line.contains('\u{fffd}'),
                    "row {i}: {duck_line}"
                );
            }
        }
    }
    // The planted brute force's evidence, at least: its five lines reached an alert.
    assert!(not_utf8 >= 5, "{not_utf8} evidence lines are not UTF-8");
    assert!(
        spark
            .iter()
            .any(|r| r[3] == BRUTE && r[1] == "auth.bruteforce")
    );
}

#[test]
fn spark_skips_an_unsealed_tmp_file_only_with_the_readme_glob_filter() {
    let report = &spark_run().report;
    let broken = &report["broken"];
    let events = &report["rows"]["events"]["spark"];
    // Plain `spark.read.parquet(dir)` reads the staging file too: it fails, or counts rows
    // that no manifest seals.
    match broken["plain"].as_str() {
        Some(error) => assert!(
            error.contains("part-unsealed-00000099.parquet.tmp"),
            "{broken}"
        ),
        None => assert_ne!(broken["plain_rows"], *events, "{broken}"),
    }
    assert_eq!(broken["filtered_rows"], *events, "{broken}");
}
