//! Shared helpers for the archive tests: synthetic events and alerts, archive builders, and a
//! way to run Python (pyarrow / duckdb) that fails loudly when the modules are missing.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use secpipe::alert::{Alert, Evidence, Severity};
use secpipe::archive::{Archive, ArchiveOptions, ArchiveSummary};
use secpipe::event::{Event, Kind};

/// 2026-11-23T00:00:00Z in µs.
pub const DAY0: i64 = 1_795_392_000_000_000;

/// A varied synthetic event: nulls, IPv4/IPv6, HTTP fields, non-UTF-8 raw bytes.
pub fn event(i: u64, ts: i64) -> Event {
    let source: Arc<str> = Arc::from(if i.is_multiple_of(3) {
        "-"
    } else {
        "/var/log/auth.log"
    });
    let mut raw = format!("Nov 23 00:00:00 host{} sshd[{}]: Failed password for root from 203.0.113.{} port 22 ssh2 #{i}", i % 5, 1000 + i % 7, i % 250).into_bytes();
    if i.is_multiple_of(11) {
        raw.extend_from_slice(&[0xff, 0x00, 0xfe]);
    }
    Event {
        source,
        line: i + 1,
        seq: None,
        ts,
        ts_inferred: i.is_multiple_of(13),
        received: ts + 5,
        host: (!i.is_multiple_of(4)).then(|| format!("host{}", i % 5).into()),
        app: Some("sshd".into()),
        pid: (i.is_multiple_of(2)).then_some(1000 + (i % 7) as u32),
        kind: if i.is_multiple_of(2) {
            Kind::AuthFailure
        } else {
            Kind::HttpRequest
        },
        reason: (i.is_multiple_of(2)).then(|| "bad_password".into()),
        src_ip: Some(if i.is_multiple_of(6) {
            "2001:db8::7".parse().unwrap()
        } else {
            format!("203.0.113.{}", i % 250).parse().unwrap()
        }),
        user: Some(format!("user{}", i % 9).into()),
        actor: None,
        namespace: (i.is_multiple_of(10)).then(|| "ns1".into()),
        count: (i.is_multiple_of(10)).then_some(i),
        http_method: (i % 2 == 1).then(|| "GET".into()),
        http_path: (i % 2 == 1).then(|| format!("/index/{i}").into()),
        http_status: (i % 2 == 1).then_some(200 + (i % 3) as u16 * 100),
        bytes: (i % 2 == 1).then_some(i * 10),
        forwarded_for: (i % 6 == 1).then(|| format!("198.51.100.{}, 10.0.0.1", i % 250).into()),
        severity: (i.is_multiple_of(17)).then(|| "err".into()),
        message: format!("Failed password for root #{i}").into(),
        raw: raw.into_boxed_slice(),
        attempt: Default::default(),
    }
}

/// `n` events one second apart starting at `start` µs.
pub fn events(first: u64, n: u64, start: i64) -> Vec<Event> {
    (first..first + n)
        .map(|i| event(i, start + (i - first) as i64 * 1_000_000))
        .collect()
}

pub fn alert(i: u64, ts: i64, seqs: &[u64]) -> Alert {
    Alert {
        id: format!("alert-{i}"),
        rule: "auth.bruteforce".into(),
        severity: Severity::Medium,
        priority: "P2".into(),
        respond_within: "4h".into(),
        key_field: "src_ip".into(),
        key_value: "203.0.113.7".into(),
        count: 5,
        threshold: 5,
        window_start: ts - 60_000_000,
        window_end: ts,
        first_seen: ts - 30_000_000,
        last_seen: ts,
        summary: "5 failed logins from 203.0.113.7".into(),
        evidence: seqs
            .iter()
            .map(|s| Evidence {
                source: Arc::from("-"),
                line: s + 1,
                ts,
                raw: b"raw line".to_vec().into_boxed_slice(),
                seq: Some(*s),
            })
            .collect(),
        action: vec![secpipe::action::Action::Block {
            target: secpipe::action::BlockTarget::new([203, 0, 113, 7].into(), 64)
                .expect("an address"),
            duration: Some(15 * 60 * 1_000_000),
        }],
        unverified: false,
    }
}

pub fn options(dir: &Path, roll_rows: u64) -> ArchiveOptions {
    ArchiveOptions {
        dir: dir.to_path_buf(),
        key: None,
        roll_rows,
        roll_secs: 3600,
    }
}

/// Write `n` events (and two alerts) in batches of 100, rolling every `roll_rows` rows.
pub fn build(dir: &Path, n: u64, roll_rows: u64, key: Option<&Path>) -> ArchiveSummary {
    let mut opts = options(dir, roll_rows);
    opts.key = key.map(Path::to_path_buf);
    let mut archive = Archive::open(opts).expect("open archive");
    let first = archive.next_seq();
    let all = events(first, n, DAY0 + 3_600_000_000);
    for chunk in all.chunks(100) {
        archive.append_events(chunk).expect("append events");
    }
    archive
        .append_alerts(&[
            alert(0, DAY0 + 3_700_000_000, &[first, first + 1]),
            alert(1, DAY0 + 3_800_000_000, &[first + 2]),
        ])
        .expect("append alerts");
    archive.close().expect("close archive")
}

/// Run a Python script; panic with a clear message when python3 or a module is missing.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") {
        panic!("this test needs `pip install duckdb pyarrow`: {stderr}");
    }
    assert!(out.status.success(), "python failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Relative paths of the sealed parquet files under `table`.
pub fn parquet_files(dir: &Path, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    let root = dir.join(table);
    let Ok(days) = std::fs::read_dir(&root) else {
        return out;
    };
    for day in days.flatten() {
        for file in std::fs::read_dir(day.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(".parquet") {
                out.push(format!(
                    "{table}/{}/{name}",
                    day.file_name().to_string_lossy()
                ));
            }
        }
    }
    out.sort();
    out
}
