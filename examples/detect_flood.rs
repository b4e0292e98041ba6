//! Detect-stage measurements (release): push throughput for sshd-like events, and peak memory
//! under a flood of 1,000,000 distinct attacking IPs.
//!
//! ```text
//! cargo run --release --example detect_flood -- throughput 4000000
//! /usr/bin/time -v target/release/examples/detect_flood flood 1000000
//! /usr/bin/time -v target/release/examples/detect_flood flood-threaded 1000000
//! ```
//!
//! glibc's fastbins fragment badly under this allocation pattern (events freed long after
//! evidence was allocated between them); compare with
//! `GLIBC_TUNABLES=glibc.malloc.mxfast=0`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use secpipe::detect::{DetectOptions, Detector, RuleSet};
use secpipe::event::{Attempt, Event, Kind};

/// 2026-11-23T00:00:00Z, µs.
const T0: i64 = 1_795_392_000_000_000;

fn sshd_failure(
    source: &Arc<str>,
    n: u64,
    ts: i64,
    ip: Ipv4Addr,
    pid: u32,
    attempt: Attempt,
) -> Event {
    let raw = format!(
        "Nov 23 00:00:00 gateway sshd[{pid}]: Failed password for invalid user admin from {ip} port {} ssh2",
        40_000 + n % 20_000
    );
    Event {
        source: source.clone(),
        line: n + 1,
        ts,
        received: ts,
        host: Some("gateway".into()),
        app: Some("sshd".into()),
        pid: Some(pid),
        kind: Kind::AuthFailure,
        reason: Some("bad_password".into()),
        src_ip: Some(IpAddr::V4(ip)),
        user: Some("admin".into()),
        message: "Failed password for invalid user admin".into(),
        raw: raw.into_bytes().into(),
        attempt,
        ..Event::default()
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// sshd-like traffic: 20,000 attacking IPs, sessions of 3 lines (Invalid user, PAM, Failed
/// password), 50 µs apart. Building and dropping events is timed separately and subtracted, so
/// the figure is the detector's own cost per event (as when another thread parses).
fn throughput(total: u64) {
    let source: Arc<str> = Arc::from("auth.log");
    let make = |i: u64| {
        let session = i / 3;
        let ip = Ipv4Addr::from(0x0a00_0000 + (session % 20_000) as u32);
        let attempt = [Attempt::Start, Attempt::Start, Attempt::End][(i % 3) as usize];
        sshd_failure(&source, i, T0 + i as i64 * 50, ip, session as u32, attempt)
    };

    let start = Instant::now();
    let mut checksum = 0u64;
    for i in 0..total {
        let ev = make(i);
        checksum = checksum.wrapping_add(ev.raw.len() as u64);
        drop(ev);
    }
    let build_only = start.elapsed();

    // `LATENESS_MS` changes the reorder window (default 10 s): at 20,000 events/s of event time
    // the default holds 200,000 events, which no longer fit in cache.
    let lateness_ms: i64 = std::env::var("LATENESS_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let opts = DetectOptions {
        lateness: lateness_ms * 1000,
        ..DetectOptions::default()
    };
    let mut detector = Detector::new(RuleSet::builtin(), opts);
    let mut alerts = Vec::new();
    let start = Instant::now();
    for i in 0..total {
        detector.push(make(i), &mut alerts);
        alerts.clear();
    }
    detector.finish(&mut alerts);
    let with_detect = start.elapsed();
    let detect = with_detect.saturating_sub(build_only).as_secs_f64();
    println!(
        "throughput: {total} events; build+drop {:.3} s, build+push {:.3} s; detect alone {:.3} s = {:.0} events/s; {} alerts (checksum {checksum})",
        build_only.as_secs_f64(),
        with_detect.as_secs_f64(),
        detect,
        total as f64 / detect,
        detector.stats().alerts,
    );
}

/// `total` distinct IPs, one failed login each, all inside one 5-minute window (250 µs apart),
/// so every key is live at the end.
fn flood(total: u64) {
    let source: Arc<str> = Arc::from("auth.log");
    let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut alerts = Vec::new();
    let start = Instant::now();
    for i in 0..total {
        let ip = Ipv4Addr::from(0x2000_0000 + i as u32);
        let ev = sshd_failure(&source, i, T0 + i as i64 * 250, ip, i as u32, Attempt::End);
        detector.push(ev, &mut alerts);
    }
    let live = detector.live_keys();
    let elapsed = start.elapsed();
    println!(
        "flood: {total} distinct IPs in {:.3} s; live keys {live}; alerts {}; evicted {}; peak RSS {} KiB ({:.1} MiB)",
        elapsed.as_secs_f64(),
        alerts.len(),
        detector.stats().evicted_keys,
        peak_rss_kib(),
        peak_rss_kib() as f64 / 1024.0
    );
    if std::env::var_os("MALLOC_STATS").is_some() {
        // glibc's own accounting: bytes in use vs bytes held, to tell data from fragmentation.
        unsafe extern "C" {
            fn malloc_stats();
        }
        // SAFETY: glibc's malloc_stats takes no arguments and only prints to stderr.
        unsafe { malloc_stats() };
    }
    detector.finish(&mut alerts);
}

/// As [`flood`], but events are built on a producer thread and cross a bounded channel in
/// batches of 1,024, as in the pipeline (parse/classify thread → detect thread).
fn flood_threaded(total: u64) {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Event>>(16);
    let producer = std::thread::spawn(move || {
        let source: Arc<str> = Arc::from("auth.log");
        let mut batch = Vec::with_capacity(1024);
        for i in 0..total {
            let ip = Ipv4Addr::from(0x2000_0000 + i as u32);
            batch.push(sshd_failure(
                &source,
                i,
                T0 + i as i64 * 250,
                ip,
                i as u32,
                Attempt::End,
            ));
            if batch.len() == 1024 {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(1024));
                if tx.send(full).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(batch);
    });
    let mut detector = Detector::new(RuleSet::builtin(), DetectOptions::default());
    let mut alerts = Vec::new();
    let start = Instant::now();
    for batch in rx {
        for ev in batch {
            detector.push(ev, &mut alerts);
        }
    }
    let _ = producer.join();
    println!(
        "flood (2 threads): {total} distinct IPs in {:.3} s; live keys {}; alerts {}; peak RSS {} KiB ({:.1} MiB)",
        start.elapsed().as_secs_f64(),
        detector.live_keys(),
        alerts.len(),
        peak_rss_kib(),
        peak_rss_kib() as f64 / 1024.0
    );
    detector.finish(&mut alerts);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "throughput".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    match mode.as_str() {
        "flood" => flood(n),
        "flood-threaded" => flood_threaded(n),
        _ => throughput(n),
    }
}
