//! DuckDB reads the archive directly: hive partitioning, every row, byte-exact `raw`.
//! Needs `pip install duckdb`; fails (does not skip) when it is missing.

mod archive_support;

use archive_support::*;
use secpipe::archive::Archive;

const QUERY: &str = r#"
import sys, duckdb, hashlib
root = sys.argv[1]
con = duckdb.connect()
rows = con.execute(
    "SELECT seq, raw, date, epoch_us(ts), typeof(ts), src_ip, kind, http_status FROM read_parquet(?, hive_partitioning=true) ORDER BY seq",
    [root + "/events/**/*.parquet"],
).fetchall()
for seq, raw, date, ts, ts_type, src_ip, kind, status in rows:
    print(seq, raw.hex(), date, ts, ts_type.replace(" ", "_"), src_ip, kind, status)
(alerts,) = con.execute(
    "SELECT count(*) FROM read_parquet(?, hive_partitioning=true) a, unnest(a.evidence_seqs) AS e(seq)",
    [root + "/alerts/**/*.parquet"],
).fetchone()
print("evidence", alerts)
"#;

#[test]
fn duckdb_reads_every_row_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(options(dir.path(), 70)).unwrap();
    // Two days, several files per day.
    let day0 = events(0, 150, DAY0 + 86_000_000_000);
    let day1 = events(150, 60, DAY0 + 86_400_000_000);
    archive.append_events(&day0).unwrap();
    archive.append_events(&day1).unwrap();
    archive
        .append_alerts(&[alert(0, DAY0 + 86_100_000_000, &[3, 4, 5])])
        .unwrap();
    archive.close().unwrap();

    let out = python(QUERY, &[dir.path().to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    let expected: Vec<_> = day0.iter().chain(&day1).collect();
    assert_eq!(lines.len(), expected.len() + 1, "{out}");
    for (i, (line, e)) in lines.iter().zip(&expected).enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[0], i.to_string());
        assert_eq!(fields[1], hex::encode(&e.raw), "raw of seq {i}");
        let (y, m, d) = secpipe::event::civil_from_days(e.ts.div_euclid(86_400_000_000));
        assert_eq!(
            fields[2],
            format!("{y:04}-{m:02}-{d:02}"),
            "partition of seq {i}"
        );
        assert_eq!(fields[3], e.ts.to_string(), "ts of seq {i}");
        // UTC-adjusted timestamps: DuckDB sees an instant, not a wall-clock time.
        assert_eq!(fields[4], "TIMESTAMP_WITH_TIME_ZONE");
        assert_eq!(fields[5], e.src_ip.unwrap().to_string());
        assert_eq!(fields[6], e.kind.as_str());
        let status = e
            .http_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "None".into());
        assert_eq!(fields[7], status);
    }
    assert_eq!(*lines.last().unwrap(), "evidence 3");
}
