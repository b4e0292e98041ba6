//! Classify throughput on real sshd lines: ns per line, release build.
//!
//! `cargo run --release --example classify_throughput [FILE] [ROUNDS]`
//! (FILE defaults to the loghub OpenSSH sample). Records are built by a tiny RFC 3164 splitter
//! so that only classify is timed.

use std::borrow::Cow;
use std::time::Instant;

use secpipe::classify::Classifier;
use secpipe::event::{Event, Kind};
use secpipe::parse::{Format, Record};

/// `Mmm dd hh:mm:ss host tag[pid]: message` → record with app, pid and message.
fn record(line: &str) -> Record<'_> {
    let mut rest = line;
    for _ in 0..4 {
        rest = rest.trim_start();
        rest = rest.find(' ').map_or("", |end| &rest[end..]);
    }
    let (tag, message) = rest.trim_start().split_once(": ").unwrap_or(("", rest));
    let (app, pid) = match tag.rfind('[') {
        Some(open) if tag.ends_with(']') => {
            (&tag[..open], tag[open + 1..tag.len() - 1].parse().ok())
        }
        _ => (tag, None),
    };
    Record {
        format: Format::Rfc3164,
        ts: None,
        host: None,
        app: Some(Cow::Borrowed(app)),
        pid,
        severity: None,
        message: Cow::Borrowed(message),
        fields: Vec::new(),
    }
}

/// CPU time this thread has run, in ns (Linux `/proc/thread-self/schedstat`): on a machine
/// shared with other jobs, wall time also counts the time spent waiting for a core.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "../../shared/corpus/loghub/OpenSSH_2k.log".into());
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(500);
    let text = std::fs::read_to_string(&path)?;
    let records: Vec<Record<'_>> = text.lines().map(record).collect();
    let classifier = Classifier::builtin()?;

    let mut failures = 0usize;
    let mut matched = 0usize;
    // Warm the regex caches and the allocator before timing.
    for rec in &records {
        let mut ev = Event::default();
        classifier.classify(rec, &mut ev);
    }
    let start = Instant::now();
    let cpu_start = thread_cpu_ns();
    for _ in 0..rounds {
        for rec in &records {
            let mut ev = Event::default();
            matched += usize::from(classifier.classify(rec, &mut ev).is_some());
            failures += usize::from(ev.kind == Kind::AuthFailure);
        }
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu_ns()
        .zip(cpu_start)
        .map(|(end, begin)| end - begin);
    let lines = records.len() * rounds;
    if let Some(cpu) = cpu {
        println!("CPU time: {:.0} ns/line", cpu as f64 / lines as f64);
    }
    println!(
        "{lines} lines in {:.3} s: {:.0} ns/line, {:.2} M lines/s ({} matched, {} auth.failure per round)",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / lines as f64,
        lines as f64 / elapsed.as_secs_f64() / 1e6,
        matched / rounds,
        failures / rounds,
    );
    Ok(())
}
