//! Attack on the archive writer: lines as long as secpipe accepts (64 KiB, the default
//! `--max-line`), incompressible, fill the archive. Rows were gathered 16,384 to a chunk and
//! 131,072 to a row group whatever their size, so 4,096 such lines (256 MiB) were held whole:
//! 988 MB peak in a debug build. Memory must stay within the 256 MiB budget, for a directory
//! archive as for a bucket's spool (the same writer), and no line may be lost.

mod bucket_support;
mod common;

use std::io::Write;

use common::wait_peak_rss_kib;

/// 4,096 incompressible lines of 64 KiB (256 MiB), in a file of `dir`.
fn long_lines(dir: &std::path::Path) -> (std::path::PathBuf, u32) {
    let input = dir.join("long.log");
    let lines = 4096u32;
    let mut log = std::io::BufWriter::new(std::fs::File::create(&input).expect("create"));
    // A xorshift stream of printable bytes: zstd cannot shrink it.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..lines {
        let mut line = format!("2026-01-01T00:00:00Z web1 app[{i}]: ").into_bytes();
        while line.len() < 64 * 1024 - 1 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            line.push(b'!' + (state % 90) as u8);
        }
        line.push(b'\n');
        log.write_all(&line).expect("write");
    }
    log.flush().expect("flush");
    (input, lines)
}

/// Archive the long lines to `archive` (with `env`), measure the peak RSS, then check with
/// verify that every line is there.
fn archive_within_budget(
    dir: &std::path::Path,
    archive: &str,
    extra: &[&str],
    env: &[(&str, String)],
) {
    let (input, lines) = long_lines(dir);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["--alerts", "/dev/null", "--archive", archive])
        .args(extra)
        .arg(&input)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn secpipe");
    let (code, peak_kib) = wait_peak_rss_kib(child);
    eprintln!(
        "{archive}: {lines} lines of 64 KiB: peak RSS {} MiB",
        peak_kib / 1024
    );
    assert_eq!(code, 0);
    assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB");
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_secpipe"))
        .args(["verify", "--json", archive])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()
        .expect("verify");
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).expect("json");
    assert_eq!(report["status"], "intact", "{report}");
    assert_eq!(report["rows"], u64::from(lines), "{report}");
}

#[test]
fn lines_of_the_largest_size_keep_the_archive_writer_within_its_memory_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    archive_within_budget(dir.path(), "archive", &[], &[]);
}

#[test]
fn lines_of_the_largest_size_keep_a_bucket_archive_within_its_memory_budget() {
    // Each sealed file is read whole for its one create-only PUT: files are sealed by size.
    let moto = bucket_support::Moto::start();
    moto.bucket("evidence", false);
    let dir = tempfile::tempdir().expect("tempdir");
    archive_within_budget(
        dir.path(),
        "s3://evidence/long",
        &["--spool", "spool"],
        &moto.env(),
    );
}
