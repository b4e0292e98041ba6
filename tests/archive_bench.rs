//! Throughput of the archive path and of verify on ~1M synthetic rows. A measurement, not a
//! check: run it in release with
//! `cargo test --release --test archive_bench -- --ignored --nocapture`.

mod archive_support;

use std::time::Instant;

use archive_support::*;
use secpipe::archive::Archive;
use secpipe::archive::verify::{VerifyOptions, verify};

#[test]
#[ignore = "a benchmark: run in release with --ignored --nocapture"]
fn archive_and_verify_throughput() {
    let rows: u64 = std::env::var("ARCHIVE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Real sshd lines as `raw` when the sample corpus is there (realistic compression),
    // 20 events per second of event time. Without it the rows keep the generator's synthetic
    // lines, which compress differently: the output says which input was measured.
    let corpus_path = std::env::var_os("SECPIPE_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
        })
        .join("loghub/OpenSSH_2k.log");
    let corpus = match std::fs::read_to_string(&corpus_path) {
        Ok(text) => {
            println!("raw: real sshd lines from {}", corpus_path.display());
            text
        }
        Err(e) => {
            println!(
                "raw: SYNTHETIC lines ({} unreadable: {e}; set SECPIPE_CORPUS); the figures \
                 below are not those of real sshd lines",
                corpus_path.display()
            );
            String::new()
        }
    };
    let lines: Vec<&str> = corpus.lines().collect();
    let generation = Instant::now();
    let all: Vec<_> = (0..rows)
        .map(|i| {
            let mut e = event(i, DAY0 + i as i64 * 50_000);
            if !lines.is_empty() {
                let line = lines[i as usize % lines.len()];
                e.raw = line.as_bytes().into();
                e.message = line.split_once(": ").map_or(line, |(_, m)| m).into();
            }
            e
        })
        .collect();
    println!(
        "generated {rows} events in {:.2}s",
        generation.elapsed().as_secs_f64()
    );
    let raw_bytes: usize = all.iter().map(|e| e.raw.len()).sum();
    let dir = tempfile::tempdir().unwrap();

    let start = Instant::now();
    let roll_rows = std::env::var("ARCHIVE_BENCH_ROLL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut archive = Archive::open(options(dir.path(), roll_rows)).unwrap();
    let mut on_caller = std::time::Duration::ZERO;
    for chunk in all.chunks(4096) {
        let t = Instant::now();
        archive.append_events(chunk).unwrap();
        on_caller += t.elapsed();
    }
    let summary = archive.close().unwrap();
    let total = start.elapsed();
    println!(
        "archive: {rows} rows in {:.2}s = {:.0} rows/s end to end; append_events on the caller \
         thread {:.2}s ({:.0} rows/s incl. backpressure); {} files, {} bytes ({:.3} archive bytes \
         per raw byte)",
        total.as_secs_f64(),
        rows as f64 / total.as_secs_f64(),
        on_caller.as_secs_f64(),
        rows as f64 / on_caller.as_secs_f64(),
        summary.files,
        summary.bytes,
        summary.bytes as f64 / raw_bytes as f64,
    );

    // Files are in the page cache here: this measures hashing, not the disk.
    const RUNS: u32 = 10;
    let start = Instant::now();
    let mut checked = 0;
    for _ in 0..RUNS {
        let report = verify(dir.path(), &VerifyOptions::default());
        assert_eq!(report.exit_code(), 0, "{report}");
        checked += report.bytes;
    }
    let took = start.elapsed();
    println!(
        "verify: {checked} bytes ({RUNS} runs) in {:.3}s = {:.0} MB/s",
        took.as_secs_f64(),
        checked as f64 / 1e6 / took.as_secs_f64()
    );
}
