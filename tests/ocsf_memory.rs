//! Attack on `secpipe export`: an archive whose rows jump between many days (planted
//! timestamps) and carry long, incompressible raw lines makes the export feed many (class, day)
//! partitions at once. Its memory must stay bounded (rows wait in buffers under one byte
//! budget, more than the rows here hold), it must not shatter the output into a file per batch
//! and partition (a first version wrote 37,982 files for 60 partitions of 40,000 rows), and no row may
//! be lost.

mod archive_support;
mod common;

use common::wait_peak_rss_kib;
use secpipe::archive::Archive;

const ROWS: u64 = 20_000;
const DAYS: u64 = 60;

#[test]
fn rows_jumping_across_sixty_days_export_in_bounded_memory_without_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arch = dir.path().join("arch");
    {
        let mut archive =
            Archive::open(archive_support::options(&arch, 1_000_000)).expect("open archive");
        let mut batch = Vec::with_capacity(1000);
        for i in 0..ROWS {
            // Day i % 60: consecutive rows never share a partition.
            let ts = archive_support::DAY0 + ((i % DAYS) * 86_400 + i / DAYS) as i64 * 1_000_000;
            let mut event = archive_support::event(i, ts);
            // 4 KiB of incompressible text per row (hex of a hash chain): ~80 MiB of raw,
            // over 100 MiB as buffered rows: more than the export's 64 MiB budget.
            let mut raw = event.raw.to_vec();
            let mut h = secpipe::archive::canonical::sha256(&[&i.to_be_bytes()]);
            while raw.len() < 4096 {
                raw.extend_from_slice(hex::encode(h).as_bytes());
                h = secpipe::archive::canonical::sha256(&[&h]);
            }
            event.raw = raw.into_boxed_slice();
            batch.push(event);
            if batch.len() == 1000 {
                archive.append_events(&batch).expect("append");
                batch.clear();
            }
        }
        archive.close().expect("close");
    }
    let out = dir.path().join("out");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .arg("export")
        .arg(&arch)
        .args(["--ocsf", "parquet", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn export");
    let (code, peak_kib) = wait_peak_rss_kib(child);
    assert_eq!(code, 0, "export failed");
    eprintln!("export peak RSS: {} MiB", peak_kib / 1024);
    assert!(peak_kib < 256 * 1024, "peak RSS {} MiB", peak_kib / 1024);

    // Every row is in the output: count them back with pyarrow, per class and in total.
    let counted = archive_support::python(
        "import sys, glob, pyarrow.parquet as pq\n\
         files = glob.glob(sys.argv[1] + '/**/*.parquet', recursive=True)\n\
         days = {f.split('eventDay=')[1].split('/')[0] for f in files}\n\
         print(sum(pq.ParquetFile(f).metadata.num_rows for f in files), len(days), len(files))",
        &[out.to_str().expect("path")],
    );
    let mut parts = counted.split_whitespace();
    let rows: u64 = parts.next().and_then(|s| s.parse().ok()).expect("rows");
    let days: u64 = parts.next().and_then(|s| s.parse().ok()).expect("days");
    let files: u64 = parts.next().and_then(|s| s.parse().ok()).expect("files");
    assert_eq!(rows, ROWS, "no row lost");
    assert_eq!(days, DAYS, "one partition per day");
    // The kind follows i's parity and so does the day (i % 60): each day holds one class,
    // so 60 partitions, one file each.
    assert_eq!(files, DAYS, "one file per (class, day)");
}
