//! Criterion benches for the hot stages: parse, classify, detect — per line, on real sshd lines
//! (../shared/corpus when present, else the bundled sample, which it says on stderr).
//!
//!   cargo bench --bench pipeline

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secpipe::classify::Classifier;
use secpipe::detect::{DetectOptions, Detector, RuleSet};
use secpipe::event::Event;
use secpipe::frame::LineBatch;
use secpipe::parse::ParseSettings;
use secpipe::parse::Parser;
use secpipe::pipeline::{classify_batch, parse_batch};

/// The input lines, and a line on stderr naming them: real sshd lines from the corpus
/// (`$SECPIPE_CORPUS`, else `../shared/corpus` beside the checkout or its worktree folder), or,
/// without it, the bundled mixed-format sample, said loudly since its figures are not those of
/// sshd lines.
fn corpus() -> Vec<Vec<u8>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let sample = format!("{root}/fixtures/sample/attacks.log");
    let candidates = [
        std::env::var("SECPIPE_CORPUS")
            .map(|dir| format!("{dir}/loghub/OpenSSH_2k.log"))
            .unwrap_or_default(),
        format!("{root}/../shared/corpus/loghub/OpenSSH_2k.log"),
        format!("{root}/../../shared/corpus/loghub/OpenSSH_2k.log"),
        sample.clone(),
    ];
    for path in candidates.iter().filter(|p| !p.is_empty()) {
        if let Ok(text) = std::fs::read(path) {
            let lines: Vec<Vec<u8>> = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            if *path == sample {
                eprintln!(
                    "pipeline bench: corpus OpenSSH_2k.log NOT found; measuring the bundled \
                     sample {path} ({} mixed-format lines) instead of real sshd lines",
                    lines.len()
                );
            } else {
                eprintln!("pipeline bench: {path} ({} lines)", lines.len());
            }
            return lines;
        }
    }
    panic!("no input found in {candidates:?}");
}

const RECEIVED: i64 = 1_790_000_000_000_000;

/// Parse and classify `lines` exactly as the pipeline does, through its own batch functions.
fn events(lines: &[Vec<u8>], classifier: &Classifier) -> Vec<Event> {
    let settings = ParseSettings {
        tz: jiff::tz::TimeZone::UTC,
        year: Some(2026),
    };
    let mut batch = LineBatch::new("bench".into(), 1, RECEIVED);
    for line in lines {
        batch.push(line, false);
    }
    let mut parsers = HashMap::new();
    let (mut parsed, envelopes) = parse_batch(&batch, &mut parsers, &settings);
    classify_batch(&mut parsed, envelopes, classifier);
    parsed.events
}

fn bench(c: &mut Criterion) {
    let lines = corpus();
    let classifier = Classifier::builtin().expect("builtin grammars");
    let mut group = c.benchmark_group("per_line");
    group.throughput(Throughput::Elements(lines.len() as u64));

    group.bench_function("parse", |b| {
        let mut parser = Parser::new(jiff::tz::TimeZone::UTC, Some(2026));
        b.iter(|| {
            for line in &lines {
                black_box(parser.parse(black_box(line), RECEIVED));
            }
        })
    });

    group.bench_function("parse+event+classify", |b| {
        b.iter(|| black_box(events(&lines, &classifier)))
    });

    let evs = events(&lines, &classifier);
    group.bench_function("detect", |b| {
        b.iter_batched(
            || evs.clone(),
            |evs| {
                let mut detector = Detector::new(
                    RuleSet::builtin(),
                    DetectOptions {
                        lateness: 10_000_000,
                        tz: jiff::tz::TimeZone::UTC,
                        max_keys: 1_000_000,
                        ..DetectOptions::default()
                    },
                );
                let mut alerts = Vec::new();
                for ev in evs {
                    detector.push(ev, &mut alerts);
                }
                detector.finish(&mut alerts);
                black_box(alerts)
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
